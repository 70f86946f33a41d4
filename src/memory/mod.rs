//! Long-term memory: facts about the user and episode summaries, per persona, in one SQLite
//! file beside the chat history, searched by llama.cpp embeddings (docs/architecture.md,
//! "Memory"). Bevy-free engine: [`store`] (the database), [`embed`] (the model seam),
//! [`recall`] (ranking and the token budget), [`engine`] (the three together, as the terminal
//! commands and the chat use them), [`observe`] (what is kept from a turn), [`extract`] (what the chat model
//! is asked when a conversation pauses, and what of its answer is kept); `plugin.rs` gives
//! the chat its [`crate::llm::contract::Recall`] seam, [`browse`] serves the Memory panel.

pub mod browse;
mod convert;
pub mod embed;
pub mod embedders;
pub mod engine;
pub mod extract;
pub mod observe;
mod plugin;
pub mod recall;
pub mod store;

use std::path::PathBuf;

use bevy::prelude::*;

pub use plugin::open;

/// Gives the chat its long-term memory ([`crate::llm::RecallProvider`]).
pub struct MemoryPlugin;

impl Plugin for MemoryPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((plugin::plugin, browse::plugin));
    }
}

use crate::config::Settings;

/// The embedding model in force: `memory.embedding_model`, else the catalogue's once
/// downloaded (`desktop-mate memory pull`); `None`: memories are searched by their words.
pub fn embedding_model(settings: &Settings) -> Option<PathBuf> {
    settings.memory.embedding_model.clone().or_else(|| {
        crate::models::download::default_models_dir().and_then(|dir| embedders::installed(&dir))
    })
}

/// The database file: `memory.sqlite` beside the chat history.
pub fn database_path(settings: &Settings) -> Option<PathBuf> {
    crate::llm::conversation::history::history_path(&settings.chat)
        .and_then(|history| history.parent().map(|dir| dir.join("memory.sqlite")))
}
