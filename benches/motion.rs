//! The cost of motion per frame: a clip retargeted onto an avatar's bones (done once per
//! avatar and clip) and Bevy's animation evaluation + transform propagation of the whole
//! skeleton each frame, for the built-in mascot and real avatars (Godette, VRM 0.x; a VRM 1.0
//! sample), against the same app with no clip playing.
//! Run: `cargo bench --bench motion` (the real avatars need `../shared/`).

use std::path::Path;
use std::time::Duration;

use bevy::animation::{AnimatedBy, AnimationPlugin};
use bevy::math::{Affine3A, Quat, Vec3};
use bevy::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use desktop_mate::avatar::default_avatar::DEFAULT_AVATAR;
use desktop_mate::avatar::vrm_file::read_glb;
use desktop_mate::motion::builtin::builtin;
use desktop_mate::motion::retarget::{Skeleton, SkeletonBone, retarget};
use desktop_mate::motion::vrma::{VrmaClip, bone_from_name, read_vrma};
use desktop_mate::motion::{animation_clip, target_id};
use serde_json::Value;
use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;

/// An avatar file's node tree: local transforms, parents and humanoid bones.
struct Nodes {
    local: Vec<Transform>,
    parent: Vec<Option<usize>>,
    bones: Vec<(HumanBoneName, usize)>,
}

fn nodes(bytes: &[u8]) -> Nodes {
    let json = read_glb(bytes).expect("glb").json;
    let list = json["nodes"].as_array().expect("nodes");
    let f = |v: &Value, i: usize, d: f32| v.get(i).and_then(Value::as_f64).map_or(d, |x| x as f32);
    let mut local = Vec::new();
    let mut parent = vec![None; list.len()];
    for (index, node) in list.iter().enumerate() {
        let t = &node["translation"];
        let r = &node["rotation"];
        local.push(Transform {
            translation: Vec3::new(f(t, 0, 0.0), f(t, 1, 0.0), f(t, 2, 0.0)),
            rotation: Quat::from_xyzw(f(r, 0, 0.0), f(r, 1, 0.0), f(r, 2, 0.0), f(r, 3, 1.0))
                .normalize(),
            scale: Vec3::ONE,
        });
        for child in node["children"].as_array().into_iter().flatten() {
            parent[child.as_u64().expect("child") as usize] = Some(index);
        }
    }
    let mut bones = Vec::new();
    if let Some(map) = json
        .pointer("/extensions/VRMC_vrm/humanoid/humanBones")
        .and_then(Value::as_object)
    {
        for (name, bone) in map {
            if let (Some(b), Some(n)) = (bone_from_name(name), bone["node"].as_u64()) {
                bones.push((b, n as usize));
            }
        }
    }
    if let Some(list) = json
        .pointer("/extensions/VRM/humanoid/humanBones")
        .and_then(Value::as_array)
    {
        for bone in list {
            if let (Some(b), Some(n)) = (
                bone["bone"].as_str().and_then(bone_from_name),
                bone["node"].as_u64(),
            ) {
                bones.push((b, n as usize));
            }
        }
    }
    Nodes {
        local,
        parent,
        bones,
    }
}

impl Nodes {
    fn world(&self, node: usize) -> Affine3A {
        let mut world = self.local[node].compute_affine();
        let mut current = self.parent[node];
        while let Some(p) = current {
            world = self.local[p].compute_affine() * world;
            current = self.parent[p];
        }
        world
    }

    fn skeleton(&self) -> Skeleton {
        Skeleton {
            bones: self
                .bones
                .iter()
                .map(|(bone, node)| SkeletonBone {
                    bone: *bone,
                    rest_rotation: self.local[*node].rotation,
                    rest_translation: self.local[*node].translation,
                    parent_world: self.parent[*node].map_or(Affine3A::IDENTITY, |p| self.world(p)),
                })
                .collect(),
        }
    }
}

/// A headless app with Bevy's animation and transform plugins and the avatar's node tree as
/// entities; with `clip`, that clip loops on the humanoid bones.
fn app(nodes: &Nodes, clip: Option<&VrmaClip>) -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        AssetPlugin::default(),
        bevy::transform::TransformPlugin,
        AnimationPlugin,
    ));
    app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(
        Duration::from_millis(16),
    ));
    app.finish();
    app.cleanup();
    let world = app.world_mut();
    let root = world.spawn(Transform::default()).id();
    let entities: Vec<Entity> = nodes
        .local
        .iter()
        .map(|local| world.spawn(*local).id())
        .collect();
    for (index, entity) in entities.iter().enumerate() {
        let parent = nodes.parent[index].map_or(root, |p| entities[p]);
        world.entity_mut(*entity).insert(ChildOf(parent));
    }
    if let Some(clip) = clip {
        let retargeted = retarget(clip, &nodes.skeleton());
        let handle = world
            .resource_mut::<Assets<AnimationClip>>()
            .add(animation_clip(&retargeted));
        let (graph, indices) = AnimationGraph::from_clip(handle);
        let graph = world.resource_mut::<Assets<AnimationGraph>>().add(graph);
        let mut player = AnimationPlayer::default();
        player.play(indices).repeat();
        world
            .entity_mut(root)
            .insert((player, AnimationGraphHandle(graph)));
        for (bone, node) in &nodes.bones {
            world
                .entity_mut(entities[*node])
                .insert((target_id(*bone), AnimatedBy(root)));
        }
    }
    app.update();
    app
}

fn avatars() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![("built-in", DEFAULT_AVATAR.to_vec())];
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/avatars");
    for (name, file) in [
        ("godette (0.x)", "Godette_vrm_v4.vrm"),
        (
            "vrm 1.0 sample",
            "VRMC_materials_mtoon_UV_Animation_Test.vrm",
        ),
    ] {
        match std::fs::read(shared.join(file)) {
            Ok(bytes) => out.push((name, bytes)),
            Err(err) => eprintln!("skipped {name}: {err}"),
        }
    }
    out
}

fn motion(c: &mut Criterion) {
    let idle = read_vrma(builtin("idle").expect("idle").bytes).expect("idle clip");
    let mut group = c.benchmark_group("motion");
    for (name, bytes) in avatars() {
        let nodes = nodes(&bytes);
        let skeleton = nodes.skeleton();
        group.bench_function(format!("retarget idle clip / {name}"), |b| {
            b.iter(|| retarget(&idle, &skeleton));
        });
        let mut still = app(&nodes, None);
        group.bench_function(
            format!("frame, no clip / {name} ({} nodes)", nodes.local.len()),
            |b| {
                b.iter(|| still.update());
            },
        );
        let mut moving = app(&nodes, Some(&idle));
        group.bench_function(format!("frame, idle clip / {name}"), |b| {
            b.iter(|| moving.update());
        });
    }
    group.finish();
}

criterion_group!(benches, motion);
criterion_main!(benches);
