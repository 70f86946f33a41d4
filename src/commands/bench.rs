//! `desktop-mate bench`: the old app's performance table for any GGUF — load, warm-up, time to
//! first token cold / warmed / later / deep in a conversation, prompt and decode speed, and the
//! effect of threads, context size and reply length. With `llm.backend: OpenAi(..)` the same
//! replies are timed through the server; the thread and context sweeps need llama.cpp in this
//! process and are skipped (the report says so in `skipped`).

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::{Value, json};

use crate::config::{LoadedSettings, SamplingSettings, Threads};
use crate::llm::engine::{EngineError, EngineSettings, GenerateOptions, ReplyStats};
use crate::llm::plan::{Workload, resolve_threads, terminal_model};
use crate::llm::session::{BackendConfig, ChatSession, ReplyStream, load_backend};

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
    base: BackendConfig,
    settings: &'a crate::config::Settings,
    options: GenerateOptions,
    never: AtomicBool,
}

impl Bench<'_> {
    /// A fresh session (empty cache) with these threads and context size.
    /// (A server's session ignores both.)
    fn session(&self, n_threads: u16, n_ctx: u32) -> Result<ChatSession, EngineError> {
        let config = match &self.base {
            BackendConfig::Local(base) => BackendConfig::Local(EngineSettings {
                n_threads,
                n_threads_batch: n_threads,
                n_ctx,
                n_batch: base.n_batch.min(n_ctx),
                ..base.clone()
            }),
            server => server.clone(),
        };
        let backend = load_backend(config).backend?;
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

    /// Decode speed of a plain completion (for a server: of a chat reply, as not every server
    /// has `/completions`, not recorded).
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
        if matches!(self.base, BackendConfig::OpenAi(_)) {
            let (turns, start) = (session.turns().to_vec(), session.context_start());
            let stats = self.say(session, "Tell me a long story.", max_tokens);
            session.restore(turns, start);
            return stats;
        }
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
    let local = resolved.local.as_ref();
    let model_name = resolved.backend.describe();
    let bench = Bench {
        base: resolved.backend.clone(),
        settings,
        options: GenerateOptions::from_sampling(&SamplingSettings {
            temperature: 0.0,
            seed: Some(1),
            ..settings.llm.sampling.clone()
        }),
        never: AtomicBool::new(false),
    };
    let err = |e: EngineError| e.to_string();
    let n_threads = local.map_or(1, |local| local.plan.n_threads);
    let n_ctx = match &bench.base {
        BackendConfig::Local(engine) => engine.n_ctx,
        BackendConfig::OpenAi(_) => 0,
    };
    let max_tokens = args.max_tokens;
    match local {
        Some(local) => eprintln!(
            "bench: {model_name} ({}), {n_threads} threads",
            local.info.architecture
        ),
        None => eprintln!("bench: {model_name} (server)"),
    }

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
    // Prompt tokens taken from the cache, and evaluated, at each turn.
    let mut reused = Vec::new();
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
        reused.push((
            stats.reused_tokens,
            stats.prompt_tokens - stats.reused_tokens,
        ));
    }
    drop(long);

    let speed = bench
        .decode_tps(&mut session, max_tokens.max(64))
        .map_err(err)?;
    drop(session);

    let cores = local.map_or(0, |local| {
        let cpu = &local.hardware.cpu;
        cpu.physical_cores
            .clamp(1, cpu.available_parallelism.max(1))
    });
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
    let ctx_sizes: &[u32] = if local.is_some() {
        &[512, 2048, 8192]
    } else {
        &[]
    };
    for &size in ctx_sizes {
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
        "backend": if local.is_some() { "local" } else { "open_ai" },
        "model": model_name,
        "model_size_bytes": local.map(|l| l.info.file_size_bytes),
        "n_layers": local.map(|l| l.info.n_layers),
        "prompt_format": format,
        "n_threads": local.map(|l| l.plan.n_threads),
        "n_gpu_layers": local.map(|l| l.plan.n_gpu_layers),
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
        "ttft_turns_ms": ttft.clone(),
        "reused_turns": reused.clone(),
        "decode_tps": speed.decode_tps,
        "prompt_tps": cold_stats.prompt_tps,
        "threads_sweep": threads_sweep,
        "auto_threads": local
            .map(|l| resolve_threads(Threads::Auto, &l.hardware, Workload::Terminal)),
        "ctx_sweep": ctx_sweep,
        "max_tokens_sweep": max_tokens_sweep,
    });
    report[format!("ttft_turn{}_ms", ttft.len())] = json!(ttft.last().copied().unwrap_or_default());
    if local.is_none() {
        report["skipped"] = json!(
            "threads_sweep and ctx_sweep: they set llama.cpp's threads and context in this process, \
             which a server backend does not have; n_ctx is unknown (0)"
        );
    }
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
    if let Some(skipped) = report["skipped"].as_str() {
        out.push_str(&format!("skipped: {skipped}\n"));
    }
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
