//! Hair and clothes swing when the window is dragged: the spring bones (bevy_vrm's simulation)
//! only see the avatar's motion in its own world, where a window drag moves nothing. Each move
//! of the window shifts the spring tails the other way by the same distance in the avatar's
//! world (pixels -> metres at the avatar's depth), as if the body had moved under them; the
//! simulation then pulls them back, so they lag and settle.

use bevy::prelude::*;
use bevy::window::{PrimaryWindow, WindowMoved};
use bevy_vrm::spring_bones::SpringBoneLogicState;

use crate::AppSystems;
use crate::avatar::{AvatarCamera, Framed};

/// Largest shift per frame, in metres (a jump to another monitor is not a fling).
const MAX_SHIFT: f32 = 0.15;

pub(super) fn plugin(app: &mut App) {
    app.add_message::<WindowMoved>()
        .add_systems(Update, swing_with_the_window.in_set(AppSystems::Update));
}

/// The shift of the spring tails for a window move of `moved` physical pixels, seen by a camera
/// `distance` metres from the avatar with vertical field of view `fov`, in a window
/// `height` physical pixels high: the world stays where it was, so the tails move against the
/// window (right on screen is +X, down on screen is -Y).
pub fn tail_shift(moved: IVec2, distance: f32, fov: f32, height: f32) -> Vec3 {
    let metres_per_pixel = 2.0 * distance * (fov / 2.0).tan() / height.max(1.0);
    let shift = Vec3::new(-moved.x as f32, moved.y as f32, 0.0) * metres_per_pixel;
    shift.clamp_length_max(MAX_SHIFT)
}

fn swing_with_the_window(
    mut moves: MessageReader<WindowMoved>,
    windows: Query<(Entity, &Window), With<PrimaryWindow>>,
    cameras: Query<(&Transform, &Projection), With<AvatarCamera>>,
    avatars: Query<&Framed>,
    mut last: Local<Option<IVec2>>,
    mut tails: Query<&mut SpringBoneLogicState>,
) {
    let Ok((primary, window)) = windows.single() else {
        return;
    };
    let Some(moved) = moves.read().filter(|m| m.window == primary).last() else {
        return;
    };
    let previous = last.replace(moved.position);
    let (Some(previous), Ok((camera, Projection::Perspective(projection))), Some(framed)) =
        (previous, cameras.single(), avatars.iter().next())
    else {
        return;
    };
    let centre = (framed.min + framed.max) / 2.0;
    let shift = tail_shift(
        moved.position - previous,
        camera.translation.distance(centre),
        projection.fov,
        window.physical_height() as f32,
    );
    if shift == Vec3::ZERO {
        return;
    }
    for mut tail in &mut tails {
        tail.current_tail += shift;
        tail.prev_tail += shift;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_move_against_the_window_by_its_distance_in_the_avatars_world() {
        // 600 px showing 2 m at the avatar: 1/300 m per pixel.
        let fov = 0.35;
        let distance = 1.0 / (fov / 2.0_f32).tan();
        let shift = tail_shift(IVec2::new(30, -60), distance, fov, 600.0);
        assert!((shift - Vec3::new(-0.1, -0.2, 0.0).clamp_length_max(MAX_SHIFT)).length() < 1e-5);
        let small = tail_shift(IVec2::new(3, 6), distance, fov, 600.0);
        assert!(
            (small - Vec3::new(-0.01, 0.02, 0.0)).length() < 1e-5,
            "{small}"
        );
        assert_eq!(tail_shift(IVec2::ZERO, distance, fov, 600.0), Vec3::ZERO);
    }
}
