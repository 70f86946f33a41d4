//! The avatar's metrics: expression commands applied per second and the commands waiting in
//! the channel, registered here with their overlay rows.

use bevy::diagnostic::{DiagnosticPath, Diagnostics};
use bevy::prelude::*;

use super::commands::{AvatarCommands, FaceState, drain_commands};
use crate::AppSystems;
use crate::diagnostics::{MetricsAppExt, OverlayRow, Section};

/// The paths of the avatar's metrics.
pub struct AvatarDiagnostics;

impl AvatarDiagnostics {
    pub const COMMANDS: DiagnosticPath = DiagnosticPath::const_new("avatar/commands_per_second");
    pub const QUEUE: DiagnosticPath = DiagnosticPath::const_new("avatar/queue_depth");

    /// Every path with its unit suffix.
    pub const ALL: [(DiagnosticPath, &'static str); 2] =
        [(Self::COMMANDS, " /s"), (Self::QUEUE, "")];
}

pub(super) fn plugin(app: &mut App) {
    for (path, unit) in AvatarDiagnostics::ALL {
        app.register_metric(path, unit);
    }
    app.add_overlay_row(OverlayRow::metric(
        Section::Avatar,
        "expressions",
        AvatarDiagnostics::COMMANDS,
        " /s",
        1,
    ))
    .add_overlay_row(OverlayRow::metric(
        Section::Avatar,
        "expression queue",
        AvatarDiagnostics::QUEUE,
        "",
        0,
    ));
    app.add_systems(
        Update,
        record_commands
            .before(drain_commands)
            .in_set(AppSystems::ReadChannels),
    );
}

/// Expression commands applied per second (over the last second) and the commands waiting
/// in the channel before this frame drains it.
fn record_commands(
    time: Res<Time>,
    commands: Res<AvatarCommands>,
    face: Res<FaceState>,
    mut window: Local<(f64, u64)>,
    mut diagnostics: Diagnostics,
) {
    diagnostics.add_measurement(&AvatarDiagnostics::QUEUE, || commands.queue_depth() as f64);
    let (started, count_then) = &mut *window;
    let now = time.elapsed_secs_f64();
    if now - *started >= 1.0 {
        let rate = (face.commands_applied - *count_then) as f64 / (now - *started);
        diagnostics.add_measurement(&AvatarDiagnostics::COMMANDS, || rate);
        *started = now;
        *count_then = face.commands_applied;
    }
}
