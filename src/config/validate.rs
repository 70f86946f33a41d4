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
pub const PANEL_KEYS: [&str; 4] = ["F1", "F2", "F4", "F5"];

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

    within(
        &mut check,
        ranges::MOTION_SLEEP_AFTER,
        settings.motion.sleep_after_secs,
    );
    within(
        &mut check,
        ranges::MEMORY_BUDGET,
        settings.memory.budget_tokens,
    );
    within(
        &mut check,
        ranges::MEMORY_NOTES_AFTER,
        settings.memory.notes_after_secs,
    );
    within(&mut check, ranges::VOICE_SPEED, settings.voice.speed);
    within(&mut check, ranges::VOICE_VOLUME, settings.voice.volume);
    let language = settings.listen.language.trim();
    if !(language == "auto"
        || ((2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_lowercase())))
    {
        check(
            "listen.language",
            Err("must be \"auto\" or a language code such as \"en\" or \"fr\"".into()),
        );
    }
    if let Some(server) = &settings.voice.server {
        check(
            "voice.server.base_url",
            check_base_url(server.base_url.trim()),
        );
        for (key, value, example) in [
            ("voice.server.model", &server.model, "kokoro"),
            ("voice.server.voice", &server.voice, "af_heart"),
        ] {
            if value.trim().is_empty() {
                check(
                    key,
                    Err(format!(
                        "must name the server's {}, e.g. \"{example}\"",
                        &key[13..]
                    )),
                );
            }
        }
        if let Some(name) = &server.api_key_env {
            check(
                "voice.server.api_key_env",
                api_key_env_rule(name).and_then(|()| key_transport_rule(&server.base_url)),
            );
        }
    }
    if settings.voice.voice.trim().is_empty() {
        check(
            "voice.voice",
            Err("must name a voice, e.g. \"en_US-joe-medium\" (desktop-mate voice list)".into()),
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
        if let Some(name) = api_key_env {
            check(
                "llm.backend.api_key_env",
                api_key_env_rule(name).and_then(|()| key_transport_rule(base_url)),
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
                "{} already opens a panel (F1 chat, F2 settings, F4 expressions, F5 memory); pick another of F3, F6..F12",
                diagnostics.overlay_key
            )),
        );
    }
    let mut taken: Vec<(global_hotkey::hotkey::HotKey, &str)> = Vec::new();
    for (key, shortcut) in settings.desktop.hotkeys.entries() {
        match parse_hotkey(shortcut) {
            Err(message) => check(key, Err(message)),
            Ok(hotkey) => {
                if let Some((_, first)) = taken.iter().find(|(h, _)| *h == hotkey) {
                    check(
                        key,
                        Err(format!("\"{shortcut}\" is already the shortcut of {first}")),
                    );
                } else {
                    taken.push((hotkey, key));
                }
            }
        }
    }
    problems
}

/// A shortcut such as `"Ctrl+Alt+Shift+C"`: modifiers (Ctrl, Alt, Shift, Super) first, then
/// one key (a letter, digit, F1..F24, Space, ...). A shortcut needs a modifier, except F13..F24
/// and Pause, which no app uses alone.
pub fn parse_hotkey(shortcut: &str) -> Result<global_hotkey::hotkey::HotKey, String> {
    use global_hotkey::hotkey::Modifiers;
    let hotkey: global_hotkey::hotkey::HotKey = shortcut.parse().map_err(|err| {
        format!(
            "\"{shortcut}\" is not a shortcut ({err}); write modifiers first, then one key, \
             such as \"Ctrl+Alt+Shift+C\""
        )
    })?;
    let without_modifier_ok = matches!(
        hotkey.key,
        global_hotkey::hotkey::Code::Pause
            | global_hotkey::hotkey::Code::F13
            | global_hotkey::hotkey::Code::F14
            | global_hotkey::hotkey::Code::F15
            | global_hotkey::hotkey::Code::F16
            | global_hotkey::hotkey::Code::F17
            | global_hotkey::hotkey::Code::F18
            | global_hotkey::hotkey::Code::F19
            | global_hotkey::hotkey::Code::F20
            | global_hotkey::hotkey::Code::F21
            | global_hotkey::hotkey::Code::F22
            | global_hotkey::hotkey::Code::F23
            | global_hotkey::hotkey::Code::F24
    );
    if hotkey.mods == Modifiers::empty() && !without_modifier_ok {
        return Err(format!(
            "\"{shortcut}\" has no modifier: it would take that key from every app; \
             add Ctrl, Alt, Shift or Super, such as \"Ctrl+Alt+Shift+C\""
        ));
    }
    Ok(hotkey)
}

/// An `http://` or `https://` URL with a host.
/// The environment variables `llm.backend.api_key_env` may name: ones made to hold an API
/// key, ending in `_API_KEY` (`OPENAI_API_KEY`, `GROQ_API_KEY`, ...) or starting with
/// `DESKTOP_MATE_`; letters, digits and `_` only. A settings file someone shares can then not
/// make the app send `GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY` or any other secret of the
/// user's environment to its server.
pub fn api_key_env_rule(name: &str) -> Result<(), String> {
    let word = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let upper = name.to_ascii_uppercase();
    let for_keys = upper.ends_with("_API_KEY") || upper.starts_with("DESKTOP_MATE_");
    if word && for_keys {
        Ok(())
    } else {
        Err(format!(
            "must name an environment variable made for an API key: ending in _API_KEY (such as \"OPENAI_API_KEY\") or starting with DESKTOP_MATE_, found \"{name}\""
        ))
    }
}

/// An API key is sent only over https, or over plain http to this machine (`localhost`,
/// `127.0.0.0/8`, `::1`): on any other http URL everyone on the way could read it.
pub fn key_transport_rule(base_url: &str) -> Result<(), String> {
    if base_url.trim().starts_with("https://") || url_is_loopback(base_url) {
        Ok(())
    } else {
        Err(format!(
            "an API key is only sent over https:// or to this machine (localhost, 127.0.0.1, [::1]); {base_url} is plain http to another host"
        ))
    }
}

/// Whether an `http(s)://` URL's host is this machine.
fn url_is_loopback(url: &str) -> bool {
    let Some(rest) = url
        .trim()
        .strip_prefix("http://")
        .or_else(|| url.trim().strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // user:password@ is not part of the host.
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_with(edit: impl FnOnce(&mut Settings)) -> Vec<InvalidValue> {
        let mut settings = Settings::default();
        edit(&mut settings);
        validate(&settings)
    }

    #[test]
    fn the_default_hotkeys_are_valid_and_distinct() {
        assert_eq!(problems_with(|_| {}), vec![]);
        let shortcuts: Vec<_> = Settings::default()
            .desktop
            .hotkeys
            .entries()
            .into_iter()
            .map(|(_, s)| parse_hotkey(s).expect("parses").id())
            .collect();
        assert_eq!(shortcuts.len(), 5);
        let distinct: std::collections::HashSet<_> = shortcuts.iter().collect();
        assert_eq!(distinct.len(), shortcuts.len());
    }

    #[test]
    fn a_bad_duplicate_or_bare_hotkey_is_reported_at_its_key() {
        let problems = problems_with(|s| s.desktop.hotkeys.chat = Some("Ctrl+Alt+Banana".into()));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "desktop.hotkeys.chat");
        assert!(problems[0].message.contains("is not a shortcut"));

        let problems = problems_with(|s| s.desktop.hotkeys.chat = Some("alt+shift+ctrl+c".into()));
        assert_eq!(problems.len(), 1, "same keys in another order and case");
        assert_eq!(problems[0].key, "desktop.hotkeys.chat");
        assert!(
            problems[0]
                .message
                .contains("shortcut of desktop.hotkeys.click_through")
        );

        let problems = problems_with(|s| s.desktop.hotkeys.show_hide = Some("H".into()));
        assert!(problems[0].message.contains("has no modifier"));
        assert_eq!(
            problems_with(|s| s.desktop.hotkeys.show_hide = Some("F20".into())),
            vec![]
        );
        assert_eq!(
            problems_with(|s| s.desktop.hotkeys.show_hide = None),
            vec![]
        );
    }
}
