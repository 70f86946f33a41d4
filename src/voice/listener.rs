//! Listening's own thread: the microphone, Silero VAD and the recognizer. Hands-free, the
//! detector starts and ends each utterance; push-to-talk, what is said while the key is held
//! is recognized at its release (the detector still trims it, so a held key over silence gives
//! no made-up words: Whisper invents "Thank you." on silence). Bevy-free; the plugin and
//! `desktop-mate listen` feed it and read its events.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::VoiceError;
use super::listen::{LISTEN_RATE, Utterance, Vad, VadSettings};
use super::microphone::Microphone;
use super::recognize::{Recognizer, whisper_language};
use super::tts::Audio;

/// How often the input level is reported.
const LEVEL_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq)]
pub struct ListenConfig {
    /// A Whisper export for sherpa-onnx (a folder, see [`super::recognize::whisper_name`]).
    pub recognizer: PathBuf,
    /// Silero VAD's ONNX model.
    pub vad: PathBuf,
    /// `auto` or a language code.
    pub language: String,
    /// An input device by name; `None` = the default one.
    pub device: Option<String>,
    /// The detector starts utterances by itself; off = only while [`ListenWorker::hold`].
    pub hands_free: bool,
    pub threads: u32,
    pub vad_settings: VadSettings,
}

pub enum ListenEvent {
    /// The microphone and the models are open.
    Ready { microphone: String, load_ms: f64 },
    /// Listening cannot work (no microphone, no recognizer): the rest of the app goes on.
    Failed(VoiceError),
    /// The input level, 0 (-60 dBFS or less) to 1 (full scale), every 50 ms.
    Level(f32),
    /// Speech began (hands-free): the mascot stops talking (barge-in).
    SpeechStarted,
    /// An utterance's text.
    Heard {
        text: String,
        language: String,
        audio_seconds: f64,
        /// From the end of the utterance (as the detector ended it) to its text.
        recognition_ms: f64,
    },
    /// An utterance that gave no text (push-to-talk over silence, or recognition failed).
    NotUnderstood(String),
}

enum Control {
    Hold(bool),
    HandsFree(bool),
    /// Input ignored (the mascot is speaking and would hear itself).
    Mute(bool),
}

/// The running listener; dropping it ends the thread and releases the microphone.
pub struct ListenWorker {
    control: Sender<Control>,
    events: Receiver<ListenEvent>,
}

impl ListenWorker {
    pub fn start(config: ListenConfig) -> Self {
        let (control, control_rx) = crossbeam_channel::unbounded();
        let (event_tx, events) = crossbeam_channel::unbounded();
        let spawned = std::thread::Builder::new()
            .name("listen".into())
            .spawn(move || run(config, control_rx, event_tx));
        if let Err(err) = spawned {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = tx.send(ListenEvent::Failed(VoiceError::Io(format!(
                "cannot start the listening thread: {err}"
            ))));
            return Self {
                control,
                events: rx,
            };
        }
        Self { control, events }
    }

    pub fn events(&self) -> Vec<ListenEvent> {
        self.events.try_iter().collect()
    }

    /// Waits up to `timeout` for the next event.
    pub fn next_event(&self, timeout: Duration) -> Option<ListenEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Push-to-talk pressed (true) or released (false).
    pub fn hold(&self, held: bool) {
        let _ = self.control.send(Control::Hold(held));
    }

    pub fn set_hands_free(&self, on: bool) {
        let _ = self.control.send(Control::HandsFree(on));
    }

    /// While muted the input is dropped (the mascot speaking), and what was being heard is
    /// forgotten.
    pub fn set_muted(&self, muted: bool) {
        let _ = self.control.send(Control::Mute(muted));
    }
}

struct Models {
    recognizer: Recognizer,
    vad: Vad,
    language: String,
}

fn open(config: &ListenConfig) -> Result<(Microphone, Models), VoiceError> {
    let language = whisper_language(&config.language)?;
    // The microphone first: without one, the models are not worth loading.
    let microphone = Microphone::open(config.device.as_deref())?;
    let recognizer = Recognizer::open(&config.recognizer, &config.language, config.threads)?;
    let vad = Vad::open(&config.vad, config.vad_settings)?;
    Ok((
        microphone,
        Models {
            recognizer,
            vad,
            language,
        },
    ))
}

/// 0 at -60 dBFS or less, 1 at full scale.
pub fn level(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let rms = (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt();
    let db = 20.0 * rms.max(1e-9).log10();
    ((db + 60.0) / 60.0).clamp(0.0, 1.0)
}

fn run(config: ListenConfig, control: Receiver<Control>, events: Sender<ListenEvent>) {
    let started = Instant::now();
    let (microphone, mut models) = match open(&config) {
        Ok(opened) => opened,
        Err(err) => {
            let _ = events.send(ListenEvent::Failed(err));
            return;
        }
    };
    let resampler = (microphone.sample_rate() != LISTEN_RATE)
        .then(|| {
            sherpa_onnx::LinearResampler::create(
                microphone.sample_rate() as i32,
                LISTEN_RATE as i32,
            )
        })
        .flatten();
    if microphone.sample_rate() != LISTEN_RATE && resampler.is_none() {
        let _ = events.send(ListenEvent::Failed(VoiceError::NoMicrophone(format!(
            "cannot resample the microphone's {} Hz",
            microphone.sample_rate()
        ))));
        return;
    }
    let _ = events.send(ListenEvent::Ready {
        microphone: microphone.name().to_owned(),
        load_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    let mut hands_free = config.hands_free;
    let mut held = false;
    let mut muted = false;
    let mut was_speaking = false;
    // Push-to-talk: the utterances of the key press so far.
    let mut pressed: Vec<Utterance> = Vec::new();
    let mut level_samples: Vec<f32> = Vec::new();
    let mut last_level = Instant::now();
    loop {
        crossbeam_channel::select! {
            recv(control) -> message => {
                let Ok(message) = message else { return };
                match message {
                    Control::Hold(true) if !held => {
                        held = true;
                        pressed.clear();
                        models.vad.reset();
                    }
                    Control::Hold(false) if held => {
                        held = false;
                        let mut utterances = std::mem::take(&mut pressed);
                        utterances.extend(models.vad.finish());
                        if utterances.is_empty() {
                            let _ = events.send(ListenEvent::NotUnderstood(
                                "no speech heard while the key was held".into(),
                            ));
                        } else {
                            recognize(&models, &joined(&utterances), &events);
                        }
                    }
                    Control::Hold(_) => {}
                    Control::HandsFree(on) => {
                        hands_free = on;
                        models.vad.reset();
                    }
                    Control::Mute(on) => {
                        muted = on;
                        models.vad.reset();
                        was_speaking = false;
                    }
                }
            }
            recv(microphone.chunks()) -> chunk => {
                let Ok(chunk) = chunk else {
                    let _ = events.send(ListenEvent::Failed(VoiceError::NoMicrophone(
                        "the microphone stopped".into(),
                    )));
                    return;
                };
                let samples = match &resampler {
                    Some(resampler) => resampler.resample(&chunk, false),
                    None => chunk,
                };
                level_samples.extend_from_slice(&samples);
                if last_level.elapsed() >= LEVEL_EVERY {
                    let _ = events.send(ListenEvent::Level(if muted { 0.0 } else { level(&level_samples) }));
                    level_samples.clear();
                    last_level = Instant::now();
                }
                if muted || !(held || hands_free) {
                    continue;
                }
                let utterances = models.vad.push(&samples);
                let speaking = models.vad.speaking();
                if hands_free && !held && speaking && !was_speaking {
                    let _ = events.send(ListenEvent::SpeechStarted);
                }
                was_speaking = speaking;
                // Push-to-talk keeps every utterance for the release.
                if hands_free && !held {
                    for utterance in utterances {
                        recognize(&models, &utterance, &events);
                    }
                } else {
                    pressed.extend(utterances);
                }
            }
        }
    }
}

/// The utterances of one key press as one.
fn joined(utterances: &[Utterance]) -> Utterance {
    Utterance {
        start_seconds: utterances.first().map_or(0.0, |u| u.start_seconds),
        samples: utterances
            .iter()
            .flat_map(|u| u.samples.iter().copied())
            .collect(),
    }
}

fn recognize(models: &Models, utterance: &Utterance, events: &Sender<ListenEvent>) {
    let started = Instant::now();
    let audio: Audio = utterance.audio();
    let language = if models.language.is_empty() {
        models.recognizer.language(&audio).unwrap_or_default()
    } else {
        models.language.clone()
    };
    match models.recognizer.transcribe(&audio) {
        Ok(text) if !text.trim().is_empty() => {
            let _ = events.send(ListenEvent::Heard {
                text,
                language,
                audio_seconds: audio.seconds(),
                recognition_ms: started.elapsed().as_secs_f64() * 1000.0,
            });
        }
        Ok(_) => {
            let _ = events.send(ListenEvent::NotUnderstood("no words recognized".into()));
        }
        Err(err) => {
            let _ = events.send(ListenEvent::NotUnderstood(err.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_maps_decibels_to_zero_one() {
        assert_eq!(level(&[]), 0.0);
        assert_eq!(level(&[0.0; 100]), 0.0);
        assert!((level(&[1.0; 100]) - 1.0).abs() < 1e-6);
        // -20 dBFS
        let l = level(&[0.1; 100]);
        assert!((l - 40.0 / 60.0).abs() < 1e-3, "{l}");
    }

    #[test]
    fn utterances_of_one_press_are_joined_in_order() {
        let a = Utterance {
            samples: vec![1.0; 3],
            start_seconds: 0.5,
        };
        let b = Utterance {
            samples: vec![2.0; 2],
            start_seconds: 2.0,
        };
        let one = joined(&[a, b]);
        assert_eq!(one.samples, [1.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!(one.start_seconds, 0.5);
    }
}
