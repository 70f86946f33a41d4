//! All integration tests in one binary: each test crate links Bevy and llama.cpp, so one
//! binary per file would cost one slow link per file; one binary costs one.

mod app;
mod avatar;
mod backends;
mod cli;
/// The built-in mascot's generator (not part of the app), to check it reproduces the file.
#[path = "../../tools/default_avatar.rs"]
mod default_avatar_generator;
#[cfg(target_os = "linux")]
mod desktop;
mod diagnostics;
mod download;
#[cfg(unix)]
mod durability;
mod engine;
mod fuzz;
mod hostile;
mod hot_reload;
mod http_server;
mod listen;
mod llm_plugin;
mod memory;
mod motion;
/// The built-in motion clips' generator (not part of the app), to check it reproduces them.
#[path = "../../tools/motions.rs"]
mod motions_generator;
mod openai;
mod settings;
mod settings_edit;
mod snapshot;
mod support;
mod templates;
mod voice;
mod vrm1;
mod vrm_file;
#[cfg(target_os = "linux")]
mod wayland;
