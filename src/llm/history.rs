//! The conversation on disk: one JSON object per line, appended and fsynced after each reply,
//! so a crash loses at most the reply in flight. A damaged line is skipped with a warning and
//! never costs the rest of the file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::chat::ChatTurn;
use crate::config::{ChatSettings, user_data_dir};

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

/// Reads the history; a missing file is an empty history.
pub fn load_history(path: &Path) -> io::Result<LoadedHistory> {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(LoadedHistory::default()),
        Err(err) => return Err(err),
    };
    let mut loaded = LoadedHistory::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<HistoryEntry>(line) {
            Ok(entry) => loaded.entries.push(entry),
            Err(err) => loaded.warnings.push(format!(
                "{}:{}: skipped a damaged history line ({err})",
                path.display(),
                index + 1
            )),
        }
    }
    Ok(loaded)
}

/// Appends one entry and fsyncs it.
pub fn append_history(path: &Path, entry: &HistoryEntry) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
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
