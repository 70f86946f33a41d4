//! `desktop-mate chat`: the same engine and settings as the mascot, in the terminal.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use serde::Serialize;

use crate::config::{Emotion, LoadedSettings};
use crate::llm::contract::PromptFormat;
use crate::llm::contract::ReplyStream;
use crate::llm::contract::{GenerateOptions, ReplyStats};
use crate::llm::conversation::session::ChatSession;
use crate::llm::load::load_backend;
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
    /// `null` for a chat server.
    n_threads: Option<u16>,
    n_gpu_layers: Option<u32>,
    prompt_format: Option<PromptFormat>,
    /// The memories put in front of the message (`memory.*` settings), if any.
    recalled: Option<&'a str>,
    /// The standing memories the prompt opened with, if any.
    standing: Option<&'a str>,
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
    let model_name = resolved.backend.describe();
    let load_plan = resolved.local.map(|local| local.plan);
    match &load_plan {
        Some(load_plan) => tracing::info!(
            "loading {model_name} with {} threads, {} GPU layers ({})",
            load_plan.n_threads,
            load_plan.n_gpu_layers,
            load_plan.reason
        ),
        None => tracing::info!("chatting through the server: {model_name}"),
    }
    let backend = load_backend(resolved.backend);
    if let Some(notice) = backend.notice {
        eprintln!("warning: {notice}");
    }
    let mut session = match backend.backend {
        Ok(backend) => ChatSession::new(backend, &settings.chat),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The long-term memory, as in the mascot (not for `--raw` completions).
    if !args.raw {
        match crate::memory::open(&settings) {
            Ok(memory) => session.set_memory(memory),
            Err(reason) => eprintln!("warning: {reason}"),
        }
    }

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

    let mut warm_up_ms = None;
    if !args.raw && settings.llm.warm_up {
        match session.warm_up(&persona) {
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

    let stats = session.stats();
    let prompt_format = (!args.raw).then_some(stats.prompt_format);
    // One message: streamed to stdout unless `json`; returns (shown text, emotion, stats).
    let answer = |session: &mut ChatSession, message: &str, stream: bool| {
        cancel.store(false, Ordering::SeqCst);
        presses.store(0, Ordering::SeqCst);
        let mut stdout = std::io::stdout();
        let mut on_text = |piece: &str| {
            if stream {
                let _ = stdout.write_all(piece.as_bytes());
                let _ = stdout.flush();
            }
        };
        let mut stream = ReplyStream {
            cancel: &cancel,
            on_text: &mut on_text,
        };
        if args.raw {
            session
                .complete(message, &options, &mut stream)
                .map(|reply| (reply.text, None, reply.stats, None))
        } else {
            session
                .send(&persona, message, &options, &mut stream)
                .map(|reply| (reply.shown, reply.emotion, reply.stats, reply.turn.recalled))
        }
    };

    if let Some(prompt) = args.prompt {
        return match answer(&mut session, &prompt, !args.json) {
            Ok((text, emotion, reply_stats, recalled)) => {
                if args.json {
                    let json = JsonReply {
                        text: &text,
                        emotion,
                        stats: &reply_stats,
                        load_ms: stats.load_ms,
                        warm_up_ms,
                        n_threads: load_plan.as_ref().map(|p| p.n_threads),
                        n_gpu_layers: load_plan.as_ref().map(|p| p.n_gpu_layers),
                        prompt_format,
                        recalled: recalled.as_deref(),
                        standing: session.standing(),
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
                    print_stats(&reply_stats);
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
        "chatting with {} ({model_name}). Empty line or Ctrl-C twice to quit.",
        persona.name
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
        match answer(&mut session, message, true) {
            Ok((_, _, reply_stats, _)) => {
                println!();
                print_stats(&reply_stats);
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
