//! The conversation on disk: one JSON object per line, appended and fsynced after each reply,
//! so a crash loses at most the reply in flight. A damaged line is skipped with a warning and
//! never costs the rest of the file. Bounded: only the last [`RESTORE_BYTES`] of the file are
//! read at start, and a file above [`ROTATE_BYTES`] is moved to `<name>.1` (the one before it
//! dropped) before the next append, so months of chat cost neither minutes nor gigabytes.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ChatSettings, user_data_dir};
use crate::llm::contract::ChatTurn;

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

/// Delays before a failed history write is tried again (the last one repeats while turns wait).
const RETRY_DELAYS: [std::time::Duration; 4] = [
    std::time::Duration::from_millis(200),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(5),
    std::time::Duration::from_secs(30),
];
/// Tries to write what is still waiting when the writer is closed (at exit).
const FINAL_TRIES: usize = 3;

enum WriteJob {
    Append(Vec<HistoryEntry>),
    Clear,
}

/// Writes the history on a thread of its own, in order: appends (fsynced) and clears. A failed
/// append (a full disk, a folder that went away) is kept and tried again after
/// [`RETRY_DELAYS`], each failure reported once on [`failures`](Self::failures); dropping the
/// writer (at exit) waits until what is queued is written, or [`FINAL_TRIES`] more tries failed.
pub struct HistoryWriter {
    jobs: Option<crossbeam_channel::Sender<WriteJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
    failures: crossbeam_channel::Receiver<String>,
}

impl HistoryWriter {
    pub fn new(path: PathBuf) -> io::Result<Self> {
        let (jobs, queue) = crossbeam_channel::unbounded();
        let (report, failures) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || write_loop(&path, &queue, &report))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
            failures,
        })
    }

    pub fn append(&self, entries: Vec<HistoryEntry>) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(WriteJob::Append(entries));
        }
    }

    /// Forgets the entries not written yet and empties the file (kept as `.bak`).
    pub fn clear(&self) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(WriteJob::Clear);
        }
    }

    /// Messages of failed writes (each failure once; the write is retried).
    pub fn failures(&self) -> &crossbeam_channel::Receiver<String> {
        &self.failures
    }
}

impl Drop for HistoryWriter {
    fn drop(&mut self) {
        // Closing the queue tells the thread to write what waits and stop.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(
    path: &Path,
    queue: &crossbeam_channel::Receiver<WriteJob>,
    report: &crossbeam_channel::Sender<String>,
) {
    let mut pending: std::collections::VecDeque<HistoryEntry> = Default::default();
    let mut failures = 0usize;
    loop {
        let job = if pending.is_empty() {
            queue.recv().ok()
        } else {
            let delay = RETRY_DELAYS[failures.saturating_sub(1).min(RETRY_DELAYS.len() - 1)];
            match queue.recv_timeout(delay) {
                Ok(job) => Some(job),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        };
        match job {
            Some(WriteJob::Append(entries)) => pending.extend(entries),
            Some(WriteJob::Clear) => {
                pending.clear();
                failures = 0;
                if let Err(err) = clear_history(path) {
                    let _ = report.send(format!(
                        "cannot clear the chat history {}: {err}",
                        path.display()
                    ));
                }
            }
            None if pending.is_empty() => break, // the queue closed
            None => {}
        }
        match write_pending(path, &mut pending) {
            Ok(()) => failures = 0,
            Err(err) => {
                failures += 1;
                let _ = report.send(format!(
                    "cannot save the chat history to {}: {err}; {} turn(s) wait and are tried again",
                    path.display(),
                    pending.len()
                ));
            }
        }
    }
    // At exit: what waits gets a few more tries.
    for _ in 0..FINAL_TRIES {
        if pending.is_empty() || write_pending(path, &mut pending).is_ok() {
            return;
        }
        std::thread::sleep(RETRY_DELAYS[0]);
    }
    tracing::error!(
        "{} turn(s) of the conversation could not be saved to {}",
        pending.len(),
        path.display()
    );
}

/// Appends the waiting entries in order; the first that fails stays first.
fn write_pending(
    path: &Path,
    pending: &mut std::collections::VecDeque<HistoryEntry>,
) -> io::Result<()> {
    while let Some(entry) = pending.front() {
        append_history(path, entry)?;
        pending.pop_front();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_retries_a_failed_write_and_flushes_when_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        // The history's folder is a file at first: every append fails (even as root).
        let blocker = dir.path().join("chat");
        fs::write(&blocker, "not a folder").expect("write");
        let path = blocker.join("history.jsonl");
        let writer = HistoryWriter::new(path.clone()).expect("writer");
        writer.append(vec![turn(1), turn(2)]);
        let failure = writer
            .failures()
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the failure is reported");
        assert!(failure.contains("2 turn(s) wait"), "{failure}");
        writer.append(vec![turn(3)]);
        // The folder becomes possible: the next try writes everything, in order.
        fs::remove_file(&blocker).expect("remove");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while load_history(&path).map_or(0, |l| l.entries.len()) < 3 {
            assert!(std::time::Instant::now() < deadline, "retried within 10 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Turns appended just before exit are written by the time the writer is dropped.
        writer.append(vec![turn(4), turn(5)]);
        drop(writer);
        let entries = load_history(&path).expect("read").entries;
        assert_eq!(
            entries,
            (1..=5).map(turn).collect::<Vec<_>>(),
            "every turn, once, in order"
        );
        // A clear empties the file and drops what waited.
        let writer = HistoryWriter::new(path.clone()).expect("writer");
        writer.clear();
        drop(writer);
        assert!(load_history(&path).expect("read").entries.is_empty());
    }

    fn turn(n: usize) -> HistoryEntry {
        HistoryEntry {
            at: n as u64,
            turn: ChatTurn {
                user: format!("question {n} — «é»"),
                assistant: format!("answer {n}\nwith a newline"),
                recalled: None,
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
