// No console window behind the mascot on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

use bevy::app::AppExit;
use clap::Parser;
use desktop_mate::cli::{Cli, Command};
use desktop_mate::commands::check::CheckReport;
use desktop_mate::config;
use desktop_mate::hardware::HardwareReport;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            desktop_mate::console::attach_parent_console();
            err.exit()
        }
    };
    // The terminal commands print to the terminal that started them (Windows' GUI-subsystem
    // release build has no console of its own); the mascot stays free of it.
    if !matches!(cli.command, None | Some(Command::Run { .. })) {
        desktop_mate::console::attach_parent_console();
    }
    let command = cli.command.unwrap_or(Command::Run {
        record_diagnostics: None,
    });
    // New chat templates are test-rendered by this binary in a child process.
    if let Ok(exe) = std::env::current_exe() {
        desktop_mate::llm::conversation::template_vet::set_host(exe);
    }
    match command {
        Command::Run { record_diagnostics } => {
            if let Some(line) = desktop_mate::desktop::display::choose_backend() {
                eprintln!("{line}");
            }
            match desktop_mate::desktop::window_check() {
                Ok(None) => {}
                Ok(Some(warning)) => eprintln!("warning: {warning}"),
                Err(message) => {
                    desktop_mate::console::attach_parent_console();
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
            }
            let loaded = config::load(cli.global.config.as_deref(), cli.global.run_overrides());
            let mut app = desktop_mate::windowed_app(loaded);
            if let Some(path) = record_diagnostics {
                app.world_mut()
                    .write_message(desktop_mate::diagnostics::ToggleRecording { path: Some(path) });
            }
            exit_code(app.run())
        }
        Command::Chat(args) => {
            desktop_mate::commands::chat::run(terminal_settings(&cli.global), args)
        }
        Command::Bench(args) => {
            desktop_mate::commands::bench::run(terminal_settings(&cli.global), args)
        }
        Command::ProfileMemory(args) => {
            desktop_mate::commands::profile::run(terminal_settings(&cli.global), args)
        }
        Command::Model(args) => {
            init_stderr_logging();
            desktop_mate::commands::model::run(args)
        }
        Command::Monitor(args) => {
            init_stderr_logging();
            desktop_mate::commands::monitor::run(args)
        }
        Command::Motion(args) => desktop_mate::commands::motion::run(args),
        Command::Say(args) => desktop_mate::commands::say::run(args),
        Command::Transcribe(args) => desktop_mate::commands::transcribe::run(args),
        Command::Listen(args) => desktop_mate::commands::listen::run(args),
        Command::Voice(args) => desktop_mate::commands::voice::run(args),
        Command::Memory(args) => {
            desktop_mate::commands::memory::run(terminal_settings(&cli.global), args)
        }
        Command::Snapshot(args) => {
            if let Err(message) = desktop_mate::desktop::window_check() {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
            let loaded = config::load(cli.global.config.as_deref(), cli.global.overrides());
            exit_code(desktop_mate::commands::snapshot::run(loaded, args))
        }
        Command::VetTemplate => desktop_mate::llm::conversation::template_vet::child_main(),
        Command::Check { json } => {
            init_stderr_logging();
            let loaded = config::load(cli.global.config.as_deref(), cli.global.overrides());
            let report = CheckReport::build(&loaded, HardwareReport::probe());
            if json {
                match serde_json::to_string(&report) {
                    Ok(text) => println!("{text}"),
                    Err(err) => {
                        eprintln!("cannot write the report as JSON: {err}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.to_text());
            }
            match &loaded.error {
                None => ExitCode::SUCCESS,
                Some(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn exit_code(exit: AppExit) -> ExitCode {
    match exit {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    }
}

/// Settings for a terminal command, with its logs on stderr.
fn terminal_settings(global: &desktop_mate::cli::GlobalArgs) -> config::LoadedSettings {
    init_stderr_logging();
    config::load(global.config.as_deref(), global.overrides())
}

/// Logs of the terminal commands go to stderr, so stdout stays machine-readable.
fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,llama-cpp-2=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
