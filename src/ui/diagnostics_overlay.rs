//! The F3 overlay: live values with units, red when a resource runs short. Hidden, it draws
//! nothing and takes no clicks.

use super::theme::{AMBER, RED};
use bevy::diagnostic::{DiagnosticPath, DiagnosticsStore};
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use std::collections::VecDeque;

use crate::config::{AppState, Settings, StateFile};
use crate::diagnostics::{
    DiagnosticsOverlay, DiagnosticsRecorder, LatestSample, MetricHistory, MetricTexts, OverlayRow,
    OverlayRows, RowValue, ToggleRecording,
};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(EguiPrimaryContextPass, overlay);
}

fn value(store: &DiagnosticsStore, path: &DiagnosticPath) -> Option<f64> {
    store.get(path).and_then(|d| d.smoothed())
}

/// A row's text and colour (`None` = the default).
fn row_text(
    store: &DiagnosticsStore,
    texts: &MetricTexts,
    row: &OverlayRow,
) -> (String, Option<egui::Color32>) {
    match &row.value {
        RowValue::Metric { path, unit, digits } => (
            value(store, path).map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}{unit}")),
            None,
        ),
        RowValue::Share {
            used,
            total,
            unit,
            amber,
            red,
        } => match value(store, used).zip(value(store, total)) {
            Some((u, t)) => {
                let color = if u > red * t {
                    Some(RED)
                } else if u > amber * t {
                    Some(AMBER)
                } else {
                    None
                };
                (format!("{u:.0} / {t:.0}{unit}"), color)
            }
            None => ("n/a".to_owned(), None),
        },
        RowValue::Text => (
            texts
                .0
                .get(row.label)
                .cloned()
                .unwrap_or_else(|| "n/a".to_owned()),
            None,
        ),
    }
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
    rows: Res<OverlayRows>,
    texts: Res<MetricTexts>,
    history: Res<MetricHistory>,
    recorder: Res<DiagnosticsRecorder>,
    mut record: MessageWriter<ToggleRecording>,
    store: Res<DiagnosticsStore>,
    latest: Res<LatestSample>,
    settings: Res<Settings>,
    mut state: ResMut<AppState>,
    file: Res<StateFile>,
    mut drag: Local<(Option<egui::Pos2>, bool)>,
) -> Result {
    let Some(mut overlay) = overlay.filter(|o| o.visible) else {
        return Ok(());
    };
    let ctx = contexts.ctx_mut()?;
    if overlay.compact {
        let line = rows
            .iter()
            .filter(|row| row.compact)
            .map(|row| format!("{} {}", row.label, row_text(&store, &texts, row).0))
            .collect::<Vec<_>>()
            .join(" · ");
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
    let window = match state.overlay_position(&settings) {
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
                for row in rows.iter() {
                    let (text, color) = row_text(&store, &texts, row);
                    ui.label(row.label);
                    match color {
                        Some(color) => ui.colored_label(color, text),
                        None => ui.monospace(text),
                    };
                    ui.end_row();
                }
            });
        ui.separator();
        ui.label("last minute");
        egui::Grid::new("plots").num_columns(2).show(ui, |ui| {
            for row in rows.iter() {
                let Some([r, g, b]) = row.plot else { continue };
                ui.label(match row.value {
                    RowValue::Share { .. } => format!("{} %", row.label),
                    _ => row.label.to_owned(),
                });
                match history.get(row.label).filter(|s| !s.is_empty()) {
                    Some(series) => sparkline(ui, series, egui::Color32::from_rgb(r, g, b)),
                    None => {
                        ui.weak("n/a");
                    }
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
                state.overlay_position = Some((at.x, at.y));
                match file.save(&state) {
                    Ok(()) => info!("overlay position ({:.0}, {:.0}) saved", at.x, at.y),
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
