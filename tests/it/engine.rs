//! The real llama.cpp engine on real GGUF files: a generated tiny model (always) and the
//! trained stories260K model (when ../shared is present).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::{cpu_settings, shared_file, write_tiny_llama};
use desktop_mate::config::{PersonaSettings, SamplingSettings};
use desktop_mate::llm::contract::ChatTurn;
use desktop_mate::llm::contract::PromptFormat;
use desktop_mate::llm::contract::{GenerateOptions, StopReason};
use desktop_mate::llm::conversation::chat;
use desktop_mate::llm::runtime::engine::{EngineError, EngineSettings, LlmEngine};
use desktop_mate::llm::runtime::local;
use desktop_mate::llm::runtime::model_info::ModelInfoError;

fn engine_for(path: &Path, n_ctx: u32) -> LlmEngine {
    LlmEngine::load(cpu_settings(path, n_ctx)).expect("load model")
}

fn greedy(max_tokens: u32) -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingSettings {
            temperature: 0.0,
            repeat_penalty: 1.0,
            ..SamplingSettings::default()
        },
        max_tokens,
        stop: Vec::new(),
        lead: None,
    }
}

fn tiny_model() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tiny.gguf");
    write_tiny_llama(&path, 7);
    (dir, path)
}

#[test]
fn generated_model_streams_exactly_what_it_returns_and_respects_max_tokens() {
    let (_dir, path) = tiny_model();
    let mut engine = engine_for(&path, 256);
    let never = AtomicBool::new(false);
    let mut streamed = String::new();
    let reply = engine
        .generate("hello there", &greedy(12), &never, &mut |piece| {
            streamed.push_str(piece);
        })
        .expect("generate");
    assert_eq!(streamed, reply.text);
    assert!(reply.stats.generated_tokens <= 12);
    assert!(matches!(
        reply.stats.stop_reason,
        StopReason::MaxTokens | StopReason::EndOfGeneration
    ));
    assert!(reply.stats.prompt_tokens > 1);
    // Greedy decoding is deterministic, with or without the cache.
    let again = engine
        .generate("hello there", &greedy(12), &never, &mut |_| {})
        .expect("generate");
    assert_eq!(again.text, reply.text);
    assert_eq!(again.stats.reused_tokens, again.stats.prompt_tokens - 1);
}

#[test]
fn common_prefix_is_reused_from_the_kv_cache() {
    let (_dir, path) = tiny_model();
    let mut engine = engine_for(&path, 512);
    let system = "You are a test. Keep it short and friendly please.";
    let warm = engine.prefill(system).expect("prefill");
    assert_eq!(warm.reused_tokens, 0);
    let cached = engine.cached_tokens();
    assert_eq!(cached, warm.prompt_tokens);
    let never = AtomicBool::new(false);
    let reply = engine
        .generate(
            &format!("{system} And now a question?"),
            &greedy(4),
            &never,
            &mut |_| {},
        )
        .expect("generate");
    assert!(
        reply.stats.reused_tokens >= cached - 1 && reply.stats.reused_tokens > 0,
        "reused {} of {cached} cached",
        reply.stats.reused_tokens
    );
    // A different prompt reuses exactly the tokens it shares with what is cached.
    let previous = engine.tokenize(&format!("{system} And now a question?"));
    let different = "Completely different";
    let shared = previous
        .iter()
        .zip(engine.tokenize(different).iter())
        .take_while(|(a, b)| a == b)
        .count();
    let other = engine
        .generate(different, &greedy(2), &never, &mut |_| {})
        .expect("generate");
    assert_eq!(other.stats.reused_tokens, shared);
    assert!(
        shared < 5,
        "only BOS and the leading space are shared, got {shared}"
    );
}

#[test]
fn cancel_stops_within_one_token() {
    let (_dir, path) = tiny_model();
    let mut engine = engine_for(&path, 256);
    let cancel = AtomicBool::new(true);
    let reply = engine
        .generate("hi", &greedy(50), &cancel, &mut |_| {})
        .expect("generate");
    assert_eq!(reply.stats.stop_reason, StopReason::Cancelled);
    assert_eq!(reply.stats.generated_tokens, 0);

    let cancel = AtomicBool::new(false);
    let mut pieces = 0;
    let reply = engine
        .generate("hi", &greedy(50), &cancel, &mut |_| {
            pieces += 1;
            cancel.store(true, Ordering::Relaxed);
        })
        .expect("generate");
    if reply.stats.stop_reason == StopReason::Cancelled {
        assert!(reply.stats.generated_tokens <= pieces + 1);
    }
}

#[test]
fn bad_input_gives_clear_errors_and_the_engine_keeps_working() {
    let (dir, path) = tiny_model();
    let mut engine = engine_for(&path, 256);
    let never = AtomicBool::new(false);
    let huge = "word ".repeat(10_000);
    let err = engine
        .generate(&huge, &greedy(4), &never, &mut |_| {})
        .expect_err("50k characters can't fit 256 tokens");
    assert!(
        matches!(err, EngineError::PromptTooLong { n_ctx: 256, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("context holds 256"));
    let err = engine
        .generate("   ", &greedy(4), &never, &mut |_| {})
        .expect_err("empty");
    assert!(matches!(err, EngineError::EmptyPrompt));
    // Still usable afterwards.
    let reply = engine
        .generate("hello", &greedy(3), &never, &mut |_| {})
        .expect("works after errors");
    assert!(reply.stats.generated_tokens >= 1);

    let missing = LlmEngine::load(EngineSettings {
        model_path: dir.path().join("missing.gguf"),
        ..engine.settings().clone()
    });
    assert!(matches!(
        missing,
        Err(EngineError::ModelFile(ModelInfoError::Missing(_)))
    ));
    let not_gguf = dir.path().join("photo.gguf");
    std::fs::write(&not_gguf, [0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3]).expect("write");
    let err = LlmEngine::load(EngineSettings {
        model_path: not_gguf,
        ..engine.settings().clone()
    })
    .err()
    .expect("not a model");
    assert!(err.to_string().contains("not a GGUF model file"), "{err}");
    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    assert!(
        LlmEngine::load(EngineSettings {
            model_path: truncated,
            ..engine.settings().clone()
        })
        .is_err()
    );
}

#[test]
fn chat_without_template_uses_the_plain_format_and_drops_old_turns_to_fit() {
    let (_dir, path) = tiny_model();
    let mut engine = engine_for(&path, 256);
    assert_eq!(
        local::prompter_for(&engine).0.format(),
        PromptFormat::PlainText
    );
    let persona = PersonaSettings {
        name: "Mate".into(),
        system_prompt: "Be brief.".into(),
    };
    let history: Vec<ChatTurn> = (0..12)
        .map(|i| ChatTurn {
            user: format!("question number {i} is rather long"),
            // As generated after "Mate:", with the model's own leading space.
            assistant: format!(" answer number {i} is also long"),
            recalled: None,
        })
        .collect();
    let plain = chat::Prompter::plain();
    let (prompt, stops) = plain.prompt(&persona, &history[..1], Some("hi"));
    assert_eq!(
        prompt,
        "Be brief.\n\nUser: question number 0 is rather long\nMate: answer number 0 is also long\nUser: hi\nMate:"
    );
    assert!(stops.contains(&"\nUser:".to_owned()));
    let never = AtomicBool::new(false);
    let (reply, dropped) = local::reply(
        &mut engine,
        &plain,
        &persona,
        &history,
        "and now?",
        &greedy(40),
        &never,
        &mut |_| {},
    )
    .expect("a long history is trimmed, never an error");
    assert!(dropped > 0, "the history can't fit in 256 tokens");
    assert!(reply.stats.prompt_tokens + 40 <= 256);
    assert!(!reply.text.contains("User:"));
}

#[test]
fn stories_model_greedy_continuation_is_the_known_text() {
    let Some(path) = shared_file("models/stories260K.gguf") else {
        eprintln!(
            "../shared/models/stories260K.gguf not here; the generated model covers the engine"
        );
        return;
    };
    let mut engine = engine_for(&path, 512);
    let never = AtomicBool::new(false);
    let reply = engine
        .generate("Once upon a time", &greedy(20), &never, &mut |_| {})
        .expect("generate");
    assert!(
        reply
            .text
            .starts_with(", there was a little girl named Lily."),
        "{:?}",
        reply.text
    );
    assert_eq!(reply.stats.generated_tokens, 20);
    assert_eq!(reply.stats.stop_reason, StopReason::MaxTokens);
}

#[test]
fn later_turns_evaluate_only_the_new_tokens() {
    let (_dir, path) = tiny_model();
    let mut engine = engine_for(&path, 1024);
    let persona = PersonaSettings {
        name: "Mate".into(),
        system_prompt: "Be brief and kind.".into(),
    };
    let never = AtomicBool::new(false);
    let mut history: Vec<ChatTurn> = Vec::new();
    let mut reused = Vec::new();
    for message in ["hello", "how are you", "tell me more", "thanks"] {
        let (reply, dropped) = local::reply(
            &mut engine,
            &chat::Prompter::plain(),
            &persona,
            &history,
            message,
            &greedy(8),
            &never,
            &mut |_| {},
        )
        .expect("reply");
        assert_eq!(dropped, 0);
        reused.push((reply.stats.prompt_tokens, reply.stats.reused_tokens));
        history.push(ChatTurn {
            user: message.into(),
            assistant: reply.text,
            recalled: None,
        });
    }
    // From turn 2 on, everything up to the previous prompt comes from the KV cache.
    for pair in reused.windows(2) {
        let ((previous_prompt, _), (_, reused_now)) = (pair[0], pair[1]);
        assert!(
            reused_now >= previous_prompt,
            "turn reused {reused_now} tokens, previous prompt had {previous_prompt}: {reused:?}"
        );
    }
}

fn template(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/templates")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_model_with_a_chat_template_gets_its_prompts_from_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chatml.gguf");
    crate::support::write_tiny_llama_with_template(&path, 5, &template("qwen-2.5.jinja"));
    let mut engine = engine_for(&path, 256);
    let (prompter, _) = local::prompter_for(&engine);
    assert_eq!(prompter.format(), PromptFormat::ModelTemplate);
    let persona = PersonaSettings {
        name: "Mate".into(),
        system_prompt: "Be brief.".into(),
    };
    let history = [ChatTurn {
        user: "hi".into(),
        assistant: "hello".into(),
        recalled: None,
    }];
    let (prompt, stops) = prompter.prompt(&persona, &history, Some("how are you?"));
    assert_eq!(
        prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n\
         <|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nhow are you?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    assert!(
        stops.is_empty(),
        "the template's own end marker stops a reply"
    );
    let never = AtomicBool::new(false);
    let (reply, dropped) = local::reply(
        &mut engine,
        &prompter,
        &persona,
        &history,
        "how are you?",
        &greedy(4),
        &never,
        &mut |_| {},
    )
    .expect("a reply through the template");
    assert_eq!(dropped, 0);
    assert_eq!(reply.stats.prompt_tokens, engine.tokenize(&prompt).len());
}

#[test]
fn a_template_that_refuses_a_system_role_gets_the_persona_in_the_first_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gemma.gguf");
    crate::support::write_tiny_llama_with_template(&path, 6, &template("gemma-2.jinja"));
    let engine = engine_for(&path, 256);
    let (prompter, _) = local::prompter_for(&engine);
    assert_eq!(prompter.format(), PromptFormat::ModelTemplate);
    let persona = PersonaSettings {
        name: "Mate".into(),
        system_prompt: "Be brief.".into(),
    };
    let (prompt, _) = prompter.prompt(&persona, &[], Some("hi"));
    // The tokenizer adds BOS itself: the template's leading `<s>` is not doubled.
    assert_eq!(
        prompt,
        "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n"
    );
}

#[test]
fn each_turn_extends_the_cached_sequence_without_evaluating_it_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chatml.gguf");
    crate::support::write_tiny_llama_with_template(&path, 7, &template("qwen-2.5.jinja"));
    let mut engine = engine_for(&path, 2048);
    let (prompter, _) = local::prompter_for(&engine);
    assert_eq!(prompter.format(), PromptFormat::ModelTemplate);
    let persona = PersonaSettings {
        name: "Mate".into(),
        system_prompt: "Be brief.".into(),
    };
    let never = AtomicBool::new(false);
    let mut history: Vec<ChatTurn> = Vec::new();
    for turn in 1..=10 {
        let cached_before = engine.cached_tokens();
        let message = format!("message number {turn}");
        let (reply, dropped) = local::reply(
            &mut engine,
            &prompter,
            &persona,
            &history,
            &message,
            &greedy(6),
            &never,
            &mut |_| {},
        )
        .expect("reply");
        assert_eq!(dropped, 0);
        if turn > 1 {
            // Everything the previous turn left in the cache (its prompt and the reply's
            // tokens as generated) is reused; only the new turn's text is evaluated.
            assert_eq!(
                reply.stats.reused_tokens, cached_before,
                "turn {turn}: reused {} of {cached_before} cached tokens",
                reply.stats.reused_tokens
            );
        }
        history.push(ChatTurn {
            user: message,
            assistant: reply.text,
            recalled: None,
        });
    }
}

/// Dropping the oldest turns (the session's `chat.turns_kept`) takes their tokens out of the
/// cache and moves the later ones back (context shift) instead of evaluating every kept turn
/// again. With Gemma's template, where the persona sits in the first user message, the
/// stretch taken out runs from after the persona to the first kept message. The cache holds
/// a conversation of six turns (evaluated as one prompt, so its text is known exactly); the
/// three oldest are dropped (`shift_to`, as the session's trim does through
/// `ChatBackend::keep_only`); the next message evaluates only its own text; the message after
/// it extends the shifted cache as usual. A reply alone never shifts (after Clear, a new
/// conversation must not inherit keys computed over the old one).
#[test]
fn dropping_old_turns_shifts_the_cache_instead_of_evaluating_the_kept_turns_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gemma.gguf");
    crate::support::write_tiny_llama_with_template(&path, 8, &template("gemma-2.jinja"));
    let mut engine = engine_for(&path, 2048);
    let (prompter, _) = local::prompter_for(&engine);
    assert_eq!(prompter.format(), PromptFormat::ModelTemplate);
    let persona = PersonaSettings {
        name: "Mate".into(),
        system_prompt: "Be brief and kind.".into(),
    };
    let history: Vec<ChatTurn> = (1..=6)
        .map(|turn| {
            ChatTurn::new(
                format!("this is message number {turn} of the talk"),
                format!("and this is answer number {turn}, a short one"),
            )
        })
        .collect();
    let (whole, _) = prompter.prompt(&persona, &history, None);
    engine.prefill(&whole).expect("the conversation is cached");
    let cached = engine.cached_tokens();
    let never = AtomicBool::new(false);
    let reply = |engine: &mut LlmEngine, history: &[ChatTurn], message: &str| {
        local::reply(
            engine,
            &prompter,
            &persona,
            history,
            message,
            &greedy(4),
            &never,
            &mut |_| {},
        )
        .expect("reply")
        .0
        .stats
    };
    let message = "this is message number 7 of the talk";
    let (kept_prompt, _) = prompter.prompt(&persona, &history[3..], Some(message));
    let (persona_only, _) = prompter.prompt(&persona, &[], None);
    let (kept_turns, _) = prompter.prompt(&persona, &history[3..], None);
    let taken_out = engine.shift_to(&kept_turns).expect("shift");
    assert!(taken_out > 0, "the three oldest turns left the cache");
    assert_eq!(engine.cached_tokens(), cached - taken_out);
    let shifted = reply(&mut engine, &history[3..], message);
    let evaluated = shifted.prompt_tokens - shifted.reused_tokens;
    // Only the new message's tokens; without the shift, everything after the persona.
    let new = engine.tokenize(&kept_prompt).len() - engine.tokenize(&kept_turns).len();
    let after_persona = engine.tokenize(&kept_prompt).len() - engine.tokenize(&persona_only).len();
    assert!(
        evaluated <= new + 2 && after_persona > 3 * new,
        "evaluated {evaluated} tokens of {} (the message {new}, after the persona \
         {after_persona}; {cached} were cached)",
        shifted.prompt_tokens
    );
    let before_next = engine.cached_tokens();
    let mut next_history = history[3..].to_vec();
    next_history.push(ChatTurn::new(message, "ok"));
    let next = reply(&mut engine, &next_history, "and number 8");
    assert!(
        next.reused_tokens + 8 >= before_next,
        "the shifted cache is extended: {} of {before_next}",
        next.reused_tokens
    );

    // A reply to a prompt that is the cache minus a stretch, without `shift_to`: evaluated
    // again from where the texts differ.
    let cached = engine.cached_tokens();
    let fresh = reply(&mut engine, &history[5..], "a new talk");
    assert!(
        fresh.reused_tokens < cached / 2,
        "no shift on its own: {} of {cached} reused",
        fresh.reused_tokens
    );
}

#[test]
fn the_tag_grammar_opens_every_gemma_reply_with_a_valid_tag() {
    use desktop_mate::config::{ChatSettings, Emotion};
    use desktop_mate::llm::contract::ReplyStream;
    use desktop_mate::llm::conversation::session::ChatSession;
    use desktop_mate::llm::load::load_backend;
    let Some(path) = crate::support::gemma_model() else {
        return;
    };
    let backend = load_backend(EngineSettings {
        n_batch: 256,
        ..cpu_settings(&path, 1024)
    })
    .backend
    .expect("Gemma 3 270M loads");
    let chat = ChatSettings {
        tag_grammar: true,
        ..ChatSettings::default()
    };
    let mut session = ChatSession::new(backend, &chat);
    let persona = desktop_mate::config::PersonaSettings::default();
    let never = AtomicBool::new(false);
    let names: Vec<String> = Emotion::ALL
        .iter()
        .map(|e| format!("[{}]", ron::to_string(e).expect("name")))
        .collect();
    // Greedy, then sampled with 20 seeds.
    let runs = std::iter::once((0.0, None)).chain((1..=20).map(|seed| (0.9, Some(seed))));
    for (temperature, seed) in runs {
        let options = GenerateOptions {
            sampling: SamplingSettings {
                temperature,
                seed,
                ..SamplingSettings::default()
            },
            max_tokens: 8,
            stop: Vec::new(),
            lead: None,
        };
        let reply = session
            .send(
                &persona,
                "Tell me about your day.",
                &options,
                &mut ReplyStream {
                    cancel: &never,
                    on_text: &mut |_| {},
                },
            )
            .expect("reply");
        let opening = &reply.turn.assistant;
        assert!(
            names.iter().any(|name| opening.starts_with(name.as_str())),
            "seed {seed:?}: {opening:?} does not open with a tag"
        );
        assert!(reply.emotion.is_some(), "seed {seed:?}: the tag is read");
        assert!(!reply.shown.starts_with('['), "the tag is not shown");
        assert!(reply.stats.lead_tokens > 0);
        session.clear();
    }
}

#[test]
fn a_warm_start_loads_the_persona_saved_by_the_previous_start() {
    use desktop_mate::llm::load::load_backend;
    use desktop_mate::llm::runtime::warm_file;
    let (_dir, path) = tiny_model();
    let states = tempfile::tempdir().expect("temp dir");
    let settings = cpu_settings(&path, 256);
    let persona = PersonaSettings {
        name: "Mate".into(),
        system_prompt: "Be brief and kind, always.".into(),
    };
    let load = || load_backend(settings.clone()).backend.expect("loads");

    let mut first = load();
    let cold = first
        .warm_up(&persona, Some(states.path()))
        .expect("warm-up");
    assert_eq!(cold.reused_tokens, 0, "nothing to load the first time");
    assert!(cold.prompt_tokens > 5);
    let saved = warm_file::states_in(states.path());
    assert_eq!(saved.len(), 1, "one state");
    assert!(
        warm_file::verify(&saved[0], 1 << 30).is_ok(),
        "sealed with its size and checksum"
    );
    drop(first);

    let mut second = load();
    let warm = second
        .warm_up(&persona, Some(states.path()))
        .expect("warm start");
    assert_eq!(
        (warm.prompt_tokens, warm.reused_tokens),
        (cold.prompt_tokens, cold.prompt_tokens),
        "the whole persona comes from the file"
    );
    assert_eq!(second.stats().cached_tokens, cold.prompt_tokens);

    // Another persona does not load the saved state; a damaged file is evaluated again.
    let other = PersonaSettings {
        system_prompt: "Something else entirely.".into(),
        ..persona.clone()
    };
    let mut third = load();
    assert_eq!(
        third
            .warm_up(&other, Some(states.path()))
            .expect("warm-up")
            .reused_tokens,
        0
    );
    for entry in std::fs::read_dir(states.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not a state").unwrap();
    }
    let mut fourth = load();
    let recomputed = fourth
        .warm_up(&persona, Some(states.path()))
        .expect("a damaged state is recomputed, not an error");
    assert_eq!(recomputed.reused_tokens, 0);
    assert_eq!(fourth.stats().cached_tokens, cold.prompt_tokens);
    drop(fourth);

    // Damage of the same size (one flipped byte in the cache data) used to load silently and
    // give wrong replies at every start: the checksum refuses it, and the state is rebuilt.
    let state = warm_file::states_in(states.path())
        .into_iter()
        .next()
        .expect("the persona's state, written again");
    let data = warm_file::verify(&state, 1 << 30).expect("its data");
    let mut bytes = std::fs::read(&data).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&data, &bytes).expect("write");
    let mut fifth = load();
    let refused = fifth
        .warm_up(&persona, Some(states.path()))
        .expect("a damaged state is recomputed");
    assert_eq!(refused.reused_tokens, 0, "the flipped byte is noticed");
    drop(fifth);
    let mut sixth = load();
    assert_eq!(
        sixth
            .warm_up(&persona, Some(states.path()))
            .expect("warm start")
            .reused_tokens,
        cold.prompt_tokens,
        "the rebuilt state loads again"
    );
}

/// A message evaluated ahead while it was typed (`ChatSession::prepare`, fed by the chat
/// panel's drafts and by the words heard so far) is answered from the cache: the whole
/// message when the draft was all of it, the rest only when the last word came after, and a
/// draft the user replaced costs nothing but time. Each reply is the one a session that never
/// saw a draft gives (Gemma 3 270M, greedy), and a set stop flag leaves the draft alone.
#[test]
fn a_message_evaluated_ahead_while_typed_is_answered_from_the_cache() {
    use desktop_mate::config::ChatSettings;
    use desktop_mate::llm::contract::ReplyStream;
    use desktop_mate::llm::conversation::session::{ChatSession, SessionReply};
    use desktop_mate::llm::load::load_backend;
    let Some(path) = crate::support::gemma_model() else {
        return;
    };
    let session = || {
        let backend = load_backend(cpu_settings(&path, 1024))
            .backend
            .expect("Gemma 3 270M loads");
        ChatSession::new(backend, &ChatSettings::default())
    };
    let (mut typed, mut plain) = (session(), session());
    let persona = PersonaSettings::default();
    let options = greedy(8);
    let never = AtomicBool::new(false);
    let send = |session: &mut ChatSession, message: &str| -> SessionReply {
        session
            .send(
                &persona,
                message,
                &options,
                &mut ReplyStream {
                    cancel: &never,
                    on_text: &mut |_| {},
                },
            )
            .expect("reply")
    };
    let first = "Hello! My name is Léa and I work nights.";
    assert_eq!(send(&mut typed, first).shown, send(&mut plain, first).shown);

    // (draft handed over before Enter, message sent)
    let turns = [
        ("What is my name?", "What is my name?"),
        ("Do you like cats and ", "Do you like cats and dogs?"),
        ("Tell me a long story about the sea", "Thanks, good night!"),
    ];
    for (draft, message) in turns {
        let cached = typed.stats().cached_tokens;
        let ahead = typed
            .prepare(&persona, draft, &options, &never)
            .expect("draft evaluated")
            .expect("not stopped");
        assert!(
            ahead.prompt_tokens > ahead.reused_tokens + 1,
            "{draft:?}: nothing evaluated but the last token"
        );
        assert!(
            ahead.reused_tokens + 8 >= cached,
            "{draft:?}: the draft reused {} of {cached} cached tokens",
            ahead.reused_tokens
        );
        let reply = send(&mut typed, message);
        let evaluated = reply.stats.prompt_tokens - reply.stats.reused_tokens;
        let reference = send(&mut plain, message);
        let unprepared = reference.stats.prompt_tokens - reference.stats.reused_tokens;
        println!("{draft:?} -> {message:?}: evaluated {evaluated}, without the draft {unprepared}");
        if draft == message {
            assert_eq!(evaluated, 1, "only the last token is evaluated again");
        } else if message.starts_with(draft) {
            // The last word and the template's end of turn, not the earlier reply.
            assert!(
                evaluated < 10 && evaluated < unprepared,
                "{evaluated} vs {unprepared}"
            );
        }
        assert_eq!(reply.shown, reference.shown, "{message:?}");
    }

    // Stopped before it began: nothing is evaluated and the cache stays as it was.
    let cached = typed.stats().cached_tokens;
    let stop = AtomicBool::new(true);
    assert_eq!(
        typed
            .prepare(
                &persona,
                "Something long enough to need a batch",
                &options,
                &stop
            )
            .expect("stopped, no error"),
        None
    );
    assert_eq!(typed.stats().cached_tokens, cached);
    let (reply, reference) = (send(&mut typed, "Bye!"), send(&mut plain, "Bye!"));
    assert_eq!(reply.shown, reference.shown);
}

/// An aside (the model's notes) that finds the context full of a message evaluated ahead and
/// never sent takes that message's cells, not the conversation's: the conversation stays
/// cached and its next prompt is evaluated from where it ended. With no draft to drop, an
/// aside that does not fit is refused and the conversation is kept.
#[test]
fn an_aside_takes_the_cells_of_an_unsent_draft_and_keeps_the_conversation() {
    let (_dir, path) = tiny_model();
    let mut engine = engine_for(&path, 256);
    let never = AtomicBool::new(false);
    let conversation = "hello there, how are you today? fine thanks, and you? ".repeat(2);
    engine
        .prefill(&conversation)
        .expect("the conversation is cached");
    let talk = engine.cached_tokens();
    assert!(talk > 90, "{talk} tokens");
    let draft = format!(
        "{conversation}{}",
        "and then we talked about the sea ".repeat(4)
    );
    engine
        .prefill_until(&draft, &never)
        .expect("the draft is evaluated")
        .expect("not stopped");
    let drafted = engine.cached_tokens();
    assert!(
        drafted > 220 && drafted < 256,
        "{drafted} tokens with the draft"
    );
    let notes = "what should be remembered? ";
    let options = greedy(16);
    let needed = engine.tokenize(notes).len() + 16;
    assert!(needed > 256 - drafted && needed <= 256 - talk);

    let reply = engine
        .generate_aside(notes, &options, &never, &mut |_| {})
        .expect("the aside finds room once the draft is dropped");
    assert!(reply.stats.generated_tokens > 0);
    assert_eq!(
        engine.cached_tokens(),
        talk,
        "the conversation's tokens stay"
    );
    let next = format!("{conversation}and now something else");
    let stats = engine
        .generate(&next, &greedy(4), &never, &mut |_| {})
        .expect("the next reply")
        .stats;
    assert_eq!(
        stats.reused_tokens, talk,
        "evaluated from the conversation's end"
    );

    // The conversation itself is never given up for an aside, and a draft is not dropped
    // when that would not make room.
    let long = "hello there, how are you today? ".repeat(7);
    engine.prefill(&long).expect("a long conversation");
    assert!(engine.cached_tokens() + needed > 256);
    engine
        .prefill_until(&format!("{long}ok, bye"), &never)
        .expect("a short draft")
        .expect("not stopped");
    let cached = engine.cached_tokens();
    match engine.generate_aside(notes, &options, &never, &mut |_| {}) {
        Err(EngineError::NoRoomAside {
            needed: asked,
            free,
        }) => {
            assert_eq!((asked, free), (needed, 256 - cached));
        }
        other => panic!("expected NoRoomAside, got {other:?}"),
    }
    assert_eq!(
        engine.cached_tokens(),
        cached,
        "the draft stays for its message"
    );
}

/// `llm.n_batch` below the 32 tokens a draft or an aside is evaluated at a time: they go in
/// the context's own batch size (llama.cpp aborts the process on a larger batch).
#[test]
fn drafts_and_asides_fit_a_small_batch_setting() {
    let (_dir, path) = tiny_model();
    let mut engine = LlmEngine::load(EngineSettings {
        n_batch: 8,
        ..cpu_settings(&path, 256)
    })
    .expect("load model");
    let never = AtomicBool::new(false);
    let draft = "a draft of a message long enough for several small batches";
    let stats = engine
        .prefill_until(draft, &never)
        .expect("the draft is evaluated")
        .expect("not stopped");
    assert_eq!(stats.prompt_tokens, engine.tokenize(draft).len());
    assert_eq!(engine.cached_tokens(), stats.prompt_tokens);
    let reply = engine
        .generate_aside(
            "notes on a conversation long enough for several small batches",
            &greedy(4),
            &never,
            &mut |_| {},
        )
        .expect("the aside");
    assert!(reply.stats.prompt_tokens > 32 && reply.stats.generated_tokens > 0);
}
