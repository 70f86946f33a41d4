//! VRM files without Bevy: reading the GLB container, telling VRM 0.x from 1.0, refusing files
//! a loader should not open, normalizing what real VRM 0.x exporters write but bevy_vrm's
//! parser rejects, and reading what the app drives itself (expressions, look-at: bevy_vrm 0.5
//! loads both versions into one model but does neither).
//!
//! The Blender VRM add-on writes look-at curves of 12 numbers (three keyframes) and may omit a
//! curve; serde_vrm expects exactly 8 (two keyframes), so the whole VRM extension of such a file
//! fails to parse ("invalid length 12"). [`normalize_vrm0`] rewrites them before bevy_vrm sees
//! the file (every avatar is read through `avatar::source` and
//! [`super::vrm_import::normalize_vrm_bytes`], which calls it). Our own look-at is read before
//! that, from the full curves.
//!
//! Facing: a VRM 1.0 model faces +Z (glTF's forward), a VRM 0.x model faces -Z. bevy_vrm 0.5
//! turns the scene root of a 1.0 model half a turn about Y so both face the same way once
//! spawned, but anything posed in the file's own space (eye bones, look-at offsets) must
//! account for it: see [`VrmVersion::forward_z`].

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VrmError {
    #[error("not a VRM/GLB file (no glTF binary header)")]
    NotGlb,
    #[error("the file is truncated ({0})")]
    Truncated(&'static str),
    #[error("the glTF JSON is invalid: {0}")]
    InvalidJson(String),
    #[error("this glTF file has no VRM extension")]
    NotVrm,
    #[error("VRMC_vrm specVersion {0:?} is not supported (only 1.0 is)")]
    UnsupportedVersion(String),
    #[error(
        "{kind} {index} points outside the avatar file ({uri}); only data embedded in the \
         file is read"
    )]
    ExternalUri {
        /// `buffer` or `image`.
        kind: &'static str,
        index: usize,
        /// The uri as written (cut to [`URI_SHOWN`] characters).
        uri: String,
    },
    #[error("{kind} {index} has a data: uri that cannot be read ({reason}): {uri}")]
    BadDataUri {
        kind: &'static str,
        index: usize,
        reason: &'static str,
        uri: String,
    },
    #[error("the file has no mesh to show (no `meshes`, or no node uses one)")]
    NoMesh,
    #[error(
        "image {index} is {width}x{height} pixels; textures up to {MAX_TEXTURE_SIDE} pixels a \
         side (what every GPU takes) and {} megapixels in all are read",
        MAX_TEXTURE_PIXELS / 1_000_000
    )]
    TextureTooLarge {
        index: usize,
        width: u32,
        height: u32,
    },
}

/// The largest texture side read: wgpu's default `max_texture_dimension_2d`, which every
/// adapter supports (a larger one fails on some GPUs, or is decoded into gigabytes first).
pub const MAX_TEXTURE_SIDE: u32 = 8192;
/// The most pixels of all textures together (about 1 GiB as RGBA8 with mipmaps).
pub const MAX_TEXTURE_PIXELS: u64 = 200_000_000;

/// Refuses embedded images above [`MAX_TEXTURE_SIDE`] or [`MAX_TEXTURE_PIXELS`], read from
/// their headers (PNG, JPEG, ...) before anything is decoded. An image whose size cannot be
/// read is left to the loader.
pub fn check_texture_sizes(glb: &Glb) -> Result<(), VrmError> {
    let Some(bin) = glb.bin.as_deref() else {
        return Ok(());
    };
    let views = glb.json["bufferViews"].as_array();
    let mut total: u64 = 0;
    for (index, image) in glb.json["images"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(view) = image["bufferView"]
            .as_u64()
            .and_then(|v| views.and_then(|views| views.get(v as usize)))
        else {
            continue;
        };
        let start = view["byteOffset"].as_u64().unwrap_or(0) as usize;
        let length = view["byteLength"].as_u64().unwrap_or(0) as usize;
        let Some(bytes) = bin.get(start..start.saturating_add(length)) else {
            continue;
        };
        let Ok(reader) = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()
        else {
            continue;
        };
        let Ok((width, height)) = reader.into_dimensions() else {
            continue;
        };
        total = total.saturating_add(u64::from(width) * u64::from(height));
        if width > MAX_TEXTURE_SIDE || height > MAX_TEXTURE_SIDE || total > MAX_TEXTURE_PIXELS {
            return Err(VrmError::TextureTooLarge {
                index,
                width,
                height,
            });
        }
    }
    Ok(())
}

/// How much of a refused uri an error message quotes.
pub const URI_SHOWN: usize = 160;

/// Which VRM specification a file follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrmVersion {
    /// `extensions.VRM` (specVersion 0.0): blend-shape groups, model faces -Z.
    V0,
    /// `extensions.VRMC_vrm` (specVersion 1.0): expressions, model faces +Z.
    V1,
}

impl VrmVersion {
    /// The model's forward direction along glTF Z in the file: -1 for 0.x, +1 for 1.0. The
    /// app turns a model by half a turn about Y when this is +1 (bevy_vrm 0.5 already does it
    /// to the scene root) and flips look-at pitch for 0.x eye bones (see `look_at`).
    pub fn forward_z(self) -> f32 {
        match self {
            VrmVersion::V0 => -1.0,
            VrmVersion::V1 => 1.0,
        }
    }
}

/// The `specVersion`s of `VRMC_vrm` read as 1.0 (three-vrm accepts the same two).
const VRM1_SPEC_VERSIONS: [&str; 2] = ["1.0", "1.0-beta"];

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

/// `extensions.VRM` (0.x), when the file has it.
pub fn vrm0_extension(json: &Value) -> Option<&Value> {
    json.pointer("/extensions/VRM")
}

/// `extensions.VRMC_vrm` (1.0), when the file has it.
pub fn vrm1_extension(json: &Value) -> Option<&Value> {
    json.pointer("/extensions/VRMC_vrm")
}

/// Which VRM version the file is. `VRMC_vrm` wins over `VRM` (as in bevy_vrm); a `VRMC_vrm`
/// of another specVersion than 1.0 is refused rather than read with 1.0's rules.
pub fn vrm_version(json: &Value) -> Result<VrmVersion, VrmError> {
    if let Some(vrm1) = vrm1_extension(json) {
        let spec = vrm1.get("specVersion").and_then(Value::as_str);
        return match spec {
            Some(spec) if VRM1_SPEC_VERSIONS.contains(&spec) => Ok(VrmVersion::V1),
            other => Err(VrmError::UnsupportedVersion(
                other.unwrap_or("(none)").to_owned(),
            )),
        };
    }
    if vrm0_extension(json).is_some() {
        return Ok(VrmVersion::V0);
    }
    Err(VrmError::NotVrm)
}

/// Refuses a file whose buffers or images name a uri other than an embedded `data:` uri
/// (a relative or absolute path, `file://`, a device file, a URL): the glTF loader would
/// resolve it next to the avatar and read whatever it points at. Run before any loader sees
/// the bytes. A GLB's own binary chunk is the buffer without a uri, which is fine.
pub fn check_external_uris(json: &Value) -> Result<(), VrmError> {
    for (list, kind) in [("buffers", "buffer"), ("images", "image")] {
        let items = json.get(list).and_then(Value::as_array);
        for (index, item) in items.into_iter().flatten().enumerate() {
            match item.get("uri") {
                None => {}
                Some(Value::String(uri)) if uri.starts_with("data:") => {
                    if let Err(reason) = check_data_uri(uri) {
                        return Err(VrmError::BadDataUri {
                            kind,
                            index,
                            reason,
                            uri: shown_uri(&Value::String(uri.clone())),
                        });
                    }
                }
                Some(uri) => {
                    return Err(VrmError::ExternalUri {
                        kind,
                        index,
                        uri: shown_uri(uri),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Whether bevy_gltf can read a `data:` uri without panicking or looking for a file: it
/// percent-decodes the uri and unwraps the result as UTF-8 (invalid percent-encoding would
/// panic the loader), then needs `data:<type>[;base64],<data>` (without the comma it resolves
/// the uri as a file path next to the avatar).
fn check_data_uri(uri: &str) -> Result<(), &'static str> {
    let decoded = percent_encoding::percent_decode_str(uri)
        .decode_utf8()
        .map_err(|_| "percent-encoding that is not UTF-8")?;
    if !decoded.trim_start_matches("data:").contains(',') {
        return Err("no `,` before the data");
    }
    Ok(())
}

/// A refused uri for the error message: the string (cut short), or the JSON of a non-string.
fn shown_uri(uri: &Value) -> String {
    let text = match uri {
        Value::String(uri) => uri.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(URI_SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Refuses a file with nothing to show: no `meshes`, or no node placing one of them.
pub fn check_has_mesh(json: &Value) -> Result<(), VrmError> {
    let meshes = json
        .get("meshes")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let nodes = json.get("nodes").and_then(Value::as_array);
    let placed = nodes
        .into_iter()
        .flatten()
        .filter_map(|node| node.get("mesh").and_then(Value::as_u64))
        .any(|mesh| (mesh as usize) < meshes);
    if placed {
        Ok(())
    } else {
        Err(VrmError::NoMesh)
    }
}

/// A linear curve from (0, 0) to (1, 1), what VRM 0.x exporters write by default.
const DEFAULT_CURVE: [f64; 8] = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0];
const LOOK_AT_CURVES: [&str; 4] = [
    "lookAtHorizontalInner",
    "lookAtHorizontalOuter",
    "lookAtVerticalDown",
    "lookAtVerticalUp",
];

/// The `presetName` values serde_vrm accepts; any other value fails the whole extension.
const KNOWN_PRESETS: &[&str] = &[
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

/// Makes a VRM 0.x extension parseable by bevy_vrm (serde_vrm 0.4 and 0.5 alike): every
/// look-at curve exactly 8 numbers (first and last keyframes of longer curves, the default for
/// missing or malformed ones), and preset names it does not know (`surprised`, `Joy`) turned
/// into `unknown` groups that keep their name (our expression map matches those by name).
/// Returns what was changed, for the log.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avatar::vrm_expression::read_expressions;
    use crate::avatar::vrm_import::normalize_vrm_bytes;

    /// A real PNG of `width` x 1 pixels.
    fn png(width: u32) -> Vec<u8> {
        use image::ImageEncoder as _;
        let mut bytes = Vec::new();
        let pixels = vec![0u8; width as usize * 4];
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(&pixels, width, 1, image::ExtendedColorType::Rgba8)
            .expect("encode");
        bytes
    }

    #[test]
    fn textures_above_what_every_gpu_takes_are_refused_from_their_header() {
        let image = |width: u32| {
            let png = png(width);
            Glb {
                json: serde_json::json!({
                    "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": png.len()}],
                    "images": [{"bufferView": 0, "mimeType": "image/png"}],
                }),
                bin: Some(png),
            }
        };
        assert_eq!(check_texture_sizes(&image(4096)), Ok(()));
        assert_eq!(check_texture_sizes(&image(8192)), Ok(()));
        let err = check_texture_sizes(&image(8193)).expect_err("refused");
        assert_eq!(
            err,
            VrmError::TextureTooLarge {
                index: 0,
                width: 8193,
                height: 1
            }
        );
        assert!(err.to_string().contains("up to 8192 pixels"), "{err}");
        // The built-in mascot passes.
        let glb = read_glb(crate::avatar::default_avatar::DEFAULT_AVATAR).expect("glb");
        assert_eq!(check_texture_sizes(&glb), Ok(()));
    }

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
        let read = read_expressions(&json).expect("expressions");
        assert_eq!(
            read.expressions
                .iter()
                .map(|e| (e.name.as_str(), e.preset))
                .collect::<Vec<_>>(),
            [
                ("Surprised", None),
                ("Joy", None),
                ("A", Some(crate::config::Expression::A))
            ]
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
        let future = glb(serde_json::json!({"extensions": {"VRMC_vrm": {"specVersion": "2.0"}}}));
        assert_eq!(
            normalize_vrm_bytes(&future).err(),
            Some(VrmError::UnsupportedVersion("2.0".into()))
        );
        let plain = glb(serde_json::json!({"asset": {}}));
        assert_eq!(normalize_vrm_bytes(&plain).err(), Some(VrmError::NotVrm));
    }

    #[test]
    fn data_uris_bevy_gltf_would_panic_or_resolve_as_a_path_on_are_refused() {
        // Percent-encoding that decodes to invalid UTF-8 reached an unwrap in bevy_gltf.
        for (uri, reason) in [
            (
                "data:image/png;base64,%FF%FE",
                "percent-encoding that is not UTF-8",
            ),
            ("data:%C3", "percent-encoding that is not UTF-8"),
            (
                "data:application/octet-stream;base64",
                "no `,` before the data",
            ),
            ("data:../../../etc/passwd", "no `,` before the data"),
        ] {
            let json = serde_json::json!({"buffers": [{"uri": "data:application/octet-stream;base64,AAAA"}],
                "images": [{"uri": uri}]});
            let err = check_external_uris(&json).expect_err(uri);
            assert_eq!(
                err,
                VrmError::BadDataUri {
                    kind: "image",
                    index: 0,
                    reason,
                    uri: uri.to_owned()
                },
                "{uri}"
            );
        }
        let fine = serde_json::json!({"images": [{"uri": "data:image/png;base64,iVBORw0KGgo="},
            {"uri": "data:text/plain,hello%20world"}]});
        assert_eq!(check_external_uris(&fine), Ok(()));
    }

    #[test]
    fn long_refused_uris_are_cut_in_the_message() {
        let long = "a".repeat(1000);
        let json = serde_json::json!({"images": [{"uri": long}]});
        let Err(VrmError::ExternalUri { kind, index, uri }) = check_external_uris(&json) else {
            panic!("refused");
        };
        assert_eq!((kind, index), ("image", 0));
        assert_eq!(uri.chars().count(), URI_SHOWN + 1);
    }
}
