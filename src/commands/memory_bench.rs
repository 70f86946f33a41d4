//! `desktop-mate bench --memory GGUF`: the memory's costs with a real embedding model —
//! embedding time per message, and recall latency with 100, 10 000 and 100 000 stored memories
//! (their vectors random unit vectors: embedding 100 000 texts would take minutes and the
//! search cost does not depend on what the vectors say), with the write and index costs.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::memory::embed::{Embed, LlamaEmbedder, unit};
use crate::memory::engine::MemoryEngine;
use crate::memory::store::{MemoryKind, MemoryStore, NewMemory};

#[derive(Debug, Serialize)]
pub struct MemoryReport {
    pub embedding_model: String,
    pub dimension: usize,
    pub threads: u16,
    pub load_ms: f64,
    /// One chat message (8-20 words), mean of 20.
    pub embed_message_ms: f64,
    /// 64 messages in one call, per message.
    pub embed_batch_per_message_ms: f64,
    pub stores: Vec<StoreRow>,
}

#[derive(Debug, Serialize)]
pub struct StoreRow {
    pub memories: usize,
    /// Writing them (one transaction per 10 000), per memory.
    pub insert_per_memory_us: f64,
    /// The first search after a write reads every vector of the persona into memory.
    pub index_build_ms: f64,
    /// `recall` of a question: embedding it, the exact search, reading and ranking the
    /// candidates; median of 20.
    pub recall_ms: f64,
    /// The search alone (dot products + selection), median of 20.
    pub search_ms: f64,
    pub file_mib: f64,
}

const MESSAGES: &[&str] = &[
    "I finally finished the wooden boat in my garage this weekend!",
    "Can you remind me what my sister's name is again?",
    "I had a rough night at the hospital, three emergencies in a row.",
    "What should I cook tonight, something with mushrooms maybe?",
    "My cat knocked the plant off the shelf again this morning.",
];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

pub fn bench(model: &Path, threads: u16) -> Result<MemoryReport, String> {
    let start = Instant::now();
    let mut embedder = LlamaEmbedder::load(model, threads).map_err(|e| e.to_string())?;
    let load_ms = ms(start);
    let dimension = embedder.dimension();
    embedder.embed(&[MESSAGES[0]]).map_err(|e| e.to_string())?;
    let mut single = Vec::new();
    for message in MESSAGES.iter().cycle().take(20) {
        let start = Instant::now();
        embedder.embed(&[message]).map_err(|e| e.to_string())?;
        single.push(ms(start));
    }
    let batch: Vec<&str> = MESSAGES.iter().cycle().take(64).copied().collect();
    let start = Instant::now();
    embedder.embed(&batch).map_err(|e| e.to_string())?;
    let embed_batch_per_message_ms = ms(start) / 64.0;

    let mut rng = fastrand::Rng::with_seed(26);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = MemoryStore::open(&dir.path().join("memory.sqlite"))
        .map_err(|e| e.to_string())?
        .store;
    let mut engine = MemoryEngine::new(store, Some(Box::new(embedder)), "Mate");
    let question = engine
        .embed_text(MESSAGES[1])
        .map_err(|e| e.to_string())?
        .ok_or("no vector")?;
    let mut stores = Vec::new();
    let mut stored = 0;
    for target in [100, 10_000, 100_000] {
        let start = Instant::now();
        while stored < target {
            let n = (target - stored).min(10_000);
            let rows = (stored..stored + n)
                .map(|i| {
                    let random: Vec<f32> = (0..dimension).map(|_| rng.f32() - 0.5).collect();
                    let vector = unit(&random);
                    let text = format!("Memory number {i}: the user mentioned topic {}", i % 977);
                    (NewMemory::new(MemoryKind::Fact, text), Some(vector))
                })
                .collect();
            engine
                .store
                .remember_all("Mate", rows)
                .map_err(|e| e.to_string())?;
            stored += n;
        }
        let inserted = start.elapsed().as_secs_f64();
        let start = Instant::now();
        engine
            .store
            .nearest("Mate", &question, 32)
            .map_err(|e| e.to_string())?;
        let index_build_ms = ms(start);
        let mut searches = Vec::new();
        let mut recalls = Vec::new();
        for message in MESSAGES.iter().cycle().take(20) {
            let start = Instant::now();
            engine
                .store
                .nearest("Mate", &question, 32)
                .map_err(|e| e.to_string())?;
            searches.push(ms(start));
            let start = Instant::now();
            engine.recall(message, 256).map_err(|e| e.to_string())?;
            recalls.push(ms(start));
        }
        let file_mib = std::fs::metadata(engine.store.path()).map_or(0.0, |m| m.len() as f64)
            / (1024.0 * 1024.0);
        stores.push(StoreRow {
            memories: target,
            insert_per_memory_us: inserted * 1e6 / target as f64,
            index_build_ms,
            recall_ms: median(recalls),
            search_ms: median(searches),
            file_mib,
        });
    }
    Ok(MemoryReport {
        embedding_model: model.display().to_string(),
        dimension,
        threads,
        load_ms,
        embed_message_ms: single.iter().sum::<f64>() / single.len().max(1) as f64,
        embed_batch_per_message_ms,
        stores,
    })
}
