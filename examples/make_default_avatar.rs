//! Writes the built-in mascot to `assets/avatars/default.vrm` (or the path given).
//!
//! `cargo run --example make_default_avatar [OUT.vrm]`. The result is committed; the test
//! `default_avatar_file_is_reproduced_by_the_generator` fails when this code and the file drift.

use std::path::PathBuf;
use std::process::ExitCode;

use desktop_mate::avatar::default_avatar::DEFAULT_AVATAR_PATH;

#[path = "../tools/default_avatar.rs"]
mod generator;

use generator::build;

fn main() -> ExitCode {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from(DEFAULT_AVATAR_PATH), PathBuf::from);
    let bytes = build();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(err) = std::fs::create_dir_all(dir)
    {
        eprintln!("cannot create {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    match std::fs::write(&out, &bytes) {
        Ok(()) => {
            println!("wrote {} ({} bytes)", out.display(), bytes.len());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot write {}: {err}", out.display());
            ExitCode::FAILURE
        }
    }
}
