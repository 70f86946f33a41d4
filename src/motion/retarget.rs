//! A normalized clip ([`VrmaClip`]) onto one avatar's bones, without Bevy.
//!
//! Avatar space is the space below the avatar's root entity, where bevy_vrm 0.5 makes both
//! VRM 0.x and 1.0 models face -Z (it turns 1.0 scenes half a turn). A clip's axes face +Z, so
//! its rotations and positions are first turned half a turn about Y (x and z negated: three-vrm
//! does the same for 0.x models, which face -Z in their files). Then, as three-vrm's
//! normalized humanoid rig does, a normalized rotation `n` of a bone becomes the local
//! rotation `p⁻¹ · n · p · r`, with `p` the rest rotation of the bone's parent in avatar space
//! and `r` the bone's rest local rotation. Both are constant per bone, and left and right
//! multiplication by unit quaternions keeps slerp, so keys are converted one by one and the
//! curves between them stay right.
//!
//! Every bone of the skeleton gets a track: bones the clip does not move hold their rest pose
//! (the specification's meaning of a missing track), so that cross-fades between clips blend
//! every bone and the procedural layers on top (look-at, head turns) start from a pose the
//! clip wrote this frame.

use std::collections::BTreeMap;

use bevy::math::{Affine3A, Quat, Vec3};
use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;

use super::vrma::{Track, VrmaClip};

/// One humanoid bone of an avatar at rest, in avatar space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkeletonBone {
    pub bone: HumanBoneName,
    /// The bone's local rest transform.
    pub rest_rotation: Quat,
    pub rest_translation: Vec3,
    /// The rest transform of the bone's parent entity relative to the avatar root.
    pub parent_world: Affine3A,
}

impl SkeletonBone {
    /// The bone's rest transform relative to the avatar root.
    pub fn world(&self) -> Affine3A {
        self.parent_world
            * Affine3A::from_rotation_translation(self.rest_rotation, self.rest_translation)
    }

    fn parent_rotation(&self) -> Quat {
        self.parent_world.to_scale_rotation_translation().1
    }

    /// The local rotation showing the normalized rotation `normalized` (clip axes).
    pub fn local_rotation(&self, normalized: Quat) -> Quat {
        let parent = self.parent_rotation();
        (parent.inverse() * to_avatar_space(normalized) * parent * self.rest_rotation).normalize()
    }
}

/// The bones a clip may move on one avatar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Skeleton {
    pub bones: Vec<SkeletonBone>,
}

impl Skeleton {
    pub fn get(&self, bone: HumanBoneName) -> Option<&SkeletonBone> {
        self.bones.iter().find(|b| b.bone == bone)
    }

    /// Height of the hips above the avatar root at rest (0 without hips).
    pub fn hips_height(&self) -> f32 {
        self.get(HumanBoneName::Hips)
            .map_or(0.0, |hips| hips.world().translation.y)
    }
}

/// Half a turn about Y: from a clip's axes (+Z forward) to avatar space (-Z forward).
pub fn to_avatar_space(rotation: Quat) -> Quat {
    Quat::from_xyzw(-rotation.x, rotation.y, -rotation.z, rotation.w)
}

fn point_to_avatar_space(point: Vec3) -> Vec3 {
    Vec3::new(-point.x, point.y, -point.z)
}

/// Local keys of one bone.
#[derive(Debug, Clone, PartialEq)]
pub struct BoneTracks {
    pub bone: HumanBoneName,
    pub rotation: Track<Quat>,
    /// Only the hips move.
    pub translation: Option<Track<Vec3>>,
}

/// A clip made for one avatar.
#[derive(Debug, Clone, PartialEq)]
pub struct Retargeted {
    pub duration: f32,
    pub bones: Vec<BoneTracks>,
    pub expressions: BTreeMap<String, Track<f32>>,
}

/// Bones whose clip tracks are not applied: the eyes follow the pointer (look-at).
pub const NOT_ANIMATED: [HumanBoneName; 2] = [HumanBoneName::LeftEye, HumanBoneName::RightEye];

/// The clip's tracks as local transforms of `skeleton`'s bones.
pub fn retarget(clip: &VrmaClip, skeleton: &Skeleton) -> Retargeted {
    let hips_scale = match (clip.rest_hips_height, skeleton.hips_height()) {
        (clip_height, avatar_height) if clip_height > 1e-4 && avatar_height > 1e-4 => {
            Some(avatar_height / clip_height)
        }
        _ => None,
    };
    let bones = skeleton
        .bones
        .iter()
        .filter(|bone| !NOT_ANIMATED.contains(&bone.bone))
        .map(|bone| {
            let rotation = clip.rotations.get(&bone.bone).map_or_else(
                || Track::constant(bone.rest_rotation),
                |track| track.map(|n| bone.local_rotation(n)),
            );
            let translation = match (&clip.hips, hips_scale) {
                (Some(hips), Some(scale)) if bone.bone == HumanBoneName::Hips => {
                    let to_local = bone.parent_world.inverse();
                    Some(hips.map(|p| to_local.transform_point3(point_to_avatar_space(p) * scale)))
                }
                _ => None,
            };
            BoneTracks {
                bone: bone.bone,
                rotation,
                translation,
            }
        })
        .collect();
    Retargeted {
        duration: clip.duration,
        bones,
        expressions: clip.expressions.clone(),
    }
}

impl Retargeted {
    /// Local rotation (and hips translation) of every bone at `time`.
    pub fn pose_at(&self, time: f32) -> Vec<(HumanBoneName, Quat, Option<Vec3>)> {
        self.bones
            .iter()
            .filter_map(|tracks| {
                let rotation = tracks.rotation.sample(time)?;
                let translation = tracks.translation.as_ref().and_then(|t| t.sample(time));
                Some((tracks.bone, rotation, translation))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::builtin::builtin;
    use crate::motion::vrma::read_vrma;

    /// A skeleton as a VRM 0.x exporter may leave it: rest rotations that are not identity.
    fn skeleton() -> Skeleton {
        let chest_rest = Quat::from_rotation_y(0.7) * Quat::from_rotation_x(0.2);
        let chest_world = Affine3A::from_rotation_translation(Quat::IDENTITY, Vec3::Y * 0.9);
        let arm_rest = Quat::from_rotation_z(-0.4);
        let arm_parent =
            chest_world * Affine3A::from_rotation_translation(chest_rest, Vec3::Y * 0.3);
        Skeleton {
            bones: vec![
                SkeletonBone {
                    bone: HumanBoneName::Hips,
                    rest_rotation: Quat::IDENTITY,
                    rest_translation: Vec3::Y * 0.9,
                    parent_world: Affine3A::IDENTITY,
                },
                SkeletonBone {
                    bone: HumanBoneName::Chest,
                    rest_rotation: chest_rest,
                    rest_translation: Vec3::Y * 0.3,
                    parent_world: chest_world,
                },
                SkeletonBone {
                    bone: HumanBoneName::RightUpperArm,
                    rest_rotation: arm_rest,
                    rest_translation: Vec3::X * 0.1,
                    parent_world: arm_parent,
                },
            ],
        }
    }

    #[test]
    fn world_turns_are_the_clips_whatever_the_rest_pose() {
        let skeleton = skeleton();
        let clip = read_vrma(builtin("greeting").expect("greeting").bytes).expect("clip");
        let retargeted = retarget(&clip, &skeleton);
        let arm = skeleton.get(HumanBoneName::RightUpperArm).expect("arm");
        let chest = skeleton.get(HumanBoneName::Chest).expect("chest");
        for time in [0.0, 0.5, 1.3, 2.9] {
            let pose = retargeted.pose_at(time);
            let local = |bone| {
                pose.iter()
                    .find(|(b, _, _)| *b == bone)
                    .map(|(_, r, _)| *r)
                    .expect("bone posed")
            };
            // World rotation of the arm: the chest's posed world times the arm's local.
            let chest_world = chest.parent_rotation() * local(HumanBoneName::Chest);
            let chest_rest_world = chest.parent_rotation() * chest.rest_rotation;
            // The arm's parent is posed as the chest is: its world changes by the same turn.
            let arm_parent_world = chest_world * chest_rest_world.inverse() * arm.parent_rotation();
            let arm_world = arm_parent_world * local(HumanBoneName::RightUpperArm);
            let arm_rest_world = arm.parent_rotation() * arm.rest_rotation;
            // Normalized world turn of the arm = chest's normalized turn x the arm's (clip axes).
            let expected_turn = to_avatar_space(
                clip.rotation(HumanBoneName::Chest, time)
                    .unwrap_or(Quat::IDENTITY)
                    * clip
                        .rotation(HumanBoneName::RightUpperArm, time)
                        .expect("arm key"),
            );
            let got_turn = arm_world * arm_rest_world.inverse();
            assert!(
                got_turn.angle_between(expected_turn) < 1e-3,
                "t={time}: {got_turn:?} vs {expected_turn:?}"
            );
        }
        // Hips positions are scaled to this skeleton's hips height (0.9 vs the clip's 0.85)
        // and turned to face -Z.
        let joy = read_vrma(builtin("joy").expect("joy").bytes).expect("clip");
        let hips = retarget(&joy, &skeleton).bones[0]
            .translation
            .clone()
            .expect("hips move");
        let clip_hips = joy.hips.as_ref().expect("hips");
        let scale = 0.9 / joy.rest_hips_height;
        for (got, key) in hips.values.iter().zip(&clip_hips.values) {
            assert!((got.y - key.y * scale).abs() < 1e-5);
            assert!((got.x + key.x * scale).abs() < 1e-5);
        }
    }

    #[test]
    fn bones_a_clip_does_not_move_hold_their_rest_pose_and_eyes_are_left_alone() {
        let mut skeleton = skeleton();
        skeleton.bones.push(SkeletonBone {
            bone: HumanBoneName::LeftEye,
            rest_rotation: Quat::IDENTITY,
            rest_translation: Vec3::ZERO,
            parent_world: Affine3A::IDENTITY,
        });
        let clip = read_vrma(builtin("nod").expect("nod").bytes).expect("clip");
        let retargeted = retarget(&clip, &skeleton);
        assert!(
            retargeted
                .bones
                .iter()
                .all(|b| b.bone != HumanBoneName::LeftEye)
        );
        let chest = retargeted
            .bones
            .iter()
            .find(|b| b.bone == HumanBoneName::Chest)
            .expect("chest");
        assert_eq!(chest.rotation.values, vec![skeleton.bones[1].rest_rotation]);
    }
}
