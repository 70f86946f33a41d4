//! DiagnosticsPlugin in a headless app, and the `monitor` command, on this real machine.

use std::time::Duration;

use bevy::diagnostic::DiagnosticsStore;
use bevy::prelude::*;
use desktop_mate::avatar::AvatarDiagnostics;
use desktop_mate::config::{self, Overrides};
use desktop_mate::diagnostics::{DiagnosticsOverlay, LatestSample, SystemDiagnostics};
use desktop_mate::llm::LlmDiagnostics;

fn headless() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    std::fs::write(&path, "(diagnostics: (sample_interval_secs: 0.1))").expect("write");
    let mut loaded = config::load_with(Some(&path), None, Overrides::default());
    loaded.settings.chat.history_file = Some(dir.path().join("history.jsonl"));
    (desktop_mate::headless_app(loaded), dir)
}

fn vm_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn every_metric_is_registered_and_rss_matches_the_kernel() {
    let (mut app, _dir) = headless();
    crate::support::update_until(&mut app, Duration::from_secs(10), |world| {
        world
            .resource::<DiagnosticsStore>()
            .get(&SystemDiagnostics::RSS)
            .and_then(|d| d.value())
            .is_some()
    });
    let store = app.world().resource::<DiagnosticsStore>();
    let every = SystemDiagnostics::ALL
        .into_iter()
        .chain(LlmDiagnostics::ALL)
        .chain(AvatarDiagnostics::ALL);
    for (path, unit) in every {
        let diagnostic = store.get(&path);
        assert!(diagnostic.is_some(), "{path} is registered");
        assert_eq!(diagnostic.map(|d| d.suffix.as_ref()), Some(unit), "{path}");
    }
    let rss_mib = store
        .get(&SystemDiagnostics::RSS)
        .and_then(|d| d.value())
        .expect("an RSS sample within 10 s");
    let kernel_mib = vm_rss_bytes().expect("/proc/self/status") as f64 / (1024.0 * 1024.0);
    assert!(rss_mib > 0.0);
    assert!(
        (rss_mib - kernel_mib).abs() <= kernel_mib * 0.10,
        "RSS {rss_mib:.1} MiB vs VmRSS {kernel_mib:.1} MiB"
    );
    let latest = app.world().resource::<LatestSample>();
    let sample = latest.sample.as_ref().expect("sample");
    assert!(sample.ram_total_bytes > sample.ram_used_bytes);
    if sample.gpu.is_none() {
        // No NVIDIA GPU: every GPU metric is n/a (no value), with one reason, and no error.
        assert!(latest.gpu_unavailable_reason.is_some());
        for path in SystemDiagnostics::GPU {
            assert!(store.get(&path).and_then(|d| d.value()).is_none(), "{path}");
        }
    }
}

#[test]
fn the_overlay_key_toggles_the_overlay() {
    let (mut app, _dir) = headless();
    app.init_resource::<ButtonInput<KeyCode>>();
    app.update();
    assert!(!app.world().resource::<DiagnosticsOverlay>().visible);
    for expected in [true, false] {
        app.world_mut()
            .resource_mut::<ButtonInput<KeyCode>>()
            .press(KeyCode::F3);
        app.update();
        assert_eq!(
            app.world().resource::<DiagnosticsOverlay>().visible,
            expected
        );
        let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
        keys.release(KeyCode::F3);
        keys.clear();
        app.update();
    }
}

#[test]
fn recording_writes_a_header_and_a_row_per_sample() {
    let (mut app, dir) = headless();
    let csv = dir.path().join("rec").join("samples.csv");
    app.world_mut()
        .write_message(desktop_mate::diagnostics::ToggleRecording {
            path: Some(csv.clone()),
        });
    crate::support::update_until(&mut app, Duration::from_secs(10), |world| {
        world
            .resource::<desktop_mate::diagnostics::DiagnosticsRecorder>()
            .rows
            >= 3
    });
    let recorder = app
        .world()
        .resource::<desktop_mate::diagnostics::DiagnosticsRecorder>();
    assert!(recorder.is_recording());
    assert!(recorder.rows >= 3, "{} rows", recorder.rows);
    let text = std::fs::read_to_string(&csv).expect("csv");
    let mut lines = text.lines();
    let expected_header = format!(
        "{},fps,decode_tps",
        desktop_mate::diagnostics::recording::CSV_HEADER
    );
    assert_eq!(lines.next(), Some(expected_header.as_str()));
    let stamps: Vec<u64> = lines
        .map(|l| l.split(',').next().expect("field").parse().expect("number"))
        .collect();
    assert!(stamps.len() >= 3);
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    // The plots' history follows the samples too.
    let history = app
        .world()
        .resource::<desktop_mate::diagnostics::MetricHistory>();
    assert!(history.get("RSS").expect("RSS is plotted").len() >= 3);
    // Toggling again stops.
    app.world_mut()
        .write_message(desktop_mate::diagnostics::ToggleRecording::default());
    app.update();
    assert!(
        !app.world()
            .resource::<desktop_mate::diagnostics::DiagnosticsRecorder>()
            .is_recording()
    );
}

fn desktop_mate() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
}

#[test]
fn monitor_once_prints_one_json_sample() {
    let output = desktop_mate()
        .args(["monitor", "--once", "--json"])
        .output()
        .expect("run monitor");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let sample: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(sample["rss_bytes"].as_u64().expect("rss") > 0);
    assert!(sample["ram_total_bytes"].as_u64().expect("ram") > 0);
    assert!(
        sample.get("gpu").is_some(),
        "gpu key present (null without NVIDIA)"
    );
}

#[test]
fn monitor_records_a_csv_row_per_sample_with_increasing_timestamps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("samples.csv");
    let mut child = desktop_mate()
        .args([
            "monitor",
            "--interval",
            "0.1",
            "--csv",
            csv.to_str().expect("utf8"),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start monitor");
    // Header and three rows written (or ten seconds).
    let rows = || std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count());
    crate::support::wait_for(Duration::from_secs(10), || rows() >= 4);
    child.kill().expect("stop monitor");
    let _ = child.wait();
    let text = std::fs::read_to_string(&csv).expect("csv written");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(desktop_mate::diagnostics::recording::CSV_HEADER)
    );
    let timestamps: Vec<u64> = lines
        .map(|l| {
            l.split(',')
                .next()
                .expect("field")
                .parse()
                .expect("timestamp")
        })
        .collect();
    assert!(timestamps.len() >= 3, "{} rows", timestamps.len());
    assert!(timestamps.windows(2).all(|w| w[0] < w[1]), "{timestamps:?}");
}
