//! `desktop-mate transcribe FILE.wav`: prints what is said in a recording (JSON with `--json`:
//! text, language, segments, timings), with listening's engine: Silero VAD cuts the recording
//! into utterances, Moonshine or Whisper (sherpa-onnx) recognizes each. Offline; nothing is written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::voice::VoiceError;
use crate::voice::listen::{Transcriber, Vad, VadSettings, default_recognizers_dir, transcribe};
use crate::voice::recognize::{Recognizer, default_recognizer, whisper_language};
use crate::voice::tts::Audio;

#[derive(Debug, Clone, clap::Args)]
pub struct TranscribeArgs {
    /// A WAV file (any rate, mono or the first channel).
    pub file: PathBuf,
    #[command(flatten)]
    pub models: RecognizerArgs,
    /// One JSON object on stdout: text, language, segments, timings.
    #[arg(long)]
    pub json: bool,
}

/// The recognizer, the detector and the language (`transcribe`, `listen`).
#[derive(Debug, Clone, clap::Args)]
pub struct RecognizerArgs {
    /// A folder with a model exported for sherpa-onnx: Moonshine (`encoder_model.ort`,
    /// `decoder_model_merged.ort`, `tokens.txt`; English) or Whisper (`NAME-encoder.int8.onnx`,
    /// `NAME-decoder.int8.onnx`, `NAME-tokens.txt`); default: `moonshine-tiny-en` in the
    /// recognizers folder with `--language en`, else `whisper-base` (docs/listening.md).
    #[arg(long, env = "DESKTOP_MATE_RECOGNIZER")]
    pub recognizer: Option<PathBuf>,
    /// Silero VAD's ONNX model; default: `silero-vad.onnx` in the recognizers folder.
    #[arg(long, env = "DESKTOP_MATE_VAD")]
    pub vad: Option<PathBuf>,
    /// `auto`, or the language spoken (a code such as en or fr: faster and surer).
    #[arg(long, default_value = "auto")]
    pub language: String,
    /// Threads for recognition.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
}

pub fn run(args: TranscribeArgs) -> ExitCode {
    match transcribe_file(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("transcribe: {err}");
            ExitCode::from(2)
        }
    }
}

/// The recognizer and detector of `--recognizer` / `--vad`, or the default ones (the
/// recognizer's follows `language`: [`default_recognizer`]).
pub fn model_paths(
    recognizer: Option<&Path>,
    vad: Option<&Path>,
    language: &str,
) -> Result<(PathBuf, PathBuf), VoiceError> {
    let dir = default_recognizers_dir();
    let pick = |given: Option<&Path>, default: &str| {
        given
            .map(Path::to_owned)
            .or_else(|| dir.as_ref().map(|dir| dir.join(default)))
            .ok_or_else(|| {
                VoiceError::Listen(format!(
                    "no home folder for the default {default}: pass its path"
                ))
            })
    };
    Ok((
        pick(recognizer, default_recognizer(language))?,
        pick(vad, "silero-vad.onnx")?,
    ))
}

fn transcribe_file(args: &TranscribeArgs) -> Result<(), VoiceError> {
    let models = &args.models;
    let language = whisper_language(&models.language)?;
    // The recording first: a wrong file is said before any model loads.
    let audio = Audio::read_wav(&args.file)?;
    let (recognizer, vad) = model_paths(
        models.recognizer.as_deref(),
        models.vad.as_deref(),
        &models.language,
    )?;
    let started = Instant::now();
    let mut transcriber = Transcriber {
        recognizer: Recognizer::open(&recognizer, &models.language, models.threads)?,
        vad: Vad::open(&vad, VadSettings::default())?,
    };
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let transcript = transcribe(&mut transcriber, &audio, &language)?;
    if args.json {
        let mut report = serde_json::to_value(&transcript)
            .map_err(|err| VoiceError::Io(format!("cannot write the report: {err}")))?;
        report["file"] = args.file.display().to_string().into();
        report["recognizer"] = recognizer.display().to_string().into();
        report["timings"]["load_ms"] = ((load_ms * 10.0).round() / 10.0).into();
        println!("{report}");
    } else {
        println!("{}", transcript.text);
    }
    Ok(())
}
