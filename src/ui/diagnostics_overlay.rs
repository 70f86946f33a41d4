//! The F3 overlay: live values with units, red when a resource runs short. Hidden, it draws
//! nothing and takes no clicks.

use bevy::diagnostic::{DiagnosticPath, DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use std::collections::VecDeque;

use crate::config::{Settings, SettingsFile};
use crate::diagnostics::{
    DiagnosticsOverlay, DiagnosticsRecorder, LatestSample, MascotDiagnostics as M, MetricHistory,
    ToggleRecording,
};
use crate::llm::{LlmStatus, LlmTimings};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(EguiPrimaryContextPass, overlay);
}

const RED: egui::Color32 = egui::Color32::from_rgb(230, 80, 70);
const AMBER: egui::Color32 = egui::Color32::from_rgb(230, 180, 60);

fn value(store: &DiagnosticsStore, path: &DiagnosticPath) -> Option<f64> {
    store.get(path).and_then(|d| d.smoothed())
}

/// A small line plot of the last minute (one point per sample).
fn sparkline(ui: &mut egui::Ui, series: &VecDeque<f64>, color: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(90.0, 16.0), egui::Sense::hover());
    if series.len() < 2 {
        return;
    }
    let (min, max) = series
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = (max - min).max(1e-6);
    let points: Vec<egui::Pos2> = series
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = rect.left() + rect.width() * i as f32 / (series.len() - 1) as f32;
            let y = rect.bottom() - rect.height() * ((v - min) / span) as f32;
            egui::pos2(x, y)
        })
        .collect();
    ui.painter()
        .add(egui::Shape::line(points, egui::Stroke::new(1.5, color)));
}

fn overlay(
    mut contexts: EguiContexts,
    overlay: Option<ResMut<DiagnosticsOverlay>>,
    history: Res<MetricHistory>,
    recorder: Res<DiagnosticsRecorder>,
    mut record: MessageWriter<ToggleRecording>,
    store: Res<DiagnosticsStore>,
    latest: Res<LatestSample>,
    timings: Option<Res<LlmTimings>>,
    status: Option<Res<LlmStatus>>,
    mut settings: ResMut<Settings>,
    mut file: ResMut<SettingsFile>,
    mut drag: Local<(Option<egui::Pos2>, bool)>,
) -> Result {
    let Some(mut overlay) = overlay.filter(|o| o.visible) else {
        return Ok(());
    };
    let ctx = contexts.ctx_mut()?;
    if overlay.compact {
        let fmt = |v: Option<f64>, unit: &str| {
            v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}{unit}"))
        };
        let line = format!(
            "FPS {} · RSS {} · CPU {} · VRAM {} · GPU {} · {} · TTFT {}",
            fmt(value(&store, &FrameTimeDiagnosticsPlugin::FPS), ""),
            fmt(value(&store, &M::RSS), " MiB"),
            fmt(value(&store, &M::PROCESS_CPU), "%"),
            fmt(value(&store, &M::VRAM_USED), " MiB"),
            fmt(value(&store, &M::GPU_UTILIZATION), "%"),
            fmt(value(&store, &M::DECODE_TPS), " tok/s"),
            fmt(value(&store, &M::TIME_TO_FIRST_TOKEN), " ms"),
        );
        egui::Area::new(egui::Id::new("diagnostics_compact"))
            .anchor(egui::Align2::RIGHT_TOP, [-6.0, 6.0])
            .show(ctx, |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.monospace(line);
                        if ui.small_button("+").on_hover_text("expand").clicked() {
                            overlay.compact = false;
                        }
                    });
                });
            });
        return Ok(());
    }
    let window = egui::Window::new("Diagnostics (F3)")
        .id(egui::Id::new("diagnostics_overlay"))
        .resizable(false)
        .collapsible(true)
        .max_width(340.0);
    // Where the user last dragged it, else the top-right corner; movable either way.
    let window = match settings.diagnostics.overlay_position {
        Some((x, y)) => window.default_pos([x, y]),
        None => window
            .pivot(egui::Align2::RIGHT_TOP)
            .default_pos([ctx.content_rect().right() - 6.0, 6.0]),
    };
    let shown = window.show(ctx, |ui| {
        egui::Grid::new("metrics")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                let row =
                    |ui: &mut egui::Ui, name: &str, text: String, color: Option<egui::Color32>| {
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
                    row(ui, "chat", status.short().to_owned(), None);
                }
                row(
                    ui,
                    "expressions",
                    format!(
                        "{} /s, queue {}",
                        fmt(value(&store, &M::AVATAR_COMMANDS), "", 1),
                        fmt(value(&store, &M::AVATAR_QUEUE), "", 0)
                    ),
                    None,
                );
            });
        ui.separator();
        ui.label("last minute");
        egui::Grid::new("plots").num_columns(2).show(ui, |ui| {
            let plots = [
                ("FPS", &history.fps, egui::Color32::LIGHT_GREEN),
                ("RSS", &history.rss_mib, egui::Color32::LIGHT_BLUE),
                ("VRAM %", &history.vram_percent, AMBER),
                ("GPU %", &history.gpu_percent, egui::Color32::LIGHT_RED),
                ("tok/s", &history.decode_tps, egui::Color32::WHITE),
            ];
            for (name, series, color) in plots {
                ui.label(name);
                if series.is_empty() {
                    ui.weak("n/a");
                } else {
                    sparkline(ui, series, color);
                }
                ui.end_row();
            }
        });
        if let Some(reason) = &latest.gpu_unavailable_reason {
            ui.weak(reason);
        }
        ui.horizontal(|ui| {
            let label = if recorder.is_recording() {
                format!("Stop recording ({} rows)", recorder.rows)
            } else {
                "Record CSV".to_owned()
            };
            if ui.button(label).clicked() {
                record.write(ToggleRecording::default());
            }
            if ui.button("Compact").clicked() {
                overlay.compact = true;
            }
        });
        if let Some(path) = recorder.path.as_ref().filter(|_| recorder.is_recording()) {
            ui.weak(path.display().to_string());
        }
        if let Some(error) = &recorder.error {
            ui.colored_label(RED, error);
        }
    });
    // Remember a new position once the user has dragged it (a press on the overlay, then a
    // release somewhere else); its size changing with its values must not count as a move.
    if let Some(shown) = shown {
        let rect = shown.response.rect;
        let (pressed, down, pointer) = ctx.input(|i| {
            (
                i.pointer.any_pressed(),
                i.pointer.any_down(),
                i.pointer.latest_pos(),
            )
        });
        let (baseline, held) = &mut *drag;
        if pressed && pointer.is_some_and(|p| rect.contains(p)) {
            *held = true;
        }
        if *held && !down {
            *held = false;
            if baseline.is_some_and(|b| b.distance(rect.min) > 1.0) {
                let at = rect.min;
                settings.diagnostics.overlay_position = Some((at.x, at.y));
                match file.save_change(|s| s.diagnostics.overlay_position = Some((at.x, at.y))) {
                    Ok(_) => info!("overlay position ({:.0}, {:.0}) saved", at.x, at.y),
                    Err(reason) => warn!("overlay position not saved: {reason}"),
                }
            }
        }
        if !*held {
            *baseline = Some(rect.min);
        }
    }
    Ok(())
}
