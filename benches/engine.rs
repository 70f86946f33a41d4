//! Hot paths of the chat engine: streaming text helpers per token, settings parsing, and a
//! whole short reply on a generated tiny model (llama.cpp overhead per token).
//! Run: `cargo bench --bench engine`.

#[path = "../tests/it/support.rs"]
mod support;

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use criterion::{Criterion, criterion_group, criterion_main};
use desktop_mate::config::{BUNDLED_DEFAULT, SamplingSettings, parse_settings};
use desktop_mate::llm::contract::GenerateOptions;
use desktop_mate::llm::conversation::emotion_stream::EmotionTagFilter;
use desktop_mate::llm::runtime::engine::{EngineSettings, LlmEngine};
use desktop_mate::llm::runtime::text::{StopMatcher, Utf8Stream};

fn streaming(c: &mut Criterion) {
    let pieces: Vec<String> = "[joy] Héllo there, this is a reply with ünïcode and 😀 emoji! "
        .repeat(8)
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    c.bench_function("stream/utf8+stop+emotion per reply (~100 pieces)", |b| {
        b.iter(|| {
            let mut utf8 = Utf8Stream::default();
            let mut stops = StopMatcher::new(&["\nUser:".to_owned()]);
            let mut emotion = EmotionTagFilter::default();
            let mut shown = 0;
            for piece in &pieces {
                let text = utf8.push(piece.as_bytes());
                let (safe, _) = stops.push(&text);
                shown += emotion.push(&safe).len();
            }
            black_box(shown)
        });
    });
}

fn settings(c: &mut Criterion) {
    c.bench_function("config/parse bundled default", |b| {
        b.iter(|| parse_settings(black_box(BUNDLED_DEFAULT), Path::new("mascot.ron")));
    });
}

/// A real chat template (Qwen 2.5's) rendering a 20-turn conversation, with the budget's
/// checks and its own render thread (64 MiB stack, reserved) included.
fn template(c: &mut Criterion) {
    use desktop_mate::llm::conversation::template::{ChatTemplate, Message};
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/templates/qwen-2.5.jinja"),
    )
    .expect("template");
    let template = ChatTemplate::new(&source, "", "<|im_end|>").expect("compiles");
    let mut messages = vec![Message::new("system", "You are a helpful desktop mascot.")];
    for i in 0..20 {
        messages.push(Message::new(
            "user",
            format!("Question {i}: how are you today?"),
        ));
        messages.push(Message::new(
            "assistant",
            format!("[joy] Answer {i}: very well, thanks!"),
        ));
    }
    messages.push(Message::new("user", "And now?"));
    c.bench_function("template/render qwen-2.5, 20 turns", |b| {
        b.iter(|| {
            template
                .render(black_box(&messages), true)
                .expect("renders")
        });
    });
}

fn engine(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tiny.gguf");
    support::write_tiny_llama(&path, 1);
    let mut engine = LlmEngine::load(EngineSettings {
        model_path: path,
        n_gpu_layers: 0,
        n_ctx: 256,
        n_batch: 64,
        n_threads: 1,
        n_threads_batch: 1,
        use_mmap: true,
        use_mlock: false,
    })
    .expect("load tiny model");
    let options = GenerateOptions {
        sampling: SamplingSettings {
            temperature: 0.0,
            ..SamplingSettings::default()
        },
        max_tokens: 32,
        stop: Vec::new(),
        lead: None,
    };
    let never = AtomicBool::new(false);
    c.bench_function("engine/32-token reply, cached prompt (tiny model)", |b| {
        b.iter(|| {
            engine
                .generate("hello there", &options, &never, &mut |_| {})
                .map(|r| r.stats.generated_tokens)
        });
    });
}

criterion_group!(benches, streaming, settings, template, engine);
criterion_main!(benches);
