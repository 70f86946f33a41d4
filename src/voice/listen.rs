//! Listening, the engine (docs/listening.md): speech in, text out. [`Vad`] cuts a stream of
//! samples into utterances with Silero VAD, [`transcribe`] turns a recording into text with
//! the [`Recognizer`] (Whisper through sherpa-onnx, the same runtime as the voice: no second
//! ML library). Bevy-free and offline: nothing here writes audio anywhere.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::VoiceError;
use super::recognize::{Recognizer, resample};
use super::tts::Audio;

/// The rate Silero VAD and Whisper work at; input at other rates is resampled.
pub const LISTEN_RATE: u32 = 16_000;

/// Silero VAD's window at 16 kHz (its ONNX model takes 512 samples = 32 ms at a time).
const VAD_WINDOW: usize = 512;

/// Whisper hears at most 30 s at a time: an utterance is cut before that.
const MAX_UTTERANCE_SECONDS: f32 = 25.0;

/// Audio put back in front of each utterance: the detector starts it where the speech
/// probability crossed the threshold, which is after a soft first sound ("un-" of "unless"
/// was heard as "how"). Silero's own `get_speech_timestamps` pads by 30 ms, faster-whisper by
/// 400 ms; this is between.
const PAD_SECONDS: f64 = 0.2;
const PAD_SAMPLES: usize = (PAD_SECONDS * LISTEN_RATE as f64) as usize;
/// The stream kept for that: the longest utterance and its pad.
const KEPT_SAMPLES: usize = (MAX_UTTERANCE_SECONDS as usize + 2) * LISTEN_RATE as usize;

/// How the detector decides where speech starts and ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadSettings {
    /// Speech probability above which a window is speech (Silero's own default: 0.5).
    pub threshold: f32,
    /// Silence that ends an utterance: the delay between the end of speech and its text.
    pub min_silence_seconds: f32,
    /// Shorter bursts (a click, a cough) are not utterances.
    pub min_speech_seconds: f32,
}

impl Default for VadSettings {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_silence_seconds: 0.3,
            min_speech_seconds: 0.25,
        }
    }
}

/// One stretch of speech found by [`Vad`], at [`LISTEN_RATE`].
#[derive(Debug, Clone)]
pub struct Utterance {
    pub samples: Vec<f32>,
    /// Where it starts in the stream fed so far.
    pub start_seconds: f64,
}

impl Utterance {
    pub fn end_seconds(&self) -> f64 {
        self.start_seconds + self.samples.len() as f64 / f64::from(LISTEN_RATE)
    }

    pub fn audio(&self) -> Audio {
        Audio {
            samples: self.samples.clone(),
            sample_rate: LISTEN_RATE,
        }
    }
}

/// Silero VAD (sherpa-onnx) over a stream of 16 kHz samples fed in chunks of any size.
pub struct Vad {
    detector: sherpa_onnx::VoiceActivityDetector,
    /// Samples waiting for a whole window.
    pending: Vec<f32>,
    /// The latest [`KEPT_SAMPLES`] fed to the detector, for the pad in front of an utterance.
    kept: std::collections::VecDeque<f32>,
    /// Samples fed to the detector since the last reset (the detector's own positions).
    fed: usize,
    /// Where the utterance going on was noticed (the first window the detector said speech,
    /// or the end of the piece it cut at its longest): see [`Vad::in_progress`].
    noticed: Option<usize>,
}

impl Vad {
    /// `model`: Silero VAD's ONNX file (`silero_vad.onnx`, v4 to v6).
    pub fn open(model: &Path, settings: VadSettings) -> Result<Self, VoiceError> {
        if !model.is_file() {
            return Err(VoiceError::BadVoice(format!(
                "the voice activity detector {} is missing",
                model.display()
            )));
        }
        let path = model.to_str().ok_or_else(|| {
            VoiceError::BadVoice(format!("{} is not a UTF-8 path", model.display()))
        })?;
        let config = sherpa_onnx::VadModelConfig {
            silero_vad: sherpa_onnx::SileroVadModelConfig {
                model: Some(path.to_owned()),
                threshold: settings.threshold.clamp(0.05, 0.95),
                min_silence_duration: settings.min_silence_seconds.clamp(0.05, 5.0),
                min_speech_duration: settings.min_speech_seconds.clamp(0.05, 5.0),
                window_size: VAD_WINDOW as i32,
                max_speech_duration: MAX_UTTERANCE_SECONDS,
            },
            sample_rate: LISTEN_RATE as i32,
            num_threads: 1,
            provider: Some("cpu".into()),
            ..Default::default()
        };
        // The buffer holds the speech of the utterances not yet taken: a minute is plenty.
        let detector =
            sherpa_onnx::VoiceActivityDetector::create(&config, 60.0).ok_or_else(|| {
                VoiceError::BadVoice(format!(
                    "sherpa-onnx could not load {} as Silero VAD",
                    model.display()
                ))
            })?;
        Ok(Self {
            detector,
            pending: Vec::with_capacity(VAD_WINDOW),
            kept: std::collections::VecDeque::new(),
            fed: 0,
            noticed: None,
        })
    }

    /// Feeds 16 kHz samples; returns the utterances that ended in them.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Utterance> {
        self.pending.extend_from_slice(samples);
        let whole = self.pending.len() / VAD_WINDOW * VAD_WINDOW;
        let pending = std::mem::take(&mut self.pending);
        let (windows, _) = pending[..whole].as_chunks::<VAD_WINDOW>();
        for window in windows {
            self.accept(window);
        }
        self.pending = pending;
        self.pending.drain(..whole);
        self.take()
    }

    /// True while an utterance is going on (speech heard, its end not yet).
    pub fn speaking(&self) -> bool {
        self.detector.detected()
    }

    /// Where the utterance going on was noticed, in samples since the last reset; `None`
    /// between utterances.
    pub fn noticed(&self) -> Option<usize> {
        self.noticed
    }

    /// The utterance going on, from `pre_roll` samples before the detector noticed it (it
    /// does so after `min_speech_seconds` of speech and a window: the first word would be
    /// cut) to the last sample pushed; empty when none is. From the same kept stream as the
    /// pad of [`Vad::push`]'s utterances: partial words read it (see `listener.rs`).
    pub fn in_progress(&self, pre_roll: usize) -> Vec<f32> {
        let Some(noticed) = self.noticed else {
            return Vec::new();
        };
        let mut samples = self.kept_between(noticed.saturating_sub(pre_roll), self.fed);
        samples.extend_from_slice(&self.pending);
        samples
    }

    /// Ends the stream: the utterance still going on, if any, is returned.
    pub fn finish(&mut self) -> Vec<Utterance> {
        if !self.pending.is_empty() {
            let mut last = std::mem::take(&mut self.pending);
            last.resize(VAD_WINDOW, 0.0);
            self.accept(&last);
        }
        self.detector.flush();
        let utterances = self.take();
        // The detector counts positions from 0 again after a reset.
        self.detector.reset();
        self.kept.clear();
        self.fed = 0;
        self.noticed = None;
        utterances
    }

    /// Forgets everything heard (the mascot starts speaking, the push-to-talk key is released).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.kept.clear();
        self.fed = 0;
        self.noticed = None;
        self.detector.clear();
        self.detector.reset();
    }

    fn accept(&mut self, window: &[f32]) {
        self.detector.accept_waveform(window);
        let start = self.fed;
        self.fed += window.len();
        self.kept.extend(window.iter().copied());
        let over = self.kept.len().saturating_sub(KEPT_SAMPLES);
        self.kept.drain(..over);
        self.noticed = match (self.detector.detected(), self.noticed) {
            (false, _) => None,
            (true, None) => Some(start),
            (true, noticed) => noticed,
        };
    }

    fn take(&mut self) -> Vec<Utterance> {
        let mut utterances = Vec::new();
        while let Some(segment) = self.detector.front() {
            let start = usize::try_from(segment.start()).unwrap_or(0);
            let pad = self.pad_before(start);
            let mut samples = Vec::with_capacity(pad.len() + segment.samples().len());
            samples.extend_from_slice(&pad);
            samples.extend_from_slice(segment.samples());
            // Cut at its longest while the speech goes on: what is in progress starts here.
            let end = start + segment.samples().len();
            if let Some(noticed) = self.noticed.as_mut() {
                *noticed = (*noticed).max(end);
            }
            utterances.push(Utterance {
                samples,
                start_seconds: (start - pad.len()) as f64 / f64::from(LISTEN_RATE),
            });
            self.detector.pop();
        }
        utterances
    }

    /// Up to [`PAD_SAMPLES`] of the stream just before position `start`, as far as kept.
    fn pad_before(&self, start: usize) -> Vec<f32> {
        self.kept_between(start.saturating_sub(PAD_SAMPLES), start)
    }

    /// The stream's samples from position `from` (or the oldest kept) up to `to`, as far as
    /// they are kept; positions count the samples fed to the detector since the last reset.
    fn kept_between(&self, from: usize, to: usize) -> Vec<f32> {
        let first_kept = self.fed - self.kept.len();
        let from = from.max(first_kept);
        if from >= to || to > self.fed {
            return Vec::new();
        }
        self.kept
            .range(from - first_kept..to - first_kept)
            .copied()
            .collect()
    }
}

/// What [`transcribe`] heard in a recording.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub text: String,
    /// The language asked for, or the one Whisper identified when it was left to detect it.
    pub language: String,
    pub audio_seconds: f64,
    pub segments: Vec<Segment>,
    pub timings: TranscriptTimings,
}

#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TranscriptTimings {
    pub vad_ms: f64,
    pub language_ms: f64,
    pub recognition_ms: f64,
    /// Recognition time over the audio's length.
    pub real_time_factor: f64,
}

/// Everything a recording needs: the recognizer, the detector, and the language wanted.
pub struct Transcriber {
    pub recognizer: Recognizer,
    pub vad: Vad,
}

/// The words of a recording: cut into utterances by the VAD (Whisper hears 30 s at a time),
/// each recognized, the texts joined. `language` is only reported: the recognizer was made
/// with it (see [`Recognizer::whisper`]); "" = identified from the first utterance.
pub fn transcribe(
    transcriber: &mut Transcriber,
    audio: &Audio,
    language: &str,
) -> Result<Transcript, VoiceError> {
    if audio.sample_rate == 0 {
        return Err(VoiceError::Io("the recording has no sample rate".into()));
    }
    let samples = resample(audio, LISTEN_RATE)?;
    let started = Instant::now();
    transcriber.vad.reset();
    // Fed ten seconds at a time: the detector's queue holds only what each piece ended.
    let mut utterances = Vec::new();
    for piece in samples.chunks(LISTEN_RATE as usize * 10) {
        utterances.extend(transcriber.vad.push(piece));
    }
    utterances.extend(transcriber.vad.finish());
    let vad_ms = ms(started);

    let mut timings = TranscriptTimings {
        vad_ms,
        ..Default::default()
    };
    let language = match (language, utterances.first()) {
        ("", Some(first)) => {
            let started = Instant::now();
            let found = transcriber.recognizer.language(&first.audio())?;
            timings.language_ms = ms(started);
            found
        }
        ("", None) => String::new(),
        (language, _) => language.to_owned(),
    };
    let started = Instant::now();
    let mut segments = Vec::with_capacity(utterances.len());
    for utterance in &utterances {
        let text = transcriber.recognizer.transcribe(&utterance.audio())?;
        if !text.is_empty() {
            segments.push(Segment {
                start_seconds: round(utterance.start_seconds),
                end_seconds: round(utterance.end_seconds()),
                text,
            });
        }
    }
    timings.recognition_ms = ms(started);
    let audio_seconds = audio.seconds();
    if audio_seconds > 0.0 {
        timings.real_time_factor = timings.recognition_ms / 1000.0 / audio_seconds;
    }
    Ok(Transcript {
        text: segments
            .iter()
            .map(|segment| segment.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        language,
        audio_seconds: round(audio_seconds),
        segments,
        timings,
    })
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Where listening's models live: `DESKTOP_MATE_RECOGNIZERS`, else `recognizers` beside the
/// voices in the user's data folder: a Whisper export per folder, Silero VAD as
/// `silero-vad.onnx`.
pub fn default_recognizers_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("DESKTOP_MATE_RECOGNIZERS").filter(|dir| !dir.is_empty()) {
        return Some(dir.into());
    }
    directories::ProjectDirs::from("", "", "desktop-mate")
        .map(|dirs| dirs.data_dir().join("recognizers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_detector_is_a_clear_error() {
        let Err(err) = Vad::open(
            Path::new("/nonexistent/silero.onnx"),
            VadSettings::default(),
        ) else {
            panic!("a missing model opened");
        };
        assert!(err.to_string().contains("is missing"), "{err}");
    }
}
