//! The process, system and GPU metrics: registered with their units and overlay rows, fed
//! from the sampler thread. (The chat and the avatar register their own in their plugins.)

use std::time::Duration;

use bevy::diagnostic::{DiagnosticPath, Diagnostics, FrameTimeDiagnosticsPlugin};
use bevy::prelude::*;
use crossbeam_channel::Receiver;

use super::registry::{MetricsAppExt, OverlayRow, RowValue, Section};
use super::sampler::{GpuUnavailableReason, Sample, spawn_sampler};
use crate::AppSystems;
use crate::config::Settings;

pub(super) fn plugin(app: &mut App) {
    if !app.is_plugin_added::<FrameTimeDiagnosticsPlugin>() {
        app.add_plugins(FrameTimeDiagnosticsPlugin::default());
    }
    for (path, unit) in SystemDiagnostics::ALL {
        app.register_metric(path, unit);
    }
    let share = |label, used, total, amber, red| OverlayRow {
        value: RowValue::Share {
            used,
            total,
            unit: " MiB",
            amber,
            red,
        },
        ..OverlayRow::text(Section::Process, label)
    };
    use SystemDiagnostics as S;
    app.add_overlay_row(
        OverlayRow::metric(
            Section::Frame,
            "FPS",
            FrameTimeDiagnosticsPlugin::FPS,
            "",
            0,
        )
        .compact()
        .plot([144, 238, 144])
        .csv("fps"),
    )
    .add_overlay_row(OverlayRow::metric(
        Section::Frame,
        "frame time",
        FrameTimeDiagnosticsPlugin::FRAME_TIME,
        " ms",
        1,
    ))
    .add_overlay_row(
        OverlayRow::metric(Section::Process, "RSS", S::RSS, " MiB", 0)
            .compact()
            .plot([140, 140, 250]),
    )
    .add_overlay_row(OverlayRow::metric(Section::Process, "CPU", S::PROCESS_CPU, " %", 0).compact())
    .add_overlay_row(share("RAM", S::RAM_USED, S::RAM_TOTAL, 0.9, 0.9))
    .add_overlay_row(
        OverlayRow {
            section: Section::Gpu,
            ..share("VRAM", S::VRAM_USED, S::VRAM_TOTAL, 0.75, 0.9)
        }
        .compact()
        .plot([230, 180, 60]),
    )
    .add_overlay_row(
        OverlayRow::metric(Section::Gpu, "GPU", S::GPU_UTILIZATION, " %", 0)
            .compact()
            .plot([255, 128, 128]),
    )
    .add_overlay_row(OverlayRow::metric(
        Section::Gpu,
        "GPU temp",
        S::GPU_TEMPERATURE,
        " °C",
        0,
    ))
    .add_overlay_row(OverlayRow::metric(
        Section::Gpu,
        "GPU power",
        S::GPU_POWER,
        " W",
        0,
    ));
    app.init_resource::<LatestSample>();
    app.add_systems(Startup, start_sampler);
    app.add_systems(Update, record_samples.in_set(AppSystems::ReadChannels));
}

/// The paths of the process, system and GPU metrics.
pub struct SystemDiagnostics;

const MIB: f64 = 1024.0 * 1024.0;

impl SystemDiagnostics {
    pub const RSS: DiagnosticPath = DiagnosticPath::const_new("process/rss");
    pub const PROCESS_CPU: DiagnosticPath = DiagnosticPath::const_new("process/cpu");
    pub const RAM_USED: DiagnosticPath = DiagnosticPath::const_new("system/ram_used");
    pub const RAM_TOTAL: DiagnosticPath = DiagnosticPath::const_new("system/ram_total");
    pub const VRAM_USED: DiagnosticPath = DiagnosticPath::const_new("gpu/vram_used");
    pub const VRAM_TOTAL: DiagnosticPath = DiagnosticPath::const_new("gpu/vram_total");
    pub const PROCESS_VRAM: DiagnosticPath = DiagnosticPath::const_new("gpu/process_vram");
    pub const GPU_UTILIZATION: DiagnosticPath = DiagnosticPath::const_new("gpu/utilization");
    pub const GPU_MEMORY_UTILIZATION: DiagnosticPath =
        DiagnosticPath::const_new("gpu/memory_utilization");
    pub const GPU_TEMPERATURE: DiagnosticPath = DiagnosticPath::const_new("gpu/temperature");
    pub const GPU_POWER: DiagnosticPath = DiagnosticPath::const_new("gpu/power");
    pub const GPU_CLOCK: DiagnosticPath = DiagnosticPath::const_new("gpu/graphics_clock");

    /// Every path with its unit suffix.
    pub const ALL: [(DiagnosticPath, &'static str); 12] = [
        (Self::RSS, " MiB"),
        (Self::PROCESS_CPU, " %"),
        (Self::RAM_USED, " MiB"),
        (Self::RAM_TOTAL, " MiB"),
        (Self::VRAM_USED, " MiB"),
        (Self::VRAM_TOTAL, " MiB"),
        (Self::PROCESS_VRAM, " MiB"),
        (Self::GPU_UTILIZATION, " %"),
        (Self::GPU_MEMORY_UTILIZATION, " %"),
        (Self::GPU_TEMPERATURE, " °C"),
        (Self::GPU_POWER, " W"),
        (Self::GPU_CLOCK, " MHz"),
    ];

    /// The GPU paths: "n/a" on machines without an NVIDIA GPU.
    pub const GPU: [DiagnosticPath; 8] = [
        Self::VRAM_USED,
        Self::VRAM_TOTAL,
        Self::PROCESS_VRAM,
        Self::GPU_UTILIZATION,
        Self::GPU_MEMORY_UTILIZATION,
        Self::GPU_TEMPERATURE,
        Self::GPU_POWER,
        Self::GPU_CLOCK,
    ];
}

/// The newest sample (for the overlay, CSV recording and tests).
#[derive(Resource, Debug, Default)]
pub struct LatestSample {
    pub sample: Option<Sample>,
    pub gpu_unavailable_reason: Option<String>,
    samples: Option<Receiver<Sample>>,
    reason: Option<GpuUnavailableReason>,
}

fn start_sampler(settings: Res<Settings>, mut latest: ResMut<LatestSample>) {
    let interval =
        Duration::from_secs_f32(settings.diagnostics.sample_interval_secs.clamp(0.1, 60.0));
    let (samples, reason) = spawn_sampler(interval);
    latest.samples = Some(samples);
    latest.reason = Some(reason);
}

fn record_samples(mut latest: ResMut<LatestSample>, mut diagnostics: Diagnostics) {
    let Some(samples) = &latest.samples else {
        return;
    };
    let Some(sample) = samples.try_iter().last() else {
        return;
    };
    if latest.gpu_unavailable_reason.is_none() {
        latest.gpu_unavailable_reason = latest
            .reason
            .as_ref()
            .and_then(|r| r.get().cloned())
            .flatten();
    }
    diagnostics.add_measurement(&SystemDiagnostics::RSS, || sample.rss_bytes as f64 / MIB);
    diagnostics.add_measurement(&SystemDiagnostics::PROCESS_CPU, || {
        f64::from(sample.process_cpu_percent)
    });
    diagnostics.add_measurement(&SystemDiagnostics::RAM_USED, || {
        sample.ram_used_bytes as f64 / MIB
    });
    diagnostics.add_measurement(&SystemDiagnostics::RAM_TOTAL, || {
        sample.ram_total_bytes as f64 / MIB
    });
    if let Some(gpu) = &sample.gpu {
        diagnostics.add_measurement(&SystemDiagnostics::VRAM_USED, || {
            gpu.vram_used_bytes as f64 / MIB
        });
        diagnostics.add_measurement(&SystemDiagnostics::VRAM_TOTAL, || {
            gpu.vram_total_bytes as f64 / MIB
        });
        let optional = [
            (
                SystemDiagnostics::PROCESS_VRAM,
                gpu.process_vram_bytes.map(|b| b as f64 / MIB),
            ),
            (
                SystemDiagnostics::GPU_UTILIZATION,
                gpu.gpu_utilization_percent.map(f64::from),
            ),
            (
                SystemDiagnostics::GPU_MEMORY_UTILIZATION,
                gpu.memory_utilization_percent.map(f64::from),
            ),
            (
                SystemDiagnostics::GPU_TEMPERATURE,
                gpu.temperature_celsius.map(f64::from),
            ),
            (SystemDiagnostics::GPU_POWER, gpu.power_watts),
            (
                SystemDiagnostics::GPU_CLOCK,
                gpu.graphics_clock_mhz.map(f64::from),
            ),
        ];
        for (path, value) in optional {
            if let Some(value) = value {
                diagnostics.add_measurement(&path, || value);
            }
        }
    }
    latest.sample = Some(sample);
}
