//! The chat: the llama.cpp engine (streaming, KV-cache reuse), prompt formatting, model header
//! reading and the load plan. The Bevy glue (tasks, states, chat panel) is added next.

pub mod chat;
pub mod engine;
pub mod model_info;
pub mod plan;
pub mod text;

use bevy::prelude::*;

pub struct LlmPlugin;

impl Plugin for LlmPlugin {
    fn build(&self, _app: &mut App) {}
}
