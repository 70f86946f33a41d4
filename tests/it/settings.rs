//! Settings files on disk: parsing, error messages, load order, atomic saving.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::files_in;
use desktop_mate::config::{
    self, BUNDLED_DEFAULT, ErrorKind, Overrides, Profile, Settings, SettingsOrigin, Threads,
    parse_settings, to_ron,
};

fn parse(source: &str) -> Result<Settings, config::ConfigError> {
    parse_settings(source, Path::new("mascot.ron"))
}

#[test]
fn defaults_round_trip_through_ron() {
    let mut settings = Settings::default();
    settings.llm.n_threads = Threads::Count(3);
    settings.llm.sampling.seed = Some(42);
    settings.window.position = Some((-20, 300));
    let text = to_ron(&settings).expect("serialize");
    assert_eq!(parse(&text).expect("parse saved text"), settings);
    assert_eq!(
        parse(&to_ron(&Settings::default()).expect("serialize")).expect("parse"),
        Settings::default()
    );
}

#[test]
fn bundled_default_parses_and_matches_the_code_defaults() {
    let bundled = parse(BUNDLED_DEFAULT).expect("config/mascot.ron must parse");
    assert_eq!(bundled, Settings::default());
}

#[test]
fn partial_file_keeps_defaults_for_missing_keys() {
    let settings = parse("(llm: (n_threads: \"auto\", profile: cpu_fallback))").expect("parse");
    assert_eq!(settings.llm.profile, Profile::CpuFallback);
    assert_eq!(settings.llm.n_threads, Threads::Auto);
    assert_eq!(settings.window, Settings::default().window);
    let settings = parse("(llm: (n_threads: 6))").expect("parse");
    assert_eq!(settings.llm.n_threads, Threads::Count(6));
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let err = parse("(\n  window: (\n    width: 300,,\n  ),\n)").expect_err("must fail");
    assert_eq!(err.kind, ErrorKind::Syntax);
    assert_eq!((err.line, err.column), (3, 16));
    let text = err.to_string();
    assert!(text.starts_with("mascot.ron:3:16: syntax error"), "{text}");
}

#[test]
fn wrong_type_names_the_key_path() {
    let err = parse("(\n  llm: (\n    n_ctx: \"big\",\n  ),\n)").expect_err("must fail");
    assert_eq!(err.kind, ErrorKind::WrongType);
    assert_eq!(err.key, "llm.n_ctx");
    assert_eq!(err.line, 3);
    assert!(
        err.to_string()
            .starts_with("mascot.ron:3:12: wrong type at `llm.n_ctx`"),
        "{err}"
    );
}

#[test]
fn unknown_key_is_rejected_with_its_path_and_the_valid_keys() {
    let err = parse("(\n  llm: (\n    sampling: (\n      temprature: 0.5,\n    ),\n  ),\n)")
        .expect_err("a typo must not be ignored");
    assert_eq!(err.kind, ErrorKind::UnknownKey);
    assert_eq!(err.key, "llm.sampling.temprature");
    assert_eq!((err.line, err.column), (4, 7));
    assert!(err.message.contains("temperature"), "{}", err.message);
}

#[test]
fn out_of_range_value_points_at_the_key() {
    let source = "// top_p: in a comment does not count\n(\n  llm: (\n    sampling: (top_k: 5, top_p: 1.5),\n  ),\n)";
    let err = parse(source).expect_err("top_p 1.5 is out of range");
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert_eq!(err.key, "llm.sampling.top_p");
    assert_eq!((err.line, err.column), (4, 26));
    assert_eq!(
        err.to_string(),
        "mascot.ron:4:26: invalid value at `llm.sampling.top_p`: must be between 0 and 1, found 1.5"
    );
}

#[test]
fn bad_thread_count_and_overlay_key_are_reported() {
    let err = parse("(llm: (n_threads: \"many\"))").expect_err("must fail");
    assert_eq!(err.key, "llm.n_threads");
    assert!(
        err.message.contains("\"auto\" or a number"),
        "{}",
        err.message
    );
    let err = parse("(diagnostics: (overlay_key: \"F13\"))").expect_err("must fail");
    assert_eq!(err.key, "diagnostics.overlay_key");
}

#[test]
fn first_run_writes_the_users_copy_from_the_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let user_dir = dir.path().join("config");
    let loaded = config::load_with(None, Some(&user_dir), Overrides::default());
    assert!(loaded.created);
    assert!(loaded.error.is_none());
    assert_eq!(loaded.file.origin, SettingsOrigin::UserConfig);
    let written = fs::read_to_string(user_dir.join("mascot.ron")).expect("user copy");
    assert_eq!(written, BUNDLED_DEFAULT);
    // Second run reads it and writes nothing.
    let again = config::load_with(None, Some(&user_dir), Overrides::default());
    assert!(!again.created);
    assert_eq!(files_in(&user_dir), vec!["mascot.ron"]);
}

#[test]
fn broken_user_file_gives_defaults_and_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    let broken = "// my settings\n(window: (width: 320, height: \"tall\"))\n";
    fs::write(&path, broken).expect("write");
    let loaded = config::load_with(None, Some(dir.path()), Overrides::default());
    let err = loaded.error.expect("error reported");
    assert_eq!(err.key, "window.height");
    assert_eq!(err.path, path);
    assert_eq!(loaded.settings, Settings::default());
    assert_eq!(fs::read_to_string(&path).expect("read"), broken);
    assert_eq!(files_in(dir.path()), vec!["mascot.ron"]);
}

#[test]
fn missing_cli_config_is_an_error_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope.ron");
    let loaded = config::load_with(Some(&path), Some(dir.path()), Overrides::default());
    let err = loaded.error.expect("error");
    assert_eq!(err.kind, ErrorKind::Unreadable);
    assert!(
        err.to_string().contains("nope.ron: cannot read settings"),
        "{err}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn overrides_apply_for_the_run_but_are_never_saved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    let original = "// keep me\n(llm: (model_path: Some(\"/models/a.gguf\")))\n";
    fs::write(&path, original).expect("write");
    let overrides = Overrides {
        model: Some("/tmp/b.gguf".into()),
        avatar: None,
        ..Overrides::default()
    };
    let mut loaded = config::load_with(Some(&path), None, overrides);
    assert_eq!(
        loaded.settings.llm.model_path.as_deref(),
        Some(Path::new("/tmp/b.gguf"))
    );
    let mut edited = loaded.settings.clone();
    edited.persona.name = "Robin".into();
    let effective = loaded.file.save_edit(&edited).expect("save");
    assert_eq!(
        effective.llm.model_path.as_deref(),
        Some(Path::new("/tmp/b.gguf"))
    );
    let saved = config::read_settings(&path).expect("saved file is valid");
    assert_eq!(saved.persona.name, "Robin");
    assert_eq!(
        saved.llm.model_path.as_deref(),
        Some(Path::new("/models/a.gguf"))
    );
    // Only the edited value was written: the user's comment stays in the file itself.
    let text = fs::read_to_string(&path).expect("saved");
    assert!(text.starts_with("// keep me\n"), "{text}");
    // The previous file, comments included, is kept beside it.
    let backup = fs::read_to_string(dir.path().join("mascot.ron.bak")).expect("backup");
    assert_eq!(backup, original);
}

#[test]
fn saving_without_edits_writes_back_the_same_file_and_one_edit_keeps_every_comment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    // The documented default, with values at the edges of their ranges.
    let original = BUNDLED_DEFAULT
        .replace("temperature: 0.7,", "temperature: 4.5,")
        .replace("top_k: 40,", "top_k: 5000,");
    fs::write(&path, &original).expect("write");
    let mut loaded = config::load_with(Some(&path), None, Overrides::default());
    assert_eq!(loaded.error, None);
    assert_eq!(loaded.settings.llm.sampling.temperature, 4.5);
    let unchanged = loaded.settings.clone();
    loaded.file.save_edit(&unchanged).expect("save");
    assert_eq!(fs::read_to_string(&path).expect("read"), original);

    let mut edited = unchanged;
    edited.persona.name = "Robin".into();
    loaded.file.save_edit(&edited).expect("save");
    let saved = fs::read_to_string(&path).expect("read");
    let comments = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.trim_start().starts_with("//"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        comments(&saved),
        comments(&original),
        "every comment line is kept"
    );
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(saved.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "one line changed: {changed:?}");
    assert!(changed[0].1.contains("\"Robin\""), "{changed:?}");
    assert_eq!(config::read_settings(&path).expect("valid"), edited);
}

#[test]
fn invalid_edit_is_refused_and_the_file_is_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    fs::write(&path, "()\n").expect("write");
    let mut loaded = config::load_with(Some(&path), None, Overrides::default());
    let mut edited = loaded.settings.clone();
    edited.llm.n_ctx = 16;
    let err = loaded
        .file
        .save_edit(&edited)
        .expect_err("n_ctx 16 is invalid");
    assert!(err.starts_with("llm.n_ctx"), "{err}");
    assert_eq!(fs::read_to_string(&path).expect("read"), "()\n");
    assert_eq!(files_in(dir.path()), vec!["mascot.ron"]);
}

#[test]
fn failed_atomic_write_leaves_no_partial_file_and_keeps_the_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The target is a non-empty folder: the final rename must fail, even for root.
    let target = dir.path().join("mascot.ron");
    fs::create_dir(&target).expect("mkdir");
    fs::write(target.join("inside"), "x").expect("write");
    let err = config::write_atomic(&target, "(window: ())").expect_err("rename onto a folder");
    assert!(!err.to_string().is_empty());
    assert_eq!(files_in(dir.path()), vec!["mascot.ron"]);
    assert!(target.is_dir());
    assert_eq!(files_in(&target), vec!["inside"]);

    // A folder that does not exist: nothing is created.
    let missing = dir.path().join("missing").join("mascot.ron");
    assert!(config::write_atomic(&missing, "()").is_err());
    assert!(!dir.path().join("missing").exists());
}

#[cfg(unix)]
#[test]
fn read_only_folder_save_fails_cleanly_when_permissions_apply() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("ro");
    fs::create_dir(&folder).expect("mkdir");
    let path = folder.join("mascot.ron");
    fs::write(&path, "()\n").expect("write");
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o555)).expect("chmod");
    let result = config::write_atomic(&path, "(window: (width: 500))");
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).expect("chmod back");
    match result {
        // Root ignores folder permissions; the write then really succeeded, atomically.
        Ok(()) => assert_eq!(
            fs::read_to_string(&path).expect("read"),
            "(window: (width: 500))"
        ),
        Err(_) => assert_eq!(fs::read_to_string(&path).expect("read"), "()\n"),
    }
    assert_eq!(files_in(&folder), vec!["mascot.ron"]);
}

#[test]
fn successful_save_leaves_only_the_file_and_its_backup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    config::save_settings(&path, &Settings::default()).expect("first save");
    assert_eq!(files_in(dir.path()), vec!["mascot.ron"]);
    let mut changed = Settings::default();
    changed.window.width = 512;
    config::save_settings(&path, &changed).expect("second save");
    assert_eq!(files_in(dir.path()), vec!["mascot.ron", "mascot.ron.bak"]);
    assert_eq!(config::read_settings(&path).expect("read"), changed);
}

#[test]
fn the_server_backend_is_read_and_checked() {
    use desktop_mate::config::Backend;
    let settings = parse(
        "(llm: (backend: OpenAi(base_url: \"http://127.0.0.1:11434/v1\", model: \"llama3.2\", api_key_env: Some(\"OPENAI_API_KEY\"))))",
    )
    .expect("parse");
    assert_eq!(
        settings.llm.backend,
        Backend::OpenAi {
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: "llama3.2".into(),
            api_key_env: Some("OPENAI_API_KEY".into()),
        }
    );
    // The key variable may be left out; the default is the local backend.
    let settings = parse(
        "(llm: (backend: OpenAi(base_url: \"https://api.openai.com/v1\", model: \"gpt-4o-mini\")))",
    )
    .expect("parse");
    assert!(matches!(
        settings.llm.backend,
        Backend::OpenAi {
            api_key_env: None,
            ..
        }
    ));
    assert_eq!(parse("()").expect("parse").llm.backend, Backend::Local);
    let text = to_ron(&settings).expect("serialize");
    assert_eq!(parse(&text).expect("round trip"), settings);

    let err = parse(
        "(\n  llm: (\n    backend: OpenAi(base_url: \"127.0.0.1:11434\", model: \"m\"),\n  ),\n)",
    )
    .expect_err("no scheme");
    assert_eq!(err.kind, ErrorKind::OutOfRange);
    assert_eq!(err.key, "llm.backend.base_url");
    assert!(err.to_string().contains("http:// or https://"), "{err}");
    let err = parse("(llm: (backend: OpenAi(base_url: \"ftp://host/v1\", model: \"m\")))")
        .expect_err("ftp");
    assert_eq!(err.key, "llm.backend.base_url");
    let err = parse("(llm: (backend: OpenAi(base_url: \"http://h/v1\", model: \" \")))")
        .expect_err("no model");
    assert_eq!(err.key, "llm.backend.model");
    let err = parse(
        "(llm: (backend: OpenAi(base_url: \"http://h/v1\", model: \"m\", api_key: \"sk-1\")))",
    )
    .expect_err("the key itself is not a setting");
    assert_eq!(err.kind, ErrorKind::UnknownKey, "{err}");
}

#[test]
fn a_missing_api_key_variable_is_said_at_load() {
    use desktop_mate::llm::plan::{Workload, resolve_model};
    let settings = parse(
        "(llm: (backend: OpenAi(base_url: \"http://127.0.0.1:1/v1\", model: \"m\", api_key_env: Some(\"DESKTOP_MATE_TEST_UNSET_KEY\"))))",
    )
    .expect("parse");
    let err = resolve_model(&settings, Workload::Terminal).expect_err("unset variable");
    let message = err.to_string();
    assert!(
        message.contains("DESKTOP_MATE_TEST_UNSET_KEY") && message.contains("not set"),
        "{message}"
    );
    // A key that is set is resolved into the server's settings and never printed.
    let backend = desktop_mate::config::Backend::OpenAi {
        base_url: "http://127.0.0.1:1/v1".into(),
        model: "m".into(),
        api_key_env: Some("DESKTOP_MATE_TEST_KEY".into()),
    };
    let server = desktop_mate::llm::openai::OpenAiSettings::from_backend_with(&backend, |_| {
        Some("sk-never-printed".into())
    })
    .expect("resolved")
    .expect("a server");
    assert_eq!(server.api_key.as_deref(), Some("sk-never-printed"));
    let config = desktop_mate::llm::load::BackendConfig::OpenAi(server);
    assert!(
        !format!("{config:?}").contains("sk-never-printed"),
        "the key is never printed"
    );
}

#[test]
fn api_key_env_names_only_a_variable_made_for_keys_and_sends_it_only_safely() {
    // A shared settings file cannot make the app send another secret of the environment.
    for name in ["PATH", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "MY KEY"] {
        let err = parse(&format!(
            "(llm: (backend: OpenAi(base_url: \"https://api.example.com/v1\", model: \"m\", api_key_env: Some(\"{name}\"))))"
        ))
        .expect_err(name);
        assert_eq!(err.key, "llm.backend.api_key_env", "{err}");
        assert!(err.to_string().contains("_API_KEY"), "{err}");
    }
    // Nor send a key in clear to another machine.
    let err = parse(
        "(llm: (backend: OpenAi(base_url: \"http://192.168.1.20:8080/v1\", model: \"m\", api_key_env: Some(\"OPENAI_API_KEY\"))))",
    )
    .expect_err("plain http to another host");
    assert_eq!(err.key, "llm.backend.api_key_env", "{err}");
    assert!(err.to_string().contains("https"), "{err}");
    for ok in [
        "(llm: (backend: OpenAi(base_url: \"https://api.example.com/v1\", model: \"m\", api_key_env: Some(\"OPENAI_API_KEY\"))))",
        "(llm: (backend: OpenAi(base_url: \"http://127.0.0.1:1234/v1\", model: \"m\", api_key_env: Some(\"DESKTOP_MATE_KEY\"))))",
        "(llm: (backend: OpenAi(base_url: \"http://localhost:11434/v1\", model: \"m\", api_key_env: None)))",
        "(llm: (backend: OpenAi(base_url: \"http://192.168.1.20:8080/v1\", model: \"m\")))",
    ] {
        parse(ok).unwrap_or_else(|err| panic!("{ok}: {err}"));
    }
}

#[test]
fn save_fixes_a_file_that_did_not_validate_at_start_and_keeps_its_comments() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    fs::write(&path, "// mine\n(llm: (sampling: (top_p: 1.5)))\n").expect("write");
    let mut loaded = config::load_with(Some(&path), None, Overrides::default());
    assert!(loaded.error.is_some(), "1.5 is out of range");
    // The app runs on the defaults; the user sets a valid value in the panel and saves.
    let mut edited = loaded.settings.clone();
    edited.llm.sampling.top_p = 0.9;
    loaded.file.save_edit(&edited).expect("saved");
    let text = fs::read_to_string(&path).expect("read");
    assert_eq!(text, "// mine\n(llm: (sampling: (top_p: 0.9)))\n");
    assert_eq!(config::read_settings(&path).expect("valid now"), edited);
}

#[test]
fn a_broken_file_keeps_every_section_that_loads_on_its_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    let text = r#"// mine
#![enable(implicit_some)]
(
    persona: (name: "Léa's mate", system_prompt: "Be kind (always), brief: [yes]."),
    llm: (model_path: Some("/models/chosen.gguf"), n_ctx: 2048),
    window: (scale: "big"), // wrong type
    /* a block comment with ) and , */
    chat: (turns_kept: 0), // out of range
    avatar: (vrm_path: Some("/a/b.vrm")),
    desktop: (autostart: true,, ), // syntax error inside one section
)
"#;
    fs::write(&path, text).expect("write");
    let loaded = config::load_with(Some(&path), None, Overrides::default());
    let err = loaded.error.expect("the error is still reported");
    assert_eq!(err.key, "window.scale", "{err}");
    let defaults = Settings::default();
    let settings = &loaded.settings;
    assert_eq!(settings.persona.name, "Léa's mate");
    assert_eq!(
        settings.persona.system_prompt,
        "Be kind (always), brief: [yes]."
    );
    assert_eq!(
        settings.llm.model_path,
        Some(PathBuf::from("/models/chosen.gguf"))
    );
    assert_eq!(settings.llm.n_ctx, 2048);
    assert_eq!(settings.avatar.vrm_path, Some(PathBuf::from("/a/b.vrm")));
    assert_eq!(settings.window, defaults.window, "the broken section");
    assert_eq!(settings.chat, defaults.chat, "the out-of-range section");
    assert_eq!(
        settings.desktop, defaults.desktop,
        "the section with a syntax error"
    );
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        text,
        "never rewritten"
    );
    // A file that cannot be read as a struct at all keeps nothing, and says so.
    fs::write(&path, "(persona: (name: \"unclosed").expect("write");
    let loaded = config::load_with(Some(&path), None, Overrides::default());
    assert!(loaded.error.is_some());
    assert_eq!(loaded.settings, defaults);
}
