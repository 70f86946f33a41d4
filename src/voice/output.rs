//! The voice in the app: the worker thread started and stopped from the `voice` settings, fed
//! with the reply as it streams, silenced by Stop, a new message or Clear; its events turned
//! into [`VoiceStatus`] (the chat panel's line), the mouth's queue and the metrics.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bevy::prelude::*;

use super::lipsync::MouthTrack;
use super::playback::PlayClock;
use super::server::SpeechServer;
use super::worker::{LoadWatch, VoiceConfig, VoiceEvent, VoiceWorker};
use crate::AppSystems;
use crate::config::{
    Guarded, LoadGuard, RetrySkipped, Settings, SettingsChanged, SettingsFile, SettingsWriter,
    VoiceSettings,
};
use crate::desktop::DesktopAction;
use crate::llm::{ClearHistory, LlmStatus, ReplyFinished, ReplyText, SendChat, StopReply};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<VoiceStatus>()
        .init_resource::<VoiceOutput>()
        .init_resource::<VoiceTimings>()
        .add_message::<SaySample>()
        // The desktop plugin's (the tray, hotkeys); a headless app has none.
        .add_message::<DesktopAction>()
        .add_systems(
            Update,
            (toggle_from_desktop, configure, follow_chat, read_events)
                .chain()
                .in_set(AppSystems::Update),
        );
}

/// What the voice is doing, for the chat panel and the settings.
#[derive(Resource, Debug, Clone, PartialEq, Default)]
pub enum VoiceStatus {
    /// `voice.enabled` is off: replies are text only.
    #[default]
    Off,
    Loading,
    Ready(PathBuf),
    /// Why the voice cannot speak; the chat goes on in text.
    Failed(String),
}

/// Say a text with the voice now (the settings' sample button).
#[derive(Message, Debug, Clone)]
pub struct SaySample(pub String);

/// The worker and what its sentences need for the mouth.
#[derive(Resource, Default)]
pub struct VoiceOutput {
    worker: Option<VoiceWorker>,
    /// The settings the worker was started with (speed and volume apply live).
    started_with: Option<VoiceConfig>,
    pub(super) clock: Option<Arc<PlayClock>>,
    /// Queued sentences' mouths: (id, sample rate, track), oldest first.
    pub(super) tracks: VecDeque<(u64, u32, MouthTrack)>,
    /// After Stop or Clear, the stopped reply's last pieces are not spoken (until the next
    /// message).
    deaf: bool,
    /// Load the voice again (a download finished).
    reload: bool,
}

impl VoiceOutput {
    /// True while sentences wait on the speaker or play.
    pub fn speaking(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| w.queued() > 0)
    }

    /// Starts the voice again at the next frame (a voice was downloaded).
    pub fn reload(&mut self) {
        self.reload = true;
    }

    fn stop(&mut self) {
        if let Some(worker) = &self.worker {
            worker.stop();
        }
        self.tracks.clear();
    }
}

/// The voice's measurements, for the overlay and tests.
#[derive(Resource, Debug, Clone, Default)]
pub struct VoiceTimings {
    pub load_ms: Option<f64>,
    /// Synthesis time over audio length, last sentence.
    pub real_time_factor: Option<f64>,
    pub last_synthesis_ms: Option<f64>,
    pub sentences_spoken: u64,
    pub audio_seconds: f64,
}

fn wanted(settings: &VoiceSettings) -> Option<VoiceConfig> {
    settings.enabled.then(|| VoiceConfig {
        voice: PathBuf::from(settings.voice.trim()),
        espeak_ng: settings.espeak_ng.clone(),
        device: settings.device.clone(),
        speed: settings.speed,
        volume: settings.volume,
        server: settings.server.as_ref().map(|server| SpeechServer {
            base_url: server.base_url.clone(),
            model: server.model.clone(),
            voice: server.voice.clone(),
            api_key_env: server.api_key_env.clone(),
        }),
    })
}

/// The same voice, program, device and server: speed and volume change without a restart.
fn same_load(a: &VoiceConfig, b: &VoiceConfig) -> bool {
    a.voice == b.voice && a.espeak_ng == b.espeak_ng && a.device == b.device && a.server == b.server
}

struct GuardWatch(LoadGuard);

impl LoadWatch for GuardWatch {
    fn should_skip(&self, folder: &Path) -> bool {
        self.0.should_skip(Guarded::Voice, folder)
    }

    fn begin(&self, folder: &Path) {
        self.0.begin(Guarded::Voice, folder);
    }

    fn end(&self) {
        self.0.end(Guarded::Voice);
    }
}

/// The tray's Voice item and the voice hotkey: `voice.enabled` flipped and saved (comments
/// kept); off silences the voice at once, before the settings take effect.
fn toggle_from_desktop(
    mut actions: MessageReader<DesktopAction>,
    mut file: ResMut<SettingsFile>,
    mut writer: SettingsWriter,
    mut output: ResMut<VoiceOutput>,
) {
    for _ in actions.read().filter(|a| **a == DesktopAction::ToggleVoice) {
        let enabled = !writer.current().voice.enabled;
        if !enabled {
            output.stop();
        }
        info!("voice {}", if enabled { "on" } else { "off" });
        if let Err(reason) = writer.save_switch(&mut file, |s| s.voice.enabled = enabled) {
            warn!("voice not switched: {reason}");
        }
    }
}

/// Starts the worker at start (once the model is loaded) and when the voice settings change; a
/// voice skipped by the crash guard loads again on "Try again".
fn configure(
    mut changes: MessageReader<SettingsChanged>,
    mut retries: MessageReader<RetrySkipped>,
    settings: Res<Settings>,
    guard: Option<Res<LoadGuard>>,
    llm: Res<LlmStatus>,
    mut output: ResMut<VoiceOutput>,
    mut status: ResMut<VoiceStatus>,
    mut started: Local<bool>,
) {
    let retry = retries.read().any(|r| r.0 == Guarded::Voice)
        && guard
            .as_ref()
            .is_some_and(|g| g.retry(Guarded::Voice).is_some());
    let changed = changes.read().any(|c| c.voice);
    if !*started {
        // The first frame: the model's load (if any) starts in it; the voice looks next frame.
        *started = true;
        output.reload = true;
        return;
    }
    let retry = retry || std::mem::take(&mut output.reload);
    if !changed && !retry {
        return;
    }
    let wanted = wanted(&settings.voice);
    match (&wanted, &output.started_with) {
        (Some(new), Some(old)) if same_load(new, old) && !retry => {
            if let Some(worker) = &output.worker {
                worker.set_speed(new.speed);
                worker.set_volume(new.volume);
            }
            output.started_with = wanted;
            return;
        }
        (None, None) => {
            *status = VoiceStatus::Off;
            return;
        }
        _ => {}
    }
    // Not while the model loads (its warm-up included): a crash during the two loads would be
    // blamed on both by the crash guard (and they would share the cores).
    if wanted.is_some() && matches!(*llm, LlmStatus::Loading | LlmStatus::WarmingUp) {
        output.reload = true;
        *status = VoiceStatus::Loading;
        return;
    }
    output.stop();
    output.worker = None;
    output.clock = None;
    output.started_with = wanted.clone();
    let Some(config) = wanted else {
        *status = VoiceStatus::Off;
        return;
    };
    let watch = guard
        .as_deref()
        .map(|g| Box::new(GuardWatch(g.clone())) as Box<dyn LoadWatch>);
    info!("voice: loading {}", config.voice.display());
    output.worker = Some(VoiceWorker::start(config, watch));
    *status = VoiceStatus::Loading;
}

fn follow_chat(
    mut sends: MessageReader<SendChat>,
    mut stops: MessageReader<StopReply>,
    mut clears: MessageReader<ClearHistory>,
    mut text: MessageReader<ReplyText>,
    mut finished: MessageReader<ReplyFinished>,
    mut samples: MessageReader<SaySample>,
    mut output: ResMut<VoiceOutput>,
) {
    // A new message, Stop or Clear silences the voice and drops its queue.
    let sent = sends.read().count() > 0;
    let stopped = stops.read().count() + clears.read().count() > 0;
    if sent || stopped {
        output.stop();
        output.deaf = stopped && !sent;
    }
    if output.deaf {
        text.clear();
        finished.clear();
    }
    let Some(worker) = &output.worker else {
        text.clear();
        finished.clear();
        samples.clear();
        return;
    };
    for ReplyText(piece) in text.read() {
        worker.push(piece);
    }
    if finished.read().count() > 0 {
        worker.finish();
    }
    for SaySample(sample) in samples.read() {
        worker.say(sample);
    }
}

fn read_events(
    mut output: ResMut<VoiceOutput>,
    mut status: ResMut<VoiceStatus>,
    mut timings: ResMut<VoiceTimings>,
) {
    let Some(worker) = &output.worker else {
        return;
    };
    let events = worker.events();
    for event in events {
        match event {
            VoiceEvent::Ready {
                controls,
                clock,
                folder,
                load_ms,
            } => {
                info!("voice: {} ready in {load_ms:.0} ms", folder.display());
                if let Some(worker) = &mut output.worker {
                    worker.set_controls(controls);
                }
                output.clock = Some(clock);
                timings.load_ms = Some(load_ms);
                *status = VoiceStatus::Ready(folder);
            }
            VoiceEvent::Failed(err) => {
                // One line; the chat goes on in text and the panel says why.
                warn!("voice off: {err}");
                output.worker = None;
                output.clock = None;
                output.tracks.clear();
                *status = VoiceStatus::Failed(err.to_string());
                return;
            }
            VoiceEvent::Queued {
                id,
                sample_rate,
                mouth,
            } => output.tracks.push_back((id, sample_rate, mouth)),
            VoiceEvent::Spoken {
                text,
                audio_seconds,
                synthesis_ms,
            } => {
                debug!("voice: {text:?} ({audio_seconds:.2} s in {synthesis_ms:.0} ms)");
                timings.last_synthesis_ms = Some(synthesis_ms);
                if audio_seconds > 0.0 {
                    timings.real_time_factor = Some(synthesis_ms / 1000.0 / audio_seconds);
                }
                timings.sentences_spoken += 1;
                timings.audio_seconds += audio_seconds;
            }
            VoiceEvent::SentenceFailed(err) => warn!("voice: a sentence was skipped: {err}"),
        }
    }
}
