//! What `auto` needs to know about a GGUF file, read from its header without loading weights.

use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Not serialized: reports that embed this carry the path themselves.
    #[serde(skip_serializing)]
    pub path: PathBuf,
    pub file_size_bytes: u64,
    pub architecture: String,
    /// Transformer blocks (`<arch>.block_count`).
    pub n_layers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelInfoError {
    #[error("model file {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read model file {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("{0} is not a GGUF model file (wrong magic or corrupt header)")]
    NotGguf(PathBuf),
    #[error("{path} has no `{key}` entry; is it a language model?")]
    MissingKey { path: PathBuf, key: String },
    /// A value llama.cpp would stop the whole process on (`GGML_ASSERT` -> abort) instead of
    /// returning an error: refused here, before llama.cpp sees the file.
    #[error("{path} is damaged or not made for llama.cpp: `{key}` {reason}; the file is refused")]
    Refused {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// llama.cpp's `LLAMA_MAX_LAYERS` and `LLAMA_MAX_EXPERTS` (llama-hparams.h of the vendored
/// version): a model above them makes its loader abort.
const MAX_LAYERS: u32 = 512;
const MAX_EXPERTS: u32 = 1024;

const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Reads size, architecture and layer count from a GGUF file's header.
pub fn read_model_info(path: &Path) -> Result<ModelInfo, ModelInfoError> {
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelInfoError::Missing(path.to_owned()),
        _ => ModelInfoError::Unreadable {
            path: path.to_owned(),
            message: e.to_string(),
        },
    })?;
    // Check the magic ourselves first: llama.cpp's parser logs loudly on non-GGUF input.
    let mut magic = [0u8; 4];
    let magic_ok = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == GGUF_MAGIC;
    if !metadata.is_file() || !magic_ok {
        return Err(ModelInfoError::NotGguf(path.to_owned()));
    }
    let gguf = llama_cpp_2::gguf::GgufContext::from_file(path)
        .ok_or_else(|| ModelInfoError::NotGguf(path.to_owned()))?;
    let missing = |key: &str| ModelInfoError::MissingKey {
        path: path.to_owned(),
        key: key.to_owned(),
    };
    let arch_index = gguf.find_key("general.architecture");
    let architecture = (arch_index >= 0
        && gguf.kv_type(arch_index) == llama_cpp_sys_2::GGUF_TYPE_STRING)
        .then(|| gguf.val_str(arch_index))
        .flatten()
        .ok_or_else(|| missing("general.architecture"))?
        .to_owned();
    let block_key = format!("{architecture}.block_count");
    let index = gguf.find_key(&block_key);
    if index < 0 {
        return Err(missing(&block_key));
    }
    // Typed getters abort inside llama.cpp on a type mismatch: check the type first.
    let n_layers = match gguf.kv_type(index) {
        llama_cpp_sys_2::GGUF_TYPE_UINT32 => gguf.val_u32(index),
        llama_cpp_sys_2::GGUF_TYPE_INT32 => u32::try_from(gguf.val_i32(index)).unwrap_or(0),
        llama_cpp_sys_2::GGUF_TYPE_UINT64 => u32::try_from(gguf.val_u64(index)).unwrap_or(0),
        _ => return Err(missing(&block_key)),
    };
    check_hyperparameters(&gguf, &architecture).map_err(|(key, reason)| {
        ModelInfoError::Refused {
            path: path.to_owned(),
            key,
            reason,
        }
    })?;
    Ok(ModelInfo {
        path: path.to_owned(),
        file_size_bytes: metadata.len(),
        architecture,
        n_layers,
    })
}

/// The checks llama.cpp's `load_hparams` makes with `GGML_ASSERT` (an abort of the whole
/// process, which no error handling can catch), made here on the same values: llama.cpp reads
/// these keys as `u32` and reports any other type as a clean error, so only `u32` values are
/// checked. `Err((key, reason))` for the first broken one. Not checked: a per-layer array of
/// `expert_used_count` (llama-cpp-2 exposes no array values).
fn check_hyperparameters(
    gguf: &llama_cpp_2::gguf::GgufContext,
    architecture: &str,
) -> Result<(), (String, String)> {
    let key = |name: &str| format!("{architecture}.{name}");
    let index = |name: &str| gguf.find_key(&key(name));
    let value = |name: &str| {
        let i = index(name);
        (i >= 0 && gguf.kv_type(i) == llama_cpp_sys_2::GGUF_TYPE_UINT32).then(|| gguf.val_u32(i))
    };
    let refuse = |name: &str, reason: String| Err((key(name), reason));

    let n_layer = value("block_count");
    if let Some(n) = n_layer
        && !(1..=MAX_LAYERS).contains(&n)
    {
        return refuse("block_count", format!("is {n}, must be 1..{MAX_LAYERS}"));
    }
    let n_layer = n_layer.unwrap_or(0);
    let nextn = value("nextn_predict_layers").unwrap_or(0);
    if nextn > n_layer {
        return refuse(
            "nextn_predict_layers",
            format!("is {nextn}, more than the {n_layer} blocks"),
        );
    }
    let mut experts = value("expert_count").unwrap_or(0);
    let used_is_array = {
        let i = index("expert_used_count");
        i >= 0 && gguf.kv_type(i) == llama_cpp_sys_2::GGUF_TYPE_ARRAY
    };
    let mut used = (!used_is_array).then(|| value("expert_used_count").unwrap_or(0));
    if matches!(architecture, "hunyuan-dense" | "hunyuan_vl") && experts <= 1 {
        // llama.cpp reads these dense models as having no experts.
        experts = 0;
        used = Some(0);
    }
    let groups = value("expert_group_count").unwrap_or(0);
    let groups_used = value("expert_group_used_count").unwrap_or(0);
    if experts > MAX_EXPERTS {
        return refuse(
            "expert_count",
            format!("is {experts}, must be at most {MAX_EXPERTS}"),
        );
    }
    if let Some(used) = used {
        if used > experts {
            return refuse(
                "expert_used_count",
                format!("is {used}, more than the {experts} experts"),
            );
        }
        if experts > 0 && used == 0 {
            return refuse(
                "expert_used_count",
                format!("is 0 for a model of {experts} experts"),
            );
        }
    }
    if experts > 0 {
        if groups >= experts {
            return refuse(
                "expert_group_count",
                format!("is {groups}, must be fewer than the {experts} experts"),
            );
        }
        if groups > 1 {
            if experts % groups != 0 {
                return refuse(
                    "expert_group_count",
                    format!("is {groups}, which does not divide the {experts} experts"),
                );
            }
            if groups_used == 0 || groups_used >= groups {
                return refuse(
                    "expert_group_used_count",
                    format!("is {groups_used}, must be 1..{}", groups - 1),
                );
            }
        }
    } else if groups != 0 {
        return refuse(
            "expert_group_count",
            format!("is {groups} for a model without experts"),
        );
    }
    Ok(())
}
