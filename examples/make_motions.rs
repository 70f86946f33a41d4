//! Writes the built-in motion clips to `assets/motions/<name>.vrma` (or into the folder given).
//!
//! `cargo run --example make_motions [DIR]`. The files are committed; the test
//! `builtin_motions_are_reproduced_by_the_generator` fails when this code and the files drift.

use std::path::PathBuf;
use std::process::ExitCode;

use desktop_mate::motion::builtin::MOTIONS_DIR;

#[path = "../tools/motions.rs"]
mod generator;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from(MOTIONS_DIR), PathBuf::from);
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, bytes) in generator::build() {
        let out = dir.join(format!("{name}.vrma"));
        if let Err(err) = std::fs::write(&out, &bytes) {
            eprintln!("cannot write {}: {err}", out.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {} ({} bytes)", out.display(), bytes.len());
    }
    ExitCode::SUCCESS
}
