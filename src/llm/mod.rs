//! The chat. Free of Bevy: the contract every backend implements (`contract`), the
//! conversation over it (`conversation/`), llama.cpp in this process (`runtime/`), an
//! OpenAI-compatible server (`openai`), which backend to load and how (`plan`, `load`). The
//! thin Bevy glue runs the session off the frame loop (`tasks`), keeps its state (`state`),
//! its history file (`persistence`), its overlay rows (`metrics`) and model downloads
//! (`downloads`).

pub mod contract;
pub mod conversation;
mod downloads;
pub mod load;
mod metrics;
pub mod openai;
mod persistence;
pub mod plan;
pub mod runtime;
pub mod state;
mod tasks;

pub use downloads::{CancelDownload, ModelDownloads, StartDownload};
pub use metrics::LlmDiagnostics;
pub use state::{
    ChatDraft, ChatHistory, ClearHistory, LlmStatus, LlmTimings, ModelChosen, ReplyFinished,
    ReplyText, SendChat, StopReply,
};
pub use tasks::RecallProvider;

use bevy::prelude::*;

pub struct LlmPlugin;

impl Plugin for LlmPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((
            state::plugin,
            tasks::plugin,
            persistence::plugin,
            metrics::plugin,
            downloads::plugin,
        ));
    }
}
