//! Living on the desktop: the transparent window's alpha mode and frame pacing. OS-specific
//! code sits in small per-platform modules (see `avatar/pointer.rs`).

mod pacing;
pub mod transparency;

use bevy::prelude::*;

/// Added by the windowed app only (both need a window).
pub struct DesktopPlugin;

impl Plugin for DesktopPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((pacing::plugin, transparency::plugin));
    }
}
