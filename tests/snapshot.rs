//! Real rendering: the mascot window under X (Xvfb + Mesa lavapipe in CI), captured with alpha.

mod support;

use std::path::Path;
use std::process::Command;

fn display_available() -> bool {
    std::env::var_os("DISPLAY").is_some()
}

fn snapshot(dir: &Path, extra: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    let config = dir.join("mascot.ron");
    std::fs::write(&config, "()").expect("write settings");
    let out = dir.join("shot.png");
    let mut args = vec![
        "snapshot",
        "--config",
        config.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ];
    if !extra.contains(&"--size") {
        args.extend_from_slice(&["--size", "400x600"]);
    }
    args.extend_from_slice(extra);
    let output = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
        .args(&args)
        .env("HOME", dir)
        .output()
        .expect("run desktop-mate snapshot");
    (output, out)
}

#[test]
fn snapshot_of_the_settings_panel_has_transparent_background_and_opaque_ui() {
    if !display_available() {
        eprintln!("no DISPLAY: run the tests through scripts/test.sh (Xvfb) for rendering tests");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, out) = snapshot(dir.path(), &["--settings", "--no-chat"]);
    assert!(
        output.status.success(),
        "snapshot failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let image = image::open(&out).expect("a PNG").to_rgba8();
    assert_eq!(image.dimensions(), (400, 600));
    // No avatar yet: the bottom-right corner is the clear colour, fully transparent.
    let corner = image.get_pixel(398, 598);
    assert_eq!(
        corner[3], 0,
        "background must be transparent, got {corner:?}"
    );
    // The settings window is drawn opaque in the top-left area.
    let opaque = image.pixels().filter(|p| p[3] == 255).count();
    assert!(
        opaque > 5_000,
        "the settings panel must be visible, {opaque} opaque pixels"
    );
}

#[test]
fn snapshot_without_avatar_or_panel_is_fully_transparent() {
    if !display_available() {
        eprintln!("no DISPLAY: run the tests through scripts/test.sh (Xvfb) for rendering tests");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, out) = snapshot(dir.path(), &["--no-chat"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let image = image::open(&out).expect("a PNG").to_rgba8();
    assert_eq!(image.dimensions(), (400, 600));
    let visible = image.pixels().filter(|p| p[3] != 0).count();
    assert_eq!(
        visible, 0,
        "nothing is drawn yet, so every pixel is see-through"
    );
}

#[test]
fn snapshot_with_the_overlay_shows_it_in_the_top_right_corner() {
    if !display_available() {
        eprintln!("no DISPLAY: run the tests through scripts/test.sh (Xvfb) for rendering tests");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, out) = snapshot(dir.path(), &["--overlay", "--no-chat", "--size", "800x800"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let image = image::open(&out).expect("a PNG").to_rgba8();
    let opaque_in = |x0: u32, x1: u32, y0: u32, y1: u32| {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| image.get_pixel(x, y)[3] == 255)
            .count()
    };
    assert_eq!(image.dimensions(), (800, 800));
    // The overlay is anchored top-right; the left half stays see-through.
    assert!(
        opaque_in(600, 800, 0, 200) > 20_000,
        "overlay drawn top-right"
    );
    assert_eq!(opaque_in(0, 300, 0, 800), 0, "nothing else drawn");
}

/// The proof that a long generation never stalls rendering: frames keep coming and a
/// screenshot completes while llama.cpp is busy with a reply (on 2 cores, a task pool of one
/// thread would queue the screenshot behind the generation).
#[test]
fn frames_render_and_a_screenshot_completes_while_a_reply_is_generated() {
    if !display_available() {
        eprintln!("no DISPLAY: run the tests through scripts/test.sh (Xvfb) for rendering tests");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("slow.gguf");
    // Big enough that 1500 tokens take seconds on one thread.
    support::write_llama(&model, 9, 384, 6, 2048);
    let config = dir.path().join("mascot.ron");
    std::fs::write(
        &config,
        "(llm: (n_ctx: 2048, n_threads: 1, sampling: (temperature: 0.0, max_tokens: 1500)),
          chat: (history_file: Some(\"HISTORY\")))"
            .replace(
                "HISTORY",
                &dir.path().join("history.jsonl").display().to_string(),
            ),
    )
    .expect("write settings");
    let out = dir.path().join("during.png");
    let output = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
        .args([
            "snapshot",
            "--config",
            config.to_str().expect("utf8"),
            "--model",
            model.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--size",
            "400x600",
            "--say",
            "hello",
            "--during-reply",
            "--settle-frames",
            "20",
        ])
        .env("HOME", dir.path())
        .output()
        .expect("run snapshot");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("while a reply was being generated"),
        "the screenshot must complete during the generation: {stderr}"
    );
    let image = image::open(&out).expect("a PNG").to_rgba8();
    assert_eq!(image.dimensions(), (400, 600));
    assert!(
        image.pixels().any(|p| p[3] == 255),
        "the chat panel is drawn"
    );
}

#[test]
fn snapshot_refuses_a_bad_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
        .args(["snapshot", "--out", "x.png", "--size", "12x5000"])
        .env("HOME", dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("size must be 64..8192"));
    assert!(!dir.path().join("x.png").exists());
}
