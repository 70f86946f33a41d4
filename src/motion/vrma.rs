//! VRM Animation files (`VRMC_vrm_animation` 1.0, `.vrma`) read without Bevy into a
//! [`VrmaClip`]: humanoid bone rotations in the *normalized* convention of the specification
//! (every bone's rest rotation is identity, axes of the file's world: +Y up, +Z forward), the
//! hips' world position, and expression weights.
//!
//! Normalization follows three-vrm's `VRMAnimationLoaderPlugin`: a key `a'` of a bone whose
//! parent's rest world rotation is `p` and own rest world rotation is `c` becomes
//! `p * a' * c⁻¹`. The parent is the bone's node parent in the file (three-vrm takes the
//! nearest humanoid parent; they agree when, as in every exporter we know, no other node sits
//! between two humanoid bones, and the node parent is what the glTF hierarchy means otherwise).
//! Hips keys become world positions through the hips' parent's rest transform.
//!
//! The accessors are read here rather than through the `gltf` crate's reader: its iterator
//! panics on some hostile inputs (a zero `count` under a sparse accessor, an unexpected
//! component type for rotations, sparse values running out). Only what VRMA needs is read:
//! float scalars/vectors and normalized integer rotations, from the GLB's own binary chunk.

use std::collections::{BTreeMap, HashMap};

use bevy::math::{Affine3A, Mat4, Quat, Vec2, Vec3};
use serde_json::Value;
use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;

use crate::avatar::vrm_file::{VrmError, read_glb};

/// Larger files are refused before they are read (the built-in clips are a few KiB; a minute of
/// 30 fps motion capture on every bone is about 3 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Keyframes over all tracks of a clip.
pub const MAX_KEYS: usize = 4 << 20;
/// Longest clip, in seconds.
pub const MAX_DURATION: f32 = 3600.0;
/// Deepest node hierarchy followed.
const MAX_DEPTH: usize = 256;

const EXTENSION: &str = "VRMC_vrm_animation";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VrmaError {
    #[error("not a VRMA file: {0}")]
    Glb(#[from] VrmError),
    #[error("the file is {0} bytes; motion clips up to {MAX_FILE_BYTES} bytes are read")]
    TooLarge(u64),
    #[error(
        "no {EXTENSION} extension: this is a plain glTF animation, not a VRM Animation (export \
         it as .vrma, e.g. with the VRM add-on for Blender)"
    )]
    NotVrma,
    #[error("{EXTENSION} specVersion {0:?} is not supported (only 1.0 is)")]
    UnsupportedVersion(String),
    #[error("the clip names no humanoid bone ({EXTENSION}.humanoid.humanBones is empty)")]
    NoHumanoid,
    #[error("the file has no animation")]
    NoAnimation,
    #[error("the clip has {0} keyframes; at most {MAX_KEYS} are read")]
    TooManyKeys(usize),
    #[error("buffer {0} points outside the file ({1}); only data embedded in the .vrma is read")]
    ExternalUri(usize, String),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> VrmaError {
    VrmaError::Invalid(message.into())
}

/// Keyframes of one value. Times are strictly increasing and finite, values finite.
#[derive(Debug, Clone, PartialEq)]
pub struct Track<T> {
    pub times: Vec<f32>,
    pub values: Vec<T>,
}

/// Values that a track interpolates between keys.
pub trait Interpolate: Copy {
    fn interpolate(a: Self, b: Self, t: f32) -> Self;
}

impl Interpolate for f32 {
    fn interpolate(a: Self, b: Self, t: f32) -> Self {
        a + (b - a) * t
    }
}

impl Interpolate for Vec2 {
    fn interpolate(a: Self, b: Self, t: f32) -> Self {
        a.lerp(b, t)
    }
}

impl Interpolate for Vec3 {
    fn interpolate(a: Self, b: Self, t: f32) -> Self {
        a.lerp(b, t)
    }
}

impl Interpolate for Quat {
    fn interpolate(a: Self, b: Self, t: f32) -> Self {
        a.slerp(b, t)
    }
}

impl<T: Interpolate> Track<T> {
    /// A track holding one value.
    pub fn constant(value: T) -> Self {
        Self {
            times: vec![0.0],
            values: vec![value],
        }
    }

    /// The value at `time` (linear between keys, clamped to the first and last key).
    pub fn sample(&self, time: f32) -> Option<T> {
        let last = self.times.len().checked_sub(1)?;
        let after = self.times.partition_point(|t| *t <= time);
        if after == 0 {
            return self.values.first().copied();
        }
        if after > last {
            return self.values.get(last).copied();
        }
        let (t0, t1) = (self.times[after - 1], self.times[after]);
        let k = ((time - t0) / (t1 - t0)).clamp(0.0, 1.0);
        Some(T::interpolate(
            self.values[after - 1],
            self.values[after],
            k,
        ))
    }

    /// The same keys with every value changed by `f`.
    pub fn map<U>(&self, f: impl Fn(T) -> U) -> Track<U> {
        Track {
            times: self.times.clone(),
            values: self.values.iter().map(|v| f(*v)).collect(),
        }
    }

    pub fn end(&self) -> f32 {
        self.times.last().copied().unwrap_or(0.0)
    }
}

/// A VRM Animation, normalized (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct VrmaClip {
    pub duration: f32,
    /// Normalized local rotations, in the file's axes (+Z forward).
    pub rotations: HashMap<HumanBoneName, Track<Quat>>,
    /// World position of the hips, in the file's axes and units.
    pub hips: Option<Track<Vec3>>,
    /// Height of the hips at rest in the file: the avatar's hips height over this scales
    /// [`hips`](Self::hips).
    pub rest_hips_height: f32,
    /// Expression weights (0-1) by expression name (`happy`, `aa`, a custom name).
    pub expressions: BTreeMap<String, Track<f32>>,
    /// Where the eyes look (the `lookAt` node's rotation, relative to the head): VRM look-at
    /// angles in degrees, x = yaw (> 0 to the character's left), y = pitch (> 0 down).
    pub look_at: Option<Track<Vec2>>,
    /// What was read but is not applied, for the user: one line each.
    pub notes: Vec<String>,
}

impl VrmaClip {
    /// The normalized rotation of `bone` at `time`, if the clip animates it.
    pub fn rotation(&self, bone: HumanBoneName, time: f32) -> Option<Quat> {
        self.rotations.get(&bone)?.sample(time)
    }
}

/// A humanoid bone name as the specification writes it (`leftUpperArm`).
pub fn bone_from_name(name: &str) -> Option<HumanBoneName> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

/// Reads a `.vrma` file's bytes.
pub fn read_vrma(bytes: &[u8]) -> Result<VrmaClip, VrmaError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(VrmaError::TooLarge(bytes.len() as u64));
    }
    let glb = read_glb(bytes)?;
    let json = &glb.json;
    let extension = json
        .pointer(&format!("/extensions/{EXTENSION}"))
        .ok_or(VrmaError::NotVrma)?;
    match extension.get("specVersion").and_then(Value::as_str) {
        Some("1.0") => {}
        other => {
            return Err(VrmaError::UnsupportedVersion(
                other.unwrap_or("(none)").chars().take(32).collect(),
            ));
        }
    }
    let bin = Binary::new(json, glb.bin.as_deref())?;
    let nodes = Nodes::read(json)?;
    let mut notes = Vec::new();

    // Node index -> what it stands for.
    let mut bones: BTreeMap<usize, HumanBoneName> = BTreeMap::new();
    if let Some(human_bones) = extension
        .pointer("/humanoid/humanBones")
        .and_then(Value::as_object)
    {
        for (name, bone) in human_bones {
            let Some(node) = bone.get("node").and_then(Value::as_u64) else {
                continue;
            };
            let node = nodes.index(node, &format!("humanoid bone {name}"))?;
            match bone_from_name(name) {
                Some(bone) => {
                    bones.insert(node, bone);
                }
                None => notes.push(format!("unknown humanoid bone {name:?} ignored")),
            }
        }
    }
    if bones.is_empty() {
        return Err(VrmaError::NoHumanoid);
    }
    let mut expression_nodes: BTreeMap<usize, String> = BTreeMap::new();
    for group in ["preset", "custom"] {
        if let Some(map) = extension
            .pointer(&format!("/expressions/{group}"))
            .and_then(Value::as_object)
        {
            for (name, expression) in map {
                if let Some(node) = expression.get("node").and_then(Value::as_u64) {
                    let node = nodes.index(node, &format!("expression {name}"))?;
                    expression_nodes.insert(node, name.chars().take(64).collect());
                }
            }
        }
    }
    let look_at_node = extension.pointer("/lookAt/node").and_then(Value::as_u64);

    let animations = json
        .get("animations")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or(VrmaError::NoAnimation)?;
    if animations.len() > 1 {
        notes.push(format!(
            "the file has {} animations; the first is played",
            animations.len()
        ));
    }
    let animation = &animations[0];
    let samplers = animation
        .get("samplers")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the animation has no samplers"))?;
    let channels = animation
        .get("channels")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the animation has no channels"))?;

    let hips_node = bones
        .iter()
        .find(|(_, bone)| **bone == HumanBoneName::Hips)
        .map(|(node, _)| *node);
    let rest_hips_height = hips_node.map_or(0.0, |hips| nodes.world(hips).translation.y);

    let mut keys = 0usize;
    let mut clip = VrmaClip {
        duration: 0.0,
        rotations: HashMap::new(),
        hips: None,
        rest_hips_height,
        expressions: BTreeMap::new(),
        look_at: None,
        notes: Vec::new(),
    };
    for (index, channel) in channels.iter().enumerate() {
        let what = format!("channel {index}");
        let Some(node) = channel.pointer("/target/node").and_then(Value::as_u64) else {
            continue;
        };
        let node = nodes.index(node, &what)?;
        let path = channel
            .pointer("/target/path")
            .and_then(Value::as_str)
            .unwrap_or("");
        let sampler = channel
            .get("sampler")
            .and_then(Value::as_u64)
            .and_then(|s| samplers.get(usize::try_from(s).ok()?))
            .ok_or_else(|| invalid(format!("{what} names no sampler of the animation")))?;
        let read = |components: usize, normalized_ints: bool| {
            read_sampler(&bin, json, sampler, components, normalized_ints, &what)
        };
        if let Some(bone) = bones.get(&node).copied() {
            match path {
                "rotation" => {
                    let (times, values) = read(4, true)?;
                    keys += times.len();
                    let parent = nodes.parent_world(node).to_scale_rotation_translation().1;
                    let own = nodes.world(node).to_scale_rotation_translation().1;
                    let values = unit_rotations(&values, &format!("{what} ({bone})"))?
                        .into_iter()
                        .map(|key| (parent * key * own.inverse()).normalize())
                        .collect();
                    clip.rotations.insert(bone, Track { times, values });
                }
                "translation" if bone == HumanBoneName::Hips => {
                    let (times, values) = read(3, false)?;
                    keys += times.len();
                    let parent = nodes.parent_world(node);
                    let values = values
                        .as_chunks::<3>()
                        .0
                        .iter()
                        .map(|v| parent.transform_point3(Vec3::from_array(*v)))
                        .collect();
                    clip.hips = Some(Track { times, values });
                }
                other => notes.push(format!(
                    "{what}: {other} of {bone} is not part of VRMA (only hips move); ignored"
                )),
            }
        } else if let Some(name) = expression_nodes.get(&node) {
            if path != "translation" {
                notes.push(format!("{what}: {path} of expression {name} ignored"));
                continue;
            }
            let (times, values) = read(3, false)?;
            keys += times.len();
            let values = values
                .as_chunks::<3>()
                .0
                .iter()
                .map(|v| v[0].clamp(0.0, 1.0))
                .collect();
            clip.expressions
                .insert(name.clone(), Track { times, values });
        } else if look_at_node == Some(node as u64) {
            if path != "rotation" {
                notes.push(format!("{what}: {path} of the lookAt node ignored"));
                continue;
            }
            let (times, values) = read(4, true)?;
            keys += times.len();
            let values = unit_rotations(&values, &format!("{what} (lookAt)"))?
                .into_iter()
                .map(gaze_angles)
                .collect();
            clip.look_at = Some(Track { times, values });
        }
        if keys > MAX_KEYS {
            return Err(VrmaError::TooManyKeys(keys));
        }
    }
    if clip.rotations.is_empty()
        && clip.hips.is_none()
        && clip.expressions.is_empty()
        && clip.look_at.is_none()
    {
        return Err(invalid(
            "the animation moves no humanoid bone and no expression",
        ));
    }
    clip.duration = clip
        .rotations
        .values()
        .map(Track::end)
        .chain(clip.hips.iter().map(Track::end))
        .chain(clip.expressions.values().map(Track::end))
        .chain(clip.look_at.iter().map(Track::end))
        .fold(0.0, f32::max);
    clip.notes = notes;
    Ok(clip)
}

/// Rotation keys (x, y, z, w) as unit quaternions; a zero-length key is refused.
fn unit_rotations(values: &[f32], what: &str) -> Result<Vec<Quat>, VrmaError> {
    values
        .as_chunks::<4>()
        .0
        .iter()
        .map(|q| {
            let key = Quat::from_array(*q);
            if key.length_squared() < 1e-12 {
                return Err(invalid(format!("{what} has a zero-length rotation key")));
            }
            Ok(key.normalize())
        })
        .collect()
}

/// A gaze rotation (the file's axes: +Z forward, +X the character's left, +Y up) as VRM
/// look-at angles in degrees: (yaw > 0 to the left, pitch > 0 down).
pub fn gaze_angles(rotation: Quat) -> Vec2 {
    let d = rotation * Vec3::Z;
    Vec2::new(
        d.x.atan2(d.z).to_degrees(),
        (-d.y).atan2(d.x.hypot(d.z)).to_degrees(),
    )
}

/// Reads a sampler's keys: times and flat values (`components` per key), as linear keys. STEP
/// keys get a second key just before the next one; CUBICSPLINE keys keep their value (the
/// middle of each in-tangent, value, out-tangent triple), read linearly.
fn read_sampler(
    bin: &Binary,
    json: &Value,
    sampler: &Value,
    components: usize,
    normalized_ints: bool,
    what: &str,
) -> Result<(Vec<f32>, Vec<f32>), VrmaError> {
    let accessor = |key: &str| {
        sampler
            .get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid(format!("{what}: the sampler has no {key} accessor")))
    };
    let times = bin.floats(json, accessor("input")?, 1, false, what)?;
    let mut values = bin.floats(json, accessor("output")?, components, normalized_ints, what)?;
    let interpolation = sampler
        .get("interpolation")
        .and_then(Value::as_str)
        .unwrap_or("LINEAR");
    if interpolation == "CUBICSPLINE" {
        values = values
            .chunks_exact(components * 3)
            .flat_map(|triple| triple[components..components * 2].to_vec())
            .collect();
    }
    if values.len() != times.len() * components {
        return Err(invalid(format!(
            "{what}: {} times but {} values",
            times.len(),
            values.len() / components
        )));
    }
    let mut previous = f32::NEG_INFINITY;
    for time in &times {
        if !time.is_finite() || *time < 0.0 || *time > MAX_DURATION {
            return Err(invalid(format!(
                "{what}: key time {time} is not within 0..{MAX_DURATION} s"
            )));
        }
        if *time <= previous {
            return Err(invalid(format!(
                "{what}: key times must increase ({previous} then {time})"
            )));
        }
        previous = *time;
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(invalid(format!("{what}: a key value is {bad}")));
    }
    if interpolation == "STEP" && times.len() > 1 {
        let mut stepped_times = Vec::with_capacity(times.len() * 2);
        let mut stepped = Vec::with_capacity(values.len() * 2);
        for (i, time) in times.iter().enumerate() {
            let value = &values[i * components..(i + 1) * components];
            if i > 0 {
                let hold = (time - 1e-4).max(stepped_times.last().copied().unwrap_or(0.0) + 1e-6);
                if hold < *time {
                    stepped_times.push(hold);
                    stepped.extend_from_slice(&values[(i - 1) * components..i * components]);
                }
            }
            stepped_times.push(*time);
            stepped.extend_from_slice(value);
        }
        return Ok((stepped_times, stepped));
    }
    Ok((times, values))
}

/// The GLB's binary chunk and the buffer views into it.
struct Binary<'a> {
    bin: &'a [u8],
}

impl<'a> Binary<'a> {
    fn new(json: &Value, bin: Option<&'a [u8]>) -> Result<Self, VrmaError> {
        if let Some(buffers) = json.get("buffers").and_then(Value::as_array) {
            for (index, buffer) in buffers.iter().enumerate() {
                if let Some(uri) = buffer.get("uri").and_then(Value::as_str) {
                    return Err(VrmaError::ExternalUri(
                        index,
                        uri.chars().take(160).collect(),
                    ));
                }
            }
        }
        Ok(Self {
            bin: bin.unwrap_or_default(),
        })
    }

    /// An accessor's values as floats: `components` per element.
    fn floats(
        &self,
        json: &Value,
        index: u64,
        components: usize,
        normalized_ints: bool,
        what: &str,
    ) -> Result<Vec<f32>, VrmaError> {
        let fail = |why: &str| invalid(format!("{what}: accessor {index} {why}"));
        let accessor = json
            .get("accessors")
            .and_then(Value::as_array)
            .and_then(|a| a.get(usize::try_from(index).ok()?))
            .ok_or_else(|| fail("does not exist"))?;
        if accessor.get("sparse").is_some() {
            return Err(fail("is sparse (not read in motion clips)"));
        }
        let expected_type = match components {
            1 => "SCALAR",
            3 => "VEC3",
            _ => "VEC4",
        };
        if accessor.get("type").and_then(Value::as_str) != Some(expected_type) {
            return Err(fail(&format!("is not of type {expected_type}")));
        }
        let count = accessor
            .get("count")
            .and_then(Value::as_u64)
            .and_then(|c| usize::try_from(c).ok())
            .filter(|c| (1..=MAX_KEYS).contains(c))
            .ok_or_else(|| fail(&format!("count must be 1..{MAX_KEYS}")))?;
        let normalized = accessor
            .get("normalized")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let component_type = accessor.get("componentType").and_then(Value::as_u64);
        let (size, read): (usize, fn(&[u8]) -> f32) = match component_type {
            Some(5126) => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Some(5120) if normalized_ints && normalized => {
                (1, |b| (f32::from(b[0] as i8) / 127.0).max(-1.0))
            }
            Some(5121) if normalized_ints && normalized => (1, |b| f32::from(b[0]) / 255.0),
            Some(5122) if normalized_ints && normalized => (2, |b| {
                (f32::from(i16::from_le_bytes([b[0], b[1]])) / 32767.0).max(-1.0)
            }),
            Some(5123) if normalized_ints && normalized => {
                (2, |b| f32::from(u16::from_le_bytes([b[0], b[1]])) / 65535.0)
            }
            _ => return Err(fail("has a component type motion keys cannot have")),
        };
        let view_index = accessor
            .get("bufferView")
            .and_then(Value::as_u64)
            .ok_or_else(|| fail("has no bufferView"))?;
        let view = json
            .get("bufferViews")
            .and_then(Value::as_array)
            .and_then(|v| v.get(usize::try_from(view_index).ok()?))
            .ok_or_else(|| fail("names a bufferView that does not exist"))?;
        if view.get("buffer").and_then(Value::as_u64) != Some(0) {
            return Err(fail("is not in the file's binary chunk"));
        }
        let number = |value: &Value, key: &str| -> Result<usize, VrmaError> {
            value.get(key).map_or(Ok(0), |v| {
                v.as_u64()
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or_else(|| fail(&format!("has a bad {key}")))
            })
        };
        let element = size * components;
        let stride = match number(view, "byteStride")? {
            0 => element,
            stride if stride >= element => stride,
            _ => return Err(fail("has a byteStride smaller than one element")),
        };
        let view_start = number(view, "byteOffset")?;
        let view_length = number(view, "byteLength")?;
        let view_bytes = view_start
            .checked_add(view_length)
            .and_then(|end| self.bin.get(view_start..end))
            .ok_or_else(|| fail("reads past the end of the file's binary chunk"))?;
        let start = number(accessor, "byteOffset")?;
        let needed = (count - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(element))
            .and_then(|n| n.checked_add(start))
            .filter(|end| *end <= view_bytes.len())
            .ok_or_else(|| fail("reads past the end of its bufferView"))?;
        let bytes = &view_bytes[start..needed];
        let mut out = Vec::with_capacity(count * components);
        for i in 0..count {
            let at = i * stride;
            for c in 0..components {
                let offset = at + c * size;
                out.push(read(&bytes[offset..offset + size]));
            }
        }
        Ok(out)
    }
}

/// The node hierarchy's rest transforms.
struct Nodes {
    local: Vec<Affine3A>,
    parent: Vec<Option<usize>>,
}

impl Nodes {
    fn read(json: &Value) -> Result<Self, VrmaError> {
        let nodes = json
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("the file has no nodes"))?;
        let mut local = Vec::with_capacity(nodes.len());
        let mut parent = vec![None; nodes.len()];
        for (index, node) in nodes.iter().enumerate() {
            let floats = |key: &str, n: usize| -> Option<Vec<f32>> {
                let values: Vec<f32> = node
                    .get(key)?
                    .as_array()?
                    .iter()
                    .map(|v| v.as_f64().map(|v| v as f32))
                    .collect::<Option<_>>()?;
                (values.len() == n && values.iter().all(|v| v.is_finite())).then_some(values)
            };
            let bad = |key: &str| invalid(format!("node {index} has a bad {key}"));
            let transform = if node.get("matrix").is_some() {
                let m = floats("matrix", 16).ok_or_else(|| bad("matrix"))?;
                let (scale, rotation, translation) =
                    Mat4::from_cols_slice(&m).to_scale_rotation_translation();
                Affine3A::from_scale_rotation_translation(scale, rotation.normalize(), translation)
            } else {
                let t = match node.get("translation") {
                    Some(_) => floats("translation", 3).ok_or_else(|| bad("translation"))?,
                    None => vec![0.0; 3],
                };
                let r = match node.get("rotation") {
                    Some(_) => floats("rotation", 4).ok_or_else(|| bad("rotation"))?,
                    None => vec![0.0, 0.0, 0.0, 1.0],
                };
                let s = match node.get("scale") {
                    Some(_) => floats("scale", 3).ok_or_else(|| bad("scale"))?,
                    None => vec![1.0; 3],
                };
                let rotation = Quat::from_xyzw(r[0], r[1], r[2], r[3]);
                if rotation.length_squared() < 1e-12 {
                    return Err(bad("rotation"));
                }
                Affine3A::from_scale_rotation_translation(
                    Vec3::new(s[0], s[1], s[2]),
                    rotation.normalize(),
                    Vec3::new(t[0], t[1], t[2]),
                )
            };
            local.push(transform);
            for child in node
                .get("children")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let child = child
                    .as_u64()
                    .and_then(|c| usize::try_from(c).ok())
                    .filter(|c| *c < nodes.len() && *c != index)
                    .ok_or_else(|| bad("children"))?;
                if parent[child].replace(index).is_some() {
                    return Err(invalid(format!("node {child} has two parents")));
                }
            }
        }
        let this = Self { local, parent };
        for node in 0..this.local.len() {
            this.ancestors(node)?;
        }
        Ok(this)
    }

    /// `node` and its ancestors, nearest first; an error for a cycle or a chain too deep.
    fn ancestors(&self, node: usize) -> Result<Vec<usize>, VrmaError> {
        let mut chain = vec![node];
        let mut current = self.parent[node];
        while let Some(parent) = current {
            if chain.len() > MAX_DEPTH || chain.contains(&parent) {
                return Err(invalid(format!(
                    "the node hierarchy above node {node} loops or is deeper than {MAX_DEPTH}"
                )));
            }
            chain.push(parent);
            current = self.parent[parent];
        }
        Ok(chain)
    }

    fn index(&self, node: u64, what: &str) -> Result<usize, VrmaError> {
        usize::try_from(node)
            .ok()
            .filter(|n| *n < self.local.len())
            .ok_or_else(|| invalid(format!("{what} names node {node}, which does not exist")))
    }

    /// Rest transform of `node` in the file's world (checked acyclic at read).
    fn world(&self, node: usize) -> Affine3A {
        self.ancestors(node)
            .unwrap_or_default()
            .iter()
            .rev()
            .fold(Affine3A::IDENTITY, |world, n| world * self.local[*n])
    }

    fn parent_world(&self, node: usize) -> Affine3A {
        self.parent[node].map_or(Affine3A::IDENTITY, |parent| self.world(parent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avatar::vrm_file::{Glb, write_glb};
    use crate::motion::builtin::{BUILTIN, builtin};
    use serde_json::json;

    /// A one-bone clip: hips rest turned 90° about X (a Blender-style rest), keys as given.
    fn clip_bytes(times: &[f32], rotations: &[[f32; 4]], patch: impl Fn(&mut Value)) -> Vec<u8> {
        let mut bin = Vec::new();
        for t in times {
            bin.extend_from_slice(&t.to_le_bytes());
        }
        let values_at = bin.len();
        for q in rotations {
            for c in q {
                bin.extend_from_slice(&c.to_le_bytes());
            }
        }
        let rest = Quat::from_rotation_x(std::f32::consts::FRAC_PI_2);
        let mut gltf = json!({
            "asset": {"version": "2.0"},
            "extensionsUsed": ["VRMC_vrm_animation"],
            "extensions": {"VRMC_vrm_animation": {
                "specVersion": "1.0",
                "humanoid": {"humanBones": {"hips": {"node": 1}}},
            }},
            "nodes": [
                {"children": [1], "translation": [0.0, 0.5, 0.0]},
                {"translation": [0.0, 0.4, 0.0], "rotation": [rest.x, rest.y, rest.z, rest.w]},
            ],
            "animations": [{
                "channels": [{"sampler": 0, "target": {"node": 1, "path": "rotation"}}],
                "samplers": [{"input": 0, "output": 1}],
            }],
            "buffers": [{"byteLength": bin.len()}],
            "bufferViews": [
                {"buffer": 0, "byteOffset": 0, "byteLength": values_at},
                {"buffer": 0, "byteOffset": values_at, "byteLength": bin.len() - values_at},
            ],
            "accessors": [
                {"bufferView": 0, "componentType": 5126, "count": times.len(), "type": "SCALAR"},
                {"bufferView": 1, "componentType": 5126, "count": rotations.len(), "type": "VEC4"},
            ],
        });
        patch(&mut gltf);
        write_glb(&Glb {
            json: gltf,
            bin: Some(bin),
        })
    }

    #[test]
    fn keys_are_normalized_against_the_rest_pose() {
        let rest = Quat::from_rotation_x(std::f32::consts::FRAC_PI_2);
        let turn = Quat::from_rotation_y(0.5);
        // Key 0 is the rest pose, key 1 the rest pose turned in the bone's own frame.
        let keys = [rest, rest * turn].map(|q| [q.x, q.y, q.z, q.w]);
        let clip = read_vrma(&clip_bytes(&[0.0, 1.0], &keys, |_| {})).expect("clip");
        assert_eq!(clip.duration, 1.0);
        let at_rest = clip.rotation(HumanBoneName::Hips, 0.0).expect("hips");
        assert!(
            at_rest.dot(Quat::IDENTITY).abs() > 1.0 - 1e-6,
            "{at_rest:?}"
        );
        // Normalized: the same turn seen in world axes (the rest maps local Y to world Z).
        let turned = clip.rotation(HumanBoneName::Hips, 1.0).expect("hips");
        let expected = rest * turn * rest.inverse();
        assert!(
            turned.dot(expected).abs() > 1.0 - 1e-6,
            "{turned:?} vs {expected:?}"
        );
        // Linear between keys.
        let half = clip.rotation(HumanBoneName::Hips, 0.5).expect("hips");
        assert!(half.dot(Quat::IDENTITY.slerp(expected, 0.5)).abs() > 1.0 - 1e-6);
        // World rest height of the hips: 0.5 + 0.4.
        assert!((clip.rest_hips_height - 0.9).abs() < 1e-6);
    }

    #[test]
    fn every_builtin_clip_reads_and_moves_the_body() {
        for motion in BUILTIN {
            let clip = read_vrma(motion.bytes).unwrap_or_else(|e| panic!("{}: {e}", motion.name));
            assert!(clip.duration >= 1.0, "{}", motion.name);
            assert!(clip.notes.is_empty(), "{}: {:?}", motion.name, clip.notes);
            assert!(clip.rotations.contains_key(&HumanBoneName::LeftUpperArm));
        }
        // The wave raises the right arm above the shoulder at its middle.
        let wave = read_vrma(builtin("greeting").expect("greeting").bytes).expect("clip");
        let arm = wave
            .rotation(HumanBoneName::RightUpperArm, 1.3)
            .expect("arm");
        // The right arm points to -X at rest (the file's axes, +Z forward).
        let direction = arm * Vec3::NEG_X;
        assert!(direction.y > 0.5, "{direction:?}");
    }

    #[test]
    fn hostile_clips_are_refused_with_a_reason() {
        let q = [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]];
        let good = |patch: &dyn Fn(&mut Value)| read_vrma(&clip_bytes(&[0.0, 1.0], &q, patch));
        assert!(good(&|_| {}).is_ok());
        let cases: Vec<(&str, Box<dyn Fn(&mut Value)>, &str)> = vec![
            (
                "no extension",
                Box::new(|g| g["extensions"] = json!({})),
                "plain glTF",
            ),
            (
                "spec 2.0",
                Box::new(|g| g["extensions"]["VRMC_vrm_animation"]["specVersion"] = json!("2.0")),
                "specVersion",
            ),
            (
                "no bones",
                Box::new(|g| g["extensions"]["VRMC_vrm_animation"]["humanoid"] = json!({})),
                "no humanoid",
            ),
            (
                "bone node out of range",
                Box::new(|g| {
                    g["extensions"]["VRMC_vrm_animation"]["humanoid"]["humanBones"]["hips"]["node"] =
                        json!(99);
                }),
                "does not exist",
            ),
            (
                "external buffer",
                Box::new(|g| g["buffers"][0]["uri"] = json!("http://example.com/x.bin")),
                "outside the file",
            ),
            (
                "count too big",
                Box::new(|g| g["accessors"][0]["count"] = json!(u64::MAX)),
                "count",
            ),
            (
                "count past the data",
                Box::new(|g| g["accessors"][1]["count"] = json!(1000)),
                "past the end",
            ),
            (
                "stride too small",
                Box::new(|g| g["bufferViews"][1]["byteStride"] = json!(2)),
                "byteStride",
            ),
            (
                "int rotation not normalized",
                Box::new(|g| g["accessors"][1]["componentType"] = json!(5121)),
                "component type",
            ),
            (
                "sparse",
                Box::new(|g| g["accessors"][1]["sparse"] = json!({"count": 0})),
                "sparse",
            ),
            (
                "wrong type",
                Box::new(|g| g["accessors"][1]["type"] = json!("VEC3")),
                "VEC4",
            ),
            (
                "node loop",
                Box::new(|g| g["nodes"][1]["children"] = json!([0])),
                "loops",
            ),
            (
                "two parents",
                Box::new(|g| {
                    g["nodes"]
                        .as_array_mut()
                        .expect("nodes")
                        .push(json!({"children": [1]}));
                }),
                "two parents",
            ),
            (
                "no animation",
                Box::new(|g| g["animations"] = json!([])),
                "no animation",
            ),
            (
                "sampler out of range",
                Box::new(|g| g["animations"][0]["channels"][0]["sampler"] = json!(5)),
                "no sampler",
            ),
            (
                "bad rest rotation",
                Box::new(|g| g["nodes"][1]["rotation"] = json!([0, 0, 0, 0])),
                "rotation",
            ),
        ];
        for (what, patch, expected) in cases {
            match good(&patch) {
                Ok(_) => panic!("{what}: accepted"),
                Err(err) => assert!(
                    err.to_string().contains(expected),
                    "{what}: {err} (expected {expected:?})"
                ),
            }
        }
        // Bad key values.
        let nan = [[f32::NAN, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]];
        let err = read_vrma(&clip_bytes(&[0.0, 1.0], &nan, |_| {})).expect_err("NaN");
        assert!(err.to_string().contains("NaN"), "{err}");
        let zero = [[0.0; 4], [0.0, 0.0, 0.0, 1.0]];
        let err = read_vrma(&clip_bytes(&[0.0, 1.0], &zero, |_| {})).expect_err("zero");
        assert!(err.to_string().contains("zero-length"), "{err}");
        let err = read_vrma(&clip_bytes(&[1.0, 0.5], &q, |_| {})).expect_err("order");
        assert!(err.to_string().contains("increase"), "{err}");
        let err = read_vrma(&clip_bytes(&[0.0, 1e9], &q, |_| {})).expect_err("long");
        assert!(err.to_string().contains("within"), "{err}");
        // Every prefix of a real clip ends in an error or a clip, never a panic.
        let bytes = BUILTIN[0].bytes;
        for len in (0..bytes.len()).step_by(97) {
            let _ = read_vrma(&bytes[..len]);
        }
    }

    #[test]
    fn step_and_cubic_keys_are_read_as_linear_keys() {
        let a = Quat::from_rotation_z(0.3);
        let keys = [Quat::IDENTITY, a].map(|q| {
            let q = Quat::from_rotation_x(std::f32::consts::FRAC_PI_2) * q;
            [q.x, q.y, q.z, q.w]
        });
        let stepped = read_vrma(&clip_bytes(&[0.0, 1.0], &keys, |g| {
            g["animations"][0]["samplers"][0]["interpolation"] = json!("STEP");
        }))
        .expect("step");
        let before = stepped.rotation(HumanBoneName::Hips, 0.99).expect("hips");
        assert!(
            before.dot(Quat::IDENTITY).abs() > 1.0 - 1e-6,
            "held until the next key"
        );
    }
}
