//! A snapshot of the machine: CPU, RAM and the NVIDIA GPU (through NVML, loaded at run time,
//! so the app runs the same on machines without the NVIDIA driver).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuInfo {
    pub model: String,
    pub physical_cores: usize,
    pub logical_cores: usize,
    /// Threads this process may use (cgroup/affinity limits included).
    pub available_parallelism: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuInfo {
    pub name: String,
    pub vram_total_bytes: u64,
    pub vram_free_bytes: u64,
    pub driver_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HardwareReport {
    pub cpu: CpuInfo,
    pub memory: MemoryInfo,
    /// `None` without an NVIDIA GPU or driver.
    pub gpu: Option<GpuInfo>,
    /// Why `gpu` is `None` (NVML's own words).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_unavailable_reason: Option<String>,
}

impl HardwareReport {
    /// Reads the machine now (takes a few milliseconds: call it off the frame loop).
    pub fn probe() -> Self {
        let system = sysinfo::System::new().map(|mut system| {
            system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
            system.refresh_memory();
            system
        });
        let system = match system {
            Ok(system) => Some(system),
            Err(err) => {
                tracing::warn!("cannot read CPU and memory information: {err}");
                None
            }
        };
        let logical_cores = system.as_ref().map_or(0, |s| s.cpus().len()).max(1);
        let available_parallelism = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(logical_cores);
        let cpu = CpuInfo {
            model: system
                .as_ref()
                .and_then(|s| s.cpus().first())
                .map(|c| c.brand().trim().to_owned())
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "unknown CPU".into()),
            physical_cores: sysinfo::System::physical_core_count().unwrap_or(logical_cores),
            logical_cores,
            available_parallelism,
        };
        let memory = MemoryInfo {
            total_bytes: system.as_ref().map_or(0, |s| s.total_memory()),
            available_bytes: system.as_ref().map_or(0, |s| s.available_memory()),
        };
        let (gpu, gpu_unavailable_reason) = match probe_nvidia() {
            Ok(gpu) => (Some(gpu), None),
            Err(reason) => (None, Some(reason)),
        };
        Self {
            cpu,
            memory,
            gpu,
            gpu_unavailable_reason,
        }
    }
}

fn probe_nvidia() -> Result<GpuInfo, String> {
    let nvml = nvml_wrapper::Nvml::init().map_err(|e| format!("no NVIDIA GPU ({e})"))?;
    let device = nvml
        .device_by_index(0)
        .map_err(|e| format!("no NVIDIA GPU ({e})"))?;
    let memory = device
        .memory_info()
        .map_err(|e| format!("NVIDIA GPU found but its memory is unreadable ({e})"))?;
    Ok(GpuInfo {
        name: device.name().unwrap_or_else(|_| "NVIDIA GPU".into()),
        vram_total_bytes: memory.total,
        vram_free_bytes: memory.free,
        driver_version: nvml.sys_driver_version().ok(),
    })
}

/// `1536 MiB`, `7.8 GiB`: sizes in the units people read.
pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}
