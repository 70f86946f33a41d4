//! egui panels of the mascot window.

mod chat_panel;
mod diagnostics_overlay;
mod settings_panel;

pub use chat_panel::ChatPanel;
pub use settings_panel::SettingsPanel;

use bevy::prelude::*;

/// Added by the windowed app only (egui needs a window and a renderer).
pub fn plugin(app: &mut App) {
    app.add_plugins((
        chat_panel::plugin,
        diagnostics_overlay::plugin,
        settings_panel::plugin,
    ));
}
