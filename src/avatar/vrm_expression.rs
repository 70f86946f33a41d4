//! The expressions a VRM file defines, read into one shape for VRM 0.x blend-shape groups and
//! VRM 1.0 `VRMC_vrm.expressions`, plus the initial material values their material binds
//! start from. bevy_vrm 0.5 ignores both, so the app drives them (see `expression`).
//!
//! | VRM 0.x (`blendShapeMaster`)      | VRM 1.0 (`expressions`)      | here                      |
//! |-----------------------------------|------------------------------|---------------------------|
//! | `binds[].mesh` (mesh index)       | `morphTargetBinds[].node`    | [`MorphBind::mesh`]       |
//! | `binds[].weight` 0-100            | `morphTargetBinds[].weight` 0-1 | [`MorphBind::weight`] 0-1 |
//! | `materialValues` `_Color`, ...    | `materialColorBinds`         | [`MaterialColorBind`]     |
//! | `materialValues` `_MainTex_ST`    | `textureTransformBinds`      | [`TextureTransformBind`]  |
//! | `isBinary`                        | `isBinary`                   | `is_binary`               |
//! | (none)                            | `overrideBlink/LookAt/Mouth` | [`Overrides`]             |
//!
//! VRM 0.x material values are converted the way UniVRM migrates them to 1.0: `_Color`,
//! `_EmissionColor`, `_ShadeColor`, `_RimColor`, `_OutlineColor` become color binds (values
//! taken as written, the same space bevy_vrm reads 0.x MToon colors in), `_MainTex_ST`
//! (`_S`, `_T`) a texture transform with its V offset flipped from Unity's bottom-left origin
//! to glTF's top-left. Other properties are dropped with a note.
//!
//! Reading is lenient, like the glTF loaders: a bind that names a missing node, mesh or
//! material, or has malformed numbers, is dropped and described in [`VrmExpressions::notes`].

use serde_json::Value;

use super::vrm_file::{VrmError, VrmVersion, vrm_version, vrm0_extension, vrm1_extension};
use crate::config::Expression;

/// One morph target driven by an expression, weight 0-1 at full expression (VRM 0.x's 0-100
/// divided by 100 when read).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MorphBind {
    /// glTF mesh index (VRM 1.0 binds name a node: its mesh).
    pub mesh: usize,
    /// Morph target index.
    pub index: usize,
    pub weight: f32,
}

/// Which material color an expression changes (VRM 1.0 `materialColorBinds[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MaterialColorType {
    /// `pbrMetallicRoughness.baseColorFactor` (RGBA).
    Color,
    /// `emissiveFactor` (RGB).
    EmissionColor,
    /// MToon `shadeColorFactor` (RGB).
    ShadeColor,
    /// MToon `matcapFactor` (RGB).
    MatcapColor,
    /// MToon `parametricRimColorFactor` (RGB).
    RimColor,
    /// MToon `outlineColorFactor` (RGB).
    OutlineColor,
}

impl MaterialColorType {
    pub const ALL: [MaterialColorType; 6] = [
        MaterialColorType::Color,
        MaterialColorType::EmissionColor,
        MaterialColorType::ShadeColor,
        MaterialColorType::MatcapColor,
        MaterialColorType::RimColor,
        MaterialColorType::OutlineColor,
    ];

    /// The VRM 1.0 `type` value.
    pub fn vrm1_name(self) -> &'static str {
        match self {
            MaterialColorType::Color => "color",
            MaterialColorType::EmissionColor => "emissionColor",
            MaterialColorType::ShadeColor => "shadeColor",
            MaterialColorType::MatcapColor => "matcapColor",
            MaterialColorType::RimColor => "rimColor",
            MaterialColorType::OutlineColor => "outlineColor",
        }
    }

    pub fn from_vrm1(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.vrm1_name() == name)
    }

    /// The VRM 0.x MToon property holding this color (MToon 0.x has no matcap color).
    pub fn vrm0_property(self) -> Option<&'static str> {
        match self {
            MaterialColorType::Color => Some("_Color"),
            MaterialColorType::EmissionColor => Some("_EmissionColor"),
            MaterialColorType::ShadeColor => Some("_ShadeColor"),
            MaterialColorType::MatcapColor => None,
            MaterialColorType::RimColor => Some("_RimColor"),
            MaterialColorType::OutlineColor => Some("_OutlineColor"),
        }
    }

    pub fn from_vrm0_property(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.vrm0_property() == Some(name))
    }

    /// Only the base color has a 4th (alpha) component; the spec says to ignore `targetValue[3]`
    /// for the others.
    pub fn has_alpha(self) -> bool {
        self == MaterialColorType::Color
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// A material color an expression moves towards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaterialColorBind {
    /// glTF material index.
    pub material: usize,
    pub kind: MaterialColorType,
    /// The color at full expression, linear RGBA (alpha unused but for [`MaterialColorType::Color`]).
    pub target: [f32; 4],
}

/// A texture's UV scale and offset (glTF `KHR_texture_transform` convention: origin top-left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextureTransform {
    pub scale: [f32; 2],
    pub offset: [f32; 2],
}

impl Default for TextureTransform {
    fn default() -> Self {
        Self {
            scale: [1.0, 1.0],
            offset: [0.0, 0.0],
        }
    }
}

/// The UV transform of every UV-mapped texture of a material at full expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextureTransformBind {
    /// glTF material index.
    pub material: usize,
    pub target: TextureTransform,
}

/// What an expression does to one procedural category while it shows, ordered weakest first
/// (so `max` is the strongest of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum OverrideMode {
    #[default]
    None,
    /// Attenuates the category by this expression's weight.
    Blend,
    /// Zeroes the category while this expression's weight is above 0.
    Block,
}

impl OverrideMode {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(OverrideMode::None),
            "blend" => Some(OverrideMode::Blend),
            "block" => Some(OverrideMode::Block),
            _ => None,
        }
    }

    /// How much an expression showing at `weight` (already made 0/1 when binary) suppresses
    /// the category: three-vrm's `overrideBlinkAmount` and friends.
    pub fn amount(self, weight: f32) -> f32 {
        match self {
            OverrideMode::None => 0.0,
            OverrideMode::Blend => weight,
            OverrideMode::Block if weight > 0.0 => 1.0,
            OverrideMode::Block => 0.0,
        }
    }
}

/// The expressions the system generates itself, which others may override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedural {
    /// blink, blinkLeft, blinkRight.
    Blink,
    /// lookUp, lookDown, lookLeft, lookRight.
    LookAt,
    /// aa, ih, ou, ee, oh.
    Mouth,
}

impl Procedural {
    pub const ALL: [Procedural; 3] = [Procedural::Blink, Procedural::LookAt, Procedural::Mouth];
}

/// `overrideBlink`, `overrideLookAt`, `overrideMouth` of one expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overrides {
    pub blink: OverrideMode,
    pub look_at: OverrideMode,
    pub mouth: OverrideMode,
}

impl Overrides {
    pub fn get(self, category: Procedural) -> OverrideMode {
        match category {
            Procedural::Blink => self.blink,
            Procedural::LookAt => self.look_at,
            Procedural::Mouth => self.mouth,
        }
    }

    /// The strongest of both, per category.
    pub fn max(self, other: Overrides) -> Overrides {
        Overrides {
            blink: self.blink.max(other.blink),
            look_at: self.look_at.max(other.look_at),
            mouth: self.mouth.max(other.mouth),
        }
    }
}

/// One expression of the file, either version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VrmExpression {
    /// The 1.0 preset key (`happy`), the 1.0 custom key, or the 0.x group name (`Joy`).
    pub name: String,
    /// The file's own preset, mapped onto ours; `None` for 1.0 custom expressions and 0.x
    /// `unknown` groups (the expression map then tries [`Self::name`]).
    pub preset: Option<Expression>,
    pub morph_binds: Vec<MorphBind>,
    pub color_binds: Vec<MaterialColorBind>,
    pub texture_binds: Vec<TextureTransformBind>,
    /// Shown fully above 0.5, not at all otherwise.
    pub is_binary: bool,
    /// Always none in VRM 0.x, which has no overrides.
    pub overrides: Overrides,
}

/// A material's values before any expression: what material binds move away from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaterialBase {
    /// Indexed by [`MaterialColorType`] order; RGB colors have alpha 1.
    colors: [[f32; 4]; 6],
    pub texture: TextureTransform,
}

impl Default for MaterialBase {
    /// glTF and MToon 1.0 defaults.
    fn default() -> Self {
        Self {
            colors: [
                [1.0, 1.0, 1.0, 1.0],
                [0.0, 0.0, 0.0, 1.0],
                [0.0, 0.0, 0.0, 1.0],
                [1.0, 1.0, 1.0, 1.0],
                [0.0, 0.0, 0.0, 1.0],
                [0.0, 0.0, 0.0, 1.0],
            ],
            texture: TextureTransform::default(),
        }
    }
}

impl MaterialBase {
    pub fn color(&self, kind: MaterialColorType) -> [f32; 4] {
        self.colors[kind.slot()]
    }

    fn set_color(&mut self, kind: MaterialColorType, value: Option<[f32; 4]>) {
        if let Some(value) = value {
            self.colors[kind.slot()] = value;
        }
    }
}

/// Everything expression-related in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct VrmExpressions {
    pub version: VrmVersion,
    pub expressions: Vec<VrmExpression>,
    /// Initial values of every glTF material, by material index.
    pub materials: Vec<MaterialBase>,
    /// Binds and values dropped while reading, for the log.
    pub notes: Vec<String>,
}

/// Reads the expressions of a VRM 0.x or 1.0 file.
pub fn read_expressions(json: &Value) -> Result<VrmExpressions, VrmError> {
    let version = vrm_version(json)?;
    let mut notes = Vec::new();
    let expressions = match version {
        VrmVersion::V0 => read_vrm0(json, &mut notes),
        VrmVersion::V1 => read_vrm1(json, &mut notes),
    };
    Ok(VrmExpressions {
        version,
        expressions,
        materials: material_bases(json, version),
        notes,
    })
}

/// The mesh of glTF node `node`, when the node exists and has a valid mesh.
pub fn node_mesh(json: &Value, node: usize) -> Option<usize> {
    let mesh = usize::try_from(json.pointer(&format!("/nodes/{node}/mesh"))?.as_u64()?).ok()?;
    (mesh < items(json, "meshes").len()).then_some(mesh)
}

fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn index_of(value: &Value, key: &str) -> Option<usize> {
    usize::try_from(value.get(key)?.as_u64()?).ok()
}

/// Exactly `N` numbers.
pub(crate) fn floats<const N: usize>(value: Option<&Value>) -> Option<[f32; N]> {
    let numbers: Vec<f32> = value?
        .as_array()?
        .iter()
        .map(|n| n.as_f64().map(|n| n as f32))
        .collect::<Option<_>>()?;
    numbers.try_into().ok()
}

/// An RGB color with alpha 1, or an RGBA color.
fn color(value: Option<&Value>) -> Option<[f32; 4]> {
    floats::<4>(value).or_else(|| floats::<3>(value).map(|[r, g, b]| [r, g, b, 1.0]))
}

fn material_count(json: &Value) -> usize {
    items(json, "materials").len()
}

fn read_vrm1(json: &Value, notes: &mut Vec<String>) -> Vec<VrmExpression> {
    let Some(expressions) = vrm1_extension(json).and_then(|v| v.get("expressions")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let presets = expressions.get("preset").and_then(Value::as_object);
    for (name, value) in presets.into_iter().flatten() {
        let preset = Expression::from_vrm1_preset(name);
        if preset.is_none() {
            notes.push(format!(
                "expression preset {name:?} is not a VRM 1.0 preset: kept by name"
            ));
        }
        out.push(read_vrm1_expression(json, name, preset, value, notes));
    }
    let custom = expressions.get("custom").and_then(Value::as_object);
    for (name, value) in custom.into_iter().flatten() {
        out.push(read_vrm1_expression(json, name, None, value, notes));
    }
    out
}

fn read_vrm1_expression(
    json: &Value,
    name: &str,
    preset: Option<Expression>,
    value: &Value,
    notes: &mut Vec<String>,
) -> VrmExpression {
    let mut note = |what: String| notes.push(format!("expression {name:?}: {what}, dropped"));
    let morph_binds = items(value, "morphTargetBinds")
        .iter()
        .filter_map(|bind| vrm1_morph_bind(json, bind).map_err(&mut note).ok())
        .collect();
    let color_binds = items(value, "materialColorBinds")
        .iter()
        .filter_map(|bind| vrm1_color_bind(json, bind).map_err(&mut note).ok())
        .collect();
    let texture_binds = items(value, "textureTransformBinds")
        .iter()
        .filter_map(|bind| vrm1_texture_bind(json, bind).map_err(&mut note).ok())
        .collect();
    let mut mode = |key: &str| {
        let Some(written) = value.get(key) else {
            return OverrideMode::None;
        };
        written
            .as_str()
            .and_then(OverrideMode::parse)
            .unwrap_or_else(|| {
                note(format!("{key} {written} is not none/block/blend"));
                OverrideMode::None
            })
    };
    let overrides = Overrides {
        blink: mode("overrideBlink"),
        look_at: mode("overrideLookAt"),
        mouth: mode("overrideMouth"),
    };
    VrmExpression {
        name: name.to_owned(),
        preset,
        morph_binds,
        color_binds,
        texture_binds,
        is_binary: value.get("isBinary").and_then(Value::as_bool) == Some(true),
        overrides,
    }
}

fn vrm1_morph_bind(json: &Value, bind: &Value) -> Result<MorphBind, String> {
    let node = index_of(bind, "node").ok_or("a morph bind without node")?;
    let mesh = node_mesh(json, node)
        .ok_or_else(|| format!("a morph bind on node {node}, which has no mesh"))?;
    let index = index_of(bind, "index").ok_or("a morph bind without index")?;
    let weight = bind
        .get("weight")
        .and_then(Value::as_f64)
        .ok_or("a morph bind without weight")?;
    Ok(MorphBind {
        mesh,
        index,
        weight: (weight as f32).clamp(0.0, 1.0),
    })
}

fn vrm1_material(json: &Value, bind: &Value) -> Result<usize, String> {
    let material = index_of(bind, "material").ok_or("a material bind without material")?;
    if material < material_count(json) {
        Ok(material)
    } else {
        Err(format!(
            "a bind on material {material}, which does not exist"
        ))
    }
}

fn vrm1_color_bind(json: &Value, bind: &Value) -> Result<MaterialColorBind, String> {
    let material = vrm1_material(json, bind)?;
    let kind_name = bind.get("type").and_then(Value::as_str).unwrap_or_default();
    let kind = MaterialColorType::from_vrm1(kind_name)
        .ok_or_else(|| format!("material color type {kind_name:?} unknown"))?;
    let target = floats::<4>(bind.get("targetValue")).ok_or("a targetValue not of 4 numbers")?;
    Ok(MaterialColorBind {
        material,
        kind,
        target,
    })
}

fn vrm1_texture_bind(json: &Value, bind: &Value) -> Result<TextureTransformBind, String> {
    let material = vrm1_material(json, bind)?;
    let identity = TextureTransform::default();
    let pair = |key: &str, default: [f32; 2]| match bind.get(key) {
        None => Ok(default),
        Some(value) => floats::<2>(Some(value)).ok_or_else(|| format!("a {key} not of 2 numbers")),
    };
    Ok(TextureTransformBind {
        material,
        target: TextureTransform {
            scale: pair("scale", identity.scale)?,
            offset: pair("offset", identity.offset)?,
        },
    })
}

fn read_vrm0(json: &Value, notes: &mut Vec<String>) -> Vec<VrmExpression> {
    let groups = vrm0_extension(json)
        .and_then(|vrm| vrm.pointer("/blendShapeMaster/blendShapeGroups"))
        .and_then(Value::as_array);
    groups
        .into_iter()
        .flatten()
        .map(|group| read_vrm0_group(json, group, notes))
        .collect()
}

fn read_vrm0_group(json: &Value, group: &Value, notes: &mut Vec<String>) -> VrmExpression {
    let name = group
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let preset = match group.get("presetName").and_then(Value::as_str) {
        None | Some("") => None,
        Some(preset) if preset.eq_ignore_ascii_case("unknown") => None,
        Some(preset) => Expression::from_name(preset),
    };
    let morph_binds = items(group, "binds")
        .iter()
        .filter_map(|bind| {
            Some(MorphBind {
                mesh: index_of(bind, "mesh")?,
                index: index_of(bind, "index")?,
                weight: (bind.get("weight")?.as_f64()? as f32 / 100.0).clamp(0.0, 1.0),
            })
        })
        .collect();
    let mut expression = VrmExpression {
        name: name.to_owned(),
        preset,
        morph_binds,
        is_binary: group.get("isBinary").and_then(Value::as_bool) == Some(true),
        ..VrmExpression::default()
    };
    for value in items(group, "materialValues") {
        if let Err(what) = add_vrm0_material_value(json, value, &mut expression) {
            notes.push(format!("blend shape group {name:?}: {what}, dropped"));
        }
    }
    expression
}

/// One 0.x `materialValues` entry as a color or texture-transform bind (UniVRM's migration).
fn add_vrm0_material_value(
    json: &Value,
    value: &Value,
    expression: &mut VrmExpression,
) -> Result<(), String> {
    let material_name = value
        .get("materialName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let material = items(json, "materials")
        .iter()
        .position(|m| m.get("name").and_then(Value::as_str) == Some(material_name))
        .ok_or_else(|| format!("material {material_name:?} not found"))?;
    let property = value
        .get("propertyName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let target: Vec<f32> = items(value, "targetValue")
        .iter()
        .filter_map(|n| n.as_f64().map(|n| n as f32))
        .collect();
    let &[x, y, z, w] = target.as_slice() else {
        return Err(format!("{property} target is not 4 numbers"));
    };
    let unity_st = match property {
        "_MainTex_ST" => Some(([x, y], [z, w])),
        "_MainTex_ST_S" => Some(([x, 1.0], [z, 0.0])),
        "_MainTex_ST_T" => Some(([1.0, y], [0.0, w])),
        _ => None,
    };
    if let Some((scale, offset)) = unity_st {
        // UniVRM keeps the first texture transform of a material only.
        if !expression
            .texture_binds
            .iter()
            .any(|b| b.material == material)
        {
            expression.texture_binds.push(TextureTransformBind {
                material,
                target: from_unity_st(scale, offset),
            });
        }
        return Ok(());
    }
    let kind = MaterialColorType::from_vrm0_property(property)
        .ok_or_else(|| format!("material property {property:?} is not supported"))?;
    expression.color_binds.push(MaterialColorBind {
        material,
        kind,
        target: [x, y, z, w],
    });
    Ok(())
}

/// Unity's UV scale/offset (origin bottom-left) in glTF's convention (origin top-left).
fn from_unity_st(scale: [f32; 2], offset: [f32; 2]) -> TextureTransform {
    TextureTransform {
        scale,
        offset: [offset[0], 1.0 - offset[1] - scale[1]],
    }
}

/// The initial values of every material: glTF core values, then MToon's (1.0 extension or
/// 0.x `materialProperties` of shader `VRM/MToon`, the same index as the glTF material).
fn material_bases(json: &Value, version: VrmVersion) -> Vec<MaterialBase> {
    let vrm0_properties =
        vrm0_extension(json).map_or(&[][..], |vrm| items(vrm, "materialProperties"));
    items(json, "materials")
        .iter()
        .enumerate()
        .map(|(index, material)| {
            let mut base = core_base(material);
            match version {
                VrmVersion::V1 => add_mtoon1(&mut base, material),
                VrmVersion::V0 => {
                    if let Some(properties) = vrm0_properties.get(index) {
                        add_mtoon0(&mut base, properties);
                    }
                }
            }
            base
        })
        .collect()
}

fn core_base(material: &Value) -> MaterialBase {
    let mut base = MaterialBase::default();
    let pbr = material.get("pbrMetallicRoughness");
    base.set_color(
        MaterialColorType::Color,
        floats::<4>(pbr.and_then(|p| p.get("baseColorFactor"))),
    );
    base.set_color(
        MaterialColorType::EmissionColor,
        color(material.get("emissiveFactor")),
    );
    let transform =
        pbr.and_then(|p| p.pointer("/baseColorTexture/extensions/KHR_texture_transform"));
    if let Some(transform) = transform {
        let identity = TextureTransform::default();
        base.texture = TextureTransform {
            scale: floats::<2>(transform.get("scale")).unwrap_or(identity.scale),
            offset: floats::<2>(transform.get("offset")).unwrap_or(identity.offset),
        };
    }
    base
}

fn add_mtoon1(base: &mut MaterialBase, material: &Value) {
    let Some(mtoon) = material.pointer("/extensions/VRMC_materials_mtoon") else {
        return;
    };
    for (kind, key) in [
        (MaterialColorType::ShadeColor, "shadeColorFactor"),
        (MaterialColorType::MatcapColor, "matcapFactor"),
        (MaterialColorType::RimColor, "parametricRimColorFactor"),
        (MaterialColorType::OutlineColor, "outlineColorFactor"),
    ] {
        base.set_color(kind, color(mtoon.get(key)));
    }
}

fn add_mtoon0(base: &mut MaterialBase, properties: &Value) {
    if properties.get("shader").and_then(Value::as_str) != Some("VRM/MToon") {
        return;
    }
    let vectors = properties.get("vectorProperties");
    for kind in MaterialColorType::ALL {
        if let Some(property) = kind.vrm0_property() {
            base.set_color(kind, color(vectors.and_then(|v| v.get(property))));
        }
    }
}
