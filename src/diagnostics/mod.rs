//! Measurements: the hardware report (CPU, RAM, NVIDIA GPU). The live metrics and the F3
//! overlay are added by the diagnostics work.

pub mod hardware;

use bevy::prelude::*;

pub struct DiagnosticsPlugin;

impl Plugin for DiagnosticsPlugin {
    fn build(&self, _app: &mut App) {}
}
