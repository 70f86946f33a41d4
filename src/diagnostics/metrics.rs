//! Our metrics as Bevy diagnostics: registered with units, fed from the sampler thread and the
//! LLM timings, read by the overlay through `DiagnosticsStore`.

use std::time::Duration;

use bevy::diagnostic::{
    Diagnostic, DiagnosticPath, Diagnostics, FrameTimeDiagnosticsPlugin, RegisterDiagnostic,
};
use bevy::prelude::*;
use crossbeam_channel::Receiver;

use super::sampler::{GpuUnavailableReason, Sample, spawn_sampler};
use crate::AppSystems;
use crate::config::Settings;
use crate::llm::LlmTimings;

pub(super) fn plugin(app: &mut App) {
    if !app.is_plugin_added::<FrameTimeDiagnosticsPlugin>() {
        app.add_plugins(FrameTimeDiagnosticsPlugin::default());
    }
    for (path, suffix) in MascotDiagnostics::ALL {
        app.register_diagnostic(Diagnostic::new(path).with_suffix(suffix));
    }
    app.init_resource::<LatestSample>();
    app.add_systems(Startup, start_sampler);
    app.add_systems(
        Update,
        (
            record_samples,
            record_llm_timings,
            record_avatar_commands.before(crate::avatar::drain_commands),
        )
            .in_set(AppSystems::ReadChannels),
    );
}

/// Expression commands applied per second (over the last second) and the commands waiting
/// in the channel before this frame drains it.
fn record_avatar_commands(
    time: Res<Time>,
    commands: Option<Res<crate::avatar::AvatarCommands>>,
    face: Option<Res<crate::avatar::FaceState>>,
    mut window: Local<(f64, u64)>,
    mut diagnostics: Diagnostics,
) {
    let (Some(commands), Some(face)) = (commands, face) else {
        return;
    };
    diagnostics.add_measurement(&MascotDiagnostics::AVATAR_QUEUE, || {
        commands.queue_depth() as f64
    });
    let (started, count_then) = &mut *window;
    let now = time.elapsed_secs_f64();
    if now - *started >= 1.0 {
        let rate = (face.commands_applied - *count_then) as f64 / (now - *started);
        diagnostics.add_measurement(&MascotDiagnostics::AVATAR_COMMANDS, || rate);
        *started = now;
        *count_then = face.commands_applied;
    }
}

/// The paths of our diagnostics.
pub struct MascotDiagnostics;

const MIB: f64 = 1024.0 * 1024.0;

impl MascotDiagnostics {
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
    pub const DECODE_TPS: DiagnosticPath = DiagnosticPath::const_new("llm/decode_tps");
    pub const PROMPT_TPS: DiagnosticPath = DiagnosticPath::const_new("llm/prompt_tps");
    pub const TIME_TO_FIRST_TOKEN: DiagnosticPath = DiagnosticPath::const_new("llm/ttft");
    pub const REPLY_TOKENS: DiagnosticPath = DiagnosticPath::const_new("llm/reply_tokens");
    pub const LOAD_TIME: DiagnosticPath = DiagnosticPath::const_new("llm/load_time");
    pub const WARM_UP_TIME: DiagnosticPath = DiagnosticPath::const_new("llm/warm_up_time");
    pub const CONTEXT_USED: DiagnosticPath = DiagnosticPath::const_new("llm/context_used");
    pub const N_THREADS: DiagnosticPath = DiagnosticPath::const_new("llm/n_threads");
    pub const N_GPU_LAYERS: DiagnosticPath = DiagnosticPath::const_new("llm/n_gpu_layers");
    pub const AVATAR_COMMANDS: DiagnosticPath =
        DiagnosticPath::const_new("avatar/commands_per_second");
    pub const AVATAR_QUEUE: DiagnosticPath = DiagnosticPath::const_new("avatar/queue_depth");

    /// Every path with its unit suffix.
    pub const ALL: [(DiagnosticPath, &'static str); 23] = [
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
        (Self::DECODE_TPS, " tok/s"),
        (Self::PROMPT_TPS, " tok/s"),
        (Self::TIME_TO_FIRST_TOKEN, " ms"),
        (Self::REPLY_TOKENS, " tokens"),
        (Self::LOAD_TIME, " ms"),
        (Self::WARM_UP_TIME, " ms"),
        (Self::CONTEXT_USED, " tokens"),
        (Self::N_THREADS, ""),
        (Self::N_GPU_LAYERS, ""),
        (Self::AVATAR_COMMANDS, " /s"),
        (Self::AVATAR_QUEUE, ""),
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
    diagnostics.add_measurement(&MascotDiagnostics::RSS, || sample.rss_bytes as f64 / MIB);
    diagnostics.add_measurement(&MascotDiagnostics::PROCESS_CPU, || {
        f64::from(sample.process_cpu_percent)
    });
    diagnostics.add_measurement(&MascotDiagnostics::RAM_USED, || {
        sample.ram_used_bytes as f64 / MIB
    });
    diagnostics.add_measurement(&MascotDiagnostics::RAM_TOTAL, || {
        sample.ram_total_bytes as f64 / MIB
    });
    if let Some(gpu) = &sample.gpu {
        diagnostics.add_measurement(&MascotDiagnostics::VRAM_USED, || {
            gpu.vram_used_bytes as f64 / MIB
        });
        diagnostics.add_measurement(&MascotDiagnostics::VRAM_TOTAL, || {
            gpu.vram_total_bytes as f64 / MIB
        });
        let optional = [
            (
                MascotDiagnostics::PROCESS_VRAM,
                gpu.process_vram_bytes.map(|b| b as f64 / MIB),
            ),
            (
                MascotDiagnostics::GPU_UTILIZATION,
                gpu.gpu_utilization_percent.map(f64::from),
            ),
            (
                MascotDiagnostics::GPU_MEMORY_UTILIZATION,
                gpu.memory_utilization_percent.map(f64::from),
            ),
            (
                MascotDiagnostics::GPU_TEMPERATURE,
                gpu.temperature_celsius.map(f64::from),
            ),
            (MascotDiagnostics::GPU_POWER, gpu.power_watts),
            (
                MascotDiagnostics::GPU_CLOCK,
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

fn record_llm_timings(timings: Option<Res<LlmTimings>>, mut diagnostics: Diagnostics) {
    let Some(timings) = timings.filter(|t| t.is_changed()) else {
        return;
    };
    let values = [
        (MascotDiagnostics::LOAD_TIME, timings.load_ms),
        (MascotDiagnostics::WARM_UP_TIME, timings.warm_up_ms),
        (
            MascotDiagnostics::CONTEXT_USED,
            (timings.n_ctx > 0).then_some(timings.context_used as f64),
        ),
        (
            MascotDiagnostics::N_THREADS,
            timings.plan.as_ref().map(|p| f64::from(p.n_threads)),
        ),
        (
            MascotDiagnostics::N_GPU_LAYERS,
            timings.plan.as_ref().map(|p| f64::from(p.n_gpu_layers)),
        ),
        (
            MascotDiagnostics::DECODE_TPS,
            timings.last_reply.as_ref().map(|r| r.decode_tps),
        ),
        (
            MascotDiagnostics::PROMPT_TPS,
            timings.last_reply.as_ref().map(|r| r.prompt_tps),
        ),
        (
            MascotDiagnostics::TIME_TO_FIRST_TOKEN,
            timings.last_reply.as_ref().map(|r| r.ttft_ms),
        ),
        (
            MascotDiagnostics::REPLY_TOKENS,
            timings
                .last_reply
                .as_ref()
                .map(|r| r.generated_tokens as f64),
        ),
    ];
    for (path, value) in values {
        if let Some(value) = value {
            diagnostics.add_measurement(&path, || value);
        }
    }
}
