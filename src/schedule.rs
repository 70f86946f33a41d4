//! The order of our systems, named once and configured in one place.

use bevy::prelude::*;

/// The order of our systems in `Update`, configured once in [`configure`]. Data flows one
/// way through them: other threads -> resources and messages -> what the user sees.
#[derive(SystemSet, Debug, Clone, Copy, Eq, PartialEq, Hash, PartialOrd, Ord)]
pub enum AppSystems {
    /// Drain channels from other threads (settings file watcher, LLM engine, samplers).
    ReadChannels,
    /// Update state from what was read and from input.
    Update,
    /// Push state to what the user sees (avatar pose, expressions, window).
    Apply,
}

pub(crate) fn configure(app: &mut App) {
    app.configure_sets(
        Update,
        (
            AppSystems::ReadChannels,
            AppSystems::Update,
            AppSystems::Apply,
        )
            .chain(),
    );
}
