//! LlmPlugin in a headless app: load -> warm-up -> ready -> streamed reply, on a real
//! (generated) GGUF through llama.cpp, driven by the same messages the chat panel sends.
use crate::support;

use crate::support::update_until;

use std::time::Duration;

use bevy::prelude::*;
use desktop_mate::config::{self, Overrides};
use desktop_mate::llm::{
    ChatHistory, ClearHistory, LlmStatus, LlmTimings, ReplyFinished, ReplyText, SendChat, StopReply,
};

#[derive(Resource, Default)]
struct Seen {
    streamed: String,
    finished: Vec<ReplyFinished>,
}

fn record(
    mut seen: ResMut<Seen>,
    mut text: MessageReader<ReplyText>,
    mut done: MessageReader<ReplyFinished>,
) {
    for ReplyText(piece) in text.read() {
        seen.streamed.push_str(piece);
    }
    seen.finished.extend(done.read().cloned());
}

fn app_with(settings: &str) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("tiny.gguf");
    support::write_tiny_llama(&model, 11);
    let path = dir.path().join("mascot.ron");
    let settings = settings.replace("MODEL", &support::ron_path(&model));
    std::fs::write(&path, settings).expect("write");
    let mut app = desktop_mate::headless_app(loaded_with_history(&path, dir.path()));
    app.init_resource::<Seen>().add_systems(Last, record);
    (app, dir)
}

/// Settings from `path`, with the chat history kept in `dir` (never the user's own).
fn loaded_with_history(path: &std::path::Path, dir: &std::path::Path) -> config::LoadedSettings {
    let mut loaded = config::load_with(Some(path), None, Overrides::default());
    loaded.settings.chat.history_file = Some(dir.join("history.jsonl"));
    loaded
}

#[test]
fn loads_warms_up_and_streams_a_reply() {
    let (mut app, dir) = app_with(
        "(llm: (model_path: Some(\"MODEL\"), n_ctx: 256, n_batch: 64, n_threads: 1, warm_up: true,
           sampling: (temperature: 0.0, max_tokens: 8)))",
    );
    app.update();
    assert!(matches!(
        *app.world().resource::<LlmStatus>(),
        LlmStatus::Loading | LlmStatus::WarmingUp | LlmStatus::Ready
    ));
    let ready = update_until(&mut app, Duration::from_secs(60), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    });
    assert!(ready, "status: {:?}", app.world().resource::<LlmStatus>());
    let timings = app.world().resource::<LlmTimings>().clone();
    assert!(timings.load_ms.expect("load time") > 0.0);
    assert!(timings.warm_up_ms.is_some(), "warm-up ran");
    assert!(
        timings.context_used > 0,
        "the system prompt is in the KV cache"
    );

    app.world_mut().write_message(SendChat("hello".into()));
    let done = update_until(&mut app, Duration::from_secs(60), |w| {
        !w.resource::<Seen>().finished.is_empty()
    });
    assert!(done, "reply finished");
    let seen = app.world().resource::<Seen>();
    let finished = seen.finished[0].clone();
    assert_eq!(
        seen.streamed, finished.text,
        "what streamed is what finished"
    );
    assert!(finished.stats.generated_tokens <= 8);
    assert!(finished.stats.reused_tokens > 0, "warm-up prefix reused");
    let history = app.world().resource::<ChatHistory>();
    assert_eq!(history.turns.len(), 1);
    assert_eq!(history.turns[0].user, "hello");
    assert!(history.streaming.is_none());
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::Ready);

    // The reply's emotion reaches the avatar through its command channel, as the table says.
    app.update();
    app.update();
    let settings = app.world().resource::<desktop_mate::config::Settings>();
    let emotion = finished
        .emotion
        .unwrap_or(desktop_mate::config::Emotion::Neutral);
    let intensity = if finished.emotion.is_some() {
        finished.intensity
    } else {
        100.0
    };
    let entry = settings.avatar.emotions[&emotion];
    let face = app.world().resource::<desktop_mate::avatar::FaceState>();
    assert!(
        face.commands_applied >= 2,
        "speech and emotion commands applied"
    );
    assert_eq!(
        face.expressions.target(entry.expression),
        desktop_mate::avatar::expression::emotion_weight(&entry, intensity),
        "{emotion:?} {intensity}"
    );

    // The turn reaches the history file (written off the frame loop) and a new app restores it.
    let file = dir.path().join("history.jsonl");
    let saved = update_until(&mut app, Duration::from_secs(10), |_| {
        std::fs::read_to_string(&file).is_ok_and(|t| t.lines().count() == 1)
    });
    assert!(saved, "history written");
    let settings_path = dir.path().join("mascot.ron");
    let mut restored = desktop_mate::headless_app(loaded_with_history(&settings_path, dir.path()));
    restored.update();
    let turns = &restored.world().resource::<ChatHistory>().turns;
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].user, "hello");

    restored.world_mut().write_message(ClearHistory);
    restored.update();
    assert!(restored.world().resource::<ChatHistory>().turns.is_empty());
    // The file is cleared by the history's writer thread, in order after any write.
    let cleared = update_until(&mut restored, Duration::from_secs(10), |_| !file.exists());
    assert!(cleared, "cleared");
    assert!(
        dir.path().join("history.jsonl.bak").exists(),
        "with a backup"
    );
}

#[test]
fn no_model_and_a_missing_model_are_states_not_crashes() {
    let (mut app, _dir) = app_with("()");
    app.update();
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::NoModel);
    // A message without a model is ignored, the app keeps running.
    app.world_mut().write_message(SendChat("hello".into()));
    app.update();
    assert!(app.world().resource::<ChatHistory>().turns.is_empty());

    config::edit_settings(app.world_mut(), |s| {
        s.llm.model_path = Some("/nonexistent/model.gguf".into());
    });
    app.update();
    match app.world().resource::<LlmStatus>() {
        LlmStatus::Error(message) => assert!(message.contains("does not exist"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_settings_change_reloads_the_model_in_the_background() {
    let (mut app, _dir) = app_with(
        "(llm: (model_path: Some(\"MODEL\"), n_ctx: 256, n_batch: 64, n_threads: 1, warm_up: false))",
    );
    assert!(update_until(&mut app, Duration::from_secs(60), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    }));
    assert_eq!(app.world().resource::<LlmTimings>().n_ctx, 256);
    // A change outside `llm` leaves the loaded model alone.
    let load_ms = app.world().resource::<LlmTimings>().load_ms;
    config::edit_settings(app.world_mut(), |s| s.persona.name = "Robin".into());
    app.update();
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::Ready);
    assert_eq!(app.world().resource::<LlmTimings>().load_ms, load_ms);
    // Sampling is read per message: changing it does not reload either.
    config::edit_settings(app.world_mut(), |s| s.llm.sampling.temperature = 0.3);
    app.update();
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::Ready);
    assert_eq!(app.world().resource::<LlmTimings>().load_ms, load_ms);
    config::edit_settings(app.world_mut(), |s| s.llm.n_ctx = 512);
    app.update();
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::Loading);
    assert!(update_until(&mut app, Duration::from_secs(60), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    }));
    assert_eq!(
        app.world().resource::<LlmTimings>().n_ctx,
        256,
        "capped at the model's trained context"
    );
}

/// The memory in the app: a statement is kept and recalled before a message of a later
/// conversation (by words: no embedding model here), and switching `memory.enabled` off takes
/// effect without a reload.
#[test]
fn the_memory_recalls_in_the_app_and_turns_off_live() {
    let (mut app, dir) = app_with(
        "(llm: (model_path: Some(\"MODEL\"), n_ctx: 256, n_batch: 64, n_threads: 1, warm_up: false,
           sampling: (temperature: 0.0, max_tokens: 4)), persona: (system_prompt: \"Be brief.\"))",
    );
    assert!(update_until(&mut app, Duration::from_secs(60), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    }));
    let load_ms = app.world().resource::<LlmTimings>().load_ms;
    let say = |app: &mut App, message: &str| {
        let before = app.world().resource::<ChatHistory>().turns.len();
        app.world_mut().write_message(SendChat(message.into()));
        let replied = update_until(app, Duration::from_secs(60), |w| {
            w.resource::<ChatHistory>().turns.len() > before
                && *w.resource::<LlmStatus>() == LlmStatus::Ready
        });
        assert!(
            replied,
            "{message:?}: {:?}, {:?}",
            app.world().resource::<LlmStatus>(),
            app.world().resource::<ChatHistory>().last_error
        );
        app.world().resource::<ChatHistory>().turns[before]
            .recalled
            .clone()
    };
    assert_eq!(say(&mut app, "I have a cat called Zyxquorp at home"), None);
    // A new conversation: while the statement is in the prompt it is not recalled.
    app.world_mut().write_message(ClearHistory);
    app.update();
    let recalled = say(&mut app, "tell me about Zyxquorp please").unwrap_or_default();
    assert!(recalled.contains("Zyxquorp"), "{recalled:?}");
    assert!(
        dir.path().join("memory.sqlite").is_file(),
        "beside the history"
    );

    config::edit_settings(app.world_mut(), |s| s.memory.enabled = false);
    for _ in 0..50 {
        app.update();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        say(&mut app, "tell me about Zyxquorp again"),
        None,
        "memory off"
    );
    assert_eq!(
        app.world().resource::<LlmTimings>().load_ms,
        load_ms,
        "the model was not reloaded"
    );
}

/// The Memory panel's requests (its own connection to memory.sqlite, on its own thread)
/// reach the chat's memory: an edited memory is recalled by its new words, a forgotten one
/// is not recalled, forget-all leaves nothing; each answer lists what the file holds.
#[test]
fn the_memory_panels_edits_and_forgets_reach_the_chat() {
    use desktop_mate::memory::browse::{
        BrowseAction, BrowseRequest, MemoryBrowser, MemoryView, Target,
    };
    let (mut app, dir) = app_with(
        "(llm: (model_path: Some(\"MODEL\"), n_ctx: 256, n_batch: 64, n_threads: 1, warm_up: false,
           sampling: (temperature: 0.0, max_tokens: 4)), persona: (name: \"Mate\", system_prompt: \"Be brief.\"))",
    );
    assert!(update_until(&mut app, Duration::from_secs(60), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    }));
    let say = |app: &mut App, message: &str| {
        let before = app.world().resource::<ChatHistory>().turns.len();
        app.world_mut().write_message(SendChat(message.into()));
        assert!(update_until(app, Duration::from_secs(60), |w| {
            w.resource::<ChatHistory>().turns.len() > before
                && *w.resource::<LlmStatus>() == LlmStatus::Ready
        }));
        app.world().resource::<ChatHistory>().turns[before]
            .recalled
            .clone()
            .unwrap_or_default()
    };
    let panel = |app: &mut App, action: BrowseAction| {
        let request = BrowseRequest {
            target: Target {
                database: dir.path().join("memory.sqlite"),
                persona: "Mate".into(),
            },
            query: String::new(),
            action,
        };
        let world = app.world_mut();
        world.resource_scope(|world, mut view: Mut<MemoryView>| {
            view.send(world.resource::<MemoryBrowser>(), request);
        });
        assert!(update_until(app, Duration::from_secs(20), |w| {
            w.resource::<MemoryView>().pending == 0
        }));
        let view = app.world().resource::<MemoryView>();
        (
            view.memories
                .iter()
                .map(|m| (m.id, m.text.clone()))
                .collect::<Vec<_>>(),
            view.message.clone(),
        )
    };
    say(&mut app, "I have a cat called Zyxquorp at home");
    say(&mut app, "I work nights at the Vlendor bakery");
    let (listed, _) = panel(&mut app, BrowseAction::List);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let (cat, _) = listed
        .iter()
        .find(|(_, text)| text.contains("Zyxquorp"))
        .cloned()
        .expect("the cat is kept");

    let (listed, message) = panel(
        &mut app,
        BrowseAction::Edit {
            id: cat,
            text: "The user has a dog called Plixnerd".into(),
        },
    );
    assert_eq!(message, Some(Ok("changed".into())));
    assert!(
        listed.iter().any(|(_, t)| t.contains("Plixnerd")),
        "{listed:?}"
    );
    let recalled = say(&mut app, "what about Plixnerd");
    assert!(recalled.contains("Plixnerd"), "{recalled:?}");
    assert!(
        say(&mut app, "what about Zyxquorp").is_empty(),
        "the old text is gone"
    );

    let (listed, _) = panel(&mut app, BrowseAction::Forget { id: cat });
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(say(&mut app, "what about Plixnerd").is_empty(), "forgotten");
    assert!(say(&mut app, "the Vlendor bakery").contains("Vlendor"));

    let (listed, message) = panel(&mut app, BrowseAction::ForgetAll);
    assert!(listed.is_empty());
    assert_eq!(message, Some(Ok("forgot all 1 memories of Mate".into())));
    assert!(say(&mut app, "the Vlendor bakery").is_empty());
    for name in ["memory.sqlite", "memory.sqlite-wal"] {
        let file = std::fs::read(dir.path().join(name)).unwrap_or_default();
        assert!(
            !file.windows(7).any(|w| w == b"Vlendor"),
            "forgotten text is gone from {name}"
        );
    }
}

/// In the app, with Gemma 3 270M: after a reply and `memory.notes_after_secs` without a
/// message, the chat model takes its notes on a task while the status stays Ready; a message
/// sent while they run stops them and is answered (never ignored), and the notes are taken at
/// the next pause.
#[test]
fn a_message_during_the_models_notes_stops_them_and_is_answered() {
    let Some(gemma) = support::gemma_model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    std::fs::write(
        &path,
        format!(
            "(llm: (model_path: Some(\"{}\"), n_ctx: 2048, n_threads: 2, warm_up: false,
               sampling: (temperature: 0.0, max_tokens: 12)),
              chat: (tag_grammar: false), memory: (notes_after_secs: 1))",
            support::ron_path(&gemma)
        ),
    )
    .expect("write");
    let mut app = desktop_mate::headless_app(loaded_with_history(&path, dir.path()));
    assert!(update_until(&mut app, Duration::from_secs(120), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    }));
    let answered = |app: &mut App, turns: usize| {
        update_until(app, Duration::from_secs(60), |w| {
            w.resource::<ChatHistory>().turns.len() == turns
                && *w.resource::<LlmStatus>() == LlmStatus::Ready
        })
    };
    app.world_mut().write_message(SendChat(
        "My name is Lea and I work nights at the hospital.".into(),
    ));
    assert!(answered(&mut app, 1));
    assert!(
        update_until(&mut app, Duration::from_secs(10), |w| {
            w.resource::<LlmTimings>().notes_running
        }),
        "the notes start after the pause"
    );
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::Ready);
    app.world_mut()
        .write_message(SendChat("What is my name?".into()));
    assert!(
        answered(&mut app, 2),
        "the message sent during the notes is answered: {:?}",
        app.world().resource::<ChatHistory>().last_error
    );
    let timings = app.world().resource::<LlmTimings>();
    assert_eq!(timings.notes_stopped, 1, "the notes gave way");
    assert_eq!(timings.notes, None);
    assert_eq!(
        app.world().resource::<ChatHistory>().turns[1].user,
        "What is my name?"
    );
    assert!(
        update_until(&mut app, Duration::from_secs(30), |w| {
            w.resource::<LlmTimings>().notes.is_some()
        }),
        "taken at the next pause"
    );
    assert!(!app.world().resource::<LlmTimings>().notes_running);
}

/// What is typed reaches the chat as drafts (`ChatDraft`, as the chat panel hands them):
/// the idle session evaluates the draft ahead, so the message it was answers evaluating one
/// token; a message sent while a long draft is being evaluated stops it (status Ready all
/// along) and is answered (Gemma 3 270M, the app's default tag grammar on).
#[test]
fn a_draft_is_evaluated_while_typed_and_a_message_stops_it() {
    use desktop_mate::llm::ChatDraft;
    let Some(gemma) = support::gemma_model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    std::fs::write(
        &path,
        format!(
            "(llm: (model_path: Some(\"{}\"), n_ctx: 2048, n_threads: 2, warm_up: false,
               sampling: (temperature: 0.0, max_tokens: 8)),
              memory: (notes_after_secs: 0))",
            support::ron_path(&gemma)
        ),
    )
    .expect("write");
    let mut app = desktop_mate::headless_app(loaded_with_history(&path, dir.path()));
    assert!(update_until(&mut app, Duration::from_secs(120), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    }));
    let answered = |app: &mut App, turns: usize| {
        update_until(app, Duration::from_secs(60), |w| {
            w.resource::<ChatHistory>().turns.len() == turns
                && *w.resource::<LlmStatus>() == LlmStatus::Ready
        })
    };
    app.world_mut()
        .write_message(SendChat("My name is Lea.".into()));
    assert!(answered(&mut app, 1));

    app.world_mut()
        .write_message(ChatDraft("What is my name?".into()));
    assert!(
        update_until(&mut app, Duration::from_secs(30), |w| {
            w.resource::<LlmTimings>().drafts_ahead == 1
        }),
        "the draft is evaluated ahead"
    );
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::Ready);
    app.world_mut()
        .write_message(SendChat("What is my name?".into()));
    assert!(answered(&mut app, 2));
    let stats = app
        .world()
        .resource::<LlmTimings>()
        .last_reply
        .clone()
        .expect("reply stats");
    assert_eq!(
        stats.prompt_tokens - stats.reused_tokens,
        1,
        "only the last token evaluated again: {stats:?}"
    );

    // A long draft (many 32-token batches), then a message before it is done.
    let long = "I was thinking about the sea, the boats, the harbour and the long evenings \
                of summer when the light stays until late and everyone walks along the water. "
        .repeat(6);
    app.world_mut().write_message(ChatDraft(long.clone()));
    app.update();
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::Ready);
    app.world_mut().write_message(SendChat("Thanks!".into()));
    assert!(
        answered(&mut app, 3),
        "the message sent during the draft is answered: {:?}",
        app.world().resource::<ChatHistory>().last_error
    );
    let timings = app.world().resource::<LlmTimings>();
    assert_eq!((timings.drafts_ahead, timings.drafts_stopped), (1, 1));
    assert_eq!(
        app.world().resource::<ChatHistory>().turns[2].user,
        "Thanks!"
    );

    // Stop pressed while a message waits for a draft to give way: neither is answered.
    app.world_mut()
        .write_message(ChatDraft(format!("And also: {long}")));
    app.update();
    app.world_mut()
        .write_message(SendChat("Never mind.".into()));
    app.update();
    assert_eq!(*app.world().resource::<LlmStatus>(), LlmStatus::Generating);
    app.world_mut().write_message(StopReply);
    assert!(update_until(&mut app, Duration::from_secs(30), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    }));
    for _ in 0..10 {
        app.update();
    }
    let history = app.world().resource::<ChatHistory>();
    assert_eq!(
        history.turns.len(),
        3,
        "the stopped message is not answered"
    );
    assert_eq!(history.streaming, None);
}
