//! Samples as CSV rows, for `monitor --csv` (and the overlay's recording).

use std::fmt::Write as _;

use super::sampler::Sample;

pub const CSV_HEADER: &str = "timestamp_ms,rss_mib,process_cpu_percent,ram_used_mib,ram_total_mib,vram_used_mib,vram_total_mib,process_vram_mib,gpu_utilization_percent,gpu_memory_utilization_percent,gpu_temperature_c,gpu_power_w,gpu_clock_mhz";

/// The app's recording adds what only the window has: the overlay rows that name a CSV column
/// (frame rate, the last reply's speed).
pub fn app_csv_header(columns: &[&str]) -> String {
    let mut header = CSV_HEADER.to_owned();
    for column in columns {
        header.push(',');
        header.push_str(column);
    }
    header
}

const MIB: f64 = 1024.0 * 1024.0;

/// One row; values a machine does not have are empty.
pub fn csv_row(sample: &Sample) -> String {
    let mut row = format!(
        "{},{:.1},{:.1},{:.1},{:.1}",
        sample.timestamp_ms,
        sample.rss_bytes as f64 / MIB,
        sample.process_cpu_percent,
        sample.ram_used_bytes as f64 / MIB,
        sample.ram_total_bytes as f64 / MIB,
    );
    let gpu = sample.gpu.as_ref();
    let fields: [Option<String>; 8] = [
        gpu.map(|g| format!("{:.1}", g.vram_used_bytes as f64 / MIB)),
        gpu.map(|g| format!("{:.1}", g.vram_total_bytes as f64 / MIB)),
        gpu.and_then(|g| g.process_vram_bytes)
            .map(|b| format!("{:.1}", b as f64 / MIB)),
        gpu.and_then(|g| g.gpu_utilization_percent)
            .map(|v| v.to_string()),
        gpu.and_then(|g| g.memory_utilization_percent)
            .map(|v| v.to_string()),
        gpu.and_then(|g| g.temperature_celsius)
            .map(|v| v.to_string()),
        gpu.and_then(|g| g.power_watts).map(|v| format!("{v:.1}")),
        gpu.and_then(|g| g.graphics_clock_mhz)
            .map(|v| v.to_string()),
    ];
    for field in fields {
        let _ = write!(row, ",{}", field.unwrap_or_default());
    }
    row
}

/// One row of the app's recording: the sample's fields, then the extra columns' values.
pub fn app_csv_row(sample: &Sample, extra: &[Option<f64>]) -> String {
    let mut row = csv_row(sample);
    for value in extra {
        row.push(',');
        if let Some(value) = value {
            let _ = write!(row, "{value:.1}");
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_one_field_per_header_column_and_empty_gpu_fields_without_gpu() {
        let sample = Sample {
            timestamp_ms: 1_700_000_000_000,
            rss_bytes: 100 * 1024 * 1024,
            process_cpu_percent: 12.5,
            ram_used_bytes: 1024 * 1024 * 1024,
            ram_total_bytes: 4 * 1024 * 1024 * 1024,
            gpu: None,
        };
        let row = csv_row(&sample);
        assert_eq!(row.split(',').count(), CSV_HEADER.split(',').count());
        assert_eq!(row, "1700000000000,100.0,12.5,1024.0,4096.0,,,,,,,,");
        let app_header = app_csv_header(&["fps", "decode_tps"]);
        assert_eq!(app_header, format!("{CSV_HEADER},fps,decode_tps"));
        let app_row = app_csv_row(&sample, &[Some(29.96), None]);
        assert_eq!(app_row.split(',').count(), app_header.split(',').count());
        assert!(app_row.ends_with(",30.0,"), "{app_row}");
    }
}
