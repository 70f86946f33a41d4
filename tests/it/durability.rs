//! Nothing lost to a crash: a real child process writes in a loop (history lines, settings
//! saves, warm-start states) and is killed with SIGKILL at a random moment, 200 times for each
//! kind. After each kill every write the child had reported as done must read back, and the
//! next start must be healthy (the files load, the next write works).
//!
//! The child is this test binary itself, running the ignored test `durability::child` with
//! `DESKTOP_MATE_DURABILITY` naming what to write; it prints `done N` after each write returns.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use desktop_mate::config::{self, Overrides, Settings};
use desktop_mate::llm::contract::ChatTurn;
use desktop_mate::llm::conversation::history::{
    HistoryEntry, append_history, load_history, load_history_tail,
};
use desktop_mate::llm::runtime::engine::LlmEngine;
use desktop_mate::llm::runtime::warm_file;

const TRIALS: usize = 200;
const KIND: &str = "DESKTOP_MATE_DURABILITY";
const DIR: &str = "DESKTOP_MATE_DURABILITY_DIR";

fn entry(n: usize) -> HistoryEntry {
    HistoryEntry {
        at: n as u64,
        turn: ChatTurn {
            user: format!("question {n} {}", "x".repeat(n % 700)),
            assistant: format!("answer {n} «é» {}", "y".repeat(n % 1900)),
            recalled: None,
        },
    }
}

fn persona_name(n: usize) -> String {
    format!("Mate {n} {}", "z".repeat(n % 60))
}

fn engine(dir: &Path) -> LlmEngine {
    LlmEngine::load(crate::support::cpu_settings(&dir.join("tiny.gguf"), 256))
        .expect("load the tiny model")
}

const WARM_TEXT: &str = "Be brief and kind, always, and remember the user's cat.";

/// The writer: loops until killed.
#[test]
#[ignore = "the child process of the kill -9 tests below, not a test of its own"]
fn child() {
    let (Ok(kind), Some(dir)) = (std::env::var(KIND), std::env::var_os(DIR)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let start: usize = std::env::var("DESKTOP_MATE_DURABILITY_FROM")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let done = |n: usize| println!("done {n}");
    match kind.as_str() {
        "history" => {
            println!("ready");
            for n in start..usize::MAX {
                append_history(&dir.join("history.jsonl"), &entry(n)).expect("append");
                done(n);
            }
        }
        "settings" => {
            let path = dir.join("mascot.ron");
            let mut file = config::load_with(Some(&path), None, Overrides::default()).file;
            println!("ready");
            for n in start..usize::MAX {
                let mut settings = file.on_disk.clone();
                settings.persona.name = persona_name(n);
                file.save_edit(&settings).expect("save");
                done(n);
            }
        }
        "kv" => {
            let mut engine = engine(&dir);
            engine.prefill(WARM_TEXT).expect("prefill");
            println!("ready");
            for n in start..usize::MAX {
                engine
                    .save_state(&dir.join("warm.state"))
                    .expect("save state");
                done(n);
            }
        }
        other => panic!("unknown kind {other}"),
    }
}

/// Starts the writer, kills it at a random moment once it is writing, and returns the last
/// write it reported done (`None`: killed before the first one returned).
fn kill_while_writing(kind: &str, dir: &Path, from: usize, seed: &mut u64) -> Option<usize> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["durability::child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(KIND, kind)
        .env(DIR, dir)
        .env("DESKTOP_MATE_DURABILITY_FROM", from.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // Wait for "ready" (the writer's own setup is not what is tested).
    // (libtest writes `test durability::child ... ` before the test's own output, on the same
    // line: the markers are matched at the end of a line.)
    for line in lines.by_ref() {
        if line.expect("line").ends_with("ready") {
            break;
        }
    }
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    std::thread::sleep(Duration::from_micros(*seed % 20_000));
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    lines
        .map_while(Result::ok)
        .filter_map(|l| l.rsplit_once("done ").and_then(|(_, n)| n.parse().ok()))
        .last()
}

#[cfg(unix)]
#[test]
fn kill_9_during_history_writes_loses_no_finished_turn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.jsonl");
    let (mut seed, mut next, start) = (0x2545_f491_4f6c_dd1d_u64, 0, Instant::now());
    for trial in 0..TRIALS {
        if let Some(last) = kill_while_writing("history", dir.path(), next, &mut seed) {
            next = last + 1;
        }
        let loaded = load_history_tail(&path, u64::MAX).expect("the history opens");
        let numbers: Vec<usize> = loaded.entries.iter().map(|e| e.at as usize).collect();
        // Every reported write is there (the whole file, not only what a start restores), in
        // order; the one in flight may be too, whole.
        assert!(
            numbers.len() >= next && numbers[..next] == (0..next).collect::<Vec<_>>()[..],
            "trial {trial}: {} entries for {next} written",
            numbers.len()
        );
        for e in &loaded.entries {
            assert_eq!(*e, entry(e.at as usize), "trial {trial}: a whole entry");
        }
        next = numbers.len();
    }
    assert!(
        next >= TRIALS / 4,
        "the writer wrote ({next} turns in {TRIALS} runs)"
    );
    // The next start appends and reads back.
    append_history(&path, &entry(next)).expect("append after the kills");
    let all = load_history_tail(&path, u64::MAX).expect("load");
    assert_eq!(all.entries.len(), next + 1);
    assert!(load_history(&path).expect("a start").entries.len() <= next + 1);
    eprintln!(
        "history: {TRIALS} kills, {next} turns kept, {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

#[cfg(unix)]
#[test]
fn kill_9_during_settings_saves_leaves_a_whole_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    std::fs::write(&path, "// mine\n(persona: (name: \"Mate\"))\n").expect("write");
    let (mut seed, mut next) = (0x9e37_79b9_7f4a_7c15_u64, 0);
    for trial in 0..TRIALS {
        if let Some(last) = kill_while_writing("settings", dir.path(), next, &mut seed) {
            next = last + 1;
        }
        let settings: Settings = config::read_settings(&path)
            .unwrap_or_else(|e| panic!("trial {trial}: the file is whole: {e}"));
        // The last save reported done, or the one in flight.
        let name = settings.persona.name;
        let ok = next == 0 && name == "Mate"
            || next > 0 && name == persona_name(next - 1)
            || name == persona_name(next);
        assert!(ok, "trial {trial}: {name:?} after {next} saves");
        if name == persona_name(next) {
            next += 1;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("// mine\n"),
            "trial {trial}: comments kept"
        );
    }
    assert!(
        next >= TRIALS / 4,
        "the writer saved ({next} saves in {TRIALS} runs)"
    );
}

#[cfg(unix)]
#[test]
fn kill_9_during_warm_state_saves_never_loads_a_damaged_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    crate::support::write_tiny_llama(&dir.path().join("tiny.gguf"), 5);
    let state = dir.path().join("warm.state");
    let mut check = engine(dir.path());
    let (mut seed, mut loaded, mut refused) = (0x1234_5678_9abc_def1_u64, 0, 0);
    for _ in 0..TRIALS {
        kill_while_writing("kv", dir.path(), 0, &mut seed);
        // The next start: a sealed state loads, anything else is refused and removed.
        let verified = warm_file::verify(&state, 1 << 30).is_ok();
        let restored = check.load_state(&state, WARM_TEXT);
        assert_eq!(restored, verified, "only a verified state is loaded");
        if restored {
            loaded += 1;
            assert!(check.cached_tokens() > 5);
        } else {
            refused += 1;
            assert!(
                !warm_file::seal_path(&state).exists(),
                "a refused state is removed"
            );
        }
    }
    eprintln!("warm states: {loaded} loaded, {refused} refused after {TRIALS} kills");
    // A seal and the data it names exist at every point of a save: only a kill before the
    // very first save returned leaves nothing to load.
    assert!(refused <= 1, "{refused} of {TRIALS} kills left no state");
}
