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
        let mut child = Command::new(&self.program)
            .args(["-q", "--ipa", "-v", espeak_voice, "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| VoiceError::Espeak(format!("{}: {err}", self.program.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sentence.as_bytes())
                .map_err(|err| VoiceError::Espeak(format!("writing to eSpeak NG: {err}")))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|err| VoiceError::Espeak(format!("eSpeak NG: {err}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(VoiceError::Espeak(format!(
                "eSpeak NG (voice {espeak_voice}) failed: {}",
                stderr.trim()
            )));
        }
        Ok(join_clauses(
            &String::from_utf8_lossy(&output.stdout),
            sentence,
        ))
    }
}

/// eSpeak prints one line per clause and drops the punctuation; Piper voices were trained with
/// it kept (it shapes the pauses and the melody): put commas between the clauses and the
/// sentence's final mark at the end.
fn join_clauses(ipa: &str, sentence: &str) -> String {
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
