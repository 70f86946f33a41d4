//! The real binary on hostile files (issue: nothing a downloaded file does takes the mascot
//! down): each case ends with a clear message naming what is wrong, never a signal, a panic
//! or a hang. Each case here once ended in SIGABRT or a panic.

use std::path::Path;
use std::process::Output;

use crate::cli::desktop_mate;
use crate::support::{
    write_tiny_llama, write_tiny_llama_with_metadata, write_tiny_llama_with_template,
};

/// Neither killed by a signal (abort, stack overflow, SIGSEGV) nor a Rust panic.
fn assert_clean_exit(what: &str, output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            output.status.signal(),
            None,
            "{what}: killed by a signal; stderr:\n{stderr}"
        );
    }
    assert!(
        output.status.code().is_some(),
        "{what}: no exit code; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: a panic:\n{stderr}");
}

fn config_in(home: &Path) -> String {
    let config = home.join("mascot.ron");
    std::fs::write(&config, "()").expect("write settings");
    config.to_str().expect("utf8").to_owned()
}

#[test]
fn gguf_metadata_that_llama_cpp_aborts_on_is_refused_with_the_key_named() {
    let home = tempfile::tempdir().expect("temp dir");
    let config = config_in(home.path());
    type Case<'a> = (&'a str, &'a [(&'a str, u32)], &'a str);
    let cases: &[Case] = &[
        (
            "no blocks",
            &[("llama.block_count", 0)],
            "llama.block_count",
        ),
        (
            "more blocks than llama.cpp's limit",
            &[("llama.block_count", 600)],
            "llama.block_count",
        ),
        (
            "more experts than llama.cpp's limit",
            &[("llama.expert_count", 2000), ("llama.expert_used_count", 2)],
            "llama.expert_count",
        ),
        (
            "more experts used than there are",
            &[("llama.expert_count", 2), ("llama.expert_used_count", 3)],
            "llama.expert_used_count",
        ),
        (
            "experts, none used",
            &[("llama.expert_count", 4)],
            "llama.expert_used_count",
        ),
        (
            "experts used without experts",
            &[("llama.expert_used_count", 2)],
            "llama.expert_used_count",
        ),
        (
            "expert groups without experts",
            &[("llama.expert_group_count", 2)],
            "llama.expert_group_count",
        ),
        (
            "next-token layers beyond the blocks",
            &[("llama.nextn_predict_layers", 5)],
            "llama.nextn_predict_layers",
        ),
    ];
    for (n, (what, metadata, key)) in cases.iter().enumerate() {
        let model = home.path().join(format!("hostile-{n}.gguf"));
        write_tiny_llama_with_metadata(&model, 1, metadata);
        let model = model.to_str().expect("utf8");
        let chat = desktop_mate(
            &[
                "chat",
                "--raw",
                "--prompt",
                "Hi",
                "--max-tokens",
                "1",
                "--config",
                &config,
                "--model",
                model,
            ],
            home.path(),
        );
        assert_clean_exit(what, &chat);
        let stderr = String::from_utf8_lossy(&chat.stderr);
        assert!(!chat.status.success(), "{what}: refused");
        assert!(
            stderr.contains(&format!("`{key}`")) && stderr.contains("refused"),
            "{what}: the message names {key}:\n{stderr}"
        );
        // `check` says the same instead of passing a file the chat would die on.
        let check = desktop_mate(
            &["check", "--config", &config, "--model", model],
            home.path(),
        );
        assert_clean_exit(what, &check);
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            report.contains(&format!("`{key}`")),
            "{what}: check names {key}:\n{report}"
        );
    }
    // The same model with its own values runs: only what would abort is refused.
    let model = home.path().join("sane.gguf");
    write_tiny_llama(&model, 1);
    let chat = desktop_mate(
        &[
            "chat",
            "--raw",
            "--prompt",
            "Hi",
            "--max-tokens",
            "1",
            "--config",
            &config,
            "--model",
            model.to_str().expect("utf8"),
        ],
        home.path(),
    );
    assert_clean_exit("sane model", &chat);
    assert!(
        chat.status.success(),
        "{}",
        String::from_utf8_lossy(&chat.stderr)
    );
}

/// Chat templates that minijinja itself cannot survive in-process (a stack overflow or an
/// allocation failure aborts), and a template that only names a format: the chat goes on in
/// the plain-text format with a warning naming why, and the verdict is remembered, so the next
/// start does not test the template again. Each of these once killed `chat` and the mascot.
#[test]
fn chat_templates_that_would_abort_are_refused_and_remembered() {
    let home = tempfile::tempdir().expect("temp dir");
    let config = config_in(home.path());
    let cases = [
        (
            "a namespace that contains itself, concatenated",
            "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns ~ '' }}{{ messages[0].content }}",
            "crashed",
        ),
        (
            "a namespace that contains itself, compared",
            "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{% set o = namespace(a=1) %}{% set o.me = o %}{{ ns == o }}",
            "crashed",
        ),
        (
            "a list doubled forty times",
            "{% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
            "",
        ),
        (
            "a prompt a thousand times its messages",
            "{% for i in range(100000) %}{{ messages }}{% endfor %}",
            "budget",
        ),
        (
            "a format's name instead of a template",
            "chatml",
            "names a format",
        ),
    ];
    let verdicts = home
        .path()
        .join(".cache/desktop-mate/template-verdicts.txt");
    for (n, (what, template, why)) in cases.iter().enumerate() {
        let model = home.path().join(format!("template-{n}.gguf"));
        write_tiny_llama_with_template(&model, 1, template);
        let model = model.to_str().expect("utf8");
        let chat = |run: &str| {
            let output = desktop_mate(
                &[
                    "chat",
                    "--prompt",
                    "Hi",
                    "--max-tokens",
                    "2",
                    "--config",
                    &config,
                    "--model",
                    model,
                ],
                home.path(),
            );
            assert_clean_exit(&format!("{what} ({run} run)"), &output);
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "{what} ({run} run): {stderr}");
            assert!(
                stderr.contains("chat template cannot be used") && stderr.contains(why),
                "{what} ({run} run) says why: {stderr}"
            );
            assert!(
                stderr.contains("plain-text format"),
                "{what} ({run} run): {stderr}"
            );
        };
        chat("first");
        if !why.starts_with("names") {
            let kept = std::fs::read_to_string(&verdicts).expect("verdicts kept");
            assert_eq!(
                kept.lines().filter(|l| l.contains(" refused ")).count(),
                n + 1,
                "{what}: {kept}"
            );
            // The second run reads the verdict: the file is not written again.
            let before = std::fs::metadata(&verdicts).and_then(|m| m.modified()).ok();
            chat("second");
            let after = std::fs::metadata(&verdicts).and_then(|m| m.modified()).ok();
            assert_eq!(before, after, "{what}: tested once");
        }
    }
    // A sane template is tested once, found usable and used.
    let model = home.path().join("sane.gguf");
    write_tiny_llama_with_template(
        &model,
        1,
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>",
    );
    let chat = desktop_mate(
        &[
            "chat",
            "--json",
            "--prompt",
            "Hi",
            "--max-tokens",
            "2",
            "--config",
            &config,
            "--model",
            model.to_str().expect("utf8"),
        ],
        home.path(),
    );
    assert_clean_exit("sane template", &chat);
    let stderr = String::from_utf8_lossy(&chat.stderr);
    assert!(chat.status.success(), "{stderr}");
    assert!(!stderr.contains("cannot be used"), "{stderr}");
    let kept = std::fs::read_to_string(&verdicts).expect("verdicts kept");
    assert!(kept.lines().any(|l| l.ends_with(" usable")), "{kept}");
}

/// Crash loops: a file that kills the process while it loads must not kill every later start.
/// The first run really dies (SIGABRT, at the point the guard recorded the load, as a loader
/// crash would); the next start skips the file, shows the default avatar and says why.
#[cfg(target_os = "linux")]
#[test]
fn a_crash_while_loading_the_avatar_is_not_repeated_at_the_next_start() {
    use std::os::unix::process::ExitStatusExt;

    use desktop_mate::config::{CRASH_TEST_VARIABLE, GUARD_FILE_NAME};

    use crate::cli::desktop_mate_with_env;
    use crate::support::{display_available, one_window_at_a_time, ron_path};

    if !display_available() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs the tests under Xvfb"
        );
        return;
    }
    let home = tempfile::tempdir().expect("temp dir");
    let avatar = home.path().join("stranger.vrm");
    std::fs::write(
        &avatar,
        desktop_mate::avatar::default_avatar::DEFAULT_AVATAR,
    )
    .expect("write avatar");
    let config = home.path().join("mascot.ron");
    std::fs::write(
        &config,
        format!("(avatar: (vrm_path: Some(\"{}\")))", ron_path(&avatar)),
    )
    .expect("write settings");
    let config = config.to_str().expect("utf8");
    let shot = |name: &str| home.path().join(name).to_str().expect("utf8").to_owned();
    let (first_png, second_png) = (shot("first.png"), shot("second.png"));
    let _one_at_a_time = one_window_at_a_time();

    let first = desktop_mate_with_env(
        &[
            "--config", config, "snapshot", "--size", "300x400", "--out", &first_png,
        ],
        home.path(),
        &[(CRASH_TEST_VARIABLE, "avatar")],
    );
    assert_eq!(
        first.status.signal(),
        Some(6),
        "the first run dies while loading: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let guard = std::fs::read_to_string(home.path().join(GUARD_FILE_NAME)).expect("guard");
    assert!(guard.contains("stranger.vrm"), "{guard}");

    for run in ["second", "third"] {
        let next = desktop_mate_with_env(
            &[
                "--config",
                config,
                "snapshot",
                "--size",
                "300x400",
                "--out",
                &second_png,
            ],
            home.path(),
            &[],
        );
        let stderr = String::from_utf8_lossy(&next.stderr);
        assert!(next.status.success(), "{run} start: {stderr}");
        assert!(
            stderr.contains("avatar: the last start stopped while loading avatar")
                && stderr.contains("stranger.vrm"),
            "{run} start says what it skipped: {stderr}"
        );
        assert!(
            std::path::Path::new(&second_png).is_file(),
            "the default avatar is shown"
        );
    }
}
