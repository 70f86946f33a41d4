//! The mascot's body: camera and light for the avatar scene. Loading VRM files, expressions
//! and window behaviour (drag, click-through) are added by the avatar work.

mod stage;
pub mod vrm_file;

use bevy::prelude::*;

pub struct AvatarPlugin;

impl Plugin for AvatarPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins(stage::plugin);
    }
}
