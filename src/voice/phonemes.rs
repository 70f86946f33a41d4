//! Text to phonemes for Piper voices: eSpeak NG, run as a separate program.
//!
//! sherpa-onnx 2.0 no longer carries espeak-ng: the phonemes come in as IPA code points. eSpeak
//! NG is GPL-3.0; running its own program (`espeak-ng -q --ipa`, text on stdin) keeps it a
//! separate work, so desktop-mate's licence is unchanged and nothing GPL is linked
//! (docs/voice.md "Licences"). It is the same phonemizer Piper voices were trained on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::VoiceError;

/// Longest sentence handed to eSpeak at once (the splitter's cuts are far shorter).
const MAX_SENTENCE_BYTES: usize = 4096;
/// eSpeak NG takes about 30 ms a sentence (its first start, cold, longer: a loaded 2-core CI
/// machine once needed over 5 s); one that runs away is killed after this.
const ESPEAK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs of dots ("...", "..", "…") become one.
fn single_dots(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let dot = matches!(c, '.' | '…');
        if dot && out.ends_with('.') {
            continue;
        }
        out.push(if dot { '.' } else { c });
    }
    out
}

/// Waits for eSpeak NG to end (killed after `limit`) and returns what it printed. Its output
/// for one sentence is a few hundred bytes: it fits in the pipe until it is read.
fn wait_bounded(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Result<String, VoiceError> {
    use std::io::Read as _;
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(VoiceError::Espeak(format!(
                    "no answer within {} s",
                    limit.as_secs()
                )));
            }
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(VoiceError::Espeak(err.to_string()));
            }
        }
    };
    let mut stdout = Vec::new();
    if let Some(pipe) = child.stdout.take() {
        let _ = pipe.take(1 << 20).read_to_end(&mut stdout);
    }
    if !status.success() {
        return Err(VoiceError::Espeak(format!("eSpeak NG failed ({status})")));
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// The eSpeak NG program.
#[derive(Debug, Clone)]
pub struct Espeak {
    program: PathBuf,
}

impl Espeak {
    /// `configured` (the `voice.espeak_ng` setting) if set, else `espeak-ng` on the PATH, else
    /// (Windows) where eSpeak NG's installer puts it.
    pub fn locate(configured: Option<&Path>) -> Result<Self, VoiceError> {
        if let Some(program) = configured {
            return if program.is_file() {
                Ok(Self {
                    program: program.to_owned(),
                })
            } else {
                Err(VoiceError::NoEspeak(format!(
                    "{} does not exist",
                    program.display()
                )))
            };
        }
        let name = if cfg!(windows) {
            "espeak-ng.exe"
        } else {
            "espeak-ng"
        };
        let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(name))
                    .collect()
            })
            .unwrap_or_default();
        if cfg!(windows) {
            for root in ["ProgramFiles", "ProgramFiles(x86)"] {
                if let Some(dir) = std::env::var_os(root) {
                    candidates.push(PathBuf::from(dir).join("eSpeak NG").join(name));
                }
            }
        }
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
        {
            candidates.push(exe_dir.join("espeak-ng").join(name));
        }
        candidates
            .into_iter()
            .find(|candidate| candidate.is_file())
            .map(|program| Self { program })
            .ok_or_else(|| VoiceError::NoEspeak(format!("{name} is not on the PATH")))
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The IPA phonemes of one sentence as Piper voices expect them: clauses joined by ", ",
    /// ending with the sentence's own mark (`.` when it has none).
    pub fn phonemes(&self, espeak_voice: &str, sentence: &str) -> Result<String, VoiceError> {
        let sentence: String = sentence.chars().filter(|c| !c.is_control()).collect();
        let sentence = truncate(&sentence, MAX_SENTENCE_BYTES);
        if espeak_voice.is_empty()
            || !espeak_voice
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
        {
            return Err(VoiceError::BadVoice(format!(
                "eSpeak voice {espeak_voice:?} is not a voice name"
            )));
        }
        let mut command = Command::new(&self.program);
        command
            .args(["-q", "--ipa", "-v", espeak_voice, "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        #[cfg(windows)]
        {
            // CREATE_NO_WINDOW: the windowed build would flash a console per sentence.
            use std::os::windows::process::CommandExt as _;
            command.creation_flags(0x0800_0000);
        }
        let mut child = command
            .spawn()
            .map_err(|err| VoiceError::Espeak(format!("{}: {err}", self.program.display())))?;
        // eSpeak NG 1.51 (Debian 12, Ubuntu 24.04) drops the last byte of its input and can
        // misbehave on text ending in ".."; a line end and single dots avoid both.
        let input = format!("{}\n", single_dots(sentence));
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(input.as_bytes()));
        let output = wait_bounded(&mut child, ESPEAK_TIMEOUT);
        if let Some(Err(err)) = written {
            return Err(VoiceError::Espeak(format!("writing to eSpeak NG: {err}")));
        }
        let stdout = output?;
        Ok(join_clauses(&stdout, sentence))
    }
}

/// eSpeak prints one line per clause and drops the punctuation; Piper voices were trained with
/// it kept (it shapes the pauses and the melody): put commas between the clauses and the
/// sentence's final mark at the end.
fn join_clauses(ipa: &str, sentence: &str) -> String {
    let ipa = strip_language_switches(ipa);
    let clauses: Vec<&str> = ipa
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let mut out = clauses.join(", ");
    if out.is_empty() {
        return out;
    }
    let end = sentence
        .trim_end()
        .trim_end_matches(['"', '\'', '”', '’', ')', '»'])
        .chars()
        .last()
        .filter(|c| matches!(c, '.' | '!' | '?' | ','))
        .unwrap_or('.');
    out.push(end);
    out
}

/// eSpeak marks a word read in another language's rules: `(en)wˈiːkˈɛnd(fr)`. Piper's
/// phonemizer removes the markers; a voice would otherwise say the brackets and letters.
fn strip_language_switches(ipa: &str) -> String {
    let mut out = String::with_capacity(ipa.len());
    let mut rest = ipa;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close)
                if close > 0
                    && after[..close]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-') =>
            {
                rest = &after[close + 1..];
            }
            _ => {
                out.push('(');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_are_joined_with_commas_and_end_with_the_sentences_mark() {
        assert_eq!(
            join_clauses("həlˈoʊ ðˈɛɹ\nsmˈɪθ\n", "Hello there, Smith!"),
            "həlˈoʊ ðˈɛɹ, smˈɪθ!"
        );
        assert_eq!(join_clauses("ɪz ˈɪt\n", "Is it?\")"), "ɪz ˈɪt?");
        assert_eq!(join_clauses("wˈʌn\n", "one"), "wˈʌn.");
        assert_eq!(join_clauses("\n", "🙂"), "");
        assert_eq!(
            join_clauses("lə (en)wˈiːkˈɛnd(fr)\n", "Le week-end."),
            "lə wˈiːkˈɛnd."
        );
        assert_eq!(single_dots("Hmm... well.. ok…"), "Hmm. well. ok.");
    }

    #[test]
    fn voice_names_cannot_smuggle_arguments() {
        let espeak = Espeak {
            program: PathBuf::from("/nonexistent/espeak-ng"),
        };
        for voice in ["", "--path=/tmp", "en us", "en;rm"] {
            assert!(
                matches!(espeak.phonemes(voice, "Hi."), Err(VoiceError::BadVoice(_))),
                "{voice}"
            );
        }
    }
}
