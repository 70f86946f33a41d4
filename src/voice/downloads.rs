//! The settings panel's downloads: one catalogue voice or speech recognizer at a time on its
//! own thread (resumable, size and SHA-256 checked, then prepared), its progress read each
//! frame. A voice that is the one the settings name loads as soon as it is in; listening starts
//! again with a recognizer that came in.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use bevy::prelude::*;
use crossbeam_channel::Receiver;

use super::catalogue;
use super::output::VoiceOutput;
use super::recognizers;
use crate::AppSystems;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<VoiceDownloads>()
        .add_message::<DownloadVoice>()
        .add_message::<DownloadRecognizer>()
        .add_message::<RecognizerDownloaded>()
        .add_systems(Update, (start, poll).chain().in_set(AppSystems::Update));
}

/// Download this catalogue voice.
#[derive(Message, Debug, Clone)]
pub struct DownloadVoice(pub String);

/// Download this catalogue recognizer ([`recognizers::RECOGNIZERS`]).
#[derive(Message, Debug, Clone)]
pub struct DownloadRecognizer(pub String);

/// A recognizer came in: listening starts again with it.
#[derive(Message, Debug, Clone)]
pub struct RecognizerDownloaded;

/// What the panel shows.
#[derive(Resource)]
pub struct VoiceDownloads {
    /// (voice or recognizer id, bytes done, bytes total) of the download running.
    pub active: Option<(String, u64, u64)>,
    pub error: Option<String>,
    pub voices_dir: Option<PathBuf>,
    pub recognizers_dir: Option<PathBuf>,
    base_url: String,
    recognizer_source: recognizers::Source,
    job: Option<Job>,
}

struct Job {
    recognizer: bool,
    cancel: Arc<AtomicBool>,
    progress: Receiver<(u64, u64)>,
    thread: JoinHandle<Result<PathBuf, String>>,
}

impl Default for VoiceDownloads {
    fn default() -> Self {
        Self {
            active: None,
            error: None,
            voices_dir: super::default_voices_dir(),
            recognizers_dir: super::listen::default_recognizers_dir(),
            base_url: std::env::var("DESKTOP_MATE_VOICE_BASE_URL")
                .unwrap_or_else(|_| catalogue::BASE_URL.to_owned()),
            recognizer_source: recognizers::Source::from_env(),
            job: None,
        }
    }
}

impl VoiceDownloads {
    /// True when the catalogue voice `id` is downloaded and prepared.
    pub fn installed(&self, id: &str) -> bool {
        self.voices_dir
            .as_deref()
            .is_some_and(|dir| super::folders::installed(dir, id).is_some())
    }

    /// True when the catalogue recognizer `id` is downloaded and laid out.
    pub fn recognizer_installed(&self, id: &str) -> bool {
        self.recognizers_dir
            .as_deref()
            .zip(recognizers::find(id))
            .is_some_and(|(dir, entry)| entry.installed_in(dir))
    }
}

impl Drop for VoiceDownloads {
    /// Quitting during a download: it stops; the partial file resumes next time.
    fn drop(&mut self) {
        if let Some(job) = &self.job {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }
}

fn start(
    mut voices: MessageReader<DownloadVoice>,
    mut recognizers: MessageReader<DownloadRecognizer>,
    mut downloads: ResMut<VoiceDownloads>,
) {
    let voice = voices.read().last().cloned();
    let recognizer = recognizers.read().last().cloned();
    if downloads.job.is_some() {
        return;
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, progress) = crossbeam_channel::unbounded();
    let stop = Arc::clone(&cancel);
    let (id, total, is_recognizer, thread) = if let Some(DownloadRecognizer(id)) = recognizer {
        let Some(dir) = downloads.recognizers_dir.clone() else {
            downloads.error = Some("no home folder to keep recognizers in".into());
            return;
        };
        let Some(entry) = recognizers::find(&id) else {
            downloads.error = Some(format!("{id} is not in the recognizer catalogue"));
            return;
        };
        let source = downloads.recognizer_source.clone();
        let wanted = id.clone();
        let thread = std::thread::Builder::new()
            .name("recognizer-download".into())
            .spawn(move || {
                let mut report = |done, total| {
                    let _ = tx.send((done, total));
                };
                recognizers::pull(&dir, &wanted, &source, &mut report, &stop)
            });
        (id, entry.bytes(), true, thread)
    } else if let Some(DownloadVoice(id)) = voice {
        let Some(voices) = downloads.voices_dir.clone() else {
            downloads.error = Some("no home folder to keep voices in".into());
            return;
        };
        let Some(entry) = catalogue::find(&id) else {
            downloads.error = Some(format!("{id} is not in the voice catalogue"));
            return;
        };
        let total = entry.model_bytes + entry.config_bytes;
        let model_bytes = entry.model_bytes;
        let base_url = downloads.base_url.clone();
        let voice = id.clone();
        let thread = std::thread::Builder::new()
            .name("voice-download".into())
            .spawn(move || {
                let mut report = |file: &str, p: crate::models::Progress| {
                    // The model comes first; the small config follows it.
                    let before = if file.ends_with(".json") {
                        model_bytes
                    } else {
                        0
                    };
                    let _ = tx.send((before + p.bytes_done, total));
                };
                catalogue::pull(&voices, &voice, &base_url, &mut report, &stop)
            });
        (id, total, false, thread)
    } else {
        return;
    };
    match thread {
        Ok(thread) => {
            info!("voice: downloading {id}");
            downloads.error = None;
            downloads.active = Some((id, 0, total));
            downloads.job = Some(Job {
                recognizer: is_recognizer,
                cancel,
                progress,
                thread,
            });
        }
        Err(err) => downloads.error = Some(format!("cannot start the download: {err}")),
    }
}

fn poll(
    mut downloads: ResMut<VoiceDownloads>,
    mut output: ResMut<VoiceOutput>,
    mut recognizer_in: MessageWriter<RecognizerDownloaded>,
) {
    let Some(job) = &downloads.job else {
        return;
    };
    let latest = job.progress.try_iter().last();
    let finished = job.thread.is_finished();
    if let (Some((done, total)), Some(active)) = (latest, &mut downloads.active) {
        active.1 = done;
        active.2 = total;
    }
    if !finished {
        return;
    }
    let Some(job) = downloads.job.take() else {
        return;
    };
    let id = downloads
        .active
        .take()
        .map(|(id, _, _)| id)
        .unwrap_or_default();
    match job.thread.join() {
        Ok(Ok(folder)) => {
            info!("voice: {id} is ready in {}", folder.display());
            if job.recognizer {
                recognizer_in.write(RecognizerDownloaded);
            } else {
                output.reload();
            }
        }
        Ok(Err(message)) => {
            warn!("voice download: {message}");
            downloads.error = Some(message);
        }
        Err(_) => downloads.error = Some(format!("the download of {id} stopped unexpectedly")),
    }
}
