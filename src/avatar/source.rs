//! The `avatar://` asset source: hands VRM files to bevy_vrm after normalizing them.
//!
//! bevy_vrm 0.5 rejects the whole VRM extension of files real exporters write (12-number look-at
//! curves, presets it does not know), and bevy's glTF loader would read whatever a buffer or image
//! uri points at (a relative path, `file://`, a device file) or panic on it, so every avatar is
//! read through this source: the file is read, checked (GLB, VRM 0.x or 1.0, only embedded data,
//! at least one mesh) and normalized by [`normalize_vrm_bytes`] here, before any loader sees it,
//! then parsed by bevy_vrm's own loader. Files are registered under a fresh name (`3.vrm`) per load, so any path on disk works
//! on every OS (no path syntax goes through `AssetPath`) and loading the same file again after it
//! changed is a real reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bevy::asset::io::{
    AssetReader, AssetReaderError, AssetSourceBuilder, PathStream, Reader, VecReader,
};
use bevy::prelude::*;

use super::default_avatar::DEFAULT_AVATAR;
use super::look_at::LookAt;
use super::vrm_expression::VrmExpressions;
use super::vrm_file::VrmVersion;
use super::vrm_import::{NormalizedVrm, normalize_vrm_bytes};

/// The asset source name.
pub const SOURCE: &str = "avatar";

/// Where the bytes of one registered avatar come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvatarFile {
    /// The built-in mascot embedded in the binary.
    Default,
    Path(PathBuf),
}

impl AvatarFile {
    pub fn describe(&self) -> String {
        match self {
            AvatarFile::Default => "the default avatar".to_owned(),
            AvatarFile::Path(path) => path.display().to_string(),
        }
    }
}

/// What the app drives itself on a model (bevy_vrm does neither): read from the file when the
/// asset source reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AvatarModel {
    pub version: VrmVersion,
    pub expressions: VrmExpressions,
    pub look_at: LookAt,
}

/// What reading a registered file gave: the model's expressions and look-at, or why it cannot
/// be used.
pub type ReadOutcome = Result<AvatarModel, String>;

/// The files the source can read, shared between the app and the asset reader, and what
/// each read gave (so the app never reads a file a second time).
#[derive(Resource, Debug, Clone, Default)]
pub struct AvatarFiles {
    files: Arc<Mutex<HashMap<String, AvatarFile>>>,
    outcomes: Arc<Mutex<HashMap<String, ReadOutcome>>>,
    next: Arc<AtomicU64>,
}

impl AvatarFiles {
    /// Registers a file and returns the asset path to load it with.
    pub fn register(&self, file: AvatarFile) -> String {
        let name = format!("{}.vrm", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), file);
        format!("{SOURCE}://{name}")
    }

    fn get(&self, name: &Path) -> Option<AvatarFile> {
        let name = name.to_str()?;
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// What the asset reader found in the file registered under `asset_path` (once).
    pub fn take_outcome(&self, asset_path: &str) -> Option<ReadOutcome> {
        let name = asset_path
            .strip_prefix(&format!("{SOURCE}://"))
            .unwrap_or(asset_path);
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
    }

    fn record(&self, name: &Path, outcome: ReadOutcome) {
        if let Some(name) = name.to_str() {
            self.outcomes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_owned(), outcome);
        }
    }

    /// The asset source to register before `AssetPlugin`.
    pub fn source(&self) -> AssetSourceBuilder {
        let files = self.clone();
        AssetSourceBuilder::new(move || Box::new(AvatarReader(files.clone())))
    }
}

/// The largest avatar file read: far above any real VRM (VRoid exports with 4K textures are
/// 50-150 MB), and small enough that the few copies loading makes stay well under a gigabyte.
pub const MAX_AVATAR_BYTES: u64 = 256 << 20;

/// Reads a registered avatar, checks it is VRM 0.x or 1.0 with only embedded data and a mesh,
/// and normalizes it.
pub fn read_avatar(file: &AvatarFile) -> Result<NormalizedVrm, String> {
    let bytes = match file {
        AvatarFile::Default => DEFAULT_AVATAR.to_vec(),
        AvatarFile::Path(path) => read_limited(path, MAX_AVATAR_BYTES)?,
    };
    normalize_vrm_bytes(&bytes).map_err(|e| e.to_string())
}

/// A regular file's bytes, at most `limit` of them ([`crate::config::read_bounded`]), with the
/// reason in the avatar's words.
pub fn read_limited(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, String> {
    use crate::config::BoundedReadError;
    crate::config::read_bounded(path, limit).map_err(|err| match err {
        BoundedReadError::NotRegular => "not a regular file (a folder, a device or a pipe)".into(),
        BoundedReadError::TooBig { size } => format!(
            "the file has {} MiB, more than the {} MiB an avatar may have",
            size >> 20,
            limit >> 20
        ),
        BoundedReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "file not found".to_owned()
        }
        BoundedReadError::Io(e) => e.to_string(),
    })
}

struct AvatarReader(AvatarFiles);

impl AssetReader for AvatarReader {
    async fn read<'a>(&'a self, path: &'a Path) -> Result<impl Reader + 'a, AssetReaderError> {
        let file = self
            .0
            .get(path)
            .ok_or_else(|| AssetReaderError::NotFound(path.to_owned()))?;
        let normalized = match read_avatar(&file) {
            Ok(normalized) => normalized,
            Err(message) => {
                self.0.record(path, Err(message.clone()));
                return Err(AssetReaderError::Io(Arc::new(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    message,
                ))));
            }
        };
        for change in &normalized.changes {
            info!("{}: {change}", file.describe());
        }
        for note in &normalized.expressions.notes {
            info!("{}: {note}", file.describe());
        }
        self.0.record(
            path,
            Ok(AvatarModel {
                version: normalized.version,
                expressions: normalized.expressions,
                look_at: normalized.look_at,
            }),
        );
        Ok(VecReader::new(normalized.bytes))
    }

    async fn read_meta<'a>(&'a self, path: &'a Path) -> Result<impl Reader + 'a, AssetReaderError> {
        Err::<VecReader, _>(AssetReaderError::NotFound(path.to_owned()))
    }

    async fn read_directory<'a>(
        &'a self,
        path: &'a Path,
    ) -> Result<Box<PathStream>, AssetReaderError> {
        Err(AssetReaderError::NotFound(path.to_owned()))
    }

    async fn is_directory<'a>(&'a self, _path: &'a Path) -> Result<bool, AssetReaderError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_a_folder_or_a_huge_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = read_limited(dir.path(), MAX_AVATAR_BYTES).expect_err("a folder");
        assert!(err.contains("not a regular file"), "{err}");
        #[cfg(unix)]
        {
            let err = read_limited(std::path::Path::new("/dev/zero"), MAX_AVATAR_BYTES)
                .expect_err("an endless device");
            assert!(err.contains("not a regular file"), "{err}");
        }
        // Sparse: a size far above the limit without using the disk.
        let huge = dir.path().join("huge.vrm");
        std::fs::File::create(&huge)
            .and_then(|f| f.set_len(3 << 30))
            .expect("sparse file");
        let err = read_limited(&huge, MAX_AVATAR_BYTES).expect_err("3 GiB");
        assert_eq!(
            err,
            "the file has 3072 MiB, more than the 256 MiB an avatar may have"
        );
        let small = dir.path().join("small.vrm");
        std::fs::write(&small, b"glTF....").expect("write");
        assert_eq!(read_limited(&small, 8).expect("8 bytes"), b"glTF....");
        assert!(read_limited(&small, 7).is_err());
        assert_eq!(
            read_limited(&dir.path().join("missing.vrm"), 8),
            Err("file not found".into())
        );
    }
}
