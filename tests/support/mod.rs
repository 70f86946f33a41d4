//! Test inputs made on the fly: settings files and GGUF headers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/` next to the project, when this machine has it.
pub fn shared_file(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join(relative);
    path.is_file().then_some(path)
}

pub enum GgufValue<'a> {
    U32(u32),
    Str(&'a str),
}

/// Writes a GGUF v3 file with the given metadata and no tensors (enough for header readers).
pub fn write_gguf_header(path: &Path, metadata: &[(&str, GgufValue)]) {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"GGUF");
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes()); // tensors
    bytes.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    let push_str = |bytes: &mut Vec<u8>, s: &str| {
        bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
        bytes.extend_from_slice(s.as_bytes());
    };
    for (key, value) in metadata {
        push_str(&mut bytes, key);
        match value {
            GgufValue::U32(v) => {
                bytes.extend_from_slice(&4u32.to_le_bytes());
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            GgufValue::Str(s) => {
                bytes.extend_from_slice(&8u32.to_le_bytes());
                push_str(&mut bytes, s);
            }
        }
    }
    std::fs::write(path, bytes).expect("write test GGUF");
}

/// Files in a folder, sorted, for "nothing else was written" checks.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read test dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
