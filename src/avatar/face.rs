//! Each frame: ease the expressions, run blink / mouth / head motion / gaze, resolve them per
//! avatar (look-at mapping, `isBinary`, overrides) and write the result to the avatar's
//! `MorphWeights`, materials and bones.

use std::collections::HashMap;

use bevy::math::Affine2;
use bevy::mesh::morph::MorphWeights;
use bevy::prelude::*;
use bevy_shader_mtoon::MtoonMaterial;

use super::commands::FaceState;
use super::expression::{MaterialColorType, MaterialValues, index};
use super::look_at::LookAtOutput;
use super::motion::{MOUTH, breathing_offset};
use super::rig::{AvatarMaterial, AvatarRig, BodyDriven, RigBone};
use crate::AppSystems;
use crate::config::Expression;

/// Where the desktop cursor is, relative to the avatar's face: x right, y up, about -1..1
/// across the window. `None` when unknown (headless, no pointer).
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct LookTarget(pub Option<Vec2>);

/// The user is speaking to the mascot (push-to-talk held, or speech heard hands-free): set by
/// listening, read by the motion plugin for the listening pose.
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct Attending(pub bool);

/// How far the arms hang down from the T-pose VRM files are authored in (radians).
const ARMS_DOWN: f32 = 1.2;

/// The gaze, in degrees, with the cursor at the window's edge: 0.8 of a default 90° look-at
/// range (look expressions at 0.8, eye bones at 8° with the default output scale).
const GAZE_DEGREES: f32 = 72.0;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<LookTarget>()
        .init_resource::<Attending>()
        .add_systems(
            Update,
            (animate_face, apply_morph_weights, apply_material_values)
                .chain()
                .in_set(AppSystems::Apply),
        )
        // After a motion clip posed the body this frame, before the pose reaches the skin.
        .add_systems(
            PostUpdate,
            apply_pose
                .after(bevy::app::AnimationSystems)
                .before(bevy::transform::TransformSystems::Propagate),
        );
}

/// Advances every motion and computes the weight of each preset shown this frame.
pub fn animate_face(time: Res<Time>, look: Res<LookTarget>, mut face: ResMut<FaceState>) {
    let dt = time.delta_secs();
    let face = &mut *face;
    face.expressions.step(dt);
    let mut applied = *face.expressions.shown();
    for (slot, clip) in applied.iter_mut().zip(face.clip) {
        *slot = slot.max(clip);
    }

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

    let from_clip = face
        .clip_look
        .map(|degrees| Vec2::new(degrees.x / GAZE_DEGREES, -degrees.y / GAZE_DEGREES));
    face.gaze = from_clip
        .or(look.0.filter(|_| face.look_at_cursor))
        .map(|target| target.clamp(Vec2::splat(-1.0), Vec2::splat(1.0)));
    face.applied = applied;
}

/// The gaze in VRM look-at angles (degrees; yaw > 0 to the character's left, pitch > 0 down).
/// The cursor on the viewer's right is the character's left.
fn gaze_angles(gaze: Vec2) -> (f32, f32) {
    (gaze.x * GAZE_DEGREES, -gaze.y * GAZE_DEGREES)
}

/// The weights one avatar applies this frame: the face's, with the gaze through this avatar's
/// look-at expressions, then the VRM rules (`isBinary`, overrides) of its expressions.
pub fn resolved_weights(rig: &AvatarRig, face: &FaceState) -> [f32; Expression::COUNT] {
    let mut applied = face.applied;
    if let Some(gaze) = face.gaze {
        let (yaw, pitch) = gaze_angles(gaze);
        if let LookAtOutput::Expressions(look) = rig.look_at.apply(yaw, pitch) {
            for (shape, amount) in [
                (Expression::LookUp, look.up),
                (Expression::LookDown, look.down),
                (Expression::LookLeft, look.left),
                (Expression::LookRight, look.right),
            ] {
                let slot = &mut applied[index(shape)];
                *slot = slot.max(amount);
            }
        }
    }
    rig.map.resolve(&applied)
}

/// Writes the morph weights of every mesh of the avatar, only where they changed (so an idle
/// face does not mark meshes changed every frame).
pub fn apply_morph_weights(
    face: Res<FaceState>,
    rigs: Query<&AvatarRig>,
    mut weights: Query<&mut MorphWeights>,
) {
    for rig in &rigs {
        let resolved = resolved_weights(rig, &face);
        for &(entity, mesh) in &rig.morphs {
            let Ok(mut morph) = weights.get_mut(entity) else {
                continue;
            };
            let mut values = morph.weights().to_vec();
            if rig.map.morph_weights(&resolved, mesh, &mut values) {
                morph.weights_mut().copy_from_slice(&values);
            }
        }
    }
}

/// Writes the material colors and texture transforms expressions bind, only when they changed
/// (a material asset marked changed is prepared for the GPU again).
fn apply_material_values(
    face: Res<FaceState>,
    rigs: Query<(Entity, &AvatarRig)>,
    mut shown: Local<HashMap<Entity, Vec<MaterialValues>>>,
    mut standard: Option<ResMut<Assets<StandardMaterial>>>,
    mut mtoon: Option<ResMut<Assets<MtoonMaterial>>>,
) {
    shown.retain(|entity, _| rigs.contains(*entity));
    for (entity, rig) in &rigs {
        if rig.materials.is_empty() {
            continue;
        }
        let values = rig.map.material_values(&resolved_weights(rig, &face));
        if shown.get(&entity) == Some(&values) {
            continue;
        }
        for value in &values {
            for (material_index, material) in &rig.materials {
                if *material_index != value.material {
                    continue;
                }
                match material {
                    AvatarMaterial::Standard(handle) => {
                        if let Some(mut material) =
                            standard.as_mut().and_then(|assets| assets.get_mut(handle))
                        {
                            write_standard(&mut material, value);
                        }
                    }
                    AvatarMaterial::Mtoon(handle) => {
                        if let Some(mut material) =
                            mtoon.as_mut().and_then(|assets| assets.get_mut(handle))
                        {
                            write_mtoon(&mut material, value);
                        }
                    }
                }
            }
        }
        shown.insert(entity, values);
    }
}

fn linear([r, g, b, a]: [f32; 4]) -> LinearRgba {
    LinearRgba::new(r, g, b, a)
}

/// StandardMaterial has a base and an emissive color and one UV transform; MToon-only colors
/// have nothing to change there.
fn write_standard(material: &mut StandardMaterial, values: &MaterialValues) {
    for &(kind, color) in &values.colors {
        match kind {
            MaterialColorType::Color => material.base_color = linear(color).into(),
            MaterialColorType::EmissionColor => material.emissive = linear(color),
            _ => {}
        }
    }
    if let Some(texture) = values.texture {
        material.uv_transform =
            Affine2::from_scale_angle_translation(texture.scale.into(), 0.0, texture.offset.into());
    }
}

/// MToon's colors (bevy_shader_mtoon 0.5 has no UV transform: texture binds are not shown).
fn write_mtoon(material: &mut MtoonMaterial, values: &MaterialValues) {
    for &(kind, color) in &values.colors {
        let value: Color = linear(color).into();
        match kind {
            MaterialColorType::Color => material.base_color = value,
            MaterialColorType::EmissionColor => material.emissive_factor = value,
            MaterialColorType::ShadeColor => material.shade_factor = value,
            MaterialColorType::MatcapColor => {
                material.matcap_factor = Vec3::new(color[0], color[1], color[2]);
            }
            MaterialColorType::RimColor => material.parametric_rim_color = value,
            MaterialColorType::OutlineColor => material.outline_color = value,
        }
    }
}

/// Writes a bone's pose only when it changes (change detection drives skinning uploads).
fn set_pose(
    transforms: &mut Query<&mut Transform>,
    bone: Option<RigBone>,
    pose: impl Fn(&RigBone) -> Transform,
) {
    if let Some(bone) = bone
        && let Ok(mut current) = transforms.get_mut(bone.entity)
    {
        let pose = pose(&bone);
        if *current != pose {
            *current = pose;
        }
    }
}

/// Relaxed arms, breathing, idle head turns and the head following the cursor. On an avatar a
/// motion clip drives ([`BodyDriven`]), the head and neck turn from the clip's pose and the
/// arms and chest are the clip's.
fn apply_pose(
    time: Res<Time>,
    look: Res<LookTarget>,
    mut face: ResMut<FaceState>,
    rigs: Query<(&AvatarRig, Has<BodyDriven>)>,
    mut transforms: Query<&mut Transform>,
    mut clip_poses: Local<HashMap<Entity, (Transform, Transform)>>,
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
    for (rig, driven) in &rigs {
        let bones = &rig.bones;
        // Eye bones (look-at of type bone) turn from rest; in avatar space (facing -Z) +Y turns
        // towards the character's left and +X lifts the gaze.
        let (left_eye, right_eye) = match face.gaze.map(|gaze| {
            let (yaw, pitch) = gaze_angles(gaze);
            rig.look_at.apply(yaw, pitch)
        }) {
            Some(LookAtOutput::Bones {
                left_eye,
                right_eye,
            }) => (
                Quat::from_euler(
                    EulerRot::YXZ,
                    left_eye.yaw.to_radians(),
                    -left_eye.pitch.to_radians(),
                    0.0,
                ),
                Quat::from_euler(
                    EulerRot::YXZ,
                    right_eye.yaw.to_radians(),
                    -right_eye.pitch.to_radians(),
                    0.0,
                ),
            ),
            _ => (Quat::IDENTITY, Quat::IDENTITY),
        };
        set_pose(&mut transforms, bones.left_eye, |eye| eye.rotated(left_eye));
        set_pose(&mut transforms, bones.right_eye, |eye| {
            eye.rotated(right_eye)
        });
        if driven {
            // Turn from the clip's pose: what the animation wrote this frame, or the last
            // pose it wrote when it did not write (no clip playing yet), never from our own
            // turned pose (which would add up frame after frame).
            for (bone, turn) in [(bones.head, head_turn), (bones.neck, neck_turn)] {
                let Some(bone) = bone else { continue };
                let Ok(current) = transforms.get(bone.entity) else {
                    continue;
                };
                let base = match clip_poses.get(&bone.entity) {
                    Some((base, written)) if written == current => *base,
                    _ => *current,
                };
                let pose = bone.rotated_from(&base, turn);
                clip_poses.insert(bone.entity, (base, pose));
                set_pose(&mut transforms, Some(bone), |_| pose);
            }
            continue;
        }
        set_pose(&mut transforms, bones.head, |head| head.rotated(head_turn));
        set_pose(&mut transforms, bones.neck, |neck| neck.rotated(neck_turn));
        set_pose(&mut transforms, bones.chest, |chest| {
            let mut pose = chest.rest;
            pose.translation.y += breath;
            pose
        });
        // In avatar space (both versions face -Z) the character's left is -X; rotating about
        // +Z lowers the left arm.
        set_pose(&mut transforms, bones.left_upper_arm, |arm| {
            arm.rotated(Quat::from_rotation_z(ARMS_DOWN))
        });
        set_pose(&mut transforms, bones.right_upper_arm, |arm| {
            arm.rotated(Quat::from_rotation_z(-ARMS_DOWN))
        });
    }
}
