//! `desktop-mate listen`: hands-free listening on the microphone, in the terminal: each
//! utterance's text on its own line (a JSON object per line with `--json`) until `--utterances`,
//! `--seconds` or Ctrl-C. For users checking their microphone and the models, and for tests.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::commands::transcribe::{RecognizerArgs, model_paths};
use crate::voice::listen::{VadSettings, default_recognizers_dir};
use crate::voice::listener::{ListenConfig, ListenEvent, ListenWorker};
use crate::voice::microphone::input_devices;
use crate::voice::recognizers;

#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub models: RecognizerArgs,
    /// An input device by name (`--devices` lists them); default: the system's.
    #[arg(long)]
    pub device: Option<String>,
    /// Print the input devices and exit.
    #[arg(long)]
    pub devices: bool,
    /// Stop after this many utterances.
    #[arg(long)]
    pub utterances: Option<usize>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// A JSON object per utterance: text, language, audio_seconds, recognition_ms.
    #[arg(long)]
    pub json: bool,
    /// Download a recognizer of the catalogue (`moonshine-tiny-en`) into the recognizers
    /// folder (resumable, checked), and exit.
    #[arg(long, value_name = "ID")]
    pub pull: Option<String>,
}

pub fn run(args: ListenArgs) -> ExitCode {
    if let Some(id) = &args.pull {
        return pull(id);
    }
    if args.devices {
        for name in input_devices() {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    let models = &args.models;
    let (recognizer, vad) = match model_paths(
        models.recognizer.as_deref(),
        models.vad.as_deref(),
        &models.language,
    ) {
        Ok(paths) => paths,
        Err(err) => {
            eprintln!("listen: {err}");
            return ExitCode::from(2);
        }
    };
    let worker = ListenWorker::start(ListenConfig {
        recognizer,
        vad,
        language: models.language.clone(),
        device: args.device.clone(),
        hands_free: true,
        partial_words: true,
        threads: models.threads,
        vad_settings: VadSettings::default(),
    });
    let started = Instant::now();
    let deadline = args
        .seconds
        .map(|seconds| started + Duration::from_secs_f64(seconds.max(0.0)));
    let mut heard = 0;
    loop {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline)
            || args.utterances.is_some_and(|limit| heard >= limit)
        {
            return ExitCode::SUCCESS;
        }
        let Some(event) = worker.next_event(Duration::from_millis(100)) else {
            continue;
        };
        match event {
            ListenEvent::Ready {
                microphone,
                load_ms,
                pass_ms,
                partial_words,
            } => eprintln!(
                "listen: listening on {microphone} (ready in {load_ms:.0} ms; one pass {pass_ms:.0} ms, \
                 partial words {})",
                crate::voice::listener::partial_words_label(partial_words, true)
            ),
            ListenEvent::Failed(err) => {
                eprintln!("listen: {err}");
                return ExitCode::from(2);
            }
            ListenEvent::Heard {
                text,
                language,
                audio_seconds,
                recognition_ms,
            } => {
                heard += 1;
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "text": text,
                            "language": language,
                            "audio_seconds": (audio_seconds * 1000.0).round() / 1000.0,
                            "recognition_ms": recognition_ms.round(),
                        })
                    );
                } else {
                    println!("{text}");
                }
            }
            // The words so far, on stderr: stdout has one line per utterance.
            ListenEvent::Partial(text) => eprintln!("listen: … {text}"),
            ListenEvent::NotUnderstood(why) => eprintln!("listen: {why}"),
            ListenEvent::SpeechStarted | ListenEvent::Level(_) => {}
        }
    }
}

/// `listen --pull ID`: the catalogue recognizer into the recognizers folder, with its progress
/// on stderr.
fn pull(id: &str) -> ExitCode {
    let Some(dir) = default_recognizers_dir() else {
        eprintln!("listen: no home folder to keep recognizers in (set DESKTOP_MATE_RECOGNIZERS)");
        return ExitCode::from(2);
    };
    let mut shown = 0;
    let mut progress = |done: u64, total: u64| {
        let percent = done * 100 / total.max(1);
        if percent >= shown + 10 || done == total {
            shown = percent;
            eprintln!("listen: {id}: {percent} % of {:.0} MB", total as f64 / 1e6);
        }
    };
    let source = recognizers::Source::from_env();
    match recognizers::pull(&dir, id, &source, &mut progress, &AtomicBool::new(false)) {
        Ok(folder) => {
            println!("{}", folder.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("listen: {err}");
            ExitCode::from(2)
        }
    }
}
