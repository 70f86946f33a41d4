//! Living on the desktop: the transparent window's alpha mode, frame pacing, the global
//! hotkeys and the actions they send, starting with the system, the taskbar entry. OS-specific
//! code sits in small per-platform modules (see `avatar/pointer.rs`).

mod actions;
mod autostart;
mod hotkeys;
mod pacing;
mod place;
mod taskbar;
pub mod transparency;

use bevy::prelude::*;

pub use actions::{DesktopAction, DesktopActions};
pub use autostart::AutostartError;
pub use hotkeys::shortcuts;
pub use place::{Screen, layout_key, rescue_position};

/// Added by the windowed app only (all of it needs a window).
pub struct DesktopPlugin;

impl Plugin for DesktopPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((
            actions::plugin,
            hotkeys::plugin,
            autostart::plugin,
            taskbar::plugin,
            place::plugin,
            pacing::plugin,
            transparency::plugin,
        ));
    }
}
