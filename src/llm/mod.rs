//! The chat: the llama.cpp engine (streaming, KV-cache reuse), prompt formatting, model header
//! reading and the load plan. The Bevy glue (tasks, states, chat panel) is added next.

pub mod chat;
pub mod emotion;
pub mod emotion_stream;
pub mod engine;
pub mod history;
pub mod model_info;
mod persistence;
pub mod plan;
pub mod state;
mod tasks;
pub mod text;

pub use state::{
    ChatHistory, ClearHistory, LlmStatus, LlmTimings, ReplyFinished, ReplyText, SendChat, StopReply,
};

use bevy::prelude::*;

pub struct LlmPlugin;

impl Plugin for LlmPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((state::plugin, tasks::plugin, persistence::plugin));
    }
}
