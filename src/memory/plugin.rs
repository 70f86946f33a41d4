//! The memory in the app: gives the chat its [`Recall`] seam ([`RecallProvider`]): before each
//! reply the closest memories within `memory.budget_tokens`, after it the user's statements
//! kept. The memory is opened on the chat's loading task (never the frame loop) and runs on
//! the chat's reply task, so recall adds to the time to first token only its own cost
//! (`bench --memory`).

use std::sync::Arc;

use bevy::prelude::*;

use super::embed::{Embed, LlamaEmbedder};
use super::engine::MemoryEngine;
use super::extract;
use super::observe::statement;
use super::recall::{holds, prompt_block};
use super::store::{MemoryKind, MemoryStore, NewMemory, Written};
use crate::config::Settings;
use crate::llm::RecallProvider;
use crate::llm::contract::{ChatTurn, Extracted, Extraction, Recall};

pub(super) fn plugin(app: &mut App) {
    app.insert_resource(RecallProvider(Arc::new(open)));
}

/// The memory for `settings`: `Ok(None)` when it is off.
pub fn open(settings: &Settings) -> Result<Option<Box<dyn Recall>>, String> {
    if !settings.memory.enabled {
        return Ok(None);
    }
    let path = super::database_path(settings)
        .ok_or("memory off: no data folder on this system for memory.sqlite")?;
    let opened = MemoryStore::open(&path).map_err(|e| format!("memory off: {e}"))?;
    if let Some(notice) = &opened.notice {
        warn!("memory: {notice}");
    }
    let embedder = match &super::embedding_model(settings) {
        Some(model) => {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u16);
            let embedder = LlamaEmbedder::load(model, threads)
                .map_err(|e| format!("memory searched by words: {e}"));
            match embedder {
                Ok(embedder) => Some(Box::new(embedder) as Box<dyn Embed>),
                Err(reason) => {
                    warn!("{reason}");
                    None
                }
            }
        }
        None => {
            info!(
                "memory: no embedding model, memories are searched by their words \
                 (`desktop-mate memory pull` downloads one, 84 MB)"
            );
            None
        }
    };
    let mut engine = MemoryEngine::new(opened.store, embedder, &settings.persona.name);
    if let Err(err) = engine.embed_missing() {
        warn!("memory: {err}");
    }
    info!(
        "memory: {} ({} memories of {}, searched {})",
        path.display(),
        engine.store.count(&settings.persona.name).unwrap_or(0),
        settings.persona.name,
        if engine.has_embedder() {
            "by meaning"
        } else {
            "by words"
        }
    );
    Ok(Some(Box::new(SessionMemory {
        engine,
        budget: settings.memory.budget_tokens as usize,
    })))
}

struct SessionMemory {
    engine: MemoryEngine,
    budget: usize,
}

impl Recall for SessionMemory {
    fn recall(&mut self, message: &str, history: &[ChatTurn]) -> Option<String> {
        if self.budget == 0 {
            return None;
        }
        // The Memory panel writes through its own connection.
        if let Err(err) = self.engine.follow_other_writers() {
            warn!("memory: {err}");
        }
        // What the prompt holds already: the memories recalled for its turns, and the user's
        // statements in them (kept as memories after each turn).
        let blocks: Vec<&str> = history
            .iter()
            .filter_map(|turn| turn.recalled.as_deref())
            .collect();
        let said: Vec<String> = history
            .iter()
            .filter_map(|turn| statement(&turn.user))
            .collect();
        match self.engine.recall(message, self.budget) {
            Ok(mut recalled) => {
                recalled.retain(|item| {
                    !blocks.iter().any(|block| holds(block, &item.memory))
                        && !said.contains(&item.memory.text)
                });
                prompt_block(&recalled)
            }
            Err(err) => {
                warn!("memory: recall failed: {err}");
                None
            }
        }
    }

    fn observe(&mut self, turn: &ChatTurn) {
        let Some(text) = statement(&turn.user) else {
            return;
        };
        if let Err(err) = self.engine.remember(NewMemory::new(MemoryKind::Fact, text)) {
            warn!("memory: not kept: {err}");
        }
    }

    fn extraction(&mut self, turns: &[ChatTurn]) -> Option<Extraction> {
        extract::request(turns)
    }

    fn extracted(&mut self, turns: &[ChatTurn], answer: &str) -> Extracted {
        let read = extract::read(answer, turns);
        let mut done = Extracted {
            dropped: read.dropped.len(),
            ..Extracted::default()
        };
        for (line, why) in &read.dropped {
            let line: String = line.chars().take(100).collect();
            info!("memory: dropped what the model wrote ({why}): {line}");
        }
        for memory in read.memories {
            match self.engine.remember(memory) {
                Ok(Written::Added(_)) => done.added += 1,
                Ok(Written::Replaced(_)) => done.replaced += 1,
                Err(err) => {
                    warn!("memory: not kept: {err}");
                    done.dropped += 1;
                }
            }
        }
        info!(
            "memory: the model's notes on {} turns: {} added, {} replaced, {} lines dropped",
            turns.len(),
            done.added,
            done.replaced,
            done.dropped
        );
        done
    }
}
