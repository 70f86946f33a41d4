//! Long-term memory: facts about the user and episode summaries, per persona, in one SQLite
//! file beside the chat history, searched by llama.cpp embeddings (docs/architecture.md,
//! "Memory"). Bevy-free engine: [`store`] (the database), [`embed`] (the model seam),
//! [`recall`] (ranking and the token budget), [`engine`] (the three together, as the terminal
//! commands and the chat use them).

pub mod embed;
pub mod engine;
pub mod recall;
pub mod store;

use std::path::PathBuf;

use crate::config::Settings;

/// The database file: `memory.sqlite` beside the chat history.
pub fn database_path(settings: &Settings) -> Option<PathBuf> {
    crate::llm::conversation::history::history_path(&settings.chat)
        .and_then(|history| history.parent().map(|dir| dir.join("memory.sqlite")))
}
