//! Piper voices (`<name>.onnx` + `<name>.onnx.json`, as rhasspy/piper-voices publishes them)
//! for sherpa-onnx: [`prepare`] makes a voice folder once (the model with the metadata
//! sherpa-onnx reads, `tokens.txt` from the phoneme map, the Piper config kept as
//! `voice.json`); [`PiperVoice`] speaks with it. Bevy-free.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::VoiceError;
use super::phonemes::Espeak;
use super::tts::{Audio, SpeechBackend};
use crate::config::read_text_file;

/// Largest Piper config read (real ones are about 5 KB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest voice model accepted (Piper "high" voices are about 110 MB).
const MAX_MODEL_BYTES: u64 = 512 << 20;
/// The files of a prepared voice folder.
pub const MODEL_FILE: &str = "model.onnx";
pub const TOKENS_FILE: &str = "tokens.txt";
pub const CONFIG_FILE: &str = "voice.json";

/// The parts of a Piper voice's `.onnx.json` that speaking needs.
#[derive(Debug, Clone, Deserialize)]
pub struct PiperConfig {
    pub audio: AudioConfig,
    pub espeak: EspeakConfig,
    #[serde(default = "one")]
    pub num_speakers: u32,
    #[serde(default = "espeak")]
    pub phoneme_type: String,
    pub phoneme_id_map: BTreeMap<String, Vec<i64>>,
    #[serde(default)]
    pub language: Option<LanguageConfig>,
    #[serde(default)]
    pub inference: Option<InferenceConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AudioConfig {
    pub sample_rate: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EspeakConfig {
    pub voice: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LanguageConfig {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub name_english: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InferenceConfig {
    #[serde(default)]
    pub noise_scale: Option<f32>,
    #[serde(default)]
    pub length_scale: Option<f32>,
    #[serde(default)]
    pub noise_w: Option<f32>,
}

fn one() -> u32 {
    1
}

fn espeak() -> String {
    "espeak".into()
}

impl PiperConfig {
    pub fn read(path: &Path) -> Result<Self, VoiceError> {
        let text = read_text_file(path, MAX_CONFIG_BYTES)
            .map_err(|err| VoiceError::BadVoice(format!("{}: {err}", path.display())))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|err| VoiceError::BadVoice(format!("{}: {err}", path.display())))?;
        config
            .check()
            .map_err(|why| VoiceError::BadVoice(format!("{}: {why}", path.display())))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.phoneme_type != "espeak" {
            return Err(format!(
                "phoneme type {:?} is not supported (only espeak)",
                self.phoneme_type
            ));
        }
        if !(8_000..=48_000).contains(&self.audio.sample_rate) {
            return Err(format!(
                "sample rate {} Hz is not a voice's",
                self.audio.sample_rate
            ));
        }
        if self.phoneme_id_map.is_empty() || self.phoneme_id_map.len() > 4096 {
            return Err(format!(
                "{} phonemes in the phoneme map",
                self.phoneme_id_map.len()
            ));
        }
        if self
            .phoneme_id_map
            .values()
            .any(|ids| ids.first().is_none_or(|&id| !(0..100_000).contains(&id)))
        {
            return Err("a phoneme without a valid id in the phoneme map".into());
        }
        if self.num_speakers == 0 || self.num_speakers > 10_000 {
            return Err(format!("{} speakers", self.num_speakers));
        }
        Ok(())
    }

    /// The language's English name, as sherpa-onnx wants it in the model's metadata.
    fn language_name(&self) -> String {
        let code = self
            .language
            .as_ref()
            .and_then(|language| language.code.clone())
            .unwrap_or_else(|| self.espeak.voice.clone());
        self.language
            .as_ref()
            .and_then(|language| language.name_english.clone())
            .unwrap_or_else(|| match code.get(..2) {
                Some("fr") => "French".into(),
                Some("de") => "German".into(),
                Some("es") => "Spanish".into(),
                Some("it") => "Italian".into(),
                _ => "English".into(),
            })
    }

    /// `tokens.txt`: one `<symbol> <id>` line per phoneme (the line-break phoneme is left out,
    /// as sherpa-onnx's own conversion does: it cannot be written on a line).
    fn tokens(&self) -> String {
        let mut out = String::new();
        for (symbol, ids) in &self.phoneme_id_map {
            if symbol.contains('\n') || symbol.contains('\r') {
                continue;
            }
            if let Some(id) = ids.first() {
                let _ = writeln!(out, "{symbol} {id}");
            }
        }
        out
    }

    /// The metadata sherpa-onnx's VITS loader reads (its scripts/piper/add_meta_data.py).
    fn metadata(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_type", "vits".into()),
            ("comment", "piper".into()),
            ("language", self.language_name()),
            ("voice", self.espeak.voice.clone()),
            ("version", "1".into()),
            ("has_espeak", "1".into()),
            ("n_speakers", self.num_speakers.to_string()),
            ("sample_rate", self.audio.sample_rate.to_string()),
        ]
    }
}

/// Makes a voice folder `dest` from a Piper model and its config. The model is copied with
/// sherpa-onnx's metadata appended: an ONNX file is a protobuf `ModelProto`, and a repeated field
/// (`metadata_props`, number 14) may be appended after the others, so the graph itself is not
/// parsed or rewritten. Written into a temporary folder beside `dest`, then renamed.
pub fn prepare(model: &Path, config: &Path, dest: &Path) -> Result<(), VoiceError> {
    let piper = PiperConfig::read(config)?;
    let size = fs::metadata(model)
        .map_err(|err| VoiceError::BadVoice(format!("{}: {err}", model.display())))?
        .len();
    if size > MAX_MODEL_BYTES {
        return Err(VoiceError::BadVoice(format!(
            "{}: {size} bytes is more than a voice model's {MAX_MODEL_BYTES}",
            model.display()
        )));
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)
        .map_err(|err| VoiceError::Io(format!("{}: {err}", parent.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".voice-")
        .tempdir_in(parent)
        .map_err(|err| VoiceError::Io(format!("{}: {err}", parent.display())))?;
    let io =
        |path: &Path, err: std::io::Error| VoiceError::Io(format!("{}: {err}", path.display()));
    let staged_model = staging.path().join(MODEL_FILE);
    fs::copy(model, &staged_model).map_err(|err| io(model, err))?;
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&staged_model)
        .map_err(|err| io(&staged_model, err))?;
    file.write_all(&metadata_props(&piper.metadata()))
        .and_then(|()| file.sync_all())
        .map_err(|err| io(&staged_model, err))?;
    fs::write(staging.path().join(TOKENS_FILE), piper.tokens()).map_err(|err| io(dest, err))?;
    fs::copy(config, staging.path().join(CONFIG_FILE)).map_err(|err| io(config, err))?;
    // The voice it replaces is moved aside first and removed only once the new one is in.
    let old = parent.join(format!(".voice-old-{}", std::process::id()));
    let replacing = dest.exists();
    if replacing {
        let _ = fs::remove_dir_all(&old);
        fs::rename(dest, &old).map_err(|err| io(dest, err))?;
    }
    let staged = staging.keep();
    match fs::rename(&staged, dest) {
        Ok(()) => {
            if replacing {
                let _ = fs::remove_dir_all(&old);
            }
            Ok(())
        }
        Err(err) => {
            let _ = fs::remove_dir_all(&staged);
            if replacing {
                let _ = fs::rename(&old, dest);
            }
            Err(io(dest, err))
        }
    }
}

/// `ModelProto.metadata_props` entries (field 14, `StringStringEntryProto { key = 1; value = 2 }`)
/// in protobuf's wire format.
fn metadata_props(entries: &[(&str, String)]) -> Vec<u8> {
    fn varint(mut value: usize, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    fn field(number: u8, bytes: &[u8], out: &mut Vec<u8>) {
        out.push((number << 3) | 2);
        varint(bytes.len(), out);
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    for (key, value) in entries {
        let mut entry = Vec::new();
        field(1, key.as_bytes(), &mut entry);
        field(2, value.as_bytes(), &mut entry);
        field(14, &entry, &mut out);
    }
    out
}

/// A prepared Piper voice, speaking through sherpa-onnx with eSpeak NG's phonemes.
pub struct PiperVoice {
    tts: sherpa_onnx::OfflineTts,
    espeak: Espeak,
    espeak_voice: String,
    sample_rate: u32,
    folder: PathBuf,
}

impl PiperVoice {
    /// Loads a folder made by [`prepare`]. `threads`: sherpa-onnx's (one is the fastest on 2 cores).
    pub fn open(folder: &Path, espeak: Espeak, threads: u32) -> Result<Self, VoiceError> {
        let config = PiperConfig::read(&folder.join(CONFIG_FILE))?;
        let model = folder.join(MODEL_FILE);
        let tokens = folder.join(TOKENS_FILE);
        for file in [&model, &tokens] {
            if !file.is_file() {
                return Err(VoiceError::BadVoice(format!(
                    "{} is missing",
                    file.display()
                )));
            }
        }
        let inference = config.inference.clone();
        let scale = |pick: fn(&InferenceConfig) -> Option<f32>,
                     default: f32,
                     range: std::ops::RangeInclusive<f32>| {
            inference
                .as_ref()
                .and_then(pick)
                .filter(|value| range.contains(value))
                .unwrap_or(default)
        };
        let tts_config = sherpa_onnx::OfflineTtsConfig {
            model: sherpa_onnx::OfflineTtsModelConfig {
                vits: sherpa_onnx::OfflineTtsVitsModelConfig {
                    model: Some(path_text(&model)?),
                    tokens: Some(path_text(&tokens)?),
                    noise_scale: scale(|i| i.noise_scale, 0.667, 0.0..=2.0),
                    noise_scale_w: scale(|i| i.noise_w, 0.8, 0.0..=2.0),
                    length_scale: scale(|i| i.length_scale, 1.0, 0.2..=5.0),
                    ..Default::default()
                },
                num_threads: threads.clamp(1, 8) as i32,
                provider: Some("cpu".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let tts = sherpa_onnx::OfflineTts::create(&tts_config).ok_or_else(|| {
            VoiceError::BadVoice(format!(
                "sherpa-onnx could not load the voice model {} (the log says why)",
                model.display()
            ))
        })?;
        let sample_rate = u32::try_from(tts.sample_rate()).unwrap_or(0);
        if sample_rate == 0 {
            return Err(VoiceError::BadVoice(format!(
                "{}: no sample rate",
                model.display()
            )));
        }
        Ok(Self {
            tts,
            espeak,
            espeak_voice: config.espeak.voice,
            sample_rate,
            folder: folder.to_owned(),
        })
    }

    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The IPA eSpeak NG gives for `sentence` in this voice's language (what [`Self::synthesize`]
    /// speaks).
    pub fn phonemes(&self, sentence: &str) -> Result<String, VoiceError> {
        self.espeak.phonemes(&self.espeak_voice, sentence)
    }
}

fn path_text(path: &Path) -> Result<String, VoiceError> {
    path.to_str()
        .filter(|text| !text.contains('\0'))
        .map(str::to_owned)
        .ok_or_else(|| VoiceError::BadVoice(format!("{} is not a UTF-8 path", path.display())))
}

impl SpeechBackend for PiperVoice {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn synthesize(&self, sentence: &str, speed: f32) -> Result<Audio, VoiceError> {
        let phonemes = self.phonemes(sentence)?;
        if phonemes.is_empty() {
            return Ok(Audio {
                samples: Vec::new(),
                sample_rate: self.sample_rate,
            });
        }
        let config = sherpa_onnx::GenerationConfig {
            speed: speed.clamp(0.5, 2.0),
            phoneme_codepoints: Some(vec![phonemes.chars().map(|c| c as i32).collect()]),
            ..Default::default()
        };
        let audio = self
            .tts
            .generate_with_config("", &config, None::<fn(&[f32], f32) -> bool>)
            .ok_or_else(|| VoiceError::Synthesis(format!("no audio for {sentence:?}")))?;
        if audio.sample_rate() <= 0 {
            return Err(VoiceError::Synthesis(format!("no audio for {sentence:?}")));
        }
        Ok(Audio {
            samples: audio.samples().to_vec(),
            sample_rate: audio.sample_rate() as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_encoded_as_protobuf_entries() {
        let bytes = metadata_props(&[("voice", "en-us".into())]);
        // field 14 (len 14) { field 1 "voice", field 2 "en-us" }
        assert_eq!(
            bytes,
            [
                [0x72, 14, 0x0a, 5].as_slice(),
                b"voice",
                &[0x12, 5],
                b"en-us"
            ]
            .concat()
        );
        let long = metadata_props(&[("k", "v".repeat(200))]);
        assert_eq!(
            &long[..3],
            &[0x72, 0xce, 0x01],
            "lengths over 127 take two varint bytes"
        );
    }

    #[test]
    fn tokens_keep_the_space_phoneme_and_skip_the_line_break() {
        let config: PiperConfig = serde_json::from_str(
            r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en-us"},
                "phoneme_id_map":{" ":[3],"\n":[9],"a":[14],"ˈ":[120]}}"#,
        )
        .unwrap_or_else(|err| panic!("{err}"));
        assert!(config.check().is_ok());
        assert_eq!(config.tokens(), "  3\na 14\nˈ 120\n");
        assert!(config.metadata().contains(&("sample_rate", "22050".into())));
    }

    #[test]
    fn hostile_configs_are_refused_with_the_reason() {
        let refuse = |json: &str, why: &str| {
            let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
            let path = dir.path().join("v.onnx.json");
            fs::write(&path, json).unwrap_or_else(|err| panic!("{err}"));
            match PiperConfig::read(&path) {
                Err(VoiceError::BadVoice(reason)) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{json}: {other:?}"),
            }
        };
        let map = r#""phoneme_id_map":{"a":[1]}"#;
        refuse(
            &format!(r#"{{"audio":{{"sample_rate":0}},"espeak":{{"voice":"en"}},{map}}}"#),
            "sample rate",
        );
        refuse(
            &format!(
                r#"{{"audio":{{"sample_rate":22050}},"espeak":{{"voice":"en"}},"phoneme_type":"pinyin",{map}}}"#
            ),
            "pinyin",
        );
        refuse(
            r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en"},"phoneme_id_map":{"a":[]}}"#,
            "valid id",
        );
        refuse("{not json", "key must be a string");
    }
}
