//! Expressions without Bevy: which morph targets each preset drives (with the fallbacks for
//! presets a model lacks), and the eased weights shown.
//!
//! Fallbacks, used only when the model has no group for a preset:
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

use crate::avatar::vrm_file::BlendShapeGroup;
use crate::config::{EmotionExpression, Expression};

/// Every preset, in the order of [`Expression`]'s discriminants.
pub const EXPRESSIONS: [Expression; 18] = [
    Expression::Neutral,
    Expression::Joy,
    Expression::Angry,
    Expression::Sorrow,
    Expression::Fun,
    Expression::Surprised,
    Expression::Blink,
    Expression::BlinkL,
    Expression::BlinkR,
    Expression::A,
    Expression::I,
    Expression::U,
    Expression::E,
    Expression::O,
    Expression::LookUp,
    Expression::LookDown,
    Expression::LookLeft,
    Expression::LookRight,
];

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

    /// Parses a VRM preset or group name, or our settings spelling (`look_up`), any case.
    pub fn from_name(name: &str) -> Option<Expression> {
        let wanted = name.trim().to_lowercase().replace(['-', ' '], "_");
        let wanted = match wanted.as_str() {
            "look_up" | "look_down" | "look_left" | "look_right" => wanted.replace('_', ""),
            "surprise" => "surprised".to_owned(),
            "happy" => "joy".to_owned(),
            "sad" => "sorrow".to_owned(),
            _ => wanted,
        };
        EXPRESSIONS.into_iter().find(|e| e.vrm_name() == wanted)
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

/// One morph target an expression drives, weight 0-1 at full expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MorphBind {
    pub mesh: usize,
    pub index: usize,
    pub weight: f32,
}

/// Where each expression comes from on one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The model's own group.
    Own,
    /// The model lacks it; shown through these presets.
    Fallback(&'static [Expression]),
    /// Neither the model nor a fallback has it.
    Missing,
}

/// The morph targets behind each expression of one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpressionMap {
    binds: [Vec<MorphBind>; 18],
    sources: [Option<Source>; 18],
}

impl ExpressionMap {
    pub fn from_groups(groups: &[BlendShapeGroup]) -> Self {
        let mut own: [Option<Vec<MorphBind>>; 18] = Default::default();
        for group in groups {
            let expression = match group.preset.as_str() {
                "unknown" | "" => Expression::from_name(&group.name),
                preset => Expression::from_name(preset),
            };
            let Some(expression) = expression else {
                continue;
            };
            let binds = group.binds.iter().map(|b| MorphBind {
                mesh: b.mesh,
                index: b.index,
                weight: (b.weight / 100.0).clamp(0.0, 1.0),
            });
            own[index(expression)]
                .get_or_insert_with(Vec::new)
                .extend(binds);
        }
        let mut map = ExpressionMap::default();
        for expression in EXPRESSIONS {
            let slot = index(expression);
            if let Some(binds) = &own[slot] {
                map.binds[slot] = binds.clone();
                map.sources[slot] = Some(Source::Own);
                continue;
            }
            let stand_ins = expression.fallback();
            let binds: Vec<MorphBind> = stand_ins
                .iter()
                .filter_map(|e| own[index(*e)].as_ref())
                .flatten()
                .copied()
                .collect();
            map.sources[slot] = Some(if binds.is_empty() {
                Source::Missing
            } else {
                Source::Fallback(stand_ins)
            });
            map.binds[slot] = binds;
        }
        map
    }

    pub fn binds(&self, expression: Expression) -> &[MorphBind] {
        &self.binds[index(expression)]
    }

    pub fn source(&self, expression: Expression) -> Source {
        self.sources[index(expression)].unwrap_or(Source::Missing)
    }

    /// Writes the morph weights of `mesh` for the shown expression weights (sum of binds,
    /// clamped to 0-1). Returns false when `out` already held these values.
    pub fn morph_weights(&self, shown: &[f32; 18], mesh: usize, out: &mut [f32]) -> bool {
        let mut next = vec![0.0f32; out.len()];
        for expression in EXPRESSIONS {
            let weight = shown[index(expression)];
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
    shown: [f32; 18],
    target: [f32; 18],
    pub speed: f32,
}

impl Expressions {
    pub fn new(speed: f32) -> Self {
        Self {
            shown: [0.0; 18],
            target: [0.0; 18],
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
        self.target = [0.0; 18];
    }

    pub fn shown(&self) -> &[f32; 18] {
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
    use crate::avatar::vrm_file::BlendShapeBind;
    use crate::config::Emotion;

    fn group(name: &str, preset: &str, binds: &[(usize, usize, f32)]) -> BlendShapeGroup {
        BlendShapeGroup {
            name: name.to_owned(),
            preset: preset.to_owned(),
            binds: binds
                .iter()
                .map(|&(mesh, index, weight)| BlendShapeBind {
                    mesh,
                    index,
                    weight,
                })
                .collect(),
            is_binary: false,
        }
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
    }

    #[test]
    fn missing_presets_fall_back_and_unknown_groups_match_by_name() {
        let map = ExpressionMap::from_groups(&[
            group("Joy", "joy", &[(0, 3, 100.0)]),
            group("O", "o", &[(0, 7, 50.0)]),
            group("Blink", "blink", &[(0, 1, 100.0), (0, 2, 100.0)]),
            group("Surprised", "unknown", &[(1, 4, 80.0)]),
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

        let without = ExpressionMap::from_groups(&[group("O", "o", &[(0, 7, 50.0)])]);
        assert_eq!(
            without.source(Expression::Surprised),
            Source::Fallback(&[Expression::O])
        );
    }

    #[test]
    fn morph_weights_sum_binds_and_report_changes() {
        let map = ExpressionMap::from_groups(&[
            group("Joy", "joy", &[(0, 0, 100.0), (0, 2, 50.0)]),
            group("A", "a", &[(0, 2, 100.0), (1, 0, 100.0)]),
        ]);
        let mut shown = [0.0; 18];
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
