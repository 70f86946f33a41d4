//! Recording samples to CSV while the app runs (the overlay's Record button, or
//! `run --record-diagnostics FILE.csv`), and the last minute of values for the overlay's plots.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use bevy::diagnostic::{DiagnosticPath, DiagnosticsStore};
use bevy::prelude::*;

use super::metrics::LatestSample;
use super::recording::{app_csv_header, app_csv_row};
use super::registry::{OverlayRow, OverlayRows, RowValue};
use crate::AppSystems;
use crate::config::{Settings, user_data_dir};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<DiagnosticsRecorder>()
        .init_resource::<MetricHistory>()
        .init_resource::<OverlayRows>()
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

/// About a minute of values (one per sample) for the overlay's plots, by row label.
#[derive(Resource, Debug, Default)]
pub struct MetricHistory {
    pub series: Vec<(&'static str, VecDeque<f64>)>,
}

impl MetricHistory {
    pub fn get(&self, label: &str) -> Option<&VecDeque<f64>> {
        self.series
            .iter()
            .find_map(|(l, series)| (*l == label).then_some(series))
    }
}

/// A row's number now: its value, or for a share, the used part in percent.
pub fn row_number(store: &DiagnosticsStore, row: &OverlayRow) -> Option<f64> {
    let value = |path: &DiagnosticPath| store.get(path).and_then(|d| d.smoothed());
    match &row.value {
        RowValue::Metric { path, .. } => value(path),
        RowValue::Share { used, total, .. } => value(used)
            .zip(value(total))
            .map(|(u, t)| 100.0 * u / t.max(f64::MIN_POSITIVE)),
        RowValue::Text => None,
    }
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
    rows: Res<OverlayRows>,
) {
    let columns: Vec<&str> = rows.iter().filter_map(|row| row.csv).collect();
    let header = app_csv_header(&columns);
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
                writeln!(writer, "{header}")?;
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
    rows: Res<OverlayRows>,
    mut recorder: ResMut<DiagnosticsRecorder>,
    mut history: ResMut<MetricHistory>,
) {
    let Some(sample) = &latest.sample else { return };
    if sample.timestamp_ms == recorder.last_timestamp {
        return;
    }
    recorder.last_timestamp = sample.timestamp_ms;
    for row in rows.iter().filter(|row| row.plot.is_some()) {
        let number = row_number(&store, row);
        match history.series.iter_mut().find(|(l, _)| *l == row.label) {
            Some((_, series)) => push(series, number),
            None => {
                let mut series = VecDeque::new();
                push(&mut series, number);
                history.series.push((row.label, series));
            }
        }
    }

    let extra: Vec<Option<f64>> = rows
        .iter()
        .filter(|row| row.csv.is_some())
        .map(|row| row_number(&store, row))
        .collect();
    let row = app_csv_row(sample, &extra);
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
