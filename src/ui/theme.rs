//! The look and the keys of the panels, in one place.

use bevy::prelude::KeyCode;
use bevy_egui::egui::{self, Color32};

/// Errors, and values past their red threshold.
pub const RED: Color32 = Color32::from_rgb(230, 80, 70);
/// Values past their amber threshold.
pub const AMBER: Color32 = Color32::from_rgb(230, 180, 60);

/// The chat panel's key.
pub const CHAT_KEY: KeyCode = KeyCode::F1;
/// The settings panel's key.
pub const SETTINGS_KEY: KeyCode = KeyCode::F2;
/// The expressions panel's key.
pub const EXPRESSIONS_KEY: KeyCode = KeyCode::F4;
/// The memory panel's key.
pub const MEMORY_KEY: KeyCode = KeyCode::F5;

/// What a panel's last action did (plain) or why it failed (red); nothing before the first.
pub fn outcome_line(ui: &mut egui::Ui, outcome: &Option<Result<String, String>>) {
    match outcome {
        Some(Ok(done)) => {
            ui.label(done);
        }
        Some(Err(reason)) => {
            ui.colored_label(RED, reason);
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PANEL_KEYS;
    use crate::diagnostics::overlay::overlay_key_code;

    /// Validation refuses these names for the overlay key: they must be the panels' keys.
    #[test]
    fn the_keys_validation_reserves_are_the_panels_keys() {
        let reserved: Vec<KeyCode> = PANEL_KEYS
            .iter()
            .filter_map(|name| overlay_key_code(name))
            .collect();
        assert_eq!(
            reserved,
            [CHAT_KEY, SETTINGS_KEY, EXPRESSIONS_KEY, MEMORY_KEY]
        );
    }
}
