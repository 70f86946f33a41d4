//! Camera and light framing the avatar.

use bevy::prelude::*;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn_stage);
}

/// Marks the camera looking at the avatar.
#[derive(Component, Debug)]
pub struct AvatarCamera;

fn spawn_stage(mut commands: Commands) {
    commands.spawn((
        Name::new("Avatar camera"),
        AvatarCamera,
        Camera3d::default(),
        Transform::from_xyz(0.0, 1.3, 2.2).looking_at(Vec3::new(0.0, 1.1, 0.0), Vec3::Y),
    ));
    commands.spawn((
        Name::new("Key light"),
        DirectionalLight {
            illuminance: 8_000.0,
            ..default()
        },
        Transform::from_xyz(1.0, 2.0, 2.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
}
