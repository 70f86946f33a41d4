//! The voice (src/voice/): a real Piper voice (en_US-joe-medium, scripts/fetch-voice.sh) through
//! sherpa-onnx with eSpeak NG's phonemes, checked by a real recognizer (Whisper base through
//! sherpa-onnx, scripts/fetch-recognizer.sh), and the real binary's `say`.

use std::path::{Path, PathBuf};

use desktop_mate::voice::piper::{self, PiperVoice};
use desktop_mate::voice::recognize::Recognizer;
use desktop_mate::voice::text::SentenceSplitter;
use desktop_mate::voice::tts::{Audio, SpeechBackend};

use crate::cli::{desktop_mate, desktop_mate_with_env};
use crate::support::{espeak, recognizer_model, test_voice};

/// The test voice prepared once per test run (a copy of the model with sherpa-onnx's metadata).
pub(crate) fn prepared_voice(dir: &Path) -> Option<PathBuf> {
    let model = test_voice()?;
    let folder = dir.join("joe");
    piper::prepare(
        &model,
        Path::new(&format!("{}.json", model.display())),
        &folder,
    )
    .unwrap_or_else(|err| panic!("preparing {}: {err}", model.display()));
    Some(folder)
}

/// Lowercase words without punctuation; small numbers as digits on both sides (the recognizer
/// writes "3" or "three" as it likes), "Mr." as "mister".
pub(crate) fn words(text: &str) -> Vec<String> {
    const NUMBERS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    normalized_words(text, &NUMBERS)
        .into_iter()
        // Spellings a reader does not hear (as Whisper's English normalizer does).
        .map(|word| match word.as_str() {
            "mr" => "mister".to_owned(),
            "mrs" => "missus".to_owned(),
            _ => word,
        })
        .collect()
}

/// The same for French: "trois" and "3" are one word, "dix-sept" is "10 7" on both sides.
pub(crate) fn french_words(text: &str) -> Vec<String> {
    const NUMBERS: [&str; 17] = [
        "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
        "onze", "douze", "treize", "quatorze", "quinze", "seize",
    ];
    normalized_words(text, &NUMBERS)
}

/// Lowercase words, hyphens and dashes as spaces, other punctuation dropped (apostrophes kept:
/// "l'heure" is one word), `numbers[n]` written as `n`.
fn normalized_words(text: &str, numbers: &[&str]) -> Vec<String> {
    text.to_lowercase()
        .replace(['-', '—'], " ")
        .replace('’', "'")
        .split_whitespace()
        .map(|word| {
            let word: String = word
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect();
            match numbers.iter().position(|n| *n == word) {
                Some(n) => n.to_string(),
                None => word,
            }
        })
        .filter(|word| !word.is_empty())
        .collect()
}

/// Word-level edit distance.
pub(crate) fn edits(reference: &[String], heard: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=heard.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, h) in heard.iter().enumerate() {
            let substitution = previous + usize::from(r != h);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[heard.len()]
}

#[test]
fn word_error_rate_measures_edits_per_reference_word() {
    let reference = words("The cat sat on the mat.");
    assert_eq!(edits(&reference, &words("the cat sat on the mat")), 0);
    assert_eq!(edits(&reference, &words("a cat sat on mat")), 2);
    assert_eq!(words("Three-two, Twenty!"), ["3", "2", "20"]);
    assert_eq!(words("Mr. Dashwood"), ["mister", "dashwood"]);
    assert_eq!(
        french_words("Appuyez sur l’étoile, puis dix-sept."),
        ["appuyez", "sur", "l'étoile", "puis", "10", "7"]
    );
}

pub(crate) const ENGLISH: [&str; 10] = [
    "The weather is lovely today.",
    "My name is Sarah and I live in London.",
    "Could you open the window, please?",
    "I have three cats and two dogs.",
    "The meeting starts at ten o'clock tomorrow morning.",
    "Peter bought a new bicycle last week.",
    "What time does the train leave?",
    "She has been reading that book for two hours.",
    "Please remember to buy milk and bread.",
    "The river flows slowly through the green valley.",
];

#[test]
fn spoken_sentences_are_understood_by_a_recognizer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (Some(folder), Some(recognizer), Some(espeak)) =
        (prepared_voice(dir.path()), recognizer_model(), espeak())
    else {
        return;
    };
    let voice = PiperVoice::open(&folder, espeak, 1).expect("the test voice loads");
    let recognizer = Recognizer::whisper(&recognizer, "base", "en", 2).expect("Whisper loads");
    let (mut errors, mut total) = (0, 0);
    for sentence in ENGLISH {
        let audio = voice.synthesize(sentence, 1.0).expect("synthesis");
        assert_eq!(audio.sample_rate, 22_050);
        assert!(
            audio.seconds() > 0.8,
            "{sentence:?}: only {:.2} s",
            audio.seconds()
        );
        let heard = recognizer.transcribe(&audio).expect("transcription");
        let (reference, got) = (words(sentence), words(&heard));
        let wrong = edits(&reference, &got);
        println!("{wrong} edit(s): {sentence:?} -> {heard:?}");
        errors += wrong;
        total += reference.len();
    }
    let wer = errors as f64 / total as f64;
    println!("word error rate: {errors}/{total} = {:.1} %", wer * 100.0);
    assert!(
        wer <= 0.15,
        "word error rate {:.1} % is above 15 %",
        wer * 100.0
    );
}

#[test]
fn say_never_speaks_tags_markdown_or_emoji_and_writes_a_wav() {
    let home = tempfile::tempdir().expect("temp dir");
    let (Some(model), Some(recognizer), Some(_)) = (test_voice(), recognizer_model(), espeak())
    else {
        return;
    };
    let out = home.path().join("said.wav");
    let text = "[joy] **Hello** there 🎉! Read [the manual](https://example.com/manual) now.\n```\nrm -rf /\n```";
    let output = desktop_mate(
        &[
            "say",
            text,
            "--voice",
            model.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--json",
        ],
        home.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "say failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    let spoken: Vec<&str> = report["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .filter_map(|sentence| sentence["text"].as_str())
        .collect();
    assert_eq!(spoken, ["Hello there!", "Read the manual now."]);

    let audio = Audio::read_wav(&out).expect("a WAV file");
    assert_eq!(audio.sample_rate, 22_050);
    let expected = report["seconds"].as_f64().expect("seconds");
    assert!(
        (audio.seconds() - expected).abs() < 0.01,
        "{} vs {expected}",
        audio.seconds()
    );
    let recognizer = Recognizer::whisper(&recognizer, "base", "en", 2).expect("Whisper loads");
    let heard = words(&recognizer.transcribe(&audio).expect("transcription"));
    println!("heard: {heard:?}");
    for never in [
        "joy", "asterisk", "star", "https", "example", "com", "rm", "party", "popper",
    ] {
        assert!(
            !heard.iter().any(|word| word == never),
            "{never:?} was spoken: {heard:?}"
        );
    }
    for said in ["hello", "manual"] {
        assert!(
            heard.iter().any(|word| word == said),
            "{said:?} was not heard: {heard:?}"
        );
    }
}

/// `say "Hello." --voice MODEL --out OUT` in `home`: (exit code, stderr).
fn say_hello(home: &Path, model: &Path, out: &Path) -> (Option<i32>, String) {
    let output = desktop_mate(
        &[
            "say",
            "Hello.",
            "--voice",
            model.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
        ],
        home,
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_broken_voice_is_refused_with_the_reason_and_nothing_is_written() {
    let home = tempfile::tempdir().expect("temp dir");
    if espeak().is_none() {
        return;
    }
    let model = home.path().join("broken.onnx");
    std::fs::write(&model, b"\x08\x07not really an onnx model").expect("write");
    std::fs::write(
        home.path().join("broken.onnx.json"),
        r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en-us"},"phoneme_id_map":{"a":[1]}}"#,
    )
    .expect("write");
    let out = home.path().join("out.wav");
    let (code, stderr) = say_hello(home.path(), &model, &out);
    assert_ne!(code, Some(0), "a broken voice spoke: {stderr}");
    assert!(
        stderr.contains("could not load the voice model"),
        "{stderr}"
    );
    assert!(
        !out.exists(),
        "a WAV was written for a voice that cannot speak"
    );

    std::fs::write(home.path().join("broken.onnx.json"), "{").expect("write");
    let (code, stderr) = say_hello(home.path(), &model, &out);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("broken.onnx.json"), "{stderr}");
}

#[test]
fn a_streamed_reply_is_cut_into_the_sentences_the_voice_speaks() {
    // The reply as Gemma streams it: pieces that split words, a tag already removed by the chat.
    let pieces = [
        "Sure",
        "! Dr",
        ". Smith",
        " is 4",
        "2 years old",
        ". Is",
        " that",
        " ok",
        "?",
    ];
    let mut splitter = SentenceSplitter::default();
    let mut ready_after = Vec::new();
    for (n, piece) in pieces.iter().enumerate() {
        for sentence in splitter.push(piece) {
            ready_after.push((n, sentence));
        }
    }
    for sentence in splitter.finish() {
        ready_after.push((pieces.len(), sentence));
    }
    assert_eq!(
        ready_after,
        [
            (1, "Sure!".to_owned()),
            (5, "Dr. Smith is 42 years old.".to_owned()),
            (9, "Is that ok?".to_owned()),
        ]
    );
}

/// A server with rhasspy/piper-voices' layout holding `model` (the test voice, byte-identical to
/// the catalogue's en_US-joe-medium) with one byte changed when `tamper`.
fn voice_server(model: &Path, tamper: bool) -> crate::http_server::Server {
    let mut onnx = std::fs::read(model).expect("read the test voice");
    if tamper {
        onnx[1000] ^= 0xff;
    }
    let json = std::fs::read(format!("{}.json", model.display())).expect("read its config");
    crate::http_server::serve_files(vec![
        ("/en/en_US/joe/medium/en_US-joe-medium.onnx".into(), onnx),
        (
            "/en/en_US/joe/medium/en_US-joe-medium.onnx.json".into(),
            json,
        ),
    ])
}

#[test]
fn a_catalogue_voice_is_downloaded_checked_prepared_and_spoken_with() {
    let home = tempfile::tempdir().expect("temp dir");
    let (Some(model), Some(_)) = (test_voice(), espeak()) else {
        return;
    };
    let voices = home.path().join("voices");
    let voices_arg = voices.to_str().expect("utf8");

    // A file that is not the catalogue's: refused, nothing installed.
    let server = voice_server(&model, true);
    let output = desktop_mate_with_env(
        &["voice", "pull", "en_US-joe-medium", "--voices", voices_arg],
        home.path(),
        &[("DESKTOP_MATE_VOICE_BASE_URL", &server.url(""))],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.to_lowercase().contains("sha"), "{stderr}");
    assert!(!voices.join("en_US-joe-medium").exists());
    drop(server);

    let server = voice_server(&model, false);
    let output = desktop_mate_with_env(
        &["voice", "pull", "en_US-joe-medium", "--voices", voices_arg],
        home.path(),
        &[("DESKTOP_MATE_VOICE_BASE_URL", &server.url(""))],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let folder = voices.join("en_US-joe-medium");
    for file in ["model.onnx", "tokens.txt", "voice.json"] {
        assert!(folder.join(file).is_file(), "{file} missing: {stderr}");
    }

    let output = desktop_mate_with_env(
        &["voice", "list", "--json", "--voices", voices_arg],
        home.path(),
        &[],
    );
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let installed: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter(|voice| voice["installed"] == true)
        .filter_map(|voice| voice["id"].as_str())
        .collect();
    assert_eq!(installed, ["en_US-joe-medium"]);

    let out = home.path().join("hello.wav");
    let output = desktop_mate_with_env(
        &[
            "say",
            "Hello there.",
            "--voice",
            "en_US-joe-medium",
            "--out",
            out.to_str().expect("utf8"),
        ],
        home.path(),
        &[("DESKTOP_MATE_VOICES", voices_arg)],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let audio = Audio::read_wav(&out).expect("a WAV file");
    assert!(audio.seconds() > 0.5, "{} s", audio.seconds());
}

/// A private PulseAudio server with one null sink (`mascot`), as a desktop has a sound server;
/// stopped when dropped.
pub(crate) struct SoundServer {
    daemon: std::process::Child,
    dir: tempfile::TempDir,
}

impl SoundServer {
    pub(crate) fn start() -> Option<Self> {
        for program in ["pulseaudio", "parecord", "pactl"] {
            if std::process::Command::new(program)
                .arg("--version")
                .output()
                .is_err()
            {
                crate::support::missing(
                    "sound-server",
                    &format!("{program} (scripts/setup.sh --test)"),
                );
                return None;
            }
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = format!(
            "module-native-protocol-unix socket={}/native auth-anonymous=1",
            dir.path().display()
        );
        let daemon = std::process::Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
            ])
            .args([
                "-L",
                "module-null-sink sink_name=mascot rate=16000 channels=1",
                "-L",
                &socket,
            ])
            .env("XDG_RUNTIME_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pulseaudio");
        let server = Self { daemon, dir };
        let ready = crate::support::wait_for(std::time::Duration::from_secs(10), || {
            server
                .command("pactl")
                .args(["set-default-sink", "mascot"])
                .output()
                .is_ok_and(|out| out.status.success())
        });
        assert!(ready, "the sound server did not start");
        Some(server)
    }

    pub(crate) fn env(&self) -> [(&'static str, String); 2] {
        [
            (
                "PULSE_SERVER",
                format!("unix:{}/native", self.dir.path().display()),
            ),
            ("XDG_RUNTIME_DIR", self.dir.path().display().to_string()),
        ]
    }

    /// Runs `desktop-mate ARGS` (in `home`, on this server) while `parecord` records the sink's
    /// monitor; what the binary did and the recording as 16 kHz mono samples in [-1, 1].
    fn record(&self, home: &Path, args: &[&str]) -> (std::process::Output, Vec<f32>) {
        self.record_while(home, |env| desktop_mate_with_env(args, home, env))
    }

    /// Runs `run` (given this server's environment) while `parecord` records the sink's monitor.
    fn record_while(
        &self,
        home: &Path,
        run: impl FnOnce(&[(&str, &str)]) -> std::process::Output,
    ) -> (std::process::Output, Vec<f32>) {
        let recording = home.join("monitor.raw");
        let mut recorder = self
            .command("parecord")
            .args(["--raw", "--format=s16le", "--rate=16000", "--channels=1"])
            .arg("--device=mascot.monitor")
            .arg(&recording)
            .spawn()
            .expect("start parecord");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let env = self.env();
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        let output = run(&env);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = recorder.kill();
        let _ = recorder.wait();
        let bytes = std::fs::read(&recording).expect("the recording");
        let (pairs, _) = bytes.as_chunks::<2>();
        let samples = pairs
            .iter()
            .map(|pair| f32::from(i16::from_le_bytes(*pair)) / 32768.0)
            .collect();
        (output, samples)
    }

    /// A second null sink, "room", whose monitor becomes the default microphone: what is
    /// played into it is what the mascot hears (the mascot's own voice stays on "mascot").
    pub(crate) fn add_room(&self) {
        for args in [
            &[
                "load-module",
                "module-null-sink",
                "sink_name=room",
                "rate=16000",
                "channels=1",
            ][..],
            &["set-default-source", "room.monitor"][..],
            &["set-default-sink", "mascot"][..],
        ] {
            let status = self.command("pactl").args(args).status().expect("pactl");
            assert!(status.success(), "pactl {args:?}");
        }
    }

    pub(crate) fn command(&self, program: &str) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command.envs(self.env());
        command
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

#[test]
fn the_speech_really_plays_through_a_sound_server() {
    let home = tempfile::tempdir().expect("temp dir");
    let (Some(model), Some(_)) = (test_voice(), espeak()) else {
        return;
    };
    let Some(server) = SoundServer::start() else {
        return;
    };
    // What the sink plays, as 16 kHz mono 16-bit samples.
    let (output, samples) = server.record(
        home.path(),
        &[
            "say",
            "Hello there, this is the mascot speaking through a real sound server.",
            "--voice",
            model.to_str().expect("utf8"),
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "say failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    let spoken = report["seconds"].as_f64().expect("seconds");

    let heard = speech_seconds(&samples);
    println!(
        "recorded {:.2} s, speech in {heard:.2} s of {spoken:.2} s synthesized",
        samples.len() as f64 / 16_000.0
    );
    assert!(
        heard >= 0.7 * spoken,
        "only {heard:.2} s of the {spoken:.2} s spoken reached the sound server"
    );
    assert!(
        heard <= spoken + 0.5,
        "{heard:.2} s of sound for {spoken:.2} s of speech"
    );
}

#[test]
fn no_sound_device_is_one_clear_error() {
    let home = tempfile::tempdir().expect("temp dir");
    let (Some(model), Some(_)) = (test_voice(), espeak()) else {
        return;
    };
    // No sound server and (on this machine) no sound card: ALSA has nowhere to play.
    let output = desktop_mate_with_env(
        &["say", "Hello.", "--voice", model.to_str().expect("utf8")],
        home.path(),
        &[
            ("PULSE_SERVER", "unix:/nonexistent/native"),
            ("XDG_RUNTIME_DIR", "/nonexistent"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    if std::path::Path::new("/proc/asound/cards").exists()
        && std::fs::read_to_string("/proc/asound/cards")
            .is_ok_and(|cards| !cards.contains("no soundcards"))
    {
        eprintln!("skipped: this machine has a sound card");
        return;
    }
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no sound output"), "{stderr}");
}

#[test]
fn stopping_silences_the_sound_within_100_ms() {
    let home = tempfile::tempdir().expect("temp dir");
    let (Some(model), Some(_)) = (test_voice(), espeak()) else {
        return;
    };
    let Some(server) = SoundServer::start() else {
        return;
    };
    // About 6 s of speech, stopped after 1.5 s.
    let text = "This sentence is long enough to still be playing when the stop comes, and it goes on for a good while after that.";
    let (output, samples) = server.record(
        home.path(),
        &[
            "say",
            text,
            "--voice",
            model.to_str().expect("utf8"),
            "--stop-after-ms",
            "1500",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let played_ms = sounding_ms(&samples);
    println!("sound for {played_ms} ms, stopped 1500 ms after it started");
    assert!(
        played_ms >= 1200,
        "the speech stopped early: {played_ms} ms"
    );
    assert!(
        played_ms <= 1600,
        "still sounding {} ms after the stop",
        played_ms - 1500
    );
}

/// Seconds of a 16 kHz recording in 20 ms windows above silence (-60 dBFS: the null sink's
/// silence is exact zeros; a voice's pauses between words are quiet, not silent).
fn speech_seconds(samples: &[f32]) -> f64 {
    let loud = samples
        .chunks(320)
        .filter(|window| {
            (window.iter().map(|s| s * s).sum::<f32>() / window.len() as f32).sqrt() > 0.001
        })
        .count();
    loud as f64 * 0.02
}

/// Milliseconds from the first to the last 10 ms window of a 16 kHz recording with any sound.
fn sounding_ms(samples: &[f32]) -> usize {
    let sounding: Vec<usize> = samples
        .chunks(160)
        .enumerate()
        .filter(|(_, window)| window.iter().any(|s| s.abs() > 0.0005))
        .map(|(n, _)| n)
        .collect();
    let (Some(first), Some(last)) = (sounding.first(), sounding.last()) else {
        panic!("nothing reached the sound server");
    };
    (last - first + 1) * 10
}

const CHILD_MODE: &str = "DESKTOP_MATE_TEST_VOICE_APP";
const CHILD_DIR: &str = "DESKTOP_MATE_TEST_VOICE_DIR";
/// A recording the barge-in child plays into the room while the mascot speaks.
const CHILD_WAV: &str = "DESKTOP_MATE_TEST_VOICE_WAV";

/// Gemma 3 270M is a base model: with the tag grammar it ends its chat replies after the tag,
/// without it and with this persona it answers in sentences.
const SPEAKING_SETTINGS: &str = r#"(
    llm: (model_path: Some("MODEL"), n_ctx: 1024, n_threads: 2,
          sampling: (temperature: 0.7, seed: Some(2), max_tokens: 60)),
    persona: (name: "Mate", system_prompt: "Mate is a friendly robot who loves to talk about the sea. Mate always answers with three full sentences."),
    chat: (tag_grammar: false, warm_start: false, history_file: Some("DIR/history.jsonl")),
    memory: (enabled: false),
    voice: (enabled: true, voice: "VOICE"),
)"#;

/// A sound server and a folder with the mascot's settings (Gemma, the test voice on).
fn mascot_setup() -> Option<(SoundServer, tempfile::TempDir)> {
    let (Some(gemma), Some(_), Some(_)) = (crate::support::gemma_model(), test_voice(), espeak())
    else {
        return None;
    };
    let server = SoundServer::start()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let voice = prepared_voice(dir.path())?;
    let settings = SPEAKING_SETTINGS
        .replace("MODEL", &crate::support::ron_path(&gemma))
        .replace("DIR", &crate::support::ron_path(dir.path()))
        .replace("VOICE", &crate::support::ron_path(&voice));
    std::fs::write(dir.path().join("mascot.ron"), settings).expect("settings");
    Some((server, dir))
}

/// The mascot (every plugin, headless) in a child process on the sound server: what it did
/// and the recording.
fn run_mascot(
    server: &SoundServer,
    dir: &Path,
    mode: &str,
    extra: &[(&str, &str)],
) -> (std::process::Output, Vec<f32>) {
    server.record_while(dir, |env| {
        std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["voice::mascot_child", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_MODE, mode)
            .env(CHILD_DIR, dir)
            .env("HOME", dir)
            .envs(env.iter().copied())
            .envs(extra.iter().copied())
            .output()
            .expect("run the mascot")
    })
}

/// The child's report: one JSON object.
pub(crate) fn report_of(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the mascot failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // libtest writes `test voice::mascot_child ... ` before the report, on the same line.
    let report = stdout
        .lines()
        .filter(|line| line.contains("\"mode\":"))
        .find_map(|line| line.find('{').map(|at| line[at..].to_owned()))
        .unwrap_or_else(|| panic!("no report in {stdout}"));
    serde_json::from_str(&report).expect("a JSON report")
}

/// The mascot replying with its voice on, in `mode`: its report and the recording.
fn mascot_speaking(mode: &str) -> Option<(serde_json::Value, Vec<f32>)> {
    let (server, dir) = mascot_setup()?;
    let (output, samples) = run_mascot(&server, dir.path(), mode, &[]);
    Some((report_of(&output), samples))
}

#[test]
fn a_voice_that_crashes_the_app_while_loading_is_skipped_at_the_next_start() {
    use desktop_mate::config::{CRASH_TEST_VARIABLE, GUARD_FILE_NAME};
    let Some((server, dir)) = mascot_setup() else {
        return;
    };
    // As a voice model that kills sherpa-onnx would: the process ends while loading it.
    let (crashed, _) = run_mascot(
        &server,
        dir.path(),
        "crash",
        &[(CRASH_TEST_VARIABLE, "voice")],
    );
    assert!(!crashed.status.success(), "the mascot was meant to abort");
    let guard = std::fs::read_to_string(dir.path().join(GUARD_FILE_NAME)).expect("loading.ron");
    assert!(guard.contains("Voice") && guard.contains("joe"), "{guard}");
    // The next start skips it, says why, and the chat goes on in text.
    let (output, samples) = run_mascot(&server, dir.path(), "after_crash", &[]);
    let report = report_of(&output);
    println!("{report}");
    let status = report["voice_status"].as_str().expect("status");
    assert!(
        status.contains("stopped while loading the voice"),
        "{status}"
    );
    assert!(report["replied"].as_bool().expect("replied"), "{report}");
    assert_eq!(speech_seconds(&samples), 0.0, "nothing was spoken");
}

#[test]
fn the_mascot_speaks_its_reply_while_it_streams_and_moves_its_mouth_with_the_sound() {
    let Some((report, samples)) = mascot_speaking("speak") else {
        return;
    };
    let spoken = report["spoken_seconds"].as_f64().expect("spoken seconds");
    let heard = speech_seconds(&samples);
    println!("{report}\nheard {heard:.2} s of {spoken:.2} s synthesized");
    assert!(spoken > 1.0, "the reply was spoken: {report}");
    assert!(
        heard >= 0.7 * spoken,
        "only {heard:.2} s of the {spoken:.2} s spoken reached the sound server"
    );
    assert!(
        heard <= spoken + 0.8,
        "{heard:.2} s of sound for {spoken:.2} s of speech"
    );
    // The first sound came before the reply was complete, or right after its first sentence.
    assert!(
        report["max_mouth"].as_f64().expect("mouth") > 0.3,
        "the mouth opened with the sound: {report}"
    );
    assert_eq!(
        report["mouth_after"].as_f64(),
        Some(0.0),
        "closed once silent"
    );
}

#[test]
fn stop_in_the_mascot_silences_its_voice_within_100_ms() {
    let Some((report, samples)) = mascot_speaking("stop") else {
        return;
    };
    let stopped_after = report["stopped_after_ms"].as_f64().expect("stop time");
    let played = sounding_ms(&samples) as f64;
    println!("{report}\nsound for {played} ms, Stop {stopped_after:.0} ms after the voice began");
    assert!(
        played >= 500.0,
        "the voice was heard before the stop: {played} ms"
    );
    assert!(
        played <= stopped_after + 100.0,
        "still sounding {:.0} ms after Stop",
        played - stopped_after
    );
}

/// Barge-in (issue 25): hands-free listening with `barge_in: true` on a microphone that is
/// the monitor of a second null sink ("room", as a headset keeps the mascot's voice out of
/// the microphone); the user's recorded words are played into the room while the mascot
/// speaks on its own sink, recorded: its voice stops within 200 ms of the detector hearing
/// speech, and what it heard is left in the chat input (`send_at_once: false`), not answered.
#[test]
fn speaking_over_the_mascot_stops_its_voice_within_200_ms() {
    let (Some(samples), Some(recognizer), Some(vad)) = (
        crate::support::speech_samples(),
        recognizer_model(),
        crate::support::vad_model(),
    ) else {
        return;
    };
    let Some((server, dir)) = mascot_setup() else {
        return;
    };
    let settings = std::fs::read_to_string(dir.path().join("mascot.ron")).expect("settings");
    let listen = format!(
        "    listen: (enabled: true, hands_free: true, barge_in: true, send_at_once: false, \
         language: \"en\", recognizer: Some(\"{}\"), vad: Some(\"{}\")),\n)",
        crate::support::ron_path(&recognizer),
        crate::support::ron_path(&vad)
    );
    let settings = format!("{}{listen}", settings.trim_end().trim_end_matches(')'));
    std::fs::write(dir.path().join("mascot.ron"), settings).expect("settings");
    server.add_room();
    let wav = samples[2].0.to_string_lossy().into_owned();
    let (output, recorded) = run_mascot(&server, dir.path(), "barge", &[(CHILD_WAV, &wav)]);
    let report = report_of(&output);
    let played = sounding_ms(&recorded) as f64;
    let user = report["user_after_ms"].as_f64().expect("user time");
    let Some(barge) = report["barge_after_ms"].as_f64() else {
        panic!("the mascot never heard the user: {report}");
    };
    println!(
        "{report}\nvoice sounded {played} ms; the user began {user:.0} ms in, heard at \
         {barge:.0} ms ({:.0} ms later, the recording's lead-in and the detector's 0.25 s \
         included); voice silent {:.0} ms after",
        barge - user,
        played - barge
    );
    assert!(barge > user, "stopped only for the user's words: {report}");
    assert!(
        played <= barge + 200.0,
        "still sounding {:.0} ms after the user was heard",
        played - barge
    );
    assert_eq!(report["speaking_after"].as_bool(), Some(false), "{report}");
}

/// Run by [`mascot_speaking`] in a child process (its sound server in the environment).
#[test]
#[ignore = "a child process of the mascot voice tests"]
fn mascot_child() {
    use bevy::prelude::*;
    use desktop_mate::avatar::FaceState;
    use desktop_mate::config::{self, Overrides};
    use desktop_mate::llm::{LlmStatus, ReplyFinished, SendChat, StopReply};
    use desktop_mate::voice::{VoiceOutput, VoiceStatus, VoiceTimings};
    use std::time::{Duration, Instant};

    let (Ok(mode), Some(dir)) = (std::env::var(CHILD_MODE), std::env::var_os(CHILD_DIR)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let loaded = config::load_with(Some(&dir.join("mascot.ron")), None, Overrides::default());
    let mut app = desktop_mate::headless_app(loaded);
    #[derive(Resource, Default)]
    struct Finished(bool);
    /// When the first StopReply was sent (by listening's barge-in).
    #[derive(Resource, Default)]
    struct Stopped(Option<Instant>);
    app.init_resource::<Finished>()
        .init_resource::<Stopped>()
        .add_systems(
            Last,
            |mut done: MessageReader<ReplyFinished>,
             mut finished: ResMut<Finished>,
             mut stops: MessageReader<StopReply>,
             mut stopped: ResMut<Stopped>| {
                if done.read().count() > 0 {
                    finished.0 = true;
                }
                if stops.read().count() > 0 && stopped.0.is_none() {
                    stopped.0 = Some(Instant::now());
                }
            },
        );
    let listening = std::env::var_os(CHILD_WAV).is_some();
    let after_crash = mode == "after_crash";
    let ready = crate::support::update_until(&mut app, Duration::from_secs(120), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
            && match w.resource::<VoiceStatus>() {
                VoiceStatus::Ready(_) => !after_crash,
                VoiceStatus::Failed(_) => after_crash,
                _ => false,
            }
            && (!listening
                || matches!(
                    w.resource::<desktop_mate::voice::ListenStatus>(),
                    desktop_mate::voice::ListenStatus::Ready(_)
                ))
    });
    assert!(
        ready,
        "{:?} / {:?}",
        app.world().resource::<LlmStatus>(),
        app.world().resource::<VoiceStatus>()
    );
    assert_ne!(mode, "crash", "the voice loaded: no crash");
    app.world_mut()
        .write_message(SendChat("What do you like about the sea?".into()));
    let mouth = |app: &App| {
        let face = app.world().resource::<FaceState>();
        desktop_mate::avatar::motion::MOUTH
            .iter()
            .map(|e| face.applied[desktop_mate::avatar::expression::index(*e)])
            .fold(0.0f32, f32::max)
    };
    let step = |app: &mut App| {
        app.update();
        std::thread::sleep(Duration::from_millis(5));
    };
    let step_for = |app: &mut App, time: Duration| {
        let until = Instant::now() + time;
        while Instant::now() < until {
            step(app);
        }
    };
    let started = Instant::now();
    let mut max_mouth = 0.0f32;
    let mut speaking_since = None;
    // The frame loop's own time (app.update, no rendering here) while the voice speaks.
    let mut speaking_frames: Vec<f64> = Vec::new();
    let report = loop {
        assert!(started.elapsed() < Duration::from_secs(120), "no end");
        let frame = Instant::now();
        step(&mut app);
        if speaking_since.is_some() && app.world().resource::<VoiceOutput>().speaking() {
            speaking_frames.push((frame.elapsed().as_secs_f64() - 0.005) * 1000.0);
        }
        max_mouth = max_mouth.max(mouth(&app));
        let speaking = app.world().resource::<VoiceOutput>().speaking();
        if speaking && speaking_since.is_none() {
            speaking_since = Some(Instant::now());
        }
        match (mode.as_str(), speaking_since) {
            ("stop", Some(since)) if since.elapsed() >= Duration::from_millis(800) => {
                app.world_mut().write_message(StopReply);
                let stopped_after_ms = since.elapsed().as_secs_f64() * 1000.0;
                step_for(&mut app, Duration::from_secs(1));
                break serde_json::json!({
                    "mode": mode,
                    "stopped_after_ms": stopped_after_ms,
                    "queued_after_stop": app.world().resource::<VoiceOutput>().speaking(),
                });
            }
            ("barge", Some(since)) if since.elapsed() >= Duration::from_millis(800) => {
                // The user speaks over the mascot: a recording played into the room, whose
                // sound the microphone hears.
                let wav = std::env::var_os(CHILD_WAV).expect("the user's words");
                let mut player = std::process::Command::new("paplay")
                    .arg("--device=room")
                    .arg(wav)
                    .spawn()
                    .expect("paplay");
                let user_after_ms = since.elapsed().as_secs_f64() * 1000.0;
                let until = Instant::now() + Duration::from_secs(10);
                // The frame loop must not wait on the speaker when it stops it.
                let mut longest_frame_ms = 0.0f64;
                let mut timed_step = |app: &mut App| {
                    let frame = Instant::now();
                    app.update();
                    longest_frame_ms = longest_frame_ms.max(frame.elapsed().as_secs_f64() * 1000.0);
                    std::thread::sleep(Duration::from_millis(5));
                };
                while Instant::now() < until && app.world().resource::<Stopped>().0.is_none() {
                    timed_step(&mut app);
                }
                for _ in 0..10 {
                    timed_step(&mut app);
                }
                let barge_after_ms = app
                    .world()
                    .resource::<Stopped>()
                    .0
                    .map(|at| at.duration_since(since).as_secs_f64() * 1000.0);
                let _ = player.wait();
                step_for(&mut app, Duration::from_secs(2));
                break serde_json::json!({
                    "mode": mode,
                    "user_after_ms": user_after_ms,
                    "barge_after_ms": barge_after_ms,
                    "longest_frame_ms": longest_frame_ms,
                    "speaking_after": app.world().resource::<VoiceOutput>().speaking(),
                });
            }
            ("after_crash", _) if app.world().resource::<Finished>().0 => {
                let status = match app.world().resource::<VoiceStatus>() {
                    VoiceStatus::Failed(reason) => reason.clone(),
                    other => format!("{other:?}"),
                };
                break serde_json::json!({
                    "mode": mode,
                    "voice_status": status,
                    "replied": true,
                });
            }
            ("speak", Some(_)) if !speaking && app.world().resource::<Finished>().0 => {
                let mut silent_frames = Vec::new();
                for _ in 0..200 {
                    let frame = Instant::now();
                    step(&mut app);
                    silent_frames.push((frame.elapsed().as_secs_f64() - 0.005) * 1000.0);
                }
                let quantiles = |frames: &mut Vec<f64>| {
                    if frames.is_empty() {
                        return serde_json::json!({"frames": 0});
                    }
                    frames.sort_by(f64::total_cmp);
                    let at = |q: f64| frames[((frames.len() - 1) as f64 * q) as usize];
                    serde_json::json!({"frames": frames.len(), "median_ms": at(0.5), "p95_ms": at(0.95)})
                };
                let timings = app.world().resource::<VoiceTimings>();
                break serde_json::json!({
                    "mode": mode,
                    "spoken_seconds": timings.audio_seconds,
                    "sentences": timings.sentences_spoken,
                    "real_time_factor": timings.real_time_factor,
                    "max_mouth": max_mouth,
                    "mouth_after": mouth(&app),
                    "update_speaking": quantiles(&mut speaking_frames),
                    "update_silent": quantiles(&mut silent_frames),
                });
            }
            _ => {}
        }
    };
    println!("{report}");
}

#[test]
fn the_mouth_follows_the_sound_of_a_spoken_sentence() {
    use desktop_mate::avatar::motion::LipSync;
    use desktop_mate::voice::lipsync::{self, FRAMES_PER_SECOND, MouthTrack};
    let dir = tempfile::tempdir().expect("temp dir");
    let (Some(folder), Some(espeak)) = (prepared_voice(dir.path()), espeak()) else {
        return;
    };
    let voice = PiperVoice::open(&folder, espeak, 1).expect("the voice loads");
    let audio = voice
        .synthesize(
            "Hello there! Shall we go for a walk by the sea this afternoon?",
            1.0,
        )
        .expect("speech");
    let track = MouthTrack::from_audio(&audio);
    let envelope = lipsync::envelope(&audio);
    // The face at 60 frames per second, fed what the speaker plays at each frame (as the voice
    // plugin does).
    let dt = 1.0 / 60.0;
    let mut lips = LipSync::default();
    let (mut mouth, mut level) = (Vec::new(), Vec::new());
    let mut frame = 0;
    while let Some(rms) = envelope.get((frame as f32 * dt * FRAMES_PER_SECOND) as usize) {
        let t = frame as f32 * dt;
        lips.follow_voice(Some(track.at(t)));
        let weights = lips.step(dt);
        mouth.push(weights.iter().sum::<f32>());
        level.push(*rms);
        frame += 1;
    }
    let r = lipsync::correlation(&mouth, &level);
    println!(
        "{} frames at 60 fps over {:.2} s: mouth vs level r = {r:.3}",
        mouth.len(),
        audio.seconds()
    );
    assert!(r >= 0.8, "the mouth does not follow the sound: r = {r:.3}");
    // Where the voice is loudest (a vowel), the mouth is open.
    let loudest = level
        .iter()
        .enumerate()
        .fold(
            (0, 0.0f32),
            |best, (n, l)| if *l > best.1 { (n, *l) } else { best },
        )
        .0;
    assert!(mouth[loudest] > 0.5, "mouth {} mid-vowel", mouth[loudest]);
}

#[test]
fn the_voice_switch_is_saved_and_without_a_sound_device_the_chat_goes_on_in_text() {
    use desktop_mate::config::{self, Overrides, Settings};
    use desktop_mate::desktop::DesktopAction;
    use desktop_mate::voice::VoiceStatus;
    if std::fs::read_to_string("/proc/asound/cards").is_ok_and(|c| !c.contains("no soundcards")) {
        eprintln!("skipped: this machine has a sound card");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    std::fs::write(
        &path,
        "// mine\n(voice: (enabled: false, voice: \"en_US-joe-medium\"), memory: (enabled: false))\n",
    )
    .expect("settings");
    let mut loaded = config::load_with(Some(&path), None, Overrides::default());
    loaded.settings.chat.history_file = Some(dir.path().join("history.jsonl"));
    let mut app = desktop_mate::headless_app(loaded);
    app.update();
    assert_eq!(*app.world().resource::<VoiceStatus>(), VoiceStatus::Off);
    // The tray's Voice item (or its hotkey).
    app.world_mut().write_message(DesktopAction::ToggleVoice);
    app.update();
    assert!(app.world().resource::<Settings>().voice.enabled);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        text.starts_with("// mine") && text.contains("enabled: true"),
        "{text}"
    );
    // No sound server, no sound card: one clear reason, and nothing else stops.
    let failed = crate::support::update_until(&mut app, std::time::Duration::from_secs(20), |w| {
        matches!(w.resource::<VoiceStatus>(), VoiceStatus::Failed(_))
    });
    let status = app.world().resource::<VoiceStatus>().clone();
    assert!(failed, "{status:?}");
    let VoiceStatus::Failed(reason) = status else {
        unreachable!()
    };
    assert!(reason.contains("no sound output"), "{reason}");
    app.world_mut().write_message(DesktopAction::ToggleVoice);
    for _ in 0..3 {
        app.update();
    }
    assert_eq!(*app.world().resource::<VoiceStatus>(), VoiceStatus::Off);
    assert!(!app.world().resource::<Settings>().voice.enabled);
}

/// An OpenAI-compatible speech server on 127.0.0.1 (as Kokoro-FastAPI answers): `POST
/// /v1/audio/speech` spoken with the real test voice, a streamed WAV back (RIFF and data sizes
/// 0xFFFFFFFF, as OpenAI sends them); the requests it got.
fn speech_server(
    voice: PiperVoice,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<crate::http_server::Request>>>,
) {
    use std::io::Write;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let voice = std::sync::Arc::new(voice);
    let port = crate::http_server::Server::start(move |_, request, stream, _| {
        if let Ok(mut log) = log.lock() {
            log.push(request.clone());
        }
        let body = request.json();
        let answer = match (request.path(), request.header("authorization")) {
            (_, Some(auth)) if auth != "Bearer sk-test-key" => {
                b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"error\":{\"message\":\"Incorrect API key provided: sk-wrong\"}}".to_vec()
            }
            ("/v1/audio/speech", _) if body["voice"] == "not-wav" => {
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"ok\":true}".to_vec()
            }
            ("/v1/audio/speech", _) => {
                let text = body["input"].as_str().unwrap_or_default();
                let speed = body["speed"].as_f64().unwrap_or(1.0) as f32;
                let audio = voice.synthesize(text, speed).expect("synthesis");
                let mut wav = Vec::new();
                wav.extend_from_slice(b"RIFF\xff\xff\xff\xffWAVEfmt ");
                wav.extend_from_slice(&16u32.to_le_bytes());
                wav.extend_from_slice(&1u16.to_le_bytes());
                wav.extend_from_slice(&1u16.to_le_bytes());
                wav.extend_from_slice(&audio.sample_rate.to_le_bytes());
                wav.extend_from_slice(&(audio.sample_rate * 2).to_le_bytes());
                wav.extend_from_slice(&2u16.to_le_bytes());
                wav.extend_from_slice(&16u16.to_le_bytes());
                wav.extend_from_slice(b"data\xff\xff\xff\xff");
                for sample in &audio.samples {
                    let value = (sample.clamp(-1.0, 1.0) * 32767.0) as i16;
                    wav.extend_from_slice(&value.to_le_bytes());
                }
                let mut answer = b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nConnection: close\r\n\r\n".to_vec();
                answer.extend(wav);
                answer
            }
            _ => b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n".to_vec(),
        };
        let _ = stream.write_all(&answer);
    })
    .detach();
    (format!("http://127.0.0.1:{port}/v1"), seen)
}

#[test]
fn a_speech_server_speaks_the_sentences_and_its_errors_are_clear() {
    use desktop_mate::voice::server::{OpenAiSpeech, SpeechServer};
    let dir = tempfile::tempdir().expect("temp dir");
    let (Some(folder), Some(recognizer), Some(espeak)) =
        (prepared_voice(dir.path()), recognizer_model(), espeak())
    else {
        return;
    };
    let voice = PiperVoice::open(&folder, espeak, 1).expect("the test voice loads");
    let (base_url, seen) = speech_server(voice);
    let server = |voice: &str, api_key_env: Option<&str>| SpeechServer {
        base_url: format!("{base_url}/"),
        model: "kokoro".into(),
        voice: voice.into(),
        api_key_env: api_key_env.map(str::to_owned),
    };
    let speech = OpenAiSpeech::new(server("af_heart", None)).expect("no key needed");
    let sentence = "Could you open the window, please?";
    let audio = speech
        .synthesize(sentence, 1.25)
        .expect("the server speaks");
    assert_eq!(audio.sample_rate, 22_050);
    let recognizer = Recognizer::whisper(&recognizer, "base", "en", 2).expect("Whisper loads");
    let heard = recognizer.transcribe(&audio).expect("transcription");
    println!("{sentence:?} -> {heard:?} ({:.2} s)", audio.seconds());
    assert_eq!(edits(&words(sentence), &words(&heard)), 0, "{heard:?}");
    let request = seen.lock().expect("log")[0].clone();
    assert_eq!(request.line, "POST /v1/audio/speech HTTP/1.1");
    let body = request.json();
    assert_eq!(body["model"], "kokoro");
    assert_eq!(body["voice"], "af_heart");
    assert_eq!(body["input"], sentence);
    assert_eq!(body["response_format"], "wav");
    assert_eq!(body["speed"], 1.25);
    assert_eq!(request.header("authorization"), None);

    // A wrong key: the status and the server's words, the key itself never.
    let wrong = OpenAiSpeech::new_with(
        server("af_heart", Some("DESKTOP_MATE_TEST_SPEECH_API_KEY")),
        |name| (name == "DESKTOP_MATE_TEST_SPEECH_API_KEY").then(|| "sk-wrong".to_owned()),
    )
    .expect("the key is set");
    let err = wrong
        .synthesize("Hello.", 1.0)
        .expect_err("refused")
        .to_string();
    println!("{err}");
    assert!(
        err.contains("HTTP 401") && err.contains("api_key_env"),
        "{err}"
    );
    assert!(!err.contains("sk-wrong"), "the key was printed: {err}");
    // Not audio, and no server at all.
    let err = OpenAiSpeech::new(server("not-wav", None))
        .expect("server")
        .synthesize("Hello.", 1.0)
        .expect_err("not audio")
        .to_string();
    assert!(err.contains("did not send WAV audio"), "{err}");
    let gone = SpeechServer {
        base_url: "http://127.0.0.1:9/v1".into(),
        ..server("af_heart", None)
    };
    let err = OpenAiSpeech::new(gone)
        .expect("server")
        .synthesize("Hello.", 1.0)
        .expect_err("nobody there")
        .to_string();
    assert!(err.contains("cannot be reached"), "{err}");
}
