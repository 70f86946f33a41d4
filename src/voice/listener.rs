//! Listening's own thread: the microphone, Silero VAD and the recognizer. Hands-free, the
//! detector starts and ends each utterance; push-to-talk, what is said while the key is held
//! is recognized at its release (the detector still trims it, so a held key over silence gives
//! no made-up words: Whisper invents "Thank you." on silence). Bevy-free; the plugin and
//! `desktop-mate listen` feed it and read its events.
//!
//! **Partial words.** Neither Moonshine nor Whisper streams, so the words so far are shown the
//! way sherpa-onnx's "simulate streaming" examples do it: the utterance in progress is
//! recognized again from its start every [`PARTIAL_EVERY`] (never more often than twice the
//! last partial's own cost). The final text is still the recognition of the whole utterance.
//! A partial cannot be stopped once started, so the release of the key may wait for one:
//! partials are only made while one pass costs at most [`PARTIAL_MAX`]. The listener measures
//! a pass when it starts (one second of a voiced tone, which also warms the recognizer up for
//! the first utterance): too slow a recognizer for this machine (Whisper base on 2 cores: 372 ms,
//! it always hears 30 s) gets no partials, and an utterance gets no more once one of
//! its partials took longer (Moonshine's cost grows with the utterance).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::VoiceError;
use super::listen::{LISTEN_RATE, Utterance, Vad, VadSettings};
use super::microphone::Microphone;
use super::recognize::{Recognizer, whisper_language};
use super::tts::Audio;

/// How the `partial_words` of [`ListenEvent::Ready`] reads in a log line, `asked` being
/// the setting.
pub fn partial_words_label(on: bool, asked: bool) -> &'static str {
    match (on, asked) {
        (true, _) => "on",
        (false, true) => "off: the recognizer is too slow on this machine",
        (false, false) => "off",
    }
}

/// How often the input level is reported.
const LEVEL_EVERY: Duration = Duration::from_millis(50);
/// The words so far are recognized again at most this often...
const PARTIAL_EVERY: Duration = Duration::from_millis(600);
/// ...and only while one pass costs at most this (the release may wait that long for one).
const PARTIAL_MAX: Duration = Duration::from_millis(250);
/// ...once the utterance in progress is this long.
const PARTIAL_MIN_SAMPLES: usize = LISTEN_RATE as usize / 2;
/// Audio kept from before the detector says speech began (it says so after the first
/// `min_speech_seconds` of speech and a window): the partials' first word is not cut.
const PRE_ROLL_SAMPLES: usize = LISTEN_RATE as usize * 6 / 10;

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
    /// Send [`ListenEvent::Partial`] while the user speaks.
    pub partial_words: bool,
    pub threads: u32,
    pub vad_settings: VadSettings,
}

pub enum ListenEvent {
    /// The microphone and the models are open.
    Ready {
        microphone: String,
        load_ms: f64,
        /// One pass of the recognizer over a second of audio, measured at the start.
        pass_ms: f64,
        /// Partial words are made (asked for, and the recognizer is fast enough here).
        partial_words: bool,
    },
    /// Listening cannot work (no microphone, no recognizer): the rest of the app goes on.
    Failed(VoiceError),
    /// The input level, 0 (-60 dBFS or less) to 1 (full scale), every 50 ms.
    Level(f32),
    /// Speech began (hands-free): the mascot stops talking (barge-in).
    SpeechStarted,
    /// The words heard so far, while the user is still speaking (push-to-talk: since the key
    /// went down); replaced by the next one, then by [`ListenEvent::Heard`].
    Partial(String),
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

impl Models {
    /// The language asked for, or (`auto`) the one Whisper identifies in `utterance`.
    fn language_of(&self, utterance: &Utterance) -> String {
        if self.language.is_empty() {
            self.recognizer
                .language(&utterance.audio())
                .unwrap_or_default()
        } else {
            self.language.clone()
        }
    }
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
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    // One pass over a second of sound: what a partial costs here (and ONNX Runtime's first
    // run, paid now rather than by the first utterance).
    let pass = Instant::now();
    let _ = models.recognizer.transcribe(&probe());
    let pass = pass.elapsed();
    let mut partials = Partials::new(config.partial_words && pass <= PARTIAL_MAX);
    let _ = events.send(ListenEvent::Ready {
        microphone: microphone.name().to_owned(),
        load_ms,
        pass_ms: pass.as_secs_f64() * 1000.0,
        partial_words: partials.enabled,
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
                        partials.ended.clear();
                        partials.reset();
                        models.vad.reset();
                    }
                    Control::Hold(false) if held => {
                        held = false;
                        let known = std::mem::take(&mut partials.ended);
                        partials.reset();
                        let mut utterances = std::mem::take(&mut pressed);
                        utterances.extend(models.vad.finish());
                        if utterances.is_empty() {
                            let _ = events.send(ListenEvent::NotUnderstood(
                                "no speech heard while the key was held".into(),
                            ));
                        } else if known.is_empty() || known.len() > utterances.len() {
                            recognize(&models, &joined(&utterances), &events);
                        } else {
                            recognize_rest(&models, &utterances, known, &events);
                        }
                    }
                    Control::Hold(_) => {}
                    Control::HandsFree(on) => {
                        hands_free = on;
                        partials.reset();
                        models.vad.reset();
                    }
                    Control::Mute(on) => {
                        muted = on;
                        partials.reset();
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
                partials.follow(&models.vad);
                // Push-to-talk keeps every utterance for the release.
                if hands_free && !held {
                    for utterance in utterances {
                        recognize(&models, &utterance, &events);
                    }
                } else {
                    // The partials of a press go on from the utterances it has had.
                    for utterance in &utterances {
                        partials.ended(&models, utterance);
                    }
                    pressed.extend(utterances);
                }
                if let Some(text) = partials.due(&models) {
                    let _ = events.send(ListenEvent::Partial(text));
                }
            }
        }
    }
}

/// A second of a voiced sound (a 150 Hz tone and its harmonics, rising and falling): silence
/// would not measure a pass, Moonshine answers it at once.
fn probe() -> Audio {
    let rate = LISTEN_RATE as f32;
    let samples = (0..LISTEN_RATE)
        .map(|i| {
            let t = i as f32 / rate;
            let envelope = (std::f32::consts::PI * t).sin();
            let voice: f32 = (1..=5)
                .map(|h| (2.0 * std::f32::consts::PI * 150.0 * h as f32 * t).sin() / h as f32)
                .sum();
            0.1 * envelope * voice
        })
        .collect();
    Audio {
        samples,
        sample_rate: LISTEN_RATE,
    }
}

/// The words so far of what the user is saying (see the module's documentation). The audio is
/// the detector's own ([`Vad::in_progress`]): this keeps only when and what it last showed.
struct Partials {
    enabled: bool,
    /// Where the detector noticed the utterance in progress: a new one starts the pace afresh.
    utterance: Option<usize>,
    /// Push-to-talk: the text of each utterance that ended while the key is held (the release
    /// recognizes only what came after them).
    ended: Vec<String>,
    /// Not before then (the last partial's cost sets the pace).
    next_at: Instant,
    /// The last partial sent: the same words are not sent twice.
    shown: String,
    /// This utterance's partials took longer than [`PARTIAL_MAX`]: no more for it.
    too_slow: bool,
}

impl Partials {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            utterance: None,
            ended: Vec::new(),
            next_at: Instant::now(),
            shown: String::new(),
            too_slow: false,
        }
    }

    /// Forgets the utterance in progress (the detector was reset). `ended` stays: it follows
    /// the press's utterances, which the press keeps.
    fn reset(&mut self) {
        self.utterance = None;
        self.shown.clear();
        self.too_slow = false;
    }

    /// After the detector was fed: an utterance that began (or ended) sets the pace.
    fn follow(&mut self, vad: &Vad) {
        let noticed = vad.noticed();
        if noticed == self.utterance {
            return;
        }
        self.utterance = noticed;
        self.too_slow = false;
        if noticed.is_some() {
            self.next_at = Instant::now() + PARTIAL_EVERY / 2;
        }
    }

    /// Push-to-talk: an utterance of the press ended. Its words start the next partials and
    /// are its part of the final text: the release does not recognize it again.
    fn ended(&mut self, models: &Models, utterance: &Utterance) {
        if !self.enabled {
            return;
        }
        let text = models.recognizer.transcribe(&utterance.audio());
        self.ended.push(text.unwrap_or_default());
    }

    /// The words so far, when it is time for them and they changed.
    fn due(&mut self, models: &Models) -> Option<String> {
        if !self.enabled || self.too_slow || self.utterance.is_none() {
            return None;
        }
        let started = Instant::now();
        if started < self.next_at {
            return None;
        }
        let samples = models.vad.in_progress(PRE_ROLL_SAMPLES);
        if samples.len() < PARTIAL_MIN_SAMPLES {
            return None;
        }
        let audio = Audio {
            samples,
            sample_rate: LISTEN_RATE,
        };
        let text = models.recognizer.transcribe(&audio).unwrap_or_default();
        let cost = started.elapsed();
        self.too_slow = cost > PARTIAL_MAX;
        self.next_at = Instant::now() + PARTIAL_EVERY.max(cost * 2);
        let text = joined_text(&self.ended.join(" "), &without_loops(&text));
        if text.is_empty() || text == self.shown {
            return None;
        }
        self.shown.clone_from(&text);
        Some(text)
    }
}

/// A partial's text without the loop a recognizer can fall into on audio cut mid-word ("is to
/// be ill, is to be ill, is to be i"): a phrase of up to eight words repeated to the end (the
/// last repetition possibly cut short) is kept once.
fn without_loops(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = words.len();
    for k in 1..=8 {
        // Walk back while each word is the one k before it (the last may be its start).
        let mut start = n;
        while start > k {
            let j = start - 1;
            let same =
                words[j] == words[j - k] || (j == n - 1 && words[j - k].starts_with(words[j]));
            if !same {
                break;
            }
            start = j;
        }
        if n - start >= k {
            return words[..start].join(" ");
        }
    }
    words.join(" ")
}

fn joined_text(before: &str, text: &str) -> String {
    match (before.trim(), text.trim()) {
        ("", text) => text.to_owned(),
        (before, "") => before.to_owned(),
        (before, text) => format!("{before} {text}"),
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

/// A press whose first utterances were recognized while the key was held (`known`, in order):
/// only the rest is recognized at the release.
fn recognize_rest(
    models: &Models,
    utterances: &[Utterance],
    known: Vec<String>,
    events: &Sender<ListenEvent>,
) {
    let started = Instant::now();
    let mut texts = known;
    for utterance in utterances.iter().skip(texts.len()) {
        match models.recognizer.transcribe(&utterance.audio()) {
            Ok(text) => texts.push(text),
            Err(err) => {
                let _ = events.send(ListenEvent::NotUnderstood(err.to_string()));
                return;
            }
        }
    }
    let text = texts
        .iter()
        .fold(String::new(), |all, text| joined_text(&all, text));
    if text.is_empty() {
        let _ = events.send(ListenEvent::NotUnderstood("no words recognized".into()));
        return;
    }
    let language = utterances.first().map_or_else(
        || models.language.clone(),
        |first| models.language_of(first),
    );
    let _ = events.send(ListenEvent::Heard {
        text,
        language,
        audio_seconds: utterances.iter().map(|u| u.samples.len()).sum::<usize>() as f64
            / f64::from(LISTEN_RATE),
        recognition_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
}

fn recognize(models: &Models, utterance: &Utterance, events: &Sender<ListenEvent>) {
    let started = Instant::now();
    let audio: Audio = utterance.audio();
    let language = models.language_of(utterance);
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

    #[test]
    fn a_phrase_repeated_at_the_end_of_a_partial_is_kept_once() {
        assert_eq!(
            without_loops("rather selfish, is to be ill, is to be ill, is to be ill,"),
            "rather selfish, is to be ill,"
        );
        assert_eq!(
            without_loops("is to be ill-to-selfish, is to be ill-to-selfish, is to be ill-"),
            "is to be ill-to-selfish,"
        );
        assert_eq!(without_loops("no no no"), "no");
        assert_eq!(without_loops("a b a c"), "a b a c");
        assert_eq!(without_loops("  "), "");
    }

    #[test]
    fn the_words_of_a_press_go_on_from_its_earlier_utterances() {
        assert_eq!(joined_text("", " hello "), "hello");
        assert_eq!(joined_text("hello there", ""), "hello there");
        assert_eq!(joined_text("hello", "world"), "hello world");
    }
}
