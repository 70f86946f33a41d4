//! Where the eyes look, without Bevy: VRM 1.0 `VRMC_vrm.lookAt` and VRM 0.x
//! `firstPerson.lookAt*` read into one [`LookAt`], and the specification's mapping from a gaze
//! direction to eye-bone angles or to the lookUp/lookDown/lookLeft/lookRight weights.
//!
//! Angles are VRM 1.0's for both versions, relative to the character and in degrees:
//! yaw > 0 looks to the character's left, pitch > 0 looks down. The range maps mean the same
//! in both versions (outer = an eye turning away from the nose), so a 0.x file needs no sign
//! change until its eye bones are posed (see [`EyeAngles`]).
//!
//! VRM 1.0 range map: `min(|angle|, inputMaxValue) / inputMaxValue * outputScale`. VRM 0.x
//! degree maps (`xRange`, `yRange`, `curve`) are the same with the normalized angle passed
//! through the curve first (Unity keyframes: time, value, inTangent, outTangent; the
//! Blender add-on writes three keyframes, so the full curve is read here, not the 8-number
//! version bevy_vrm gets). Defaults follow three-vrm: inputMaxValue/xRange 90, outputScale/
//! yRange 10 for bones and 1 for expressions, head offset (0, 0.06, 0).

use serde_json::Value;

use super::vrm_expression::floats;
use super::vrm_file::{VrmError, VrmVersion, vrm_version, vrm0_extension, vrm1_extension};

/// What moves the eyes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookAtKind {
    /// The leftEye / rightEye bones turn.
    Bone,
    /// The lookUp/Down/Left/Right expressions show (0.x `BlendShape`).
    Expression,
}

/// One keyframe of a VRM 0.x look-at curve (a Unity `AnimationCurve` key).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keyframe {
    pub time: f32,
    pub value: f32,
    pub in_tangent: f32,
    pub out_tangent: f32,
}

/// Below this `inputMaxValue` is raised to it, as the spec recommends (no division by zero).
pub const MIN_INPUT_MAX: f32 = 0.001;

/// How far one direction of gaze goes.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeMap {
    /// Degrees of gaze giving the full output (`inputMaxValue`, 0.x `xRange`).
    pub input_max: f32,
    /// Eye-bone degrees or expression weight at `input_max` (`outputScale`, 0.x `yRange`).
    pub output_scale: f32,
    /// VRM 0.x curve over the normalized angle; empty means linear (always so in 1.0).
    pub curve: Vec<Keyframe>,
}

impl RangeMap {
    fn linear(output_scale: f32) -> Self {
        Self {
            input_max: 90.0,
            output_scale,
            curve: Vec::new(),
        }
    }

    /// The output for a gaze of `degrees` in this direction (its sign is ignored; NaN gives 0).
    pub fn map(&self, degrees: f32) -> f32 {
        if degrees.is_nan() {
            return 0.0;
        }
        let input_max = self.input_max.max(MIN_INPUT_MAX);
        let normalized = degrees.abs().min(input_max) / input_max;
        evaluate(&self.curve, normalized) * self.output_scale
    }
}

/// Unity's cubic Hermite evaluation of a keyframed curve, clamped to its end values.
fn evaluate(curve: &[Keyframe], x: f32) -> f32 {
    let (Some(first), Some(last)) = (curve.first(), curve.last()) else {
        return x;
    };
    if x <= first.time {
        return first.value;
    }
    for pair in curve.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if x > b.time {
            continue;
        }
        let span = b.time - a.time;
        if span <= 0.0 {
            return b.value;
        }
        let t = (x - a.time) / span;
        let (t2, t3) = (t * t, t * t * t);
        return (2.0 * t3 - 3.0 * t2 + 1.0) * a.value
            + (t3 - 2.0 * t2 + t) * a.out_tangent * span
            + (-2.0 * t3 + 3.0 * t2) * b.value
            + (t3 - t2) * b.in_tangent * span;
    }
    last.value
}

/// An eye's turn in degrees, on top of its rest pose. For a VRM 1.0 model (+Z forward) the
/// spec's local rotation is `Quat::from_euler(EulerRot::YXZ, yaw.to_radians(),
/// pitch.to_radians(), 0.0)`; a VRM 0.x model faces -Z, where a positive turn about X lifts
/// the gaze, so use `-pitch` there (yaw is the same: +Y turns both towards the character's
/// left). See `VrmVersion::forward_z`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EyeAngles {
    pub yaw: f32,
    pub pitch: f32,
}

/// Weights of the four look expressions, 0-1.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LookWeights {
    pub up: f32,
    pub down: f32,
    pub left: f32,
    pub right: f32,
}

/// What a gaze direction does to the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LookAtOutput {
    Bones {
        left_eye: EyeAngles,
        right_eye: EyeAngles,
    },
    Expressions(LookWeights),
}

/// The look-at settings of a file, either version.
#[derive(Debug, Clone, PartialEq)]
pub struct LookAt {
    pub kind: LookAtKind,
    /// From the head bone to between the eyes, in the file's glTF space (1.0
    /// `offsetFromHeadBone`; 0.x `firstPersonBoneOffset` with z negated as three-vrm does,
    /// UniVRM 0.x wrote it in Unity's axes).
    pub offset_from_head: [f32; 3],
    pub horizontal_inner: RangeMap,
    pub horizontal_outer: RangeMap,
    pub vertical_down: RangeMap,
    pub vertical_up: RangeMap,
}

const DEFAULT_OFFSET: [f32; 3] = [0.0, 0.06, 0.0];

fn default_scale(kind: LookAtKind) -> f32 {
    match kind {
        LookAtKind::Bone => 10.0,
        LookAtKind::Expression => 1.0,
    }
}

impl Default for LookAt {
    /// Look expressions, linear over 90° (what a rig made up without a file gets).
    fn default() -> Self {
        let kind = LookAtKind::Expression;
        LookAt {
            kind,
            offset_from_head: DEFAULT_OFFSET,
            horizontal_inner: RangeMap::linear(default_scale(kind)),
            horizontal_outer: RangeMap::linear(default_scale(kind)),
            vertical_down: RangeMap::linear(default_scale(kind)),
            vertical_up: RangeMap::linear(default_scale(kind)),
        }
    }
}

impl LookAt {
    /// Reads the look-at settings of a VRM 0.x or 1.0 file (defaults where it has none).
    pub fn read(json: &Value) -> Result<LookAt, VrmError> {
        Ok(match vrm_version(json)? {
            VrmVersion::V1 => Self::read_vrm1(vrm1_extension(json).and_then(|v| v.get("lookAt"))),
            VrmVersion::V0 => {
                Self::read_vrm0(vrm0_extension(json).and_then(|v| v.get("firstPerson")))
            }
        })
    }

    fn read_vrm1(look_at: Option<&Value>) -> LookAt {
        let field = |key: &str| look_at.and_then(|l| l.get(key));
        let kind = match field("type").and_then(Value::as_str) {
            Some("expression") => LookAtKind::Expression,
            _ => LookAtKind::Bone,
        };
        let range = |key: &str| {
            let map = field(key);
            let default = RangeMap::linear(default_scale(kind));
            RangeMap {
                input_max: number(map, "inputMaxValue").unwrap_or(default.input_max),
                output_scale: number(map, "outputScale").unwrap_or(default.output_scale),
                curve: Vec::new(),
            }
        };
        LookAt {
            kind,
            offset_from_head: floats::<3>(field("offsetFromHeadBone")).unwrap_or(DEFAULT_OFFSET),
            horizontal_inner: range("rangeMapHorizontalInner"),
            horizontal_outer: range("rangeMapHorizontalOuter"),
            vertical_down: range("rangeMapVerticalDown"),
            vertical_up: range("rangeMapVerticalUp"),
        }
    }

    fn read_vrm0(first_person: Option<&Value>) -> LookAt {
        let field = |key: &str| first_person.and_then(|f| f.get(key));
        let kind = match field("lookAtTypeName").and_then(Value::as_str) {
            Some(name) if name.eq_ignore_ascii_case("BlendShape") => LookAtKind::Expression,
            _ => LookAtKind::Bone,
        };
        let range = |key: &str| degree_map(field(key), kind);
        let offset = field("firstPersonBoneOffset");
        let axis = |name: &str, default: f32| {
            offset
                .and_then(|o| o.get(name))
                .and_then(Value::as_f64)
                .map_or(default, |n| n as f32)
        };
        LookAt {
            kind,
            offset_from_head: [
                axis("x", DEFAULT_OFFSET[0]),
                axis("y", DEFAULT_OFFSET[1]),
                -axis("z", DEFAULT_OFFSET[2]),
            ],
            horizontal_inner: range("lookAtHorizontalInner"),
            horizontal_outer: range("lookAtHorizontalOuter"),
            vertical_down: range("lookAtVerticalDown"),
            vertical_up: range("lookAtVerticalUp"),
        }
    }

    /// The spec's mapping of a gaze (degrees; yaw > 0 left, pitch > 0 down) to what moves.
    pub fn apply(&self, yaw: f32, pitch: f32) -> LookAtOutput {
        match self.kind {
            LookAtKind::Bone => {
                let (left_eye, right_eye) = self.eye_angles(yaw, pitch);
                LookAtOutput::Bones {
                    left_eye,
                    right_eye,
                }
            }
            LookAtKind::Expression => LookAtOutput::Expressions(self.look_weights(yaw, pitch)),
        }
    }

    /// Left and right eye angles: looking left is outward for the left eye, inward for the
    /// right one, and the other way round.
    pub fn eye_angles(&self, yaw: f32, pitch: f32) -> (EyeAngles, EyeAngles) {
        let pitch = if pitch > 0.0 {
            self.vertical_down.map(pitch)
        } else {
            -self.vertical_up.map(pitch)
        };
        let (left, right) = if yaw > 0.0 {
            (
                self.horizontal_outer.map(yaw),
                self.horizontal_inner.map(yaw),
            )
        } else {
            (
                -self.horizontal_inner.map(yaw),
                -self.horizontal_outer.map(yaw),
            )
        };
        (
            EyeAngles { yaw: left, pitch },
            EyeAngles { yaw: right, pitch },
        )
    }

    /// The four look weights (horizontal ones from the outer map, as the spec says), clamped
    /// to 0-1 like every expression weight.
    pub fn look_weights(&self, yaw: f32, pitch: f32) -> LookWeights {
        let horizontal = self.horizontal_outer.map(yaw).clamp(0.0, 1.0);
        let mut weights = LookWeights::default();
        if yaw > 0.0 {
            weights.left = horizontal;
        } else {
            weights.right = horizontal;
        }
        if pitch > 0.0 {
            weights.down = self.vertical_down.map(pitch).clamp(0.0, 1.0);
        } else {
            weights.up = self.vertical_up.map(pitch).clamp(0.0, 1.0);
        }
        weights
    }
}

/// A number field of a JSON map, as f32.
fn number(map: Option<&Value>, name: &str) -> Option<f32> {
    map.and_then(|m| m.get(name))
        .and_then(Value::as_f64)
        .map(|n| n as f32)
}

/// A VRM 0.x degree map (`xRange`, `yRange`, `curve`).
fn degree_map(map: Option<&Value>, kind: LookAtKind) -> RangeMap {
    let default = RangeMap::linear(default_scale(kind));
    RangeMap {
        input_max: number(map, "xRange").unwrap_or(default.input_max),
        output_scale: number(map, "yRange").unwrap_or(default.output_scale),
        curve: keyframes(map.and_then(|m| m.get("curve"))),
    }
}

/// Keyframes of four numbers each; anything else (missing, odd length, non-numbers) is the
/// linear default.
fn keyframes(curve: Option<&Value>) -> Vec<Keyframe> {
    let numbers: Option<Vec<f32>> = curve
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|n| n.as_f64().map(|n| n as f32)).collect());
    match numbers {
        Some(numbers) if !numbers.is_empty() && numbers.len().is_multiple_of(4) => numbers
            .as_chunks::<4>()
            .0
            .iter()
            .map(|&[time, value, in_tangent, out_tangent]| Keyframe {
                time,
                value,
                in_tangent,
                out_tangent,
            })
            .collect(),
        _ => Vec::new(),
    }
}
