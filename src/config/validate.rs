//! Range and consistency checks the type system cannot express.

use super::settings::{Settings, Threads};

/// One value that is out of range, with its dotted key path.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidValue {
    pub key: String,
    pub message: String,
}

/// Key names accepted for `diagnostics.overlay_key`.
pub const OVERLAY_KEYS: [&str; 12] = [
    "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12",
];

/// Every problem found, in file order.
pub fn validate(settings: &Settings) -> Vec<InvalidValue> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, key: &str, message: String| {
        if !ok {
            problems.push(InvalidValue {
                key: key.to_owned(),
                message,
            });
        }
    };

    let window = &settings.window;
    check_range(&mut check, "window.width", window.width, 64, 8192);
    check_range(&mut check, "window.height", window.height, 64, 8192);
    check_range(&mut check, "window.scale", window.scale, 0.1, 10.0);
    check_range(&mut check, "window.idle_fps", window.idle_fps, 1.0, 240.0);
    check_range(
        &mut check,
        "window.active_fps",
        window.active_fps,
        1.0,
        240.0,
    );

    let avatar = &settings.avatar;
    check_range(
        &mut check,
        "avatar.transition_speed",
        avatar.transition_speed,
        0.1,
        100.0,
    );
    for (emotion, mapping) in &avatar.emotions {
        let name = serde_name(emotion);
        check_range(
            &mut check,
            &format!("avatar.emotions.{name}.multiplier"),
            mapping.multiplier,
            0.0,
            5.0,
        );
        check_range(
            &mut check,
            &format!("avatar.emotions.{name}.threshold"),
            mapping.threshold,
            0.0,
            100.0,
        );
    }

    let llm = &settings.llm;
    if let Some(layers) = llm.n_gpu_layers {
        check_range(&mut check, "llm.n_gpu_layers", layers, 0, 1000);
    }
    check_range(&mut check, "llm.n_ctx", llm.n_ctx, 256, 1_048_576);
    check_range(&mut check, "llm.n_batch", llm.n_batch, 1, 65_536);
    check(
        llm.n_batch <= llm.n_ctx,
        "llm.n_batch",
        format!(
            "must not exceed n_ctx ({}), found {}",
            llm.n_ctx, llm.n_batch
        ),
    );
    if let Threads::Count(n) = llm.n_threads {
        check_range(&mut check, "llm.n_threads", n, 1, 512);
    }
    if let Threads::Count(n) = llm.n_threads_batch {
        check_range(&mut check, "llm.n_threads_batch", n, 1, 512);
    }
    let sampling = &llm.sampling;
    check_range(
        &mut check,
        "llm.sampling.temperature",
        sampling.temperature,
        0.0,
        5.0,
    );
    check_range(&mut check, "llm.sampling.top_k", sampling.top_k, 0, 100_000);
    check_range(&mut check, "llm.sampling.top_p", sampling.top_p, 0.0, 1.0);
    check_range(&mut check, "llm.sampling.min_p", sampling.min_p, 0.0, 1.0);
    check_range(
        &mut check,
        "llm.sampling.repeat_penalty",
        sampling.repeat_penalty,
        0.1,
        5.0,
    );
    check_range(
        &mut check,
        "llm.sampling.max_tokens",
        sampling.max_tokens,
        1,
        llm.n_ctx.max(1),
    );

    let persona = &settings.persona;
    check(
        !persona.name.trim().is_empty() && persona.name.chars().count() <= 64,
        "persona.name",
        "must be 1 to 64 characters".into(),
    );
    check(
        persona.system_prompt.chars().count() <= 20_000,
        "persona.system_prompt",
        "must be at most 20000 characters".into(),
    );

    check_range(
        &mut check,
        "chat.turns_kept",
        settings.chat.turns_kept,
        1,
        10_000,
    );

    let diagnostics = &settings.diagnostics;
    check_range(
        &mut check,
        "diagnostics.sample_interval_secs",
        diagnostics.sample_interval_secs,
        0.1,
        60.0,
    );
    check(
        OVERLAY_KEYS.contains(&diagnostics.overlay_key.as_str()),
        "diagnostics.overlay_key",
        format!(
            "must be one of F1..F12, found \"{}\"",
            diagnostics.overlay_key
        ),
    );
    problems
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    check: &mut impl FnMut(bool, &str, String),
    key: &str,
    value: T,
    min: T,
    max: T,
) {
    // `!(a <= v)` rather than `v < a` so NaN is rejected too.
    let ok = min <= value && value <= max;
    check(
        ok,
        key,
        format!("must be between {min} and {max}, found {value}"),
    );
}

fn serde_name<T: serde::Serialize>(value: &T) -> String {
    ron::to_string(value).unwrap_or_default()
}
