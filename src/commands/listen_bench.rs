//! `desktop-mate bench --listen FILE.wav`: listening's costs on one utterance (a 5 s recording
//! for the documented figures): the recording is fed to the voice activity detector 20 ms at a
//! time as a microphone gives it; once the detector says the speech ended, the utterance is
//! recognized. End of speech -> text = the detector's wait for silence (audio time) + its
//! lag in computing + the recognition; also the real-time factors and the memory.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::commands::voice_bench::{median, ms};
use crate::diagnostics::sampler::Sampler;
use crate::voice::listen::{LISTEN_RATE, Utterance, Vad, VadSettings};
use crate::voice::recognize::{Recognizer, resample};
use crate::voice::tts::Audio;

/// What a microphone callback typically hands over.
const CHUNK_SECONDS: f64 = 0.02;

#[derive(Debug, Serialize)]
pub struct ListenReport {
    pub file: String,
    pub recognizer: String,
    pub threads: u32,
    pub audio_seconds: f64,
    pub recognizer_load_ms: f64,
    pub vad_load_ms: f64,
    /// Runs of the whole path (the first one after a warm-up).
    pub runs: Vec<ListenRun>,
    /// Median of the runs: end of speech to its text.
    pub end_of_speech_to_text_ms: f64,
    /// Recognition time over the utterance's length (median run).
    pub real_time_factor: f64,
    /// The detector's compute time over the audio's length.
    pub vad_real_time_factor: f64,
    pub rss_before_bytes: u64,
    pub rss_loaded_bytes: u64,
    pub rss_after_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct ListenRun {
    pub text: String,
    pub utterance_seconds: f64,
    /// Silence the detector waited for before ending the utterance (audio time).
    pub vad_wait_ms: f64,
    /// Its compute time for the chunk that ended the utterance.
    pub vad_lag_ms: f64,
    pub recognition_ms: f64,
    pub end_of_speech_to_text_ms: f64,
}

pub fn bench(
    file: &Path,
    recognizer_dir: &Path,
    vad_model: &Path,
    threads: u32,
) -> Result<ListenReport, String> {
    let err = |err: crate::voice::VoiceError| err.to_string();
    let audio = Audio::read_wav(file).map_err(err)?;
    let mut samples = resample(&audio, LISTEN_RATE).map_err(err)?;
    // A second of silence after the speech, as a room gives it, so the detector can end it.
    samples.extend(std::iter::repeat_n(0.0, LISTEN_RATE as usize));
    let mut sampler = Sampler::new();
    let rss_before_bytes = sampler.sample().rss_bytes;
    let start = Instant::now();
    let recognizer = Recognizer::open(recognizer_dir, "auto", threads).map_err(err)?;
    let recognizer_load_ms = ms(start);
    let start = Instant::now();
    let mut vad = Vad::open(vad_model, VadSettings::default()).map_err(err)?;
    let vad_load_ms = ms(start);
    let rss_loaded_bytes = sampler.sample().rss_bytes;

    let chunk = (CHUNK_SECONDS * f64::from(LISTEN_RATE)) as usize;
    let mut runs = Vec::new();
    let mut vad_compute = 0.0;
    // One warm-up run (onnxruntime allocates on its first), then three measured.
    for run in 0..4 {
        vad.reset();
        let mut heard: Option<(Utterance, usize, f64)> = None;
        let mut fed = 0;
        for piece in samples.chunks(chunk) {
            let start = Instant::now();
            let mut utterances = vad.push(piece);
            let lag = ms(start);
            vad_compute += lag;
            fed += piece.len();
            if heard.is_none() && !utterances.is_empty() {
                heard = Some((utterances.remove(0), fed, lag));
            }
        }
        let (utterance, fed_at_end, vad_lag_ms) = match heard {
            Some(found) => found,
            None => match vad.finish().into_iter().next() {
                Some(last) => (last, samples.len(), 0.0),
                None => return Err(format!("no speech found in {}", file.display())),
            },
        };
        let ended_at = fed_at_end as f64 / f64::from(LISTEN_RATE);
        let vad_wait_ms = (ended_at - utterance.end_seconds()).max(0.0) * 1000.0;
        let start = Instant::now();
        let text = recognizer.transcribe(&utterance.audio()).map_err(err)?;
        let recognition_ms = ms(start);
        let row = ListenRun {
            text,
            utterance_seconds: utterance.samples.len() as f64 / f64::from(LISTEN_RATE),
            vad_wait_ms,
            vad_lag_ms,
            recognition_ms,
            end_of_speech_to_text_ms: vad_wait_ms + vad_lag_ms + recognition_ms,
        };
        eprintln!(
            "bench: end of speech -> text {:.0} ms (wait {:.0} + recognition {:.0}): {:?}",
            row.end_of_speech_to_text_ms, row.vad_wait_ms, row.recognition_ms, row.text
        );
        if run > 0 {
            runs.push(row);
        }
    }
    let rss_after_bytes = sampler.sample().rss_bytes;
    let audio_seconds = samples.len() as f64 / f64::from(LISTEN_RATE);
    let end_of_speech_to_text_ms = median(
        runs.iter()
            .map(|run| run.end_of_speech_to_text_ms)
            .collect(),
    );
    let real_time_factor = median(
        runs.iter()
            .map(|run| run.recognition_ms / 1000.0 / run.utterance_seconds.max(0.001))
            .collect(),
    );
    Ok(ListenReport {
        file: file.display().to_string(),
        recognizer: recognizer_dir.display().to_string(),
        threads,
        audio_seconds,
        recognizer_load_ms,
        vad_load_ms,
        runs,
        end_of_speech_to_text_ms,
        real_time_factor,
        vad_real_time_factor: vad_compute / 1000.0 / (audio_seconds * 4.0),
        rss_before_bytes,
        rss_loaded_bytes,
        rss_after_bytes,
    })
}
