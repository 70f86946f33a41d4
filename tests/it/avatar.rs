//! The avatar's ECS glue, headless with a manual clock: commands -> channel -> FaceState ->
//! MorphWeights on the mesh entities of the default avatar's rig.
use crate::support;

use std::time::Duration;

use bevy::mesh::morph::MorphWeights;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use desktop_mate::avatar::default_avatar::MORPH_TARGETS;
use desktop_mate::avatar::motion::Blink;
use desktop_mate::avatar::{AvatarCommand, AvatarCommands, FaceState};
use desktop_mate::config::{Emotion, Expression};

const FRAME: Duration = Duration::from_millis(20);

fn app_with_face(settings: &str) -> (App, Entity, tempfile::TempDir) {
    support::face_app(settings, FRAME)
}

fn morph(app: &App, face: Entity, target: &str) -> f32 {
    let index = MORPH_TARGETS
        .iter()
        .position(|t| *t == target)
        .expect("target");
    app.world()
        .get::<MorphWeights>(face)
        .expect("weights")
        .weights()[index]
}

#[test]
fn joy_80_eases_the_joy_morphs_to_0_8_and_reset_eases_them_back() {
    // 2 weight units per second: 0.04 per 20 ms frame.
    let (mut app, face, _dir) =
        app_with_face("(avatar: (transition_speed: 2.0, auto_blink: false, head_motion: false))");
    app.update(); // the first frame has no elapsed time
    let commands = app.world().resource::<AvatarCommands>().clone();
    commands.send(AvatarCommand::ShowEmotion {
        emotion: Emotion::Joy,
        intensity: 80.0,
    });
    let mut seen = Vec::new();
    for _ in 0..30 {
        app.update();
        seen.push(morph(&app, face, "eye_joy"));
    }
    // Eased, not snapped: the first frames climb by the configured step.
    assert!((seen[0] - 0.04).abs() < 1e-4, "first frame {}", seen[0]);
    assert!((seen[4] - 0.2).abs() < 1e-4, "fifth frame {}", seen[4]);
    assert!(seen.windows(2).all(|w| w[1] >= w[0]), "monotonic {seen:?}");
    assert!(
        (seen[29] - 0.8).abs() < 1e-4,
        "settles at 0.8: {}",
        seen[29]
    );
    assert!((morph(&app, face, "mouth_joy") - 0.8).abs() < 1e-4);
    assert_eq!(
        morph(&app, face, "mouth_angry"),
        0.0,
        "other morphs untouched"
    );
    assert_eq!(app.world().resource::<FaceState>().commands_applied, 1);

    commands.send(AvatarCommand::ResetExpressions);
    app.update();
    let after_one = morph(&app, face, "eye_joy");
    assert!(
        (after_one - 0.76).abs() < 1e-4,
        "eases back from 0.8: {after_one}"
    );
    for _ in 0..30 {
        app.update();
    }
    assert_eq!(morph(&app, face, "eye_joy"), 0.0);
}

#[test]
fn emotion_below_threshold_shows_nothing_and_a_new_mood_replaces_the_old() {
    let (mut app, face, _dir) =
        app_with_face("(avatar: (transition_speed: 100.0, auto_blink: false, head_motion: false))");
    app.update();
    let commands = app.world().resource::<AvatarCommands>().clone();
    // angry needs 40 in the default table.
    commands.send(AvatarCommand::ShowEmotion {
        emotion: Emotion::Angry,
        intensity: 39.0,
    });
    app.update();
    assert_eq!(morph(&app, face, "eye_angry"), 0.0);
    commands.send(AvatarCommand::SetExpression {
        expression: Expression::Sorrow,
        weight: 1.0,
    });
    app.update();
    assert_eq!(morph(&app, face, "mouth_sorrow"), 1.0);
    commands.send(AvatarCommand::ShowEmotion {
        emotion: Emotion::Surprised,
        intensity: 50.0,
    });
    app.update();
    assert_eq!(
        morph(&app, face, "mouth_sorrow"),
        0.0,
        "moods are exclusive"
    );
    // 50 x 1.2 = 0.6
    assert!((morph(&app, face, "mouth_surprised") - 0.6).abs() < 1e-4);
}

#[test]
fn auto_blink_over_a_simulated_minute_stays_within_its_bounds() {
    let (mut app, face, _dir) = app_with_face("(avatar: (head_motion: false))");
    app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
        10,
    )));
    app.update();
    let mut closings = 0;
    let mut closed_frames = 0;
    let mut was_closed = false;
    let mut last_start: Option<u32> = None;
    let mut gaps = Vec::new();
    for frame in 0..6_000u32 {
        app.update();
        let weight = morph(&app, face, "eye_close_l");
        assert_eq!(weight, morph(&app, face, "eye_close_r"), "both eyes blink");
        let closing = weight > 0.0;
        if closing && !was_closed {
            closings += 1;
            if let Some(start) = last_start {
                gaps.push((frame - start) as f32 * 0.01);
            }
            last_start = Some(frame);
        }
        if weight >= 1.0 {
            closed_frames += 1;
        }
        was_closed = closing;
    }
    assert!(
        (12..=30).contains(&closings),
        "{closings} blinks in a minute"
    );
    for gap in &gaps {
        assert!(
            (Blink::MIN_INTERVAL..=Blink::MAX_INTERVAL + Blink::duration() + 0.02).contains(gap),
            "interval {gap} s"
        );
    }
    let hold = closed_frames as f32 * 0.01 / closings as f32;
    assert!(
        (0.02..=0.05).contains(&hold),
        "fully closed {hold} s per blink"
    );

    // Switched off through the same command type: no more blinks.
    let commands = app.world().resource::<AvatarCommands>().clone();
    commands.send(AvatarCommand::SetAutoBlink(false));
    for _ in 0..60 {
        app.update(); // let a running blink finish
    }
    for _ in 0..1_000 {
        app.update();
        assert_eq!(morph(&app, face, "eye_close_l"), 0.0);
    }
}

#[test]
fn streamed_text_moves_the_mouth_and_stop_closes_it() {
    let (mut app, face, _dir) = app_with_face("(avatar: (auto_blink: false, head_motion: false))");
    app.update();
    let commands = app.world().resource::<AvatarCommands>().clone();
    commands.send(AvatarCommand::Speak("Hello, how are you? Oh wow!".into()));
    let mut opened = 0;
    for _ in 0..40 {
        app.update();
        if MORPH_TARGETS[6..=10]
            .iter()
            .any(|t| morph(&app, face, t) > 0.3)
        {
            opened += 1;
        }
    }
    assert!(opened > 10, "mouth opened in {opened} of 40 frames");
    commands.send(AvatarCommand::StopSpeaking);
    for _ in 0..20 {
        app.update();
    }
    for target in &MORPH_TARGETS[6..=10] {
        assert_eq!(morph(&app, face, target), 0.0, "{target} closed");
    }
}

#[test]
fn expression_commands_are_counted_for_the_diagnostics() {
    use bevy::diagnostic::DiagnosticsStore;
    use desktop_mate::avatar::AvatarDiagnostics;
    let (mut app, _face, _dir) = app_with_face("()");
    app.update();
    let commands = app.world().resource::<AvatarCommands>().clone();
    for i in 0..50 {
        commands.send(AvatarCommand::SetExpression {
            expression: Expression::Joy,
            weight: i as f32 / 50.0,
        });
    }
    app.update();
    let value = |app: &App, path: &bevy::diagnostic::DiagnosticPath| -> Option<f64> {
        app.world()
            .resource::<DiagnosticsStore>()
            .get(path)
            .and_then(|d| d.value())
    };
    assert_eq!(value(&app, &AvatarDiagnostics::QUEUE), Some(50.0));
    assert_eq!(
        app.world().resource::<AvatarCommands>().queue_depth(),
        0,
        "all drained"
    );
    for _ in 0..60 {
        app.update(); // 1.2 s of 20 ms frames
    }
    let rate = value(&app, &AvatarDiagnostics::COMMANDS).expect("a rate after 1 s");
    assert!(rate > 20.0 && rate <= 50.0, "{rate} commands/s");
    assert_eq!(value(&app, &AvatarDiagnostics::QUEUE), Some(0.0));
}

#[test]
fn a_dropped_vrm_becomes_the_avatar_and_is_saved_while_other_files_are_refused() {
    use bevy::window::FileDragAndDrop;
    use desktop_mate::avatar::AvatarError;
    use desktop_mate::config::{AppState, Settings, StateFile};
    let (mut app, _face, dir) = app_with_face("(persona: (name: \"Kept\"))");
    app.update();
    let settings_file = dir.path().join("mascot.ron");
    let before = std::fs::read_to_string(&settings_file).expect("settings");

    let picture = dir.path().join("holiday.png");
    app.world_mut().write_message(FileDragAndDrop::DroppedFile {
        window: Entity::PLACEHOLDER,
        path_buf: picture.clone(),
    });
    app.update();
    let error = app.world().resource::<AvatarError>().0.clone();
    assert!(error.is_some_and(|e| e.contains("holiday.png is not a .vrm or .vrma file")));
    assert_eq!(
        std::fs::read_to_string(&settings_file).expect("settings"),
        before
    );

    let avatar = dir.path().join("Friend.VRM");
    app.world_mut().write_message(FileDragAndDrop::DroppedFile {
        window: Entity::PLACEHOLDER,
        path_buf: avatar.clone(),
    });
    app.update();
    let world = app.world();
    assert_eq!(
        world
            .resource::<AppState>()
            .avatar(world.resource::<Settings>()),
        Some(avatar.clone()),
        "in force at once"
    );
    let (saved, problem) = StateFile::beside(Some(&settings_file)).load();
    assert_eq!(problem, None);
    assert_eq!(
        saved.avatar.as_deref(),
        Some(avatar.as_path()),
        "kept for the next run"
    );
    assert_eq!(
        std::fs::read_to_string(&settings_file).expect("settings"),
        before,
        "the user's settings file is not rewritten"
    );
}
