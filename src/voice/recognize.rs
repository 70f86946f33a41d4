//! Speech to text with sherpa-onnx's offline Whisper recognizer: the voice tests check what the
//! mascot said with it, and listening (push-to-talk) will use the same engine. Bevy-free.

use std::path::Path;

use super::VoiceError;
use super::tts::Audio;

/// The sample rate Whisper's features are computed at (other rates are resampled).
const WHISPER_RATE: u32 = 16_000;

/// A Whisper model exported for sherpa-onnx: `<name>-encoder*.onnx`, `<name>-decoder*.onnx` and
/// `<name>-tokens.txt` in one folder (scripts/fetch-recognizer.sh makes `base`).
pub struct Recognizer {
    recognizer: sherpa_onnx::OfflineRecognizer,
}

impl Recognizer {
    /// `language`: a Whisper language code ("en", "fr"), or "" to detect it.
    pub fn whisper(
        folder: &Path,
        name: &str,
        language: &str,
        threads: u32,
    ) -> Result<Self, VoiceError> {
        let file = |suffix: &str| -> Result<String, VoiceError> {
            let path = folder.join(format!("{name}-{suffix}"));
            if !path.is_file() {
                return Err(VoiceError::BadVoice(format!(
                    "{} is missing",
                    path.display()
                )));
            }
            path.to_str().map(str::to_owned).ok_or_else(|| {
                VoiceError::BadVoice(format!("{} is not a UTF-8 path", path.display()))
            })
        };
        let mut config = sherpa_onnx::OfflineRecognizerConfig::default();
        config.model_config.whisper = sherpa_onnx::OfflineWhisperModelConfig {
            encoder: Some(file("encoder.int8.onnx")?),
            decoder: Some(file("decoder.int8.onnx")?),
            language: Some(language.to_owned()),
            task: Some("transcribe".into()),
            tail_paddings: -1,
            ..Default::default()
        };
        config.model_config.tokens = Some(file("tokens.txt")?);
        config.model_config.num_threads = threads.clamp(1, 8) as i32;
        config.model_config.provider = Some("cpu".into());
        config.decoding_method = Some("greedy_search".into());
        let recognizer = sherpa_onnx::OfflineRecognizer::create(&config).ok_or_else(|| {
            VoiceError::BadVoice(format!(
                "sherpa-onnx could not load the recognizer in {}",
                folder.display()
            ))
        })?;
        Ok(Self { recognizer })
    }

    /// The words heard in `audio` (at most 30 s: Whisper's window).
    pub fn transcribe(&self, audio: &Audio) -> Result<String, VoiceError> {
        let samples = resample(audio, WHISPER_RATE)?;
        let stream = self.recognizer.create_stream();
        stream.accept_waveform(WHISPER_RATE as i32, &samples);
        self.recognizer.decode(&stream);
        let result = stream
            .get_result()
            .ok_or_else(|| VoiceError::Synthesis("the recognizer gave no result".into()))?;
        Ok(result.text.trim().to_owned())
    }
}

/// `audio`'s samples at `rate` (sherpa-onnx's linear resampler).
pub fn resample(audio: &Audio, rate: u32) -> Result<Vec<f32>, VoiceError> {
    if audio.sample_rate == rate {
        return Ok(audio.samples.clone());
    }
    let resampler = sherpa_onnx::LinearResampler::create(audio.sample_rate as i32, rate as i32)
        .ok_or_else(|| {
            VoiceError::Synthesis(format!("cannot resample {} Hz", audio.sample_rate))
        })?;
    Ok(resampler.resample(&audio.samples, true))
}
