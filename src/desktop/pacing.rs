//! Frame pacing: the mascot draws at most `window.idle_fps` frames per second while only its
//! idle motions run (blink, breathing, head turns), and up to `window.active_fps` while an
//! expression changes, the mouth moves, a reply streams or a mouse button is held.
//!
//! Winit's reactive mode wakes the app on input; on its own it did not bound the frame rate
//! here (X11 + Mesa: 31 fps drawn with a 10 fps wait), so a limiter at the end of each frame
//! sleeps out the rest of the frame period, as bevy_framepace does. With pipelined rendering
//! the render of the previous frame runs meanwhile.

use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::winit::{UpdateMode, WinitSettings};

use crate::avatar::FaceState;
use crate::config::Settings;
use crate::llm::LlmStatus;

pub(super) fn plugin(app: &mut App) {
    let settings = app.world().resource::<Settings>();
    let pacing = winit_settings(settings);
    app.insert_resource(pacing)
        .add_systems(Last, limit_frame_rate);
}

fn period(fps: f32) -> Duration {
    Duration::from_secs_f32(1.0 / fps.clamp(1.0, 240.0))
}

/// Wake on input at once, and at least at the idle rate.
fn winit_settings(settings: &Settings) -> WinitSettings {
    WinitSettings {
        focused_mode: UpdateMode::reactive(period(settings.window.active_fps)),
        unfocused_mode: UpdateMode::reactive_low_power(period(settings.window.idle_fps)),
    }
}

/// The frame rate cap for this frame.
pub fn frame_cap(settings: &Settings, animating: bool) -> f32 {
    if animating {
        settings.window.active_fps
    } else {
        settings.window.idle_fps
    }
}

fn limit_frame_rate(
    settings: Res<Settings>,
    face: Option<Res<FaceState>>,
    status: Option<Res<LlmStatus>>,
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    mut last: Local<Option<Instant>>,
) {
    let animating = face.is_some_and(|f| f.expressions.moving() || f.lips.active())
        || status.is_some_and(|s| *s == LlmStatus::Generating)
        || buttons.is_some_and(|b| b.get_pressed().next().is_some());
    let period = period(frame_cap(&settings, animating));
    if let Some(started) = *last {
        let elapsed = started.elapsed();
        if elapsed < period {
            std::thread::sleep(period - elapsed);
        }
    }
    *last = Some(Instant::now());
}
