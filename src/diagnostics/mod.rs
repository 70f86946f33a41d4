//! Measurements: live process/system/GPU/LLM metrics in Bevy's `DiagnosticsStore` (sampled off
//! the frame loop), the F3 overlay's state, and the hardware report used by `check`.

pub mod hardware;
pub mod metrics;
pub mod overlay;
pub mod recorder;
pub mod recording;
pub mod sampler;

use bevy::prelude::*;

pub use metrics::{LatestSample, MascotDiagnostics};
pub use overlay::DiagnosticsOverlay;
pub use recorder::{DiagnosticsRecorder, MetricHistory, ToggleRecording};

pub struct DiagnosticsPlugin;

impl Plugin for DiagnosticsPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((metrics::plugin, overlay::plugin, recorder::plugin));
    }
}
