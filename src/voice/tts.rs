//! The speech seam: one sentence of text in, samples out. [`super::piper::PiperVoice`] is the
//! local backend (sherpa-onnx), [`super::server::OpenAiSpeech`] an OpenAI-compatible
//! `/v1/audio/speech` server (docs/voice.md).

use std::io::Cursor;
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

    /// Reads a WAV file (`transcribe`, tests): the first channel (see [`Audio::decode_wav`]),
    /// read by hound (pure Rust: a hostile file is an error, never a crash), at most 1 GiB.
    pub fn read_wav(path: &Path) -> Result<Self, VoiceError> {
        const MAX_WAV_BYTES: u64 = 1 << 30;
        let bytes = crate::config::read_bounded(path, MAX_WAV_BYTES)
            .map_err(|err| VoiceError::Io(format!("{}: {err}", path.display())))?;
        Self::decode_wav(&bytes)
            .map_err(|why| VoiceError::Io(format!("{}: not a WAV file ({why})", path.display())))
    }

    /// Mono samples of a WAV file in memory (the first channel), 8- to 32-bit integer or 32-bit
    /// float. A header that gives no length (a streamed answer) is read to the end of the data.
    pub fn decode_wav(bytes: &[u8]) -> Result<Self, String> {
        let bytes = with_real_data_length(bytes);
        let reader =
            hound::WavReader::new(Cursor::new(&bytes[..])).map_err(|err| err.to_string())?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err("no channels or no sample rate".into());
        }
        let channels = usize::from(spec.channels);
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => {
                reader.into_samples::<f32>().map_while(Result::ok).collect()
            }
            hound::SampleFormat::Int => {
                let scale = 2f32.powi(i32::from(spec.bits_per_sample.clamp(1, 32)) - 1);
                reader
                    .into_samples::<i32>()
                    .map_while(Result::ok)
                    .map(|sample| sample as f32 / scale)
                    .collect()
            }
        };
        let samples: Vec<f32> = interleaved.iter().step_by(channels).copied().collect();
        if samples.is_empty() {
            return Err("no samples".into());
        }
        Ok(Audio {
            samples,
            sample_rate: spec.sample_rate,
        })
    }
}

/// Streamed WAVs (OpenAI's, Kokoro's) cannot know their length when the header is sent: their
/// data chunk says 0xFFFFFFFF (or 0). That length is replaced by what the bytes hold (whole
/// sample frames), so the reader takes them; any other file is left as it is.
fn with_real_data_length(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Cow::Borrowed(bytes);
    }
    let mut at = 12usize;
    let mut frame = 1usize;
    while let (Some(id), Some(size)) = (bytes.get(at..at + 4), u32_at(at + 4)) {
        let body = at + 8;
        let size = size as usize;
        if id == b"fmt " {
            // The block align: bytes per frame, all channels.
            if let Some(align) = bytes.get(body + 12..body + 14) {
                frame = usize::from(u16::from_le_bytes([align[0], align[1]])).max(1);
            }
        }
        if id == b"data" {
            let left = bytes.len().saturating_sub(body);
            if size != 0 && size <= left {
                return Cow::Borrowed(bytes);
            }
            let Ok(real) = u32::try_from(left / frame * frame) else {
                return Cow::Borrowed(bytes);
            };
            let mut fixed = bytes.to_vec();
            fixed[at + 4..at + 8].copy_from_slice(&real.to_le_bytes());
            return Cow::Owned(fixed);
        }
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    Cow::Borrowed(bytes)
}

/// A voice: turns one sentence (already cleaned by [`super::text`]) into audio.
pub trait SpeechBackend: Send + Sync {
    fn sample_rate(&self) -> u32;
    /// `speed`: 1.0 is the voice's own pace.
    fn synthesize(&self, sentence: &str, speed: f32) -> Result<Audio, VoiceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut writer =
                hound::WavWriter::new(Cursor::new(&mut bytes), spec).expect("a WAV writer");
            for &sample in samples {
                writer.write_sample(sample).expect("write");
            }
            writer.finalize().expect("finalize");
        }
        bytes
    }

    #[test]
    fn a_wav_answer_is_decoded_to_mono_samples() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 24_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let bytes = wav(spec, &[16384, -1, -16384, -1, 0, -1]);
        let audio = Audio::decode_wav(&bytes).expect("decodes");
        assert_eq!(audio.sample_rate, 24_000);
        assert_eq!(audio.samples, [0.5, -0.5, 0.0]);
    }

    #[test]
    fn a_streamed_wav_without_lengths_is_read_to_its_end() {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut bytes = wav(spec, &[8192; 100]);
        // OpenAI's streamed answers: RIFF and data sizes 0xFFFFFFFF.
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let data = bytes
            .windows(4)
            .position(|w| w == b"data")
            .expect("a data chunk");
        bytes[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let audio = Audio::decode_wav(&bytes).expect("decodes");
        assert_eq!(audio.samples.len(), 100);
        assert!((audio.samples[0] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn what_is_not_wav_is_refused() {
        assert!(Audio::decode_wav(b"{\"error\": \"no\"}").is_err());
        assert!(Audio::decode_wav(b"").is_err());
    }

    #[test]
    fn a_truncated_or_empty_wav_is_an_error() {
        assert!(Audio::decode_wav(b"RIFF\x24\x00\x00\x00WAVEfmt ").is_err());
    }
}
