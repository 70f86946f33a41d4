//! Camera and light, and framing the camera on the avatar once it is spawned.

use bevy::camera::primitives::Aabb;
use bevy::prelude::*;

use super::rig::AvatarRig;
use crate::AppSystems;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn_stage)
        .add_systems(Update, frame_avatar.in_set(AppSystems::Apply));
}

/// Marks the camera looking at the avatar.
#[derive(Component, Debug)]
pub struct AvatarCamera;

/// On the avatar root once the camera frames it: the avatar's bounds in world space.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct Framed {
    pub min: Vec3,
    pub max: Vec3,
}

/// Vertical field of view: narrow, so the mascot looks flat like a sticker, not distorted.
const FOV: f32 = 0.35;
/// Free space around the avatar, as a fraction of its size.
const MARGIN: f32 = 0.06;

fn spawn_stage(mut commands: Commands) {
    commands.spawn((
        Name::new("Avatar camera"),
        AvatarCamera,
        Camera3d::default(),
        Projection::Perspective(PerspectiveProjection {
            fov: FOV,
            ..default()
        }),
        Transform::from_xyz(0.0, 0.8, 5.0).looking_at(Vec3::new(0.0, 0.8, 0.0), Vec3::Y),
    ));
    commands.spawn((
        Name::new("Key light"),
        // MToon shades from the one light marked as its sun (colour, not illuminance).
        bevy_shader_mtoon::MtoonSun,
        DirectionalLight {
            illuminance: 3_000.0,
            ..default()
        },
        Transform::from_xyz(1.0, 2.0, 3.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    commands.insert_resource(GlobalAmbientLight {
        brightness: 100.0,
        ..default()
    });
}

/// Where the camera must stand to show `min..max` in a viewport of `aspect` (w/h): the whole
/// height, and for a figure (taller than wide) the width up to half the height (the bounds are
/// taken in the T-pose files are authored in, before the arms are lowered, so their full width
/// would shrink the avatar). A model wider than tall is shown whole: cutting it to half its
/// height showed only the empty middle of some exporters' test files (meshes side by side).
pub fn camera_for(min: Vec3, max: Vec3, aspect: f32) -> Transform {
    let center = (min + max) / 2.0;
    let size = (max - min) * (1.0 + 2.0 * MARGIN);
    let half_tan = (FOV / 2.0).tan();
    let for_height = size.y / 2.0 / half_tan;
    let width = if size.x > size.y {
        size.x
    } else {
        size.x.min(size.y * 0.5)
    };
    let for_width = width / 2.0 / (half_tan * aspect.max(0.01));
    let distance = for_height.max(for_width) + size.z / 2.0;
    Transform::from_translation(center + Vec3::Z * distance).looking_at(center, Vec3::Y)
}

/// Frames the avatar once every mesh has bounds and transforms have propagated (a few frames
/// after it spawns).
fn frame_avatar(
    mut commands: Commands,
    avatars: Query<Entity, (With<AvatarRig>, Without<Framed>)>,
    children: Query<&Children>,
    meshes: Query<(Option<&Aabb>, &GlobalTransform), With<Mesh3d>>,
    mut cameras: Query<(&mut Transform, &Camera), With<AvatarCamera>>,
    mut frames_waited: Local<u32>,
) {
    for avatar in &avatars {
        *frames_waited += 1;
        let mut min = Vec3::splat(f32::MAX);
        let mut max = Vec3::splat(f32::MIN);
        let (mut mesh_count, mut with_bounds) = (0, 0);
        for (aabb, global) in meshes
            .iter_many(children.iter_descendants(avatar))
            .matched()
        {
            mesh_count += 1;
            let Some(aabb) = aabb else { continue };
            with_bounds += 1;
            let center = Vec3::from(aabb.center);
            let half = Vec3::from(aabb.half_extents);
            for corner in 0..8 {
                let sign = Vec3::new(
                    if corner & 1 == 0 { -1.0 } else { 1.0 },
                    if corner & 2 == 0 { -1.0 } else { 1.0 },
                    if corner & 4 == 0 { -1.0 } else { 1.0 },
                );
                let point = global.transform_point(center + half * sign);
                min = min.min(point);
                max = max.max(point);
            }
        }
        if mesh_count == 0 || with_bounds < mesh_count || *frames_waited < 3 {
            continue;
        }
        *frames_waited = 0;
        // Zero-scaled or broken nodes give no usable bounds: frame a figure's size at the
        // origin (the visibility check says what happens then).
        if !min.is_finite() || !max.is_finite() || min.cmpgt(max).any() {
            warn!("avatar bounds unusable ({min} .. {max}): framing a 1.7 m figure");
            (min, max) = (Vec3::new(-0.4, 0.0, -0.2), Vec3::new(0.4, 1.7, 0.2));
        }
        for (mut transform, camera) in &mut cameras {
            let aspect = camera
                .logical_viewport_size()
                .map_or(1.0, |size| size.x / size.y.max(1.0));
            *transform = camera_for(min, max, aspect);
        }
        info!("avatar framed: bounds {min:.2} .. {max:.2}");
        commands.entity(avatar).insert(Framed { min, max });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Half the visible width at the bounds' centre, for a camera from `camera_for`.
    fn half_width_seen(camera: &Transform, center: Vec3, aspect: f32) -> f32 {
        camera.translation.distance(center) * (FOV / 2.0).tan() * aspect
    }

    #[test]
    fn figures_are_framed_by_height_and_wide_models_whole() {
        let aspect = 400.0 / 600.0;
        // A T-posed figure: 1.6 m tall, 1.5 m from hand to hand: its height decides.
        let (min, max) = (Vec3::new(-0.75, 0.0, -0.1), Vec3::new(0.75, 1.6, 0.1));
        let camera = camera_for(min, max, aspect);
        let seen = half_width_seen(&camera, (min + max) / 2.0, aspect);
        assert!(
            seen < 0.75,
            "{seen}: the T-pose arms must not shrink the figure"
        );
        assert!(seen > 0.4);
        // Four meshes side by side, 4 m by 1 m: all of them in view.
        let (min, max) = (Vec3::new(0.0, 0.0, 0.0), Vec3::new(4.0, 1.0, 0.0));
        let camera = camera_for(min, max, aspect);
        let seen = half_width_seen(&camera, (min + max) / 2.0, aspect);
        assert!(seen >= 2.0, "{seen}");
    }
}
