//! The voice's own thread: it opens the output device and the voice, takes the reply as it
//! streams, cuts it into sentences and synthesizes sentence N+1 while the speaker plays N.
//! Bevy-free; the plugin feeds it and reads its events. Stop acts at once from the caller's
//! thread ([`VoiceWorker::stop`]: the speaker's queue is dropped and every sentence of the
//! stopped reply, queued or being synthesized, is thrown away).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::VoiceError;
use super::lipsync::MouthTrack;
use super::phonemes::Espeak;
use super::piper::PiperVoice;
use super::playback::{PlayClock, Speaker, SpeakerControls};
use super::server::{OpenAiSpeech, SpeechServer};
use super::text::SentenceSplitter;
use super::tts::{Audio, SpeechBackend};

/// Silence after each sentence, as a reader pauses.
pub const SENTENCE_GAP_SECONDS: f32 = 0.25;

/// What the worker needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    /// A catalogue id, a Piper `NAME.onnx` or a prepared folder (see [`super::folders`]).
    pub voice: PathBuf,
    pub espeak_ng: Option<PathBuf>,
    /// An output device by name; `None` = the default one.
    pub device: Option<String>,
    pub speed: f32,
    pub volume: f32,
    /// A speech server instead of the local voice (`voice`, `espeak_ng` then unused).
    pub server: Option<SpeechServer>,
}

/// Watches the voice's load for the crash-loop guard (the plugin's `LoadGuard`).
pub trait LoadWatch: Send + 'static {
    /// True: an earlier run stopped while loading this voice folder; do not load it.
    fn should_skip(&self, folder: &Path) -> bool;
    fn begin(&self, folder: &Path);
    fn end(&self);
}

/// What the worker says.
pub enum VoiceEvent {
    /// The device and the voice are open.
    Ready {
        controls: SpeakerControls,
        clock: Arc<PlayClock>,
        folder: PathBuf,
        load_ms: f64,
    },
    /// The voice cannot speak (no device, no voice, no eSpeak NG): the chat goes on in text.
    Failed(VoiceError),
    /// A sentence is queued on the speaker: its mouth, read when the clock shows `id`.
    Queued {
        id: u64,
        sample_rate: u32,
        mouth: MouthTrack,
    },
    /// A sentence was synthesized.
    Spoken {
        text: String,
        audio_seconds: f64,
        synthesis_ms: f64,
    },
    /// Synthesis of one sentence failed (it is skipped; the next ones are tried).
    SentenceFailed(VoiceError),
}

enum Job {
    Text {
        reply: u64,
        piece: String,
    },
    Finish {
        reply: u64,
    },
    /// Say this whole text (the settings' sample button).
    Say {
        reply: u64,
        text: String,
    },
    Speed(f32),
}

/// The running worker; dropping it ends the thread once the sentence being synthesized is done.
pub struct VoiceWorker {
    jobs: Sender<Job>,
    events: Receiver<VoiceEvent>,
    /// The reply being spoken; sentences of an earlier one are dropped.
    reply: Arc<AtomicU64>,
    controls: Option<SpeakerControls>,
}

impl VoiceWorker {
    pub fn start(config: VoiceConfig, watch: Option<Box<dyn LoadWatch>>) -> Self {
        let (jobs, job_rx) = crossbeam_channel::unbounded();
        let (event_tx, events) = crossbeam_channel::unbounded();
        let reply = Arc::new(AtomicU64::new(1));
        let current = Arc::clone(&reply);
        let spawned = std::thread::Builder::new()
            .name("voice".into())
            .spawn(move || run(config, watch, job_rx, event_tx, current));
        if let Err(err) = spawned {
            // No thread: the events channel reports it once and closes.
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = tx.send(VoiceEvent::Failed(VoiceError::Io(format!(
                "cannot start the voice thread: {err}"
            ))));
            return Self {
                jobs,
                events: rx,
                reply,
                controls: None,
            };
        }
        Self {
            jobs,
            events,
            reply,
            controls: None,
        }
    }

    /// Events so far (the caller keeps [`VoiceEvent::Ready`]'s controls with
    /// [`VoiceWorker::set_controls`]).
    pub fn events(&self) -> Vec<VoiceEvent> {
        self.events.try_iter().collect()
    }

    pub fn set_controls(&mut self, controls: SpeakerControls) {
        self.controls = Some(controls);
    }

    /// A piece of the streamed reply.
    pub fn push(&self, piece: &str) {
        let reply = self.reply.load(Ordering::SeqCst);
        let _ = self.jobs.send(Job::Text {
            reply,
            piece: piece.to_owned(),
        });
    }

    /// The reply is complete: what is left of it is spoken.
    pub fn finish(&self) {
        let reply = self.reply.load(Ordering::SeqCst);
        let _ = self.jobs.send(Job::Finish { reply });
    }

    /// Says a whole text, after what is queued.
    pub fn say(&self, text: &str) {
        let reply = self.reply.load(Ordering::SeqCst);
        let _ = self.jobs.send(Job::Say {
            reply,
            text: text.to_owned(),
        });
    }

    pub fn set_speed(&self, speed: f32) {
        let _ = self.jobs.send(Job::Speed(speed));
    }

    pub fn set_volume(&self, volume: f32) {
        if let Some(controls) = &self.controls {
            controls.set_volume(volume);
        }
    }

    /// Silence now and forget the reply: the speaker's queue is dropped here (not on the
    /// worker, which may be synthesizing), and every sentence of the reply is thrown away.
    pub fn stop(&self) {
        self.reply.fetch_add(1, Ordering::SeqCst);
        if let Some(controls) = &self.controls {
            controls.stop();
        }
    }

    /// Sentences waiting on the speaker, the one playing included.
    pub fn queued(&self) -> usize {
        self.controls.as_ref().map_or(0, SpeakerControls::queued)
    }
}

/// The device and the voice: the local one, or the server (its address stands for the folder).
fn open(
    config: &VoiceConfig,
    watch: Option<&dyn LoadWatch>,
) -> Result<(Speaker, Box<dyn SpeechBackend>, PathBuf), VoiceError> {
    // The device first: without one, nothing else is worth loading.
    let speaker = Speaker::open_device(config.device.as_deref())?;
    if let Some(server) = &config.server {
        let url = PathBuf::from(&server.base_url);
        let voice: Box<dyn SpeechBackend> = Box::new(OpenAiSpeech::new(server.clone())?);
        return Ok((speaker, voice, url));
    }
    let espeak = Espeak::locate(config.espeak_ng.as_deref())?;
    let folder = super::folders::resolve(&config.voice)?;
    if let Some(watch) = watch {
        if watch.should_skip(&folder) {
            return Err(VoiceError::BadVoice(format!(
                "the last start stopped while loading the voice {}: skipped (Try again at the top of the window)",
                folder.display()
            )));
        }
        watch.begin(&folder);
    }
    let voice = PiperVoice::open(&folder, espeak, 1);
    if let Some(watch) = watch {
        watch.end();
    }
    let voice: Box<dyn SpeechBackend> = Box::new(voice?);
    Ok((speaker, voice, folder))
}

fn run(
    config: VoiceConfig,
    watch: Option<Box<dyn LoadWatch>>,
    jobs: Receiver<Job>,
    events: Sender<VoiceEvent>,
    current: Arc<AtomicU64>,
) {
    let started = Instant::now();
    let (speaker, voice, folder) = match open(&config, watch.as_deref()) {
        Ok(opened) => opened,
        Err(err) => {
            let _ = events.send(VoiceEvent::Failed(err));
            return;
        }
    };
    speaker.set_volume(config.volume);
    let _ = events.send(VoiceEvent::Ready {
        controls: speaker.controls(),
        clock: speaker.clock(),
        folder,
        load_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    let mut speed = config.speed;
    let mut splitter = SentenceSplitter::default();
    let mut splitting = 0;
    let mut next_id = 1;
    for job in jobs {
        let (reply, sentences) = match job {
            Job::Speed(value) => {
                speed = value;
                continue;
            }
            Job::Text { reply, piece } => {
                if reply != splitting {
                    splitter = SentenceSplitter::default();
                    splitting = reply;
                }
                (reply, splitter.push(&piece))
            }
            Job::Finish { reply } => {
                if reply != splitting {
                    continue;
                }
                (reply, splitter.finish())
            }
            Job::Say { reply, text } => {
                let mut own = SentenceSplitter::default();
                let mut sentences = own.push(&text);
                sentences.extend(own.finish());
                (reply, sentences)
            }
        };
        for sentence in sentences {
            if current.load(Ordering::SeqCst) != reply {
                break;
            }
            let started = Instant::now();
            let audio = match voice.synthesize(&sentence, speed) {
                Ok(audio) => audio,
                Err(err) => {
                    let _ = events.send(VoiceEvent::SentenceFailed(err));
                    continue;
                }
            };
            let synthesis_ms = started.elapsed().as_secs_f64() * 1000.0;
            // Stopped while synthesizing: thrown away.
            if current.load(Ordering::SeqCst) != reply {
                break;
            }
            let audio_seconds = audio.seconds();
            let mut spoken = audio;
            spoken.append(
                &Audio::silence(SENTENCE_GAP_SECONDS, spoken.sample_rate),
                0.0,
            );
            let id = next_id;
            next_id += 1;
            let _ = events.send(VoiceEvent::Queued {
                id,
                sample_rate: spoken.sample_rate,
                mouth: MouthTrack::from_audio(&spoken),
            });
            speaker.play_tracked(spoken, id);
            // Stopped between the check and the queueing: silenced all the same.
            if current.load(Ordering::SeqCst) != reply {
                speaker.stop();
                break;
            }
            let _ = events.send(VoiceEvent::Spoken {
                text: sentence,
                audio_seconds,
                synthesis_ms,
            });
        }
    }
}
