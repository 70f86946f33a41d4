//! Each frame: ease the expressions, run blink / mouth / head motion, and write the result to
//! the avatar's `MorphWeights` and bones.

use bevy::mesh::morph::MorphWeights;
use bevy::prelude::*;

use super::commands::FaceState;
use super::expression::index;
use super::motion::{MOUTH, breathing_offset};
use super::rig::{AvatarRig, RigBone};
use crate::AppSystems;
use crate::config::Expression;

/// Where the desktop cursor is, relative to the avatar's face: x right, y up, about -1..1
/// across the window. `None` when unknown (headless, no pointer).
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct LookTarget(pub Option<Vec2>);

/// How far the arms hang down from the T-pose VRM files are authored in (radians).
const ARMS_DOWN: f32 = 1.2;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<LookTarget>().add_systems(
        Update,
        (animate_face, apply_morph_weights, apply_pose)
            .chain()
            .in_set(AppSystems::Apply),
    );
}

/// Advances every motion and computes the weight of each preset shown this frame.
pub fn animate_face(time: Res<Time>, look: Res<LookTarget>, mut face: ResMut<FaceState>) {
    let dt = time.delta_secs();
    let face = &mut *face;
    face.expressions.step(dt);
    let mut applied = *face.expressions.shown();

    // Joy and fun close the eyes on many models: no blink on top of them.
    let eyes_busy = applied[index(Expression::Joy)] > 0.5
        || applied[index(Expression::Blink)] > 0.0
        || applied[index(Expression::BlinkL)] > 0.0
        || applied[index(Expression::BlinkR)] > 0.0;
    let blink = face.blink.step(dt, face.auto_blink && !eyes_busy);
    let slot = &mut applied[index(Expression::Blink)];
    *slot = slot.max(blink);

    let mouth = face.lips.step(dt);
    for (shape, weight) in MOUTH.iter().zip(mouth) {
        let slot = &mut applied[index(*shape)];
        *slot = slot.max(weight);
    }

    if let (true, Some(target)) = (face.look_at_cursor, look.0) {
        let target = target.clamp(Vec2::splat(-1.0), Vec2::splat(1.0));
        // The cursor on the viewer's right is the character's left.
        let looks = [
            (Expression::LookLeft, target.x),
            (Expression::LookRight, -target.x),
            (Expression::LookUp, target.y),
            (Expression::LookDown, -target.y),
        ];
        for (shape, amount) in looks {
            let slot = &mut applied[index(shape)];
            *slot = slot.max(amount.max(0.0) * 0.8);
        }
    }
    face.applied = applied;
}

/// Writes the morph weights of every mesh of the avatar, only where they changed (so an idle
/// face does not mark meshes changed every frame).
pub fn apply_morph_weights(
    face: Res<FaceState>,
    rigs: Query<&AvatarRig>,
    mut weights: Query<&mut MorphWeights>,
) {
    for rig in &rigs {
        for &(entity, mesh) in &rig.morphs {
            let Ok(mut morph) = weights.get_mut(entity) else {
                continue;
            };
            let mut values = morph.weights().to_vec();
            if rig.map.morph_weights(&face.applied, mesh, &mut values) {
                morph.weights_mut().copy_from_slice(&values);
            }
        }
    }
}

/// Relaxed arms, breathing, idle head turns and the head following the cursor.
fn apply_pose(
    time: Res<Time>,
    look: Res<LookTarget>,
    mut face: ResMut<FaceState>,
    rigs: Query<&AvatarRig>,
    mut transforms: Query<&mut Transform>,
) {
    let dt = time.delta_secs();
    let head_motion = face.head_motion;
    let (mut yaw, mut pitch) = face.head.step(dt, head_motion);
    if let (true, Some(target)) = (face.look_at_cursor, look.0) {
        let target = target.clamp(Vec2::splat(-1.0), Vec2::splat(1.0));
        yaw += target.x * 0.35;
        pitch += target.y * 0.2;
    }
    let breath = if face.breathing {
        breathing_offset(time.elapsed_secs())
    } else {
        0.0
    };
    let head_turn = Quat::from_euler(EulerRot::YXZ, yaw * 0.6, pitch * 0.6, 0.0);
    let neck_turn = Quat::from_euler(EulerRot::YXZ, yaw * 0.4, pitch * 0.4, 0.0);
    // Writes a bone's pose only when it changes (change detection drives skinning uploads).
    let mut set = |bone: Option<RigBone>, pose: &dyn Fn(&RigBone) -> Transform| {
        if let Some(bone) = bone
            && let Ok(mut current) = transforms.get_mut(bone.entity)
        {
            let pose = pose(&bone);
            if *current != pose {
                *current = pose;
            }
        }
    };
    for rig in &rigs {
        let bones = &rig.bones;
        set(bones.head, &|head| head.rotated(head_turn));
        set(bones.neck, &|neck| neck.rotated(neck_turn));
        set(bones.chest, &|chest| {
            let mut pose = chest.rest;
            pose.translation.y += breath;
            pose
        });
        // VRM 0.x: the character's left is -X; rotating about +Z lowers the left arm.
        set(bones.left_upper_arm, &|arm| {
            arm.rotated(Quat::from_rotation_z(ARMS_DOWN))
        });
        set(bones.right_upper_arm, &|arm| {
            arm.rotated(Quat::from_rotation_z(-ARMS_DOWN))
        });
    }
}
