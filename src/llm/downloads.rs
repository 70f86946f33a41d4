//! Downloading a model from the chat panel: the catalogue with what fits this machine, one
//! download at a time on its own thread (it can take minutes), progress and the result through
//! a channel, and the finished model remembered in the app's state and loaded.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use bevy::prelude::*;
use crossbeam_channel::{Receiver, unbounded};

use crate::AppSystems;
use crate::config::{AppState, StateFile};
use crate::hardware::HardwareReport;
use crate::llm::state::ModelChosen;
use crate::models::{
    Catalogue, DownloadError, DownloadRequest, Progress, default_models_dir, download,
    fits_machine, installed,
};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ModelDownloads>()
        .add_message::<StartDownload>()
        .add_message::<CancelDownload>()
        .add_systems(Startup, look_at_this_machine)
        .add_systems(
            Update,
            (
                read_download.in_set(AppSystems::ReadChannels),
                (start_download, cancel_download).in_set(AppSystems::Update),
            ),
        );
}

/// Download the catalogue model with this id.
#[derive(Message, Debug, Clone)]
pub struct StartDownload(pub String);

/// Stop the download in flight (its partial file stays: the next one resumes it).
#[derive(Message, Debug, Clone, Default)]
pub struct CancelDownload;

/// What the chat panel shows when there is no model yet.
#[derive(Resource)]
pub struct ModelDownloads {
    pub catalogue: Catalogue,
    /// Catalogue ids that fit this machine's RAM (or free VRAM); `None` until measured.
    pub fitting: Option<Vec<String>>,
    /// Catalogue ids already in the models folder.
    pub downloaded: Vec<String>,
    pub models_dir: Option<PathBuf>,
    /// Where catalogue files are fetched from: Hugging Face, or the mirror in `HF_ENDPOINT`
    /// (as huggingface_hub reads it).
    pub endpoint: String,
    /// The download in flight: its id and latest progress.
    pub active: Option<(String, Option<Progress>)>,
    /// Why the last download failed.
    pub error: Option<String>,
    job: Option<Job>,
    machine: Option<Receiver<(Vec<String>, Vec<String>)>>,
}

struct Job {
    cancel: Arc<AtomicBool>,
    progress: Receiver<Progress>,
    thread: JoinHandle<Result<PathBuf, DownloadError>>,
}

const HUGGING_FACE: &str = "https://huggingface.co";

impl Default for ModelDownloads {
    fn default() -> Self {
        let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| HUGGING_FACE.to_owned());
        Self::new(Catalogue::builtin(), default_models_dir(), endpoint)
    }
}

impl ModelDownloads {
    pub fn new(catalogue: Catalogue, models_dir: Option<PathBuf>, endpoint: String) -> Self {
        Self {
            catalogue,
            fitting: None,
            downloaded: Vec::new(),
            models_dir,
            endpoint,
            active: None,
            error: None,
            job: None,
            machine: None,
        }
    }
}

impl Drop for ModelDownloads {
    /// Quitting during a download: tell it to stop and let the process end without waiting
    /// (a stalled server could hold a read for its whole timeout). The partial file stays; the
    /// next download re-hashes it before resuming.
    fn drop(&mut self) {
        if let Some(job) = &self.job {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }
}

/// Which models fit and which are already here: probing the hardware takes milliseconds
/// (NVML), so it runs on a thread of its own.
fn look_at_this_machine(mut downloads: ResMut<ModelDownloads>) {
    let (sender, receiver) = unbounded();
    let catalogue = downloads.catalogue.clone();
    let dir = downloads.models_dir.clone();
    std::thread::spawn(move || {
        let hardware = HardwareReport::probe();
        let free_vram = hardware.gpu.as_ref().map(|g| g.vram_free_bytes);
        let fitting = fits_machine(&catalogue, hardware.memory.total_bytes, free_vram)
            .into_iter()
            .map(|entry| entry.id.clone())
            .collect();
        let here = dir
            .and_then(|dir| installed(&dir, &catalogue).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.in_catalogue)
            .map(|m| m.id)
            .collect();
        let _ = sender.send((fitting, here));
    });
    downloads.machine = Some(receiver);
}

fn start_download(
    mut requests: MessageReader<StartDownload>,
    mut downloads: ResMut<ModelDownloads>,
) {
    let Some(StartDownload(id)) = requests.read().last().cloned() else {
        return;
    };
    if downloads.job.is_some() {
        return;
    }
    let Some(entry) = downloads.catalogue.get(&id).cloned() else {
        downloads.error = Some(format!("{id} is not in the catalogue"));
        return;
    };
    let Some(dir) = downloads.models_dir.clone() else {
        downloads.error = Some("no data folder on this system to keep models in".into());
        return;
    };
    let mut request = DownloadRequest::for_entry(&entry, dir);
    request.url = request
        .url
        .replacen(HUGGING_FACE, downloads.endpoint.trim_end_matches('/'), 1);
    info!("downloading {} from {}", entry.name, request.url);
    let cancel = Arc::new(AtomicBool::new(false));
    let (sender, progress) = unbounded();
    let thread = {
        let cancel = Arc::clone(&cancel);
        std::thread::spawn(move || {
            download(
                &request,
                &mut |p| {
                    let _ = sender.send(p);
                },
                &cancel,
            )
        })
    };
    downloads.error = None;
    downloads.active = Some((id, None));
    downloads.job = Some(Job {
        cancel,
        progress,
        thread,
    });
}

fn cancel_download(mut requests: MessageReader<CancelDownload>, downloads: Res<ModelDownloads>) {
    if requests.read().count() > 0
        && let Some(job) = &downloads.job
    {
        job.cancel.store(true, Ordering::Relaxed);
    }
}

fn read_download(
    mut downloads: ResMut<ModelDownloads>,
    mut state: ResMut<AppState>,
    state_file: Res<StateFile>,
    mut chosen: MessageWriter<ModelChosen>,
) {
    let downloads = &mut *downloads;
    if let Some(machine) = &downloads.machine
        && let Ok((fitting, here)) = machine.try_recv()
    {
        downloads.fitting = Some(fitting);
        downloads.downloaded = here;
        downloads.machine = None;
    }
    let Some(job) = &downloads.job else { return };
    if let Some(latest) = job.progress.try_iter().last()
        && let Some((_, progress)) = &mut downloads.active
    {
        *progress = Some(latest);
    }
    if !job.thread.is_finished() {
        return;
    }
    let Some(job) = downloads.job.take() else {
        return;
    };
    let id = downloads
        .active
        .take()
        .map(|(id, _)| id)
        .unwrap_or_default();
    match job.thread.join() {
        Ok(Ok(path)) => {
            info!("model {id} downloaded to {}", path.display());
            downloads.downloaded.push(id);
            state.model = Some(path.clone());
            if let Err(reason) = state_file.save(&state) {
                warn!("the downloaded model is used now but not remembered: {reason}");
            }
            chosen.write(ModelChosen(path));
        }
        Ok(Err(err)) => {
            warn!("{err}");
            downloads.error = Some(err.to_string());
        }
        Err(_) => downloads.error = Some("the download stopped unexpectedly".into()),
    }
}
