//! The settings panel's voice download: one catalogue voice at a time on its own thread
//! (resumable, size and SHA-256 checked, then prepared), its progress read each frame. A voice
//! that is the one the settings name loads as soon as it is in.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use bevy::prelude::*;
use crossbeam_channel::Receiver;

use super::catalogue;
use super::output::VoiceOutput;
use crate::AppSystems;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<VoiceDownloads>()
        .add_message::<DownloadVoice>()
        .add_systems(Update, (start, poll).chain().in_set(AppSystems::Update));
}

/// Download this catalogue voice.
#[derive(Message, Debug, Clone)]
pub struct DownloadVoice(pub String);

/// What the panel shows.
#[derive(Resource)]
pub struct VoiceDownloads {
    /// (voice id, bytes done, bytes total) of the download running.
    pub active: Option<(String, u64, u64)>,
    pub error: Option<String>,
    pub voices_dir: Option<PathBuf>,
    base_url: String,
    job: Option<Job>,
}

struct Job {
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
            base_url: std::env::var("DESKTOP_MATE_VOICE_BASE_URL")
                .unwrap_or_else(|_| catalogue::BASE_URL.to_owned()),
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
}

impl Drop for VoiceDownloads {
    /// Quitting during a download: it stops; the partial file resumes next time.
    fn drop(&mut self) {
        if let Some(job) = &self.job {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }
}

fn start(mut requests: MessageReader<DownloadVoice>, mut downloads: ResMut<VoiceDownloads>) {
    let Some(DownloadVoice(id)) = requests.read().last().cloned() else {
        return;
    };
    if downloads.job.is_some() {
        return;
    }
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
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, progress) = crossbeam_channel::unbounded();
    let base_url = downloads.base_url.clone();
    let stop = Arc::clone(&cancel);
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
    match thread {
        Ok(thread) => {
            info!("voice: downloading {id}");
            downloads.error = None;
            downloads.active = Some((id, 0, total));
            downloads.job = Some(Job {
                cancel,
                progress,
                thread,
            });
        }
        Err(err) => downloads.error = Some(format!("cannot start the download: {err}")),
    }
}

fn poll(mut downloads: ResMut<VoiceDownloads>, mut output: ResMut<VoiceOutput>) {
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
            output.reload();
        }
        Ok(Err(message)) => {
            warn!("voice download: {message}");
            downloads.error = Some(message);
        }
        Err(_) => downloads.error = Some(format!("the download of {id} stopped unexpectedly")),
    }
}
