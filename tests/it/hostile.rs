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

/// The process-level suite's limits: no hostile input may keep the binary longer or make it
/// use more memory.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
const LIMIT_RSS_KIB: i64 = 1 << 20;

/// Runs the real binary on one hostile input of `class` within [`LIMIT`] (killed past it),
/// checks its peak RSS (Linux: the child's own, from `wait4`) against [`LIMIT_RSS_KIB`] and
/// that it exited cleanly, and records a row of the suite's table (stderr, and
/// `hostile-suite.tsv` in the test's temporary folder; docs/hardening.md shows one run).
fn measured(class: &str, case: &str, args: &[&str], home: &Path, env: &[(&str, &str)]) -> Output {
    let start = std::time::Instant::now();
    let (output, rss_kib) = run_limited(crate::cli::command(args, home, env));
    let secs = start.elapsed().as_secs_f64();
    let what = format!("{class}: {case}");
    assert_clean_exit(&what, &output);
    let outcome = match output.status.code() {
        Some(0) => "runs (fallback or refusal shown)".to_owned(),
        Some(code) => format!("clear error (exit {code})"),
        None => "killed".to_owned(),
    };
    let row = format!(
        "{class}\t{case}\t{outcome}\t{}\t{secs:.2}\n",
        rss_kib / 1024
    );
    eprint!("hostile-suite: {row}");
    let table = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-suite.tsv");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(table)
    {
        let _ = std::io::Write::write_all(&mut file, row.as_bytes());
    }
    assert!(secs < LIMIT.as_secs_f64(), "{what}: ran {secs:.1} s");
    assert!(
        rss_kib < LIMIT_RSS_KIB,
        "{what}: peak RSS {} MiB",
        rss_kib / 1024
    );
    output
}

/// The command's output and its peak RSS in KiB; killed past [`LIMIT`].
#[cfg(target_os = "linux")]
// The child is reaped by `wait4` (for its rusage), not by std's `wait`.
#[allow(unsafe_code, clippy::zombie_processes)]
fn run_limited(mut command: std::process::Command) -> (Output, i64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run desktop-mate");
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let pid = child.id() as libc::pid_t;
    let start = std::time::Instant::now();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet waited for (std's `Child` is never waited
        // on here); the pointers are to live locals.
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            break;
        }
        assert!(done == 0, "wait4 failed");
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            // SAFETY: as above; blocking until the killed child is reaped.
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    (output, usage.ru_maxrss)
}

#[cfg(not(target_os = "linux"))]
fn run_limited(mut command: std::process::Command) -> (Output, i64) {
    (command.output().expect("run desktop-mate"), 0)
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
        let chat = measured(
            "GGUF metadata llama.cpp aborts on",
            what,
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
            &[],
        );
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

/// Settings and state files from strangers (or a wrong `--config`): `check` reads them as the
/// mascot does at start. A device or a huge file is refused before it is read; deep nesting,
/// junk and out-of-range values end in a message, never a crash.
#[test]
fn settings_and_state_files_end_cleanly() {
    let home = tempfile::tempdir().expect("temp dir");
    let dir = home.path();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf8").to_owned()
    };
    let deep = format!("(window: {}", "(".repeat(100_000));
    let huge = "// padding\n".repeat(1 << 20);
    let junk: String = (0..200_000u32)
        .map(|i| char::from_u32(0x20 + (i * 7919) % 0x5f).unwrap_or(' '))
        .collect();
    let settings_cases: Vec<(&str, String, bool)> = vec![
        ("a device (/dev/zero)", "/dev/zero".to_owned(), false),
        ("a folder", dir.to_str().expect("utf8").to_owned(), false),
        ("nested 100 000 deep", write("deep.ron", &deep), false),
        ("12 MiB of comments", write("huge.ron", &huge), false),
        ("200 kB of junk", write("junk.ron", &junk), false),
        (
            "numbers out of every range",
            write(
                "ranges.ron",
                "(window: (scale: 1e308, fps_cap: 4294967295), llm: (n_ctx: 4294967295, max_tokens: 0))",
            ),
            false,
        ),
    ];
    for (case, config, _) in &settings_cases {
        let check = measured(
            "settings file",
            case,
            &["check", "--config", config],
            dir,
            &[],
        );
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert_eq!(check.status.code(), Some(2), "{case}: refused\n{stderr}");
        assert!(stderr.contains("error:"), "{case}: says why\n{stderr}");
    }
    // state.ron beside a good settings file: values out of range are dropped, the rest kept.
    let states = [
        (
            "window scale infinite",
            "(window_scale: Some(inf), avatar: Some(\"kept.vrm\"))",
        ),
        (
            "window scale 1e30",
            "(window_scale: Some(1e30), avatar: Some(\"kept.vrm\"))",
        ),
        (
            "a place a billion pixels away",
            "(window_position: Some((2000000000, -2000000000)), avatar: Some(\"kept.vrm\"))",
        ),
        ("12 MiB of comments", huge.as_str()),
        ("nested 100 000 deep", deep.as_str()),
    ];
    let config = write("mascot.ron", "()");
    for (case, text) in states {
        std::fs::write(dir.join(desktop_mate::config::STATE_FILE_NAME), text).expect("write");
        let check = measured(
            "state.ron",
            case,
            &["check", "--json", "--config", &config],
            dir,
            &[],
        );
        assert!(
            check.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        if text.contains("kept.vrm") {
            let report = String::from_utf8_lossy(&check.stdout);
            assert!(
                report.contains("kept.vrm"),
                "{case}: the rest is kept: {report}"
            );
        }
    }
}

/// Avatar files from strangers, as the mascot loads them (`snapshot`): a device, a folder, a
/// file above the size limit, a `data:` uri bevy_gltf would panic on, JSON nested past the
/// parser's limit. The window shows the built-in mascot and says why.
#[cfg(target_os = "linux")]
#[test]
fn avatar_files_end_cleanly() {
    use desktop_mate::avatar::default_avatar::DEFAULT_AVATAR;
    use desktop_mate::avatar::vrm_file::{read_glb, write_glb};

    use crate::support::{display_available, one_window_at_a_time};

    if !display_available() {
        crate::support::missing("display", "the hostile avatar files");
        return;
    }
    let home = tempfile::tempdir().expect("temp dir");
    let dir = home.path();
    let path_of = |name: &str| dir.join(name).to_str().expect("utf8").to_owned();
    // 300 MiB, sparse: above the 256 MiB an avatar may have.
    let huge = std::fs::File::create(dir.join("huge.vrm")).expect("create");
    huge.set_len(300 << 20).expect("sparse file");
    let mut glb = read_glb(DEFAULT_AVATAR).expect("the built-in avatar");
    glb.json["images"] = serde_json::json!([{"uri": "data:image/png;base64,%FF%FE"}]);
    std::fs::write(dir.join("data-uri.vrm"), write_glb(&glb)).expect("write");
    let mut nested = serde_json::json!(1);
    for _ in 0..1000 {
        nested = serde_json::json!([nested]);
    }
    let mut deep = read_glb(DEFAULT_AVATAR).expect("the built-in avatar");
    deep.json["extras"] = nested;
    std::fs::write(dir.join("deep.vrm"), write_glb(&deep)).expect("write");
    // An image that claims 65 535 x 65 535 pixels (16 GiB decoded).
    let mut big = read_glb(DEFAULT_AVATAR).expect("the built-in avatar");
    let png = png_header(65_535, 65_535);
    let bin = big.bin.get_or_insert_with(Vec::new);
    let offset = bin.len();
    bin.extend_from_slice(&png);
    let views = big.json["bufferViews"]
        .as_array_mut()
        .expect("buffer views");
    views.push(serde_json::json!({"buffer": 0, "byteOffset": offset, "byteLength": png.len()}));
    let view = views.len() - 1;
    big.json["buffers"][0]["byteLength"] = serde_json::json!(big.bin.as_ref().map_or(0, Vec::len));
    big.json["images"] = serde_json::json!([{"bufferView": view, "mimeType": "image/png"}]);
    std::fs::write(dir.join("big-texture.vrm"), write_glb(&big)).expect("write");
    let cases = [
        (
            "a 65 535 x 65 535 texture",
            path_of("big-texture.vrm"),
            "textures up to",
        ),
        (
            "a device (/dev/zero)",
            "/dev/zero".to_owned(),
            "not a regular file",
        ),
        ("a folder", path_of(""), "not a regular file"),
        ("300 MiB", path_of("huge.vrm"), "more than the 256 MiB"),
        (
            "a data: uri with invalid percent-encoding",
            path_of("data-uri.vrm"),
            "data: uri",
        ),
        (
            "JSON nested 1000 deep",
            path_of("deep.vrm"),
            "recursion limit",
        ),
    ];
    let config = config_in(dir);
    let out = path_of("shot.png");
    let _one_at_a_time = one_window_at_a_time();
    for (case, avatar, why) in cases {
        let shot = measured(
            "avatar file",
            case,
            &[
                "--config", &config, "--avatar", &avatar, "snapshot", "--size", "300x400", "--out",
                &out,
            ],
            dir,
            &[],
        );
        let stderr = String::from_utf8_lossy(&shot.stderr);
        assert!(
            shot.status.success(),
            "{case}: the built-in mascot is shown\n{stderr}"
        );
        assert!(
            stderr.contains("avatar: ") && stderr.contains(why),
            "{case}: says why ({why})\n{stderr}"
        );
    }
}

/// "Loaded" means "visible": an avatar that loads but draws nothing (every material fully
/// transparent; every mesh scaled to nothing, as some exporters' broken files are) is replaced
/// by the default avatar with the reason, not an empty window; a sound file says nothing.
#[test]
fn avatars_that_draw_nothing_are_replaced_with_the_reason() {
    use desktop_mate::avatar::vrm_file::{read_glb, write_glb};

    use crate::support::{display_available, one_window_at_a_time, shared_file};

    if !display_available() {
        return;
    }
    let (Some(vrm1), Some(vrm0)) = (
        shared_file("avatars/blender_expression_migration_vrm1.vrm"),
        shared_file("avatars/blender_modifier_shapekey_vrm0.vrm"),
    ) else {
        return;
    };
    let home = tempfile::tempdir().expect("temp dir");
    let dir = home.path();
    let write = |name: &str, source: &Path, change: &dyn Fn(&mut serde_json::Value)| {
        let mut glb = read_glb(&std::fs::read(source).expect("read")).expect("a GLB");
        change(&mut glb.json);
        let path = dir.join(name);
        std::fs::write(&path, write_glb(&glb)).expect("write");
        path.to_str().expect("utf8").to_owned()
    };
    let transparent = write("transparent.vrm", &vrm1, &|json| {
        for material in json["materials"].as_array_mut().expect("materials") {
            material["alphaMode"] = "BLEND".into();
            material["pbrMetallicRoughness"]["baseColorFactor"] = serde_json::json!([1, 1, 1, 0]);
        }
    });
    let no_size = write("no-size.vrm", &vrm0, &|json| {
        for node in json["nodes"].as_array_mut().expect("nodes") {
            if node.get("mesh").is_some() {
                node["scale"] = serde_json::json!([0, 0, 0]);
            }
        }
    });
    let sound = vrm1.to_str().expect("utf8").to_owned();
    let config = config_in(dir);
    let out = dir.join("shot.png");
    let _one_at_a_time = one_window_at_a_time();
    for (case, avatar, replaced) in [
        ("transparent materials (VRM 1.0)", &transparent, true),
        ("meshes scaled to nothing (VRM 0.x)", &no_size, true),
        ("the same VRM 1.0 file untouched", &sound, false),
    ] {
        let shot = measured(
            "avatar file",
            case,
            &[
                "--config",
                &config,
                "--avatar",
                avatar,
                "snapshot",
                "--no-chat",
                "--size",
                "300x400",
                "--out",
                out.to_str().expect("utf8"),
            ],
            dir,
            &[],
        );
        let stderr = String::from_utf8_lossy(&shot.stderr);
        assert!(shot.status.success(), "{case}: {stderr}");
        assert_eq!(
            stderr.contains("loaded but draws nothing in the window"),
            replaced,
            "{case}: says so exactly when nothing is drawn\n{stderr}"
        );
        let image = image::open(&out).expect("a PNG").to_rgba8();
        // Below the notice at the top.
        let drawn = image
            .enumerate_pixels()
            .filter(|(_, y, p)| *y >= 200 && p[3] >= 32)
            .count();
        assert!(
            drawn > 3_000,
            "{case}: an avatar is visible ({drawn} pixels drawn in the lower half)"
        );
    }
}

/// The start of a PNG of `width` x `height`: signature, header chunk (with its CRC) and an
/// empty data chunk, all a decoder reads to know the size.
#[cfg(target_os = "linux")]
fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&[8, 6, 0, 0, 0]);
    let crc = crc32(&bytes[12..]);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes.extend_from_slice(b"\0\0\0\0IDAT");
    bytes.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
    bytes
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
            let output = measured(
                "chat templates",
                &format!("{what} ({run} run)"),
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
                &[],
            );
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

#[test]
fn motion_clips_end_cleanly() {
    use desktop_mate::avatar::vrm_file::{read_glb, write_glb};
    use desktop_mate::motion::builtin::BUILTIN;

    use crate::support::{display_available, one_window_at_a_time};

    if !display_available() {
        return;
    }
    let home = tempfile::tempdir().expect("temp dir");
    let dir = home.path();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path.to_str().expect("utf8").to_owned()
    };
    let clip = BUILTIN[0].bytes;
    let glb = read_glb(clip).expect("a built-in clip");
    let patched = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut glb = glb.clone();
        edit(&mut glb.json);
        write_glb(&glb)
    };
    let mut nested = serde_json::json!(1);
    for _ in 0..1000 {
        nested = serde_json::json!([nested]);
    }
    let huge = std::fs::File::create(dir.join("huge.vrma")).expect("create");
    huge.set_len(100 << 20).expect("sparse file");
    let cases: Vec<(&str, String)> = vec![
        (
            "truncated",
            write("truncated.vrma", &clip[..clip.len() / 2]),
        ),
        (
            "100 MiB (sparse)",
            dir.join("huge.vrma").display().to_string(),
        ),
        (
            "a key count of 4 billion",
            write(
                "count.vrma",
                &patched(&|j| j["accessors"][1]["count"] = serde_json::json!(4_000_000_000u64)),
            ),
        ),
        (
            "an external buffer",
            write(
                "uri.vrma",
                &patched(&|j| j["buffers"][0]["uri"] = serde_json::json!("file:///etc/passwd")),
            ),
        ),
        (
            "nodes that loop",
            write(
                "loop.vrma",
                &patched(&|j| j["nodes"][1]["children"] = serde_json::json!([0])),
            ),
        ),
        (
            "JSON nested 1000 deep",
            write("deep.vrma", &patched(&|j| j["extras"] = nested.clone())),
        ),
        (
            "a plain glTF animation",
            write(
                "plain.vrma",
                &patched(&|j| j["extensions"] = serde_json::json!({})),
            ),
        ),
    ];
    for (case, path) in &cases {
        let out = dir.join("shot.png");
        let _one_at_a_time = one_window_at_a_time();
        let output = measured(
            "motion clip",
            case,
            &[
                "snapshot",
                "--out",
                out.to_str().expect("utf8"),
                "--motion",
                path,
            ],
            dir,
            &[],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{case}: refused\n{stderr}");
        assert!(
            stderr.contains("error:") && stderr.contains(".vrma"),
            "{case}: says which file and why\n{stderr}"
        );
    }
}
