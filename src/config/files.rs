//! The small files the app keeps (settings, state, the load guard): read only when they are
//! regular files of a sane size, written atomically (temporary file, fsync, rename) through
//! symbolic links.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The largest settings or state file read (the bundled settings, comments and all, are 10 KiB).
pub const MAX_TEXT_FILE_BYTES: u64 = 1 << 20;

/// Why [`read_bounded`] read nothing.
#[derive(Debug)]
pub enum BoundedReadError {
    /// A folder, a device (`/dev/zero`) or a pipe.
    NotRegular,
    /// Above the limit (before reading, or it grew while being read).
    TooBig {
        size: u64,
    },
    Io(io::Error),
}

impl std::fmt::Display for BoundedReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRegular => write!(f, "not a regular file"),
            Self::TooBig { size } => {
                write!(f, "{size} bytes, more than this kind of file may have")
            }
            Self::Io(err) => write!(f, "{err}"),
        }
    }
}

/// A regular file's bytes, at most `limit` of them: a folder, a device, a pipe or a file above
/// the limit is refused before anything is read (settings and state files, avatars).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, BoundedReadError> {
    use std::io::Read as _;
    let meta = fs::metadata(path).map_err(BoundedReadError::Io)?;
    if !meta.is_file() {
        return Err(BoundedReadError::NotRegular);
    }
    if meta.len() > limit {
        return Err(BoundedReadError::TooBig { size: meta.len() });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(path)
        .and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
        .map_err(BoundedReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(BoundedReadError::TooBig {
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// A small text file we keep (settings, state, catalogue): only a regular file of at most
/// `limit` bytes is read, so `--config /dev/zero` or a file of gigabytes is an error, not
/// memory until the process is killed.
pub fn read_text_file(path: &Path, limit: u64) -> io::Result<String> {
    let bytes = read_bounded(path, limit).map_err(|err| match err {
        BoundedReadError::NotRegular => io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a folder, a device or a pipe)",
        ),
        BoundedReadError::TooBig { .. } => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} KiB", limit >> 10),
        ),
        BoundedReadError::Io(err) => err,
    })?;
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Writes `contents` to a temporary file in the same folder, fsyncs it, then renames it over
/// `path`: a reader sees the old file or the new one, never a partial one. On error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    // A symlinked file (dotfile managers link mascot.ron into their repository) stays a link:
    // the file it points to is the one replaced.
    let resolved = resolve_links(path)?;
    let path = resolved.as_path();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".mascot-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(contents.as_bytes())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    #[cfg(unix)]
    if let Ok(folder) = fs::File::open(dir) {
        // Makes the rename itself durable; not all file systems support it, so ignore errors.
        let _ = folder.sync_all();
    }
    Ok(())
}

/// The file a chain of symbolic links ends at (the path itself when it is no link), relative
/// links read from their own folder; a dangling link gives where it points.
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_owned();
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                path = match path.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(io::Error::other(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}
