//! The mascot's body: loading VRM 0.x and 1.0 avatars through bevy_vrm (normalized by our asset source),
//! expressions driven by [`AvatarCommand`]s, blink / breathing / head motion / mouth, and the
//! camera framing the avatar. Bevy-free parts (file parsing, default avatar, expression
//! easing, motions) are unit-tested on their own.

mod commands;
pub mod default_avatar;
mod drop;
pub mod expression;
mod face;
pub mod hit_mask;
mod input_region;
mod loading;
pub mod look_at;
mod metrics;
pub mod motion;
mod pointer;
mod rig;
pub mod source;
mod speech;
mod stage;
mod visible;
pub mod vrm_expression;
pub mod vrm_file;
pub mod vrm_import;
mod window;

use bevy::prelude::*;

pub use commands::{AvatarCommand, AvatarCommands, FaceState, drain_commands};
pub use face::{Attending, LookTarget, animate_face, apply_morph_weights};
pub use loading::{AvatarError, AvatarRoot, AvatarStatus, LoadAvatar};
pub use metrics::AvatarDiagnostics;
pub use rig::{AvatarRig, BodyDriven, RestBone, RigBone, RigBones, VrmMeshIndex};
pub use source::{AvatarFile, AvatarFiles};
pub use stage::{AvatarCamera, Framed, camera_for};
pub use visible::{PanelArea, Seen};
pub use window::{ClickThrough, ContextMenu, WindowHeld, WindowHits};

pub struct AvatarPlugin;

impl Plugin for AvatarPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((
            commands::plugin,
            drop::plugin,
            face::plugin,
            metrics::plugin,
            speech::plugin,
        ));
        // Loading and the stage need assets and rendering: not in the headless app.
        if app.is_plugin_added::<bevy::render::RenderPlugin>() {
            app.add_plugins((
                stage::plugin,
                loading::plugin,
                visible::plugin,
                window::plugin,
            ));
        }
    }

    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<bevy::render::RenderPlugin>() {
            loading::finish(app);
        }
    }
}
