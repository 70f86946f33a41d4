//! The conversation on disk: one JSON object per line, appended and fsynced after each reply,
//! so a crash loses at most the reply in flight. A damaged line is skipped with a warning and
//! never costs the rest of the file. Bounded: only the last [`RESTORE_BYTES`] of the file are
//! read at start, and a file above [`ROTATE_BYTES`] is moved to `<name>.1` (the one before it
//! dropped) before the next append, so months of chat cost neither minutes nor gigabytes.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::chat::ChatTurn;
use crate::config::{ChatSettings, user_data_dir};

/// How much of the end of the history file is read at start (the turns before stay in the
/// file, not in memory).
pub const RESTORE_BYTES: u64 = 4 << 20;
/// A history file this big is rotated before the next append.
pub const ROTATE_BYTES: u64 = 16 << 20;

/// One line of the history file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Seconds since the Unix epoch when the reply finished.
    pub at: u64,
    #[serde(flatten)]
    pub turn: ChatTurn,
}

impl HistoryEntry {
    pub fn now(turn: ChatTurn) -> Self {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self { at, turn }
    }
}

/// `chat.history_file`, else `history.jsonl` in the user's data folder.
pub fn history_path(chat: &ChatSettings) -> Option<PathBuf> {
    chat.history_file
        .clone()
        .or_else(|| user_data_dir().map(|dir| dir.join("history.jsonl")))
}

/// What was read back, and the lines that could not be.
#[derive(Debug, Default)]
pub struct LoadedHistory {
    pub entries: Vec<HistoryEntry>,
    pub warnings: Vec<String>,
}

/// Reads the history (its last [`RESTORE_BYTES`]); a missing file is an empty history.
pub fn load_history(path: &Path) -> io::Result<LoadedHistory> {
    load_history_tail(path, RESTORE_BYTES)
}

/// [`load_history`] reading at most the last `limit` bytes: the first line of that window,
/// cut by it, is left out, and the turns before it are said to stay in the file.
pub fn load_history_tail(path: &Path, limit: u64) -> io::Result<LoadedHistory> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(LoadedHistory::default()),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut loaded = LoadedHistory::default();
    let skip = meta.len().saturating_sub(limit);
    file.seek(SeekFrom::Start(skip))?;
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit).read_to_end(&mut bytes)?;
    let mut first_line = 1;
    if skip > 0 {
        let cut = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.drain(..cut);
        first_line = 0;
        loaded.warnings.push(format!(
            "{}: only the last {} MiB of the history restored; the turns before stay in the file",
            path.display(),
            limit >> 20
        ));
    }
    let text = String::from_utf8_lossy(&bytes);
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<HistoryEntry>(line) {
            Ok(entry) => loaded.entries.push(entry),
            Err(err) if first_line == 0 => loaded.warnings.push(format!(
                "{}: skipped a damaged history line ({err})",
                path.display()
            )),
            Err(err) => loaded.warnings.push(format!(
                "{}:{}: skipped a damaged history line ({err})",
                path.display(),
                index + first_line
            )),
        }
    }
    Ok(loaded)
}

/// Appends one entry and fsyncs it (rotating a file above [`ROTATE_BYTES`] first).
pub fn append_history(path: &Path, entry: &HistoryEntry) -> io::Result<()> {
    append_history_rotating(path, entry, ROTATE_BYTES)
}

/// [`append_history`] with the rotation size given.
pub fn append_history_rotating(path: &Path, entry: &HistoryEntry, rotate: u64) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    if fs::metadata(path).is_ok_and(|m| m.len() >= rotate) {
        fs::rename(path, path.with_extension("jsonl.1"))?;
    }
    let mut line = serde_json::to_string(entry).map_err(io::Error::other)?;
    line.push('\n');
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    // A previous crash may have left a line without its newline: start on a fresh line.
    if file.metadata()?.len() > 0 && !ends_with_newline(path)? {
        line.insert(0, '\n');
    }
    file.write_all(line.as_bytes())?;
    file.sync_data()
}

fn ends_with_newline(path: &Path) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(path)?;
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Empties the history, keeping the previous file as `<name>.bak`.
pub fn clear_history(path: &Path) -> io::Result<()> {
    if path.is_file() {
        fs::rename(path, path.with_extension("jsonl.bak"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(n: usize) -> HistoryEntry {
        HistoryEntry {
            at: n as u64,
            turn: ChatTurn {
                user: format!("question {n} — «é»"),
                assistant: format!("answer {n}\nwith a newline"),
            },
        }
    }

    #[test]
    fn appended_turns_read_back_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("history.jsonl");
        assert!(
            load_history(&path)
                .expect("missing is empty")
                .entries
                .is_empty()
        );
        for n in 0..3 {
            append_history(&path, &turn(n)).expect("append");
        }
        let loaded = load_history(&path).expect("load");
        assert_eq!(loaded.entries, vec![turn(0), turn(1), turn(2)]);
        assert!(loaded.warnings.is_empty());
        assert_eq!(fs::read_to_string(&path).expect("read").lines().count(), 3);
    }

    #[test]
    fn a_damaged_line_is_skipped_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        append_history(&path, &turn(0)).expect("append");
        // A crash in the middle of a write: half a line, no newline.
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"{\"at\": 1, \"user\": \"half")
            .expect("write");
        drop(file);
        append_history(&path, &turn(2)).expect("append after damage");
        let loaded = load_history(&path).expect("load");
        assert_eq!(loaded.entries, vec![turn(0), turn(2)]);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].contains("history.jsonl:2:"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn a_long_history_restores_only_its_end_and_rotates() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        for n in 0..200 {
            append_history(&path, &turn(n)).expect("append");
        }
        let size = fs::metadata(&path).expect("size").len();
        let line = size / 200;
        // A window of about 10 lines: the cut first one is left out, the rest are the newest.
        let loaded = load_history_tail(&path, line * 10 + line / 2).expect("load");
        let numbers: Vec<u64> = loaded.entries.iter().map(|e| e.at).collect();
        assert_eq!(numbers, (190..200).collect::<Vec<_>>());
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("stay in the file"));
        // One huge damaged line at the end does not cost what comes before it in the window.
        let loaded = load_history_tail(&path, size + 10).expect("whole file");
        assert_eq!(loaded.entries.len(), 200);
        assert!(loaded.warnings.is_empty());

        // Rotation: past the size, the file moves to .1 and a new one starts.
        append_history_rotating(&path, &turn(200), size).expect("append");
        let rotated = load_history(&dir.path().join("history.jsonl.1")).expect("rotated");
        assert_eq!(rotated.entries.len(), 200);
        assert_eq!(load_history(&path).expect("new").entries, vec![turn(200)]);
        #[cfg(unix)]
        assert!(load_history(Path::new("/dev/zero")).is_err(), "not a file");
    }

    #[test]
    fn clearing_keeps_a_backup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        append_history(&path, &turn(0)).expect("append");
        clear_history(&path).expect("clear");
        assert!(load_history(&path).expect("load").entries.is_empty());
        let backup = load_history(&dir.path().join("history.jsonl.bak")).expect("backup");
        assert_eq!(backup.entries, vec![turn(0)]);
    }
}
