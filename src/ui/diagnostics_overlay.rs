//! The F3 overlay: live values with units, red when a resource runs short. Hidden, it draws
//! nothing and takes no clicks.

use bevy::diagnostic::{DiagnosticPath, DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::diagnostics::{DiagnosticsOverlay, LatestSample, MascotDiagnostics as M};
use crate::llm::{LlmStatus, LlmTimings};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(EguiPrimaryContextPass, overlay);
}

const RED: egui::Color32 = egui::Color32::from_rgb(230, 80, 70);
const AMBER: egui::Color32 = egui::Color32::from_rgb(230, 180, 60);

fn value(store: &DiagnosticsStore, path: &DiagnosticPath) -> Option<f64> {
    store.get(path).and_then(|d| d.smoothed())
}

fn overlay(
    mut contexts: EguiContexts,
    overlay: Option<Res<DiagnosticsOverlay>>,
    store: Res<DiagnosticsStore>,
    latest: Res<LatestSample>,
    timings: Option<Res<LlmTimings>>,
    status: Option<Res<LlmStatus>>,
) -> Result {
    if !overlay.is_some_and(|o| o.visible) {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    egui::Window::new("Diagnostics (F3)")
        .id(egui::Id::new("diagnostics_overlay"))
        .anchor(egui::Align2::RIGHT_TOP, [-6.0, 6.0])
        .resizable(false)
        .collapsible(true)
        .show(ctx, |ui| {
            egui::Grid::new("metrics")
                .num_columns(2)
                .striped(true)
                .show(ui, |ui| {
                    let row = |ui: &mut egui::Ui,
                               name: &str,
                               text: String,
                               color: Option<egui::Color32>| {
                        ui.label(name);
                        match color {
                            Some(color) => ui.colored_label(color, text),
                            None => ui.monospace(text),
                        };
                        ui.end_row();
                    };
                    let fmt = |v: Option<f64>, unit: &str, digits: usize| {
                        v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}{unit}"))
                    };
                    let fps = value(&store, &FrameTimeDiagnosticsPlugin::FPS);
                    row(ui, "FPS", fmt(fps, "", 0), None);
                    row(
                        ui,
                        "frame time",
                        fmt(
                            value(&store, &FrameTimeDiagnosticsPlugin::FRAME_TIME),
                            " ms",
                            1,
                        ),
                        None,
                    );
                    row(ui, "RSS", fmt(value(&store, &M::RSS), " MiB", 0), None);
                    row(
                        ui,
                        "CPU",
                        fmt(value(&store, &M::PROCESS_CPU), " %", 0),
                        None,
                    );
                    let ram = value(&store, &M::RAM_USED).zip(value(&store, &M::RAM_TOTAL));
                    row(
                        ui,
                        "RAM",
                        ram.map_or("n/a".into(), |(u, t)| format!("{u:.0} / {t:.0} MiB")),
                        ram.and_then(|(u, t)| (u > 0.9 * t).then_some(RED)),
                    );
                    let vram = value(&store, &M::VRAM_USED).zip(value(&store, &M::VRAM_TOTAL));
                    row(
                        ui,
                        "VRAM",
                        vram.map_or("n/a".into(), |(u, t)| format!("{u:.0} / {t:.0} MiB")),
                        vram.and_then(|(u, t)| {
                            if u > 0.9 * t {
                                Some(RED)
                            } else if u > 0.75 * t {
                                Some(AMBER)
                            } else {
                                None
                            }
                        }),
                    );
                    row(
                        ui,
                        "GPU",
                        fmt(value(&store, &M::GPU_UTILIZATION), " %", 0),
                        None,
                    );
                    row(
                        ui,
                        "GPU temp",
                        fmt(value(&store, &M::GPU_TEMPERATURE), " °C", 0),
                        None,
                    );
                    row(
                        ui,
                        "GPU power",
                        fmt(value(&store, &M::GPU_POWER), " W", 0),
                        None,
                    );
                    row(
                        ui,
                        "decode",
                        fmt(value(&store, &M::DECODE_TPS), " tok/s", 1),
                        None,
                    );
                    row(
                        ui,
                        "prompt",
                        fmt(value(&store, &M::PROMPT_TPS), " tok/s", 0),
                        None,
                    );
                    row(
                        ui,
                        "first token",
                        fmt(value(&store, &M::TIME_TO_FIRST_TOKEN), " ms", 0),
                        None,
                    );
                    row(
                        ui,
                        "reply",
                        fmt(value(&store, &M::REPLY_TOKENS), " tokens", 0),
                        None,
                    );
                    row(
                        ui,
                        "model load",
                        fmt(value(&store, &M::LOAD_TIME), " ms", 0),
                        None,
                    );
                    row(
                        ui,
                        "warm-up",
                        fmt(value(&store, &M::WARM_UP_TIME), " ms", 0),
                        None,
                    );
                    if let Some(timings) = &timings {
                        row(
                            ui,
                            "context",
                            if timings.n_ctx > 0 {
                                format!("{} / {}", timings.context_used, timings.n_ctx)
                            } else {
                                "n/a".into()
                            },
                            None,
                        );
                        row(
                            ui,
                            "profile",
                            timings.plan.as_ref().map_or("n/a".into(), |p| {
                                format!(
                                    "{}, {} threads, {} GPU layers",
                                    p.profile, p.n_threads, p.n_gpu_layers
                                )
                            }),
                            None,
                        );
                    }
                    if let Some(status) = &status {
                        row(ui, "chat", status.label(), None);
                    }
                });
            if let Some(reason) = &latest.gpu_unavailable_reason {
                ui.weak(reason);
            }
        });
    Ok(())
}
