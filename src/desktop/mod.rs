//! Living on the desktop: the transparent window's alpha mode, frame pacing, the global
//! hotkeys, the tray and the actions they send, starting with the system, the taskbar entry,
//! the window's place across monitors. OS-specific
//! code sits in small per-platform modules (see `avatar/pointer.rs`).

mod actions;
mod autostart;
pub mod display;
pub mod graphics;
mod hotkeys;
mod pacing;
mod place;
mod taskbar;
pub mod transparency;
mod tray;

use bevy::prelude::*;

pub use actions::{DesktopAction, DesktopActions};
pub use autostart::AutostartError;
pub use hotkeys::shortcuts;
pub use place::{Screen, layout_key, rescue_position};
pub use tray::{MenuEntry, TrayState, menu as tray_menu};

/// Whether the mascot's window can open here, asked before Bevy would panic: a display to open
/// it on, then a driver to draw it with (`Err`: what to do). `Ok` carries a warning when the
/// window would open but look empty (`graphics::blank_transparent_window`).
pub fn window_check() -> Result<Option<String>, String> {
    display::check()?;
    let renderers = graphics::renderers();
    graphics::check(&renderers)?;
    Ok(graphics::blank_transparent_window(&renderers))
}

/// Added by the windowed app only (all of it needs a window).
pub struct DesktopPlugin {
    /// Registers the mascot on the desktop: global hotkeys, the tray icon, the autostart
    /// entry. Off for `snapshot`, which must leave the user's desktop as it found it.
    pub presence: bool,
}

impl Default for DesktopPlugin {
    fn default() -> Self {
        Self { presence: true }
    }
}

impl Plugin for DesktopPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((
            actions::plugin,
            taskbar::plugin,
            place::plugin,
            pacing::plugin,
            transparency::plugin,
        ));
        if self.presence {
            app.add_plugins((hotkeys::plugin, autostart::plugin, tray::plugin));
        }
    }
}
