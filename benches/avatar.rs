//! Expression commands through the real path: crossbeam channel -> ECS drain -> eased
//! FaceState -> MorphWeights on the default avatar's face mesh, in the headless mascot app.
//! The old app's TCP/JSON bridge did 64 msg/s one at a time and ~650 msg/s batched.
//! Also the Wayland input region made from a frame's alpha.
//! Run: `cargo bench --bench avatar`.

#[path = "../tests/it/support.rs"]
mod support;

use std::hint::black_box;

use bevy::mesh::morph::MorphWeights;
use bevy::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use desktop_mate::avatar::hit_mask::HitMask;
use desktop_mate::avatar::{AvatarCommand, AvatarCommands};
use desktop_mate::config::Expression;

/// The headless app with the default avatar's face; easing as fast as settings allow (100/s)
/// so a command is fully shown within one 10 ms frame.
fn app() -> (App, Entity, tempfile::TempDir) {
    let (mut app, face, dir) = support::face_app(
        "(avatar: (transition_speed: 100.0, auto_blink: false, head_motion: false))",
        std::time::Duration::from_millis(10),
    );
    app.update();
    (app, face, dir)
}

fn eye_joy(app: &App, face: Entity) -> f32 {
    app.world()
        .get::<MorphWeights>(face)
        .expect("weights")
        .weights()[2]
}

/// Frames from sending a command until the morph weight shows it.
fn latency_in_frames() -> u32 {
    let (mut app, face, _dir) = app();
    let commands = app.world().resource::<AvatarCommands>().clone();
    commands.send(AvatarCommand::SetExpression {
        expression: Expression::Joy,
        weight: 1.0,
    });
    let mut frames = 0;
    while eye_joy(&app, face) < 1.0 && frames < 100 {
        app.update();
        frames += 1;
    }
    frames
}

fn commands(c: &mut Criterion) {
    eprintln!(
        "latency: a command is fully shown {} frame(s) after it is sent",
        latency_in_frames()
    );
    let mut group = c.benchmark_group("avatar commands");
    let (mut app, face, _dir) = app();
    let commands = app.world().resource::<AvatarCommands>().clone();
    let mut toggle = false;
    group.throughput(Throughput::Elements(1));
    group.bench_function("single: send + frame + MorphWeights", |b| {
        b.iter(|| {
            toggle = !toggle;
            let weight = if toggle { 1.0 } else { 0.0 };
            commands.send(AvatarCommand::SetExpression {
                expression: Expression::Joy,
                weight,
            });
            app.update();
            assert_eq!(eye_joy(&app, face), weight);
        });
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("batch of 100 + frame + MorphWeights", |b| {
        b.iter(|| {
            for i in 0..100u8 {
                commands.send(AvatarCommand::SetExpression {
                    expression: Expression::Joy,
                    weight: f32::from(i) / 99.0,
                });
            }
            app.update();
            black_box(eye_joy(&app, face))
        });
    });
    group.finish();
}

/// The Wayland input region from a real frame's alpha: the default avatar as `snapshot`
/// draws it (docs/screenshots/mascot.png, 400x600 physical pixels with alpha). The window
/// makes it after each capture (every 0.3 s while something moves, 1 s idle), on the main
/// schedule.
fn input_region(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshots/mascot.png");
    let frame = image::open(path)
        .expect("docs/screenshots/mascot.png")
        .to_rgba8();
    let mask =
        HitMask::from_rgba(frame.width(), frame.height(), frame.as_raw()).expect("a hit mask");
    let rectangles = mask.rectangles(8, 1.0);
    let area: i64 = rectangles
        .iter()
        .map(|[_, _, w, h]| i64::from(*w) * i64::from(*h))
        .sum();
    eprintln!(
        "input region of the default avatar: {} rectangles, {area} of {} pixels",
        rectangles.len(),
        frame.width() * frame.height()
    );
    c.bench_function(
        "hit mask: input region of 8 px squares, 400x600 frame",
        |b| {
            b.iter(|| black_box(mask.rectangles(8, 1.0)));
        },
    );
}

criterion_group!(benches, commands, input_region);
criterion_main!(benches);
