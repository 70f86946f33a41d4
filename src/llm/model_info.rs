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
}

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
    Ok(ModelInfo {
        path: path.to_owned(),
        file_size_bytes: metadata.len(),
        architecture,
        n_layers,
    })
}
