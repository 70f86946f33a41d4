//! `desktop-mate bench`: the old app's performance table for any GGUF — load, warm-up, time to
//! first token cold / warmed / later / deep in a conversation, prompt and decode speed, and the
//! effect of threads, context size and reply length.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::{Value, json};

use crate::config::{LoadedSettings, SamplingSettings, Threads};
use crate::llm::engine::{EngineError, EngineSettings, GenerateOptions, ReplyStats};
use crate::llm::plan::{Workload, resolve_threads, terminal_model};
use crate::llm::session::{ChatSession, ReplyStream, load_backend};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Turns of the long conversation.
    #[arg(long, default_value_t = 50)]
    pub turns: usize,
    /// Reply length for the timed replies.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u32,
}

const MESSAGES: [&str; 4] = [
    "Hello! How are you today?",
    "What did you do this morning?",
    "Tell me something nice.",
    "Do you like music?",
];

pub fn run(loaded: LoadedSettings, args: BenchArgs) -> ExitCode {
    match bench(&loaded, &args) {
        Ok(report) => {
            if args.json {
                println!("{report}");
            } else {
                print!("{}", table(&report));
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

struct Bench<'a> {
    base: EngineSettings,
    settings: &'a crate::config::Settings,
    options: GenerateOptions,
    never: AtomicBool,
}

impl Bench<'_> {
    /// A fresh session (empty cache) with these threads and context size.
    fn session(&self, n_threads: u16, n_ctx: u32) -> Result<ChatSession, EngineError> {
        let backend = load_backend(EngineSettings {
            n_threads,
            n_threads_batch: n_threads,
            n_ctx,
            n_batch: self.base.n_batch.min(n_ctx),
            ..self.base.clone()
        })
        .backend?;
        Ok(ChatSession::new(backend, &self.settings.chat))
    }

    fn say(
        &self,
        session: &mut ChatSession,
        message: &str,
        max_tokens: u32,
    ) -> Result<ReplyStats, EngineError> {
        let options = GenerateOptions {
            max_tokens,
            ..self.options.clone()
        };
        let reply = session.send(
            &self.settings.persona,
            message,
            &options,
            &mut ReplyStream {
                cancel: &self.never,
                on_text: &mut |_| {},
            },
        )?;
        Ok(reply.stats)
    }

    fn warm_up(&self, session: &mut ChatSession) -> Result<f64, EngineError> {
        Ok(session.warm_up(&self.settings.persona)?.prompt_ms)
    }

    /// Decode speed of a plain completion.
    fn decode_tps(
        &self,
        session: &mut ChatSession,
        max_tokens: u32,
    ) -> Result<ReplyStats, EngineError> {
        let options = GenerateOptions {
            max_tokens,
            stop: Vec::new(),
            ..self.options.clone()
        };
        Ok(session
            .complete(
                "Once upon a time",
                &options,
                &mut ReplyStream {
                    cancel: &self.never,
                    on_text: &mut |_| {},
                },
            )?
            .stats)
    }
}

fn bench(loaded: &LoadedSettings, args: &BenchArgs) -> Result<Value, String> {
    let resolved = terminal_model(loaded)?;
    let settings = &loaded.settings;
    let (info, hardware, load_plan) = (&resolved.info, &resolved.hardware, &resolved.plan);
    let model_path = resolved.engine.model_path.clone();
    let auto_threads = resolve_threads(Threads::Auto, hardware, Workload::Terminal);
    let bench = Bench {
        base: resolved.engine.clone(),
        settings,
        options: GenerateOptions::from_sampling(&SamplingSettings {
            temperature: 0.0,
            seed: Some(1),
            ..settings.llm.sampling.clone()
        }),
        never: AtomicBool::new(false),
    };
    let err = |e: EngineError| e.to_string();
    let n_threads = load_plan.n_threads;
    let n_ctx = bench.base.n_ctx;
    let max_tokens = args.max_tokens;
    eprintln!(
        "bench: {} ({}), {n_threads} threads",
        model_path.display(),
        info.architecture
    );

    // Cold: the first message pays for the system prompt too.
    let start = Instant::now();
    let mut cold = bench.session(n_threads, n_ctx).map_err(err)?;
    let load_ms = start.elapsed().as_secs_f64() * 1000.0;
    let format = cold.stats().prompt_format;
    let cold_stats = bench.say(&mut cold, MESSAGES[0], max_tokens).map_err(err)?;
    drop(cold);

    // Warmed up: the system prompt is already in the KV cache.
    let mut session = bench.session(n_threads, n_ctx).map_err(err)?;
    let trained_ctx = session.stats().n_ctx;
    let warmup_ms = bench.warm_up(&mut session).map_err(err)?;
    let first = bench
        .say(&mut session, MESSAGES[0], max_tokens)
        .map_err(err)?;
    let later = bench
        .say(&mut session, MESSAGES[1], max_tokens)
        .map_err(err)?;

    // One long conversation: time to first token at turn 1 and at the last turn.
    let mut ttft = Vec::new();
    let mut long = bench.session(n_threads, n_ctx).map_err(err)?;
    bench.warm_up(&mut long).map_err(err)?;
    for turn in 0..args.turns.max(1) {
        let stats = bench
            .say(
                &mut long,
                MESSAGES[turn % MESSAGES.len()],
                max_tokens.min(16),
            )
            .map_err(err)?;
        ttft.push(stats.ttft_ms);
    }
    drop(long);

    let speed = bench
        .decode_tps(&mut session, max_tokens.max(64))
        .map_err(err)?;
    drop(session);

    let cores = hardware
        .cpu
        .physical_cores
        .clamp(1, hardware.cpu.available_parallelism.max(1));
    let mut threads_sweep = Vec::new();
    for threads in 1..=cores {
        let threads = u16::try_from(threads).unwrap_or(u16::MAX);
        let mut session = bench.session(threads, n_ctx).map_err(err)?;
        let stats = bench
            .decode_tps(&mut session, max_tokens.max(64))
            .map_err(err)?;
        threads_sweep.push(json!({"n_threads": threads, "decode_tps": stats.decode_tps}));
    }

    let mut ctx_sweep = Vec::new();
    for size in [512u32, 2048, 8192] {
        let start = Instant::now();
        let mut session = bench.session(n_threads, size).map_err(err)?;
        let load = start.elapsed().as_secs_f64() * 1000.0;
        let n_ctx_loaded = session.stats().n_ctx;
        if n_ctx_loaded < size && size > 512 {
            // Capped at the model's training context: already measured.
            continue;
        }
        let stats = bench
            .decode_tps(&mut session, max_tokens.max(64))
            .map_err(err)?;
        ctx_sweep.push(json!({
            "n_ctx": n_ctx_loaded, "load_ms": load, "decode_tps": stats.decode_tps
        }));
    }

    let mut max_tokens_sweep = Vec::new();
    let mut session = bench.session(n_threads, n_ctx).map_err(err)?;
    for limit in [16u32, 64, 256] {
        let start = Instant::now();
        let stats = bench.decode_tps(&mut session, limit).map_err(err)?;
        max_tokens_sweep.push(json!({
            "max_tokens": limit,
            "generated_tokens": stats.generated_tokens,
            "reply_ms": start.elapsed().as_secs_f64() * 1000.0,
        }));
    }

    let mut report = json!({
        "model": model_path.display().to_string(),
        "model_size_bytes": info.file_size_bytes,
        "n_layers": info.n_layers,
        "prompt_format": format,
        "n_threads": n_threads,
        "n_gpu_layers": load_plan.n_gpu_layers,
        "n_ctx": trained_ctx,
        "max_tokens": max_tokens,
        "load_ms": load_ms,
        "warmup_ms": warmup_ms,
        "ttft_cold_ms": cold_stats.ttft_ms,
        "ttft_first_ms": first.ttft_ms,
        "ttft_later_ms": later.ttft_ms,
        // The grammar-constrained emotion tag of that reply (chat.tag_grammar).
        "tag_lead_tokens": later.lead_tokens,
        "tag_lead_ms": later.lead_ms,
        "turns": ttft.len(),
        "ttft_turn1_ms": ttft.first().copied().unwrap_or_default(),
        "decode_tps": speed.decode_tps,
        "prompt_tps": cold_stats.prompt_tps,
        "threads_sweep": threads_sweep,
        "auto_threads": auto_threads,
        "ctx_sweep": ctx_sweep,
        "max_tokens_sweep": max_tokens_sweep,
    });
    report[format!("ttft_turn{}_ms", ttft.len())] = json!(ttft.last().copied().unwrap_or_default());
    Ok(report)
}

fn table(report: &Value) -> String {
    let number = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
    let turns = report["turns"].as_u64().unwrap_or(0);
    let mut out = format!(
        "model {} ({} layers, {} threads, {} GPU layers, n_ctx {})\n",
        report["model"].as_str().unwrap_or("?"),
        report["n_layers"],
        report["n_threads"],
        report["n_gpu_layers"],
        report["n_ctx"]
    );
    let rows = [
        ("model load", number("load_ms"), "ms"),
        ("warm-up (system prompt)", number("warmup_ms"), "ms"),
        ("first reply TTFT, no warm-up", number("ttft_cold_ms"), "ms"),
        ("first reply TTFT, warmed up", number("ttft_first_ms"), "ms"),
        ("later reply TTFT", number("ttft_later_ms"), "ms"),
        ("TTFT at turn 1", number("ttft_turn1_ms"), "ms"),
        (
            "TTFT at the last turn",
            report[format!("ttft_turn{turns}_ms")]
                .as_f64()
                .unwrap_or(f64::NAN),
            "ms",
        ),
        ("prompt processing", number("prompt_tps"), "tok/s"),
        ("decoding", number("decode_tps"), "tok/s"),
    ];
    for (name, value, unit) in rows {
        out.push_str(&format!("{name:<32} {value:>10.1} {unit}\n"));
    }
    out.push_str(&format!("(conversation of {turns} turns)\n"));
    for row in report["threads_sweep"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "threads {:<3} decode {:>10.1} tok/s\n",
            row["n_threads"],
            row["decode_tps"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    out.push_str(&format!("auto threads: {}\n", report["auto_threads"]));
    for row in report["ctx_sweep"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "n_ctx {:<6} load {:>8.1} ms, decode {:>10.1} tok/s\n",
            row["n_ctx"],
            row["load_ms"].as_f64().unwrap_or(f64::NAN),
            row["decode_tps"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    for row in report["max_tokens_sweep"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "max_tokens {:<4} {} tokens in {:>8.1} ms\n",
            row["max_tokens"],
            row["generated_tokens"],
            row["reply_ms"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    out
}
