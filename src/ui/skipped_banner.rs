//! The files skipped at this start because an earlier run stopped while loading them
//! ([`LoadGuard`]), each with one click to try it again.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use super::theme::AMBER;
use crate::config::{LoadGuard, RetrySkipped};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(EguiPrimaryContextPass, skipped_banner);
}

fn skipped_banner(
    mut contexts: EguiContexts,
    guard: Option<Res<LoadGuard>>,
    mut retry: MessageWriter<RetrySkipped>,
) -> Result {
    let Some(guard) = guard else {
        return Ok(());
    };
    let skipped = guard.all_skipped();
    if skipped.is_empty() {
        return Ok(());
    }
    egui::Window::new("Skipped at start")
        .title_bar(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_TOP, [0.0, 40.0])
        .show(contexts.ctx_mut()?, |ui| {
            ui.set_max_width(ui.ctx().content_rect().width() - 24.0);
            for (what, path) in skipped {
                ui.colored_label(
                    AMBER,
                    format!(
                        "The last start stopped while loading the {} {}: skipped this time.",
                        what.noun(),
                        path.display()
                    ),
                );
                if ui
                    .button(format!("Try the {} again", what.noun()))
                    .clicked()
                {
                    retry.write(RetrySkipped(what));
                }
            }
        });
    Ok(())
}
