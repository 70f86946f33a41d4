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

pub const WINDOW_WIDTH: Limit<u32> = limit("window.width", 64, 8192);
pub const WINDOW_HEIGHT: Limit<u32> = limit("window.height", 64, 8192);
pub const WINDOW_SCALE: Limit<f32> = limit("window.scale", 0.1, 10.0);
pub const IDLE_FPS: Limit<f32> = limit("window.idle_fps", 1.0, 240.0);
pub const ACTIVE_FPS: Limit<f32> = limit("window.active_fps", 1.0, 240.0);
pub const TRANSITION_SPEED: Limit<f32> = limit("avatar.transition_speed", 0.1, 100.0);
pub const EMOTION_MULTIPLIER: Limit<f32> = limit("avatar.emotions.*.multiplier", 0.0, 5.0);
pub const EMOTION_THRESHOLD: Limit<f32> = limit("avatar.emotions.*.threshold", 0.0, 100.0);
pub const N_GPU_LAYERS: Limit<u32> = limit("llm.n_gpu_layers", 0, 1000);
pub const N_CTX: Limit<u32> = limit("llm.n_ctx", 256, 1_048_576);
/// Also at most `n_ctx`.
pub const N_BATCH: Limit<u32> = limit("llm.n_batch", 1, 65_536);
pub const N_THREADS: Limit<u16> = limit("llm.n_threads", 1, 512);
pub const N_THREADS_BATCH: Limit<u16> = limit("llm.n_threads_batch", 1, 512);
pub const TEMPERATURE: Limit<f32> = limit("llm.sampling.temperature", 0.0, 5.0);
pub const TOP_K: Limit<u32> = limit("llm.sampling.top_k", 0, 100_000);
pub const TOP_P: Limit<f32> = limit("llm.sampling.top_p", 0.0, 1.0);
pub const MIN_P: Limit<f32> = limit("llm.sampling.min_p", 0.0, 1.0);
pub const REPEAT_PENALTY: Limit<f32> = limit("llm.sampling.repeat_penalty", 0.1, 5.0);
/// The upper bound is `n_ctx` (see [`max_tokens`]).
pub const MAX_TOKENS_MIN: u32 = 1;
pub const TURNS_KEPT: Limit<u32> = limit("chat.turns_kept", 1, 10_000);
pub const SAMPLE_INTERVAL: Limit<f32> = limit("diagnostics.sample_interval_secs", 0.1, 60.0);
pub const PERSONA_NAME_CHARS: usize = 64;
pub const SYSTEM_PROMPT_CHARS: usize = 20_000;

/// `llm.sampling.max_tokens`: 1..n_ctx.
pub fn max_tokens(n_ctx: u32) -> Limit<u32> {
    limit("llm.sampling.max_tokens", MAX_TOKENS_MIN, n_ctx.max(1))
}

/// Every fixed range as `(key, "min..max")`, for documentation checks.
pub fn documented() -> Vec<(&'static str, String)> {
    let mut all = vec![
        (WINDOW_WIDTH.key, WINDOW_WIDTH.doc()),
        (WINDOW_HEIGHT.key, WINDOW_HEIGHT.doc()),
        (N_GPU_LAYERS.key, N_GPU_LAYERS.doc()),
        (N_CTX.key, N_CTX.doc()),
        (TURNS_KEPT.key, TURNS_KEPT.doc()),
        (TOP_K.key, TOP_K.doc()),
        (N_THREADS.key, N_THREADS.doc()),
        (N_THREADS_BATCH.key, N_THREADS_BATCH.doc()),
    ];
    for l in [
        WINDOW_SCALE,
        IDLE_FPS,
        ACTIVE_FPS,
        TRANSITION_SPEED,
        EMOTION_MULTIPLIER,
        EMOTION_THRESHOLD,
        TEMPERATURE,
        TOP_P,
        MIN_P,
        REPEAT_PENALTY,
        SAMPLE_INTERVAL,
    ] {
        all.push((l.key, l.doc()));
    }
    all
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
