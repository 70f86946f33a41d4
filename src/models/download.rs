//! Model download engine: resumable, verified, cancellable GGUF downloads over HTTP(S).
//!
//! Bevy-free and blocking: run [`download`] on a worker thread (or a Bevy `AsyncComputeTaskPool`
//! task) and forward [`Progress`] over a channel.
//!
//! A download streams into `<models_dir>/<file>.part`. Re-running it resumes that file with an
//! HTTP `Range` request. The SHA-256 is computed while the bytes arrive (the existing part is
//! re-hashed first on resume), checked together with the size, and only then is the part
//! fsynced and renamed atomically to `<models_dir>/<file>`. So a file with the final name is
//! always complete.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::catalogue::{Catalogue, CatalogueEntry, is_plain_file_name, is_sha256_hex};
use crate::hardware::human_bytes;

const BUFFER_SIZE: usize = 64 * 1024;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
const SPEED_WINDOW: Duration = Duration::from_secs(3);

/// Suffix of an unfinished download next to its final name.
pub const PART_SUFFIX: &str = ".part";

/// The folder models are downloaded into: `<data dir>/models`, e.g.
/// `~/.local/share/desktop-mate/models` on Linux, `%APPDATA%\desktop-mate\data\models` on
/// Windows, `~/Library/Application Support/desktop-mate/models` on macOS.
///
/// Our own folder rather than the Hugging Face cache (`~/.cache/huggingface/hub`) because:
/// it is ours to manage (listing and removing cannot disturb other tools' caches), it holds
/// one plainly named file per model instead of content-addressed blobs behind symlinks, the
/// user can find, back up or delete models in a file manager, and our resumable `.part` files
/// live beside the finished models without colliding with another client's lock/incomplete
/// files. `None` when the OS reports no home directory.
pub fn default_models_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "desktop-mate").map(|d| d.data_dir().join("models"))
}

/// How the free-space check learns how much room there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeSpace {
    /// Ask the file system holding the models folder (statvfs / GetDiskFreeSpaceExW via `fs4`).
    Probe,
    /// Use this many bytes instead (tests, or a caller that wants to keep a reserve).
    Assume(u64),
}

/// What to download and where.
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub url: String,
    pub models_dir: PathBuf,
    /// Plain file name (no directories) inside `models_dir`.
    pub file_name: String,
    /// Exact size when known (catalogue entries); checked before the rename.
    pub expected_size: Option<u64>,
    /// Lower-case hex SHA-256. `None`: verified by size only, logged as unverified.
    pub sha256: Option<String>,
    /// Limit for establishing the connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Longest wait for any data (response headers or the next body bytes).
    pub read_timeout: Duration,
    pub free_space: FreeSpace,
}

impl DownloadRequest {
    pub fn new(
        url: impl Into<String>,
        models_dir: impl Into<PathBuf>,
        file_name: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            models_dir: models_dir.into(),
            file_name: file_name.into(),
            expected_size: None,
            sha256: None,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            free_space: FreeSpace::Probe,
        }
    }

    pub fn for_entry(entry: &CatalogueEntry, models_dir: impl Into<PathBuf>) -> Self {
        Self {
            expected_size: Some(entry.size_bytes),
            sha256: entry.sha256.clone(),
            ..Self::new(entry.url(), models_dir, entry.file.clone())
        }
    }

    pub fn final_path(&self) -> PathBuf {
        self.models_dir.join(&self.file_name)
    }

    pub fn part_path(&self) -> PathBuf {
        self.models_dir
            .join(format!("{}{PART_SUFFIX}", self.file_name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Re-hashing the bytes already in the `.part` file before resuming.
    Rehashing,
    Downloading,
    /// Download finished; checking size and SHA-256.
    Verifying,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    /// Bytes of the file on disk so far (includes a resumed part).
    pub bytes_done: u64,
    /// Full file size, when the catalogue or the server told us.
    pub bytes_total: Option<u64>,
    /// Recent download speed (last few seconds); 0 while not downloading.
    pub bytes_per_second: f64,
    pub eta: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{0:?} is not a plain file name")]
    InvalidFileName(String),
    #[error("{0:?} is not a SHA-256 (expected 64 lower-case hex digits)")]
    InvalidChecksum(String),
    #[error(
        "not enough free disk space in {}: the download needs {} more but only {} is free; free some space or choose a smaller model",
        dir.display(), human_bytes(*needed), human_bytes(*available)
    )]
    InsufficientSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("the disk holding {} is full; {bytes_done} bytes are kept for resuming once space is freed", path.display())]
    DiskFull { path: PathBuf, bytes_done: u64 },
    #[error("could not connect to {url} within {} s (no network, or the server is unreachable)", timeout.as_secs_f32())]
    ConnectTimeout { url: String, timeout: Duration },
    #[error("{url} sent no data for {} s; try again later (anything already downloaded is kept)", timeout.as_secs_f32())]
    ReadTimeout { url: String, timeout: Duration },
    #[error("{url} was not found (HTTP 404): the model may have been moved or renamed")]
    NotFound { url: String },
    #[error("{url} refused access (HTTP {status}): the model is gated or needs a login")]
    Unauthorized { url: String, status: u16 },
    #[error("the server failed for {url} (HTTP {status}); try again later")]
    ServerError { url: String, status: u16 },
    #[error("unexpected HTTP {status} from {url}")]
    UnexpectedStatus { url: String, status: u16 },
    #[error("network error for {url}: {message}")]
    Network { url: String, message: String },
    #[error("the connection to {url} broke after {bytes_done} of {} bytes ({message}); the partial download is kept, try again to resume", total.map_or("?".to_owned(), |t| t.to_string()))]
    Interrupted {
        url: String,
        bytes_done: u64,
        total: Option<u64>,
        message: String,
    },
    #[error("download cancelled; {bytes_done} bytes kept in {} to resume later", part.display())]
    Cancelled { part: PathBuf, bytes_done: u64 },
    #[error("{file}: expected {expected} bytes but {actual} arrived; the download was deleted")]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{url} offers {offered} bytes but {expected} were expected; the catalogue entry may be out of date"
    )]
    ServerSizeMismatch {
        url: String,
        expected: u64,
        offered: u64,
    },
    #[error(
        "{file} is corrupt: SHA-256 {actual} does not match the expected {expected}; the download was deleted"
    )]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file} is already being downloaded")]
    AlreadyInProgress { file: String },
    #[error("{0:?} is not in the catalogue (see `desktop-mate model list`) nor a .gguf URL")]
    UnknownModel(String),
    #[error("no installed model is called {0:?}")]
    NotInstalled(String),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> DownloadError + 'a {
    move |source| DownloadError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Downloads `request.url` to `<models_dir>/<file_name>` and returns that path.
///
/// Resumes an existing `.part`, reports progress at most every 100 ms (and at the end), stops
/// within one read (at most `read_timeout`) after `cancel` is set, keeping the part. A file
/// that already exists with the expected size is returned without a request.
pub fn download(
    request: &DownloadRequest,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<PathBuf, DownloadError> {
    if !is_plain_file_name(&request.file_name) {
        return Err(DownloadError::InvalidFileName(request.file_name.clone()));
    }
    if let Some(sha) = &request.sha256
        && !is_sha256_hex(sha)
    {
        return Err(DownloadError::InvalidChecksum(sha.clone()));
    }
    let dir = &request.models_dir;
    std::fs::create_dir_all(dir).map_err(io_err("create the models folder", dir))?;
    let final_path = request.final_path();
    let part_path = request.part_path();

    if let Ok(meta) = std::fs::metadata(&final_path)
        && meta.is_file()
        && request.expected_size.is_none_or(|size| size == meta.len())
    {
        info!(path = %final_path.display(), "model already downloaded");
        return Ok(final_path);
    }

    let mut part = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&part_path)
        .map_err(io_err("open", &part_path))?;
    // Two downloads of one file (two clicks, two app instances) would interleave writes.
    match part.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(DownloadError::AlreadyInProgress {
                file: request.file_name.clone(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err("lock", &part_path)(e)),
    }

    let mut job = Job {
        request,
        part_path: &part_path,
        part: &mut part,
        hasher: request.sha256.as_ref().map(|_| Sha256::new()),
        have: 0,
        total: request.expected_size,
        progress,
        cancel,
    };
    let result = job.run();
    drop(part); // closes and unlocks before the file is removed or renamed
    if let Err(e) = result {
        let corrupt = matches!(
            e,
            DownloadError::SizeMismatch { .. } | DownloadError::ChecksumMismatch { .. }
        );
        if corrupt && let Err(remove) = std::fs::remove_file(&part_path) {
            warn!(path = %part_path.display(), error = %remove, "cannot remove a corrupt partial download");
        }
        return Err(e);
    }
    std::fs::rename(&part_path, &final_path)
        .map_err(io_err("rename the finished download to", &final_path))?;
    sync_dir(dir);
    info!(path = %final_path.display(), "model download complete");
    Ok(final_path)
}

struct Job<'a> {
    request: &'a DownloadRequest,
    part_path: &'a Path,
    part: &'a mut File,
    /// `None` when there is no checksum to compare against.
    hasher: Option<Sha256>,
    /// Bytes in the part file (and fed to the hasher).
    have: u64,
    total: Option<u64>,
    progress: &'a mut dyn FnMut(Progress),
    cancel: &'a AtomicBool,
}

enum Start {
    /// Append the body to what we have.
    Resume,
    /// The body is the whole file: start over.
    Restart,
}

impl Job<'_> {
    fn run(&mut self) -> Result<(), DownloadError> {
        let request = self.request;
        let url = &request.url;
        self.have = self
            .part
            .metadata()
            .map_err(io_err("read", self.part_path))?
            .len();
        if let Some(total) = self.total
            && self.have > total
        {
            warn!(part = %self.part_path.display(), "partial download is larger than the model; starting over");
            self.truncate()?;
        }
        if let Some(total) = self.total {
            self.check_space(total - self.have)?;
        }
        if self.have > 0 {
            info!(part = %self.part_path.display(), bytes = self.have, "resuming download");
            self.rehash()?;
        }

        // One retry without Range when the server answers a range request with something we
        // cannot append (416 for a part it considers wrong, or a mismatching Content-Range).
        for _ in 0..2 {
            if self.total == Some(self.have) {
                return self.finish();
            }
            if self.cancel.load(Ordering::Relaxed) {
                return Err(self.cancelled());
            }
            let agent = self.agent();
            let mut call = agent.get(url.as_str());
            if self.have > 0 {
                call = call.header("Range", format!("bytes={}-", self.have));
            }
            let response = call.call().map_err(|e| self.map_ureq_error(e))?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let content_length =
                header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
            let start = match status {
                200 => {
                    self.check_offered(content_length)?;
                    Start::Restart
                }
                206 => match parse_content_range(header("content-range").as_deref()) {
                    Some((first, _, size)) if first == self.have => {
                        self.check_offered(size)?;
                        if self.total.is_none() {
                            self.total = size.or(content_length.map(|len| first + len));
                        }
                        Start::Resume
                    }
                    other => {
                        warn!(url, content_range = ?other, have = self.have, "server answered the range request with another range; starting over");
                        self.truncate()?;
                        continue;
                    }
                },
                416 if self.have > 0 => {
                    // "Range not satisfiable": we asked for bytes past the end.
                    let size = header("content-range").and_then(|v| {
                        v.trim()
                            .strip_prefix("bytes */")
                            .and_then(|n| n.trim().parse::<u64>().ok())
                    });
                    if size == Some(self.have) || (size.is_none() && self.total.is_none()) {
                        info!(url, "server says the partial download is already complete");
                        self.total = Some(self.have);
                        return self.finish();
                    }
                    warn!(
                        url,
                        have = self.have,
                        ?size,
                        "server rejected the resume; starting over"
                    );
                    self.truncate()?;
                    continue;
                }
                404 | 410 => return Err(DownloadError::NotFound { url: url.clone() }),
                401 | 403 => {
                    return Err(DownloadError::Unauthorized {
                        url: url.clone(),
                        status,
                    });
                }
                500..=599 => {
                    return Err(DownloadError::ServerError {
                        url: url.clone(),
                        status,
                    });
                }
                _ => {
                    return Err(DownloadError::UnexpectedStatus {
                        url: url.clone(),
                        status,
                    });
                }
            };
            if let Start::Restart = start {
                if self.have > 0 {
                    warn!(
                        url,
                        "server ignored the range request; downloading the whole file again"
                    );
                    self.truncate()?;
                }
                if self.total.is_none() {
                    self.total = content_length;
                }
            }
            if let Some(total) = self.total
                && self.request.expected_size.is_none()
            {
                // First time we learn the size: check the room now.
                self.check_space(total.saturating_sub(self.have))?;
            }
            let body = response.into_body().into_reader();
            self.stream(body)?;
            return self.finish();
        }
        Err(DownloadError::Network {
            url: url.clone(),
            message: "the server does not handle resuming consistently".to_owned(),
        })
    }

    fn agent(&self) -> ureq::Agent {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(self.request.connect_timeout))
            .timeout_recv_response(Some(self.request.read_timeout))
            .timeout_per_read(Some(self.request.read_timeout))
            .http_status_as_error(false)
            .user_agent(concat!("desktop-mate/", env!("CARGO_PKG_VERSION")))
            .build();
        config.into()
    }

    /// A server whose full size differs from the catalogue's is serving another file.
    fn check_offered(&self, offered: Option<u64>) -> Result<(), DownloadError> {
        match (self.request.expected_size, offered) {
            (Some(expected), Some(offered)) if expected != offered => {
                Err(DownloadError::ServerSizeMismatch {
                    url: self.request.url.clone(),
                    expected,
                    offered,
                })
            }
            _ => Ok(()),
        }
    }

    fn check_space(&self, needed: u64) -> Result<(), DownloadError> {
        let dir = &self.request.models_dir;
        let available = match self.request.free_space {
            FreeSpace::Assume(bytes) => bytes,
            FreeSpace::Probe => match fs4::available_space(dir) {
                Ok(bytes) => bytes,
                Err(e) => {
                    // Not fatal: the write itself will report a full disk.
                    warn!(dir = %dir.display(), error = %e, "cannot read free disk space; not checking");
                    return Ok(());
                }
            },
        };
        if needed > available {
            return Err(DownloadError::InsufficientSpace {
                dir: dir.clone(),
                needed,
                available,
            });
        }
        Ok(())
    }

    fn truncate(&mut self) -> Result<(), DownloadError> {
        self.part
            .set_len(0)
            .map_err(io_err("truncate", self.part_path))?;
        self.have = 0;
        if self.hasher.is_some() {
            self.hasher = Some(Sha256::new());
        }
        Ok(())
    }

    fn rehash(&mut self) -> Result<(), DownloadError> {
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(());
        };
        let part_path = self.part_path;
        self.part
            .seek(SeekFrom::Start(0))
            .map_err(io_err("read", part_path))?;
        let mut buf = vec![0u8; 1024 * 1024];
        let mut done = 0u64;
        let mut last_report = Instant::now();
        while done < self.have {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(DownloadError::Cancelled {
                    part: part_path.to_owned(),
                    bytes_done: self.have,
                });
            }
            let want = buf.len().min((self.have - done) as usize);
            let n = self
                .part
                .read(&mut buf[..want])
                .map_err(io_err("read", part_path))?;
            if n == 0 {
                break; // shrank under us; the length below is what counts
            }
            hasher.update(&buf[..n]);
            done += n as u64;
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = Instant::now();
                (self.progress)(Progress {
                    stage: Stage::Rehashing,
                    bytes_done: done,
                    bytes_total: self.total,
                    bytes_per_second: 0.0,
                    eta: None,
                });
            }
        }
        self.have = done;
        Ok(())
    }

    fn stream(&mut self, mut body: impl Read) -> Result<(), DownloadError> {
        let part_path = self.part_path;
        self.part
            .seek(SeekFrom::Start(self.have))
            .map_err(io_err("write", part_path))?;
        let mut buf = vec![0u8; BUFFER_SIZE];
        let mut speed = SpeedMeter::new(self.have);
        let mut last_report = Instant::now();
        self.report(Stage::Downloading, &speed);
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                let _ = self.part.flush();
                return Err(self.cancelled());
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            if let Err(e) = self.part.write_all(&buf[..n]) {
                return Err(if e.kind() == io::ErrorKind::StorageFull {
                    // Drop a partly written buffer so the part stays a clean prefix (and
                    // unhashed bytes never count as downloaded).
                    let _ = self.part.set_len(self.have);
                    DownloadError::DiskFull {
                        path: part_path.to_owned(),
                        bytes_done: self.have,
                    }
                } else {
                    io_err("write", part_path)(e)
                });
            }
            if let Some(hasher) = self.hasher.as_mut() {
                hasher.update(&buf[..n]);
            }
            self.have += n as u64;
            speed.record(self.have);
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = Instant::now();
                self.report(Stage::Downloading, &speed);
            }
            if let Some(total) = self.total
                && self.have > total
            {
                break; // finish() reports the size mismatch
            }
        }
        self.report(Stage::Downloading, &speed);
        match self.total {
            Some(total) if self.have < total => Err(DownloadError::Interrupted {
                url: self.request.url.clone(),
                bytes_done: self.have,
                total: self.total,
                message: "the server closed the connection early".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn report(&mut self, stage: Stage, speed: &SpeedMeter) {
        let rate = speed.bytes_per_second();
        let eta = match self.total {
            Some(total) if rate > 0.0 => Some(Duration::from_secs_f64(
                total.saturating_sub(self.have) as f64 / rate,
            )),
            _ => None,
        };
        (self.progress)(Progress {
            stage,
            bytes_done: self.have,
            bytes_total: self.total,
            bytes_per_second: rate,
            eta,
        });
    }

    fn finish(&mut self) -> Result<(), DownloadError> {
        (self.progress)(Progress {
            stage: Stage::Verifying,
            bytes_done: self.have,
            bytes_total: self.total,
            bytes_per_second: 0.0,
            eta: None,
        });
        let part_path = self.part_path;
        let file = &self.request.file_name;
        let actual_len = self
            .part
            .metadata()
            .map_err(io_err("read", part_path))?
            .len();
        let expected_len = self.request.expected_size.or(self.total);
        if let Some(expected) = expected_len
            && expected != actual_len
        {
            return Err(DownloadError::SizeMismatch {
                file: file.clone(),
                expected,
                actual: actual_len,
            });
        }
        match (&self.request.sha256, self.hasher.take()) {
            (Some(expected), Some(hasher)) => {
                let actual = to_hex(&hasher.finalize());
                if &actual != expected {
                    return Err(DownloadError::ChecksumMismatch {
                        file: file.clone(),
                        expected: expected.clone(),
                        actual,
                    });
                }
                info!(file = %file, sha256 = %actual, "checksum verified");
            }
            _ => warn!(
                file = %file,
                bytes = actual_len,
                "no SHA-256 known for this model: checked the size only, the file is UNVERIFIED"
            ),
        }
        // Data must be on disk before the rename makes the file look complete.
        self.part
            .sync_all()
            .map_err(io_err("flush to disk", part_path))?;
        Ok(())
    }

    fn cancelled(&self) -> DownloadError {
        info!(part = %self.part_path.display(), bytes = self.have, "download cancelled; part kept");
        DownloadError::Cancelled {
            part: self.part_path.to_owned(),
            bytes_done: self.have,
        }
    }

    fn read_error(&self, e: io::Error) -> DownloadError {
        match ureq::Error::from(e) {
            ureq::Error::Timeout(_) => DownloadError::ReadTimeout {
                url: self.request.url.clone(),
                timeout: self.request.read_timeout,
            },
            other => DownloadError::Interrupted {
                url: self.request.url.clone(),
                bytes_done: self.have,
                total: self.total,
                message: other.to_string(),
            },
        }
    }

    fn map_ureq_error(&self, e: ureq::Error) -> DownloadError {
        let url = self.request.url.clone();
        match e {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                DownloadError::ConnectTimeout {
                    url,
                    timeout: self.request.connect_timeout,
                }
            }
            ureq::Error::Timeout(_) => DownloadError::ReadTimeout {
                url,
                timeout: self.request.read_timeout,
            },
            ureq::Error::HostNotFound => DownloadError::Network {
                url,
                message: "host not found (is the computer online?)".to_owned(),
            },
            ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                DownloadError::Network {
                    url,
                    message: "connection refused".to_owned(),
                }
            }
            other => DownloadError::Network {
                url,
                message: other.to_string(),
            },
        }
    }
}

/// `bytes first-last/size` -> (first, last, size); size is `None` for `*`.
fn parse_content_range(value: Option<&str>) -> Option<(u64, u64, Option<u64>)> {
    let rest = value?.trim().strip_prefix("bytes ")?;
    let (range, size) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let size = match size.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?, size))
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Makes the rename durable (Unix; directories cannot be opened for sync on Windows).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        warn!(dir = %dir.display(), error = %e, "cannot sync the models folder");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Average speed over the last few seconds.
struct SpeedMeter {
    samples: VecDeque<(Instant, u64)>,
}

impl SpeedMeter {
    fn new(bytes: u64) -> Self {
        Self {
            samples: VecDeque::from([(Instant::now(), bytes)]),
        }
    }

    fn record(&mut self, bytes: u64) {
        let now = Instant::now();
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > SPEED_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn bytes_per_second(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) => {
                let secs = t1.duration_since(*t0).as_secs_f64();
                if secs > 0.0 {
                    (b1 - b0) as f64 / secs
                } else {
                    0.0
                }
            }
            _ => 0.0,
        }
    }
}

/// A model file in the models folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledModel {
    /// The catalogue id, or the file name for a GGUF the user put there.
    pub id: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Whether the file belongs to a catalogue entry.
    pub in_catalogue: bool,
}

/// Catalogue entries whose file is present (in catalogue order), then any other `*.gguf`
/// in the folder (by name). Unfinished `.part` files are not listed. A missing folder is empty.
pub fn installed(
    models_dir: &Path,
    catalogue: &Catalogue,
) -> Result<Vec<InstalledModel>, DownloadError> {
    let mut out = Vec::new();
    for entry in &catalogue.models {
        let path = models_dir.join(&entry.file);
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.is_file()
        {
            out.push(InstalledModel {
                id: entry.id.clone(),
                path,
                size_bytes: meta.len(),
                in_catalogue: true,
            });
        }
    }
    let dir = match std::fs::read_dir(models_dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err("list", models_dir)(e)),
    };
    let mut others = Vec::new();
    for item in dir {
        let item = item.map_err(io_err("list", models_dir))?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        let is_gguf = Path::new(&name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        if !is_gguf || catalogue.by_file(&name).is_some() {
            continue;
        }
        let Ok(meta) = item.metadata() else { continue };
        if meta.is_file() {
            others.push(InstalledModel {
                id: name.clone(),
                path: item.path(),
                size_bytes: meta.len(),
                in_catalogue: false,
            });
        }
    }
    others.sort_by(|a, b| a.id.cmp(&b.id));
    out.extend(others);
    Ok(out)
}

/// Deletes a model by catalogue id (or by file name for a non-catalogue GGUF), together with
/// any unfinished `.part` of it. Returns the bytes freed; `NotInstalled` when nothing was there.
pub fn remove(models_dir: &Path, catalogue: &Catalogue, id: &str) -> Result<u64, DownloadError> {
    let file = match catalogue.get(id) {
        Some(entry) => entry.file.clone(),
        None if is_plain_file_name(id)
            && Path::new(id)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf")) =>
        {
            id.to_owned()
        }
        None => return Err(DownloadError::NotInstalled(id.to_owned())),
    };
    let mut freed = 0;
    let mut found = false;
    for path in [
        models_dir.join(&file),
        models_dir.join(format!("{file}{PART_SUFFIX}")),
    ] {
        let len = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta.len(),
            _ => continue,
        };
        std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
        info!(path = %path.display(), "model removed");
        freed += len;
        found = true;
    }
    if !found {
        return Err(DownloadError::NotInstalled(id.to_owned()));
    }
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range(Some("bytes 10-99/100")),
            Some((10, 99, Some(100)))
        );
        assert_eq!(parse_content_range(Some("bytes 0-4/*")), Some((0, 4, None)));
        assert_eq!(parse_content_range(Some("bytes */100")), None);
        assert_eq!(parse_content_range(None), None);
    }

    #[test]
    fn plain_file_names_only() {
        assert!(is_plain_file_name("model.gguf"));
        for bad in ["", ".", "..", "a/b.gguf", "..\\x.gguf", "/etc/passwd"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn default_models_dir_ends_in_models() {
        if let Some(dir) = default_models_dir() {
            assert!(dir.ends_with("models"));
            assert!(dir.to_string_lossy().contains("desktop-mate"));
        }
    }

    fn test_catalogue() -> Catalogue {
        Catalogue::parse(
            r#"(models: [
                (id: "a", name: "A", repo: "o/a", file: "a.gguf", size_bytes: 3, sha256: None,
                 licence: "MIT", ram_mib: 1, good_for: "t"),
                (id: "b", name: "B", repo: "o/b", file: "b.gguf", size_bytes: 3, sha256: None,
                 licence: "MIT", ram_mib: 1, good_for: "t"),
            ])"#,
        )
        .unwrap()
    }

    #[test]
    fn installed_lists_catalogue_then_other_ggufs_and_remove_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let c = test_catalogue();
        assert!(installed(&dir.join("missing"), &c).unwrap().is_empty());
        std::fs::write(dir.join("b.gguf"), b"bbb").unwrap();
        std::fs::write(dir.join("mine.GGUF"), b"mm").unwrap();
        std::fs::write(dir.join("a.gguf.part"), b"a").unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        let list = installed(dir, &c).unwrap();
        let ids: Vec<_> = list
            .iter()
            .map(|m| (m.id.as_str(), m.in_catalogue, m.size_bytes))
            .collect();
        assert_eq!(ids, vec![("b", true, 3), ("mine.GGUF", false, 2)]);

        assert_eq!(remove(dir, &c, "b").unwrap(), 3);
        assert!(!dir.join("b.gguf").exists());
        // A catalogue model with only a part: removing it frees the part.
        assert_eq!(remove(dir, &c, "a").unwrap(), 1);
        assert!(!dir.join("a.gguf.part").exists());
        assert_eq!(remove(dir, &c, "mine.GGUF").unwrap(), 2);
        assert!(matches!(
            remove(dir, &c, "b"),
            Err(DownloadError::NotInstalled(_))
        ));
        assert!(matches!(
            remove(dir, &c, "../x.gguf"),
            Err(DownloadError::NotInstalled(_))
        ));
        assert!(matches!(
            remove(dir, &c, "notes.txt"),
            Err(DownloadError::NotInstalled(_))
        ));
        assert!(dir.join("notes.txt").exists());
    }
}
