//! The terminal commands besides `run`: each is one file with its clap arguments and `run`.

pub mod bench;
pub mod chat;
pub mod check;
pub mod listen;
pub mod listen_bench;
pub mod memory;
pub mod memory_bench;
pub mod model;
pub mod monitor;
pub mod motion;
pub mod profile;
pub mod say;
pub mod snapshot;
pub mod transcribe;
pub mod voice;
pub mod voice_bench;
