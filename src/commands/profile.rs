//! `desktop-mate profile-memory`: the real engine without a window, RSS at each stage of a long
//! conversation, and whether memory keeps growing per message (a leak) once it has settled.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::config::{LoadedSettings, SamplingSettings};
use crate::diagnostics::sampler::Sampler;
use crate::hardware::human_bytes;
use crate::llm::contract::GenerateOptions;
use crate::llm::contract::ReplyStream;
use crate::llm::conversation::session::ChatSession;
use crate::llm::load::load_backend;
use crate::llm::plan::terminal_model;

/// Growth per message above which the last stage is called a leak. The KV cache is allocated
/// up front, so a healthy engine grows by (nearly) nothing per message once warmed up.
pub const LEAK_THRESHOLD_BYTES_PER_MESSAGE: f64 = 64.0 * 1024.0;

#[derive(Debug, Clone, clap::Args)]
pub struct ProfileArgs {
    /// Message counts to report at, e.g. 10,50,100.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    pub messages: Vec<usize>,
    /// Reply length of each message.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u32,
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Stage {
    stage: String,
    messages: usize,
    rss_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    stages: Vec<Stage>,
    /// Over the last stage (between the last two message counts).
    slope_bytes_per_message: f64,
    leak_threshold_bytes_per_message: f64,
    leak: bool,
    verdict: String,
}

pub fn run(loaded: LoadedSettings, args: ProfileArgs) -> ExitCode {
    match profile(&loaded, &args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(err) => {
                        eprintln!("error: {err}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                for stage in &report.stages {
                    println!("{:<28} {:>10}", stage.stage, human_bytes(stage.rss_bytes));
                }
                println!(
                    "slope over the last stage: {:+.1} KiB/message -> {}",
                    report.slope_bytes_per_message / 1024.0,
                    report.verdict
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

const MESSAGES: [&str; 4] = [
    "Hello! How are you today?",
    "Tell me a short story.",
    "What is your favourite colour?",
    "Thank you, that was nice.",
];

fn profile(loaded: &LoadedSettings, args: &ProfileArgs) -> Result<Report, String> {
    let mut milestones = args.messages.clone();
    milestones.sort_unstable();
    milestones.dedup();
    milestones.retain(|&n| n > 0);
    if milestones.is_empty() {
        return Err("--messages needs at least one count above 0, e.g. 10,50,100".into());
    }
    let settings = &loaded.settings;
    let mut sampler = Sampler::new();
    let mut rss = || sampler.sample().rss_bytes;
    let mut stages = vec![Stage {
        stage: "start".into(),
        messages: 0,
        rss_bytes: rss(),
    }];

    // Resolved after the "start" reading: the hardware probe (NVML) is not the model's cost.
    let resolved = terminal_model(loaded)?;
    let model_name = resolved.backend.describe();
    let backend = load_backend(resolved.backend);
    if let Some(notice) = backend.notice {
        eprintln!("warning: {notice}");
    }
    let mut session = ChatSession::new(backend.backend.map_err(|e| e.to_string())?, &settings.chat);
    stages.push(Stage {
        stage: "model loaded".into(),
        messages: 0,
        rss_bytes: rss(),
    });

    session
        .warm_up(&settings.persona)
        .map_err(|e| e.to_string())?;
    let options = GenerateOptions::from_sampling(&SamplingSettings {
        temperature: 0.0,
        max_tokens: args.max_tokens,
        ..settings.llm.sampling.clone()
    });
    let never = AtomicBool::new(false);
    let last = milestones.last().copied().unwrap_or(1);
    for sent in 1..=last {
        let message = MESSAGES[(sent - 1) % MESSAGES.len()];
        session
            .send(
                &settings.persona,
                message,
                &options,
                &mut ReplyStream {
                    cancel: &never,
                    on_text: &mut |_| {},
                },
            )
            .map_err(|e| e.to_string())?;
        if sent == 1 {
            stages.push(Stage {
                stage: "after first generation".into(),
                messages: 1,
                rss_bytes: rss(),
            });
        }
        if milestones.contains(&sent) {
            stages.push(Stage {
                stage: format!("after {sent} messages"),
                messages: sent,
                rss_bytes: rss(),
            });
        }
    }

    // The slope over the last stage: between the last two measurements with messages.
    let with_messages: Vec<&Stage> = stages.iter().filter(|s| s.messages > 0).collect();
    let slope = match with_messages.as_slice() {
        [.., a, b] if b.messages > a.messages => {
            (b.rss_bytes as f64 - a.rss_bytes as f64) / (b.messages - a.messages) as f64
        }
        _ => 0.0,
    };
    let leak = slope > LEAK_THRESHOLD_BYTES_PER_MESSAGE;
    let verdict = if leak {
        format!(
            "memory keeps growing ({:.1} KiB/message > {:.0} KiB): possible leak",
            slope / 1024.0,
            LEAK_THRESHOLD_BYTES_PER_MESSAGE / 1024.0
        )
    } else {
        format!(
            "no leak (growth {:.1} KiB/message <= {:.0} KiB)",
            slope / 1024.0,
            LEAK_THRESHOLD_BYTES_PER_MESSAGE / 1024.0
        )
    };
    Ok(Report {
        model: model_name,
        stages,
        slope_bytes_per_message: slope,
        leak_threshold_bytes_per_message: LEAK_THRESHOLD_BYTES_PER_MESSAGE,
        leak,
        verdict,
    })
}
