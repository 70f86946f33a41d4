//! Real rendering: the mascot window under X (Xvfb + Mesa lavapipe in CI), captured with alpha.
use crate::support;

use std::path::Path;
use std::process::Command;

fn snapshot(dir: &Path, extra: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    snapshot_with(dir, "()", extra)
}

/// `desktop-mate snapshot` with these settings, one window at a time.
fn snapshot_with(
    dir: &Path,
    settings: &str,
    extra: &[&str],
) -> (std::process::Output, std::path::PathBuf) {
    let config = dir.join("mascot.ron");
    std::fs::write(&config, settings).expect("write settings");
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
    let _one_at_a_time = support::one_window_at_a_time();
    let output = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
        .args(&args)
        .env("HOME", dir)
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DESKTOP_MATE_EMBEDDING_MODEL")
        .output()
        .expect("run desktop-mate snapshot");
    (output, out)
}

#[test]
fn snapshot_of_the_settings_panel_has_transparent_background_and_opaque_ui() {
    if !support::display_available() {
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
    // The bottom-right corner is the clear colour, fully transparent.
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

/// Fully opaque pixels in a region.
fn opaque_pixels(image: &image::RgbaImage, x: (u32, u32), y: (u32, u32)) -> usize {
    (y.0..y.1)
        .flat_map(|py| (x.0..x.1).map(move |px| (px, py)))
        .filter(|&(px, py)| image.get_pixel(px, py)[3] == 255)
        .count()
}

fn rgba(path: &Path) -> image::RgbaImage {
    image::open(path).expect("a PNG").to_rgba8()
}

/// Mean absolute RGBA difference over a region.
fn mean_difference(
    a: &image::RgbaImage,
    b: &image::RgbaImage,
    x: (u32, u32),
    y: (u32, u32),
) -> f64 {
    let mut total = 0u64;
    let mut count = 0u64;
    for py in y.0..y.1 {
        for px in x.0..x.1 {
            let (p, q) = (a.get_pixel(px, py), b.get_pixel(px, py));
            total += (0..4).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
            count += 4;
        }
    }
    total as f64 / count as f64
}

/// Pixels of the region whose colour or alpha changed by more than `threshold` (0-255).
fn changed_pixels(
    a: &image::RgbaImage,
    b: &image::RgbaImage,
    x: (u32, u32),
    y: (u32, u32),
    threshold: u8,
) -> usize {
    (y.0..y.1)
        .flat_map(|py| (x.0..x.1).map(move |px| (px, py)))
        .filter(|&(px, py)| {
            let (p, q) = (a.get_pixel(px, py), b.get_pixel(px, py));
            (0..4).any(|c| p[c].abs_diff(q[c]) > threshold)
        })
        .count()
}

fn assert_avatar_shown(image: &image::RgbaImage) {
    let (w, h) = image.dimensions();
    // Alpha from the captured image itself: the corners are see-through desktop...
    for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        assert_eq!(
            image.get_pixel(x, y)[3],
            0,
            "corner ({x}, {y}) must be transparent"
        );
    }
    // ...and the avatar's body in the middle is opaque.
    for (x, y) in [(w / 2, h / 2), (w / 2, h * 3 / 10)] {
        assert_eq!(
            image.get_pixel(x, y)[3],
            255,
            "avatar pixel ({x}, {y}) must be opaque"
        );
    }
    let opaque = image.pixels().filter(|p| p[3] == 255).count();
    let share = opaque as f64 / f64::from(w * h);
    assert!(
        (0.08..0.6).contains(&share),
        "avatar covers {:.0}% of the window",
        share * 100.0
    );
}

#[test]
fn default_avatar_renders_opaque_in_the_middle_with_transparent_corners() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, out) = snapshot(dir.path(), &["--no-chat"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("avatar the default avatar ready"),
        "{stderr}"
    );
    assert!(!stderr.contains("avatar: "), "no avatar error: {stderr}");
    let image = rgba(&out);
    assert_eq!(image.dimensions(), (400, 600));
    assert_avatar_shown(&image);
}

#[test]
fn joy_differs_from_neutral_in_the_face_and_nowhere_else() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (first, neutral) = snapshot(dir.path(), &["--no-chat", "--expression", "neutral=1"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let neutral_path = dir.path().join("neutral.png");
    std::fs::rename(&neutral, &neutral_path).expect("keep the first shot");
    let (second, joy) = snapshot(dir.path(), &["--no-chat", "--expression", "joy=1"]);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let (neutral, joy) = (rgba(&neutral_path), rgba(&joy));
    // The default avatar's face is in the upper third of the window; its legs at the bottom.
    let face = mean_difference(&neutral, &joy, (120, 280), (90, 240));
    assert!(
        face > 2.0,
        "joy must change the face: mean difference {face:.2}"
    );
    // Two snapshots of the same pose are not bit-identical on lavapipe: a few dozen edge
    // pixels flip anti-aliasing (measured: ~20 pixels of the 72,000 below, some by 100+
    // levels), so count clearly changed pixels instead of averaging. Any real change of the
    // body (a pose, a morph) moves thousands.
    let legs = changed_pixels(&neutral, &joy, (0, 400), (420, 600), 32);
    assert!(
        legs < 150,
        "nothing but the face changes: {legs} pixels of the legs changed"
    );
}

#[test]
fn godette_loads_fully_and_renders() {
    if !support::display_available() {
        return;
    }
    let Some(godette) = support::shared_file("avatars/Godette_vrm_v4.vrm") else {
        eprintln!("../shared/avatars/Godette_vrm_v4.vrm not here");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let godette = godette.to_str().expect("utf8");
    let (output, out) = snapshot(dir.path(), &["--no-chat", "--avatar", godette]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The VRM extension parsed (it fails without the look-at normalization) and the rig has
    // its 17 blend-shape groups.
    assert!(stderr.contains("12 numbers -> 8"), "{stderr}");
    assert!(
        !stderr.contains("Failed to parse VRM extension"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ready: VRM 0.x, 17 expressions"),
        "{stderr}"
    );
    // Humanoid bones, spring bones and MToon all come from the VRM extension.
    assert!(
        stderr.contains("45 humanoid bones, 3 spring-bone chains, 2 MToon meshes"),
        "{stderr}"
    );
    assert_avatar_shown(&rgba(&out));
}

/// Corners see-through and at least `min_share` of the window opaque.
fn assert_corners_clear_and_opaque_share(image: &image::RgbaImage, min_share: f64) {
    let (w, h) = image.dimensions();
    for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        assert_eq!(image.get_pixel(x, y)[3], 0, "corner ({x}, {y}) transparent");
    }
    let opaque = image.pixels().filter(|p| p[3] == 255).count();
    let share = opaque as f64 / f64::from(w * h);
    assert!(
        (min_share..0.9).contains(&share),
        "avatar covers {:.1}% of the window",
        share * 100.0
    );
}

/// `snapshot --avatar <shared avatar>` with these extra arguments; `None` without ../shared.
fn shared_avatar_snapshot(
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> Option<(String, image::RgbaImage)> {
    let path = support::shared_file(&format!("avatars/{name}")).or_else(|| {
        eprintln!("../shared/avatars/{name} not here");
        None
    })?;
    let path = path.to_str().expect("utf8");
    let mut args = vec!["--no-chat", "--avatar", path];
    args.extend_from_slice(extra);
    let (output, out) = snapshot(dir, &args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("avatar: "), "no fallback: {stderr}");
    let image = rgba(&out);
    std::fs::remove_file(out).expect("remove");
    Some((stderr, image))
}

#[test]
fn a_vrm1_avatar_loads_renders_and_joy_changes_its_face() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let name = "blender_expression_migration_vrm1.vrm";
    let Some((stderr, neutral)) = shared_avatar_snapshot(dir.path(), name, &[]) else {
        return;
    };
    assert!(
        stderr.contains(
            "ready: VRM 1.0, 24 expressions, 2 morph meshes, 15 humanoid bones, \
             0 spring-bone chains, 0 MToon meshes"
        ),
        "{stderr}"
    );
    assert_corners_clear_and_opaque_share(&neutral, 0.2);
    let (w, h) = neutral.dimensions();
    assert_eq!(neutral.get_pixel(w / 2, h * 3 / 10)[3], 255, "avatar pixel");
    // `happy` moves one morph target of the upper triangle by half.
    let Some((_, joy)) = shared_avatar_snapshot(dir.path(), name, &["--expression", "joy=1"])
    else {
        return;
    };
    let upper = mean_difference(&neutral, &joy, (0, w), (0, h / 2));
    assert!(upper > 2.0, "joy must change the shape: {upper:.2}");
}

#[test]
fn a_vrm1_mtoon_avatar_renders_with_transparent_corners() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let name = "VRMC_materials_mtoon_UV_Animation_Test.vrm";
    let Some((stderr, image)) = shared_avatar_snapshot(dir.path(), name, &[]) else {
        return;
    };
    assert!(
        stderr.contains("ready: VRM 1.0, 0 expressions") && stderr.contains("3 MToon meshes"),
        "{stderr}"
    );
    assert_corners_clear_and_opaque_share(&image, 0.1);
}

/// Pixels of the isBinary sample's validation plane (600x600 window): green checks when the
/// expression values are right, red crosses when wrong.
fn validation_colours(image: &image::RgbaImage) -> (usize, usize) {
    let (mut green, mut red) = (0, 0);
    for y in 40..430 {
        for x in 145..535 {
            let [r, g, b, a] = image.get_pixel(x, y).0;
            let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
            if a < 255 {
                continue;
            }
            if g > r + 30 && g > b + 30 {
                green += 1;
            }
            if r > g + 60 && r > b + 60 {
                red += 1;
            }
        }
    }
    (green, red)
}

#[test]
fn the_is_binary_sample_shows_green_checks_with_joy_and_with_joy_over_blink() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let name = "VRMC_vrm_expressions_isBinary_Overridden.vrm";
    // joy=1 alone; joy=1 with blink=1 (happy's overrideBlink blend hides the binary blink);
    // joy=0.4 with blink=1 (blink attenuated below 1, so the binary blink is hidden too).
    for weights in [
        &["--expression", "joy=1"][..],
        &["--expression", "joy=1", "--expression", "blink=1"],
        &["--expression", "joy=0.4", "--expression", "blink=1"],
    ] {
        let mut extra = vec!["--size", "600x600"];
        extra.extend_from_slice(weights);
        let Some((_, image)) = shared_avatar_snapshot(dir.path(), name, &extra) else {
            return;
        };
        let (green, red) = validation_colours(&image);
        assert!(
            green > 50_000,
            "{weights:?}: the plane is green ({green} px)"
        );
        assert_eq!(red, 0, "{weights:?}: no red region");
    }
}

/// Broken or unsafe avatar files, each with a word of the reason the fallback line must give.
fn broken_avatars(dir: &Path) -> Vec<(std::path::PathBuf, &'static str)> {
    use desktop_mate::avatar::default_avatar::DEFAULT_AVATAR;
    use desktop_mate::avatar::vrm_file::{Glb, read_glb, write_glb};
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let glb =
        |name: &str, json: serde_json::Value| write(name, &write_glb(&Glb { json, bin: None }));
    // The built-in mascot with one edit, so everything else about the file is valid.
    let edited = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut file = read_glb(DEFAULT_AVATAR).expect("default avatar");
        edit(&mut file.json);
        write(name, &write_glb(&file))
    };
    let vrm1 = |extra: serde_json::Value| {
        let mut json = serde_json::json!({"asset": {"version": "2.0"},
            "extensions": {"VRMC_vrm": {"specVersion": "1.0"}}});
        if let (Some(json), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
            json.extend(extra.clone());
        }
        json
    };
    let mesh = serde_json::json!({"meshes": [{"primitives": []}], "nodes": [{"mesh": 0}]});
    let with_uri = |uri: &str| {
        let mut json = vrm1(mesh.clone());
        json["buffers"] = serde_json::json!([{"uri": uri, "byteLength": 16}]);
        json
    };
    vec![
        (
            write("truncated.vrm", &DEFAULT_AVATAR[..DEFAULT_AVATAR.len() / 2]),
            "truncated",
        ),
        (write("empty.vrm", b""), "not a VRM/GLB file"),
        (
            glb(
                "plain.glb",
                serde_json::json!({"asset": {"version": "2.0"}}),
            ),
            "no VRM extension",
        ),
        (
            glb(
                "future.vrm",
                serde_json::json!({"extensions": {"VRMC_vrm": {"specVersion": "2.0"}}}),
            ),
            "specVersion \"2.0\" is not supported",
        ),
        (
            glb("relative.vrm", with_uri("../../etc/passwd")),
            "buffer 0 points outside the avatar file (../../etc/passwd)",
        ),
        (
            glb("file-uri.vrm", with_uri("file:///etc/passwd")),
            "points outside the avatar file (file:///etc/passwd)",
        ),
        (
            edited("device.vrm", &|json| {
                json["images"] = serde_json::json!([{"uri": "/dev/zero"}]);
            }),
            "image 0 points outside the avatar file (/dev/zero)",
        ),
        (
            glb("no-mesh.vrm", vrm1(serde_json::json!({}))),
            "no mesh to show",
        ),
        (
            edited("draco.vrm", &|json| {
                json["extensionsRequired"] = serde_json::json!(["KHR_draco_mesh_compression"]);
            }),
            "KHR_draco_mesh_compression",
        ),
        (dir.join("missing.vrm"), "file not found"),
    ]
}

#[test]
fn broken_avatars_fall_back_to_the_default_with_the_reason_on_stderr() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, reason) in broken_avatars(dir.path()) {
        let path = file.to_str().expect("utf8");
        let started = std::time::Instant::now();
        let (output, out) = snapshot(dir.path(), &["--no-chat", "--avatar", path]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{path}: {stderr}");
        assert!(!stderr.contains("panicked"), "{path}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("avatar: "))
            .unwrap_or_else(|| panic!("no avatar line for {path}: {stderr}"));
        assert!(line.contains(path) && line.contains(reason), "{line}");
        assert!(line.contains("showing the default avatar"), "{line}");
        // Refused at once, not after the snapshot's wait for an avatar that never shows.
        let took = started.elapsed();
        assert!(took.as_secs() < 30, "{path} took {took:?}");
        assert_avatar_shown(&rgba(&out));
        std::fs::remove_file(out).expect("remove");
    }
}

#[test]
fn snapshot_with_the_overlay_shows_it_in_the_top_right_corner() {
    if !support::display_available() {
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
    let opaque_in = |x0, x1, y0, y1| opaque_pixels(&image, (x0, x1), (y0, y1));
    assert_eq!(image.dimensions(), (800, 800));
    // The overlay is anchored top-right, over the avatar in the middle; the bottom-left
    // corner stays see-through.
    assert!(
        opaque_in(600, 800, 0, 200) > 20_000,
        "overlay drawn top-right"
    );
    assert!(opaque_in(350, 450, 350, 450) > 5_000, "the avatar is drawn");
    // The overlay growing as its values arrive is not a move: the file is not rewritten.
    let settings = std::fs::read_to_string(dir.path().join("mascot.ron")).expect("settings");
    assert_eq!(settings, "()");
    assert_eq!(opaque_in(0, 150, 650, 800), 0, "nothing in the corner");
}

/// The proof that a long generation never stalls rendering: frames keep coming and a
/// screenshot completes while llama.cpp is busy with a reply (on 2 cores, a task pool of one
/// thread would queue the screenshot behind the generation).
#[test]
fn frames_render_and_a_screenshot_completes_while_a_reply_is_generated() {
    if !support::display_available() {
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
                &support::ron_path(&dir.path().join("history.jsonl")),
            ),
    )
    .expect("write settings");
    let out = dir.path().join("during.png");
    let _one_at_a_time = support::one_window_at_a_time();
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

#[test]
fn the_overlay_opens_where_it_was_last_dragged() {
    if !support::display_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, out) = snapshot_with(
        dir.path(),
        "(diagnostics: (overlay_visible: true, overlay_position: Some((10.0, 420.0))))",
        &["--size", "800x800", "--no-chat"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let image = rgba(&out);
    let opaque_in = |x0, x1, y0, y1| opaque_pixels(&image, (x0, x1), (y0, y1));
    assert!(
        opaque_in(10, 210, 420, 620) > 20_000,
        "overlay at its saved place"
    );
    assert_eq!(
        opaque_in(600, 800, 0, 200),
        0,
        "not in the top-right corner"
    );
}

/// The Memory panel (F5) lists what is remembered: with three memories written by the
/// terminal's `memory add` (the same file the chat writes), the panel is taller by their
/// rows than over an empty memory, and the window around it stays transparent.
#[test]
fn the_memory_panel_lists_the_memories_of_the_file() {
    if !support::display_available() {
        return;
    }
    let panel_height = |dir: &Path| {
        let (output, out) = snapshot_with(
            dir,
            "()",
            &["--memory-panel", "--no-chat", "--size", "440x600"],
        );
        assert!(
            output.status.success(),
            "snapshot failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let image = rgba(&out);
        assert_eq!(image.get_pixel(438, 598)[3], 0, "transparent around it");
        // Rows of the panel's left column (x 12..40: inside the panel, left of the avatar).
        (0..600)
            .filter(|&y| opaque_pixels(&image, (12, 40), (y, y + 1)) > 20)
            .count()
    };
    let empty = tempfile::tempdir().expect("temp dir");
    let without = panel_height(empty.path());
    let full = tempfile::tempdir().expect("temp dir");
    std::fs::write(full.path().join("mascot.ron"), "()").expect("settings");
    for said in [
        "The user said: I have a cat called Miso",
        "The user said: I work nights at a bakery",
        "The user said: my name is Léa",
    ] {
        let added = std::process::Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
            .args(["memory", "--config"])
            .arg(full.path().join("mascot.ron"))
            .args(["add", said])
            .env("HOME", full.path())
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("DESKTOP_MATE_EMBEDDING_MODEL")
            .output()
            .expect("run memory add");
        assert!(added.status.success(), "{added:?}");
    }
    let with = panel_height(full.path());
    eprintln!("memory panel: {without} px tall empty, {with} px with three memories");
    assert!(
        with >= without + 3 * 14,
        "three rows more: {without} px tall empty, {with} px with three memories"
    );
}
