//! The chat's metrics: speed of the last reply, load and warm-up times, context use, the
//! load plan and llama.cpp's modules, registered here with their overlay rows and fed from [`LlmTimings`].

use bevy::diagnostic::{DiagnosticPath, Diagnostics};
use bevy::prelude::*;

use crate::AppSystems;
use crate::diagnostics::{MetricTexts, MetricsAppExt, OverlayRow, Section};
use crate::llm::state::{LlmStatus, LlmTimings};

/// The paths of the chat's metrics.
pub struct LlmDiagnostics;

impl LlmDiagnostics {
    pub const DECODE_TPS: DiagnosticPath = DiagnosticPath::const_new("llm/decode_tps");
    pub const PROMPT_TPS: DiagnosticPath = DiagnosticPath::const_new("llm/prompt_tps");
    pub const TIME_TO_FIRST_TOKEN: DiagnosticPath = DiagnosticPath::const_new("llm/ttft");
    pub const REPLY_TOKENS: DiagnosticPath = DiagnosticPath::const_new("llm/reply_tokens");
    pub const LOAD_TIME: DiagnosticPath = DiagnosticPath::const_new("llm/load_time");
    pub const WARM_UP_TIME: DiagnosticPath = DiagnosticPath::const_new("llm/warm_up_time");
    pub const CONTEXT_USED: DiagnosticPath = DiagnosticPath::const_new("llm/context_used");
    pub const N_THREADS: DiagnosticPath = DiagnosticPath::const_new("llm/n_threads");
    pub const N_GPU_LAYERS: DiagnosticPath = DiagnosticPath::const_new("llm/n_gpu_layers");

    /// Every path with its unit suffix.
    pub const ALL: [(DiagnosticPath, &'static str); 9] = [
        (Self::DECODE_TPS, " tok/s"),
        (Self::PROMPT_TPS, " tok/s"),
        (Self::TIME_TO_FIRST_TOKEN, " ms"),
        (Self::REPLY_TOKENS, " tokens"),
        (Self::LOAD_TIME, " ms"),
        (Self::WARM_UP_TIME, " ms"),
        (Self::CONTEXT_USED, " tokens"),
        (Self::N_THREADS, ""),
        (Self::N_GPU_LAYERS, ""),
    ];
}

const CONTEXT: &str = "context";
const PROFILE: &str = "profile";
const BACKENDS: &str = "llama.cpp";
const CHAT: &str = "chat";

pub(super) fn plugin(app: &mut App) {
    for (path, unit) in LlmDiagnostics::ALL {
        app.register_metric(path, unit);
    }
    use LlmDiagnostics as L;
    let row =
        |label, path, unit, digits| OverlayRow::metric(Section::Llm, label, path, unit, digits);
    app.add_overlay_row(
        row("decode", L::DECODE_TPS, " tok/s", 1)
            .compact()
            .plot([255, 255, 255])
            .csv("decode_tps"),
    )
    .add_overlay_row(row("prompt", L::PROMPT_TPS, " tok/s", 0))
    .add_overlay_row(row("first token", L::TIME_TO_FIRST_TOKEN, " ms", 0).compact())
    .add_overlay_row(row("reply", L::REPLY_TOKENS, " tokens", 0))
    .add_overlay_row(row("model load", L::LOAD_TIME, " ms", 0))
    .add_overlay_row(row("warm-up", L::WARM_UP_TIME, " ms", 0))
    .add_overlay_row(OverlayRow::text(Section::Llm, CONTEXT))
    .add_overlay_row(OverlayRow::text(Section::Llm, PROFILE))
    .add_overlay_row(OverlayRow::text(Section::Llm, BACKENDS))
    .add_overlay_row(OverlayRow::text(Section::Llm, CHAT));
    app.add_systems(
        Update,
        (record_timings, describe).in_set(AppSystems::ReadChannels),
    );
}

fn record_timings(timings: Res<LlmTimings>, mut diagnostics: Diagnostics) {
    if !timings.is_changed() {
        return;
    }
    let reply = timings.last_reply.as_ref();
    let plan = timings.plan.as_ref();
    let values = [
        (LlmDiagnostics::LOAD_TIME, timings.load_ms),
        (LlmDiagnostics::WARM_UP_TIME, timings.warm_up_ms),
        (
            LlmDiagnostics::CONTEXT_USED,
            (timings.n_ctx > 0).then_some(timings.context_used as f64),
        ),
        (
            LlmDiagnostics::N_THREADS,
            plan.map(|p| f64::from(p.n_threads)),
        ),
        (
            LlmDiagnostics::N_GPU_LAYERS,
            plan.map(|p| f64::from(p.n_gpu_layers)),
        ),
        (LlmDiagnostics::DECODE_TPS, reply.map(|r| r.decode_tps)),
        (LlmDiagnostics::PROMPT_TPS, reply.map(|r| r.prompt_tps)),
        (
            LlmDiagnostics::TIME_TO_FIRST_TOKEN,
            reply.map(|r| r.ttft_ms),
        ),
        (
            LlmDiagnostics::REPLY_TOKENS,
            reply.map(|r| r.generated_tokens as f64),
        ),
    ];
    for (path, value) in values {
        if let Some(value) = value {
            diagnostics.add_measurement(&path, || value);
        }
    }
}

/// The text rows: context use, the load plan and the chat's state.
fn describe(timings: Res<LlmTimings>, status: Res<LlmStatus>, mut texts: ResMut<MetricTexts>) {
    if !timings.is_changed() && !status.is_changed() {
        return;
    }
    let context = if timings.n_ctx > 0 {
        format!("{} / {}", timings.context_used, timings.n_ctx)
    } else {
        "n/a".into()
    };
    let profile = timings.plan.as_ref().map_or("n/a".into(), |p| {
        format!(
            "{}, {} threads, {} GPU layers",
            p.profile, p.n_threads, p.n_gpu_layers
        )
    });
    texts.0.insert(CONTEXT, context);
    texts.0.insert(PROFILE, profile);
    // The CPU module picked for this CPU and the GPU module in use, once a model loaded them.
    let backends = crate::llm::runtime::backends::loaded().map_or("n/a".into(), |b| b.short());
    texts.0.insert(BACKENDS, backends);
    texts.0.insert(CHAT, status.short().to_owned());
}
