//! The memory as the chat session and the terminal use it, without Bevy: one store, one
//! persona, and the embedding model when there is one (`recall` before a reply, `remember`
//! after). Without a model, memories are still kept and searched by their words; their vectors
//! are computed when a model is there ([`MemoryEngine::embed_missing`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::embed::Embed;
use super::recall::{RecallWeights, Recalled, rank, standing, within_budget};
use super::store::{Memory, MemoryError, MemoryStore, NewMemory, Written, now};

pub struct MemoryEngine {
    pub store: MemoryStore,
    embedder: Option<Box<dyn Embed>>,
    persona: String,
    pub weights: RecallWeights,
    /// The last text embedded and its vector: the message recalled for while it was typed
    /// is recalled for again when sent, then kept as a memory.
    last_embedded: Option<(String, Vec<f32>)>,
}

/// What `export` writes and `import` reads back.
#[derive(Debug, Serialize, Deserialize)]
pub struct Export {
    pub format: String,
    pub persona: String,
    pub memories: Vec<Memory>,
}

pub const EXPORT_FORMAT: &str = "desktop-mate memory 1";

/// Longest import file read.
const MAX_IMPORT_BYTES: u64 = 64 << 20;

impl MemoryEngine {
    pub fn new(store: MemoryStore, embedder: Option<Box<dyn Embed>>, persona: &str) -> Self {
        Self {
            store,
            embedder,
            persona: persona.to_owned(),
            weights: RecallWeights::default(),
            last_embedded: None,
        }
    }

    pub fn persona(&self) -> &str {
        &self.persona
    }

    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    /// The text's vector (`None` without a model).
    pub fn embed_text(&mut self, text: &str) -> Result<Option<Vec<f32>>, MemoryError> {
        let Some(embedder) = &mut self.embedder else {
            return Ok(None);
        };
        if let Some((last, vector)) = &self.last_embedded
            && last == text
        {
            return Ok(Some(vector.clone()));
        }
        let vector = embedder.embed(&[text])?.pop();
        if let Some(vector) = &vector {
            self.last_embedded = Some((text.to_owned(), vector.clone()));
        }
        Ok(vector)
    }

    pub fn remember(&mut self, memory: NewMemory) -> Result<Written, MemoryError> {
        let vector = self.embed_text(&memory.text)?;
        self.store
            .remember(&self.persona, memory, vector.as_deref())
    }

    /// The memories about `query`, best first, that fit `budget_tokens`.
    pub fn recall(
        &mut self,
        query: &str,
        budget_tokens: usize,
    ) -> Result<Vec<Recalled>, MemoryError> {
        self.recall_where(query, budget_tokens, &|_| true)
    }

    /// [`MemoryEngine::recall`] of the memories `wanted` takes (those the prompt does not
    /// hold already): the budget goes to them alone.
    pub fn recall_where(
        &mut self,
        query: &str,
        budget_tokens: usize,
        wanted: &dyn Fn(&Memory) -> bool,
    ) -> Result<Vec<Recalled>, MemoryError> {
        let mut found = self.search(query, self.weights.candidates)?;
        found.retain(|(memory, _)| wanted(memory));
        Ok(within_budget(
            rank(found, now(), &self.weights),
            budget_tokens,
        ))
    }

    /// The facts that open every conversation within `budget_tokens`, best first
    /// ([`standing`]).
    pub fn standing(&self, budget_tokens: usize) -> Result<Vec<Recalled>, MemoryError> {
        let memories = self.store.list(&self.persona)?;
        Ok(within_budget(
            standing(memories, now(), &self.weights),
            budget_tokens,
        ))
    }

    /// The `limit` memories closest to `query` with their similarity (by vector with a
    /// model; else the share of the query's words a memory contains).
    pub fn search(&mut self, query: &str, limit: usize) -> Result<Vec<(Memory, f32)>, MemoryError> {
        let hits = match self.embed_text(query)? {
            Some(vector) => self.store.nearest(&self.persona, &vector, limit)?,
            None => by_words(&self.store.list(&self.persona)?, query, limit),
        };
        let ids: Vec<i64> = hits.iter().map(|(id, _)| *id).collect();
        let memories = self.store.get_many(&ids)?;
        Ok(memories
            .into_iter()
            .zip(hits)
            .map(|(memory, (_, similarity))| (memory, similarity))
            .collect())
    }

    /// Computes the vectors that are missing (imported or written without a model).
    pub fn embed_missing(&mut self) -> Result<usize, MemoryError> {
        if self.embedder.is_none() {
            return Ok(0);
        }
        let missing = self.store.without_vectors(&self.persona)?;
        for chunk in missing.chunks(64) {
            let texts: Vec<&str> = chunk.iter().map(|(_, text)| text.as_str()).collect();
            let Some(embedder) = &mut self.embedder else {
                break;
            };
            let vectors = embedder.embed(&texts)?;
            for ((id, _), vector) in chunk.iter().zip(vectors) {
                self.store.set_vector(*id, &vector)?;
            }
        }
        Ok(missing.len())
    }

    /// After another connection (the Memory panel, the terminal) changed the file: the
    /// vectors of what it edited or imported. Returns how many were computed, `None` when
    /// nothing changed.
    pub fn follow_other_writers(&mut self) -> Result<Option<usize>, MemoryError> {
        if self.store.take_external_change()? {
            self.embed_missing().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Writes the export to `path`, which must not exist yet (a user's file is never
    /// overwritten); returns how many memories it holds.
    pub fn write_export(&self, path: &Path) -> Result<usize, MemoryError> {
        let export = self.export()?;
        let bytes = serde_json::to_vec_pretty(&export)
            .map_err(|e| MemoryError::Invalid(format!("{}: {e}", path.display())))?;
        let fail = |e: std::io::Error| MemoryError::Invalid(format!("{}: {e}", path.display()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(fail)?;
        std::io::Write::write_all(&mut file, &bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        Ok(export.memories.len())
    }

    pub fn export(&self) -> Result<Export, MemoryError> {
        Ok(Export {
            format: EXPORT_FORMAT.into(),
            persona: self.persona.clone(),
            memories: self.store.list(&self.persona)?,
        })
    }

    /// Reads what [`export`](Self::export) wrote, or a plain JSON array of objects with at
    /// least `text` and `kind` (`fact` | `episode`), and adds every memory in one transaction.
    pub fn import(&mut self, path: &Path) -> Result<usize, MemoryError> {
        let invalid =
            |message: String| MemoryError::Invalid(format!("{}: {message}", path.display()));
        let bytes =
            crate::config::read_bounded(path, MAX_IMPORT_BYTES).map_err(|err| match err {
                crate::config::BoundedReadError::Io(e) => invalid(e.to_string()),
                _ => invalid(format!(
                    "not a regular file of at most {} MiB",
                    MAX_IMPORT_BYTES >> 20
                )),
            })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let entries = match value {
            serde_json::Value::Array(entries) => entries,
            serde_json::Value::Object(mut object) => match object.remove("memories") {
                Some(serde_json::Value::Array(entries)) => entries,
                _ => return Err(invalid("an object without a \"memories\" array".into())),
            },
            _ => return Err(invalid("neither an array nor an export".into())),
        };
        let mut memories = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let memory: NewMemory = serde_json::from_value(entry)
                .map_err(|e| invalid(format!("entry {index}: {e}")))?;
            memories.push((memory, None));
        }
        // Vectors in batches, before the one transaction.
        if let Some(embedder) = &mut self.embedder {
            for chunk in memories.chunks_mut(64) {
                let texts: Vec<&str> = chunk.iter().map(|(m, _)| m.text.as_str()).collect();
                let vectors = embedder.embed(&texts)?;
                for ((_, slot), vector) in chunk.iter_mut().zip(vectors) {
                    *slot = Some(vector);
                }
            }
        }
        self.store.remember_all(&self.persona, memories)
    }
}

/// Word-overlap search for a store without vectors: the share of the query's words (3+
/// letters, any case) each memory contains.
fn by_words(memories: &[Memory], query: &str, limit: usize) -> Vec<(i64, f32)> {
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_lowercase)
            .collect()
    };
    let wanted = words(query);
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<(i64, f32)> = memories
        .iter()
        .filter_map(|memory| {
            let have = words(&memory.text);
            let found = wanted.iter().filter(|w| have.contains(w)).count();
            (found > 0).then(|| (memory.id, found as f32 / wanted.len() as f32))
        })
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1));
    hits.truncate(limit);
    hits
}
