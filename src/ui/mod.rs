//! egui panels of the mascot window.

mod chat_panel;
mod context_menu;
mod diagnostics_overlay;
mod expressions_panel;
mod settings_panel;

pub use chat_panel::ChatPanel;
pub use expressions_panel::ExpressionsPanel;
pub use settings_panel::SettingsPanel;

use bevy::prelude::*;

/// Added by the windowed app only (egui needs a window and a renderer).
pub fn plugin(app: &mut App) {
    app.add_plugins((
        chat_panel::plugin,
        context_menu::plugin,
        diagnostics_overlay::plugin,
        expressions_panel::plugin,
        settings_panel::plugin,
    ));
}
