//! `desktop-mate bench --memory GGUF`: the memory's costs with a real embedding model —
//! embedding time per message, and recall latency with 100, 10 000 and 100 000 stored memories
//! (their vectors random unit vectors: embedding 100 000 texts would take minutes and the
//! search cost does not depend on what the vectors say), with the write and index costs; and,
//! with the settings' chat model, the cost of the model's notes on a pause.

use std::path::Path;
use std::time::Instant;

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::config::LoadedSettings;
use crate::llm::contract::{GenerateOptions, ReplyStream};
use crate::llm::conversation::session::{ChatSession, Notes};
use crate::llm::load::{BackendConfig, load_backend};
use crate::llm::runtime::engine::EngineSettings;

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
    /// The chat model's notes (`None` without a chat model: `notes_skipped` says why).
    pub notes: Option<NotesReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes_skipped: Option<String>,
}

/// The chat model's notes on a two-turn conversation (memory.notes_after_secs).
#[derive(Debug, Serialize)]
pub struct NotesReport {
    pub chat_model: String,
    /// From the request to the memory's verdict, median of 3.
    pub notes_ms: f64,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// What the memory kept and dropped of the last notes.
    pub added: usize,
    pub dropped: usize,
    /// The conversation's cached tokens before the notes, and how many of them the next
    /// reply reused (equal: the notes ran beside the conversation).
    pub cached_before_notes: usize,
    pub reused_after_notes: usize,
    /// A message arriving 200 ms into the notes: from its stop flag to the notes giving the
    /// session back, median of 3 (`None` when the notes were done before).
    pub stop_ms: Option<f64>,
    /// Median time to first token over 3 x the 8 turns of [`TALK`] (recall included, found by
    /// meaning with the embedding model), with the memory holding what the notes runs kept
    /// (the user's statements and the model's checked notes), and without memory; the same
    /// conversation, greedy.
    pub ttft_memory_on_ms: f64,
    pub ttft_memory_off_ms: f64,
    /// The same talk (arriving at once) after 300 more facts were stored, newer than the
    /// talk's: the standing memories are then other facts and the talk's are recalled.
    pub stored_many: usize,
    pub ttft_many_memories_on_ms: f64,
    pub ttft_many_memories_off_ms: f64,
    /// Turns of that talk that had memories put in front of them.
    pub turns_with_memories_many: usize,
    /// The same when the message was typed in the chat panel: the session evaluated it
    /// ahead (`ChatSession::prepare`, memories recalled for it) during the pause before Enter.
    pub ttft_typed_memory_on_ms: f64,
    pub ttft_typed_memory_off_ms: f64,
    /// Typed, Enter pressed before the panel handed over the last word: what was evaluated
    /// ahead lacks it.
    pub ttft_typed_early_memory_on_ms: f64,
    pub ttft_typed_early_memory_off_ms: f64,
    /// Turns of [`TALK`] that had memories put in front of them.
    pub turns_with_memories: usize,
    /// Warm-up before each talk (the persona's prompt, with memory its standing memories:
    /// paid at the app's start, not by a message), median, memory on and off.
    pub warm_up_memory_on_ms: f64,
    pub warm_up_memory_off_ms: f64,
    /// The standing memories the last talk with memory opened with.
    pub standing: Option<String>,
    /// Each turn of [`TALK`], memory on and off (medians over the 3 rounds).
    pub talk: Vec<TalkTurn>,
}

/// How a message of [`TALK`] reaches the session.
#[derive(Clone, Copy, PartialEq)]
enum Typed {
    /// At once, as from the terminal.
    No,
    /// Typed: the whole message evaluated ahead, during the pause before Enter.
    Whole,
    /// Typed, Enter pressed before the last word was handed over.
    LastWordMissing,
}

/// One turn of [`TALK`]: where the time to first token goes, memory on and off.
#[derive(Debug, Serialize)]
pub struct TalkTurn {
    pub message: &'static str,
    /// Recall (embedding the message, searching) + the backend's time to first token.
    pub ttft_on_ms: f64,
    pub ttft_off_ms: f64,
    /// Recall alone, memory on.
    pub recall_ms: f64,
    /// Prompt tokens evaluated (not taken from the cache), memory on and off.
    pub evaluated_on: usize,
    pub evaluated_off: usize,
    /// Memories were put in front of the message (last round).
    pub recalled: bool,
}

/// A conversation that comes back to what [`CONVERSATION`] told.
const TALK: [&str; 8] = [
    "Good evening! I'm back from my shift.",
    "What do you remember about my job?",
    "It was a long night at the hospital again.",
    "Do you know what my cat is called?",
    "Miso was asleep on my bed when I came home.",
    "What should I cook before sleeping?",
    "Something quick, I am tired after the hospital.",
    "Thanks, good night!",
];

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

pub fn bench(loaded: &LoadedSettings, model: &Path, threads: u16) -> Result<MemoryReport, String> {
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
    drop(engine);
    let (notes, notes_skipped) = match notes(loaded, model, threads) {
        Ok(report) => (Some(report), None),
        Err(reason) => (None, Some(reason)),
    };
    Ok(MemoryReport {
        embedding_model: model.display().to_string(),
        dimension,
        threads,
        load_ms,
        embed_message_ms: single.iter().sum::<f64>() / single.len().max(1) as f64,
        embed_batch_per_message_ms,
        stores,
        notes,
        notes_skipped,
    })
}

/// The 300 facts of the "months later" store: colleague, hobby, place.
const NAMES: [&str; 10] = [
    "Anna", "Bruno", "Chen", "Dalia", "Emil", "Farah", "Goran", "Hana", "Ivo", "Jules",
];
const THINGS: [&str; 30] = [
    "stamps",
    "vinyl records",
    "old maps",
    "coins",
    "postcards",
    "seashells",
    "comic books",
    "teapots",
    "fountain pens",
    "keychains",
    "board games",
    "model trains",
    "cookbooks",
    "matchboxes",
    "vintage cameras",
    "snow globes",
    "posters",
    "rare plants",
    "pocket watches",
    "bottle caps",
    "tin toys",
    "chess sets",
    "minerals",
    "fossils",
    "postage meters",
    "lanterns",
    "music boxes",
    "fans",
    "hats",
    "kites",
];
const PLACES: [&str; 7] = [
    "flea markets",
    "online auctions",
    "garage sales",
    "antique shops",
    "their travels",
    "a club in town",
    "their grandparents' attic",
];

const CONVERSATION: [&str; 2] = [
    "Hi! My name is Lea and I work nights at the hospital.",
    "My cat Miso wakes me up at noon every day.",
];

fn notes(loaded: &LoadedSettings, embedding: &Path, threads: u16) -> Result<NotesReport, String> {
    let resolved = crate::llm::plan::terminal_model(loaded)?;
    let chat_model = resolved.backend.describe();
    let config = match resolved.backend {
        BackendConfig::Local(engine) => BackendConfig::Local(EngineSettings {
            n_threads: threads,
            n_threads_batch: threads,
            ..engine
        }),
        server => server,
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut settings = loaded.settings.clone();
    settings.memory.enabled = true;
    settings.memory.embedding_model = Some(embedding.to_owned());
    settings.chat.history_file = Some(dir.path().join("history.jsonl"));
    // The talks' warm-ups stay in memory (not in the user's kv/ folder).
    settings.chat.warm_start = false;
    let backend = load_backend(config).backend.map_err(|e| e.to_string())?;
    let mut session = ChatSession::new(backend, &settings.chat);
    session.set_memory(crate::memory::open(&settings)?);
    let mut options = GenerateOptions::from_sampling(&settings.llm.sampling);
    options.sampling.temperature = 0.0;
    options.max_tokens = 16;
    let persona = &settings.persona;
    let never = AtomicBool::new(false);
    let say = |session: &mut ChatSession, message: &str| {
        session
            .send(
                persona,
                message,
                &options,
                &mut ReplyStream {
                    cancel: &never,
                    on_text: &mut |_| {},
                },
            )
            .map_err(|e| e.to_string())
    };
    let conversation = |session: &mut ChatSession| {
        session.clear();
        CONVERSATION
            .iter()
            .try_for_each(|message| say(session, message).map(|_| ()))
    };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        conversation(&mut session)?;
        let cached = session.stats().cached_tokens;
        let start = Instant::now();
        let notes = session
            .take_notes(persona, &options, &never)
            .map_err(|e| e.to_string())?;
        times.push(ms(start));
        let Notes::Written(extracted, stats) = notes else {
            return Err(format!("the model was not asked: {notes:?}"));
        };
        let next = say(&mut session, "What time do I wake up?")?;
        last = Some((extracted, stats, cached, next.stats.reused_tokens));
    }
    let mut stops = Vec::new();
    for _ in 0..3 {
        conversation(&mut session)?;
        let stop = AtomicBool::new(false);
        let (result, flagged) = std::thread::scope(|scope| {
            let flag = scope.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(200));
                stop.store(true, Ordering::Relaxed);
                Instant::now()
            });
            let result = session.take_notes(persona, &options, &stop);
            let returned = Instant::now();
            (
                result,
                flag.join().map(|at| returned.checked_duration_since(at)),
            )
        });
        result.map_err(|e| e.to_string())?;
        if let Ok(Some(waited)) = flagged {
            stops.push(waited.as_secs_f64() * 1000.0);
        }
    }
    let (extracted, stats, cached, reused) = last.ok_or("no notes")?;
    // (recall ms, backend TTFT ms, evaluated prompt tokens, memories put in front) per turn.
    type Turn = (f64, f64, usize, bool);
    let talk = |session: &mut ChatSession,
                typed: Typed,
                turns: &mut Vec<Vec<Turn>>,
                warm_ups: &mut Vec<(Option<String>, f64)>|
     -> Result<(), String> {
        session.clear();
        // As the app does after loading: the persona's prompt (with memory, its standing
        // memories too) evaluated before the first message.
        let warm_up = session.warm_up(persona).map_err(|e| e.to_string())?;
        warm_ups.push((session.standing().map(str::to_owned), warm_up.prompt_ms));
        for (i, message) in TALK.iter().enumerate() {
            // The chat panel hands the session what is being typed; here, the last text it
            // handed over before Enter.
            let draft = match typed {
                Typed::No => None,
                Typed::Whole => Some(*message),
                Typed::LastWordMissing => message.rsplit_once(' ').map(|(head, _)| head),
            };
            if let Some(draft) = draft {
                session
                    .prepare(persona, draft, &options, &never)
                    .map_err(|e| e.to_string())?;
            }
            let reply = say(session, message)?;
            let evaluated = reply.stats.prompt_tokens - reply.stats.reused_tokens;
            let turn = (
                reply.recall_ms,
                reply.stats.ttft_ms,
                evaluated,
                reply.turn.recalled.is_some(),
            );
            match turns.get_mut(i) {
                Some(rounds) => rounds.push(turn),
                None => turns.push(vec![turn]),
            }
        }
        Ok(())
    };
    // Three rounds, memory on then off, so that the machine's ups and downs fall on both.
    let mut runs: [(Vec<Vec<Turn>>, Vec<Vec<Turn>>); 3] = Default::default();
    // (standing memories evaluated, warm-up ms) per talk.
    let mut warm_ups = Vec::new();
    for _ in 0..3 {
        for (typed, (on, off)) in [Typed::No, Typed::Whole, Typed::LastWordMissing]
            .into_iter()
            .zip(runs.iter_mut())
        {
            session.set_memory(crate::memory::open(&settings)?);
            talk(&mut session, typed, on, &mut warm_ups)?;
            session.set_memory(None);
            talk(&mut session, typed, off, &mut warm_ups)?;
        }
    }
    // Months later: the same facts among 300 newer ones (real sentences, real vectors). The
    // standing memories are then the newest of those, so the talk's facts are recalled.
    let db = crate::memory::database_path(&settings).ok_or("no memory file")?;
    let mut engine = MemoryEngine::new(
        MemoryStore::open(&db).map_err(|e| e.to_string())?.store,
        Some(Box::new(
            LlamaEmbedder::load(embedding, threads).map_err(|e| e.to_string())?,
        )),
        &settings.persona.name,
    );
    let fillers = (0..300)
        .map(|i| {
            let text = format!(
                "The user's colleague {} collects {} from {}",
                NAMES[i % NAMES.len()],
                THINGS[(i / NAMES.len()) % THINGS.len()],
                PLACES[i % PLACES.len()]
            );
            (NewMemory::new(MemoryKind::Fact, text), None)
        })
        .collect();
    engine
        .store
        .remember_all(&settings.persona.name, fillers)
        .map_err(|e| e.to_string())?;
    engine.embed_missing().map_err(|e| e.to_string())?;
    let stored_many = engine
        .store
        .count(&settings.persona.name)
        .map_err(|e| e.to_string())?;
    drop(engine);
    let (mut many_on, mut many_off) = (Vec::new(), Vec::new());
    let mut ignored = Vec::new();
    for _ in 0..3 {
        session.set_memory(crate::memory::open(&settings)?);
        talk(&mut session, Typed::No, &mut many_on, &mut ignored)?;
        session.set_memory(None);
        talk(&mut session, Typed::No, &mut many_off, &mut ignored)?;
    }
    // What the user waits for: choosing the memories, then the backend's first token.
    let waited = |turns: &[Vec<Turn>]| -> f64 {
        median(turns.iter().flatten().map(|t| t.0 + t.1).collect())
    };
    let [(on, off), (typed_on, typed_off), (early_on, early_off)] = &runs;
    let standing_block = warm_ups
        .iter()
        .rev()
        .find_map(|(standing, _)| standing.clone());
    let warm_up = |with_standing: bool| {
        median(
            warm_ups
                .iter()
                .filter(|(standing, _)| standing.is_some() == with_standing)
                .map(|w| w.1)
                .collect(),
        )
    };
    // Turns of the talk that had memories put in front of them in its last round.
    let with_memories = |turns: &[Vec<Turn>]| {
        turns
            .iter()
            .filter(|rounds| rounds.last().is_some_and(|t| t.3))
            .count()
    };
    let turns_with_memories = with_memories(on);
    let talk = TALK
        .iter()
        .zip(on.iter().zip(off))
        .map(|(message, (on, off))| TalkTurn {
            message,
            ttft_on_ms: median(on.iter().map(|t| t.0 + t.1).collect()),
            ttft_off_ms: median(off.iter().map(|t| t.0 + t.1).collect()),
            recall_ms: median(on.iter().map(|t| t.0).collect()),
            evaluated_on: on.last().map_or(0, |t| t.2),
            evaluated_off: off.last().map_or(0, |t| t.2),
            recalled: on.last().is_some_and(|t| t.3),
        })
        .collect();
    Ok(NotesReport {
        chat_model,
        notes_ms: median(times),
        prompt_tokens: stats.prompt_tokens,
        generated_tokens: stats.generated_tokens,
        added: extracted.added,
        dropped: extracted.dropped,
        cached_before_notes: cached,
        reused_after_notes: reused,
        stop_ms: (!stops.is_empty()).then(|| median(stops)),
        ttft_memory_on_ms: waited(on),
        ttft_memory_off_ms: waited(off),
        stored_many,
        ttft_many_memories_on_ms: waited(&many_on),
        ttft_many_memories_off_ms: waited(&many_off),
        turns_with_memories_many: with_memories(&many_on),
        ttft_typed_memory_on_ms: waited(typed_on),
        ttft_typed_memory_off_ms: waited(typed_off),
        ttft_typed_early_memory_on_ms: waited(early_on),
        ttft_typed_early_memory_off_ms: waited(early_off),
        turns_with_memories,
        warm_up_memory_on_ms: warm_up(true),
        warm_up_memory_off_ms: warm_up(false),
        standing: standing_block,
        talk,
    })
}
