//! `desktop-mate monitor`: the overlay's process/system/GPU metrics in the terminal or a CSV.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::diagnostics::recording::{CSV_HEADER, csv_row};
use crate::diagnostics::sampler::{Sample, Sampler};
use crate::hardware::human_bytes;

#[derive(Debug, Clone, clap::Args)]
pub struct MonitorArgs {
    /// Seconds between samples.
    #[arg(long = "interval", value_name = "SECS", default_value_t = 1.0)]
    pub interval_secs: f32,
    /// Print one sample and exit.
    #[arg(long)]
    pub once: bool,
    /// One JSON object per sample on stdout (GPU fields null without NVIDIA).
    #[arg(long)]
    pub json: bool,
    /// Also write every sample to this CSV file (header + one row per sample).
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
}

pub fn run(args: MonitorArgs) -> ExitCode {
    let interval = Duration::from_secs_f32(args.interval_secs.clamp(0.1, 3600.0));
    let mut sampler = Sampler::new();
    if let Some(reason) = &sampler.gpu_unavailable_reason {
        eprintln!("GPU metrics unavailable: {reason}");
    }
    let mut csv = match &args.csv {
        None => None,
        Some(path) => match File::create(path) {
            Ok(file) => {
                let mut writer = BufWriter::new(file);
                if let Err(err) = writeln!(writer, "{CSV_HEADER}") {
                    eprintln!("error: cannot write {}: {err}", path.display());
                    return ExitCode::FAILURE;
                }
                Some(writer)
            }
            Err(err) => {
                eprintln!("error: cannot create {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        },
    };
    // CPU % is measured between two readings: take the first one now.
    sampler.sample();
    std::thread::sleep(if args.once {
        Duration::from_millis(250)
    } else {
        interval
    });
    loop {
        let sample = sampler.sample();
        if let Some(writer) = &mut csv {
            let written = writeln!(writer, "{}", csv_row(&sample)).and_then(|()| writer.flush());
            if let Err(err) = written {
                eprintln!("error: cannot write the CSV: {err}");
                return ExitCode::FAILURE;
            }
        }
        if args.json {
            match serde_json::to_string(&sample) {
                Ok(line) => println!("{line}"),
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::FAILURE;
                }
            }
        } else if csv.is_none() || args.once {
            println!("{}", text_line(&sample));
        }
        if args.once {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(interval);
    }
}

fn text_line(sample: &Sample) -> String {
    let gpu = match &sample.gpu {
        Some(gpu) => format!(
            "VRAM {} / {}  GPU {}  {}  {}",
            human_bytes(gpu.vram_used_bytes),
            human_bytes(gpu.vram_total_bytes),
            gpu.gpu_utilization_percent
                .map_or("n/a".into(), |v| format!("{v} %")),
            gpu.temperature_celsius
                .map_or("n/a".into(), |v| format!("{v} °C")),
            gpu.power_watts
                .map_or("n/a".into(), |v| format!("{v:.0} W")),
        ),
        None => "GPU n/a".into(),
    };
    format!(
        "RSS {}  CPU {:.0} %  RAM {} / {}  {gpu}",
        human_bytes(sample.rss_bytes),
        sample.process_cpu_percent,
        human_bytes(sample.ram_used_bytes),
        human_bytes(sample.ram_total_bytes),
    )
}
