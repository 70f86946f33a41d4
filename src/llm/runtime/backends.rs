//! llama.cpp's compute backends, chosen at run time (ggml's `GGML_BACKEND_DL`).
//!
//! The build ships ggml's CPU code once per SIMD level as loadable modules
//! (`libggml-cpu-x64.so` .. `libggml-cpu-sapphirerapids.so`, `ggml-cpu-*.dll` on Windows) and may
//! ship GPU modules (`libggml-cuda.so`, `libggml-vulkan.so`). Before the first model loads we
//! pick the fastest CPU module this CPU *and its operating system* can run, and at most one GPU
//! module that finds a device.
//!
//! Why not ggml's own `ggml_backend_load_all`: its CPU score reads CPUID only ("FIXME: this does
//! not check for OS support"). A VM may advertise AMX or AVX-512 that its kernel never enables,
//! and the best-scoring module then dies with SIGILL on the first Q4/Q8 matrix product. We ask
//! ggml for each module's score (the same function ggml calls) and veto any module whose score
//! says it uses state the OS does not grant ([`OsGrants`]), with a log line, then load the
//! survivor with `ggml_backend_load`.
//!
//! Overrides (environment, read once per process): `DESKTOP_MATE_BACKENDS_DIR` (the modules'
//! folder; default: next to the executable), `DESKTOP_MATE_CPU_VARIANT` (e.g. `sse42` for an old
//! CPU path, `haswell` for x86-64-v3), `DESKTOP_MATE_GPU_BACKEND` (`auto`, `cuda`, `vulkan`,
//! `none`).
#![allow(unsafe_code)] // dlopen and ggml's C registry; each block says why it is sound.

use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde::Serialize;

pub const ENV_DIR: &str = "DESKTOP_MATE_BACKENDS_DIR";
pub const ENV_CPU_VARIANT: &str = "DESKTOP_MATE_CPU_VARIANT";
pub const ENV_GPU_BACKEND: &str = "DESKTOP_MATE_GPU_BACKEND";

/// GPU modules tried by `auto`, best first.
pub const GPU_MODULES: [&str; 3] = ["cuda", "hip", "vulkan"];

/// What was loaded and why: `check`, the overlay and the logs print it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendsReport {
    /// The modules' folder.
    pub dir: PathBuf,
    /// Where that folder came from.
    pub dir_source: String,
    /// The CPU module in use (`zen4`, `haswell`, `sse42`, ...).
    pub cpu_variant: Option<String>,
    pub cpu_reason: String,
    /// Every CPU module found, best score first.
    pub cpu_candidates: Vec<CpuCandidate>,
    /// The GPU module in use (`cuda`, `vulkan`) and its devices.
    pub gpu_module: Option<String>,
    pub gpu_devices: Vec<GpuDevice>,
    pub gpu_reason: String,
    /// Time to choose and load the modules (the GPU driver's start included).
    pub load_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuCandidate {
    pub name: String,
    /// ggml's score: 0 = this CPU lacks an instruction the module needs.
    pub score: i32,
    /// Why it was not used when it could have been.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vetoed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuDevice {
    pub name: String,
    pub description: String,
    pub memory_free_bytes: u64,
    pub memory_total_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendsError {
    #[error(
        "llama.cpp's CPU modules (ggml-cpu-*) are not in {dir} ({source_}); they ship next to the \
         desktop-mate executable: reinstall, or point {ENV_DIR} at them"
    )]
    NoCpuModule { dir: PathBuf, source_: String },
    #[error(
        "none of llama.cpp's CPU modules in {dir} can run on this CPU ({candidates}); the oldest, \
         ggml-cpu-x64, needs only x86-64"
    )]
    NoUsableCpuModule { dir: PathBuf, candidates: String },
    #[error("llama.cpp could not load its CPU module {path}: {reason}")]
    CpuLoadFailed { path: PathBuf, reason: String },
}

/// Which GPU module to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuChoice {
    /// The first of [`GPU_MODULES`] present that finds a device.
    Auto,
    None,
    Only(String),
}

impl GpuChoice {
    pub fn parse(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Self::Auto,
            "none" | "cpu" | "off" => Self::None,
            other => Self::Only(other.to_owned()),
        }
    }
}

/// The overrides, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendOptions {
    pub dir: Option<PathBuf>,
    pub cpu_variant: Option<String>,
    pub gpu: GpuChoice,
}

impl BackendOptions {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            dir: var(ENV_DIR).map(PathBuf::from),
            cpu_variant: var(ENV_CPU_VARIANT).map(|v| v.trim().to_ascii_lowercase()),
            gpu: var(ENV_GPU_BACKEND).map_or(GpuChoice::Auto, |v| GpuChoice::parse(&v)),
        }
    }
}

static LOADED: OnceLock<Result<BackendsReport, BackendsError>> = OnceLock::new();

/// Loads the modules once per process (from the environment's options) and returns the report.
pub fn ensure_loaded() -> Result<&'static BackendsReport, BackendsError> {
    LOADED
        .get_or_init(|| {
            let report = load(&BackendOptions::from_env());
            match &report {
                Ok(report) => tracing::info!("{}", report.summary()),
                Err(err) => tracing::error!("{err}"),
            }
            report
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The report if [`ensure_loaded`] ran, without loading anything.
pub fn loaded() -> Option<&'static BackendsReport> {
    LOADED.get()?.as_ref().ok()
}

impl BackendsReport {
    /// One line: `llama.cpp: CPU zen4 (AVX-512), GPU cuda: NVIDIA H100 80GB HBM3`.
    pub fn summary(&self) -> String {
        let cpu = self.cpu_variant.as_deref().unwrap_or("none");
        let gpu = match (&self.gpu_module, self.gpu_devices.first()) {
            (Some(module), Some(device)) => format!("GPU {module}: {}", device.description),
            _ => format!("no GPU ({})", self.gpu_reason),
        };
        format!(
            "llama.cpp backends: CPU {cpu} ({}); {gpu}; from {} ({}), {:.0} ms",
            self.cpu_reason,
            self.dir.display(),
            self.dir_source,
            self.load_ms
        )
    }

    /// The short form for the overlay: `zen4 + cuda` / `haswell`.
    pub fn short(&self) -> String {
        let cpu = self.cpu_variant.as_deref().unwrap_or("?");
        match &self.gpu_module {
            Some(gpu) => format!("{cpu} + {gpu}"),
            None => cpu.to_owned(),
        }
    }

    /// The first GPU device, as the load planner sees GPUs.
    pub fn gpu(&self) -> Option<&GpuDevice> {
        self.gpu_devices.first()
    }
}

fn load(options: &BackendOptions) -> Result<BackendsReport, BackendsError> {
    let started = Instant::now();
    // ggml's own messages (a module that fails to open, the GPU found) go to our log.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let (dir, dir_source) = modules_dir(options);
    let modules = list_modules(&dir);
    let mut cpu: Vec<(String, PathBuf)> = modules
        .iter()
        .filter_map(|(name, path)| {
            name.strip_prefix("cpu-")
                .map(|variant| (variant.to_owned(), path.clone()))
        })
        .collect();
    cpu.sort();
    if cpu.is_empty() {
        return Err(BackendsError::NoCpuModule {
            dir,
            source_: dir_source,
        });
    }
    let scored: Vec<(String, i32)> = cpu
        .iter()
        .map(|(name, path)| (name.clone(), module_score(path)))
        .collect();
    let choice = choose_cpu(&scored, &OsGrants::probe(), options.cpu_variant.as_deref());
    for candidate in &choice.candidates {
        if let Some(veto) = &candidate.vetoed {
            tracing::warn!("llama.cpp CPU module {} skipped: {veto}", candidate.name);
        }
    }
    let Some(chosen) = choice.chosen.clone() else {
        let candidates = choice
            .candidates
            .iter()
            .map(|c| format!("{} {}", c.name, c.vetoed.as_deref().unwrap_or("score 0")))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(BackendsError::NoUsableCpuModule { dir, candidates });
    };
    let cpu_path = cpu
        .iter()
        .find(|(name, _)| *name == chosen)
        .map(|(_, path)| path.clone())
        .unwrap_or_default();
    if ggml_load(&cpu_path).is_none() {
        return Err(BackendsError::CpuLoadFailed {
            reason: open_error(&cpu_path),
            path: cpu_path,
        });
    }
    let (gpu_module, gpu_devices, gpu_reason) = load_gpu(&modules, &options.gpu, &dir);
    Ok(BackendsReport {
        dir,
        dir_source,
        cpu_variant: Some(chosen),
        cpu_reason: choice.reason,
        cpu_candidates: choice.candidates,
        gpu_module,
        gpu_devices,
        gpu_reason,
        load_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// `DESKTOP_MATE_BACKENDS_DIR`, else the executable's folder, else the folder the build put
/// the modules in (a `cargo run`/`cargo test` binary in target/debug/deps).
fn modules_dir(options: &BackendOptions) -> (PathBuf, String) {
    if let Some(dir) = &options.dir {
        return (dir.clone(), ENV_DIR.to_owned());
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    if let Some(dir) = &exe_dir
        && list_modules(dir)
            .iter()
            .any(|(name, _)| name.starts_with("cpu-"))
    {
        return (dir.clone(), "next to the executable".to_owned());
    }
    if let Some(dir) = llama_cpp_sys_2::BACKENDS_DIR.map(PathBuf::from)
        && dir.is_dir()
    {
        return (dir, "the build's folder".to_owned());
    }
    (
        exe_dir.unwrap_or_default(),
        "next to the executable".to_owned(),
    )
}

/// `(name, path)` of every ggml module in `dir`: `cpu-haswell`, `cuda`, `vulkan`.
pub fn list_modules(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut modules: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            let name = module_name(&file)?;
            Some((name.to_owned(), entry.path()))
        })
        .collect();
    modules.sort();
    modules
}

/// `libggml-cpu-haswell.so` / `ggml-cpu-haswell.dll` -> `cpu-haswell` (ggml drops the `lib`
/// prefix on Windows, MinGW included; a `lib`-prefixed DLL is accepted too); ggml's own
/// libraries (`libggml.so`, `ggml-base.dll`) are not modules.
fn module_name(file: &str) -> Option<&str> {
    let name = if cfg!(windows) {
        let stem = file.strip_suffix(".dll")?;
        stem.strip_prefix("lib")
            .unwrap_or(stem)
            .strip_prefix("ggml-")?
    } else {
        file.strip_prefix("libggml-")?.strip_suffix(".so")?
    };
    (name != "base" && !name.is_empty()).then_some(name)
}

/// ggml's score for a module on this CPU (0: cannot run here), from the module's own
/// `ggml_backend_score`, as ggml's loader reads it. -1 when the file cannot be opened.
fn module_score(path: &Path) -> i32 {
    // SAFETY: the file is one of ggml's backend modules from our own build; opening it runs no
    // code that needs more than baseline x86-64 (ggml compiles its feature probe without the
    // module's SIMD flags, for exactly this use), and `ggml_backend_score` is
    // `int ggml_backend_score(void)` (GGML_BACKEND_DL_SCORE_IMPL). The library stays open
    // while the function runs.
    unsafe {
        let Ok(library) = libloading::Library::new(path) else {
            return -1;
        };
        match library.get::<unsafe extern "C" fn() -> i32>(b"ggml_backend_score\0") {
            Ok(score) => score(),
            // A module without a score function runs anywhere.
            Err(_) => 1,
        }
    }
}

/// Why a module could not be opened (the dynamic loader's words: a missing libcudart, ...).
fn open_error(path: &Path) -> String {
    // SAFETY: as in `module_score`: one of ggml's modules, only opened and closed again.
    match unsafe { libloading::Library::new(path) } {
        Ok(_) => "ggml refused it (see the log above)".to_owned(),
        Err(err) => err.to_string(),
    }
}

/// Registers a module with ggml; `None` when ggml refused it (unopenable, score 0, no init).
fn ggml_load(path: &Path) -> Option<llama_cpp_sys_2::ggml_backend_reg_t> {
    let path = CString::new(path.to_string_lossy().as_bytes()).ok()?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call; ggml copies it.
    let reg = unsafe { llama_cpp_sys_2::ggml_backend_load(path.as_ptr()) };
    (!reg.is_null()).then_some(reg)
}

fn c_string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: ggml returns NUL-terminated names that live as long as the registered backend.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// The GPU device's memory now, `(free, total)` bytes: ggml asks the driver again (the
/// report's numbers are from when the module loaded).
pub fn gpu_memory_now() -> Option<(u64, u64)> {
    let device = loaded()?.gpu()?;
    // SAFETY: indices are below ggml's device count; ggml's names are NUL-terminated and live
    // as long as the registration; the out-pointers are valid `usize`s.
    unsafe {
        for i in 0..llama_cpp_sys_2::ggml_backend_dev_count() {
            let dev = llama_cpp_sys_2::ggml_backend_dev_get(i);
            if c_string(llama_cpp_sys_2::ggml_backend_dev_name(dev)) == device.name {
                let (mut free, mut total) = (0usize, 0usize);
                llama_cpp_sys_2::ggml_backend_dev_memory(dev, &mut free, &mut total);
                return Some((free as u64, total as u64));
            }
        }
    }
    None
}

/// The GPU/iGPU devices a registered module found.
fn gpu_devices(reg: llama_cpp_sys_2::ggml_backend_reg_t) -> Vec<GpuDevice> {
    // SAFETY: `reg` is a live registration returned by `ggml_backend_load`; device indices are
    // below its count; the out-pointers are valid `usize`s.
    unsafe {
        (0..llama_cpp_sys_2::ggml_backend_reg_dev_count(reg))
            .map(|i| llama_cpp_sys_2::ggml_backend_reg_dev_get(reg, i))
            .filter(|dev| {
                matches!(
                    llama_cpp_sys_2::ggml_backend_dev_type(*dev),
                    llama_cpp_sys_2::GGML_BACKEND_DEVICE_TYPE_GPU
                        | llama_cpp_sys_2::GGML_BACKEND_DEVICE_TYPE_IGPU
                )
            })
            .map(|dev| {
                let (mut free, mut total) = (0usize, 0usize);
                llama_cpp_sys_2::ggml_backend_dev_memory(dev, &mut free, &mut total);
                GpuDevice {
                    name: c_string(llama_cpp_sys_2::ggml_backend_dev_name(dev)),
                    description: c_string(llama_cpp_sys_2::ggml_backend_dev_description(dev)),
                    memory_free_bytes: free as u64,
                    memory_total_bytes: total as u64,
                }
            })
            .collect()
    }
}

fn load_gpu(
    modules: &[(String, PathBuf)],
    choice: &GpuChoice,
    dir: &Path,
) -> (Option<String>, Vec<GpuDevice>, String) {
    let wanted: Vec<&str> = match choice {
        GpuChoice::None => return (None, Vec::new(), format!("{ENV_GPU_BACKEND}=none")),
        GpuChoice::Auto => GPU_MODULES.to_vec(),
        GpuChoice::Only(name) => vec![name.as_str()],
    };
    let mut reasons = Vec::new();
    for name in wanted {
        let Some((_, path)) = modules.iter().find(|(module, _)| module == name) else {
            if matches!(choice, GpuChoice::Only(_)) {
                reasons.push(format!("{name}: no module in {}", dir.display()));
            }
            continue;
        };
        let Some(reg) = ggml_load(path) else {
            let why = open_error(path);
            tracing::warn!("llama.cpp GPU module {name} not loaded: {why}");
            reasons.push(format!("{name}: {why}"));
            continue;
        };
        let devices = gpu_devices(reg);
        if devices.is_empty() {
            // SAFETY: `reg` came from `ggml_backend_load` and nothing uses it yet.
            unsafe { llama_cpp_sys_2::ggml_backend_unload(reg) };
            reasons.push(format!("{name}: no device"));
            continue;
        }
        let reason = format!("{} device(s)", devices.len());
        return (Some(name.to_owned()), devices, reason);
    }
    let reason = if reasons.is_empty() {
        "no GPU module next to the executable".to_owned()
    } else {
        reasons.join("; ")
    };
    (None, Vec::new(), reason)
}

/// Which CPU register states the operating system grants this process. ggml's score checks
/// CPUID only; these say whether the instructions may actually run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsGrants {
    /// YMM state (AVX, AVX2, AVX-VNNI).
    pub avx: bool,
    /// Opmask + ZMM state (AVX-512).
    pub avx512: bool,
    /// AMX tile data: `Err` says why not.
    pub amx: Result<(), String>,
}

impl OsGrants {
    #[cfg(target_arch = "x86_64")]
    pub fn probe() -> Self {
        // std's detection checks CPUID *and* that the OS saves the registers (XCR0).
        Self {
            avx: std::arch::is_x86_feature_detected!("avx"),
            avx512: std::arch::is_x86_feature_detected!("avx512f"),
            amx: amx_granted(),
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn probe() -> Self {
        Self {
            avx: false,
            avx512: false,
            amx: Err("not an x86-64 CPU".into()),
        }
    }
}

/// AMX needs XCR0's tile bits (17, 18) and, on Linux, a per-process permission
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, which ggml's AMX code also asks for).
#[cfg(target_arch = "x86_64")]
pub fn amx_granted() -> Result<(), String> {
    if !std::arch::is_x86_feature_detected!("xsave") {
        return Err("the CPU has no XSAVE, so no AMX state".into());
    }
    #[target_feature(enable = "xsave")]
    fn xcr0() -> u64 {
        // SAFETY: XGETBV(0) is available when XSAVE is (checked by the caller) and the OS has
        // set CR4.OSXSAVE, which std's "xsave" detection includes.
        unsafe { std::arch::x86_64::_xgetbv(0) }
    }
    // SAFETY: the target feature was detected above.
    let xcr0 = unsafe { xcr0() };
    if xcr0 & (0b11 << 17) != 0b11 << 17 {
        return Err(format!(
            "the OS has not enabled the AMX tile state (XCR0 = {xcr0:#x})"
        ));
    }
    #[cfg(target_os = "linux")]
    {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with these two integer arguments only changes this process's
        // permission to use the AMX state.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        };
        if rc != 0 {
            return Err(format!(
                "the kernel refused AMX (arch_prctl ARCH_REQ_XCOMP_PERM: {})",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The CPU module chosen from ggml's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuChoice {
    pub chosen: Option<String>,
    pub reason: String,
    pub candidates: Vec<CpuCandidate>,
}

/// Register state an x86 CPU module needs from the OS, by module name: ggml's variant list
/// (ggml/src/CMakeLists.txt, `GGML_CPU_ALL_VARIANTS`). ggml's score cannot tell: it is a sum
/// (1 + 1 for FMA + 2 for F16C ...), so its bits carry into each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Needs {
    avx: bool,
    avx512: bool,
    amx: bool,
}

fn needs(variant: &str) -> Option<Needs> {
    let (avx, avx512, amx) = match variant {
        "x64" | "sse42" => (false, false, false),
        "sandybridge" | "ivybridge" | "piledriver" | "haswell" | "alderlake" => {
            (true, false, false)
        }
        "skylakex" | "cannonlake" | "cascadelake" | "icelake" | "cooperlake" | "zen4" => {
            (true, true, false)
        }
        "sapphirerapids" => (true, true, true),
        _ => return None,
    };
    Some(Needs { avx, avx512, amx })
}

fn veto(name: &str, score: i32, grants: &OsGrants) -> Option<String> {
    if !cfg!(target_arch = "x86_64") || score <= 0 {
        return None;
    }
    // A module this table does not know (a newer ggml) is left to ggml's score, as ggml does.
    let needs = needs(name)?;
    if needs.amx
        && let Err(why) = &grants.amx
    {
        return Some(format!("the CPU advertises AMX but {why}"));
    }
    if needs.avx512 && !grants.avx512 {
        return Some("the CPU advertises AVX-512 but the OS does not enable its registers".into());
    }
    if needs.avx && !grants.avx {
        return Some("the CPU advertises AVX but the OS does not enable its registers".into());
    }
    None
}

/// Picks the best-scoring module whose instructions the OS grants; `forced` (a variant name)
/// wins when it can run here.
pub fn choose_cpu(scored: &[(String, i32)], grants: &OsGrants, forced: Option<&str>) -> CpuChoice {
    let mut candidates: Vec<CpuCandidate> = scored
        .iter()
        .map(|(name, score)| CpuCandidate {
            name: name.clone(),
            score: *score,
            vetoed: veto(name, *score, grants),
        })
        .collect();
    candidates.sort_by(|a, b| b.score.cmp(&a.score).then(a.name.cmp(&b.name)));
    let usable = |c: &&CpuCandidate| c.score > 0 && c.vetoed.is_none();
    let best = candidates.iter().find(usable).map(|c| c.name.clone());
    let skipped: Vec<&str> = candidates
        .iter()
        .take_while(|c| Some(&c.name) != best.as_ref())
        .filter(|c| c.vetoed.is_some())
        .map(|c| c.name.as_str())
        .collect();
    let best_reason = |name: &str| {
        if skipped.is_empty() {
            format!("{name}: the best module this CPU runs")
        } else {
            format!(
                "{name}: the best module this CPU runs ({} skipped: the OS does not grant its instructions)",
                skipped.join(", ")
            )
        }
    };
    let (chosen, reason) = match forced {
        Some(name) => match candidates.iter().find(|c| c.name == name) {
            Some(c) if usable(&c) => (
                Some(c.name.clone()),
                format!("{name}: forced by {ENV_CPU_VARIANT}"),
            ),
            Some(c) => {
                let why = c
                    .vetoed
                    .clone()
                    .unwrap_or_else(|| "this CPU lacks its instructions".into());
                tracing::warn!(
                    "{ENV_CPU_VARIANT}={name} cannot run here ({why}); using the best module instead"
                );
                (
                    best.clone(),
                    best.as_deref().map_or_else(String::new, |b| {
                        format!(
                            "{} ({ENV_CPU_VARIANT}={name} cannot run here: {why})",
                            best_reason(b)
                        )
                    }),
                )
            }
            None => {
                let known: Vec<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
                tracing::warn!(
                    "{ENV_CPU_VARIANT}={name}: no such module (have: {}); using the best module instead",
                    known.join(", ")
                );
                (
                    best.clone(),
                    best.as_deref().map_or_else(String::new, |b| {
                        format!(
                            "{} ({ENV_CPU_VARIANT}={name}: no such module)",
                            best_reason(b)
                        )
                    }),
                )
            }
        },
        None => (
            best.clone(),
            best.as_deref().map_or_else(String::new, best_reason),
        ),
    };
    CpuChoice {
        chosen,
        reason,
        candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(avx512: bool, amx: bool) -> OsGrants {
        OsGrants {
            avx: true,
            avx512,
            amx: if amx {
                Ok(())
            } else {
                Err("the kernel refused AMX".into())
            },
        }
    }

    /// Scores as ggml's x86 scorer gives them on a Sapphire Rapids CPU: 1, plus FMA 1, F16C 2,
    /// SSE42 4, BMI2 8, AVX 16, AVX2 32, AVX_VNNI 64, AVX512 128, VBMI 256, BF16 512, VNNI 1024,
    /// AMX 2048 for each feature a module is built with.
    fn sapphire_rapids() -> Vec<(String, i32)> {
        vec![
            ("x64".into(), 1),
            ("sse42".into(), 1 + 4),
            ("haswell".into(), 64),
            ("skylakex".into(), 192),
            ("sapphirerapids".into(), 4032),
            ("alderlake".into(), 0),
        ]
    }

    #[test]
    fn the_best_module_wins_when_the_os_grants_everything() {
        let choice = choose_cpu(&sapphire_rapids(), &grants(true, true), None);
        assert_eq!(choice.chosen.as_deref(), Some("sapphirerapids"));
        assert!(choice.candidates.iter().all(|c| c.vetoed.is_none()));
        assert_eq!(choice.candidates[0].name, "sapphirerapids");
    }

    #[test]
    fn amx_advertised_but_refused_falls_back_to_the_next_module() {
        let choice = choose_cpu(&sapphire_rapids(), &grants(true, false), None);
        assert_eq!(choice.chosen.as_deref(), Some("skylakex"));
        let vetoed = &choice.candidates[0];
        assert_eq!(vetoed.name, "sapphirerapids");
        assert!(vetoed.vetoed.as_deref().unwrap_or("").contains("AMX"));
        assert!(
            choice.reason.contains("sapphirerapids skipped"),
            "{}",
            choice.reason
        );
    }

    #[test]
    fn no_avx512_state_falls_back_to_avx2() {
        let choice = choose_cpu(&sapphire_rapids(), &grants(false, false), None);
        assert_eq!(choice.chosen.as_deref(), Some("haswell"));
    }

    #[test]
    fn a_forced_variant_is_used_when_it_runs_here_and_refused_otherwise() {
        let forced = choose_cpu(&sapphire_rapids(), &grants(true, false), Some("sse42"));
        assert_eq!(forced.chosen.as_deref(), Some("sse42"));
        assert!(forced.reason.contains("forced"));
        let cannot = choose_cpu(&sapphire_rapids(), &grants(true, false), Some("alderlake"));
        assert_eq!(cannot.chosen.as_deref(), Some("skylakex"));
        assert!(
            cannot.reason.contains("cannot run here"),
            "{}",
            cannot.reason
        );
        let unknown = choose_cpu(&sapphire_rapids(), &grants(true, true), Some("pentium"));
        assert_eq!(unknown.chosen.as_deref(), Some("sapphirerapids"));
        assert!(unknown.reason.contains("no such module"));
    }

    /// Alder Lake's module scores 128, the AVX-512 bit's value, without AVX-512: the veto must
    /// go by what the module needs, not by the score's bits.
    #[test]
    fn alder_lake_is_not_mistaken_for_avx512() {
        let scored = vec![
            ("haswell".to_owned(), 64),
            ("alderlake".to_owned(), 128),
            ("skylakex".to_owned(), 0),
        ];
        let choice = choose_cpu(&scored, &grants(false, false), None);
        assert_eq!(choice.chosen.as_deref(), Some("alderlake"), "{choice:?}");
        assert!(choice.candidates.iter().all(|c| c.vetoed.is_none()));
    }

    #[test]
    fn a_module_this_table_does_not_know_is_left_to_ggml_s_score() {
        let scored = vec![
            ("haswell".to_owned(), 64),
            ("diamondrapids".to_owned(), 9000),
        ];
        let choice = choose_cpu(&scored, &grants(false, false), None);
        assert_eq!(choice.chosen.as_deref(), Some("diamondrapids"));
    }

    #[test]
    fn nothing_runs_when_every_score_is_zero() {
        let scored = vec![("haswell".to_owned(), 0), ("skylakex".to_owned(), 0)];
        assert_eq!(choose_cpu(&scored, &grants(true, true), None).chosen, None);
    }

    #[test]
    fn module_names_come_from_file_names() {
        if cfg!(windows) {
            assert_eq!(module_name("ggml-cpu-haswell.dll"), Some("cpu-haswell"));
            assert_eq!(module_name("libggml-cpu-haswell.dll"), Some("cpu-haswell"));
            assert_eq!(module_name("libggml-vulkan.dll"), Some("vulkan"));
            assert_eq!(module_name("ggml-base.dll"), None);
            assert_eq!(module_name("ggml.dll"), None);
            assert_eq!(module_name("libggml-base.dll"), None);
            assert_eq!(module_name("libllama.dll"), None);
            assert_eq!(module_name("libggml-cpu-haswell.so"), None);
        } else {
            assert_eq!(module_name("libggml-cpu-haswell.so"), Some("cpu-haswell"));
            assert_eq!(module_name("libggml-cuda.so"), Some("cuda"));
            assert_eq!(module_name("libggml-base.so"), None);
            assert_eq!(module_name("libggml.so"), None);
            assert_eq!(module_name("libllama.so"), None);
        }
    }

    #[test]
    fn gpu_choice_parses_what_users_type() {
        assert_eq!(GpuChoice::parse("Auto"), GpuChoice::Auto);
        assert_eq!(GpuChoice::parse("none"), GpuChoice::None);
        assert_eq!(
            GpuChoice::parse(" VULKAN "),
            GpuChoice::Only("vulkan".into())
        );
    }

    /// On Linux, the real answer here: AMX only when CPUID has it and the kernel grants it.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn amx_is_granted_only_where_the_cpu_has_it() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let advertised = cpuinfo.contains(" amx_tile");
        if !advertised {
            assert!(
                amx_granted().is_err(),
                "AMX granted on a CPU without amx_tile"
            );
        }
    }
}
