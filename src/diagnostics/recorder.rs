//! Recording samples to CSV while the app runs (the overlay's Record button, or
//! `run --record-diagnostics FILE.csv`), and the last minute of values for the overlay's plots.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use bevy::diagnostic::{DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy::prelude::*;

use super::metrics::{LatestSample, MascotDiagnostics};
use super::recording::{APP_CSV_HEADER, app_csv_row};
use crate::AppSystems;
use crate::config::{Settings, user_data_dir};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<DiagnosticsRecorder>()
        .init_resource::<MetricHistory>()
        .add_message::<ToggleRecording>();
    app.add_systems(
        Update,
        (toggle_recording, record_new_sample)
            .chain()
            .after(AppSystems::ReadChannels)
            .before(AppSystems::Update),
    );
}

/// Start or stop recording (to `path`, else `diagnostics.recording_path`, else a timestamped
/// file in the user's data folder).
#[derive(Message, Debug, Clone, Default)]
pub struct ToggleRecording {
    pub path: Option<PathBuf>,
}

#[derive(Resource, Default)]
pub struct DiagnosticsRecorder {
    writer: Option<BufWriter<File>>,
    pub path: Option<PathBuf>,
    pub rows: usize,
    pub error: Option<String>,
    last_timestamp: u64,
}

impl DiagnosticsRecorder {
    pub fn is_recording(&self) -> bool {
        self.writer.is_some()
    }
}

/// About a minute of values (one per sample) for the overlay's plots.
#[derive(Resource, Debug, Default)]
pub struct MetricHistory {
    pub fps: VecDeque<f64>,
    pub rss_mib: VecDeque<f64>,
    pub vram_percent: VecDeque<f64>,
    pub gpu_percent: VecDeque<f64>,
    pub decode_tps: VecDeque<f64>,
}

const HISTORY_LEN: usize = 60;

fn push(series: &mut VecDeque<f64>, value: Option<f64>) {
    if let Some(value) = value {
        series.push_back(value);
        while series.len() > HISTORY_LEN {
            series.pop_front();
        }
    }
}

fn toggle_recording(
    mut requests: MessageReader<ToggleRecording>,
    mut recorder: ResMut<DiagnosticsRecorder>,
    settings: Res<Settings>,
) {
    for request in requests.read() {
        if let Some(mut writer) = recorder.writer.take() {
            let _ = writer.flush();
            info!("stopped recording diagnostics ({} rows)", recorder.rows);
            continue;
        }
        let path = request
            .path
            .clone()
            .or_else(|| settings.diagnostics.recording_path.clone())
            .or_else(|| {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                user_data_dir().map(|d| d.join(format!("diagnostics-{stamp}.csv")))
            });
        let Some(path) = path else {
            recorder.error = Some("no folder to record to: set diagnostics.recording_path".into());
            continue;
        };
        let opened = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::create(&path))
            .and_then(|file| {
                let mut writer = BufWriter::new(file);
                writeln!(writer, "{APP_CSV_HEADER}")?;
                writer.flush()?;
                Ok(writer)
            });
        match opened {
            Ok(writer) => {
                info!("recording diagnostics to {}", path.display());
                recorder.writer = Some(writer);
                recorder.path = Some(path);
                recorder.rows = 0;
                recorder.error = None;
            }
            Err(err) => {
                let message = format!("cannot record to {}: {err}", path.display());
                warn!("{message}");
                recorder.error = Some(message);
            }
        }
    }
}

fn record_new_sample(
    latest: Res<LatestSample>,
    store: Res<DiagnosticsStore>,
    mut recorder: ResMut<DiagnosticsRecorder>,
    mut history: ResMut<MetricHistory>,
) {
    let Some(sample) = &latest.sample else { return };
    if sample.timestamp_ms == recorder.last_timestamp {
        return;
    }
    recorder.last_timestamp = sample.timestamp_ms;
    let value =
        |path: &bevy::diagnostic::DiagnosticPath| store.get(path).and_then(|d| d.smoothed());
    push(&mut history.fps, value(&FrameTimeDiagnosticsPlugin::FPS));
    push(&mut history.rss_mib, value(&MascotDiagnostics::RSS));
    push(
        &mut history.vram_percent,
        sample
            .gpu
            .as_ref()
            .map(|g| 100.0 * g.vram_used_bytes as f64 / g.vram_total_bytes.max(1) as f64),
    );
    push(
        &mut history.gpu_percent,
        sample
            .gpu
            .as_ref()
            .and_then(|g| g.gpu_utilization_percent)
            .map(f64::from),
    );
    push(
        &mut history.decode_tps,
        value(&MascotDiagnostics::DECODE_TPS),
    );

    let row = app_csv_row(
        sample,
        value(&FrameTimeDiagnosticsPlugin::FPS),
        value(&MascotDiagnostics::DECODE_TPS),
    );
    let recorder = &mut *recorder;
    if let Some(writer) = &mut recorder.writer {
        match writeln!(writer, "{row}").and_then(|()| writer.flush()) {
            Ok(()) => recorder.rows += 1,
            Err(err) => {
                recorder.error = Some(format!("recording stopped: {err}"));
                recorder.writer = None;
            }
        }
    }
}
