//! The chat: model header reading and the load plan (profile, GPU layers, threads).
//! The llama.cpp session, streaming and the chat panel are added by the LLM work.

pub mod model_info;
pub mod plan;

use bevy::prelude::*;

pub struct LlmPlugin;

impl Plugin for LlmPlugin {
    fn build(&self, _app: &mut App) {}
}
