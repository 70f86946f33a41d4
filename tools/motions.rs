//! The generator of the built-in motion clips (CC0, ours): `cargo run --example make_motions`
//! writes one VRM Animation file per clip into `assets/motions/`, which are committed and
//! embedded in the app (`desktop_mate::motion::builtin`). A test checks that this code still
//! reproduces them byte for byte.
//!
//! Each clip is a few key poses (Euler angles in degrees per humanoid bone, VRM 1.0's
//! normalized convention: rest = T-pose, +Y up, +Z forward, +X the character's left) eased
//! into each other (cosine) and sampled at 15 keys per second. The skeleton written with them
//! has identity rest rotations, so the keys are the normalized rotations themselves. Angles:
//! +X bends a spine or head forward (a nod), +Y turns it to the character's left, +Z tilts it
//! to the character's right; an upper arm lowers with -Z on the left, +Z on the right.

use std::f32::consts::PI;

use bevy::math::{EulerRot, Quat};
use serde_json::{Map, Value, json};

use desktop_mate::avatar::vrm_file::{Glb, write_glb};

/// Keys per second in the written files.
const FPS: f32 = 15.0;
/// Hips height of the written skeleton (metres): the app scales hips motion by the avatar's.
const HIPS_HEIGHT: f32 = 0.85;

/// (bone, parent index in this list, position relative to the parent)
const SKELETON: &[(&str, Option<usize>, [f32; 3])] = &[
    ("hips", None, [0.0, HIPS_HEIGHT, 0.0]),
    ("spine", Some(0), [0.0, 0.1, 0.0]),
    ("chest", Some(1), [0.0, 0.12, 0.0]),
    ("neck", Some(2), [0.0, 0.2, 0.0]),
    ("head", Some(3), [0.0, 0.08, 0.0]),
    ("leftUpperArm", Some(2), [0.18, 0.16, 0.0]),
    ("leftLowerArm", Some(5), [0.25, 0.0, 0.0]),
    ("leftHand", Some(6), [0.23, 0.0, 0.0]),
    ("rightUpperArm", Some(2), [-0.18, 0.16, 0.0]),
    ("rightLowerArm", Some(8), [-0.25, 0.0, 0.0]),
    ("rightHand", Some(9), [-0.23, 0.0, 0.0]),
    ("leftUpperLeg", Some(0), [0.09, -0.05, 0.0]),
    ("leftLowerLeg", Some(11), [0.0, -0.38, 0.0]),
    ("leftFoot", Some(12), [0.0, -0.38, 0.0]),
    ("rightUpperLeg", Some(0), [-0.09, -0.05, 0.0]),
    ("rightLowerLeg", Some(14), [0.0, -0.38, 0.0]),
    ("rightFoot", Some(15), [0.0, -0.38, 0.0]),
];

/// A key pose: Euler angles (degrees, x/y/z) per bone and the hips' offset (metres).
#[derive(Debug, Clone, PartialEq)]
struct Pose {
    angles: Vec<(&'static str, [f32; 3])>,
    hips: [f32; 3],
}

impl Pose {
    /// Standing, arms relaxed (the same 69° as the app's pose without motion).
    fn base() -> Self {
        Pose {
            angles: vec![
                ("leftUpperArm", [0.0, 0.0, -69.0]),
                ("rightUpperArm", [0.0, 0.0, 69.0]),
                ("leftLowerArm", [0.0, -10.0, 0.0]),
                ("rightLowerArm", [0.0, 10.0, 0.0]),
            ],
            hips: [0.0; 3],
        }
    }

    fn with(mut self, bone: &'static str, angles: [f32; 3]) -> Self {
        match self.angles.iter_mut().find(|(b, _)| *b == bone) {
            Some(slot) => slot.1 = angles,
            None => self.angles.push((bone, angles)),
        }
        self
    }

    fn hips(mut self, offset: [f32; 3]) -> Self {
        self.hips = offset;
        self
    }

    fn angle(&self, bone: &str) -> [f32; 3] {
        self.angles
            .iter()
            .find(|(b, _)| *b == bone)
            .map_or([0.0; 3], |(_, a)| *a)
    }
}

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn round(v: f32) -> f32 {
    let rounded = (v * 100_000.0).round() / 100_000.0;
    if rounded == 0.0 { 0.0 } else { rounded }
}

fn quat([x, y, z]: [f32; 3]) -> [f32; 4] {
    let q = Quat::from_euler(
        EulerRot::YXZ,
        y.to_radians(),
        x.to_radians(),
        z.to_radians(),
    );
    // One sign for every key, so that consecutive keys never take the long way round.
    let q = if q.w < 0.0 { -q } else { q };
    [round(q.x), round(q.y), round(q.z), round(q.w)]
}

/// A built-in clip: its file name (without `.vrma`) and key poses at times in seconds.
struct Clip {
    name: &'static str,
    keys: Vec<(f32, Pose)>,
}

fn clip(name: &'static str, keys: Vec<(f32, Pose)>) -> Clip {
    Clip { name, keys }
}

fn base() -> Pose {
    Pose::base()
}

/// Every built-in clip.
fn clips() -> Vec<Clip> {
    let breath_in = |side: f32| {
        base()
            .with("chest", [1.5, 0.0, 0.0])
            .with("spine", [0.0, 0.0, side])
            .with("leftUpperArm", [0.0, 0.0, -67.0])
            .with("rightUpperArm", [0.0, 0.0, 67.0])
            .hips([0.006 * side, 0.0, 0.0])
    };
    let wave = |forearm: f32| {
        base()
            .with("rightUpperArm", [0.0, 0.0, -40.0])
            .with("rightLowerArm", [0.0, 0.0, forearm])
            .with("head", [0.0, 0.0, 6.0])
    };
    let arms_up = base()
        .with("leftUpperArm", [0.0, 0.0, 150.0])
        .with("rightUpperArm", [0.0, 0.0, -150.0])
        .with("leftLowerArm", [0.0, 0.0, 0.0])
        .with("rightLowerArm", [0.0, 0.0, 0.0])
        .with("spine", [-6.0, 0.0, 0.0])
        .with("chest", [-4.0, 0.0, 0.0])
        .with("head", [-10.0, 0.0, 0.0]);
    let crossed = base()
        .with("leftUpperArm", [0.0, -30.0, -55.0])
        .with("rightUpperArm", [0.0, 30.0, 55.0])
        .with("leftLowerArm", [0.0, -110.0, 0.0])
        .with("rightLowerArm", [0.0, 110.0, 0.0])
        .with("head", [6.0, 0.0, 0.0]);
    let slump = base()
        .with("spine", [10.0, 0.0, 0.0])
        .with("chest", [8.0, 0.0, 0.0])
        .with("head", [20.0, 0.0, 0.0])
        .with("leftUpperArm", [0.0, 0.0, -80.0])
        .with("rightUpperArm", [0.0, 0.0, 80.0]);
    let lean = base()
        .with("spine", [0.0, 0.0, 8.0])
        .with("chest", [0.0, 0.0, 4.0])
        .with("head", [0.0, 0.0, -10.0])
        .hips([0.01, 0.0, 0.0]);
    let startled = base()
        .with("leftUpperArm", [0.0, 0.0, -30.0])
        .with("rightUpperArm", [0.0, 0.0, 30.0])
        .with("leftLowerArm", [0.0, -70.0, 0.0])
        .with("rightLowerArm", [0.0, 70.0, 0.0])
        .with("head", [-10.0, 0.0, 0.0])
        .with("spine", [-6.0, 0.0, 0.0])
        .hips([0.0, 0.02, -0.05]);
    let pondering = base()
        .with("rightUpperArm", [0.0, 40.0, 55.0])
        .with("rightLowerArm", [0.0, 130.0, 0.0])
        .with("head", [-6.0, 0.0, 8.0]);
    // Listening: the head tilted toward the user and a little forward, the chest leaning in,
    // the tilt swaying slowly.
    let attentive = |sway: f32| {
        base()
            .with("head", [5.0, 0.0, 9.0 + sway])
            .with("neck", [2.0, 0.0, 2.0])
            .with("chest", [3.0, 0.0, 0.0])
            .with("spine", [3.0, 0.0, 0.0])
    };
    let dozing = |nod: f32| {
        base()
            .with("head", [24.0 + nod, 0.0, 0.0])
            .with("neck", [8.0 + nod / 2.0, 0.0, 0.0])
            .with("spine", [6.0, 0.0, 0.0])
            .with("leftUpperArm", [0.0, 0.0, -78.0])
            .with("rightUpperArm", [0.0, 0.0, 78.0])
    };
    let dangling = |swing: f32| {
        base()
            .with("leftUpperArm", [0.0, 0.0, -20.0])
            .with("rightUpperArm", [0.0, 0.0, 20.0])
            .with("leftUpperLeg", [-swing, 0.0, 0.0])
            .with("rightUpperLeg", [swing, 0.0, 0.0])
            .with("leftLowerLeg", [15.0, 0.0, 0.0])
            .with("rightLowerLeg", [15.0, 0.0, 0.0])
    };
    // Knees bent and arms out for balance, as after a little jump down.
    let landed = base()
        .with("leftUpperArm", [0.0, 0.0, -45.0])
        .with("rightUpperArm", [0.0, 0.0, 45.0])
        .with("leftUpperLeg", [-25.0, 0.0, 0.0])
        .with("rightUpperLeg", [-25.0, 0.0, 0.0])
        .with("leftLowerLeg", [45.0, 0.0, 0.0])
        .with("rightLowerLeg", [45.0, 0.0, 0.0])
        .with("spine", [8.0, 0.0, 0.0])
        .with("head", [-6.0, 0.0, 0.0])
        .hips([0.0, -0.06, 0.0]);
    vec![
        clip(
            "idle",
            vec![
                (0.0, base()),
                (1.0, breath_in(1.0)),
                (2.0, base().with("head", [0.0, 2.0, 0.0])),
                (3.0, breath_in(-1.0)),
                (4.0, base()),
            ],
        ),
        clip(
            "look_around",
            vec![
                (0.0, base()),
                (
                    1.2,
                    base()
                        .with("neck", [0.0, 12.0, 0.0])
                        .with("head", [0.0, 18.0, 0.0]),
                ),
                (
                    2.4,
                    base()
                        .with("neck", [0.0, 12.0, 0.0])
                        .with("head", [0.0, 18.0, 0.0]),
                ),
                (
                    3.4,
                    base()
                        .with("neck", [0.0, -10.0, 0.0])
                        .with("head", [0.0, -15.0, 0.0]),
                ),
                (5.0, base()),
            ],
        ),
        clip(
            "stretch",
            vec![
                (0.0, base()),
                (1.2, arms_up.clone()),
                (2.6, arms_up),
                (4.0, base()),
            ],
        ),
        clip(
            "fidget",
            vec![
                (0.0, base()),
                (
                    0.8,
                    base()
                        .with("spine", [0.0, 0.0, -3.0])
                        .with("head", [0.0, 0.0, 6.0])
                        .hips([0.015, 0.0, 0.0]),
                ),
                (
                    1.6,
                    base()
                        .with("spine", [0.0, 0.0, 2.0])
                        .with("head", [0.0, 0.0, -4.0])
                        .hips([-0.01, 0.0, 0.0]),
                ),
                (3.0, base()),
            ],
        ),
        clip(
            "greeting",
            vec![
                (0.0, base()),
                (0.5, wave(-50.0)),
                (0.9, wave(-15.0)),
                (1.3, wave(-50.0)),
                (1.7, wave(-15.0)),
                (2.1, wave(-50.0)),
                (3.0, base()),
            ],
        ),
        clip(
            "nod",
            vec![
                (0.0, base()),
                (
                    0.4,
                    base()
                        .with("head", [14.0, 0.0, 0.0])
                        .with("neck", [4.0, 0.0, 0.0]),
                ),
                (0.8, base()),
                (1.2, base().with("head", [10.0, 0.0, 0.0])),
                (1.6, base()),
            ],
        ),
        clip(
            "head_shake",
            vec![
                (0.0, base()),
                (0.3, base().with("head", [0.0, 16.0, 0.0])),
                (0.7, base().with("head", [0.0, -16.0, 0.0])),
                (1.1, base().with("head", [0.0, 12.0, 0.0])),
                (1.6, base()),
            ],
        ),
        clip(
            "joy",
            vec![
                (0.0, base()),
                (0.25, base().hips([0.0, -0.02, 0.0])),
                (
                    0.5,
                    base()
                        .with("leftUpperArm", [0.0, 0.0, -35.0])
                        .with("rightUpperArm", [0.0, 0.0, 35.0])
                        .with("head", [-8.0, 0.0, 0.0])
                        .hips([0.0, 0.04, 0.0]),
                ),
                (
                    0.8,
                    base()
                        .with("leftUpperArm", [0.0, 0.0, -45.0])
                        .with("rightUpperArm", [0.0, 0.0, 45.0]),
                ),
                (
                    1.05,
                    base()
                        .with("leftUpperArm", [0.0, 0.0, -35.0])
                        .with("rightUpperArm", [0.0, 0.0, 35.0])
                        .hips([0.0, 0.03, 0.0]),
                ),
                (1.4, base()),
                (2.0, base()),
            ],
        ),
        clip(
            "angry",
            vec![
                (0.0, base()),
                (0.6, crossed.clone()),
                (2.4, crossed),
                (3.0, base()),
            ],
        ),
        clip(
            "sorrow",
            vec![
                (0.0, base()),
                (0.8, slump.clone()),
                (2.2, slump),
                (3.0, base()),
            ],
        ),
        clip(
            "fun",
            vec![
                (0.0, base()),
                (0.6, lean.clone()),
                (1.8, lean),
                (2.5, base()),
            ],
        ),
        clip(
            "surprise",
            vec![
                (0.0, base()),
                (0.2, startled.clone()),
                (0.9, startled),
                (1.6, base()),
            ],
        ),
        clip(
            "thinking",
            vec![
                (0.0, base()),
                (0.7, pondering.clone()),
                (2.3, pondering),
                (3.0, base()),
            ],
        ),
        clip(
            "sleepy",
            vec![(0.0, dozing(0.0)), (2.0, dozing(4.0)), (4.0, dozing(0.0))],
        ),
        clip(
            "listening",
            vec![
                (0.0, attentive(0.0)),
                (1.6, attentive(3.0)),
                (3.2, attentive(0.0)),
            ],
        ),
        clip(
            "held",
            vec![
                (0.0, dangling(10.0)),
                (0.8, dangling(-10.0)),
                (1.6, dangling(10.0)),
            ],
        ),
        clip(
            "landing",
            vec![
                (0.0, dangling(0.0)),
                (0.25, landed.clone()),
                (0.6, landed),
                (1.2, base()),
            ],
        ),
    ]
}

/// Samples a clip's eased key poses: (time, pose) at `FPS`, the last key included.
fn sample(keys: &[(f32, Pose)], bones: &[&'static str]) -> Vec<(f32, Vec<[f32; 3]>, [f32; 3])> {
    let mut out = Vec::new();
    for pair in keys.windows(2) {
        let ((t0, a), (t1, b)) = (&pair[0], &pair[1]);
        let steps = (((t1 - t0) * FPS).round() as usize).max(1);
        for step in 0..steps {
            let k = step as f32 / steps as f32;
            let eased = 0.5 - 0.5 * (PI * k).cos();
            let angles = bones
                .iter()
                .map(|bone| lerp3(a.angle(bone), b.angle(bone), eased))
                .collect();
            out.push((t0 + (t1 - t0) * k, angles, lerp3(a.hips, b.hips, eased)));
        }
    }
    if let Some((t, pose)) = keys.last() {
        out.push((*t, bones.iter().map(|b| pose.angle(b)).collect(), pose.hips));
    }
    out
}

/// One clip as a `.vrma` file.
fn write_clip(clip: &Clip) -> Vec<u8> {
    let mut bones: Vec<&'static str> = Vec::new();
    for (_, pose) in &clip.keys {
        for (bone, _) in &pose.angles {
            if !bones.contains(bone) {
                bones.push(bone);
            }
        }
    }
    let moves_hips = clip.keys.iter().any(|(_, pose)| pose.hips != [0.0; 3]);
    let samples = sample(&clip.keys, &bones);

    let mut bin: Vec<u8> = Vec::new();
    let mut views = Vec::new();
    let mut accessors = Vec::new();
    let mut push = |values: &[f32], kind: &str, count: usize| -> usize {
        let offset = bin.len();
        for v in values {
            bin.extend_from_slice(&v.to_le_bytes());
        }
        views.push(json!({"buffer": 0, "byteOffset": offset, "byteLength": values.len() * 4}));
        let mut accessor = json!({
            "bufferView": views.len() - 1,
            "componentType": 5126,
            "count": count,
            "type": kind,
        });
        if kind == "SCALAR" {
            let (min, max) = values
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            accessor["min"] = json!([min]);
            accessor["max"] = json!([max]);
        }
        accessors.push(accessor);
        accessors.len() - 1
    };
    let times: Vec<f32> = samples.iter().map(|(t, _, _)| round(*t)).collect();
    let input = push(&times, "SCALAR", times.len());
    let node_of = |bone: &str| SKELETON.iter().position(|(name, _, _)| *name == bone);
    let mut samplers = Vec::new();
    let mut channels = Vec::new();
    for (index, bone) in bones.iter().enumerate() {
        let Some(node) = node_of(bone) else {
            continue;
        };
        let values: Vec<f32> = samples
            .iter()
            .flat_map(|(_, angles, _)| quat(angles[index]))
            .collect();
        let output = push(&values, "VEC4", samples.len());
        samplers.push(json!({"input": input, "output": output, "interpolation": "LINEAR"}));
        channels.push(
            json!({"sampler": samplers.len() - 1, "target": {"node": node, "path": "rotation"}}),
        );
    }
    if moves_hips {
        let values: Vec<f32> = samples
            .iter()
            .flat_map(|(_, _, offset)| {
                [
                    round(offset[0]),
                    round(HIPS_HEIGHT + offset[1]),
                    round(offset[2]),
                ]
            })
            .collect();
        let output = push(&values, "VEC3", samples.len());
        samplers.push(json!({"input": input, "output": output, "interpolation": "LINEAR"}));
        channels.push(
            json!({"sampler": samplers.len() - 1, "target": {"node": 0, "path": "translation"}}),
        );
    }

    let nodes: Vec<Value> = SKELETON
        .iter()
        .enumerate()
        .map(|(index, (name, _, position))| {
            let children: Vec<usize> = SKELETON
                .iter()
                .enumerate()
                .filter(|(_, (_, parent, _))| *parent == Some(index))
                .map(|(child, _)| child)
                .collect();
            let mut node = json!({"name": name, "translation": position});
            if !children.is_empty() {
                node["children"] = json!(children);
            }
            node
        })
        .collect();
    let human_bones: Map<String, Value> = SKELETON
        .iter()
        .enumerate()
        .map(|(index, (name, _, _))| ((*name).to_owned(), json!({"node": index})))
        .collect();
    let gltf = json!({
        "asset": {
            "version": "2.0",
            "generator": "desktop-mate tools/motions.rs",
            "copyright": "CC0-1.0",
        },
        "extensionsUsed": ["VRMC_vrm_animation"],
        "extensions": {
            "VRMC_vrm_animation": {
                "specVersion": "1.0",
                "humanoid": {"humanBones": human_bones},
            }
        },
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": nodes,
        "animations": [{"name": clip.name, "channels": channels, "samplers": samplers}],
        "buffers": [{"byteLength": bin.len()}],
        "bufferViews": views,
        "accessors": accessors,
    });
    write_glb(&Glb {
        json: gltf,
        bin: Some(bin),
    })
}

/// Every built-in clip: (name, `.vrma` bytes).
pub fn build() -> Vec<(&'static str, Vec<u8>)> {
    clips()
        .iter()
        .map(|clip| (clip.name, write_clip(clip)))
        .collect()
}
