//! Speech to text with sherpa-onnx's offline Whisper recognizer: listening ([`super::listen`])
//! and the voice tests (which check what the mascot said) use it. Bevy-free.

use std::path::Path;
use std::sync::OnceLock;

use super::VoiceError;
use super::tts::Audio;

/// The sample rate Whisper's features are computed at (other rates are resampled).
const WHISPER_RATE: u32 = 16_000;

/// A Whisper model exported for sherpa-onnx: `<name>-encoder*.onnx`, `<name>-decoder*.onnx` and
/// `<name>-tokens.txt` in one folder (scripts/fetch-recognizer.sh makes `base`).
pub struct Recognizer {
    recognizer: sherpa_onnx::OfflineRecognizer,
    /// The encoder and decoder, for the language identifier made on first use.
    files: (String, String),
    threads: i32,
    identifier: OnceLock<Result<sherpa_onnx::SpokenLanguageIdentification, VoiceError>>,
}

impl Recognizer {
    /// The Whisper export in `folder` (see [`whisper_name`]); `language`: `auto` or a code.
    pub fn open(folder: &Path, language: &str, threads: u32) -> Result<Self, VoiceError> {
        let name = whisper_name(folder)?;
        Self::whisper(folder, &name, &whisper_language(language)?, threads)
    }

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
                return Err(VoiceError::Listen(format!(
                    "the recognizer's {} is missing",
                    path.display()
                )));
            }
            path.to_str().map(str::to_owned).ok_or_else(|| {
                VoiceError::Listen(format!("{} is not a UTF-8 path", path.display()))
            })
        };
        let (encoder, decoder) = (file("encoder.int8.onnx")?, file("decoder.int8.onnx")?);
        let threads = threads.clamp(1, 8) as i32;
        let mut config = sherpa_onnx::OfflineRecognizerConfig::default();
        config.model_config.whisper = sherpa_onnx::OfflineWhisperModelConfig {
            encoder: Some(encoder.clone()),
            decoder: Some(decoder.clone()),
            language: Some(language.to_owned()),
            task: Some("transcribe".into()),
            tail_paddings: -1,
            ..Default::default()
        };
        config.model_config.tokens = Some(file("tokens.txt")?);
        config.model_config.num_threads = threads;
        config.model_config.provider = Some("cpu".into());
        config.decoding_method = Some("greedy_search".into());
        let recognizer = sherpa_onnx::OfflineRecognizer::create(&config).ok_or_else(|| {
            VoiceError::Listen(format!(
                "sherpa-onnx could not load the recognizer in {}",
                folder.display()
            ))
        })?;
        Ok(Self {
            recognizer,
            files: (encoder, decoder),
            threads,
            identifier: OnceLock::new(),
        })
    }

    /// The language spoken in `audio`, as a Whisper code ("en", "fr"): Whisper's own language
    /// identification (its encoder and one decoder step), loaded on first use.
    pub fn language(&self, audio: &Audio) -> Result<String, VoiceError> {
        let identifier = self
            .identifier
            .get_or_init(|| {
                let config = sherpa_onnx::SpokenLanguageIdentificationConfig {
                    whisper: sherpa_onnx::SpokenLanguageIdentificationWhisperConfig {
                        encoder: Some(self.files.0.clone()),
                        decoder: Some(self.files.1.clone()),
                        tail_paddings: -1,
                    },
                    num_threads: self.threads,
                    provider: Some("cpu".into()),
                    ..Default::default()
                };
                sherpa_onnx::SpokenLanguageIdentification::create(&config).ok_or_else(|| {
                    VoiceError::Listen("sherpa-onnx could not load the language identifier".into())
                })
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let samples = resample(audio, WHISPER_RATE)?;
        let stream = identifier.create_stream();
        stream.accept_waveform(WHISPER_RATE as i32, &samples);
        identifier
            .compute(&stream)
            .map(|result| result.lang)
            .ok_or_else(|| VoiceError::Listen("the language identifier gave no result".into()))
    }

    /// The words heard in `audio` (at most 30 s: Whisper's window).
    pub fn transcribe(&self, audio: &Audio) -> Result<String, VoiceError> {
        let samples = resample(audio, WHISPER_RATE)?;
        let stream = self.recognizer.create_stream();
        stream.accept_waveform(WHISPER_RATE as i32, &samples);
        self.recognizer.decode(&stream);
        let result = stream
            .get_result()
            .ok_or_else(|| VoiceError::Listen("the recognizer gave no result".into()))?;
        Ok(result.text.trim().to_owned())
    }
}

/// The Whisper export in `folder`: the `NAME` of its `NAME-encoder.int8.onnx`.
pub fn whisper_name(folder: &Path) -> Result<String, VoiceError> {
    const SUFFIX: &str = "-encoder.int8.onnx";
    let entries = std::fs::read_dir(folder).map_err(|err| {
        VoiceError::Listen(format!(
            "no speech recognizer in {} ({err}): put a Whisper model exported for sherpa-onnx \
             there (NAME-encoder.int8.onnx, NAME-decoder.int8.onnx, NAME-tokens.txt; \
             docs/listening.md)",
            folder.display()
        ))
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            name.strip_suffix(SUFFIX).map(str::to_owned)
        })
        .collect();
    names.sort();
    names.into_iter().next().ok_or_else(|| {
        VoiceError::Listen(format!(
            "no NAME{SUFFIX} in {}: a Whisper model exported for sherpa-onnx goes there \
             (docs/listening.md)",
            folder.display()
        ))
    })
}

/// `auto` (or empty) = "" (Whisper detects it); otherwise a two- or three-letter code.
pub fn whisper_language(setting: &str) -> Result<String, VoiceError> {
    let code = setting.trim().to_ascii_lowercase();
    if code.is_empty() || code == "auto" {
        return Ok(String::new());
    }
    if (2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase()) {
        return Ok(code);
    }
    Err(VoiceError::Listen(format!(
        "language {setting:?}: write auto or a language code such as en or fr"
    )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_auto_or_a_short_code() {
        assert_eq!(whisper_language("auto").ok().as_deref(), Some(""));
        assert_eq!(whisper_language(" FR ").ok().as_deref(), Some("fr"));
        assert!(whisper_language("french!").is_err());
        assert!(whisper_language("e1").is_err());
    }

    #[test]
    fn a_recognizer_folder_is_named_by_its_encoder() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(whisper_name(&dir.path().join("absent")).is_err());
        assert!(whisper_name(dir.path()).is_err());
        std::fs::write(dir.path().join("tiny-encoder.int8.onnx"), b"x").expect("write");
        assert_eq!(whisper_name(dir.path()).ok().as_deref(), Some("tiny"));
    }
}
