//! The voice's metrics: real-time factor and synthesis time of the last sentence, registered
//! here with their overlay rows.

use bevy::diagnostic::{DiagnosticPath, Diagnostics};
use bevy::prelude::*;

use super::output::VoiceTimings;
use crate::AppSystems;
use crate::diagnostics::{MetricsAppExt, OverlayRow, Section};

/// The paths of the voice's metrics.
pub struct VoiceDiagnostics;

impl VoiceDiagnostics {
    pub const REAL_TIME_FACTOR: DiagnosticPath =
        DiagnosticPath::const_new("voice/real_time_factor");
    pub const SYNTHESIS_MS: DiagnosticPath = DiagnosticPath::const_new("voice/synthesis_ms");

    /// Every path with its unit suffix.
    pub const ALL: [(DiagnosticPath, &'static str); 2] =
        [(Self::REAL_TIME_FACTOR, ""), (Self::SYNTHESIS_MS, " ms")];
}

pub(super) fn plugin(app: &mut App) {
    for (path, unit) in VoiceDiagnostics::ALL {
        app.register_metric(path, unit);
    }
    app.add_overlay_row(OverlayRow::metric(
        Section::Voice,
        "voice RTF",
        VoiceDiagnostics::REAL_TIME_FACTOR,
        "",
        2,
    ))
    .add_overlay_row(OverlayRow::metric(
        Section::Voice,
        "sentence synthesis",
        VoiceDiagnostics::SYNTHESIS_MS,
        " ms",
        0,
    ))
    .add_systems(Update, record.in_set(AppSystems::Apply));
}

/// A measurement per sentence spoken.
fn record(timings: Res<VoiceTimings>, mut seen: Local<u64>, mut diagnostics: Diagnostics) {
    if timings.sentences_spoken == *seen {
        return;
    }
    *seen = timings.sentences_spoken;
    if let Some(rtf) = timings.real_time_factor {
        diagnostics.add_measurement(&VoiceDiagnostics::REAL_TIME_FACTOR, || rtf);
    }
    if let Some(ms) = timings.last_synthesis_ms {
        diagnostics.add_measurement(&VoiceDiagnostics::SYNTHESIS_MS, || ms);
    }
}
