//! The generator of the built-in mascot, so that no third-party model is shipped. Not part of
//! the app (which embeds the generated file, see `desktop_mate::avatar::default_avatar`):
//! `cargo run --example make_default_avatar` runs it and writes `DEFAULT_AVATAR_PATH`; the file
//! is committed, and a test (tests/it/) checks that this code still reproduces it byte for byte.
//!
//! What it is: a chibi figure made of ellipsoids, rigidly skinned to the 17 bones VRM 0.x
//! requires (plus two ponytail bones driven by a spring-bone group), MToon materials, and a face
//! mesh whose morph targets are wired to every expression preset through `blendShapeMaster`.
//! Like every VRM 0.x file it faces -Z. Coordinates are rounded to 1e-5 so the bytes do not
//! depend on the last bit of the platform's `sin`/`cos`.

use std::collections::BTreeMap;
use std::f32::consts::PI;

use serde_json::{Value, json};

use desktop_mate::avatar::default_avatar::MORPH_TARGETS;
use desktop_mate::avatar::vrm_file::{Glb, write_glb};

type V3 = [f32; 3];

fn q(v: f32) -> f32 {
    let rounded = (v * 100_000.0).round() / 100_000.0;
    if rounded == 0.0 { 0.0 } else { rounded }
}

fn q3(v: V3) -> V3 {
    [q(v[0]), q(v[1]), q(v[2])]
}

/// sRGB colour to the linear values MToon's `_Color` holds.
fn linear(srgb: [f32; 3]) -> [f32; 4] {
    let channel = |c: f32| q(c.powf(2.2));
    [channel(srgb[0]), channel(srgb[1]), channel(srgb[2]), 1.0]
}

/// Humanoid bones: (VRM bone name, parent index in this list, head position in model space).
const BONES: &[(&str, Option<usize>, V3)] = &[
    ("hips", None, [0.0, 0.50, 0.0]),
    ("spine", Some(0), [0.0, 0.58, 0.0]),
    ("chest", Some(1), [0.0, 0.68, 0.0]),
    ("neck", Some(2), [0.0, 0.79, 0.0]),
    ("head", Some(3), [0.0, 0.84, 0.0]),
    ("leftUpperArm", Some(2), [-0.11, 0.76, 0.0]),
    ("leftLowerArm", Some(5), [-0.24, 0.76, 0.0]),
    ("leftHand", Some(6), [-0.36, 0.76, 0.0]),
    ("rightUpperArm", Some(2), [0.11, 0.76, 0.0]),
    ("rightLowerArm", Some(8), [0.24, 0.76, 0.0]),
    ("rightHand", Some(9), [0.36, 0.76, 0.0]),
    ("leftUpperLeg", Some(0), [-0.075, 0.47, 0.0]),
    ("leftLowerLeg", Some(11), [-0.075, 0.27, 0.0]),
    ("leftFoot", Some(12), [-0.075, 0.07, 0.0]),
    ("rightUpperLeg", Some(0), [0.075, 0.47, 0.0]),
    ("rightLowerLeg", Some(14), [0.075, 0.27, 0.0]),
    ("rightFoot", Some(15), [0.075, 0.07, 0.0]),
    // Not humanoid bones: the ponytail, swung by a spring-bone group.
    ("ponytail1", Some(4), [0.0, 1.08, 0.17]),
    ("ponytail2", Some(17), [0.0, 0.96, 0.23]),
];

const HEAD: usize = 4;
const HUMANOID_BONES: usize = 17;
const HEAD_CENTER: V3 = [0.0, 1.0, 0.0];
const HEAD_RADII: V3 = [0.2, 0.185, 0.19];

/// Materials: name, sRGB colour, double sided.
const MATERIALS: &[(&str, [f32; 3], bool)] = &[
    ("Skin", [1.0, 0.87, 0.78], false),
    ("Hair", [0.98, 0.60, 0.36], true),
    ("Clothes", [0.32, 0.56, 0.92], false),
    ("Shoes", [0.36, 0.26, 0.22], false),
    ("Eyes", [0.16, 0.12, 0.22], false),
    ("Highlight", [1.0, 1.0, 1.0], false),
    ("Mouth", [0.62, 0.20, 0.26], false),
];

const SKIN: usize = 0;
const HAIR: usize = 1;
const CLOTHES: usize = 2;
const SHOES: usize = 3;
const EYES: usize = 4;
const HIGHLIGHT: usize = 5;
const MOUTH: usize = 6;

fn target(name: &str) -> usize {
    MORPH_TARGETS
        .iter()
        .position(|t| *t == name)
        .unwrap_or_else(|| panic!("unknown morph target {name}"))
}

/// blendShapeMaster groups: (name, presetName, [(morph target, weight 0-100)], isBinary).
/// VRM 0.x has no `surprised` preset: like VRoid Studio, the group is `unknown` named "Surprised".
const GROUPS: &[(&str, &str, &[(&str, f32)], bool)] = &[
    ("Neutral", "neutral", &[], false),
    ("A", "a", &[("mouth_a", 100.0)], false),
    ("I", "i", &[("mouth_i", 100.0)], false),
    ("U", "u", &[("mouth_u", 100.0)], false),
    ("E", "e", &[("mouth_e", 100.0)], false),
    ("O", "o", &[("mouth_o", 100.0)], false),
    (
        "Blink",
        "blink",
        &[("eye_close_l", 100.0), ("eye_close_r", 100.0)],
        false,
    ),
    ("Blink_L", "blink_l", &[("eye_close_l", 100.0)], false),
    ("Blink_R", "blink_r", &[("eye_close_r", 100.0)], false),
    (
        "Joy",
        "joy",
        &[("eye_joy", 100.0), ("mouth_joy", 100.0)],
        false,
    ),
    (
        "Angry",
        "angry",
        &[("eye_angry", 100.0), ("mouth_angry", 100.0)],
        false,
    ),
    (
        "Sorrow",
        "sorrow",
        &[("eye_sorrow", 100.0), ("mouth_sorrow", 100.0)],
        false,
    ),
    (
        "Fun",
        "fun",
        &[("eye_joy", 60.0), ("mouth_fun", 100.0)],
        false,
    ),
    (
        "Surprised",
        "unknown",
        &[("eye_surprised", 100.0), ("mouth_surprised", 100.0)],
        false,
    ),
    ("LookUp", "lookup", &[("look_up", 100.0)], false),
    ("LookDown", "lookdown", &[("look_down", 100.0)], false),
    ("LookLeft", "lookleft", &[("look_left", 100.0)], false),
    ("LookRight", "lookright", &[("look_right", 100.0)], false),
];

/// Vertices and triangles of one part, before they are written to the buffer.
#[derive(Default)]
struct Part {
    positions: Vec<V3>,
    normals: Vec<V3>,
    /// MToon's shader reads UVs even without a texture.
    uvs: Vec<[f32; 2]>,
    joints: Vec<u8>,
    indices: Vec<u16>,
    /// Per morph target, one delta per vertex (face parts only).
    targets: Vec<Vec<V3>>,
}

impl Part {
    fn append(&mut self, other: Part) {
        let base = u16::try_from(self.positions.len()).unwrap_or(u16::MAX);
        self.positions.extend(other.positions);
        self.normals.extend(other.normals);
        self.uvs.extend(other.uvs);
        self.joints.extend(other.joints);
        self.indices.extend(other.indices.iter().map(|i| i + base));
        if self.targets.is_empty() {
            self.targets = other.targets;
        } else {
            for (mine, theirs) in self.targets.iter_mut().zip(other.targets) {
                mine.extend(theirs);
            }
        }
    }
}

/// An ellipsoid around `center`, every vertex bound to `joint`. `max_polar` < PI cuts it open
/// at the bottom (a cap).
fn ellipsoid(
    center: V3,
    radii: V3,
    joint: usize,
    segments: u16,
    rings: u16,
    max_polar: f32,
) -> Part {
    let mut part = Part::default();
    for ring in 0..=rings {
        let polar = max_polar * f32::from(ring) / f32::from(rings);
        for segment in 0..=segments {
            let azimuth = 2.0 * PI * f32::from(segment) / f32::from(segments);
            let unit = [
                polar.sin() * azimuth.sin(),
                polar.cos(),
                polar.sin() * azimuth.cos(),
            ];
            let position = [
                center[0] + radii[0] * unit[0],
                center[1] + radii[1] * unit[1],
                center[2] + radii[2] * unit[2],
            ];
            let gradient = [unit[0] / radii[0], unit[1] / radii[1], unit[2] / radii[2]];
            let length = (gradient[0].powi(2) + gradient[1].powi(2) + gradient[2].powi(2)).sqrt();
            part.positions.push(q3(position));
            part.normals.push(q3([
                gradient[0] / length,
                gradient[1] / length,
                gradient[2] / length,
            ]));
            part.uvs.push([
                q(f32::from(segment) / f32::from(segments)),
                q(f32::from(ring) / f32::from(rings)),
            ]);
            part.joints.push(joint as u8);
        }
    }
    let stride = segments + 1;
    for ring in 0..rings {
        for segment in 0..segments {
            let a = ring * stride + segment;
            let b = a + stride;
            // Counter-clockwise seen from outside.
            part.indices
                .extend_from_slice(&[a, a + 1, b, a + 1, b + 1, b]);
        }
    }
    part
}

/// The point on the head's front (-Z) surface at (x, y), pushed out by `out`.
fn on_face(x: f32, y: f32, out: f32) -> V3 {
    let dx = x / HEAD_RADII[0];
    let dy = (y - HEAD_CENTER[1]) / HEAD_RADII[1];
    let z = -HEAD_RADII[2] * (1.0 - dx * dx - dy * dy).max(0.0).sqrt();
    [x, y, z - out]
}

/// Which face feature a vertex belongs to, for its morph target deltas.
#[derive(Clone, Copy)]
enum Feature {
    /// `side` -1 = the character's left (-X), +1 = right.
    Eye {
        center: V3,
        side: f32,
        highlight: bool,
    },
    Mouth {
        center: V3,
    },
}

/// Half-size of an eye and of the mouth, for the deformations.
const EYE_RADII: V3 = [0.032, 0.046, 0.012];
const MOUTH_RADII: V3 = [0.036, 0.009, 0.012];

fn eye_delta(name: &str, p: V3, center: V3, side: f32, highlight: bool) -> V3 {
    let rel = [p[0] - center[0], p[1] - center[1], p[2] - center[2]];
    let across = rel[0] / EYE_RADII[0]; // -1..1
    // Positive towards the nose.
    let inward = -across * side;
    let hide = |rel: V3| [-rel[0] * 0.9, -rel[1] * 0.9, -rel[2] * 0.9 + 0.012];
    match name {
        "eye_close_l" | "eye_close_r" => {
            let this_eye = (name == "eye_close_l") == (side < 0.0);
            if !this_eye {
                [0.0; 3]
            } else if highlight {
                hide(rel)
            } else {
                [0.0, -rel[1] * 0.9 - 0.012, 0.0]
            }
        }
        // Happy closed eyes: a thin upward arch.
        "eye_joy" => {
            if highlight {
                hide(rel)
            } else {
                let arch = 0.016 * (1.0 - across * across);
                [0.0, -rel[1] * 0.82 + arch - 0.004, 0.0]
            }
        }
        // Inner corners down, a little narrower.
        "eye_angry" => [0.0, -rel[1] * 0.3 - 0.014 * inward, 0.0],
        // Inner corners up.
        "eye_sorrow" => [0.0, -rel[1] * 0.25 + 0.012 * inward - 0.004, 0.0],
        "eye_surprised" => [rel[0] * 0.22, rel[1] * 0.22, 0.0],
        "look_up" => [0.0, 0.008, 0.0],
        "look_down" => [0.0, -0.008, 0.0],
        // The character's left is -X.
        "look_left" => [-0.008, 0.0, 0.0],
        "look_right" => [0.008, 0.0, 0.0],
        _ => [0.0; 3],
    }
}

fn mouth_delta(name: &str, p: V3, center: V3) -> V3 {
    let rel = [p[0] - center[0], p[1] - center[1], p[2] - center[2]];
    let across = rel[0] / MOUTH_RADII[0];
    let curve = 1.0 - across * across; // 1 in the middle, 0 at the corners
    let scale = |w: f32, h: f32| [rel[0] * (w - 1.0), rel[1] * (h - 1.0), 0.0];
    match name {
        "mouth_a" => scale(1.1, 3.6),
        "mouth_i" => scale(1.35, 1.6),
        "mouth_u" => scale(0.55, 2.2),
        "mouth_e" => scale(1.2, 2.4),
        "mouth_o" => scale(0.75, 3.2),
        "mouth_joy" => {
            let [x, y, z] = scale(1.25, 2.6);
            [x, y - 0.012 * curve, z]
        }
        "mouth_angry" => {
            let [x, y, z] = scale(0.8, 1.0);
            [x, y + 0.008 * curve, z]
        }
        "mouth_sorrow" => {
            let [x, y, z] = scale(0.9, 1.0);
            [x, y + 0.012 * curve, z]
        }
        "mouth_fun" => {
            let [x, y, z] = scale(1.3, 3.0);
            [x, y - 0.010 * curve, z]
        }
        "mouth_surprised" => scale(0.7, 4.0),
        _ => [0.0; 3],
    }
}

fn with_targets(mut part: Part, feature: Feature) -> Part {
    part.targets = MORPH_TARGETS
        .iter()
        .map(|name| {
            part.positions
                .iter()
                .map(|&p| {
                    q3(match feature {
                        Feature::Eye {
                            center,
                            side,
                            highlight,
                        } => eye_delta(name, p, center, side, highlight),
                        Feature::Mouth { center } => mouth_delta(name, p, center),
                    })
                })
                .collect()
        })
        .collect();
    part
}

/// Body parts, grouped by material.
fn body_parts() -> Vec<(usize, Part)> {
    let bone = |name: &str| {
        BONES
            .iter()
            .position(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("unknown bone {name}"))
    };
    let mut skin = ellipsoid(HEAD_CENTER, HEAD_RADII, HEAD, 32, 20, PI);
    skin.append(ellipsoid(
        [0.0, 0.80, 0.0],
        [0.04, 0.05, 0.04],
        bone("neck"),
        12,
        6,
        PI,
    ));
    let mut hair = ellipsoid(
        [0.0, 1.04, 0.02],
        [0.212, 0.2, 0.205],
        HEAD,
        32,
        12,
        0.5 * PI,
    );
    let mut clothes = ellipsoid(
        [0.0, 0.665, 0.0],
        [0.125, 0.135, 0.095],
        bone("chest"),
        24,
        12,
        PI,
    );
    // A short dress flaring from the waist.
    clothes.append(ellipsoid(
        [0.0, 0.53, 0.0],
        [0.15, 0.1, 0.12],
        bone("hips"),
        24,
        12,
        PI,
    ));
    let mut shoes = Part::default();
    for side in [-1.0f32, 1.0] {
        let prefix = if side < 0.0 { "left" } else { "right" };
        let x = |v: f32| v * side;
        // Hair buns on top.
        hair.append(ellipsoid(
            [x(0.15), 1.15, 0.03],
            [0.065, 0.065, 0.065],
            HEAD,
            16,
            10,
            PI,
        ));
        clothes.append(ellipsoid(
            [x(0.175), 0.76, 0.0],
            [0.075, 0.038, 0.038],
            bone(&format!("{prefix}UpperArm")),
            14,
            8,
            PI,
        ));
        skin.append(ellipsoid(
            [x(0.30), 0.76, 0.0],
            [0.07, 0.03, 0.03],
            bone(&format!("{prefix}LowerArm")),
            14,
            8,
            PI,
        ));
        skin.append(ellipsoid(
            [x(0.39), 0.76, 0.0],
            [0.038, 0.034, 0.03],
            bone(&format!("{prefix}Hand")),
            12,
            8,
            PI,
        ));
        skin.append(ellipsoid(
            [x(0.075), 0.37, 0.0],
            [0.048, 0.11, 0.048],
            bone(&format!("{prefix}UpperLeg")),
            14,
            8,
            PI,
        ));
        skin.append(ellipsoid(
            [x(0.075), 0.17, 0.0],
            [0.04, 0.11, 0.04],
            bone(&format!("{prefix}LowerLeg")),
            14,
            8,
            PI,
        ));
        shoes.append(ellipsoid(
            [x(0.075), 0.035, -0.025],
            [0.05, 0.038, 0.08],
            bone(&format!("{prefix}Foot")),
            14,
            8,
            PI,
        ));
    }
    hair.append(ellipsoid(
        [0.0, 1.06, 0.2],
        [0.06, 0.07, 0.06],
        bone("ponytail1"),
        14,
        8,
        PI,
    ));
    hair.append(ellipsoid(
        [0.0, 0.93, 0.24],
        [0.05, 0.09, 0.05],
        bone("ponytail2"),
        14,
        8,
        PI,
    ));
    vec![
        (SKIN, skin),
        (HAIR, hair),
        (CLOTHES, clothes),
        (SHOES, shoes),
    ]
}

/// Face parts (with morph targets), grouped by material.
fn face_parts() -> Vec<(usize, Part)> {
    let mut eyes = Part::default();
    let mut highlights = Part::default();
    for side in [-1.0f32, 1.0] {
        let center = on_face(0.072 * side, 0.985, 0.0);
        let eye = ellipsoid(center, EYE_RADII, HEAD, 16, 10, PI);
        eyes.append(with_targets(
            eye,
            Feature::Eye {
                center,
                side,
                highlight: false,
            },
        ));
        let spot = [
            center[0] + 0.01 * side,
            center[1] + 0.016,
            center[2] - 0.008,
        ];
        let highlight = ellipsoid(spot, [0.011, 0.011, 0.006], HEAD, 10, 6, PI);
        highlights.append(with_targets(
            highlight,
            Feature::Eye {
                center,
                side,
                highlight: true,
            },
        ));
    }
    let center = on_face(0.0, 0.91, 0.0);
    let mouth = with_targets(
        ellipsoid(center, MOUTH_RADII, HEAD, 16, 8, PI),
        Feature::Mouth { center },
    );
    vec![(EYES, eyes), (HIGHLIGHT, highlights), (MOUTH, mouth)]
}

/// Accumulates the binary buffer, buffer views and accessors.
#[derive(Default)]
struct Buffers {
    bin: Vec<u8>,
    views: Vec<Value>,
    accessors: Vec<Value>,
}

impl Buffers {
    fn view(&mut self, bytes: &[u8], target: Option<u32>) -> usize {
        while !self.bin.len().is_multiple_of(4) {
            self.bin.push(0);
        }
        let mut view =
            json!({"buffer": 0, "byteOffset": self.bin.len(), "byteLength": bytes.len()});
        if let Some(target) = target {
            view["target"] = json!(target);
        }
        self.bin.extend_from_slice(bytes);
        self.views.push(view);
        self.views.len() - 1
    }

    fn accessor(&mut self, accessor: Value) -> usize {
        self.accessors.push(accessor);
        self.accessors.len() - 1
    }

    fn vec3(&mut self, values: &[V3], with_bounds: bool) -> usize {
        let bytes: Vec<u8> = values
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view = self.view(&bytes, Some(34962));
        let mut accessor = json!({"bufferView": view, "componentType": 5126, "count": values.len(), "type": "VEC3"});
        if with_bounds {
            let mut min = [f32::MAX; 3];
            let mut max = [f32::MIN; 3];
            for v in values {
                for axis in 0..3 {
                    min[axis] = min[axis].min(v[axis]);
                    max[axis] = max[axis].max(v[axis]);
                }
            }
            accessor["min"] = json!(min);
            accessor["max"] = json!(max);
        }
        self.accessor(accessor)
    }

    fn primitive(&mut self, part: &Part, material: usize) -> Value {
        let position = self.vec3(&part.positions, true);
        let normal = self.vec3(&part.normals, false);
        let uvs: Vec<u8> = part
            .uvs
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view = self.view(&uvs, Some(34962));
        let uv = self.accessor(
            json!({"bufferView": view, "componentType": 5126, "count": part.uvs.len(), "type": "VEC2"}),
        );
        let joints: Vec<u8> = part.joints.iter().flat_map(|&j| [j, 0, 0, 0]).collect();
        let view = self.view(&joints, Some(34962));
        let joints = self.accessor(
            json!({"bufferView": view, "componentType": 5121, "count": part.joints.len(), "type": "VEC4"}),
        );
        let weights: Vec<u8> = part
            .joints
            .iter()
            .flat_map(|_| [1.0f32, 0.0, 0.0, 0.0])
            .flat_map(f32::to_le_bytes)
            .collect();
        let view = self.view(&weights, Some(34962));
        let weights = self.accessor(
            json!({"bufferView": view, "componentType": 5126, "count": part.joints.len(), "type": "VEC4"}),
        );
        let indices: Vec<u8> = part.indices.iter().flat_map(|i| i.to_le_bytes()).collect();
        let view = self.view(&indices, Some(34963));
        let indices = self.accessor(
            json!({"bufferView": view, "componentType": 5123, "count": part.indices.len(), "type": "SCALAR"}),
        );
        let targets: Vec<Value> = part
            .targets
            .iter()
            .map(|deltas| json!({"POSITION": self.vec3(deltas, true)}))
            .collect();
        let mut primitive = json!({
            "attributes": {"POSITION": position, "NORMAL": normal, "TEXCOORD_0": uv, "JOINTS_0": joints, "WEIGHTS_0": weights},
            "indices": indices,
            "material": material,
            "mode": 4,
        });
        if !targets.is_empty() {
            primitive["targets"] = Value::Array(targets);
        }
        primitive
    }

    fn inverse_bind_matrices(&mut self) -> usize {
        let bytes: Vec<u8> = BONES
            .iter()
            .flat_map(|(_, _, p)| {
                [
                    1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -p[0], -p[1],
                    -p[2], 1.0,
                ]
            })
            .map(q)
            .flat_map(f32::to_le_bytes)
            .collect();
        let view = self.view(&bytes, None);
        self.accessor(json!({"bufferView": view, "componentType": 5126, "count": BONES.len(), "type": "MAT4"}))
    }
}

fn material_json(name: &str, srgb: [f32; 3], double_sided: bool) -> Value {
    json!({
        "name": name,
        "pbrMetallicRoughness": {"baseColorFactor": linear(srgb), "metallicFactor": 0.0, "roughnessFactor": 0.9},
        "doubleSided": double_sided,
    })
}

fn mtoon_json(name: &str, srgb: [f32; 3], double_sided: bool) -> Value {
    let shade = [srgb[0] * 0.78, srgb[1] * 0.72, srgb[2] * 0.8];
    json!({
        "name": name,
        "shader": "VRM/MToon",
        "renderQueue": 2000,
        "floatProperties": {
            "_CullMode": if double_sided { 0.0 } else { 2.0 },
            "_ShadeShift": -0.1,
            "_ShadeToony": 0.9,
            "_ReceiveShadowRate": 1.0,
            "_IndirectLightIntensity": 0.3,
            "_OutlineWidthMode": 0.0,
        },
        "vectorProperties": {"_Color": linear(srgb), "_ShadeColor": linear(shade)},
        "textureProperties": {},
        "keywordMap": {},
        "tagMap": {"RenderType": "Opaque"},
    })
}

/// Builds the default avatar's GLB bytes.
pub fn build() -> Vec<u8> {
    let mut buffers = Buffers::default();
    let body: Vec<Value> = body_parts()
        .iter()
        .map(|(material, part)| buffers.primitive(part, *material))
        .collect();
    let face: Vec<Value> = face_parts()
        .iter()
        .map(|(material, part)| buffers.primitive(part, *material))
        .collect();
    let inverse_bind = buffers.inverse_bind_matrices();

    // Nodes: 0 = root, 1.. = bones in BONES order, then the two mesh nodes.
    let bone_node = |bone: usize| bone + 1;
    let body_node = BONES.len() + 1;
    let face_node = body_node + 1;
    let mut nodes = vec![json!({"name": "Root", "children": [bone_node(0), body_node, face_node]})];
    for (index, (name, parent, head)) in BONES.iter().enumerate() {
        let origin = parent.map_or([0.0; 3], |p| BONES[p].2);
        let children: Vec<usize> = BONES
            .iter()
            .enumerate()
            .filter(|(_, (_, parent, _))| *parent == Some(index))
            .map(|(child, _)| bone_node(child))
            .collect();
        let mut node = json!({
            "name": name,
            "translation": q3([head[0] - origin[0], head[1] - origin[1], head[2] - origin[2]]),
        });
        if !children.is_empty() {
            node["children"] = json!(children);
        }
        nodes.push(node);
    }
    nodes.push(json!({"name": "Body", "mesh": 0, "skin": 0}));
    nodes.push(json!({"name": "Face", "mesh": 1, "skin": 0}));

    let human_bones: Vec<Value> = BONES[..HUMANOID_BONES]
        .iter()
        .enumerate()
        .map(|(index, (name, _, _))| json!({"bone": name, "node": bone_node(index), "useDefaultValues": true}))
        .collect();
    let groups: Vec<Value> = GROUPS
        .iter()
        .map(|(name, preset, binds, is_binary)| {
            let binds: Vec<Value> = binds
                .iter()
                .map(|(morph, weight)| json!({"mesh": 1, "index": target(morph), "weight": weight}))
                .collect();
            json!({"name": name, "presetName": preset, "binds": binds, "materialValues": [], "isBinary": is_binary})
        })
        .collect();
    let curve =
        json!({"curve": [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0], "xRange": 90.0, "yRange": 1.0});
    let mut extras = BTreeMap::new();
    extras.insert("targetNames", MORPH_TARGETS.to_vec());

    let vrm = json!({
        "exporterVersion": "desktop-mate make_default_avatar 1",
        "specVersion": "0.0",
        "meta": {
            "title": "desktop-mate default mascot",
            "version": "1",
            "author": "desktop-mate contributors",
            "allowedUserName": "Everyone",
            "violentUssageName": "Disallow",
            "sexualUssageName": "Disallow",
            "commercialUssageName": "Allow",
            "licenseName": "CC0",
        },
        "humanoid": {"humanBones": human_bones, "armStretch": 0.05, "legStretch": 0.05, "feetSpacing": 0.0, "hasTranslationDoF": false},
        "firstPerson": {
            "firstPersonBone": bone_node(HEAD),
            "firstPersonBoneOffset": {"x": 0.0, "y": 0.12, "z": -0.1},
            "meshAnnotations": [{"mesh": 0, "firstPersonFlag": "Auto"}, {"mesh": 1, "firstPersonFlag": "Auto"}],
            "lookAtTypeName": "BlendShape",
            "lookAtHorizontalInner": curve,
            "lookAtHorizontalOuter": curve,
            "lookAtVerticalDown": curve,
            "lookAtVerticalUp": curve,
        },
        "blendShapeMaster": {"blendShapeGroups": groups},
        "secondaryAnimation": {
            "boneGroups": [{
                "comment": "ponytail",
                "stiffiness": 1.5,
                "gravityPower": 0.3,
                "gravityDir": {"x": 0.0, "y": -1.0, "z": 0.0},
                "dragForce": 0.4,
                "hitRadius": 0.03,
                "bones": [bone_node(17)],
                "colliderGroups": [],
            }],
            "colliderGroups": [],
        },
        "materialProperties": MATERIALS.iter().map(|(n, c, d)| mtoon_json(n, *c, *d)).collect::<Vec<_>>(),
    });

    let json = json!({
        "asset": {"version": "2.0", "generator": "desktop-mate make_default_avatar"},
        "extensionsUsed": ["VRM"],
        "scene": 0,
        "scenes": [{"name": "Scene", "nodes": [0]}],
        "nodes": nodes,
        "meshes": [
            {"name": "Body", "primitives": body},
            {"name": "Face", "primitives": face, "weights": vec![0.0; MORPH_TARGETS.len()], "extras": extras},
        ],
        "skins": [{"name": "Armature", "joints": (0..BONES.len()).map(bone_node).collect::<Vec<_>>(), "inverseBindMatrices": inverse_bind, "skeleton": bone_node(0)}],
        "materials": MATERIALS.iter().map(|(n, c, d)| material_json(n, *c, *d)).collect::<Vec<_>>(),
        "accessors": buffers.accessors,
        "bufferViews": buffers.views,
        "buffers": [{"byteLength": buffers.bin.len()}],
        "extensions": {"VRM": vrm},
    });
    write_glb(&Glb {
        json,
        bin: Some(buffers.bin),
    })
}
