//! Mutation fuzzing of every parser and renderer that takes outside input, each for a fixed
//! time budget: settings and state (RON), VRM/GLB (header and JSON), GGUF headers (our checks
//! and llama.cpp's parser), chat templates (minijinja), server-sent event streams (the real
//! OpenAI client against a local server), history lines and motion clips (VRMA).
//!
//! Inputs start from real files (the bundled settings, the built-in mascot and the shared
//! avatars, a generated GGUF, the chat templates of tests/data) and are damaged by a seeded
//! mutator: byte flips, interesting bytes, deletions, duplications, splices, truncation. Every
//! input must end in a value or an error: a panic fails the test and leaves the input in the
//! test's temporary folder; an abort fails the whole binary.
//!
//! `DESKTOP_MATE_FUZZ_SECS` (default 3) is the budget per target and
//! `DESKTOP_MATE_FUZZ_SEED` the seed (default fixed, so CI runs repeat); the mutator is a
//! dozen lines over `fastrand` (already in the tree) rather than a fuzzing framework, which
//! would add a compile to the cold CI and a nightly toolchain for coverage guidance.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use desktop_mate::llm::conversation::template::{ChatTemplate, Message};

/// The budget of one target.
fn budget() -> Duration {
    let secs = std::env::var("DESKTOP_MATE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

fn seed() -> u64 {
    std::env::var("DESKTOP_MATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_da7a)
}

const INTERESTING: [u8; 12] = [
    0, 0xff, 0x7f, 0x80, b'{', b'}', b'[', b'(', b'"', b'\\', b'%', b'\n',
];

/// One to four mutations of `input`.
fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let len = out.len();
        match rng.u8(0..7) {
            0 if len > 0 => {
                let at = rng.usize(0..len);
                out[at] ^= 1 << rng.u8(0..8);
            }
            1 if len > 0 => {
                let at = rng.usize(0..len);
                out[at] = INTERESTING[rng.usize(0..INTERESTING.len())];
            }
            2 if len > 1 => {
                let at = rng.usize(0..len);
                let n = rng.usize(1..=(len - at).min(64));
                out.drain(at..at + n);
            }
            3 if len > 1 => {
                // Duplicate a piece (nesting, repeated keys).
                let at = rng.usize(0..len);
                let n = rng.usize(1..=(len - at).min(256));
                let piece: Vec<u8> = out[at..at + n].to_vec();
                let to = rng.usize(0..=len);
                out.splice(
                    to..to,
                    piece.iter().copied().cycle().take(n * rng.usize(1..=8)),
                );
            }
            4 if len > 1 => {
                // Move a piece elsewhere (splice).
                let at = rng.usize(0..len);
                let n = rng.usize(1..=(len - at).min(64));
                let piece: Vec<u8> = out[at..at + n].to_vec();
                let to = rng.usize(0..=len);
                out.splice(to..to, piece);
            }
            5 if len > 0 => out.truncate(rng.usize(0..len)),
            _ => {
                let at = rng.usize(0..=len);
                out.insert(at, rng.u8(..));
            }
        }
    }
    out
}

/// Runs `target` on mutations of `seeds` until the budget is spent; returns the iterations.
fn fuzz(name: &str, seeds: &[Vec<u8>], mut target: impl FnMut(&[u8])) -> usize {
    assert!(!seeds.is_empty(), "{name}: no seed inputs");
    let mut rng = fastrand::Rng::with_seed(seed());
    let deadline = Instant::now() + budget();
    let mut iterations = 0;
    // Every seed once as it is, then mutations.
    for input in seeds {
        run_one(name, input, &mut target);
    }
    while Instant::now() < deadline {
        let which = rng.usize(0..seeds.len());
        let input = mutate(&mut rng, &seeds[which]);
        run_one(name, &input, &mut target);
        iterations += 1;
    }
    eprintln!("fuzz {name}: {iterations} inputs in {:?}", budget());
    // A target that does nothing (or whose setup failed silently) must not pass.
    assert!(iterations >= 20, "{name}: only {iterations} inputs tried");
    iterations
}

fn run_one(name: &str, input: &[u8], target: &mut impl FnMut(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        let path = std::env::temp_dir().join(format!("desktop-mate-fuzz-{name}.bin"));
        let _ = std::fs::write(&path, input);
        panic!(
            "{name}: a panic on the input saved in {} (seed {})",
            path.display(),
            seed()
        );
    }
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

#[test]
fn settings_and_state_files() {
    let settings = desktop_mate::config::BUNDLED_DEFAULT.as_bytes().to_vec();
    let path = Path::new("mascot.ron");
    fuzz("settings", &[settings], |input| {
        let source = text(input);
        if let Ok(settings) = desktop_mate::config::parse_settings(&source, path) {
            let _ = desktop_mate::config::validate(&settings);
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let state_path = dir.path().join(desktop_mate::config::STATE_FILE_NAME);
    let state = b"(window_position: Some((10, 20)), window_places: {\"1920x1080+0+0\": (5, 6)}, window_scale: Some(1.5), overlay_position: Some((1.0, 2.0)), avatar: Some(\"a.vrm\"), model: None)".to_vec();
    let file = desktop_mate::config::StateFile::beside(Some(&dir.path().join("mascot.ron")));
    fuzz("state", &[state], |input| {
        std::fs::write(&state_path, input).expect("write state");
        let (state, _) = file.load();
        let _ = state.window_scale(&desktop_mate::config::Settings::default());
    });
}

/// The avatars: the built-in one and the shared test avatars (VRM 0.x and 1.0).
fn avatar_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![desktop_mate::avatar::default_avatar::DEFAULT_AVATAR.to_vec()];
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/avatars");
    for name in [
        "blender_modifier_shapekey_vrm0.vrm",
        "blender_expression_migration_vrm1.vrm",
    ] {
        match std::fs::read(shared.join(name)) {
            Ok(bytes) => seeds.push(bytes),
            Err(err) => crate::support::missing("shared avatar", &format!("{name}: {err}")),
        }
    }
    seeds
}

#[test]
fn vrm_files() {
    use desktop_mate::avatar::vrm_import::normalize_vrm_bytes;
    let seeds = avatar_seeds();
    // The GLB container: its header and chunk table.
    let heads: Vec<Vec<u8>> = seeds
        .iter()
        .map(|s| s[..s.len().min(64)].to_vec())
        .collect();
    let tail = seeds[0][64.min(seeds[0].len())..].to_vec();
    fuzz("glb-header", &heads, |input| {
        let mut bytes = input.to_vec();
        bytes.extend_from_slice(&tail);
        let _ = normalize_vrm_bytes(&bytes);
    });
    // The JSON chunk, with each file's own binary chunk.
    fuzz_json_chunks("vrm-json", &seeds, |bytes| {
        let _ = normalize_vrm_bytes(bytes);
    });
}

/// Mutations of the JSON chunks of GLB `seeds`, each put back with its file's binary chunk.
fn fuzz_json_chunks(name: &str, seeds: &[Vec<u8>], mut target: impl FnMut(&[u8])) {
    use desktop_mate::avatar::vrm_file::read_glb;
    let glbs: Vec<_> = seeds.iter().filter_map(|s| read_glb(s).ok()).collect();
    assert_eq!(glbs.len(), seeds.len(), "{name}: the seeds are GLB files");
    let jsons: Vec<Vec<u8>> = glbs
        .iter()
        .map(|g| serde_json::to_vec(&g.json).expect("json"))
        .collect();
    let mut which = 0;
    fuzz(name, &jsons, |input| {
        let glb = &glbs[which % glbs.len()];
        which += 1;
        target(&glb_bytes(input, glb.bin.as_deref()));
    });
}

#[test]
fn motion_clips() {
    use desktop_mate::motion::builtin::BUILTIN;
    use desktop_mate::motion::retarget::{Skeleton, SkeletonBone, retarget};
    use desktop_mate::motion::vrma::read_vrma;
    use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;
    let mut seeds: Vec<Vec<u8>> = BUILTIN.iter().take(4).map(|m| m.bytes.to_vec()).collect();
    for name in ["nop.vrma", "hips_spine_twisting.vrma"] {
        if let Some(path) = crate::support::shared_file(&format!("animations/{name}")) {
            seeds.push(std::fs::read(path).expect("read"));
        }
    }
    // What an avatar would do with what was read: retarget it (values must stay finite).
    let bone = |bone, y: f32| SkeletonBone {
        bone,
        rest_rotation: bevy::math::Quat::from_rotation_y(0.3),
        rest_translation: bevy::math::Vec3::Y * y,
        parent_world: bevy::math::Affine3A::from_translation(bevy::math::Vec3::Y * y),
    };
    let skeleton = Skeleton {
        bones: vec![
            bone(HumanBoneName::Hips, 0.8),
            bone(HumanBoneName::LeftUpperArm, 1.2),
        ],
    };
    let check = |bytes: &[u8]| {
        if let Ok(clip) = read_vrma(bytes) {
            let _ = retarget(&clip, &skeleton);
            assert!(clip.duration.is_finite());
        }
    };
    fuzz("vrma-file", &seeds, check);
    fuzz_json_chunks("vrma-json", &seeds, check);
}

/// A GLB with this JSON chunk, as it is (not necessarily JSON), and binary chunk.
fn glb_bytes(json: &[u8], bin: Option<&[u8]>) -> Vec<u8> {
    let pad = |n: usize| n.div_ceil(4) * 4;
    let mut chunks = Vec::new();
    let mut chunk = |kind: &[u8; 4], data: &[u8], fill: u8| {
        chunks.extend_from_slice(&(pad(data.len()) as u32).to_le_bytes());
        chunks.extend_from_slice(kind);
        chunks.extend_from_slice(data);
        chunks.resize(chunks.len() + pad(data.len()) - data.len(), fill);
    };
    chunk(b"JSON", json, b' ');
    if let Some(bin) = bin {
        chunk(b"BIN\0", bin, 0);
    }
    let mut out = b"glTF".to_vec();
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&((12 + chunks.len()) as u32).to_le_bytes());
    out.extend_from_slice(&chunks);
    out
}

#[test]
fn gguf_headers() {
    // llama.cpp's parser explains each refusal on stderr: to the (absent) log instead.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("seed.gguf");
    crate::support::write_tiny_llama(&model, 1);
    let bytes = std::fs::read(&model).expect("read model");
    // The header and metadata (the tokenizer's arrays included); the tensor data stays.
    let split = bytes.len().min(16 << 10);
    let (head, data) = bytes.split_at(split);
    let path = dir.path().join("fuzzed.gguf");
    fuzz("gguf", &[head.to_vec()], |input| {
        let mut file = input.to_vec();
        file.extend_from_slice(data);
        std::fs::write(&path, &file).expect("write model");
        let _ = desktop_mate::llm::runtime::model_info::read_model_info(&path);
    });
}

#[test]
fn chat_templates() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/templates");
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(&folder)
        .expect("templates folder")
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "jinja") {
            seeds.push(std::fs::read(entry.path()).expect("read template"));
        }
    }
    assert!(seeds.len() >= 5, "the real templates are the seeds");
    let messages = [
        Message::new("system", "You are a mascot."),
        Message::new("user", "Hi"),
        Message::new("assistant", "[joy] Hello!"),
        Message::new("user", "How are you?"),
    ];
    fuzz("chat-template", &seeds, |input| {
        let source = text(input);
        let messages = messages.clone();
        // From a thread with a task pool's stack, as the mascot renders.
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                if let Ok(template) = ChatTemplate::new(&source, "<s>", "</s>") {
                    let _ = template.render(&messages, true);
                }
            })
            .expect("thread")
            .join()
            .expect("no panic");
    });
}

#[test]
fn history_lines() {
    use desktop_mate::llm::conversation::history::{
        HistoryEntry, append_history, load_history_tail,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.jsonl");
    for i in 0..3 {
        let turn = desktop_mate::llm::contract::ChatTurn {
            user: format!("question {i} \u{e9}\u{1F600}"),
            assistant: format!("[joy] answer {i}\n\"quoted\""),
            recalled: None,
        };
        append_history(&path, &HistoryEntry::now(turn)).expect("append");
    }
    let seed_file = std::fs::read(&path).expect("read history");
    fuzz("history", &[seed_file], |input| {
        std::fs::write(&path, input).expect("write history");
        if let Ok(loaded) = load_history_tail(&path, 1 << 20) {
            for entry in &loaded.entries {
                let _ = entry.turn.user.len() + entry.turn.assistant.len();
            }
        }
    });
}

#[test]
fn server_sent_event_streams() {
    use std::io::Write as _;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    use desktop_mate::config::{ChatSettings, PersonaSettings, SamplingSettings};
    use desktop_mate::llm::contract::GenerateOptions;
    use desktop_mate::llm::contract::ReplyStream;
    use desktop_mate::llm::conversation::session::ChatSession;
    use desktop_mate::llm::load::{BackendConfig, load_backend};
    use desktop_mate::llm::openai::OpenAiSettings;

    // A server answering every request with the stream the test put in `body`.
    let body: Arc<Mutex<Vec<u8>>> = Arc::default();
    let served = Arc::clone(&body);
    let server = crate::http_server::Server::start(move |_, _, stream, _| {
        let body = served.lock().map(|b| b.clone()).unwrap_or_default();
        let _ = stream.write_all(crate::openai::SSE_HEAD.as_bytes());
        let _ = stream.write_all(&body);
    });
    let port = server.port;
    let mut settings = OpenAiSettings::new(&format!("http://127.0.0.1:{port}/v1"), "m");
    settings.total_timeout = Duration::from_secs(5);
    let backend = load_backend(BackendConfig::OpenAi(settings))
        .backend
        .expect("the server backend");
    let mut session = ChatSession::new(backend, &ChatSettings::default());
    let options = GenerateOptions::from_sampling(&SamplingSettings {
        max_tokens: 16,
        ..SamplingSettings::default()
    });
    let stream = [
        crate::openai::piece("[joy] Hel"),
        crate::openai::piece("lo \u{1F600}"),
        crate::openai::finish("stop"),
        crate::openai::usage(12, 3),
        crate::openai::DONE.to_owned(),
    ]
    .concat();
    let cancel = AtomicBool::new(false);
    fuzz("sse", &[stream.into_bytes()], |input| {
        if let Ok(mut b) = body.lock() {
            *b = input.to_vec();
        }
        let _ = session.send(
            &PersonaSettings::default(),
            "Hi",
            &options,
            &mut ReplyStream {
                cancel: &cancel,
                on_text: &mut |_| {},
            },
        );
        session.clear();
    });
}
