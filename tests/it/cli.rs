//! The real binary: `check` and `--help`.
use crate::support;

use std::path::Path;
use std::process::Command;

use crate::support::{GgufValue, shared_file, write_gguf_header};

pub(crate) fn desktop_mate(args: &[&str], home: &Path) -> std::process::Output {
    desktop_mate_with_env(args, home, &[])
}

/// The binary with `HOME` in `home` and these environment variables (the llama.cpp module
/// overrides are cleared unless given here).
pub(crate) fn desktop_mate_with_env(
    args: &[&str],
    home: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    command(args, home, env).output().expect("run desktop-mate")
}

/// The command [`desktop_mate_with_env`] runs.
pub(crate) fn command(args: &[&str], home: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_desktop-mate"));
    command
        .args(args)
        // Never touch the real user's folders.
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("DESKTOP_MATE_CONFIG")
        .env_remove("DESKTOP_MATE_EMBEDDING_MODEL")
        .env_remove("DESKTOP_MATE_VOICE")
        .env_remove("DESKTOP_MATE_VOICES")
        .env_remove("DESKTOP_MATE_VOICE_BASE_URL")
        .env_remove("DESKTOP_MATE_ESPEAK_NG")
        .env_remove("DESKTOP_MATE_BACKENDS_DIR")
        .env_remove("DESKTOP_MATE_CPU_VARIANT")
        .env_remove("DESKTOP_MATE_GPU_BACKEND");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

pub(crate) fn json_of(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON object on stdout: {stdout}"
    );
    serde_json::from_str(&stdout).expect("valid JSON")
}

/// `check --json` on default settings (`()` given with `--config`) with these environment
/// variables; the report, after asserting that it succeeded.
pub(crate) fn check_json(env: &[(&str, &str)]) -> serde_json::Value {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("mascot.ron");
    std::fs::write(&config, "()").expect("write");
    let output = desktop_mate_with_env(
        &[
            "check",
            "--json",
            "--config",
            config.to_str().expect("utf8"),
        ],
        home.path(),
        env,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_of(&output)
}

#[test]
fn check_reports_cpu_profile_and_no_gpu_on_this_machine() {
    let report = check_json(&[]);
    assert_eq!(report["settings"]["valid"], true);
    assert_eq!(report["settings"]["origin"], "command_line");
    assert!(report["cpu"]["logical_cores"].as_u64().expect("cores") >= 1);
    assert!(report["cpu"]["physical_cores"].as_u64().expect("cores") >= 1);
    assert!(report["memory"]["total_bytes"].as_u64().expect("ram") > 0);
    assert!(report["model"].is_null());
    // This machine (and CI) has no NVIDIA GPU: the report says so instead of failing.
    if report["gpu"].is_null() {
        assert!(
            report["gpu_unavailable_reason"]
                .as_str()
                .expect("reason")
                .contains("no NVIDIA GPU"),
            "{report}"
        );
        assert_eq!(report["plan"]["profile"], "cpu_fallback");
        assert_eq!(report["plan"]["n_gpu_layers"], 0);
        assert!(
            report["plan"]["reason"]
                .as_str()
                .expect("reason")
                .contains("no NVIDIA GPU"),
            "{report}"
        );
    } else {
        assert!(!report["gpu"]["name"].as_str().expect("name").is_empty());
        assert!(report["gpu"]["vram_total_bytes"].as_u64().expect("vram") > 0);
    }
    let threads = report["plan"]["n_threads"].as_u64().expect("threads");
    let logical = report["cpu"]["logical_cores"].as_u64().expect("cores");
    assert!(threads >= 1 && threads <= logical);

    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("mascot.ron");
    std::fs::write(&config, "()").expect("write");
    let text = desktop_mate(
        &["check", "--config", config.to_str().expect("utf8")],
        home.path(),
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("settings: ") && text.contains(": valid"),
        "{text}"
    );
    assert!(text.contains("plan:     profile"), "{text}");
}

#[test]
fn check_reads_the_models_size_and_layer_count() {
    let home = tempfile::tempdir().expect("temp dir");
    let model = home.path().join("tiny.gguf");
    write_gguf_header(
        &model,
        &[
            ("general.architecture", GgufValue::Str("llama")),
            ("llama.block_count", GgufValue::U32(7)),
        ],
    );
    let config = home.path().join("mascot.ron");
    std::fs::write(&config, "()").expect("write");
    let output = desktop_mate(
        &[
            "check",
            "--json",
            "--config",
            config.to_str().expect("utf8"),
            "--model",
            model.to_str().expect("utf8"),
        ],
        home.path(),
    );
    assert!(output.status.success());
    let report = json_of(&output);
    assert_eq!(report["model"]["n_layers"], 7);
    assert_eq!(report["model"]["architecture"], "llama");
    assert_eq!(
        report["model"]["file_size_bytes"].as_u64(),
        Some(std::fs::metadata(&model).expect("size").len())
    );
    // --model is for this run only: the file is untouched.
    assert_eq!(std::fs::read_to_string(&config).expect("read"), "()");

    let not_gguf = home.path().join("notes.gguf");
    std::fs::write(&not_gguf, "hello").expect("write");
    let output = desktop_mate(
        &[
            "check",
            "--json",
            "--config",
            config.to_str().expect("utf8"),
            "--model",
            not_gguf.to_str().expect("utf8"),
        ],
        home.path(),
    );
    let report = json_of(&output);
    assert!(
        report["model"]["error"]
            .as_str()
            .expect("error")
            .contains("not a GGUF model file"),
        "{report}"
    );
}

#[test]
fn check_reads_the_real_stories_model_when_shared_is_present() {
    let Some(model) = shared_file("models/stories260K.gguf") else {
        eprintln!(
            "../shared/models/stories260K.gguf not here; covered by the generated header test"
        );
        return;
    };
    let home = tempfile::tempdir().expect("temp dir");
    let output = run_with_model(home.path(), "()", &model, &["check", "--json"]);
    let report = json_of(&output);
    assert_eq!(report["model"]["architecture"], "llama");
    assert_eq!(report["model"]["n_layers"], 5);
    // Each key once (a flattened struct once repeated "path"; seen on the GPU machine).
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.matches("\"path\":").count(),
        2,
        "settings + model: {text}"
    );
}

#[test]
fn check_fails_with_file_line_column_on_invalid_settings() {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("bad.ron");
    std::fs::write(&config, "(\n  llm: (\n    profile: turbo,\n  ),\n)").expect("write");
    let output = desktop_mate(
        &[
            "check",
            "--json",
            "--config",
            config.to_str().expect("utf8"),
        ],
        home.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:3:14: wrong type at `llm.profile`", config.display());
    assert!(stderr.contains(&expected), "{stderr}");
    let report = json_of(&output);
    assert_eq!(report["settings"]["valid"], false);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Windows' AppData folder cannot be redirected for a test: it would write the real \
              user's (the unit test config::store::tests::windows_settings_live_under_appdata \
              checks the path)"
)]
fn first_run_creates_the_users_settings_from_the_default() {
    let home = tempfile::tempdir().expect("temp dir");
    let output = desktop_mate(&["check", "--json"], home.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json_of(&output);
    assert_eq!(report["settings"]["origin"], "user_config");
    let path = report["settings"]["path"].as_str().expect("path");
    assert!(
        path.starts_with(home.path().to_str().expect("utf8")),
        "{path}"
    );
    assert_eq!(
        std::fs::read_to_string(path).expect("written"),
        desktop_mate::config::BUNDLED_DEFAULT
    );
}

#[test]
fn help_documents_commands_and_global_options() {
    let home = tempfile::tempdir().expect("temp dir");
    let output = desktop_mate(&["--help"], home.path());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in ["run", "check", "--config", "--model", "--avatar"] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
    let output = desktop_mate(&["check", "--help"], home.path());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("--json") && help.contains("--model"),
        "{help}"
    );
}

/// `desktop-mate ARGS --config <home>/mascot.ron --model MODEL` with these settings.
fn run_with_model(
    home: &Path,
    settings: &str,
    model: &Path,
    args: &[&str],
) -> std::process::Output {
    let config = home.join("mascot.ron");
    std::fs::write(&config, settings).expect("write");
    let mut args = args.to_vec();
    args.extend_from_slice(&[
        "--config",
        config.to_str().expect("utf8"),
        "--model",
        model.to_str().expect("utf8"),
    ]);
    desktop_mate(&args, home)
}

/// `chat --json --raw` greedy completion of `prompt`; returns the parsed reply.
fn raw_completion(
    settings: &str,
    model: &Path,
    prompt: &str,
    max_tokens: u32,
) -> serde_json::Value {
    let home = tempfile::tempdir().expect("temp dir");
    let max_tokens = max_tokens.to_string();
    let output = run_with_model(
        home.path(),
        settings,
        model,
        &[
            "chat",
            "--json",
            "--raw",
            "--temperature",
            "0",
            "--max-tokens",
            &max_tokens,
            "--prompt",
            prompt,
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_of(&output)
}

#[test]
fn chat_answers_once_as_json_with_timings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("tiny.gguf");
    support::write_tiny_llama(&model, 3);
    let reply = raw_completion("(llm: (n_ctx: 256, n_batch: 64))", &model, "hello", 6);
    for key in [
        "text",
        "emotion",
        "prompt_tokens",
        "generated_tokens",
        "ttft_ms",
        "decode_tps",
        "prompt_tps",
    ] {
        assert!(reply.get(key).is_some(), "missing {key}: {reply}");
    }
    let generated = reply["generated_tokens"].as_u64().expect("count");
    assert!((1..=6).contains(&generated), "{reply}");
    assert!(reply["prompt_tokens"].as_u64().expect("count") >= 2);
    assert!(reply["n_threads"].as_u64().expect("threads") >= 1);
    assert!(reply["stop_reason"].as_str().is_some());
}

#[test]
fn chat_continues_the_real_story_model_greedily() {
    let Some(model) = shared_file("models/stories260K.gguf") else {
        eprintln!(
            "../shared/models/stories260K.gguf not here; covered by the generated model test"
        );
        return;
    };
    let reply = raw_completion("()", &model, "Once upon a time", 16);
    let text = reply["text"].as_str().expect("text");
    assert!(
        text.starts_with(", there was a little girl named Lily."),
        "{text}"
    );
    assert_eq!(reply["generated_tokens"], 16);
}

#[test]
fn chat_without_a_model_says_how_to_set_one() {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("mascot.ron");
    std::fs::write(&config, "()").expect("write");
    let output = desktop_mate(
        &[
            "chat",
            "--prompt",
            "hi",
            "--config",
            config.to_str().expect("utf8"),
        ],
        home.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no model set: pass --model PATH"),
        "{stderr}"
    );
}

#[test]
fn bench_reports_every_promised_key_on_a_generated_model() {
    let home = tempfile::tempdir().expect("temp dir");
    let model = home.path().join("tiny.gguf");
    support::write_tiny_llama(&model, 5);
    let output = run_with_model(
        home.path(),
        "(llm: (n_ctx: 256, n_batch: 64))",
        &model,
        &["bench", "--json", "--turns", "6", "--max-tokens", "8"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json_of(&output);
    for key in [
        "model",
        "n_threads",
        "load_ms",
        "warmup_ms",
        "ttft_cold_ms",
        "ttft_first_ms",
        "ttft_later_ms",
        "tag_lead_ms",
        "tag_lead_tokens",
        "ttft_turn1_ms",
        "ttft_turn6_ms",
        "decode_tps",
        "prompt_tps",
        "threads_sweep",
        "auto_threads",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    assert_eq!(report["turns"], 6);
    assert!(report["decode_tps"].as_f64().expect("tps") > 0.0);
    assert!(
        report["tag_lead_tokens"].as_u64() >= Some(3),
        "the reply opened with a grammar-made tag: {report}"
    );
    let sweep = report["threads_sweep"].as_array().expect("sweep");
    assert!(!sweep.is_empty());
    assert_eq!(sweep[0]["n_threads"], 1);
    assert!(
        sweep
            .iter()
            .all(|row| row["decode_tps"].as_f64().unwrap_or(0.0) > 0.0)
    );
}

#[test]
fn profile_memory_reports_every_stage_and_a_verdict() {
    let home = tempfile::tempdir().expect("temp dir");
    let model = home.path().join("tiny.gguf");
    support::write_tiny_llama(&model, 4);
    let output = run_with_model(
        home.path(),
        "(llm: (n_ctx: 256, n_batch: 64))",
        &model,
        &[
            "profile-memory",
            "--json",
            "--messages",
            "2,5",
            "--max-tokens",
            "8",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json_of(&output);
    let stages: Vec<&str> = report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["stage"].as_str().expect("name"))
        .collect();
    assert_eq!(
        stages,
        [
            "start",
            "model loaded",
            "after first generation",
            "after 2 messages",
            "after 5 messages"
        ]
    );
    for stage in report["stages"].as_array().expect("stages") {
        assert!(stage["rss_bytes"].as_u64().expect("rss") > 0);
    }
    assert!(report["leak"].is_boolean());
    assert!(report["slope_bytes_per_message"].is_number());
    assert!(
        report["verdict"]
            .as_str()
            .expect("verdict")
            .contains("KiB/message")
    );
}

#[test]
fn a_model_bigger_than_the_machines_memory_is_refused_before_loading() {
    use support::GgufValue;
    let home = tempfile::tempdir().expect("temp dir");
    let model = home.path().join("huge.gguf");
    support::write_gguf_header(
        &model,
        &[
            ("general.architecture", GgufValue::Str("llama")),
            ("llama.block_count", GgufValue::U32(80)),
        ],
    );
    // A sparse file: 4 TiB on paper, a few bytes on disk.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&model)
        .and_then(|f| f.set_len(4 << 40))
        .expect("sparse file");
    let output = run_with_model(home.path(), "()", &model, &["chat", "--prompt", "hi"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("needs about 4096.5 GiB of RAM") && stderr.contains("in total"),
        "{stderr}"
    );
}

/// Empty settings and a snapshot path in `home`, as the window commands' arguments.
#[cfg(target_os = "linux")]
fn window_command_files(home: &Path) -> (String, String) {
    let config = home.join("mascot.ron");
    std::fs::write(&config, "()").expect("write");
    let path = |p: std::path::PathBuf| p.to_str().expect("utf8").to_owned();
    (path(config), path(home.join("shot.png")))
}

#[cfg(target_os = "linux")]
#[test]
fn the_window_commands_say_what_to_do_without_a_display_instead_of_panicking() {
    let home = tempfile::tempdir().expect("temp dir");
    let (config, out) = window_command_files(home.path());
    let (config, out) = (config.as_str(), out.as_str());
    let cases: [(&[&str], &[(&str, &str)], &str); 4] = [
        (
            &["run"],
            &[("DISPLAY", ""), ("WAYLAND_DISPLAY", "")],
            "no display",
        ),
        (
            &["snapshot", "--out", out],
            &[("DISPLAY", ""), ("WAYLAND_DISPLAY", "")],
            "no display",
        ),
        (
            &["run"],
            &[("DISPLAY", ""), ("WAYLAND_DISPLAY", "wayland-0")],
            "Wayland session",
        ),
        (
            &["run"],
            &[("DISPLAY", ":4242"), ("WAYLAND_DISPLAY", "")],
            "cannot open the X display :4242",
        ),
    ];
    for (args, env, says) in cases {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        let output = desktop_mate_with_env(&all, home.path(), env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if says == "Wayland session" && cfg!(feature = "wayland") {
            continue;
        }
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("desktop-mate check"),
            "{args:?} {env:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(
        !std::path::Path::new(out).exists(),
        "no snapshot without a display"
    );
}

/// A machine with a display but no graphics driver (here: Vulkan only, and no Vulkan driver
/// file): `run` and `snapshot` say what to install instead of Bevy's "Unable to find a GPU!"
/// panic, and `check` lists the same nothing; with the machine's own driver `check` names it.
#[cfg(target_os = "linux")]
#[test]
fn without_a_graphics_driver_the_window_commands_say_what_to_install() {
    if !crate::support::display_available() {
        return;
    }
    let home = tempfile::tempdir().expect("temp dir");
    let (config, out) = window_command_files(home.path());
    let (config, out) = (config.as_str(), out.as_str());
    let none = home.path().join("no-driver.json");
    let none = none.to_str().expect("utf8");
    let no_driver = [
        ("WGPU_BACKEND", "vulkan"),
        ("VK_ICD_FILENAMES", none),
        ("VK_DRIVER_FILES", none),
    ];
    for args in [&["run"][..], &["snapshot", "--out", out][..]] {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        let output = desktop_mate_with_env(&all, home.path(), &no_driver);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("no graphics driver") && stderr.contains("mesa-vulkan-drivers"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let report = |env: &[(&str, &str)]| -> serde_json::Value {
        let output =
            desktop_mate_with_env(&["--config", config, "check", "--json"], home.path(), env);
        serde_json::from_slice(&output.stdout).expect("check --json")
    };
    let without = report(&no_driver);
    assert_eq!(without["renderers"], serde_json::json!([]), "{without}");
    assert!(
        without["renderer_warning"]
            .as_str()
            .is_some_and(|w| w.contains("no graphics driver")),
        "{without}"
    );
    // The test machine renders with Mesa's software Vulkan driver (lavapipe).
    let with = report(&[]);
    let names: Vec<&str> = with["renderers"]
        .as_array()
        .expect("renderers")
        .iter()
        .filter_map(|r| r["driver"].as_str())
        .collect();
    assert!(names.contains(&"llvmpipe"), "{with}");
}

#[test]
fn check_says_which_settings_are_in_force_and_where_each_came_from() {
    use serde_json::json;
    let home = tempfile::tempdir().expect("temp dir");
    let model = home.path().join("tiny.gguf");
    write_gguf_header(
        &model,
        &[
            ("general.architecture", GgufValue::Str("llama")),
            ("llama.block_count", GgufValue::U32(2)),
        ],
    );
    let config = home.path().join("mascot.ron");
    // The window section is broken: the persona and the model still count.
    std::fs::write(
        &config,
        format!(
            "(persona: (name: \"Miso\"), llm: (model_path: Some(\"{}\")), window: (scale: \"big\"))",
            support::ron_path(&model)
        ),
    )
    .expect("write");
    std::fs::write(
        home.path().join("state.ron"),
        "(avatar: Some(\"/dropped/a.vrm\"), window_scale: Some(1.5))",
    )
    .expect("write");
    let config = config.to_str().expect("utf8");
    let output = desktop_mate(&["check", "--json", "--config", config], home.path());
    assert_eq!(output.status.code(), Some(2), "the broken file is an error");
    let report = json_of(&output);
    assert_eq!(report["settings"]["valid"], false);
    let in_force = &report["in_force"];
    assert_eq!(
        in_force["persona"],
        json!({"value": "Miso", "from": "file"})
    );
    assert_eq!(
        in_force["model"],
        json!({"value": model.to_str().expect("utf8"), "from": "file"})
    );
    assert_eq!(
        in_force["avatar"],
        json!({"value": "/dropped/a.vrm", "from": "state"})
    );
    assert_eq!(
        in_force["window_scale"],
        json!({"value": 1.5, "from": "state"})
    );
    assert_eq!(in_force["skipped"], json!([]));

    let output = desktop_mate(
        &[
            "check",
            "--json",
            "--config",
            config,
            "--avatar",
            "/flag/b.vrm",
        ],
        home.path(),
    );
    let report = json_of(&output);
    assert_eq!(
        report["in_force"]["avatar"],
        json!({"value": "/flag/b.vrm", "from": "flag"})
    );
    let text = desktop_mate(&["check", "--config", config], home.path());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("in force: persona \"Miso\" (from the settings file)")
            && text.contains("avatar /dropped/a.vrm (kept by the app in state.ron)"),
        "{text}"
    );
}
