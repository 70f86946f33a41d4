//! The right-click menu on the avatar: chat, expressions, settings, memory, diagnostics, quit.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use super::{ChatPanel, ExpressionsPanel, MemoryPanel, SettingsPanel};
use crate::avatar::ContextMenu;
use crate::diagnostics::DiagnosticsOverlay;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(EguiPrimaryContextPass, context_menu);
}

#[allow(clippy::too_many_arguments)]
fn context_menu(
    mut contexts: EguiContexts,
    mut menu: ResMut<ContextMenu>,
    mut chat: ResMut<ChatPanel>,
    mut expressions: ResMut<ExpressionsPanel>,
    mut settings: ResMut<SettingsPanel>,
    mut memory: ResMut<MemoryPanel>,
    overlay: Option<ResMut<DiagnosticsOverlay>>,
    mut exit: MessageWriter<AppExit>,
) -> Result {
    let Some(at) = menu.0 else {
        return Ok(());
    };
    let ctx = contexts.ctx_mut()?;
    let mut overlay = overlay;
    let mut close = false;
    let area = egui::Area::new(egui::Id::new("context_menu"))
        .fixed_pos(egui::pos2(at.x, at.y))
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.set_min_width(130.0);
                if ui.button("Chat (F1)").clicked() {
                    chat.open = !chat.open;
                    close = true;
                }
                if ui.button("Expressions (F4)").clicked() {
                    expressions.open = !expressions.open;
                    close = true;
                }
                if ui.button("Settings (F2)").clicked() {
                    settings.open = !settings.open;
                    close = true;
                }
                if ui.button("Memory (F5)").clicked() {
                    memory.open = !memory.open;
                    close = true;
                }
                if let Some(overlay) = overlay.as_mut()
                    && ui.button("Diagnostics (F3)").clicked()
                {
                    overlay.visible = !overlay.visible;
                    close = true;
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    exit.write(AppExit::Success);
                    close = true;
                }
            });
        });
    // A click anywhere else closes the menu.
    let clicked_elsewhere =
        ctx.input(|i| i.pointer.any_pressed()) && !area.response.contains_pointer();
    if close || clicked_elsewhere || ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
        menu.0 = None;
    }
    Ok(())
}
