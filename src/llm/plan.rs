//! How a model will be loaded: the profile actually used, GPU layers and threads, with the
//! reason in words. Pure function of settings, hardware and the model header.

use std::path::Path;

use serde::Serialize;

use crate::config::{LlmSettings, LoadedSettings, Profile, Settings, Threads};
use crate::hardware::{GpuInfo, HardwareReport, human_bytes};
use crate::llm::load::BackendConfig;
use crate::llm::openai::{OpenAiSettings, ServerError};
use crate::llm::runtime::engine::EngineSettings;
use crate::llm::runtime::model_info::{ModelInfo, ModelInfoError, read_model_info};

/// What the GPU keeps free for the desktop, the KV cache and compute buffers.
pub const VRAM_SAFETY_MARGIN_BYTES: u64 = 1024 * 1024 * 1024;
/// `n_gpu_layers` that offloads every layer, whatever the model (llama.cpp's `-ngl 999`).
pub const ALL_LAYERS: u32 = 999;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadPlan {
    /// The profile in force (never `auto`).
    pub profile: Profile,
    pub n_gpu_layers: u32,
    pub n_threads: u16,
    /// Threads for prompt processing.
    pub n_threads_batch: u16,
    pub reason: String,
}

/// What else runs beside llama.cpp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A terminal command: llama.cpp may use every physical core.
    Terminal,
    /// The mascot: Bevy's main, render and task threads need a core too.
    WithWindow,
}

/// Thread count for llama.cpp: physical cores (one fewer beside the window), never above what
/// this process may use. llama.cpp's threads spin-wait for each other: with one more busy
/// thread than free cores a reply runs about 100x slower (measured on 2 cores: 40 tok/s
/// instead of 5000 tok/s for stories260K), so `auto` leaves the window a core.
pub fn resolve_threads(setting: Threads, hardware: &HardwareReport, workload: Workload) -> u16 {
    let cap = hardware.cpu.available_parallelism.max(1);
    let n = match (setting, workload) {
        (Threads::Auto, Workload::Terminal) => hardware.cpu.physical_cores.clamp(1, cap),
        (Threads::Auto, Workload::WithWindow) => hardware
            .cpu
            .physical_cores
            .min(cap)
            .saturating_sub(1)
            .max(1),
        (Threads::Count(n), _) => usize::from(n).max(1),
    };
    u16::try_from(n).unwrap_or(u16::MAX)
}

pub fn plan(
    llm: &LlmSettings,
    hardware: &HardwareReport,
    model: Option<&ModelInfo>,
    workload: Workload,
) -> LoadPlan {
    // The GPU llama.cpp will use is the one its GPU module found (CUDA, or Vulkan on any
    // vendor): its free memory sizes `auto`, with NVML's view as the fallback.
    let report = crate::llm::runtime::backends::ensure_loaded().ok();
    let device = report.and_then(|r| r.gpu());
    let mut hardware = hardware.clone();
    if let Some(device) = device {
        // Free memory now, not when the module loaded (a game may have started since).
        let (free, total) = crate::llm::runtime::backends::gpu_memory_now()
            .unwrap_or((device.memory_free_bytes, device.memory_total_bytes));
        hardware.gpu = Some(GpuInfo {
            name: device.description.clone(),
            vram_total_bytes: total,
            vram_free_bytes: free,
            driver_version: hardware.gpu.as_ref().and_then(|g| g.driver_version.clone()),
        });
    } else if let Some(report) = report {
        hardware.gpu_unavailable_reason = Some(match &hardware.gpu_unavailable_reason {
            Some(nvml) => format!("{nvml}; llama.cpp: {}", report.gpu_reason),
            None => format!("llama.cpp: {}", report.gpu_reason),
        });
    }
    plan_with_backend(llm, &hardware, model, workload, device.is_some())
}

/// [`plan`] with the GPU backend availability given (tests cover both builds).
pub fn plan_with_backend(
    llm: &LlmSettings,
    hardware: &HardwareReport,
    model: Option<&ModelInfo>,
    workload: Workload,
    gpu_backend: bool,
) -> LoadPlan {
    let n_threads = resolve_threads(llm.n_threads, hardware, workload);
    let n_threads_batch = resolve_threads(llm.n_threads_batch, hardware, workload);
    let cpu = |reason: String| LoadPlan {
        profile: Profile::CpuFallback,
        n_gpu_layers: 0,
        n_threads,
        n_threads_batch,
        reason,
    };
    if llm.profile == Profile::CpuFallback {
        return cpu("profile cpu_fallback: every layer on the CPU".into());
    }
    if !gpu_backend {
        return cpu(match &hardware.gpu {
            Some(gpu) => format!(
                "{} found, but llama.cpp has no GPU module for it (libggml-cuda or -vulkan next \
                 to the executable; see `desktop-mate check`): CPU only",
                gpu.name
            ),
            None => format!(
                "{}, so no GPU module: CPU only",
                hardware
                    .gpu_unavailable_reason
                    .as_deref()
                    .unwrap_or("no NVIDIA GPU")
            ),
        });
    }
    if let Some(layers) = llm.n_gpu_layers {
        let profile = if layers == 0 {
            Profile::CpuFallback
        } else {
            llm.profile
        };
        return LoadPlan {
            profile: if profile == Profile::Auto {
                Profile::Balanced
            } else {
                profile
            },
            n_gpu_layers: layers,
            n_threads,
            n_threads_batch,
            reason: format!("n_gpu_layers = {layers} set in settings"),
        };
    }
    let gpu = hardware.gpu.as_ref();
    match llm.profile {
        Profile::Performance => LoadPlan {
            profile: Profile::Performance,
            n_gpu_layers: ALL_LAYERS,
            n_threads,
            n_threads_batch,
            reason: "profile performance: every layer on the GPU".into(),
        },
        Profile::Balanced => {
            let layers = model.map_or(ALL_LAYERS / 2, |m| m.n_layers.div_ceil(2));
            LoadPlan {
                profile: Profile::Balanced,
                n_gpu_layers: layers,
                n_threads,
                n_threads_batch,
                reason: format!(
                    "profile balanced: {layers} layers on the GPU, the rest on the CPU"
                ),
            }
        }
        Profile::Auto | Profile::CpuFallback => match (gpu, model) {
            (None, _) => cpu(format!(
                "auto: {}: CPU only",
                hardware
                    .gpu_unavailable_reason
                    .as_deref()
                    .unwrap_or("no NVIDIA GPU")
            )),
            (Some(_), None) => cpu("auto: no model set, nothing to size GPU layers from".into()),
            (Some(gpu), Some(model)) => auto_layers(gpu, model, n_threads, n_threads_batch),
        },
    }
}

fn auto_layers(gpu: &GpuInfo, model: &ModelInfo, n_threads: u16, n_threads_batch: u16) -> LoadPlan {
    // Output and embedding tensors count as about one extra layer.
    let blocks = u64::from(model.n_layers) + 1;
    let per_layer = (model.file_size_bytes / blocks).max(1);
    let margin = VRAM_SAFETY_MARGIN_BYTES.max(gpu.vram_total_bytes / 10);
    let usable = gpu.vram_free_bytes.saturating_sub(margin);
    let fitting = usable / per_layer;
    let free = human_bytes(gpu.vram_free_bytes);
    let size = human_bytes(model.file_size_bytes);
    let margin = human_bytes(margin);
    if fitting >= blocks {
        LoadPlan {
            profile: Profile::Performance,
            n_gpu_layers: ALL_LAYERS,
            n_threads,
            n_threads_batch,
            reason: format!(
                "auto: the {size} model fits in {free} free VRAM on {} (margin {margin}): all layers on the GPU",
                gpu.name
            ),
        }
    } else if fitting == 0 {
        LoadPlan {
            profile: Profile::CpuFallback,
            n_gpu_layers: 0,
            n_threads,
            n_threads_batch,
            reason: format!(
                "auto: {free} free VRAM on {} leaves no room for a layer of the {size} model (margin {margin}): CPU only",
                gpu.name
            ),
        }
    } else {
        let layers = u32::try_from(fitting).unwrap_or(model.n_layers);
        LoadPlan {
            profile: Profile::Balanced,
            n_gpu_layers: layers,
            n_threads,
            n_threads_batch,
            reason: format!(
                "auto: {layers} of {} layers fit in {free} free VRAM on {} (margin {margin})",
                model.n_layers, gpu.name
            ),
        }
    }
}

/// RAM kept free for the system, the window and llama.cpp's own buffers.
pub const RAM_SAFETY_MARGIN_BYTES: u64 = 512 * 1024 * 1024;

/// Whether the part of the model kept on the CPU fits in RAM: an error when it cannot fit
/// even in all of the machine's memory, a warning when it exceeds what is available now
/// (other programs would be pushed to swap), `None` when it fits.
pub fn check_ram(
    info: &ModelInfo,
    plan: &LoadPlan,
    hardware: &HardwareReport,
) -> Result<Option<String>, String> {
    let blocks = u64::from(info.n_layers) + 1;
    let on_gpu = u64::from(plan.n_gpu_layers).min(blocks);
    let on_cpu =
        u128::from(info.file_size_bytes) * u128::from(blocks - on_gpu) / u128::from(blocks);
    let needed = u64::try_from(on_cpu)
        .unwrap_or(u64::MAX)
        .saturating_add(RAM_SAFETY_MARGIN_BYTES);
    let memory = &hardware.memory;
    let where_ = if on_gpu > 0 {
        "for its layers on the CPU"
    } else {
        ""
    };
    if needed > memory.total_bytes {
        return Err(format!(
            "{} needs about {} of RAM{}{where_}, but this machine has {} in total: choose a \
             smaller model or quantization (e.g. Q4_K_M), or put layers on the GPU",
            info.path.display(),
            human_bytes(needed),
            if where_.is_empty() { "" } else { " " },
            human_bytes(memory.total_bytes)
        ));
    }
    if needed > memory.available_bytes {
        return Ok(Some(format!(
            "{} needs about {} of RAM but only {} is available: other programs will be \
             pushed to swap and loading will be slow",
            info.path.display(),
            human_bytes(needed),
            human_bytes(memory.available_bytes)
        )));
    }
    Ok(None)
}

/// Why a model cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Model(#[from] ModelInfoError),
    #[error("{0}")]
    TooBigForRam(String),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// What a command or the app needs to load the model the settings name.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub backend: BackendConfig,
    /// For the local backend: the model's header, the hardware and the plan.
    pub local: Option<LocalModel>,
}

/// The local model's part of [`ResolvedModel`].
#[derive(Debug, Clone)]
pub struct LocalModel {
    pub info: ModelInfo,
    pub hardware: HardwareReport,
    pub plan: LoadPlan,
}

/// Said when a model is needed and none is set.
pub const NO_MODEL: &str = "no model set: pass --model PATH or set llm.model_path in the settings";

/// How the engine is loaded: the settings with what the plan decided (threads, GPU layers).
pub fn engine_settings(model_path: &Path, llm: &LlmSettings, plan: &LoadPlan) -> EngineSettings {
    EngineSettings {
        model_path: model_path.to_owned(),
        n_gpu_layers: plan.n_gpu_layers,
        n_ctx: llm.n_ctx,
        n_batch: llm.n_batch.min(llm.n_ctx),
        n_threads: plan.n_threads,
        n_threads_batch: plan.n_threads_batch,
        use_mmap: llm.use_mmap,
        use_mlock: llm.use_mlock,
    }
}

/// For `llm.backend: OpenAi(..)`, the server's settings (its API key read from the environment
/// now); else the local model: reads its header, probes the hardware and plans the load.
/// `None` without a model.
pub fn resolve_model(
    settings: &Settings,
    workload: Workload,
) -> Result<Option<ResolvedModel>, ResolveError> {
    if let Some(server) = OpenAiSettings::from_backend(&settings.llm.backend)? {
        return Ok(Some(ResolvedModel {
            backend: BackendConfig::OpenAi(server),
            local: None,
        }));
    }
    let Some(path) = &settings.llm.model_path else {
        return Ok(None);
    };
    let info = read_model_info(path)?;
    let hardware = HardwareReport::probe();
    let plan = plan(&settings.llm, &hardware, Some(&info), workload);
    match check_ram(&info, &plan, &hardware) {
        Err(too_big) => return Err(ResolveError::TooBigForRam(too_big)),
        Ok(Some(warning)) => tracing::warn!("{warning}"),
        Ok(None) => {}
    }
    let engine = engine_settings(path, &settings.llm, &plan);
    Ok(Some(ResolvedModel {
        backend: BackendConfig::Local(engine),
        local: Some(LocalModel {
            info,
            hardware,
            plan,
        }),
    }))
}

/// For terminal commands: valid settings and a usable model, or the message to print.
pub fn terminal_model(loaded: &LoadedSettings) -> Result<ResolvedModel, String> {
    if let Some(error) = &loaded.error {
        return Err(error.to_string());
    }
    // The model the app would load: `--model`, else the one downloaded in the app, else the
    // setting.
    let mut settings = loaded.settings.clone();
    settings.llm.model_path = loaded.state.model(&loaded.settings);
    resolve_model(&settings, Workload::Terminal)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| NO_MODEL.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{CpuInfo, MemoryInfo};

    const GIB: u64 = 1024 * 1024 * 1024;

    fn machine(physical: usize, usable: usize, gpu_free_gib: Option<u64>) -> HardwareReport {
        HardwareReport {
            cpu: CpuInfo {
                model: "test CPU".into(),
                physical_cores: physical,
                logical_cores: physical * 2,
                available_parallelism: usable,
            },
            memory: MemoryInfo {
                total_bytes: 16 * GIB,
                available_bytes: 8 * GIB,
            },
            gpu: gpu_free_gib.map(|free| GpuInfo {
                name: "Test RTX".into(),
                vram_total_bytes: 8 * GIB,
                vram_free_bytes: free * GIB,
                driver_version: None,
            }),
            gpu_unavailable_reason: gpu_free_gib
                .is_none()
                .then(|| "no NVIDIA GPU (NVML library not found)".into()),
        }
    }

    #[test]
    fn ram_check_counts_only_the_layers_left_on_the_cpu() {
        let hardware = machine(8, 8, Some(8)); // 16 GiB RAM, 8 GiB available
        let cpu_plan = |layers: u32| LoadPlan {
            profile: Profile::Balanced,
            n_gpu_layers: layers,
            n_threads: 4,
            n_threads_batch: 4,
            reason: String::new(),
        };
        let big = model(20, 31);
        let err = check_ram(&big, &cpu_plan(0), &hardware).expect_err("20 GiB on 16 GiB");
        assert!(
            err.contains("20.5 GiB") && err.contains("16.0 GiB in total"),
            "{err}"
        );
        assert_eq!(check_ram(&big, &cpu_plan(ALL_LAYERS), &hardware), Ok(None));
        let warning = check_ram(&model(10, 31), &cpu_plan(0), &hardware)
            .expect("fits in total")
            .expect("but not in what is available");
        assert!(warning.contains("only 8.0 GiB is available"), "{warning}");
        assert_eq!(check_ram(&model(4, 31), &cpu_plan(0), &hardware), Ok(None));
    }

    fn model(size_gib: u64, layers: u32) -> ModelInfo {
        ModelInfo {
            path: "m.gguf".into(),
            file_size_bytes: size_gib * GIB,
            architecture: "llama".into(),
            n_layers: layers,
        }
    }

    #[test]
    fn auto_threads_are_physical_cores_capped_by_parallelism() {
        let terminal = Workload::Terminal;
        assert_eq!(
            resolve_threads(Threads::Auto, &machine(8, 16, None), terminal),
            8
        );
        assert_eq!(
            resolve_threads(Threads::Auto, &machine(8, 2, None), terminal),
            2
        );
        assert_eq!(
            resolve_threads(Threads::Count(3), &machine(8, 16, None), terminal),
            3
        );
        // Beside the window, one core is left for rendering, but never zero threads.
        let window = Workload::WithWindow;
        assert_eq!(
            resolve_threads(Threads::Auto, &machine(8, 16, None), window),
            7
        );
        assert_eq!(
            resolve_threads(Threads::Auto, &machine(2, 2, None), window),
            1
        );
        assert_eq!(
            resolve_threads(Threads::Auto, &machine(1, 1, None), window),
            1
        );
        assert_eq!(
            resolve_threads(Threads::Count(2), &machine(2, 2, None), window),
            2
        );
    }

    #[test]
    fn no_gpu_means_cpu_with_the_nvml_reason() {
        let plan = plan_with_backend(
            &LlmSettings::default(),
            &machine(2, 2, None),
            Some(&model(4, 32)),
            Workload::Terminal,
            true,
        );
        assert_eq!(plan.profile, Profile::CpuFallback);
        assert_eq!(plan.n_gpu_layers, 0);
        assert_eq!(plan.n_threads, 2);
        assert!(plan.reason.contains("no NVIDIA GPU"), "{}", plan.reason);
    }

    #[test]
    fn auto_puts_everything_on_a_gpu_with_room() {
        let plan = plan_with_backend(
            &LlmSettings::default(),
            &machine(8, 16, Some(7)),
            Some(&model(4, 32)),
            Workload::Terminal,
            true,
        );
        assert_eq!(plan.profile, Profile::Performance);
        assert_eq!(plan.n_gpu_layers, ALL_LAYERS);
    }

    #[test]
    fn auto_splits_layers_when_vram_is_short() {
        // 3 GiB free - 1 GiB margin = 2 GiB for a 4 GiB model of 32 (+1) layers of 124 MiB.
        let plan = plan_with_backend(
            &LlmSettings::default(),
            &machine(8, 16, Some(3)),
            Some(&model(4, 32)),
            Workload::Terminal,
            true,
        );
        assert_eq!(plan.profile, Profile::Balanced);
        assert_eq!(plan.n_gpu_layers, 16);
        assert!(plan.reason.contains("16 of 32 layers"), "{}", plan.reason);
    }

    #[test]
    fn auto_uses_the_cpu_when_not_even_one_layer_fits() {
        let plan = plan_with_backend(
            &LlmSettings::default(),
            &machine(8, 16, Some(1)),
            Some(&model(4, 32)),
            Workload::Terminal,
            true,
        );
        assert_eq!(plan.profile, Profile::CpuFallback);
        assert_eq!(plan.n_gpu_layers, 0);
    }

    #[test]
    fn explicit_layers_and_profiles_win_over_auto() {
        let mut llm = LlmSettings {
            n_gpu_layers: Some(12),
            ..LlmSettings::default()
        };
        let hw = machine(8, 16, Some(7));
        assert_eq!(
            plan_with_backend(&llm, &hw, None, Workload::Terminal, true).n_gpu_layers,
            12
        );
        llm.n_gpu_layers = None;
        llm.profile = Profile::Balanced;
        assert_eq!(
            plan_with_backend(&llm, &hw, Some(&model(4, 32)), Workload::Terminal, true)
                .n_gpu_layers,
            16
        );
        llm.profile = Profile::CpuFallback;
        assert_eq!(
            plan_with_backend(&llm, &hw, None, Workload::Terminal, true).n_gpu_layers,
            0
        );
    }

    #[test]
    fn a_cpu_only_build_never_plans_gpu_layers() {
        let llm = LlmSettings {
            profile: Profile::Performance,
            ..LlmSettings::default()
        };
        let plan = plan_with_backend(
            &llm,
            &machine(8, 16, Some(7)),
            None,
            Workload::Terminal,
            false,
        );
        assert_eq!(plan.n_gpu_layers, 0);
        assert!(plan.reason.contains("no GPU module"), "{}", plan.reason);
    }
}
