//! `desktop-mate voice list|pull ID`: the voice catalogue (src/voice/catalogue.rs) and its
//! downloads — resumable, size and SHA-256 checked (the models' download engine), then
//! prepared into the voices folder, where `say --voice ID` finds them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use crate::models::{DownloadRequest, download};
use crate::voice::catalogue::{self, BASE_URL};
use crate::voice::{default_voices_dir, piper};

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
            match pull(&voices, &id, base_url.as_deref().unwrap_or(BASE_URL)) {
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

/// A prepared voice folder of the catalogue, when it is installed.
pub fn installed(voices: &Path, id: &str) -> Option<PathBuf> {
    let folder = voices.join(id);
    folder.join(piper::MODEL_FILE).is_file().then_some(folder)
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
                "installed": installed(voices, voice.id).is_some(),
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
            if installed(voices, voice.id).is_some() {
                "installed"
            } else {
                ""
            }
        );
    }
}

fn pull(voices: &Path, id: &str, base_url: &str) -> Result<PathBuf, String> {
    let voice = catalogue::find(id).ok_or_else(|| {
        let ids: Vec<&str> = catalogue::VOICES.iter().map(|voice| voice.id).collect();
        format!("no voice {id:?} in the catalogue ({})", ids.join(", "))
    })?;
    let downloads = voices.join(".downloads");
    let cancel = AtomicBool::new(false);
    let fetch = |suffix: &str, bytes: u64, sha256: &str| -> Result<PathBuf, String> {
        let file_name = format!("{}{suffix}", voice.id);
        let mut request = DownloadRequest::new(
            format!("{}/{}{suffix}", base_url.trim_end_matches('/'), voice.path),
            &downloads,
            file_name,
        );
        request.expected_size = Some(bytes);
        request.sha256 = Some(sha256.to_owned());
        let mut last_tenth = None;
        let mut progress = |progress: crate::models::Progress| {
            let tenth = progress
                .bytes_total
                .map(|total| progress.bytes_done * 10 / total.max(1));
            if tenth != last_tenth {
                last_tenth = tenth;
                eprintln!(
                    "voice: {}{suffix}: {:.1} of {:.1} MiB",
                    voice.id,
                    progress.bytes_done as f64 / 1_048_576.0,
                    bytes as f64 / 1_048_576.0
                );
            }
        };
        download(&request, &mut progress, &cancel)
            .map_err(|err| format!("{}{suffix}: {err}", voice.id))
    };
    let config = fetch(".onnx.json", voice.config_bytes, voice.config_sha256)?;
    let model = fetch(".onnx", voice.model_bytes, voice.model_sha256)?;
    let folder = voices.join(voice.id);
    piper::prepare(&model, &config, &folder).map_err(|err| err.to_string())?;
    // The prepared folder holds a copy: the downloads are not needed any more.
    for file in [&model, &config] {
        let _ = std::fs::remove_file(file);
    }
    Ok(folder)
}
