//! Speech to text with sherpa-onnx's offline recognizers: listening ([`super::listen`]) and the
//! voice tests (which check what the mascot said) use it. Two kinds of model, told apart by the
//! files in their folder: Whisper (multilingual, language identification) and Moonshine v2
//! (English only, about five times faster on a CPU). Bevy-free.

use std::path::Path;
use std::sync::OnceLock;

use super::VoiceError;
use super::tts::Audio;

/// The sample rate the recognizers' features are computed at (other rates are resampled).
const WHISPER_RATE: u32 = 16_000;

/// The default recognizer's folder (under `recognizers/` in the data folder) for a
/// `listen.language`: Moonshine tiny for English, Whisper base for any other or `auto`.
pub fn default_recognizer(language: &str) -> &'static str {
    if language.trim().eq_ignore_ascii_case("en") {
        MOONSHINE_TINY_EN
    } else {
        WHISPER_BASE
    }
}

pub const WHISPER_BASE: &str = "whisper-base";
pub const MOONSHINE_TINY_EN: &str = "moonshine-tiny-en";

/// A speech recognizer exported for sherpa-onnx, in one folder: Whisper's
/// `<name>-encoder.int8.onnx`, `<name>-decoder.int8.onnx` and `<name>-tokens.txt`
/// (scripts/fetch-recognizer.sh makes `base`), or Moonshine v2's `encoder_model.ort`,
/// `decoder_model_merged.ort` and `tokens.txt` (`.onnx` too; scripts/fetch-listen.sh makes tiny).
pub struct Recognizer {
    recognizer: sherpa_onnx::OfflineRecognizer,
    /// Whisper's encoder and decoder, for the language identifier made on first use;
    /// `None` for Moonshine, which hears English only.
    files: Option<(String, String)>,
    threads: i32,
    identifier: OnceLock<Result<sherpa_onnx::SpokenLanguageIdentification, VoiceError>>,
}

/// A model file in `folder` as the UTF-8 path sherpa-onnx takes.
fn model_file(folder: &Path, name: &str) -> Result<String, VoiceError> {
    let path = folder.join(name);
    if !path.is_file() {
        return Err(VoiceError::Listen(format!(
            "the recognizer's {} is missing",
            path.display()
        )));
    }
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| VoiceError::Listen(format!("{} is not a UTF-8 path", path.display())))
}

/// The Moonshine v2 model file `stem` in `folder` (`.ort` or `.onnx`), if there.
fn moonshine_file(folder: &Path, stem: &str) -> Option<String> {
    ["ort", "onnx"]
        .iter()
        .map(|ext| format!("{stem}.{ext}"))
        .find(|name| folder.join(name).is_file())
}

impl Recognizer {
    /// The model in `folder`, Moonshine or Whisper (see [`whisper_name`]); `language`: `auto`
    /// or a code.
    pub fn open(folder: &Path, language: &str, threads: u32) -> Result<Self, VoiceError> {
        if let Some(encoder) = moonshine_file(folder, "encoder_model") {
            return Self::moonshine(folder, &encoder, language, threads);
        }
        let name = whisper_name(folder)?;
        Self::whisper(folder, &name, &whisper_language(language)?, threads)
    }

    /// A Moonshine v2 export (English only): `language` must be `auto`, `en` or empty.
    fn moonshine(
        folder: &Path,
        encoder: &str,
        language: &str,
        threads: u32,
    ) -> Result<Self, VoiceError> {
        let language = whisper_language(language)?;
        if !language.is_empty() && language != "en" {
            return Err(VoiceError::Listen(format!(
                "the recognizer in {} (Moonshine) hears English only, not {language:?}: set \
                 listen.language to en or auto, or use a Whisper recognizer (docs/listening.md)",
                folder.display()
            )));
        }
        let decoder = moonshine_file(folder, "decoder_model_merged").ok_or_else(|| {
            VoiceError::Listen(format!(
                "the recognizer's {} is missing",
                folder.join("decoder_model_merged.ort").display()
            ))
        })?;
        let threads = threads.clamp(1, 8) as i32;
        let mut config = sherpa_onnx::OfflineRecognizerConfig::default();
        config.model_config.moonshine = sherpa_onnx::OfflineMoonshineModelConfig {
            encoder: Some(model_file(folder, encoder)?),
            merged_decoder: Some(model_file(folder, &decoder)?),
            ..Default::default()
        };
        Self::create(folder, config, "tokens.txt", threads, None)
    }

    /// `language`: a Whisper language code ("en", "fr"), or "" to detect it.
    pub fn whisper(
        folder: &Path,
        name: &str,
        language: &str,
        threads: u32,
    ) -> Result<Self, VoiceError> {
        let encoder = model_file(folder, &format!("{name}-encoder.int8.onnx"))?;
        let decoder = model_file(folder, &format!("{name}-decoder.int8.onnx"))?;
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
        let tokens = format!("{name}-tokens.txt");
        Self::create(folder, config, &tokens, threads, Some((encoder, decoder)))
    }

    fn create(
        folder: &Path,
        mut config: sherpa_onnx::OfflineRecognizerConfig,
        tokens: &str,
        threads: i32,
        files: Option<(String, String)>,
    ) -> Result<Self, VoiceError> {
        config.model_config.tokens = Some(model_file(folder, tokens)?);
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
            files,
            threads,
            identifier: OnceLock::new(),
        })
    }

    /// The language spoken in `audio`, as a Whisper code ("en", "fr"): Whisper's own language
    /// identification (its encoder and one decoder step), loaded on first use.
    /// An English-only model (Moonshine) answers "en" without listening.
    pub fn language(&self, audio: &Audio) -> Result<String, VoiceError> {
        let Some((encoder, decoder)) = &self.files else {
            return Ok("en".into());
        };
        let identifier = self
            .identifier
            .get_or_init(|| {
                let config = sherpa_onnx::SpokenLanguageIdentificationConfig {
                    whisper: sherpa_onnx::SpokenLanguageIdentificationWhisperConfig {
                        encoder: Some(encoder.clone()),
                        decoder: Some(decoder.clone()),
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

    /// The words heard in `audio` (at most 30 s: Whisper's window; the detector cuts longer
    /// speech at 25 s).
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
            "no speech recognizer in {} ({err}): {}put a model exported for sherpa-onnx \
             there: Moonshine (encoder_model.ort, decoder_model_merged.ort, tokens.txt) or \
             Whisper (NAME-encoder.int8.onnx, NAME-decoder.int8.onnx, NAME-tokens.txt; \
             docs/listening.md)",
            folder.display(),
            pull_hint(folder)
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
            "no NAME{SUFFIX} (Whisper) or encoder_model.ort (Moonshine) in {}: {}a model \
             exported for sherpa-onnx goes there (docs/listening.md)",
            folder.display(),
            pull_hint(folder)
        ))
    })
}

/// "download it ... or " when `folder` is where a default recognizer goes (the catalogue's
/// ids are the defaults' folder names), else nothing: `listen --pull` fills the recognizers
/// folder only.
fn pull_hint(folder: &Path) -> String {
    folder
        .file_name()
        .map(|name| name.to_string_lossy())
        .filter(|name| [MOONSHINE_TINY_EN, WHISPER_BASE].contains(&name.as_ref()))
        .map_or_else(String::new, |id| {
            format!(
                "download it in the settings (F2, Listening) or with `desktop-mate listen \
                 --pull {id}`, or "
            )
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
    fn english_is_moonshines_only_language_and_the_default_follows_the_setting() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("encoder_model.ort"), b"x").expect("write");
        let error = Recognizer::open(dir.path(), "fr", 1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("English only"), "{error}");
        let error = Recognizer::open(dir.path(), "en", 1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("decoder_model_merged.ort"), "{error}");
        assert_eq!(default_recognizer("EN "), MOONSHINE_TINY_EN);
        assert_eq!(default_recognizer("auto"), WHISPER_BASE);
        assert_eq!(default_recognizer("fr"), WHISPER_BASE);
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
