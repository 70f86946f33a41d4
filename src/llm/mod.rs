//! The chat: one [`session::ChatSession`] over a backend (the llama.cpp engine in this process:
//! streaming, KV-cache reuse; or an OpenAI-compatible server, [`openai`]), prompt formatting, model header reading and the load
//! plan — all free of Bevy — and the thin Bevy glue that runs the session off the frame loop
//! (`tasks`), keeps its state (`state`) and its history file (`persistence`).

pub mod backends;
pub mod chat;
mod downloads;
pub mod emotion;
pub mod emotion_stream;
pub mod engine;
pub mod history;
mod local;
mod metrics;
pub mod model_info;
pub mod openai;
mod persistence;
pub mod plan;
pub mod session;
pub mod state;
mod tasks;
pub mod template;
pub mod template_vet;
pub mod text;
pub mod warm_file;

pub use downloads::{CancelDownload, ModelDownloads, StartDownload};
pub use metrics::LlmDiagnostics;
pub use state::{
    ChatHistory, ClearHistory, LlmStatus, LlmTimings, ModelChosen, ReplyFinished, ReplyText,
    SendChat, StopReply,
};

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
