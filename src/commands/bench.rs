//! `desktop-mate bench`: the old app's performance table for any GGUF — load, warm-up, time to
//! first token cold / warmed / later / deep in a conversation, prompt and decode speed, and the
//! effect of threads, context size and reply length. With `llm.backend: OpenAi(..)` the same
//! replies are timed through the server; the thread and context sweeps need llama.cpp in this
//! process and are skipped (the report says so in `skipped`).

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::config::{LoadedSettings, SamplingSettings, Threads};
use crate::llm::contract::{ChatError, GenerateOptions, PromptFormat, ReplyStats, ReplyStream};
use crate::llm::conversation::session::ChatSession;
use crate::llm::load::{BackendConfig, load_backend};
use crate::llm::plan::{Workload, resolve_threads, terminal_model};
use crate::llm::runtime::engine::{EngineSettings, LlmEngine};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only the memory section, with this embedding GGUF: embedding time per message, recall
    /// latency with 100, 10 000 and 100 000 memories; with a chat model, its notes' cost.
    #[arg(long, value_name = "GGUF")]
    pub memory: Option<std::path::PathBuf>,
    /// Only the voice section, with this Piper voice (`NAME.onnx` or a prepared folder): time
    /// per sentence, real-time factor, sentence -> first audio, and Enter -> first audio with
    /// the settings' chat model (when there is one).
    #[arg(long, value_name = "VOICE")]
    pub voice: Option<std::path::PathBuf>,
    /// Only the listening section, with this recording (a 5 s utterance for the documented
    /// figures): end of speech -> text, real-time factor and memory, with the recognizer and
    /// detector of `transcribe` (`--recognizer`, `--vad`, or the default ones).
    #[arg(long, value_name = "WAV")]
    pub listen: Option<std::path::PathBuf>,
    /// The listening section's recognizer folder (as `transcribe --recognizer`).
    #[arg(long, value_name = "DIR", env = "DESKTOP_MATE_RECOGNIZER")]
    pub recognizer: Option<std::path::PathBuf>,
    /// The listening section's Silero VAD model (as `transcribe --vad`).
    #[arg(long, value_name = "ONNX", env = "DESKTOP_MATE_VAD")]
    pub vad: Option<std::path::PathBuf>,
    /// Turns of the long conversation.
    #[arg(long, default_value_t = 50)]
    pub turns: usize,
    /// Reply length for the timed replies.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u32,
    /// Threads for decoding and prompts instead of the load plan's.
    #[arg(long, value_name = "N")]
    pub threads: Option<u16>,
    /// Only the measurements like llama-bench's `-p 256 -n 64` (pp256_tps, tg64_tps).
    #[arg(long)]
    pub speed_only: bool,
    /// Runs of each of those measurements (their mean is reported, like llama-bench's).
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
}

const MESSAGES: [&str; 4] = [
    "Hello! How are you today?",
    "What did you do this morning?",
    "Tell me something nice.",
    "Do you like music?",
];

/// What `bench --json` prints: the speed section alone (`--speed-only`) or the whole report.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Report {
    Speed(Box<SpeedReport>),
    Full(Box<BenchReport>),
}

/// llama-bench's `-p 256 -n 64`, measured in this process (or why not).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LlamaBenchLike {
    Measured {
        n_threads: u16,
        n_batch: u32,
        n_prompt: usize,
        n_gen: u32,
        pp_tps: f64,
        tg_tps: f64,
        pp_runs: Vec<f64>,
        tg_runs: Vec<f64>,
    },
    Skipped {
        skipped: &'static str,
    },
}

impl LlamaBenchLike {
    fn pp_tps(&self) -> Option<f64> {
        match self {
            Self::Measured { pp_tps, .. } => Some(*pp_tps),
            Self::Skipped { .. } => None,
        }
    }

    fn tg_tps(&self) -> Option<f64> {
        match self {
            Self::Measured { tg_tps, .. } => Some(*tg_tps),
            Self::Skipped { .. } => None,
        }
    }
}

/// The llama.cpp modules in use (`null` for a server backend).
#[derive(Debug, Clone, Serialize)]
pub struct ModulesInUse {
    pub cpu_variant: Option<String>,
    pub gpu_module: Option<String>,
    pub gpu_device: Option<String>,
    pub load_ms: f64,
}

/// The speed section (`--speed-only`, and part of the whole report).
#[derive(Debug, Clone, Serialize)]
pub struct SpeedReport {
    pub model: String,
    pub llama_backends: Option<ModulesInUse>,
    pub profile: Option<String>,
    pub n_gpu_layers: Option<u32>,
    pub n_threads: u16,
    pub pp256_tps: Option<f64>,
    pub tg64_tps: Option<f64>,
    /// The same with the settings' sampling (temperature, top-k, ...), not greedy.
    pub tg64_sampling_tps: Option<f64>,
    pub llama_bench_like: LlamaBenchLike,
    pub llama_bench_like_sampling: LlamaBenchLike,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThreadsRow {
    pub n_threads: u16,
    pub decode_tps: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContextRow {
    pub n_ctx: u32,
    pub load_ms: f64,
    pub decode_tps: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplyLengthRow {
    pub max_tokens: u32,
    pub generated_tokens: usize,
    pub reply_ms: f64,
}

/// The whole report: the table, `--json` and docs/benchmarks.md read these fields.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `local` or `open_ai`.
    pub backend: &'static str,
    pub model: String,
    pub llama_backends: Option<ModulesInUse>,
    pub profile: Option<String>,
    pub model_size_bytes: Option<u64>,
    pub n_layers: Option<u32>,
    pub prompt_format: PromptFormat,
    pub n_threads: Option<u16>,
    pub n_gpu_layers: Option<u32>,
    pub n_ctx: u32,
    pub max_tokens: u32,
    pub load_ms: f64,
    pub warmup_ms: f64,
    pub ttft_cold_ms: f64,
    pub ttft_first_ms: f64,
    pub ttft_later_ms: f64,
    /// The grammar-constrained emotion tag of that reply (chat.tag_grammar).
    pub tag_lead_tokens: usize,
    pub tag_lead_ms: f64,
    pub turns: usize,
    pub ttft_turn1_ms: f64,
    /// `ttft_turn<N>_ms`: the last turn's, under its own key (N = `turns`).
    #[serde(flatten)]
    pub ttft_last_turn: std::collections::BTreeMap<String, f64>,
    pub ttft_turns_ms: Vec<f64>,
    /// Prompt tokens taken from the cache, and evaluated, at each turn.
    pub reused_turns: Vec<(usize, usize)>,
    pub decode_tps: f64,
    pub prompt_tps: f64,
    pub threads_sweep: Vec<ThreadsRow>,
    pub auto_threads: Option<u16>,
    pub ctx_sweep: Vec<ContextRow>,
    pub max_tokens_sweep: Vec<ReplyLengthRow>,
    pub pp256_tps: Option<f64>,
    pub tg64_tps: Option<f64>,
    pub tg64_sampling_tps: Option<f64>,
    pub llama_bench_like: LlamaBenchLike,
    pub llama_bench_like_sampling: LlamaBenchLike,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
}

impl BenchReport {
    /// The last turn's time to first token.
    fn ttft_last_ms(&self) -> f64 {
        self.ttft_turns_ms.last().copied().unwrap_or(f64::NAN)
    }
}

pub fn run(loaded: LoadedSettings, args: BenchArgs) -> ExitCode {
    if let Some(model) = &args.memory {
        let threads = args.threads.unwrap_or(2);
        let report = crate::commands::memory_bench::bench(&loaded, model, threads);
        return print_section("memory", report, args.json);
    }
    if let Some(voice) = &args.voice {
        return print_section("voice", voice_section(&loaded, &args, voice), args.json);
    }
    if let Some(file) = &args.listen {
        let report = crate::commands::transcribe::model_paths(
            args.recognizer.as_deref(),
            args.vad.as_deref(),
            "auto",
        )
        .map_err(|err| err.to_string())
        .and_then(|(recognizer, vad)| {
            let threads = args.threads.map_or(2, u32::from);
            crate::commands::listen_bench::bench(file, &recognizer, &vad, threads)
        });
        return print_section("listen", report, args.json);
    }
    match bench(&loaded, &args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(text) => println!("{text}"),
                    Err(err) => {
                        eprintln!("error: cannot write the report as JSON: {err}");
                        return ExitCode::FAILURE;
                    }
                }
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

fn print_section<T: Serialize>(name: &str, report: Result<T, String>, json: bool) -> ExitCode {
    match report {
        Ok(report) => {
            let report = serde_json::json!({ name: report });
            if json {
                println!("{report}");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The voice section: synthesis alone, then with the settings' chat model when one resolves.
fn voice_section(
    loaded: &LoadedSettings,
    args: &BenchArgs,
    voice: &std::path::Path,
) -> Result<crate::commands::voice_bench::VoiceReport, String> {
    use crate::commands::voice_bench::{ChatBench, bench as voice_bench};
    let espeak = crate::voice::phonemes::Espeak::locate(None).map_err(|err| err.to_string())?;
    let chat = match terminal_model(loaded) {
        Ok(resolved) => {
            let settings = &loaded.settings;
            let bench = Bench::new(settings, &resolved.backend);
            let n_threads = args
                .threads
                .unwrap_or_else(|| {
                    resolved
                        .local
                        .as_ref()
                        .map_or(1, |local| local.plan.n_threads)
                })
                .max(1);
            let n_ctx = match &bench.base {
                BackendConfig::Local(engine) => engine.n_ctx,
                BackendConfig::OpenAi(_) => 0,
            };
            let mut session = bench.session(n_threads, n_ctx).map_err(|e| e.to_string())?;
            bench.warm_up(&mut session).map_err(|e| e.to_string())?;
            Some(ChatBench {
                model: resolved.backend.describe(),
                session,
                persona: &settings.persona,
                options: GenerateOptions {
                    max_tokens: args.max_tokens,
                    ..bench.options.clone()
                },
            })
        }
        Err(why) => {
            eprintln!("bench: no chat model ({why}): Enter -> first audio is not measured");
            None
        }
    };
    voice_bench(voice, espeak, chat)
}

struct Bench<'a> {
    base: BackendConfig,
    settings: &'a crate::config::Settings,
    options: GenerateOptions,
    never: AtomicBool,
}

impl<'a> Bench<'a> {
    /// Greedy (temperature 0, seed 1) with the settings' other sampling values.
    fn new(settings: &'a crate::config::Settings, backend: &BackendConfig) -> Self {
        Bench {
            base: backend.clone(),
            settings,
            options: GenerateOptions::from_sampling(&SamplingSettings {
                temperature: 0.0,
                seed: Some(1),
                ..settings.llm.sampling.clone()
            }),
            never: AtomicBool::new(false),
        }
    }

    /// A fresh session (empty cache) with these threads and context size.
    /// (A server's session ignores both.)
    fn session(&self, n_threads: u16, n_ctx: u32) -> Result<ChatSession, ChatError> {
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
    ) -> Result<ReplyStats, ChatError> {
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

    fn warm_up(&self, session: &mut ChatSession) -> Result<f64, ChatError> {
        Ok(session.warm_up(&self.settings.persona)?.prompt_ms)
    }

    /// llama-bench's `pp256` and `tg64` on our engine, with the same threads: a 256-token prompt
    /// evaluated on an empty cache (one batch when n_batch >= 256, logits for its last token),
    /// and 64 tokens generated by [`LlmEngine::generate`] with `sampling` (sampler chain,
    /// UTF-8 and stop handling included; llama-bench feeds random tokens without sampling).
    /// One warm-up of each first, then `repetitions` runs; tok/s of every run.
    fn llama_bench_like(
        &self,
        n_threads: u16,
        repetitions: usize,
        sampling: &GenerateOptions,
    ) -> Result<LlamaBenchLike, ChatError> {
        const N_PROMPT: usize = 256;
        const N_GEN: u32 = 64;
        let BackendConfig::Local(base) = &self.base else {
            return Ok(LlamaBenchLike::Skipped {
                skipped: "llama.cpp's own speed is measured on a local model",
            });
        };
        let mut engine = LlmEngine::load(EngineSettings {
            n_threads,
            n_threads_batch: n_threads,
            ..base.clone()
        })?;
        // A model with a small context gets the longest prompt that leaves room for the reply.
        let n_prompt = N_PROMPT.min((engine.n_ctx() as usize).saturating_sub(N_GEN as usize + 2));
        let mut tokens = Vec::new();
        let mut text = String::from("Once upon a time");
        while tokens.len() < n_prompt {
            text.push_str(" there was a little robot who liked to sing, and every day it sang.");
            tokens = engine.tokenize(&text);
        }
        tokens.truncate(n_prompt);
        let options = GenerateOptions {
            max_tokens: N_GEN,
            stop: Vec::new(),
            lead: None,
            ..sampling.clone()
        };
        let generate = |engine: &mut LlmEngine, max_tokens| {
            engine.evaluate_fresh(&tokens[..1])?;
            engine.generate(
                "Once upon a time",
                &GenerateOptions {
                    max_tokens,
                    ..options.clone()
                },
                &self.never,
                &mut |_| {},
            )
        };
        engine.evaluate_fresh(&tokens)?;
        generate(&mut engine, 1)?;
        let mut pp = Vec::new();
        let mut tg = Vec::new();
        for _ in 0..repetitions.max(1) {
            let elapsed = engine.evaluate_fresh(&tokens)?;
            pp.push(tokens.len() as f64 / elapsed.as_secs_f64());
            // From the first generated token on: 64 decodes and 63 samples.
            let stats = generate(&mut engine, N_GEN)?.stats;
            tg.push(stats.generated_tokens as f64 * 1000.0 / stats.decode_ms.max(f64::EPSILON));
        }
        let mean = |runs: &[f64]| runs.iter().sum::<f64>() / runs.len() as f64;
        Ok(LlamaBenchLike::Measured {
            n_threads,
            n_batch: engine.settings().n_batch,
            n_prompt: tokens.len(),
            n_gen: N_GEN,
            pp_tps: mean(&pp),
            tg_tps: mean(&tg),
            pp_runs: pp,
            tg_runs: tg,
        })
    }

    /// Decode speed of a plain completion (for a server: of a chat reply, as not every server
    /// has `/completions`, not recorded).
    fn decode_tps(
        &self,
        session: &mut ChatSession,
        max_tokens: u32,
    ) -> Result<ReplyStats, ChatError> {
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

fn bench(loaded: &LoadedSettings, args: &BenchArgs) -> Result<Report, String> {
    let resolved = terminal_model(loaded)?;
    let settings = &loaded.settings;
    let local = resolved.local.as_ref();
    let model_name = resolved.backend.describe();
    let bench = Bench::new(settings, &resolved.backend);
    let err = |e: ChatError| e.to_string();
    let n_threads = args
        .threads
        .unwrap_or_else(|| local.map_or(1, |local| local.plan.n_threads))
        .max(1);
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

    let like = bench
        .llama_bench_like(n_threads, args.repetitions, &bench.options)
        .map_err(err)?;
    let like_chat = bench
        .llama_bench_like(
            n_threads,
            args.repetitions,
            &GenerateOptions::from_sampling(&SamplingSettings {
                seed: Some(1),
                ..settings.llm.sampling.clone()
            }),
        )
        .map_err(err)?;
    let speed = SpeedReport {
        model: model_name.clone(),
        llama_backends: modules_in_use(),
        profile: local.map(|l| l.plan.profile.to_string()),
        n_gpu_layers: local.map(|l| l.plan.n_gpu_layers),
        n_threads,
        pp256_tps: like.pp_tps(),
        tg64_tps: like.tg_tps(),
        tg64_sampling_tps: like_chat.tg_tps(),
        llama_bench_like: like,
        llama_bench_like_sampling: like_chat,
    };
    if args.speed_only {
        return Ok(Report::Speed(Box::new(speed)));
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

    let decode = bench
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
        threads_sweep.push(ThreadsRow {
            n_threads: threads,
            decode_tps: stats.decode_tps,
        });
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
        ctx_sweep.push(ContextRow {
            n_ctx: n_ctx_loaded,
            load_ms: load,
            decode_tps: stats.decode_tps,
        });
    }

    let mut max_tokens_sweep = Vec::new();
    let mut session = bench.session(n_threads, n_ctx).map_err(err)?;
    for limit in [16u32, 64, 256] {
        let start = Instant::now();
        let stats = bench.decode_tps(&mut session, limit).map_err(err)?;
        max_tokens_sweep.push(ReplyLengthRow {
            max_tokens: limit,
            generated_tokens: stats.generated_tokens,
            reply_ms: start.elapsed().as_secs_f64() * 1000.0,
        });
    }

    let last_turn = [(
        format!("ttft_turn{}_ms", ttft.len()),
        ttft.last().copied().unwrap_or_default(),
    )];
    Ok(Report::Full(Box::new(BenchReport {
        backend: if local.is_some() { "local" } else { "open_ai" },
        model: model_name,
        llama_backends: speed.llama_backends,
        profile: speed.profile,
        model_size_bytes: local.map(|l| l.info.file_size_bytes),
        n_layers: local.map(|l| l.info.n_layers),
        prompt_format: format,
        n_threads: local.map(|l| l.plan.n_threads),
        n_gpu_layers: local.map(|l| l.plan.n_gpu_layers),
        n_ctx: trained_ctx,
        max_tokens,
        load_ms,
        warmup_ms,
        ttft_cold_ms: cold_stats.ttft_ms,
        ttft_first_ms: first.ttft_ms,
        ttft_later_ms: later.ttft_ms,
        tag_lead_tokens: later.lead_tokens,
        tag_lead_ms: later.lead_ms,
        turns: ttft.len(),
        ttft_turn1_ms: ttft.first().copied().unwrap_or_default(),
        ttft_last_turn: last_turn.into_iter().collect(),
        ttft_turns_ms: ttft,
        reused_turns: reused,
        decode_tps: decode.decode_tps,
        prompt_tps: cold_stats.prompt_tps,
        threads_sweep,
        auto_threads: local
            .map(|l| resolve_threads(Threads::Auto, &l.hardware, Workload::Terminal)),
        ctx_sweep,
        max_tokens_sweep,
        pp256_tps: speed.pp256_tps,
        tg64_tps: speed.tg64_tps,
        tg64_sampling_tps: speed.tg64_sampling_tps,
        llama_bench_like: speed.llama_bench_like,
        llama_bench_like_sampling: speed.llama_bench_like_sampling,
        skipped: local.is_none().then_some(
            "threads_sweep and ctx_sweep: they set llama.cpp's threads and context in this \
             process, which a server backend does not have; n_ctx is unknown (0)",
        ),
    })))
}

/// The CPU and GPU modules llama.cpp runs on (none for a server backend).
fn modules_in_use() -> Option<ModulesInUse> {
    crate::llm::runtime::backends::loaded().map(|b| ModulesInUse {
        cpu_variant: b.cpu_variant.clone(),
        gpu_module: b.gpu_module.clone(),
        gpu_device: b.gpu().map(|d| d.description.clone()),
        load_ms: b.load_ms,
    })
}

fn table(report: &Report) -> String {
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let shown = |v: Option<u32>| v.map_or("n/a".to_owned(), |v| v.to_string());
    let report = match report {
        Report::Speed(speed) => {
            return format!(
                "model {} ({} threads)\npp256 {:>10.1} tok/s\ntg64  {:>10.1} tok/s (greedy), {:.1} tok/s (settings' sampling)\n",
                speed.model,
                speed.n_threads,
                nan(speed.pp256_tps),
                nan(speed.tg64_tps),
                nan(speed.tg64_sampling_tps),
            );
        }
        Report::Full(report) => report,
    };
    let turns = report.turns;
    let mut out = format!(
        "model {} ({} layers, {} threads, {} GPU layers, n_ctx {})\n",
        report.model,
        shown(report.n_layers),
        report.n_threads.map_or("n/a".to_owned(), |n| n.to_string()),
        shown(report.n_gpu_layers),
        report.n_ctx
    );
    let rows = [
        ("model load", report.load_ms, "ms"),
        ("warm-up (system prompt)", report.warmup_ms, "ms"),
        ("first reply TTFT, no warm-up", report.ttft_cold_ms, "ms"),
        ("first reply TTFT, warmed up", report.ttft_first_ms, "ms"),
        ("later reply TTFT", report.ttft_later_ms, "ms"),
        ("TTFT at turn 1", report.ttft_turn1_ms, "ms"),
        ("TTFT at the last turn", report.ttft_last_ms(), "ms"),
        ("prompt processing", report.prompt_tps, "tok/s"),
        ("decoding", report.decode_tps, "tok/s"),
        ("pp256 (like llama-bench)", nan(report.pp256_tps), "tok/s"),
        ("tg64 (like llama-bench)", nan(report.tg64_tps), "tok/s"),
    ];
    for (name, value, unit) in rows {
        out.push_str(&format!("{name:<32} {value:>10.1} {unit}\n"));
    }
    out.push_str(&format!("(conversation of {turns} turns)\n"));
    for row in &report.threads_sweep {
        out.push_str(&format!(
            "threads {:<3} decode {:>10.1} tok/s\n",
            row.n_threads, row.decode_tps
        ));
    }
    out.push_str(&format!(
        "auto threads: {}\n",
        report
            .auto_threads
            .map_or("n/a".to_owned(), |n| n.to_string())
    ));
    if let Some(skipped) = report.skipped {
        out.push_str(&format!("skipped: {skipped}\n"));
    }
    for row in &report.ctx_sweep {
        out.push_str(&format!(
            "n_ctx {:<6} load {:>8.1} ms, decode {:>10.1} tok/s\n",
            row.n_ctx, row.load_ms, row.decode_tps
        ));
    }
    for row in &report.max_tokens_sweep {
        out.push_str(&format!(
            "max_tokens {:<4} {} tokens in {:>8.1} ms\n",
            row.max_tokens, row.generated_tokens, row.reply_ms
        ));
    }
    out
}
