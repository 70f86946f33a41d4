//! The command line. Other features add their subcommands here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "desktop-mate",
    version,
    about = "A VRM desktop mascot that chats through a local LLM (llama.cpp).",
    long_about = "A VRM desktop mascot that chats through a local LLM (llama.cpp).\n\n\
        Without a subcommand it runs the mascot. Settings are read from --config PATH, else \
        from mascot.ron in the user's config folder (written from the bundled default on first \
        run). Logs go to stderr; every --json output is one JSON object on stdout."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command takes.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Settings file to use instead of the one in the user's config folder.
    #[arg(long, global = true, value_name = "PATH", env = "DESKTOP_MATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// GGUF model for this run (not saved to the settings).
    #[arg(long, global = true, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// VRM avatar for this run (not saved to the settings).
    #[arg(long, global = true, value_name = "PATH")]
    pub avatar: Option<PathBuf>,
    /// Put the window back on the primary monitor at scale 1 and forget its saved place and
    /// scale (state.ron): for a mascot lost off-screen or too big. Used by `run` (the default
    /// command) only.
    #[arg(long, global = true)]
    pub reset_window: bool,
}

impl GlobalArgs {
    /// The overrides of a terminal command or `snapshot`: `--reset-window` is the mascot's
    /// (`run`) only, so no other command changes what the app saved about its window.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            model: self.model.clone(),
            avatar: self.avatar.clone(),
            reset_window: false,
        }
    }

    /// The overrides of `run`.
    pub fn run_overrides(&self) -> Overrides {
        Overrides {
            reset_window: self.reset_window,
            ..self.overrides()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the mascot (the default).
    Run {
        /// Record every diagnostics sample to this CSV file from the start.
        #[arg(long, value_name = "FILE.csv")]
        record_diagnostics: Option<PathBuf>,
    },
    /// Validate the settings and report the hardware and how the model would be loaded.
    ///
    /// Prints the CPU, RAM, NVIDIA GPU (via NVML), the model's size and layer count, and the
    /// profile, GPU layers and threads `auto` picks, with the reason. Exits 0 when the
    /// settings are valid, 2 with a file:line:column message when they are not.
    Check {
        /// Print one JSON object on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Chat with the persona in the terminal: replies stream as they are generated and
    /// Ctrl-C stops the current reply (a second Ctrl-C, or an empty line, quits).
    Chat(crate::commands::chat::ChatArgs),
    /// Measure the chat engine on a model: load, warm-up, time to first token (cold, warmed,
    /// later, turn 1 vs the last turn of a long conversation), prompt and decode speed, and a
    /// threads / context size / reply length sweep. Greedy sampling, seed 1.
    Bench(crate::commands::bench::BenchArgs),
    /// Run the engine without a window and report RSS after start, model load, the first
    /// generation and each message count, with the growth per message over the last stage
    /// and a leak verdict.
    ProfileMemory(crate::commands::profile::ProfileArgs),
    /// The model catalogue: list what fits this machine, download (resumable, verified) or
    /// remove a model.
    Model(crate::commands::model::ModelArgs),
    /// Print process, system and NVIDIA GPU metrics (the overlay's) until Ctrl-C.
    Monitor(crate::commands::monitor::MonitorArgs),
    /// The motion clips (VRM Animation): `motion list` names them, for `snapshot --motion`.
    Motion(crate::commands::motion::MotionArgs),
    /// Long-term memory: list, search, add, forget (one or all), export and import.
    Memory(crate::commands::memory::MemoryArgs),
    /// Speak text with a voice into a WAV file (Piper voices, eSpeak NG for the phonemes).
    Say(crate::commands::say::SayArgs),
    /// Print what is said in a WAV recording (Silero VAD + Whisper, offline; JSON with
    /// `--json`: text, language, segments, timings).
    Transcribe(crate::commands::transcribe::TranscribeArgs),
    /// Listen on the microphone (hands-free: Silero VAD starts and ends each utterance) and
    /// print what is said, until --utterances, --seconds or Ctrl-C.
    Listen(crate::commands::listen::ListenArgs),
    /// The voice catalogue: list (language, size, licence) and download (resumable, verified).
    Voice(crate::commands::voice::VoiceArgs),
    /// Test-renders a chat template read as JSON on stdin (run by the mascot itself, in a
    /// child process, before it uses a new model's template).
    #[command(name = "vet-template", hide = true)]
    VetTemplate,
    /// Open the real mascot window, wait until the avatar is loaded and its expressions have
    /// settled, save the window's pixels with alpha to a PNG and exit 0 (works under Xvfb).
    Snapshot(crate::commands::snapshot::SnapshotArgs),
}
