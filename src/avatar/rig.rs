//! What the face and pose systems drive on a spawned avatar: the expression map, the entities
//! holding morph weights, the materials expressions recolour, the look-at settings, and the
//! bones we move with their rest pose.

use bevy::gltf::GltfLoaderSettings;
use bevy::gltf::extensions::{ErasedGltfExtensionHandler, GltfExtensionHandler};
use bevy::prelude::*;
use bevy_shader_mtoon::MtoonMaterial;
use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;

use super::expression::ExpressionMap;
use super::look_at::LookAt;
use super::source::AvatarModel;
use super::vrm_file::VrmVersion;

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

/// On an avatar root whose body a motion clip poses every frame (the motion plugin): the
/// procedural layers then turn the head and neck from the clip's pose instead of the rest pose,
/// and leave the arms and chest to the clip.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct BodyDriven;

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
        self.rotated_from(&self.rest, rotation)
    }

    /// `pose` (the bone's local transform) turned further by `rotation`, given in avatar space
    /// (with the parent at rest: exact for the small turns the procedural layers add).
    pub fn rotated_from(&self, pose: &Transform, rotation: Quat) -> Transform {
        let local = self.parent_rotation.inverse() * rotation * self.parent_rotation;
        Transform {
            rotation: local * pose.rotation,
            ..*pose
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
    pub left_eye: Option<RigBone>,
    pub right_eye: Option<RigBone>,
}

/// A humanoid bone of the spawned scene at rest: what motion clips are retargeted against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestBone {
    pub bone: HumanBoneName,
    pub entity: Entity,
    /// The bone's local transform at rest.
    pub rest: Transform,
    /// Its parent's transform relative to the avatar root, at rest.
    pub parent_world: bevy::math::Affine3A,
}

/// A material of the spawned scene that expressions may change, as bevy_vrm left it: MToon
/// (labelled `Material0/mtoon`) or the glTF loader's StandardMaterial (`Material0/std`).
#[derive(Debug, Clone, PartialEq)]
pub enum AvatarMaterial {
    Standard(Handle<StandardMaterial>),
    Mtoon(Handle<MtoonMaterial>),
}

/// The glTF material index in a material asset label (`Material3/std`, `Material3 (inverted)/mtoon`).
pub fn material_index(label: &str) -> Option<usize> {
    let digits = label.strip_prefix("Material")?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

impl AvatarMaterial {
    fn of(
        standard: Option<&MeshMaterial3d<StandardMaterial>>,
        mtoon: Option<&MeshMaterial3d<MtoonMaterial>>,
    ) -> Option<(usize, AvatarMaterial)> {
        let (label, material) = match (mtoon, standard) {
            (Some(mtoon), _) => (
                mtoon.0.path()?.label()?.to_owned(),
                AvatarMaterial::Mtoon(mtoon.0.clone()),
            ),
            (None, Some(standard)) => (
                standard.0.path()?.label()?.to_owned(),
                AvatarMaterial::Standard(standard.0.clone()),
            ),
            (None, None) => return None,
        };
        Some((material_index(&label)?, material))
    }
}

/// On the avatar root once its scene is spawned.
#[derive(Component, Debug, Clone, Default)]
pub struct AvatarRig {
    pub map: ExpressionMap,
    /// Entities with `MorphWeights` and their mesh index.
    pub morphs: Vec<(Entity, usize)>,
    pub bones: RigBones,
    /// How the eyes follow the cursor (defaults: expression look weights, linear).
    pub look_at: LookAt,
    /// `None` for rigs made up in tests.
    pub version: Option<VrmVersion>,
    /// The scene's materials by glTF material index (a material may appear under two handles,
    /// e.g. a mirrored copy).
    pub materials: Vec<(usize, AvatarMaterial)>,
    /// Every humanoid bone at rest (measured when the scene spawned, before any pose).
    pub humanoid: Vec<RestBone>,
}

impl AvatarRig {
    /// Collects the rig under `root` in a freshly spawned scene (rest pose).
    pub fn build(
        root: Entity,
        model: Option<&AvatarModel>,
        children: &Query<&Children>,
        nodes: &Query<(Option<&VrmMeshIndex>, Option<&HumanBoneName>, &Transform)>,
        parents: &Query<&ChildOf>,
        materials: &Query<(
            Option<&MeshMaterial3d<StandardMaterial>>,
            Option<&MeshMaterial3d<MtoonMaterial>>,
        )>,
    ) -> Self {
        let mut rig = match model {
            Some(model) => AvatarRig {
                map: ExpressionMap::from_expressions(&model.expressions),
                look_at: model.look_at.clone(),
                version: Some(model.version),
                ..default()
            },
            None => AvatarRig::default(),
        };
        for entity in children.iter_descendants(root) {
            if let Ok((standard, mtoon)) = materials.get(entity)
                && let Some(material) = AvatarMaterial::of(standard, mtoon)
                && !rig.materials.contains(&material)
            {
                rig.materials.push(material);
            }
            let Ok((mesh, bone, transform)) = nodes.get(entity) else {
                continue;
            };
            if let Some(mesh) = mesh {
                rig.morphs.push((entity, mesh.0));
            }
            // bevy_vrm 0.5 tags bones with VRM 1.0 names for both versions (0.x thumbs shift
            // one joint down); the bones we move are named the same in 0.x and 1.0, and the
            // rotations we give are in avatar space, which faces -Z for both (see rotation_to).
            let Some(bone) = bone else {
                continue;
            };
            if !rig.humanoid.iter().any(|b| b.bone == *bone) {
                rig.humanoid.push(RestBone {
                    bone: *bone,
                    entity,
                    rest: *transform,
                    parent_world: affine_to(root, entity, nodes, parents),
                });
            }
            let slot = match bone {
                HumanBoneName::Head => &mut rig.bones.head,
                HumanBoneName::Neck => &mut rig.bones.neck,
                HumanBoneName::Chest => &mut rig.bones.chest,
                HumanBoneName::LeftUpperArm => &mut rig.bones.left_upper_arm,
                HumanBoneName::RightUpperArm => &mut rig.bones.right_upper_arm,
                HumanBoneName::LeftEye => &mut rig.bones.left_eye,
                HumanBoneName::RightEye => &mut rig.bones.right_eye,
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

/// `f` folded over the local transforms of `entity`'s ancestors below `root`, nearest first.
fn fold_ancestors<T>(
    root: Entity,
    entity: Entity,
    nodes: &Query<(Option<&VrmMeshIndex>, Option<&HumanBoneName>, &Transform)>,
    parents: &Query<&ChildOf>,
    init: T,
    f: impl Fn(T, &Transform) -> T,
) -> T {
    let mut acc = init;
    let mut current = parents.get(entity).map(ChildOf::parent).ok();
    while let Some(node) = current {
        if node == root {
            break;
        }
        if let Ok((_, _, transform)) = nodes.get(node) {
            acc = f(acc, transform);
        }
        current = parents.get(node).map(ChildOf::parent).ok();
    }
    acc
}

/// Transform of `entity`'s parent relative to `root`, from the local transforms.
fn affine_to(
    root: Entity,
    entity: Entity,
    nodes: &Query<(Option<&VrmMeshIndex>, Option<&HumanBoneName>, &Transform)>,
    parents: &Query<&ChildOf>,
) -> bevy::math::Affine3A {
    let identity = bevy::math::Affine3A::IDENTITY;
    fold_ancestors(root, entity, nodes, parents, identity, |affine, local| {
        local.compute_affine() * affine
    })
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
    fold_ancestors(
        root,
        entity,
        nodes,
        parents,
        Quat::IDENTITY,
        |rotation, local| local.rotation * rotation,
    )
}
