//! The allowed values of every numeric setting, in one table: validation checks them, the
//! settings panel's sliders and fields use them (an egui slider clamps whatever it shows, so
//! a narrower slider would silently change a valid value on Save), and a test holds the
//! documented default file to them.

use std::fmt::Display;
use std::ops::RangeInclusive;

/// A numeric setting's inclusive range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit<T> {
    pub key: &'static str,
    pub min: T,
    pub max: T,
}

impl<T: PartialOrd + Copy + Display> Limit<T> {
    /// `Err` with the user's message when `value` is outside (NaN too).
    pub fn check(&self, value: T) -> Result<(), String> {
        if self.min <= value && value <= self.max {
            Ok(())
        } else {
            Err(format!(
                "must be between {} and {}, found {value}",
                self.min, self.max
            ))
        }
    }

    pub fn range(&self) -> RangeInclusive<T> {
        self.min..=self.max
    }

    /// How the default file and the README write it: `min..max`.
    pub fn doc(&self) -> String {
        format!("{}..{}", self.min, self.max)
    }
}

const fn limit<T>(key: &'static str, min: T, max: T) -> Limit<T> {
    Limit { key, min, max }
}

/// Declares the table: each row one numeric setting (key, type, bounds). `documented()` (the
/// default file's check) and `rows()` (the validation check) come from the same list, so a row
/// cannot be documented without being validated, or the other way round.
macro_rules! limits {
    ($($(#[$doc:meta])* $name:ident: $ty:ty = ($key:literal, $min:expr, $max:expr);)*) => {
        $($(#[$doc])* pub const $name: Limit<$ty> = limit($key, $min, $max);)*

        /// Every fixed range as `(key, "min..max")`, for documentation checks.
        pub fn documented() -> Vec<(&'static str, String)> {
            vec![$(($name.key, $name.doc())),*]
        }

        /// Every fixed range as `(key, a value just above it, as RON)`, for validation checks.
        pub fn above() -> Vec<(&'static str, String)> {
            vec![$(($name.key, Above::above(&$name.max))),*]
        }
    };
}

/// A value just above a bound, as RON.
trait Above {
    fn above(&self) -> String;
}

impl Above for u32 {
    fn above(&self) -> String {
        (u64::from(*self) + 1).to_string()
    }
}

impl Above for u16 {
    fn above(&self) -> String {
        (u32::from(*self) + 1).to_string()
    }
}

impl Above for f32 {
    fn above(&self) -> String {
        format!("{:?}", self * 2.0 + 1.0)
    }
}

limits! {
    WINDOW_WIDTH: u32 = ("window.width", 64, 8192);
    WINDOW_HEIGHT: u32 = ("window.height", 64, 8192);
    WINDOW_SCALE: f32 = ("window.scale", 0.1, 10.0);
    IDLE_FPS: f32 = ("window.idle_fps", 1.0, 240.0);
    ACTIVE_FPS: f32 = ("window.active_fps", 1.0, 240.0);
    TRANSITION_SPEED: f32 = ("avatar.transition_speed", 0.1, 100.0);
    /// A day.
    MOTION_SLEEP_AFTER: f32 = ("motion.sleep_after_secs", 0.0, 86400.0);
    MEMORY_BUDGET: u32 = ("memory.budget_tokens", 0, 4096);
    /// A day.
    MEMORY_NOTES_AFTER: u32 = ("memory.notes_after_secs", 0, 86400);
    VOICE_SPEED: f32 = ("voice.speed", 0.5, 2.0);
    VOICE_VOLUME: f32 = ("voice.volume", 0.0, 2.0);
    EMOTION_MULTIPLIER: f32 = ("avatar.emotions.*.multiplier", 0.0, 5.0);
    EMOTION_THRESHOLD: f32 = ("avatar.emotions.*.threshold", 0.0, 100.0);
    N_GPU_LAYERS: u32 = ("llm.n_gpu_layers", 0, 1000);
    N_CTX: u32 = ("llm.n_ctx", 256, 1_048_576);
    /// Also at most `n_ctx`.
    N_BATCH: u32 = ("llm.n_batch", 1, 65_536);
    N_THREADS: u16 = ("llm.n_threads", 1, 512);
    N_THREADS_BATCH: u16 = ("llm.n_threads_batch", 1, 512);
    TEMPERATURE: f32 = ("llm.sampling.temperature", 0.0, 5.0);
    TOP_K: u32 = ("llm.sampling.top_k", 0, 100_000);
    TOP_P: f32 = ("llm.sampling.top_p", 0.0, 1.0);
    MIN_P: f32 = ("llm.sampling.min_p", 0.0, 1.0);
    REPEAT_PENALTY: f32 = ("llm.sampling.repeat_penalty", 0.1, 5.0);
    TURNS_KEPT: u32 = ("chat.turns_kept", 1, 10_000);
    SAMPLE_INTERVAL: f32 = ("diagnostics.sample_interval_secs", 0.1, 60.0);
}

/// The upper bound is `n_ctx` (see [`max_tokens`]).
pub const MAX_TOKENS_MIN: u32 = 1;
pub const PERSONA_NAME_CHARS: usize = 64;
pub const SYSTEM_PROMPT_CHARS: usize = 20_000;

/// `llm.sampling.max_tokens`: 1..n_ctx.
pub fn max_tokens(n_ctx: u32) -> Limit<u32> {
    limit("llm.sampling.max_tokens", MAX_TOKENS_MIN, n_ctx.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_default_file_states_every_range_of_the_table() {
        let default = include_str!("../../config/mascot.ron");
        for (key, range) in documented() {
            let name = key.rsplit('.').next().unwrap_or(key);
            let line = default
                .lines()
                .find(|line| line.trim_start().starts_with(&format!("{name}:")))
                .or_else(|| {
                    default
                        .lines()
                        .find(|line| line.contains(&format!("{name} (")))
                });
            let line = line.unwrap_or_else(|| panic!("{key} is not in config/mascot.ron"));
            assert!(
                line.contains(&range),
                "config/mascot.ron documents {key} as `{}`, the table says {range}",
                line.trim()
            );
        }
    }

    /// Every row of the table is validated: a value above it in a settings file is refused,
    /// under the row's key.
    #[test]
    fn every_row_of_the_table_is_validated() {
        for (key, value) in above() {
            let text = match key {
                "llm.n_gpu_layers" => format!("(llm: (n_gpu_layers: Some({value})))"),
                "avatar.emotions.*.multiplier" => format!(
                    "(avatar: (emotions: {{joy: (expression: joy, multiplier: {value}, threshold: 30.0)}}))"
                ),
                "avatar.emotions.*.threshold" => format!(
                    "(avatar: (emotions: {{joy: (expression: joy, multiplier: 1.0, threshold: {value})}}))"
                ),
                _ => {
                    let parts: Vec<&str> = key.split('.').collect();
                    let (last, outer) = parts.split_last().expect("a key");
                    let mut text = format!("({last}: {value})");
                    for part in outer.iter().rev() {
                        text = format!("({part}: {text})");
                    }
                    text
                }
            };
            let settings: crate::config::Settings = ron::from_str(&text)
                .unwrap_or_else(|e| panic!("{key}: {text} does not parse: {e}"));
            let keys: Vec<String> = crate::config::validate(&settings)
                .into_iter()
                .map(|invalid| invalid.key)
                .collect();
            let wanted = key.replace('*', "joy");
            assert!(
                keys.iter().any(|k| *k == key || *k == wanted),
                "{text}: refused under {key}, got {keys:?}"
            );
        }
    }

    #[test]
    fn limits_report_the_users_value() {
        assert_eq!(
            TOP_P.check(1.5),
            Err("must be between 0 and 1, found 1.5".into())
        );
        assert!(TOP_P.check(f32::NAN).is_err());
        assert!(max_tokens(512).check(512).is_ok());
        assert!(max_tokens(512).check(513).is_err());
    }
}
