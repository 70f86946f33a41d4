//! Samples process, system and NVIDIA GPU metrics. Reading sysinfo and NVML can take
//! milliseconds, so the app samples on its own thread and the frame loop only reads the
//! latest sample.

use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuSample {
    pub name: String,
    pub vram_used_bytes: u64,
    pub vram_total_bytes: u64,
    /// This process's VRAM, where the driver reports it (not under Windows WDDM).
    pub process_vram_bytes: Option<u64>,
    pub gpu_utilization_percent: Option<u32>,
    pub memory_utilization_percent: Option<u32>,
    pub temperature_celsius: Option<u32>,
    /// Some cards do not report power.
    pub power_watts: Option<f64>,
    pub graphics_clock_mhz: Option<u32>,
}

/// One reading of everything; GPU fields are `None` without an NVIDIA GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub rss_bytes: u64,
    /// Of one core: 200 % = two cores busy.
    pub process_cpu_percent: f32,
    pub ram_used_bytes: u64,
    pub ram_total_bytes: u64,
    pub gpu: Option<GpuSample>,
}

pub struct Sampler {
    system: Option<System>,
    pid: Option<Pid>,
    nvml: Option<Nvml>,
    /// Why there are no GPU metrics (said once, at start).
    pub gpu_unavailable_reason: Option<String>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        let (nvml, gpu_unavailable_reason) = match Nvml::init() {
            Ok(nvml) if nvml.device_count().is_ok_and(|n| n > 0) => (Some(nvml), None),
            Ok(_) => (
                None,
                Some("no NVIDIA GPU (the driver lists none)".to_owned()),
            ),
            Err(err) => (None, Some(format!("no NVIDIA GPU ({err})"))),
        };
        Self {
            system: System::new().ok(),
            pid: sysinfo::get_current_pid().ok(),
            nvml,
            gpu_unavailable_reason,
        }
    }

    pub fn sample(&mut self) -> Sample {
        let (mut rss_bytes, mut process_cpu_percent) = (0, 0.0);
        let (mut ram_used_bytes, mut ram_total_bytes) = (0, 0);
        if let Some(system) = &mut self.system {
            system.refresh_memory();
            ram_used_bytes = system.used_memory();
            ram_total_bytes = system.total_memory();
            if let Some(pid) = self.pid {
                system.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    true,
                    ProcessRefreshKind::nothing().with_memory().with_cpu(),
                );
                if let Some(process) = system.process(pid) {
                    rss_bytes = process.memory();
                    process_cpu_percent = process.cpu_usage();
                }
            }
        }
        let pid = self.pid.map(|p| p.as_u32());
        Sample {
            timestamp_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            rss_bytes,
            process_cpu_percent,
            ram_used_bytes,
            ram_total_bytes,
            gpu: self.nvml.as_ref().and_then(|nvml| sample_gpu(nvml, pid)),
        }
    }
}

fn sample_gpu(nvml: &Nvml, pid: Option<u32>) -> Option<GpuSample> {
    let device = nvml.device_by_index(0).ok()?;
    let memory = device.memory_info().ok()?;
    let utilization = device.utilization_rates().ok();
    let process_vram_bytes = pid.and_then(|pid| {
        let mut processes = device.running_compute_processes().unwrap_or_default();
        processes.extend(device.running_graphics_processes().unwrap_or_default());
        processes
            .into_iter()
            .filter(|p| p.pid == pid)
            .map(|p| match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes),
                UsedGpuMemory::Unavailable => None,
            })
            .reduce(|a, b| Some(a.unwrap_or(0) + b.unwrap_or(0)))
            .flatten()
    });
    Some(GpuSample {
        name: device.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
        vram_used_bytes: memory.used,
        vram_total_bytes: memory.total,
        process_vram_bytes,
        gpu_utilization_percent: utilization.as_ref().map(|u| u.gpu),
        memory_utilization_percent: utilization.map(|u| u.memory),
        temperature_celsius: device.temperature(TemperatureSensor::Gpu).ok(),
        power_watts: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        graphics_clock_mhz: device.clock_info(Clock::Graphics).ok(),
    })
}

/// Why there are no GPU metrics, known once the sampler thread has started.
pub type GpuUnavailableReason = Arc<OnceLock<Option<String>>>;

/// Samples every `interval` on a thread of its own until the receiver is dropped. NVML is
/// initialised on that thread too (it can take a while), never on the caller's.
pub fn spawn_sampler(interval: Duration) -> (Receiver<Sample>, GpuUnavailableReason) {
    let reason: GpuUnavailableReason = Arc::default();
    let (sender, receiver): (Sender<Sample>, Receiver<Sample>) = bounded(16);
    let thread_reason = Arc::clone(&reason);
    let spawned = thread::Builder::new()
        .name("metrics sampler".into())
        .spawn(move || {
            let mut sampler = Sampler::new();
            if let Some(reason) = &sampler.gpu_unavailable_reason {
                // Said once; every GPU metric then shows n/a.
                tracing::info!("GPU metrics unavailable: {reason}");
            }
            let _ = thread_reason.set(sampler.gpu_unavailable_reason.clone());
            loop {
                // A full channel means the app is not reading: skip, don't block.
                if let Err(crossbeam_channel::TrySendError::Disconnected(_)) =
                    sender.try_send(sampler.sample())
                {
                    return;
                }
                thread::sleep(interval);
            }
        });
    if let Err(err) = spawned {
        tracing::warn!("no live metrics: cannot start the sampler thread: {err}");
    }
    (receiver, reason)
}
