//! Measurements: the registry through which every plugin publishes its metrics and overlay
//! rows, the process/system/GPU metrics (sampled off the frame loop), the F3 overlay's state
//! and the CSV recording. It depends on no other plugin.

pub mod metrics;
pub mod overlay;
pub mod recorder;
pub mod recording;
mod registry;
pub mod sampler;

use bevy::prelude::*;

pub use metrics::{LatestSample, SystemDiagnostics};
pub use overlay::DiagnosticsOverlay;
pub use recorder::{DiagnosticsRecorder, MetricHistory, ToggleRecording};
pub use registry::{MetricTexts, MetricsAppExt, OverlayRow, OverlayRows, RowValue, Section};

pub struct DiagnosticsPlugin;

impl Plugin for DiagnosticsPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((metrics::plugin, overlay::plugin, recorder::plugin));
    }
}
