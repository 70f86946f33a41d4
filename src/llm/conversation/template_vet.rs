//! A chat template from a downloaded model is rendered for the first time in a child process,
//! where a crash cannot take the mascot down.
//!
//! [`crate::llm::conversation::template`] bounds what our own helpers do, but minijinja itself can still be driven
//! into a stack overflow (a namespace that contains itself, printed or compared) or an
//! allocation failure (a list doubled in a loop): both abort the process, and `catch_unwind`
//! catches neither. So before a template is used, `desktop-mate vet-template` (hidden) renders
//! it on a few typical conversations, on the same stack as the real renders, watched by this
//! process: killed past [`VET_TIMEOUT`] or [`VET_MEMORY`]. The verdict is kept by hash in
//! `template-verdicts.txt` in the cache folder, so each template is tested once; a template
//! that later fails or exceeds its budget in a real render is added there too.
//!
//! What the test renders cannot see: a template that blows up only for some conversations (a
//! bomb behind an `if` on the messages). That remains possible, and is documented in
//! docs/hardening.md.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::llm::conversation::template::{ChatTemplate, Message, TemplateError};

/// The longest a test render may take (real templates: milliseconds).
pub const VET_TIMEOUT: Duration = Duration::from_secs(5);
/// The most memory the test process may use (real templates: a few MiB).
pub const VET_MEMORY: u64 = 512 << 20;
/// Verdicts kept (one line each).
const VERDICTS_KEPT: usize = 256;
/// The hidden subcommand the child runs.
pub const SUBCOMMAND: &str = "vet-template";

/// The executable that hosts the test renders (this program's own binary), set once by
/// `main`. Without it (the library's own tests, benchmarks) templates are not vetted.
static HOST: OnceLock<PathBuf> = OnceLock::new();

/// Makes `exe SUBCOMMAND` the test renderer.
pub fn set_host(exe: PathBuf) {
    let _ = HOST.set(exe);
}

/// What a template is, for the verdict and the child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateSource {
    pub source: String,
    pub bos: String,
    pub eos: String,
}

impl TemplateSource {
    /// The verdict's key: the template, its tokens and this build (a new minijinja may
    /// behave differently).
    fn key(&self) -> String {
        let mut hash = Sha256::new();
        for part in [&self.source, &self.bos, &self.eos] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        hash.update(env!("CARGO_PKG_VERSION"));
        hash.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Whether a template may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Usable,
    /// Why not, for the user.
    Refused(String),
}

/// Where verdicts are kept: `template-verdicts.txt` in the user cache folder.
fn verdicts_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "desktop-mate")
        .map(|d| d.cache_dir().join("template-verdicts.txt"))
}

fn read_verdicts(path: &Path) -> Vec<(String, Verdict)> {
    let Ok(text) = crate::config::read_text_file(path, crate::config::MAX_TEXT_FILE_BYTES) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(' ')?;
            let verdict = match rest.split_once(' ') {
                Some(("refused", why)) => Verdict::Refused(why.to_owned()),
                None if rest == "usable" => Verdict::Usable,
                _ => return None,
            };
            Some((key.to_owned(), verdict))
        })
        .collect()
}

fn remember(path: &Path, key: &str, verdict: &Verdict) {
    let mut kept: Vec<(String, Verdict)> = read_verdicts(path)
        .into_iter()
        .filter(|(k, _)| k != key)
        .collect();
    kept.push((key.to_owned(), verdict.clone()));
    let skip = kept.len().saturating_sub(VERDICTS_KEPT);
    let mut text = String::new();
    for (key, verdict) in &kept[skip..] {
        match verdict {
            Verdict::Usable => text.push_str(&format!("{key} usable\n")),
            Verdict::Refused(why) => {
                let why = why.replace(['\n', '\r'], " ");
                text.push_str(&format!("{key} refused {why}\n"));
            }
        }
    }
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| crate::config::write_atomic(path, &text));
    if let Err(err) = written {
        tracing::warn!(
            "cannot keep the template verdict in {}: {err}",
            path.display()
        );
    }
}

/// The verdict for `template`: remembered, or from test renders in a child process (when a
/// host is set), else [`Verdict::Usable`].
pub fn vet(template: &TemplateSource) -> Verdict {
    vet_with(
        template,
        HOST.get().map(PathBuf::as_path),
        verdicts_file().as_deref(),
    )
}

/// [`vet`] with the host and the verdicts file given.
pub fn vet_with(
    template: &TemplateSource,
    host: Option<&Path>,
    verdicts: Option<&Path>,
) -> Verdict {
    let key = template.key();
    if let Some(path) = verdicts
        && let Some((_, verdict)) = read_verdicts(path)
            .into_iter()
            .rev()
            .find(|(k, _)| *k == key)
    {
        return verdict;
    }
    let Some(host) = host else {
        return Verdict::Usable;
    };
    let verdict = match run_child(host, template) {
        Ok(verdict) => verdict,
        Err(err) => {
            // Our problem, not the template's: do not remember it.
            tracing::warn!("cannot test the chat template in a separate process: {err}");
            return Verdict::Usable;
        }
    };
    if let Some(path) = verdicts {
        remember(path, &key, &verdict);
    }
    verdict
}

/// Remembers that `template` failed in a real render.
pub fn refuse(template: &TemplateSource, why: &str) {
    if let Some(path) = verdicts_file() {
        remember(&path, &template.key(), &Verdict::Refused(why.to_owned()));
    }
}

/// Runs the test renders in `host SUBCOMMAND` and watches it.
fn run_child(host: &Path, template: &TemplateSource) -> std::io::Result<Verdict> {
    let mut command = Command::new(host);
    command
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt as _;
        // CREATE_NO_WINDOW: a console build would otherwise open a console window.
        command.creation_flags(0x0800_0000);
    }
    let mut child = command.spawn()?;
    let input = serde_json::to_vec(template).map_err(std::io::Error::other)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A child that dies at once closes the pipe: its status says why.
        let _ = stdin.write_all(&input);
    }
    let reader = read_pipe(child.stdout.take());
    let err_reader = read_pipe(child.stderr.take());
    let pid = sysinfo::Pid::from_u32(child.id());
    // Without process information (a sandbox), only the time limit applies.
    let mut system = sysinfo::System::new().ok();
    let start = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Ok(status);
        }
        if let Some(system) = system.as_mut() {
            system.refresh_processes_specifics(
                sysinfo::ProcessesToUpdate::Some(&[pid]),
                true,
                sysinfo::ProcessRefreshKind::nothing().with_memory(),
            );
            peak = peak.max(system.process(pid).map_or(0, sysinfo::Process::memory));
        }
        if peak > VET_MEMORY {
            let _ = child.kill();
            let _ = child.wait();
            break Err(format!("it used more than {} MiB", VET_MEMORY >> 20));
        }
        if start.elapsed() > VET_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break Err(format!("it ran past {} s", VET_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let status = match status {
        Ok(status) => status,
        Err(why) => {
            return Ok(Verdict::Refused(format!(
                "a test render was stopped: {why}"
            )));
        }
    };
    if let Some(line) = out.lines().find_map(|l| l.strip_prefix("verdict: ")) {
        return Ok(match line.strip_prefix("refused ") {
            Some(why) => Verdict::Refused(why.to_owned()),
            None => Verdict::Usable,
        });
    }
    let last = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    Ok(Verdict::Refused(format!(
        "a test render crashed ({status}{}{last})",
        if last.is_empty() { "" } else { ": " }
    )))
}

/// The first 64 KiB of a child's output pipe, read on a thread of its own (so a full pipe
/// never blocks the child while it is watched).
fn read_pipe(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(64 << 10).read_to_string(&mut text);
        }
        text
    })
}

/// The conversations a new template is tried on: the first message with and without a
/// persona, a longer conversation, and the persona alone (the warm-up).
fn probes() -> Vec<(Vec<Message>, bool)> {
    let long =
        "A longer message, with \"quotes\", 'apostrophes', émoji 😊 and a\nnew line. ".repeat(8);
    let mut conversation = vec![Message::new("system", "You are a helpful desktop mascot.")];
    for i in 0..6 {
        conversation.push(Message::new("user", format!("Question {i}: {long}")));
        conversation.push(Message::new(
            "assistant",
            format!("[joy] Answer {i}: {long}"),
        ));
    }
    conversation.push(Message::new("user", "And now?"));
    vec![
        (vec![Message::new("user", "Hi")], true),
        (
            vec![
                Message::new("system", "You are a helpful desktop mascot."),
                Message::new("user", "Hi"),
            ],
            true,
        ),
        (conversation, true),
        (
            vec![Message::new("system", "You are a helpful desktop mascot.")],
            false,
        ),
    ]
}

/// The verdict of the test renders, in this process (what the child runs).
pub fn test_renders(template: &TemplateSource) -> Verdict {
    let compiled = match ChatTemplate::new(&template.source, &template.bos, &template.eos) {
        Ok(compiled) => compiled,
        Err(err) => return Verdict::Refused(err.to_string()),
    };
    for (messages, generation) in probes() {
        match compiled.render(&messages, generation) {
            // Refusing a system message or a role order is the template's right.
            Ok(_) | Err(TemplateError::Raised(_)) => {}
            Err(err) => return Verdict::Refused(err.to_string()),
        }
    }
    Verdict::Usable
}

/// `desktop-mate vet-template`: reads a [`TemplateSource`] as JSON on stdin, prints
/// `verdict: usable` or `verdict: refused <why>`.
pub fn child_main() -> ExitCode {
    let mut input = String::new();
    if let Err(err) = std::io::stdin().take(64 << 20).read_to_string(&mut input) {
        eprintln!("error: cannot read the template: {err}");
        return ExitCode::from(2);
    }
    let template: TemplateSource = match serde_json::from_str(&input) {
        Ok(template) => template,
        Err(err) => {
            eprintln!("error: not a template description: {err}");
            return ExitCode::from(2);
        }
    };
    match test_renders(&template) {
        Verdict::Usable => println!("verdict: usable"),
        Verdict::Refused(why) => println!("verdict: refused {}", why.replace(['\n', '\r'], " ")),
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> TemplateSource {
        TemplateSource {
            source: text.to_owned(),
            bos: "<s>".to_owned(),
            eos: "</s>".to_owned(),
        }
    }

    #[test]
    fn verdicts_are_kept_by_hash_and_the_newest_wins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("v.txt");
        let a = source("{{ messages }}");
        let b = source("{{ bos_token }}");
        remember(
            &path,
            &a.key(),
            &Verdict::Refused("it crashed\nbadly".into()),
        );
        remember(&path, &b.key(), &Verdict::Usable);
        // No host: a remembered verdict is still used, an unknown template is usable.
        assert_eq!(
            vet_with(&a, None, Some(&path)),
            Verdict::Refused("it crashed badly".into())
        );
        assert_eq!(vet_with(&b, None, Some(&path)), Verdict::Usable);
        remember(&path, &a.key(), &Verdict::Usable);
        assert_eq!(vet_with(&a, None, Some(&path)), Verdict::Usable);
        assert_eq!(read_verdicts(&path).len(), 2);
        // Another build or other tokens: another key.
        assert_ne!(a.key(), source("{{ messages }}x").key());
        let mut other = a.clone();
        other.bos = "<bos>".into();
        assert_ne!(a.key(), other.key());
    }

    #[test]
    fn the_test_renders_refuse_budget_failures_and_accept_refusals() {
        assert_eq!(
            test_renders(&source("{{ messages[0].content }}")),
            Verdict::Usable
        );
        assert_eq!(
            test_renders(&source(
                "{% if messages[0].role == 'system' %}{{ raise_exception('no system') }}{% endif %}x"
            )),
            Verdict::Usable
        );
        let Verdict::Refused(why) = test_renders(&source("{{ '{:>999999999}'.format(1) }}")) else {
            panic!("a width of a billion is refused");
        };
        assert!(why.contains("width"), "{why}");
        let Verdict::Refused(why) = test_renders(&source("{% for %}")) else {
            panic!("a syntax error is refused");
        };
        assert!(why.contains("does not compile"), "{why}");
    }
}
