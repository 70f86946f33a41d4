//! Whether the F3 overlay is shown (the egui drawing lives in `ui`).

use bevy::prelude::*;

use crate::AppSystems;
use crate::config::Settings;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, init_overlay);
    app.add_systems(
        Update,
        toggle_overlay
            .in_set(AppSystems::Update)
            .run_if(resource_exists::<ButtonInput<KeyCode>>),
    );
}

#[derive(Resource, Debug, Clone, PartialEq)]
pub struct DiagnosticsOverlay {
    pub visible: bool,
    /// One line instead of the table and plots.
    pub compact: bool,
    pub key: KeyCode,
}

/// `F1`..`F12` as a key code (the names settings validation accepts).
pub fn overlay_key_code(name: &str) -> Option<KeyCode> {
    Some(match name {
        "F1" => KeyCode::F1,
        "F2" => KeyCode::F2,
        "F3" => KeyCode::F3,
        "F4" => KeyCode::F4,
        "F5" => KeyCode::F5,
        "F6" => KeyCode::F6,
        "F7" => KeyCode::F7,
        "F8" => KeyCode::F8,
        "F9" => KeyCode::F9,
        "F10" => KeyCode::F10,
        "F11" => KeyCode::F11,
        "F12" => KeyCode::F12,
        _ => return None,
    })
}

fn init_overlay(mut commands: Commands, settings: Res<Settings>) {
    commands.insert_resource(DiagnosticsOverlay {
        visible: settings.diagnostics.overlay_visible,
        compact: false,
        key: overlay_key_code(&settings.diagnostics.overlay_key).unwrap_or(KeyCode::F3),
    });
}

fn toggle_overlay(keys: Res<ButtonInput<KeyCode>>, overlay: Option<ResMut<DiagnosticsOverlay>>) {
    let Some(mut overlay) = overlay else { return };
    if keys.just_pressed(overlay.key) {
        overlay.visible = !overlay.visible;
    }
}
