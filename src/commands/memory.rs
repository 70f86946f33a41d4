//! `desktop-mate memory list|search|add|forget|export|import`: the mascot's long-term memory
//! in the terminal (src/memory/), for users and tests.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::LoadedSettings;
use crate::memory::embed::{Embed, LlamaEmbedder};
use crate::memory::engine::MemoryEngine;
use crate::memory::store::{MemoryError, MemoryKind, MemoryStore, NewMemory, Written};

#[derive(Debug, Clone, clap::Args)]
pub struct MemoryArgs {
    /// The embedding model (an embedding GGUF such as all-MiniLM-L6-v2; default:
    /// `memory.embedding_model`); without one, memories are kept and searched by their words.
    #[arg(
        long,
        global = true,
        env = "DESKTOP_MATE_EMBEDDING_MODEL",
        value_name = "GGUF"
    )]
    pub embedding_model: Option<PathBuf>,
    /// The database (default: `memory.sqlite` beside the chat history).
    #[arg(long, global = true, value_name = "FILE")]
    pub database: Option<PathBuf>,
    /// Whose memories (default: the persona's name in the settings).
    #[arg(long, global = true)]
    pub persona: Option<String>,
    #[command(subcommand)]
    pub action: MemoryAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Fact,
    Episode,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum MemoryAction {
    /// Every memory, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// The memories about TEXT that would go into a prompt (best first, within the budget).
    Search {
        text: String,
        /// Token budget (as `memory.budget_tokens`).
        #[arg(long, default_value_t = 128)]
        budget: usize,
        #[arg(long)]
        json: bool,
    },
    /// Remember TEXT; a fact with the key of an older one (or saying nearly the same) replaces it.
    Add {
        text: String,
        #[arg(long, value_enum, default_value = "fact")]
        kind: Kind,
        /// What the fact is about (`user.name`).
        #[arg(long)]
        key: Option<String>,
        /// 0..1.
        #[arg(long, default_value_t = 0.5)]
        importance: f32,
        /// Write it this many times, one transaction each, printing each id (durability tests).
        #[arg(long, default_value_t = 1, hide = true)]
        repeat: u32,
    },
    /// Forget one memory by its id, or every memory of the persona with `--all`.
    Forget {
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Write every memory of the persona to FILE (JSON; an existing file is not overwritten).
    Export { file: PathBuf },
    /// Add the memories of FILE: an export, or a JSON array of objects with `text` and `kind`.
    Import { file: PathBuf },
    /// Download an embedding model of the catalogue (checked, resumable) and make its GGUF in
    /// the models folder: memories are then searched by meaning (used when
    /// `memory.embedding_model` is not set).
    Pull {
        #[arg(default_value = crate::memory::embedders::ALL_MINILM_L6_V2)]
        id: String,
    },
}

pub fn run(loaded: LoadedSettings, args: MemoryArgs) -> ExitCode {
    match execute(&loaded, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn engine(loaded: &LoadedSettings, args: &MemoryArgs) -> Result<MemoryEngine, MemoryError> {
    let path = args
        .database
        .clone()
        .or_else(|| crate::memory::database_path(&loaded.settings))
        .ok_or_else(|| {
            MemoryError::Invalid("no data folder on this system: pass --database FILE".into())
        })?;
    let opened = MemoryStore::open(&path)?;
    if let Some(notice) = &opened.notice {
        eprintln!("memory: {notice}");
    }
    let model = args
        .embedding_model
        .clone()
        .or_else(|| crate::memory::embedding_model(&loaded.settings));
    let embedder = match &model {
        Some(model) => {
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8) as u16);
            Some(Box::new(LlamaEmbedder::load(model, threads)?) as Box<dyn Embed>)
        }
        None => None,
    };
    let persona = args
        .persona
        .clone()
        .unwrap_or_else(|| loaded.settings.persona.name.clone());
    let mut engine = MemoryEngine::new(opened.store, embedder, &persona);
    let embedded = engine.embed_missing()?;
    if embedded > 0 {
        eprintln!("memory: computed {embedded} missing vectors");
    }
    Ok(engine)
}

fn execute(loaded: &LoadedSettings, args: MemoryArgs) -> Result<(), MemoryError> {
    if let MemoryAction::Pull { id } = &args.action {
        return pull(id);
    }
    let mut engine = engine(loaded, &args)?;
    match args.action {
        MemoryAction::List { json } => {
            let memories = engine.store.list(engine.persona())?;
            if json {
                println!("{}", serde_json::to_string(&memories).unwrap_or_default());
            } else {
                for memory in &memories {
                    println!(
                        "{:>6}  {:<7}  {}",
                        memory.id,
                        memory.kind.as_str(),
                        memory.text
                    );
                }
                eprintln!("{} memories of {}", memories.len(), engine.persona());
            }
        }
        MemoryAction::Search { text, budget, json } => {
            let recalled = engine.recall(&text, budget)?;
            if json {
                let rows: Vec<serde_json::Value> = recalled
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.memory.id,
                            "kind": r.memory.kind,
                            "text": r.memory.text,
                            "similarity": r.similarity,
                            "score": r.score,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for r in &recalled {
                    println!("{:>6}  {:.3}  {}", r.memory.id, r.score, r.memory.text);
                }
            }
        }
        MemoryAction::Add {
            text,
            kind,
            key,
            importance,
            repeat,
        } => {
            let kind = match kind {
                Kind::Fact => MemoryKind::Fact,
                Kind::Episode => MemoryKind::Episode,
            };
            let mut out = std::io::stdout().lock();
            for n in 0..repeat.max(1) {
                let text = if repeat > 1 {
                    format!("{text} #{n}")
                } else {
                    text.clone()
                };
                let memory = NewMemory {
                    key: key.clone(),
                    importance,
                    ..NewMemory::new(kind, text)
                };
                let line = match engine.remember(memory)? {
                    Written::Added(id) => format!("added {id}"),
                    Written::Replaced(id) => format!("replaced {id}"),
                };
                // Printed after the commit: what a reader saw was stored.
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
        MemoryAction::Forget { id, all } => {
            if all {
                let persona = engine.persona().to_owned();
                let n = engine.store.forget_all(&persona)?;
                println!("forgot {n} memories of {persona}");
            } else if let Some(id) = id {
                if !engine.store.forget(id)? {
                    return Err(MemoryError::Invalid(format!("no memory {id}")));
                }
                println!("forgot {id}");
            }
        }
        MemoryAction::Export { file } => {
            let n = engine.write_export(&file)?;
            println!("wrote {n} memories to {}", file.display());
        }
        MemoryAction::Import { file } => {
            let n = engine.import(&file)?;
            println!("imported {n} memories from {}", file.display());
        }
        MemoryAction::Pull { .. } => {}
    }
    Ok(())
}

/// `memory pull ID`: the catalogue's embedding model into the models folder, its progress on
/// stderr, its path on stdout.
fn pull(id: &str) -> Result<(), MemoryError> {
    let mut shown = None;
    let mut progress = |done: u64, total: u64| {
        let percent = done * 100 / total.max(1);
        if shown.is_none_or(|shown| percent >= shown + 10 || (percent == 100 && shown < 100)) {
            shown = Some(percent);
            eprintln!("memory: {id}: {percent} % of {:.0} MB", total as f64 / 1e6);
        }
    };
    let path = crate::memory::embedders::pull_to_models_dir(id, &mut progress)
        .map_err(MemoryError::Embedding)?;
    println!("{}", path.display());
    Ok(())
}
