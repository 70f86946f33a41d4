//! `desktop-mate voice list|pull ID`: the voice catalogue (src/voice/catalogue.rs) and its
//! downloads — resumable, size and SHA-256 checked (the models' download engine), then
//! prepared into the voices folder, where `say --voice ID` finds them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use crate::voice::catalogue::{self, BASE_URL};
use crate::voice::{default_voices_dir, folders};

#[derive(Debug, Clone, clap::Args)]
pub struct VoiceArgs {
    #[command(subcommand)]
    pub action: VoiceAction,
    /// Where voices are kept (default: `voices` in the data folder; DESKTOP_MATE_VOICES).
    #[arg(long, global = true)]
    pub voices: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum VoiceAction {
    /// The catalogue: language, size, licence, installed or not.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Download a voice of the catalogue (resumable, checked) and prepare it.
    Pull {
        id: String,
        /// Another server with the same layout (tests, mirrors).
        #[arg(long, env = "DESKTOP_MATE_VOICE_BASE_URL", hide = true)]
        base_url: Option<String>,
    },
}

pub fn run(args: VoiceArgs) -> ExitCode {
    let Some(voices) = args.voices.clone().or_else(default_voices_dir) else {
        eprintln!("voice: no home folder to keep voices in");
        return ExitCode::from(2);
    };
    match args.action {
        VoiceAction::List { json } => {
            list(&voices, json);
            ExitCode::SUCCESS
        }
        VoiceAction::Pull { id, base_url } => {
            let cancel = AtomicBool::new(false);
            let mut last_tenth = None;
            let mut progress = |file: &str, progress: crate::models::Progress| {
                let tenth = progress
                    .bytes_total
                    .map(|total| progress.bytes_done * 10 / total.max(1));
                if tenth != last_tenth {
                    last_tenth = tenth;
                    eprintln!(
                        "voice: {file}: {:.1} of {:.1} MiB",
                        progress.bytes_done as f64 / 1_048_576.0,
                        progress.bytes_total.unwrap_or(0) as f64 / 1_048_576.0
                    );
                }
            };
            let base_url = base_url.as_deref().unwrap_or(BASE_URL);
            match catalogue::pull(&voices, &id, base_url, &mut progress, &cancel) {
                Ok(folder) => {
                    eprintln!("voice: {id} is ready in {}", folder.display());
                    println!("{}", folder.display());
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("voice: {message}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn list(voices: &Path, json: bool) {
    let rows: Vec<serde_json::Value> = catalogue::VOICES
        .iter()
        .map(|voice| {
            serde_json::json!({
                "id": voice.id,
                "language": voice.language,
                "licence": voice.licence,
                "sample_rate": voice.sample_rate,
                "mib": (voice.model_bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0,
                "installed": folders::installed(voices, voice.id).is_some(),
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    for voice in catalogue::VOICES {
        println!(
            "{:<20} {:<13} {:>4.0} MiB  {:<12} {}",
            voice.id,
            voice.language,
            voice.model_bytes as f64 / 1_048_576.0,
            voice.licence,
            if folders::installed(voices, voice.id).is_some() {
                "installed"
            } else {
                ""
            }
        );
    }
}
