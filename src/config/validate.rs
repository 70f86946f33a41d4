//! Range and consistency checks the type system cannot express.

use super::ranges::{self, Limit};
use super::settings::{Backend, Settings, Threads};

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

/// Keys the panels use: the overlay key must not be one of them.
pub const PANEL_KEYS: [&str; 3] = ["F1", "F2", "F4"];

/// Every problem found, in file order.
pub fn validate(settings: &Settings) -> Vec<InvalidValue> {
    let mut problems = Vec::new();
    let mut check = |key: &str, result: Result<(), String>| {
        if let Err(message) = result {
            problems.push(InvalidValue {
                key: key.to_owned(),
                message,
            });
        }
    };
    fn within<T: PartialOrd + Copy + std::fmt::Display>(
        check: &mut impl FnMut(&str, Result<(), String>),
        limit: Limit<T>,
        value: T,
    ) {
        check(limit.key, limit.check(value));
    }

    let window = &settings.window;
    within(&mut check, ranges::WINDOW_WIDTH, window.width);
    within(&mut check, ranges::WINDOW_HEIGHT, window.height);
    within(&mut check, ranges::WINDOW_SCALE, window.scale);
    within(&mut check, ranges::IDLE_FPS, window.idle_fps);
    within(&mut check, ranges::ACTIVE_FPS, window.active_fps);

    let avatar = &settings.avatar;
    within(
        &mut check,
        ranges::TRANSITION_SPEED,
        avatar.transition_speed,
    );
    for (emotion, mapping) in &avatar.emotions {
        let name = serde_name(emotion);
        let key = |field: &str| format!("avatar.emotions.{name}.{field}");
        check(
            &key("multiplier"),
            ranges::EMOTION_MULTIPLIER.check(mapping.multiplier),
        );
        check(
            &key("threshold"),
            ranges::EMOTION_THRESHOLD.check(mapping.threshold),
        );
    }

    let llm = &settings.llm;
    if let Backend::OpenAi {
        base_url,
        model,
        api_key_env,
    } = &llm.backend
    {
        check("llm.backend.base_url", check_base_url(base_url));
        if model.trim().is_empty() {
            check(
                "llm.backend.model",
                Err("must name the server's model, e.g. \"llama3.2\"".into()),
            );
        }
        if let Some(name) = api_key_env
            && (name.is_empty() || name.contains(['=', '\0']))
        {
            check(
                "llm.backend.api_key_env",
                Err(format!(
                    "must be the name of an environment variable (such as \"OPENAI_API_KEY\"), found \"{name}\""
                )),
            );
        }
    }
    if let Some(layers) = llm.n_gpu_layers {
        within(&mut check, ranges::N_GPU_LAYERS, layers);
    }
    within(&mut check, ranges::N_CTX, llm.n_ctx);
    within(&mut check, ranges::N_BATCH, llm.n_batch);
    if llm.n_batch > llm.n_ctx {
        check(
            ranges::N_BATCH.key,
            Err(format!(
                "must not exceed n_ctx ({}), found {}",
                llm.n_ctx, llm.n_batch
            )),
        );
    }
    if let Threads::Count(n) = llm.n_threads {
        within(&mut check, ranges::N_THREADS, n);
    }
    if let Threads::Count(n) = llm.n_threads_batch {
        within(&mut check, ranges::N_THREADS_BATCH, n);
    }
    let sampling = &llm.sampling;
    within(&mut check, ranges::TEMPERATURE, sampling.temperature);
    within(&mut check, ranges::TOP_K, sampling.top_k);
    within(&mut check, ranges::TOP_P, sampling.top_p);
    within(&mut check, ranges::MIN_P, sampling.min_p);
    within(&mut check, ranges::REPEAT_PENALTY, sampling.repeat_penalty);
    within(
        &mut check,
        ranges::max_tokens(llm.n_ctx),
        sampling.max_tokens,
    );

    let persona = &settings.persona;
    let name_chars = persona.name.chars().count();
    if persona.name.trim().is_empty() || name_chars > ranges::PERSONA_NAME_CHARS {
        check(
            "persona.name",
            Err(format!(
                "must be 1 to {} characters",
                ranges::PERSONA_NAME_CHARS
            )),
        );
    }
    if persona.system_prompt.chars().count() > ranges::SYSTEM_PROMPT_CHARS {
        check(
            "persona.system_prompt",
            Err(format!(
                "must be at most {} characters",
                ranges::SYSTEM_PROMPT_CHARS
            )),
        );
    }

    within(&mut check, ranges::TURNS_KEPT, settings.chat.turns_kept);

    let diagnostics = &settings.diagnostics;
    within(
        &mut check,
        ranges::SAMPLE_INTERVAL,
        diagnostics.sample_interval_secs,
    );
    if !OVERLAY_KEYS.contains(&diagnostics.overlay_key.as_str()) {
        check(
            "diagnostics.overlay_key",
            Err(format!(
                "must be one of F1..F12, found \"{}\"",
                diagnostics.overlay_key
            )),
        );
    } else if PANEL_KEYS.contains(&diagnostics.overlay_key.as_str()) {
        check(
            "diagnostics.overlay_key",
            Err(format!(
                "{} already opens a panel (F1 chat, F2 settings, F4 expressions); pick another of F3, F5..F12",
                diagnostics.overlay_key
            )),
        );
    }
    problems
}

/// An `http://` or `https://` URL with a host.
fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "must be an http:// or https:// URL such as \"http://127.0.0.1:11434/v1\", found \"{url}\""
        )),
    }
}

fn serde_name<T: serde::Serialize>(value: &T) -> String {
    ron::to_string(value).unwrap_or_default()
}
