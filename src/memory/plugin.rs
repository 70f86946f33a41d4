//! The memory in the app: gives the chat its [`Recall`] seam ([`RecallProvider`]): the
//! standing memories that open the prompt, before each reply the closest other memories
//! within `memory.budget_tokens`, after it the user's statements kept. The memory is opened on the chat's loading task (never the frame loop) and runs on
//! the chat's reply task, so recall adds to the time to first token only its own cost
//! (`bench --memory`).

use std::sync::Arc;

use bevy::prelude::*;

use super::embed::{Embed, LlamaEmbedder};
use super::engine::MemoryEngine;
use super::extract;
use super::observe::statement;
use super::recall::{Recalled, holds, prompt_block};
use super::store::{Memory, MemoryError, MemoryKind, MemoryStore, NewMemory, Written};
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
        standing: None,
    })))
}

struct SessionMemory {
    engine: MemoryEngine,
    budget: usize,
    /// The standing memories, chosen once, when the session first asks (`None` before).
    /// New memories never join them (the prompt's opening, and the cache behind it, stays
    /// the same); one edited or forgotten elsewhere leaves them.
    standing: Option<Vec<Recalled>>,
}

impl SessionMemory {
    /// The Memory panel and the terminal write through their own connections: the vectors
    /// of what they edited or imported; a standing memory they changed or forgot is dropped.
    fn follow_other_writers(&mut self) {
        match self.engine.follow_other_writers() {
            Ok(None) => return,
            Ok(Some(_)) => {}
            // Maybe a change whose vectors failed: the standing memories are checked anyway.
            Err(err) => warn!("memory: {err}"),
        }
        self.check_standing();
    }

    /// Drops the standing memories whose row is gone or says something else now.
    fn check_standing(&mut self) {
        let Some(standing) = &mut self.standing else {
            return;
        };
        let ids: Vec<i64> = standing.iter().map(|item| item.memory.id).collect();
        match self.engine.store.get_many(&ids) {
            Ok(now) => standing.retain(|item| {
                now.iter()
                    .any(|m| m.id == item.memory.id && m.text == item.memory.text)
            }),
            Err(err) => {
                warn!("memory: standing memories dropped: {err}");
                standing.clear();
            }
        }
    }

    /// Writes `memory`; one that replaced a standing memory (a changed fact: "I moved to
    /// Grenoble") takes it out of them, so the prompt does not keep the old text.
    fn remember(&mut self, memory: NewMemory) -> Result<Written, MemoryError> {
        let written = self.engine.remember(memory)?;
        if let Written::Replaced(id) = written
            && self
                .standing
                .as_ref()
                .is_some_and(|standing| standing.iter().any(|item| item.memory.id == id))
        {
            self.check_standing();
        }
        Ok(written)
    }

    /// Whether the persona has at most `shown` memories and `in_prompt` holds each of them
    /// (counted first, so a large store is never read here).
    fn all_in_prompt(&self, shown: usize, in_prompt: &dyn Fn(&Memory) -> bool) -> bool {
        let store = &self.engine.store;
        let persona = self.engine.persona();
        match store.count_at_most(persona, shown + 1) {
            Ok(count) if count <= shown => store
                .list(persona)
                .is_ok_and(|all| all.iter().all(in_prompt)),
            _ => false,
        }
    }

    fn standing_block(&self) -> Option<String> {
        self.standing.as_deref().and_then(prompt_block)
    }
}

impl Recall for SessionMemory {
    fn standing(&mut self, most_tokens: usize) -> Option<String> {
        if self.budget == 0 {
            return None;
        }
        self.follow_other_writers();
        if self.standing.is_none() {
            let budget = self.budget.min(most_tokens);
            self.standing = Some(self.engine.standing(budget).unwrap_or_else(|err| {
                warn!("memory: no standing memories: {err}");
                Vec::new()
            }));
        }
        self.standing_block()
    }

    fn recall(&mut self, message: &str, history: &[ChatTurn]) -> Option<String> {
        if self.budget == 0 {
            return None;
        }
        self.follow_other_writers();
        // What the prompt holds already: the standing memories, the memories recalled for
        // its turns, and the user's statements in them (kept as memories after each turn).
        let standing = self.standing_block();
        let blocks: Vec<&str> = history
            .iter()
            .filter_map(|turn| turn.recalled.as_deref())
            .chain(standing.as_deref())
            .collect();
        let said: Vec<String> = history
            .iter()
            .filter_map(|turn| statement(&turn.user))
            .collect();
        let in_prompt = |memory: &Memory| {
            blocks.iter().any(|block| holds(block, memory)) || said.contains(&memory.text)
        };
        // A small memory the prompt holds whole (a new user's few facts, all standing): recall
        // could only bring what is there, so the message is not embedded (its 3-5 ms are most
        // of what memory adds to a reply's start).
        let shown = blocks.iter().flat_map(|block| block.lines()).count() + said.len();
        if self.all_in_prompt(shown, &in_prompt) {
            return None;
        }
        match self
            .engine
            .recall_where(message, self.budget, &|memory| !in_prompt(memory))
        {
            Ok(recalled) => prompt_block(&recalled),
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
        if let Err(err) = self.remember(NewMemory::new(MemoryKind::Fact, text)) {
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
            match self.remember(memory) {
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
