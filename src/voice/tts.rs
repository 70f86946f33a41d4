//! The speech seam: one sentence of text in, samples out. [`super::piper::PiperVoice`] is the
//! local backend (sherpa-onnx); an OpenAI-compatible `/v1/audio/speech` server is the planned
//! second one (docs/voice.md).

use std::path::Path;

use super::VoiceError;

/// Mono samples in [-1, 1].
#[derive(Debug, Clone, Default)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl Audio {
    pub fn seconds(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }

    /// `seconds` of silence.
    pub fn silence(seconds: f32, sample_rate: u32) -> Self {
        Self {
            samples: vec![0.0; (seconds * sample_rate as f32) as usize],
            sample_rate,
        }
    }

    /// Appends `other` (same sample rate) after `gap` seconds of silence.
    pub fn append(&mut self, other: &Audio, gap: f32) {
        if self.sample_rate == 0 {
            self.sample_rate = other.sample_rate;
        }
        if !self.samples.is_empty() {
            self.samples
                .extend(Self::silence(gap, self.sample_rate).samples);
        }
        self.samples.extend_from_slice(&other.samples);
    }

    /// A 16-bit PCM WAV file, written beside `path` and renamed over it.
    pub fn write_wav(&self, path: &Path) -> Result<(), VoiceError> {
        let io = |err: std::io::Error| VoiceError::Io(format!("{}: {err}", path.display()));
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let staged = tempfile::Builder::new()
            .prefix(".say-")
            .suffix(".wav")
            .tempfile_in(dir)
            .map_err(io)?;
        let staged_path = staged
            .path()
            .to_str()
            .ok_or_else(|| VoiceError::Io(format!("{} is not a UTF-8 path", dir.display())))?
            .to_owned();
        let rate = i32::try_from(self.sample_rate).unwrap_or(0);
        if !sherpa_onnx::write(&staged_path, &self.samples, rate) {
            return Err(VoiceError::Io(format!("could not write {staged_path}")));
        }
        staged.persist(path).map_err(|err| io(err.error))?;
        Ok(())
    }

    /// Reads a WAV file (tests, `listen`): mono samples as written by [`Audio::write_wav`].
    pub fn read_wav(path: &Path) -> Result<Self, VoiceError> {
        let text = path
            .to_str()
            .ok_or_else(|| VoiceError::Io(format!("{} is not a UTF-8 path", path.display())))?;
        let wave = sherpa_onnx::Wave::read(text).ok_or_else(|| {
            VoiceError::Io(format!(
                "{}: not a WAV file sherpa-onnx can read",
                path.display()
            ))
        })?;
        Ok(Self {
            samples: wave.samples().to_vec(),
            sample_rate: u32::try_from(wave.sample_rate()).unwrap_or(0),
        })
    }
}

/// A voice: turns one sentence (already cleaned by [`super::text`]) into audio.
pub trait SpeechBackend: Send + Sync {
    fn sample_rate(&self) -> u32;
    /// `speed`: 1.0 is the voice's own pace.
    fn synthesize(&self, sentence: &str, speed: f32) -> Result<Audio, VoiceError>;
}
