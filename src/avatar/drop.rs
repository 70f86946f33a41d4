//! A .vrm file dropped on the window becomes the avatar and is kept in the app's state file
//! (the settings stay the user's); any other
//! file gets a message. Works in the headless app too (the message is registered here).

use bevy::prelude::*;
use bevy::window::FileDragAndDrop;

use super::loading::AvatarError;
use crate::AppSystems;
use crate::config::{AppState, StateFile};

pub(super) fn plugin(app: &mut App) {
    app.add_message::<FileDragAndDrop>()
        .init_resource::<AvatarError>()
        .add_systems(Update, drop_avatar.in_set(AppSystems::Update));
}

/// A .vrm file dropped on the window becomes the avatar, and is remembered for the next run.
fn drop_avatar(
    mut drops: MessageReader<FileDragAndDrop>,
    mut state: ResMut<AppState>,
    file: Res<StateFile>,
    mut error: ResMut<AvatarError>,
) {
    for drop in drops.read() {
        let FileDragAndDrop::DroppedFile { path_buf, .. } = drop else {
            continue;
        };
        let extension = path_buf.extension().map(|e| e.to_ascii_lowercase());
        // Motion clips are the motion plugin's.
        if extension.as_deref() == Some("vrma".as_ref()) {
            continue;
        }
        if extension.as_deref() != Some("vrm".as_ref()) {
            error.0 = Some(format!(
                "{} is not a .vrm or .vrma file; drop a VRM avatar to switch to it, a VRM Animation to play it",
                path_buf.display()
            ));
            continue;
        }
        state.avatar = Some(path_buf.clone());
        if let Err(reason) = file.save(&state) {
            warn!("avatar switched but not saved: {reason}");
        }
    }
}
