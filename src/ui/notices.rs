//! Notices at the top of the window, whatever panel is open: the files skipped at this start
//! because an earlier run stopped while loading them ([`LoadGuard`]), each with one click to
//! try it again, and the last avatar or motion that could not be shown, with the reason.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use super::theme::{AMBER, RED};
use crate::avatar::AvatarError;
use crate::config::{Guarded, LoadGuard, RetrySkipped};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(EguiPrimaryContextPass, notices);
}

fn notices(
    mut contexts: EguiContexts,
    guard: Option<Res<LoadGuard>>,
    error: Res<AvatarError>,
    mut dismissed: Local<Option<String>>,
    mut retry: MessageWriter<RetrySkipped>,
) -> Result {
    let skipped = guard.as_ref().map(|g| g.all_skipped()).unwrap_or_default();
    // A skipped avatar's reason is the skipped line itself.
    let avatar_skipped = skipped.iter().any(|(what, _)| *what == Guarded::Avatar);
    let reason = error
        .0
        .as_ref()
        .filter(|reason| !avatar_skipped && dismissed.as_ref() != Some(*reason));
    if skipped.is_empty() && reason.is_none() {
        return Ok(());
    }
    egui::Window::new("Notices")
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
            if let Some(reason) = reason {
                // A loader's message can be long: a few lines at most, the rest scrolls.
                egui::ScrollArea::vertical()
                    .max_height(96.0)
                    .show(ui, |ui| ui.colored_label(RED, reason));
                if ui.button("OK").clicked() {
                    *dismissed = Some(reason.clone());
                }
            }
        });
    Ok(())
}
