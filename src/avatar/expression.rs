//! Expressions without Bevy: what each of our presets drives on one model, VRM 0.x or 1.0
//! (morph targets, material colors, texture transforms, with the fallbacks for presets a model
//! lacks), the eased weights shown, and the VRM 1.0 rules turning shown weights into applied
//! ones (`isBinary`, `overrideBlink` / `overrideLookAt` / `overrideMouth`).
//!
//! Fallbacks, used only when the model has no expression for a preset:
//!
//! | missing     | shown with            |
//! |-------------|-----------------------|
//! | surprised   | o (round open mouth)  |
//! | fun         | joy                   |
//! | joy         | fun                   |
//! | blink       | blink_l + blink_r     |
//! | blink_l/_r  | blink                 |
//! | i, u, e, o  | a                     |
//! | a           | o                     |
//!
//! angry, sorrow and the look presets have no stand-in (look-at then moves the head only).
//!
//! Each frame: `Expressions::step` eases the shown weights, the app adds blink, mouth and look
//! weights, [`ExpressionMap::resolve`] applies the spec's rules, then
//! [`ExpressionMap::morph_weights`] and [`ExpressionMap::material_values`] give what to write.

use crate::avatar::vrm_expression::{MaterialBase, VrmExpression, VrmExpressions};
pub use crate::avatar::vrm_expression::{
    MaterialColorBind, MaterialColorType, MorphBind, OverrideMode, Overrides, Procedural,
    TextureTransform, TextureTransformBind,
};
use crate::config::{EmotionExpression, Expression};

/// Every preset, in the order of [`Expression`]'s discriminants.
pub const EXPRESSIONS: [Expression; Expression::COUNT] = Expression::ALL;

/// The emotion presets: showing one clears the others.
pub const MOODS: [Expression; 6] = [
    Expression::Neutral,
    Expression::Joy,
    Expression::Angry,
    Expression::Sorrow,
    Expression::Fun,
    Expression::Surprised,
];

pub const fn index(expression: Expression) -> usize {
    expression as usize
}

impl Expression {
    /// The VRM 0.x preset name (`lookup`, `blink_l`, ...).
    pub fn vrm_name(self) -> &'static str {
        match self {
            Expression::Neutral => "neutral",
            Expression::Joy => "joy",
            Expression::Angry => "angry",
            Expression::Sorrow => "sorrow",
            Expression::Fun => "fun",
            Expression::Surprised => "surprised",
            Expression::Blink => "blink",
            Expression::BlinkL => "blink_l",
            Expression::BlinkR => "blink_r",
            Expression::A => "a",
            Expression::I => "i",
            Expression::U => "u",
            Expression::E => "e",
            Expression::O => "o",
            Expression::LookUp => "lookup",
            Expression::LookDown => "lookdown",
            Expression::LookLeft => "lookleft",
            Expression::LookRight => "lookright",
        }
    }

    /// The VRM 1.0 preset key (`happy`, `blinkLeft`, `lookUp`, ...).
    pub fn vrm1_name(self) -> &'static str {
        match self {
            Expression::Neutral => "neutral",
            Expression::Joy => "happy",
            Expression::Angry => "angry",
            Expression::Sorrow => "sad",
            Expression::Fun => "relaxed",
            Expression::Surprised => "surprised",
            Expression::Blink => "blink",
            Expression::BlinkL => "blinkLeft",
            Expression::BlinkR => "blinkRight",
            Expression::A => "aa",
            Expression::I => "ih",
            Expression::U => "ou",
            Expression::E => "ee",
            Expression::O => "oh",
            Expression::LookUp => "lookUp",
            Expression::LookDown => "lookDown",
            Expression::LookLeft => "lookLeft",
            Expression::LookRight => "lookRight",
        }
    }

    /// The preset of a VRM 1.0 `expressions.preset` key, spelled exactly as the spec does.
    pub fn from_vrm1_preset(key: &str) -> Option<Expression> {
        EXPRESSIONS.into_iter().find(|e| e.vrm1_name() == key)
    }

    /// Parses a VRM 0.x or 1.0 preset or group name, or our settings spelling (`look_up`),
    /// any case.
    pub fn from_name(name: &str) -> Option<Expression> {
        let wanted = name.trim().to_lowercase().replace(['-', ' '], "_");
        let wanted = match wanted.as_str() {
            "look_up" | "look_down" | "look_left" | "look_right" => wanted.replace('_', ""),
            "surprise" => "surprised".to_owned(),
            _ => wanted,
        };
        EXPRESSIONS
            .into_iter()
            .find(|e| e.vrm_name() == wanted || e.vrm1_name().eq_ignore_ascii_case(&wanted))
    }

    /// The procedural category the system drives this preset in, if any: the expressions
    /// other expressions may override.
    pub fn procedural(self) -> Option<Procedural> {
        match self {
            Expression::Blink | Expression::BlinkL | Expression::BlinkR => Some(Procedural::Blink),
            Expression::LookUp
            | Expression::LookDown
            | Expression::LookLeft
            | Expression::LookRight => Some(Procedural::LookAt),
            Expression::A | Expression::I | Expression::U | Expression::E | Expression::O => {
                Some(Procedural::Mouth)
            }
            _ => None,
        }
    }

    fn fallback(self) -> &'static [Expression] {
        match self {
            Expression::Surprised => &[Expression::O],
            Expression::Fun => &[Expression::Joy],
            Expression::Joy => &[Expression::Fun],
            Expression::Blink => &[Expression::BlinkL, Expression::BlinkR],
            Expression::BlinkL | Expression::BlinkR => &[Expression::Blink],
            Expression::I | Expression::U | Expression::E | Expression::O => &[Expression::A],
            Expression::A => &[Expression::O],
            _ => &[],
        }
    }
}

/// Where each expression comes from on one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The model's own expression.
    Own,
    /// The model lacks it; shown through these presets.
    Fallback(&'static [Expression]),
    /// Neither the model nor a fallback has it.
    Missing,
}

/// What one expression does when shown at weight 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpressionBinds {
    pub morphs: Vec<MorphBind>,
    pub colors: Vec<MaterialColorBind>,
    pub textures: Vec<TextureTransformBind>,
    /// Shown fully above 0.5, not at all otherwise (true only when every merged source is).
    pub is_binary: bool,
    /// The strongest override of the merged sources, per category.
    pub overrides: Overrides,
}

impl ExpressionBinds {
    fn from_file(expression: &VrmExpression) -> Self {
        Self {
            morphs: expression.morph_binds.clone(),
            colors: expression.color_binds.clone(),
            textures: expression.texture_binds.clone(),
            is_binary: expression.is_binary,
            overrides: expression.overrides,
        }
    }

    /// Adds another source of the same expression (a second group of one preset, or a stand-in).
    fn merge(&mut self, other: &ExpressionBinds, first: bool) {
        self.morphs.extend_from_slice(&other.morphs);
        self.colors.extend_from_slice(&other.colors);
        self.textures.extend_from_slice(&other.textures);
        self.is_binary = other.is_binary && (first || self.is_binary);
        self.overrides = self.overrides.max(other.overrides);
    }

    /// The weight an expression shown at `shown` applies before overrides: clamped to 0-1, and
    /// 0 or 1 when binary (1 above 0.5).
    fn output_weight(&self, shown: f32) -> f32 {
        let weight = if shown.is_nan() {
            0.0
        } else {
            shown.clamp(0.0, 1.0)
        };
        match self.is_binary {
            true if weight > 0.5 => 1.0,
            true => 0.0,
            false => weight,
        }
    }
}

/// The material values an expression state gives one material: what the Bevy side writes.
#[derive(Debug, Clone, PartialEq)]
pub struct MaterialValues {
    /// glTF material index.
    pub material: usize,
    /// `base + sum(weight * (target - base))` for each color some expression binds; RGB types
    /// keep the base alpha. Colors are linear, as in glTF.
    pub colors: Vec<(MaterialColorType, [f32; 4])>,
    /// Scale and offset moved the same way, when some expression binds this material's UVs.
    pub texture: Option<TextureTransform>,
}

/// What each of our presets does on one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpressionMap {
    slots: [ExpressionBinds; Expression::COUNT],
    sources: [Option<Source>; Expression::COUNT],
    /// Expressions matching none of our presets (1.0 custom, 0.x `unknown`), by name.
    custom: Vec<(String, ExpressionBinds)>,
    /// Initial values of the model's materials, by glTF material index.
    materials: Vec<MaterialBase>,
}

impl ExpressionMap {
    /// Maps a file's expressions onto our presets. An expression of a preset wins; one with
    /// no preset (1.0 custom, 0.x `unknown`) is matched by name only to a preset the file
    /// does not declare, and kept by name otherwise.
    pub fn from_expressions(file: &VrmExpressions) -> Self {
        let mut own: [Option<ExpressionBinds>; Expression::COUNT] = Default::default();
        let mut named = Vec::new();
        for expression in &file.expressions {
            match expression.preset {
                Some(preset) => add_source(&mut own[index(preset)], expression),
                None => named.push(expression),
            }
        }
        let declared: [bool; Expression::COUNT] = std::array::from_fn(|slot| own[slot].is_some());
        let mut map = ExpressionMap {
            materials: file.materials.clone(),
            ..ExpressionMap::default()
        };
        for expression in named {
            match Expression::from_name(&expression.name) {
                Some(preset) if !declared[index(preset)] => {
                    add_source(&mut own[index(preset)], expression);
                }
                _ => map.custom.push((
                    expression.name.clone(),
                    ExpressionBinds::from_file(expression),
                )),
            }
        }
        for expression in EXPRESSIONS {
            let (binds, source) = slot_for(expression, &own);
            map.slots[index(expression)] = binds;
            map.sources[index(expression)] = Some(source);
        }
        map
    }

    /// Everything the expression drives (its own, or its stand-ins').
    pub fn expression(&self, expression: Expression) -> &ExpressionBinds {
        &self.slots[index(expression)]
    }

    pub fn binds(&self, expression: Expression) -> &[MorphBind] {
        &self.slots[index(expression)].morphs
    }

    pub fn source(&self, expression: Expression) -> Source {
        self.sources[index(expression)].unwrap_or(Source::Missing)
    }

    /// Expressions of the file that are none of our presets, by name.
    pub fn custom(&self, name: &str) -> Option<&ExpressionBinds> {
        self.custom.iter().find(|(n, _)| n == name).map(|(_, b)| b)
    }

    pub fn custom_names(&self) -> impl Iterator<Item = &str> {
        self.custom.iter().map(|(name, _)| name.as_str())
    }

    /// The weights actually applied for the weights shown (eased, with blink, mouth and look
    /// added), following VRM 1.0 expressions.md and three-vrm:
    ///
    /// 1. each weight is clamped to 0-1; a binary expression gives 1 above 0.5, else 0;
    /// 2. for each procedural category (blink, lookAt, mouth), every expression outside it adds
    ///    its override amount (`block`: 1 when its weight is above 0; `blend`: its weight);
    ///    the category is multiplied by `1 - min(1, sum)` (an expression's override of its
    ///    own category is ignored);
    /// 3. a binary expression left below 1 by an override is suppressed to 0.
    pub fn resolve(&self, shown: &[f32; Expression::COUNT]) -> [f32; Expression::COUNT] {
        let output: [f32; Expression::COUNT] =
            std::array::from_fn(|slot| self.slots[slot].output_weight(shown[slot]));
        let multipliers = Procedural::ALL.map(|category| self.multiplier(category, &output));
        std::array::from_fn(|slot| {
            let Some(category) = EXPRESSIONS[slot].procedural() else {
                return output[slot];
            };
            let weight = output[slot] * multipliers[category as usize];
            if self.slots[slot].is_binary && weight < 1.0 {
                0.0
            } else {
                weight
            }
        })
    }

    fn multiplier(&self, category: Procedural, output: &[f32; Expression::COUNT]) -> f32 {
        let amount: f32 = EXPRESSIONS
            .into_iter()
            .filter(|e| e.procedural() != Some(category))
            .map(|e| {
                let slot = index(e);
                self.slots[slot]
                    .overrides
                    .get(category)
                    .amount(output[slot])
            })
            .sum();
        1.0 - amount.clamp(0.0, 1.0)
    }

    /// Writes the morph weights of `mesh` for the resolved weights ([`Self::resolve`]): the
    /// sum of binds, clamped to 0-1. Returns false when `out` already held these values.
    pub fn morph_weights(
        &self,
        resolved: &[f32; Expression::COUNT],
        mesh: usize,
        out: &mut [f32],
    ) -> bool {
        let mut next = vec![0.0f32; out.len()];
        for expression in EXPRESSIONS {
            let weight = resolved[index(expression)];
            if weight <= 0.0 {
                continue;
            }
            for bind in self.binds(expression).iter().filter(|b| b.mesh == mesh) {
                if let Some(slot) = next.get_mut(bind.index) {
                    *slot += weight * bind.weight;
                }
            }
        }
        let mut changed = false;
        for (slot, value) in out.iter_mut().zip(next) {
            let value = value.clamp(0.0, 1.0);
            if *slot != value {
                *slot = value;
                changed = true;
            }
        }
        changed
    }

    /// The material values for the resolved weights, for every material some expression binds
    /// (also at weight 0, so writing them every change restores the base), sorted by material.
    pub fn material_values(&self, resolved: &[f32; Expression::COUNT]) -> Vec<MaterialValues> {
        let mut out: Vec<MaterialValues> = Vec::new();
        for expression in EXPRESSIONS {
            let weight = resolved[index(expression)];
            let binds = self.expression(expression);
            for bind in &binds.colors {
                let base = self.base(bind.material).color(bind.kind);
                let color = color_entry(entry(&mut out, bind.material), bind.kind, base);
                let channels = if bind.kind.has_alpha() { 4 } else { 3 };
                for c in 0..channels {
                    color[c] += weight * (bind.target[c] - base[c]);
                }
            }
            for bind in &binds.textures {
                let base = self.base(bind.material).texture;
                let texture = entry(&mut out, bind.material).texture.get_or_insert(base);
                for c in 0..2 {
                    texture.scale[c] += weight * (bind.target.scale[c] - base.scale[c]);
                    texture.offset[c] += weight * (bind.target.offset[c] - base.offset[c]);
                }
            }
        }
        out.sort_by_key(|values| values.material);
        out
    }

    fn base(&self, material: usize) -> MaterialBase {
        self.materials.get(material).copied().unwrap_or_default()
    }
}

fn add_source(slot: &mut Option<ExpressionBinds>, expression: &VrmExpression) {
    let binds = ExpressionBinds::from_file(expression);
    match slot {
        Some(existing) => existing.merge(&binds, false),
        None => *slot = Some(binds),
    }
}

/// The binds of one preset: its own, else its stand-ins' merged.
fn slot_for(
    expression: Expression,
    own: &[Option<ExpressionBinds>; Expression::COUNT],
) -> (ExpressionBinds, Source) {
    if let Some(binds) = &own[index(expression)] {
        return (binds.clone(), Source::Own);
    }
    let stand_ins = expression.fallback();
    let mut merged = ExpressionBinds::default();
    let mut first = true;
    for binds in stand_ins.iter().filter_map(|e| own[index(*e)].as_ref()) {
        merged.merge(binds, first);
        first = false;
    }
    let empty = merged.morphs.is_empty() && merged.colors.is_empty() && merged.textures.is_empty();
    if empty {
        return (ExpressionBinds::default(), Source::Missing);
    }
    (merged, Source::Fallback(stand_ins))
}

fn entry(out: &mut Vec<MaterialValues>, material: usize) -> &mut MaterialValues {
    let at = match out.iter().position(|v| v.material == material) {
        Some(at) => at,
        None => {
            out.push(MaterialValues {
                material,
                colors: Vec::new(),
                texture: None,
            });
            out.len() - 1
        }
    };
    &mut out[at]
}

fn color_entry(
    values: &mut MaterialValues,
    kind: MaterialColorType,
    base: [f32; 4],
) -> &mut [f32; 4] {
    let at = match values.colors.iter().position(|(k, _)| *k == kind) {
        Some(at) => at,
        None => {
            values.colors.push((kind, base));
            values.colors.len() - 1
        }
    };
    &mut values.colors[at].1
}

/// Target weight of an emotion's expression: intensity (0-100) x multiplier, only from the
/// threshold on.
pub fn emotion_weight(entry: &EmotionExpression, intensity: f32) -> f32 {
    if intensity < entry.threshold {
        0.0
    } else {
        (intensity / 100.0 * entry.multiplier).clamp(0.0, 1.0)
    }
}

/// The weights shown and their targets; each weight moves towards its target at `speed`
/// weight units per second, starting from what is shown now (nothing snaps).
#[derive(Debug, Clone, PartialEq)]
pub struct Expressions {
    shown: [f32; Expression::COUNT],
    target: [f32; Expression::COUNT],
    pub speed: f32,
}

impl Expressions {
    pub fn new(speed: f32) -> Self {
        Self {
            shown: [0.0; Expression::COUNT],
            target: [0.0; Expression::COUNT],
            speed,
        }
    }

    pub fn set(&mut self, expression: Expression, weight: f32) {
        self.target[index(expression)] = weight.clamp(0.0, 1.0);
    }

    /// Shows one mood, clearing the other moods (mouth, blink and look are kept).
    pub fn set_mood(&mut self, expression: Expression, weight: f32) {
        for mood in MOODS {
            self.target[index(mood)] = 0.0;
        }
        self.set(expression, weight);
    }

    pub fn reset(&mut self) {
        self.target = [0.0; Expression::COUNT];
    }

    pub fn shown(&self) -> &[f32; Expression::COUNT] {
        &self.shown
    }

    pub fn weight(&self, expression: Expression) -> f32 {
        self.shown[index(expression)]
    }

    pub fn target(&self, expression: Expression) -> f32 {
        self.target[index(expression)]
    }

    /// True while some weight has not reached its target.
    pub fn moving(&self) -> bool {
        self.shown != self.target
    }

    /// Advances by `dt` seconds.
    pub fn step(&mut self, dt: f32) {
        let max_step = (self.speed * dt).max(0.0);
        for (shown, target) in self.shown.iter_mut().zip(self.target) {
            let delta = target - *shown;
            *shown = if delta.abs() <= max_step {
                target
            } else {
                *shown + max_step.copysign(delta)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avatar::vrm_file::VrmVersion;
    use crate::config::Emotion;

    /// A 0.x-style group (preset name or `unknown`), weights already 0-1.
    fn group(name: &str, preset: &str, binds: &[(usize, usize, f32)]) -> VrmExpression {
        VrmExpression {
            name: name.to_owned(),
            preset: Expression::from_name(preset),
            morph_binds: binds
                .iter()
                .map(|&(mesh, index, weight)| MorphBind {
                    mesh,
                    index,
                    weight,
                })
                .collect(),
            ..VrmExpression::default()
        }
    }

    fn map_of(groups: Vec<VrmExpression>) -> ExpressionMap {
        ExpressionMap::from_expressions(&VrmExpressions {
            version: VrmVersion::V0,
            expressions: groups,
            materials: Vec::new(),
            notes: Vec::new(),
        })
    }

    #[test]
    fn discriminants_match_the_table_order() {
        for (slot, expression) in EXPRESSIONS.into_iter().enumerate() {
            assert_eq!(index(expression), slot);
            assert_eq!(
                Expression::from_name(expression.vrm_name()),
                Some(expression)
            );
        }
        assert_eq!(Expression::from_name("Look_Up"), Some(Expression::LookUp));
        assert_eq!(
            Expression::from_name("Surprised"),
            Some(Expression::Surprised)
        );
        assert_eq!(Expression::from_name("rm -rf"), None);
        for expression in EXPRESSIONS {
            assert_eq!(
                Expression::from_vrm1_preset(expression.vrm1_name()),
                Some(expression)
            );
        }
        assert_eq!(Expression::from_vrm1_preset("joy"), None, "1.0 keys only");
        assert_eq!(Expression::from_name("blinkLeft"), Some(Expression::BlinkL));
        assert_eq!(Expression::from_name("Relaxed"), Some(Expression::Fun));
    }

    #[test]
    fn missing_presets_fall_back_and_unknown_groups_match_by_name() {
        let map = map_of(vec![
            group("Joy", "joy", &[(0, 3, 1.0)]),
            group("O", "o", &[(0, 7, 0.5)]),
            group("Blink", "blink", &[(0, 1, 1.0), (0, 2, 1.0)]),
            group("Surprised", "unknown", &[(1, 4, 0.8)]),
        ]);
        assert_eq!(map.source(Expression::Surprised), Source::Own);
        assert_eq!(
            map.binds(Expression::Surprised),
            &[MorphBind {
                mesh: 1,
                index: 4,
                weight: 0.8
            }]
        );
        assert_eq!(
            map.source(Expression::Fun),
            Source::Fallback(&[Expression::Joy])
        );
        assert_eq!(map.binds(Expression::Fun), map.binds(Expression::Joy));
        assert_eq!(map.binds(Expression::BlinkL), map.binds(Expression::Blink));
        assert_eq!(map.source(Expression::Angry), Source::Missing);

        let without = map_of(vec![group("O", "o", &[(0, 7, 0.5)])]);
        assert_eq!(
            without.source(Expression::Surprised),
            Source::Fallback(&[Expression::O])
        );
    }

    #[test]
    fn morph_weights_sum_binds_and_report_changes() {
        let map = map_of(vec![
            group("Joy", "joy", &[(0, 0, 1.0), (0, 2, 0.5)]),
            group("A", "a", &[(0, 2, 1.0), (1, 0, 1.0)]),
        ]);
        let mut shown = [0.0; Expression::COUNT];
        shown[index(Expression::Joy)] = 0.8;
        shown[index(Expression::A)] = 0.9;
        let mut out = [0.0; 3];
        assert!(map.morph_weights(&shown, 0, &mut out));
        assert!((out[0] - 0.8).abs() < 1e-6);
        assert!((out[2] - 1.0).abs() < 1e-6, "0.4 + 0.9 clamped to 1");
        assert!(!map.morph_weights(&shown, 0, &mut out), "unchanged");
    }

    #[test]
    fn weights_ease_at_the_configured_speed_from_what_is_shown() {
        let mut expressions = Expressions::new(2.0);
        expressions.set_mood(Expression::Joy, 0.8);
        expressions.step(0.1);
        assert!((expressions.weight(Expression::Joy) - 0.2).abs() < 1e-6);
        expressions.step(1.0);
        assert_eq!(expressions.weight(Expression::Joy), 0.8);
        assert!(!expressions.moving());
        // A new mood eases the old one out from 0.8, not from zero or from one.
        expressions.set_mood(Expression::Sorrow, 1.0);
        expressions.step(0.1);
        assert!((expressions.weight(Expression::Joy) - 0.6).abs() < 1e-6);
        assert!((expressions.weight(Expression::Sorrow) - 0.2).abs() < 1e-6);
        expressions.reset();
        expressions.step(10.0);
        assert!(expressions.shown().iter().all(|w| *w == 0.0));
    }

    #[test]
    fn emotion_table_applies_threshold_and_multiplier() {
        let table = crate::config::default_emotion_table();
        let joy = &table[&Emotion::Joy];
        assert_eq!(emotion_weight(joy, 29.0), 0.0);
        assert!((emotion_weight(joy, 80.0) - 0.8).abs() < 1e-6);
        let surprised = &table[&Emotion::Surprised];
        assert!((emotion_weight(surprised, 50.0) - 0.6).abs() < 1e-6);
        assert_eq!(emotion_weight(surprised, 100.0), 1.0, "clamped");
    }
}
