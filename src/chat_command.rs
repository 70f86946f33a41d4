//! `desktop-mate chat`: the same engine and settings as the mascot, in the terminal.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use serde::Serialize;

use crate::config::{Emotion, LoadedSettings};
use crate::llm::chat::{
    ChatTurn, PromptFormat, format_prompt, prompt_format, reply, split_emotion_tag,
};
use crate::llm::emotion::analyse;
use crate::llm::engine::{GenerateOptions, LlmEngine, ReplyStats};
use crate::llm::plan::terminal_model;

#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// Answer this one message and exit.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Send the text as a plain completion: no chat template, no persona (base models, tests).
    #[arg(long)]
    pub raw: bool,
    /// Reply length limit (default: llm.sampling.max_tokens).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 = greedy (default: llm.sampling.temperature).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Seed for reproducible replies (default: llm.sampling.seed).
    #[arg(long)]
    pub seed: Option<u32>,
    /// With --prompt: print one JSON object {"text", "emotion", "prompt_tokens",
    /// "generated_tokens", "ttft_ms", "decode_tps", "prompt_tps", ...} instead of streaming.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct JsonReply<'a> {
    text: &'a str,
    emotion: Option<Emotion>,
    #[serde(flatten)]
    stats: &'a ReplyStats,
    load_ms: f64,
    warm_up_ms: Option<f64>,
    n_threads: u16,
    n_gpu_layers: u32,
    prompt_format: Option<PromptFormat>,
}

pub fn run(loaded: LoadedSettings, args: ChatArgs) -> ExitCode {
    let resolved = match terminal_model(&loaded) {
        Ok(resolved) => resolved,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let settings = loaded.settings;
    let model_path = resolved.engine.model_path.clone();
    let load_plan = resolved.plan;
    tracing::info!(
        "loading {} with {} threads, {} GPU layers ({})",
        model_path.display(),
        load_plan.n_threads,
        load_plan.n_gpu_layers,
        load_plan.reason
    );
    let (loaded, notice) = LlmEngine::load_with_cpu_retry(resolved.engine);
    if let Some(notice) = notice {
        eprintln!("warning: {notice}");
    }
    let mut engine = match loaded {
        Ok(engine) => engine,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };

    let mut sampling = settings.llm.sampling.clone();
    if let Some(t) = args.temperature {
        sampling.temperature = t;
    }
    if let Some(seed) = args.seed {
        sampling.seed = Some(seed);
    }
    if let Some(n) = args.max_tokens {
        sampling.max_tokens = n;
    }
    let options = GenerateOptions::from_sampling(&sampling);
    let persona = settings.persona.clone();
    let format = (!args.raw).then(|| prompt_format(&engine));

    let mut warm_up_ms = None;
    if let Some(format) = format
        && settings.llm.warm_up
    {
        let (system, _) = format_prompt(&engine, format, &persona, &[], None);
        match engine.prefill(&system) {
            Ok(stats) => warm_up_ms = Some(stats.prompt_ms),
            Err(err) => tracing::warn!("warm-up skipped: {err}"),
        }
    }

    // Ctrl-C: stops the reply in flight; a second one while idle quits.
    let cancel = Arc::new(AtomicBool::new(false));
    let presses = Arc::new(AtomicU8::new(0));
    {
        let cancel = Arc::clone(&cancel);
        let presses = Arc::clone(&presses);
        let handler = ctrlc::set_handler(move || {
            cancel.store(true, Ordering::SeqCst);
            if presses.fetch_add(1, Ordering::SeqCst) >= 1 {
                std::process::exit(130);
            }
        });
        if let Err(err) = handler {
            tracing::warn!("Ctrl-C will end the program instead of the reply: {err}");
        }
    }

    let load_ms = engine.load_time.as_secs_f64() * 1000.0;
    let mut history: Vec<ChatTurn> = Vec::new();
    let answer =
        |engine: &mut LlmEngine, message: &str, history: &mut Vec<ChatTurn>, stream: bool| {
            cancel.store(false, Ordering::SeqCst);
            presses.store(0, Ordering::SeqCst);
            let mut stdout = std::io::stdout();
            let mut on_text = |piece: &str| {
                if stream {
                    let _ = stdout.write_all(piece.as_bytes());
                    let _ = stdout.flush();
                }
            };
            let result = match format {
                None => engine
                    .generate(message, &options, &cancel, &mut on_text)
                    .map(|r| (r, 0)),
                Some(format) => reply(
                    engine,
                    format,
                    &persona,
                    history,
                    message,
                    &options,
                    &cancel,
                    &mut on_text,
                ),
            };
            match result {
                Ok((reply, dropped)) => {
                    if dropped > 0 {
                        tracing::info!("dropped the {dropped} oldest turns to fit the context");
                        history.drain(..dropped.min(history.len()));
                    }
                    if format.is_some() {
                        history.push(ChatTurn {
                            user: message.to_owned(),
                            assistant: reply.text.clone(),
                        });
                    }
                    Ok(reply)
                }
                Err(err) => Err(err),
            }
        };

    if let Some(prompt) = args.prompt {
        return match answer(&mut engine, &prompt, &mut history, !args.json) {
            Ok(reply) => {
                if args.json {
                    let (emotion, text) = if args.raw {
                        (None, reply.text.as_str())
                    } else {
                        let (tag, text) = split_emotion_tag(&reply.text);
                        // No tag: the keyword/emoji analyser decides.
                        (tag.or_else(|| analyse(text).map(|s| s.emotion)), text)
                    };
                    let json = JsonReply {
                        text,
                        emotion,
                        stats: &reply.stats,
                        load_ms,
                        warm_up_ms,
                        n_threads: load_plan.n_threads,
                        n_gpu_layers: load_plan.n_gpu_layers,
                        prompt_format: format,
                    };
                    match serde_json::to_string(&json) {
                        Ok(line) => println!("{line}"),
                        Err(err) => {
                            eprintln!("error: {err}");
                            return ExitCode::FAILURE;
                        }
                    }
                } else {
                    println!();
                    print_stats(&reply.stats);
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        };
    }

    eprintln!(
        "chatting with {} ({}). Empty line or Ctrl-C twice to quit.",
        persona.name,
        model_path.display()
    );
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let message = line.trim();
        if message.is_empty() {
            break;
        }
        match answer(&mut engine, message, &mut history, true) {
            Ok(reply) => {
                println!();
                print_stats(&reply.stats);
            }
            Err(err) => eprintln!("error: {err}"),
        }
    }
    ExitCode::SUCCESS
}

fn print_stats(stats: &ReplyStats) {
    eprintln!(
        "[{} prompt tokens ({} cached) at {:.0} tok/s, first token after {:.0} ms, {} tokens at {:.1} tok/s, {:?}]",
        stats.prompt_tokens,
        stats.reused_tokens,
        stats.prompt_tps,
        stats.ttft_ms,
        stats.generated_tokens,
        stats.decode_tps,
        stats.stop_reason
    );
}
