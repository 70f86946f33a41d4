//! The voice: replies spoken sentence by sentence while they stream (docs/voice.md). Bevy-free
//! engine: [`text`] (sentences and what is not spoken), [`phonemes`] (eSpeak NG, a separate
//! program), [`piper`] (Piper voices through sherpa-onnx), [`server`] (an OpenAI-compatible
//! speech server), [`tts`] (the [`tts::SpeechBackend`] seam and audio), [`playback`] (the speaker), [`lipsync`] (the mouth from the sound),
//! [`worker`] (the voice's thread); speech in: [`recognize`] (Moonshine, Whisper), [`recognizers`] (their catalogue), [`listen`] (Silero VAD,
//! transcription), [`microphone`], [`listener`] (listening's thread). The [`VoicePlugin`] is
//! thin glue: `output.rs` (the worker from the settings, fed by the chat), `input.rs` (the
//! listener from the settings, push-to-talk, what it heard to the chat), `downloads.rs`
//! (catalogue voices and recognizers from the settings panel), `mouth.rs` (the avatar's mouth), `metrics.rs`.

pub mod catalogue;
mod downloads;
pub mod folders;
mod input;
pub mod lipsync;
pub mod listen;
pub mod listener;
mod metrics;
pub mod microphone;
mod mouth;
mod output;
pub mod phonemes;
pub mod piper;
pub mod playback;
pub mod recognize;
pub mod recognizers;
pub mod server;
pub mod text;
pub mod tts;
pub mod worker;

use bevy::prelude::*;

pub use downloads::{DownloadRecognizer, DownloadVoice, VoiceDownloads};
pub use input::{HoldToTalk, LISTENING_FACE, ListenInput, ListenStatus, SpeechDraft};
pub use metrics::VoiceDiagnostics;
pub use output::{SaySample, VoiceOutput, VoiceStatus, VoiceTimings};

/// Speaks the replies with the voice of the `voice` settings, and listens with the `listen`
/// ones.
pub struct VoicePlugin;

impl Plugin for VoicePlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((
            output::plugin,
            input::plugin,
            downloads::plugin,
            mouth::plugin,
            metrics::plugin,
        ));
    }
}

/// Why the voice could not speak.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VoiceError {
    #[error(
        "eSpeak NG, which turns text into phonemes for the voice, was not found ({0}); install it \
         (Debian/Ubuntu: apt install espeak-ng; Windows: the installer from \
         github.com/espeak-ng/espeak-ng/releases) or set voice.espeak_ng"
    )]
    NoEspeak(String),
    #[error("eSpeak NG: {0}")]
    Espeak(String),
    #[error("voice: {0}")]
    BadVoice(String),
    #[error(
        "the voice {0} is not downloaded yet: Download in the settings (F2, Voice), or \
         desktop-mate voice pull {0}"
    )]
    NotDownloaded(String),
    #[error("no microphone ({0}); type your messages, the rest works")]
    NoMicrophone(String),
    #[error("listening: {0}")]
    Listen(String),
    #[error("speech synthesis failed: {0}")]
    Synthesis(String),
    #[error("no sound output ({0}); the text chat goes on without the voice")]
    NoSound(String),
    #[error("{0}")]
    Io(String),
}

/// Where prepared voices live: `DESKTOP_MATE_VOICES`, else `voices` beside the models folder.
pub fn default_voices_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("DESKTOP_MATE_VOICES").filter(|dir| !dir.is_empty()) {
        return Some(dir.into());
    }
    directories::ProjectDirs::from("", "", "desktop-mate")
        .map(|dirs| dirs.data_dir().join("voices"))
}
