//! VRM 0.x files without Bevy: reading the GLB container, normalizing what real exporters write
//! but bevy_vrm 0.5's parser (serde_vrm 0.5) rejects, and the blend-shape (expression) groups.
//!
//! The Blender VRM add-on writes look-at curves of 12 numbers (three keyframes); serde_vrm
//! expects exactly 8 (two keyframes), so the whole VRM extension of such a file fails to parse
//! ("invalid length 12") and bevy_vrm then adds no humanoid bones, spring bones or MToon.
//! [`normalize_vrm0`] rewrites them before bevy_vrm sees the file (every avatar is read through
//! `avatar::source`, which calls it). A missing curve parses since serde_vrm 0.5 (it is
//! optional); we still fill it in with the default so every curve is complete.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VrmError {
    #[error("not a VRM/GLB file (no glTF binary header)")]
    NotGlb,
    #[error("the file is truncated ({0})")]
    Truncated(&'static str),
    #[error("the glTF JSON is invalid: {0}")]
    InvalidJson(String),
    #[error("this is a VRM 1.0 file; only VRM 0.x is supported for now")]
    Vrm1,
    #[error("this glTF file has no VRM extension")]
    NotVrm,
}

/// A GLB split into its JSON and binary chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct Glb {
    pub json: Value,
    pub bin: Option<Vec<u8>>,
}

const JSON_CHUNK: &[u8; 4] = b"JSON";
const BIN_CHUNK: &[u8; 4] = b"BIN\0";

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
}

pub fn read_glb(bytes: &[u8]) -> Result<Glb, VrmError> {
    if bytes.len() < 12 || &bytes[..4] != b"glTF" {
        return Err(VrmError::NotGlb);
    }
    let declared = u32_at(bytes, 8).ok_or(VrmError::NotGlb)? as usize;
    if declared > bytes.len() {
        return Err(VrmError::Truncated("shorter than its header says"));
    }
    let json_len = u32_at(bytes, 12).ok_or(VrmError::Truncated("no JSON chunk"))? as usize;
    if bytes.get(16..20) != Some(JSON_CHUNK.as_slice()) {
        return Err(VrmError::Truncated("no JSON chunk"));
    }
    let json_bytes = bytes
        .get(20..20 + json_len)
        .ok_or(VrmError::Truncated("JSON chunk cut short"))?;
    let json: Value =
        serde_json::from_slice(json_bytes).map_err(|e| VrmError::InvalidJson(e.to_string()))?;
    let bin_at = 20 + json_len;
    let bin = match u32_at(bytes, bin_at) {
        Some(len) if bytes.get(bin_at + 4..bin_at + 8) == Some(BIN_CHUNK.as_slice()) => Some(
            bytes
                .get(bin_at + 8..bin_at + 8 + len as usize)
                .ok_or(VrmError::Truncated("binary chunk cut short"))?
                .to_vec(),
        ),
        _ => None,
    };
    Ok(Glb { json, bin })
}

pub fn write_glb(glb: &Glb) -> Vec<u8> {
    let mut json = serde_json::to_vec(&glb.json).unwrap_or_default();
    while !json.len().is_multiple_of(4) {
        json.push(b' ');
    }
    let mut bin = glb.bin.clone();
    if let Some(bin) = &mut bin {
        while !bin.len().is_multiple_of(4) {
            bin.push(0);
        }
    }
    let total = 12 + 8 + json.len() + bin.as_ref().map_or(0, |b| 8 + b.len());
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(JSON_CHUNK);
    out.extend_from_slice(&json);
    if let Some(bin) = bin {
        out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        out.extend_from_slice(BIN_CHUNK);
        out.extend_from_slice(&bin);
    }
    out
}

/// The VRM 0.x extension, or why there is none.
pub fn vrm0_extension(json: &Value) -> Result<&Value, VrmError> {
    let extensions = json.get("extensions");
    if let Some(vrm) = extensions.and_then(|e| e.get("VRM")) {
        return Ok(vrm);
    }
    if extensions.and_then(|e| e.get("VRMC_vrm")).is_some() {
        return Err(VrmError::Vrm1);
    }
    Err(VrmError::NotVrm)
}

/// A linear curve from (0, 0) to (1, 1), what VRM 0.x exporters write by default.
const DEFAULT_CURVE: [f64; 8] = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0];
const LOOK_AT_CURVES: [&str; 4] = [
    "lookAtHorizontalInner",
    "lookAtHorizontalOuter",
    "lookAtVerticalDown",
    "lookAtVerticalUp",
];

/// The `presetName` values serde_vrm 0.5 accepts; any other value fails the whole extension.
const KNOWN_PRESETS: [&str; 18] = [
    "unknown",
    "neutral",
    "a",
    "i",
    "u",
    "e",
    "o",
    "blink",
    "joy",
    "angry",
    "sorrow",
    "fun",
    "lookup",
    "lookdown",
    "lookleft",
    "lookright",
    "blink_l",
    "blink_r",
];

/// Makes a VRM 0.x extension parseable by bevy_vrm 0.5: every look-at curve exactly 8 numbers
/// (first and last keyframes of longer curves, the default for missing or malformed ones), and
/// preset names it does not know (`surprised`, `Joy`) turned into `unknown` groups that keep
/// their name (our expression map matches those by name). Returns what was changed, for the log.
pub fn normalize_vrm0(json: &mut Value) -> Vec<String> {
    let mut changes = normalize_presets(json);
    let Some(first_person) = json
        .pointer_mut("/extensions/VRM/firstPerson")
        .and_then(Value::as_object_mut)
    else {
        return changes;
    };
    for name in LOOK_AT_CURVES {
        let Some(map) = first_person.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        let numbers: Option<Vec<f64>> = map
            .get("curve")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect());
        let fixed: Vec<f64> = match &numbers {
            Some(n) if n.len() == 8 => continue,
            Some(n) if n.len() > 8 && n.len() % 4 == 0 => [&n[..4], &n[n.len() - 4..]].concat(),
            _ => DEFAULT_CURVE.to_vec(),
        };
        changes.push(format!(
            "{name}.curve: {} numbers -> 8",
            numbers.map_or(0, |n| n.len())
        ));
        map.insert("curve".into(), Value::from(fixed));
    }
    changes
}

fn normalize_presets(json: &mut Value) -> Vec<String> {
    let mut changes = Vec::new();
    let Some(groups) = json
        .pointer_mut("/extensions/VRM/blendShapeMaster/blendShapeGroups")
        .and_then(Value::as_array_mut)
    else {
        return changes;
    };
    for group in groups.iter_mut().filter_map(Value::as_object_mut) {
        let Some(preset) = group.get("presetName").and_then(Value::as_str) else {
            continue;
        };
        if KNOWN_PRESETS.contains(&preset) {
            continue;
        }
        let preset = preset.to_owned();
        if !group.get("name").is_some_and(Value::is_string) {
            group.insert("name".into(), Value::from(preset.clone()));
        }
        group.insert("presetName".into(), Value::from("unknown"));
        changes.push(format!(
            "blend shape preset {preset:?} -> unknown (matched by name)"
        ));
    }
    changes
}

/// A VRM 0.x file made ready for bevy_vrm.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedVrm {
    pub bytes: Vec<u8>,
    /// What was changed, for the log.
    pub changes: Vec<String>,
    /// Its expression groups, read while the JSON is parsed anyway.
    pub groups: Vec<BlendShapeGroup>,
}

/// Reads a VRM 0.x file and returns it ready for bevy_vrm, with the changes made and its
/// expression groups.
pub fn normalize_vrm_bytes(bytes: &[u8]) -> Result<NormalizedVrm, VrmError> {
    let mut glb = read_glb(bytes)?;
    vrm0_extension(&glb.json)?;
    let changes = normalize_vrm0(&mut glb.json);
    let groups = blend_shape_groups(&glb.json)?;
    let bytes = if changes.is_empty() {
        bytes.to_vec()
    } else {
        write_glb(&glb)
    };
    Ok(NormalizedVrm {
        bytes,
        changes,
        groups,
    })
}

/// One morph target driven by an expression.
#[derive(Debug, Clone, PartialEq)]
pub struct BlendShapeBind {
    pub mesh: usize,
    pub index: usize,
    /// 0-100 in VRM 0.x.
    pub weight: f32,
}

/// One `blendShapeMaster` group.
#[derive(Debug, Clone, PartialEq)]
pub struct BlendShapeGroup {
    pub name: String,
    /// `joy`, `blink_l`, ... or `unknown` for custom groups.
    pub preset: String,
    pub binds: Vec<BlendShapeBind>,
    pub is_binary: bool,
}

pub fn blend_shape_groups(json: &Value) -> Result<Vec<BlendShapeGroup>, VrmError> {
    let vrm = vrm0_extension(json)?;
    let groups = vrm
        .pointer("/blendShapeMaster/blendShapeGroups")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(groups
        .iter()
        .map(|group| BlendShapeGroup {
            name: group["name"].as_str().unwrap_or_default().to_owned(),
            preset: group["presetName"]
                .as_str()
                .unwrap_or("unknown")
                .to_lowercase(),
            binds: group["binds"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|bind| {
                    Some(BlendShapeBind {
                        mesh: usize::try_from(bind["mesh"].as_u64()?).ok()?,
                        index: usize::try_from(bind["index"].as_u64()?).ok()?,
                        weight: bind["weight"].as_f64()? as f32,
                    })
                })
                .collect(),
            is_binary: group["isBinary"].as_bool().unwrap_or(false),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glb(json: Value) -> Vec<u8> {
        write_glb(&Glb {
            json,
            bin: Some(vec![1, 2, 3]),
        })
    }

    #[test]
    fn a_twelve_number_curve_becomes_first_and_last_keyframes() {
        let mut json = serde_json::json!({"extensions": {"VRM": {"firstPerson": {
            "lookAtHorizontalInner": {"xRange": 90, "yRange": 10},
            "lookAtHorizontalOuter": {"curve": [0, 0.05, 0, 0, 0.65, 0.39, 1.2, 1.2, 1, 1.05, 1, 1]},
            "lookAtVerticalDown": {"curve": [0, 0, 0, 1, 1, 1, 1, 0]},
        }}}});
        let changes = normalize_vrm0(&mut json);
        assert_eq!(changes.len(), 2, "{changes:?}");
        let outer = &json["extensions"]["VRM"]["firstPerson"]["lookAtHorizontalOuter"]["curve"];
        assert_eq!(
            outer,
            &serde_json::json!([0.0, 0.05, 0.0, 0.0, 1.0, 1.05, 1.0, 1.0])
        );
        let inner = &json["extensions"]["VRM"]["firstPerson"]["lookAtHorizontalInner"];
        assert_eq!(inner["curve"].as_array().map(Vec::len), Some(8));
        assert_eq!(inner["xRange"], 90, "other keys kept");
        assert!(normalize_vrm0(&mut json).is_empty(), "idempotent");
    }

    #[test]
    fn presets_bevy_vrm_rejects_become_unknown_groups_keeping_their_name() {
        let mut json = serde_json::json!({"extensions": {"VRM": {"blendShapeMaster": {"blendShapeGroups": [
            {"name": "Surprised", "presetName": "surprised", "binds": []},
            {"presetName": "Joy", "binds": []},
            {"name": "A", "presetName": "a", "binds": []},
        ]}}}});
        let changes = normalize_vrm0(&mut json);
        assert_eq!(changes.len(), 2, "{changes:?}");
        let groups = blend_shape_groups(&json).expect("groups");
        assert_eq!(
            groups
                .iter()
                .map(|g| (g.name.as_str(), g.preset.as_str()))
                .collect::<Vec<_>>(),
            [("Surprised", "unknown"), ("Joy", "unknown"), ("A", "a")]
        );
    }

    #[test]
    fn what_we_normalize_fails_bevy_vrms_parser_before_and_parses_after() {
        let parse = |json: &Value| {
            serde_json::from_value::<serde_vrm::vrm0::Vrm>(json["extensions"]["VRM"].clone())
        };
        for mut json in [
            serde_json::json!({"extensions": {"VRM": {"firstPerson": {
                "lookAtHorizontalOuter": {"curve": [0, 0, 0, 0, 0.5, 0.5, 1, 1, 1, 1, 1, 1]},
            }}}}),
            serde_json::json!({"extensions": {"VRM": {"blendShapeMaster": {"blendShapeGroups": [
                {"name": "Surprised", "presetName": "surprised", "binds": []},
            ]}}}}),
        ] {
            assert!(parse(&json).is_err(), "{json}");
            assert!(!normalize_vrm0(&mut json).is_empty());
            assert!(parse(&json).is_ok(), "{json}");
        }
    }

    #[test]
    fn glb_round_trips_and_bad_files_give_their_error_kind() {
        let json = serde_json::json!({"asset": {"version": "2.0"}, "extensions": {"VRM": {}}});
        let bytes = glb(json.clone());
        let read = read_glb(&bytes).expect("read");
        assert_eq!(read.json, json);
        assert_eq!(read.bin.as_deref(), Some([1u8, 2, 3, 0].as_slice()));
        assert_eq!(read_glb(b"PNG....."), Err(VrmError::NotGlb));
        assert!(matches!(
            read_glb(&bytes[..bytes.len() - 2]),
            Err(VrmError::Truncated(_))
        ));
        let vrm1 = glb(serde_json::json!({"extensions": {"VRMC_vrm": {}}}));
        assert_eq!(normalize_vrm_bytes(&vrm1).err(), Some(VrmError::Vrm1));
        let plain = glb(serde_json::json!({"asset": {}}));
        assert_eq!(normalize_vrm_bytes(&plain).err(), Some(VrmError::NotVrm));
    }
}
