//! egui panels of the mascot window.

mod chat_panel;
mod context_menu;
mod diagnostics_overlay;
mod expressions_panel;
mod memory_panel;
mod notices;
mod panel_area;
mod settings_panel;
pub mod theme;

pub use chat_panel::ChatPanel;
pub use expressions_panel::ExpressionsPanel;
pub use memory_panel::MemoryPanel;
pub use settings_panel::SettingsPanel;

use bevy::prelude::*;

/// A panel that a key shows and hides.
trait Panel: Resource<Mutability = bevy::ecs::component::Mutable> {
    const KEY: KeyCode;
    fn open(&mut self) -> &mut bool;
}

fn toggle_panel<P: Panel>(keys: Res<ButtonInput<KeyCode>>, mut panel: ResMut<P>) {
    if keys.just_pressed(P::KEY) {
        let open = panel.open();
        *open = !*open;
    }
}

/// Added by the windowed app only (egui needs a window and a renderer).
pub struct UiPlugin;

impl Plugin for UiPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((
            chat_panel::plugin,
            context_menu::plugin,
            diagnostics_overlay::plugin,
            expressions_panel::plugin,
            memory_panel::plugin,
            notices::plugin,
            panel_area::plugin,
            settings_panel::plugin,
        ));
    }
}
