//! What the face and pose systems drive on a spawned avatar: the expression map, the entities
//! holding morph weights, and the bones we move with their rest pose.

use bevy::gltf::GltfLoaderSettings;
use bevy::gltf::extensions::{ErasedGltfExtensionHandler, GltfExtensionHandler};
use bevy::prelude::*;
use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;

use super::expression::ExpressionMap;
use super::vrm_file::BlendShapeGroup;

/// On the glTF node entities that carry `MorphWeights`: the glTF mesh index, which VRM
/// blend-shape binds refer to.
/// Reflected: it is stored in the glTF scene asset and copied when the scene is spawned.
#[derive(Component, Reflect, Debug, Clone, Copy, PartialEq, Eq)]
#[reflect(Component)]
pub struct VrmMeshIndex(pub usize);

/// Tags glTF nodes with their mesh index while bevy_gltf builds the scene.
#[derive(Default, Clone)]
pub(super) struct MeshIndexHandler;

impl GltfExtensionHandler for MeshIndexHandler {
    fn dyn_clone(&self) -> Box<dyn ErasedGltfExtensionHandler> {
        Box::new(self.clone())
    }

    fn on_root(
        &mut self,
        _load_context: &mut bevy::asset::LoadContext<'_>,
        _gltf: &gltf::Gltf,
        _settings: &GltfLoaderSettings,
    ) {
    }

    fn on_gltf_node(
        &mut self,
        _load_context: &mut bevy::asset::LoadContext<'_>,
        gltf_node: &gltf::Node,
        entity: &mut EntityWorldMut,
    ) {
        if let Some(mesh) = gltf_node.mesh() {
            entity.insert(VrmMeshIndex(mesh.index()));
        }
    }
}

/// A bone we animate, with its rest pose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RigBone {
    pub entity: Entity,
    pub rest: Transform,
    /// Rotation of the bone's parent relative to the avatar root at rest, to turn rotations
    /// given in avatar space into the bone's local space.
    pub parent_rotation: Quat,
}

impl RigBone {
    /// The local transform after rotating the bone by `rotation`, given in avatar space.
    pub fn rotated(&self, rotation: Quat) -> Transform {
        let local = self.parent_rotation.inverse() * rotation * self.parent_rotation;
        Transform {
            rotation: local * self.rest.rotation,
            ..self.rest
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RigBones {
    pub head: Option<RigBone>,
    pub neck: Option<RigBone>,
    pub chest: Option<RigBone>,
    pub left_upper_arm: Option<RigBone>,
    pub right_upper_arm: Option<RigBone>,
}

/// On the avatar root once its scene is spawned.
#[derive(Component, Debug, Clone, Default)]
pub struct AvatarRig {
    pub map: ExpressionMap,
    /// Entities with `MorphWeights` and their mesh index.
    pub morphs: Vec<(Entity, usize)>,
    pub bones: RigBones,
}

impl AvatarRig {
    /// Collects the rig under `root` in a freshly spawned scene (rest pose).
    pub fn build(
        root: Entity,
        groups: &[BlendShapeGroup],
        children: &Query<&Children>,
        nodes: &Query<(Option<&VrmMeshIndex>, Option<&HumanBoneName>, &Transform)>,
        parents: &Query<&ChildOf>,
    ) -> Self {
        let mut rig = AvatarRig {
            map: ExpressionMap::from_groups(groups),
            ..default()
        };
        for entity in children.iter_descendants(root) {
            let Ok((mesh, bone, transform)) = nodes.get(entity) else {
                continue;
            };
            if let Some(mesh) = mesh {
                rig.morphs.push((entity, mesh.0));
            }
            // bevy_vrm 0.5 tags bones with VRM 1.0 names for both versions (0.x thumbs shift
            // one joint down); the bones we move are named the same in 0.x and 1.0.
            let Some(bone) = bone else {
                continue;
            };
            let slot = match bone {
                HumanBoneName::Head => &mut rig.bones.head,
                HumanBoneName::Neck => &mut rig.bones.neck,
                HumanBoneName::Chest => &mut rig.bones.chest,
                HumanBoneName::LeftUpperArm => &mut rig.bones.left_upper_arm,
                HumanBoneName::RightUpperArm => &mut rig.bones.right_upper_arm,
                _ => continue,
            };
            *slot = Some(RigBone {
                entity,
                rest: *transform,
                parent_rotation: rotation_to(root, entity, nodes, parents),
            });
        }
        rig
    }
}

/// Rotation of `entity`'s parent relative to `root`, from the local transforms. This includes
/// the glTF scene entity between `root` and the nodes, which bevy_vrm 0.5 turns by 180° for
/// VRM 1.0 files so that every avatar faces -Z below `root`.
fn rotation_to(
    root: Entity,
    entity: Entity,
    nodes: &Query<(Option<&VrmMeshIndex>, Option<&HumanBoneName>, &Transform)>,
    parents: &Query<&ChildOf>,
) -> Quat {
    let mut rotation = Quat::IDENTITY;
    let mut current = parents.get(entity).map(ChildOf::parent).ok();
    while let Some(node) = current {
        if node == root {
            break;
        }
        if let Ok((_, _, transform)) = nodes.get(node) {
            rotation = transform.rotation * rotation;
        }
        current = parents.get(node).map(ChildOf::parent).ok();
    }
    rotation
}
