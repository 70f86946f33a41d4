//! The mascot's body in motion: VRM Animation (`.vrma`) clips on VRM 0.x and 1.0 avatars,
//! played by Bevy's animation graph (one graph per avatar, cross-fades through
//! `AnimationTransitions`), chosen by a director (idle loop and variations, a greeting,
//! gestures from the reply's emotion, sleepy and held loops). Bevy-free parts: the VRMA reader
//! ([`vrma`]), the retargeting onto an avatar's bones ([`retarget`]), the director
//! ([`director`]) and the built-in clip table ([`builtin`]).
//!
//! The clip drives the body; the avatar plugin's procedural layers (look-at, head turns, eyes)
//! are added on top after the animation is applied (see `avatar::BodyDriven`).

pub mod builtin;
pub mod director;
mod library;
mod player;
pub mod retarget;
mod springs;
pub mod vrma;

use bevy::prelude::*;

pub use library::{EditMotion, KEPT, LibraryClip, MotionLibrary, MotionSource, read_file};
pub use player::{AvatarMotions, MotionOverride, PlayMotion, animation_clip, skeleton, target_id};

pub struct MotionPlugin;

impl Plugin for MotionPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((library::plugin, springs::plugin))
            .add_message::<PlayMotion>();
        // Clips play on spawned avatars: only in the app that renders them.
        if app.is_plugin_added::<bevy::animation::AnimationPlugin>() {
            app.add_plugins(player::plugin);
        }
    }
}
