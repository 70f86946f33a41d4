//! `desktop-mate check`: settings validation plus a hardware and load-plan report; with
//! `llm.backend: OpenAi(..)`, what the server answers to `GET {base_url}/models`.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Backend, Guarded, LoadedSettings, Settings, SettingsOrigin};
use crate::desktop::graphics::{self, Renderer};
use crate::hardware::{CpuInfo, GpuInfo, HardwareReport, MemoryInfo, human_bytes};
use crate::llm::openai::{OpenAiSettings, list_models};
use crate::llm::plan::{LoadPlan, Workload, plan};
use crate::llm::runtime::backends::{self, BackendsReport};
use crate::llm::runtime::model_info::{ModelInfo, read_model_info};

#[derive(Debug, Clone, Serialize)]
pub struct SettingsReport {
    pub path: Option<PathBuf>,
    pub origin: SettingsOrigin,
    pub valid: bool,
    /// `file:line:column: ...` when not valid.
    pub error: Option<String>,
}

/// Where a value in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `mascot.ron` (a section of a broken file that loads on its own counts).
    File,
    /// `state.ron`: the app's own record (a dropped avatar, a downloaded model, a drag).
    State,
    /// `--model` / `--avatar` for this run.
    Flag,
    /// The built-in default (also when the file says the same).
    Default,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chosen<T> {
    pub value: T,
    pub from: Source,
}

/// The settings the mascot would run on, and where each came from: what a broken or
/// overridden file kept, for the user and for tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InForce {
    pub persona: Chosen<String>,
    /// `null`: no model chosen (the chat panel offers downloads).
    pub model: Chosen<Option<PathBuf>>,
    /// `null`: the built-in mascot.
    pub avatar: Chosen<Option<PathBuf>>,
    pub window_scale: Chosen<f32>,
    /// Files an earlier run stopped while loading: skipped until "Try again".
    pub skipped: Vec<(Guarded, PathBuf)>,
}

impl InForce {
    pub fn of(loaded: &LoadedSettings) -> Self {
        let (settings, state) = (&loaded.settings, &loaded.state);
        let defaults = Settings::default();
        let file_or_default = |same_as_default: bool| {
            if same_as_default || loaded.file.path.is_none() {
                Source::Default
            } else {
                Source::File
            }
        };
        let path_choice =
            |flag: &Option<PathBuf>, kept: Option<PathBuf>, setting: &Option<PathBuf>| {
                if let Some(path) = flag {
                    Chosen {
                        value: Some(path.clone()),
                        from: Source::Flag,
                    }
                } else if let Some(path) = kept {
                    Chosen {
                        value: Some(path),
                        from: Source::State,
                    }
                } else {
                    Chosen {
                        value: setting.clone(),
                        from: file_or_default(setting.is_none()),
                    }
                }
            };
        let kept_model = state.model.clone().filter(|path| path.is_file());
        Self {
            persona: Chosen {
                value: settings.persona.name.clone(),
                from: file_or_default(settings.persona == defaults.persona),
            },
            model: path_choice(&state.run_model, kept_model, &settings.llm.model_path),
            avatar: path_choice(
                &state.run_avatar,
                state.avatar.clone(),
                &settings.avatar.vrm_path,
            ),
            window_scale: match state.window_scale {
                Some(scale) if !state.run_reset_window => Chosen {
                    value: scale,
                    from: Source::State,
                },
                _ => Chosen {
                    value: state.window_scale(settings),
                    from: file_or_default(settings.window.scale == defaults.window.scale),
                },
            },
            skipped: loaded.guard.all_skipped(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub path: PathBuf,
    #[serde(flatten)]
    pub info: Option<ModelInfo>,
    pub error: Option<String>,
}

/// The chat server of `llm.backend: OpenAi(..)`, probed with `GET {base_url}/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    pub base_url: String,
    pub model: String,
    pub api_key_env: Option<String>,
    /// The server answered the model list.
    pub reachable: bool,
    /// The model ids it lists.
    pub models: Vec<String>,
    /// `llm.backend.model` is among them (`false` when the list could not be read).
    pub model_listed: bool,
    /// Why the list could not be read.
    pub error: Option<String>,
}

impl ServerReport {
    pub fn probe(backend: &Backend) -> Option<Self> {
        let Backend::OpenAi {
            base_url,
            model,
            api_key_env,
        } = backend
        else {
            return None;
        };
        let listed = OpenAiSettings::from_backend(backend).and_then(|settings| {
            let settings = settings.unwrap_or_else(|| OpenAiSettings::new(base_url, model));
            list_models(&settings)
        });
        let (models, error) = match listed {
            Ok(models) => (models, None),
            Err(err) => (Vec::new(), Some(err.to_string())),
        };
        Some(Self {
            base_url: base_url.clone(),
            model: model.clone(),
            api_key_env: api_key_env.clone(),
            reachable: error.is_none(),
            // Ollama lists `llama3.2:latest` for `llama3.2`.
            model_listed: models
                .iter()
                .any(|m| m == model || m.strip_prefix(model.as_str()) == Some(":latest")),
            models,
            error,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub settings: SettingsReport,
    /// The values the mascot would run on and where each came from.
    pub in_force: InForce,
    pub cpu: CpuInfo,
    pub memory: MemoryInfo,
    /// `null` without an NVIDIA GPU.
    pub gpu: Option<GpuInfo>,
    pub gpu_unavailable_reason: Option<String>,
    /// `null` when no model is set.
    pub model: Option<ModelReport>,
    pub plan: LoadPlan,
    /// llama.cpp's CPU and GPU modules: which were loaded and why (`null` if none could be).
    pub backends: Option<BackendsReport>,
    pub backends_error: Option<String>,
    /// `null` for the local backend.
    pub server: Option<ServerReport>,
    /// What the window can draw with (graphics adapters); empty: `run` refuses to start.
    pub renderers: Vec<Renderer>,
    /// Why the window would not show (no renderer, or one that draws nothing in it).
    pub renderer_warning: Option<String>,
}

impl CheckReport {
    pub fn build(loaded: &LoadedSettings, hardware: HardwareReport) -> Self {
        let settings = SettingsReport {
            path: loaded.file.path.clone(),
            origin: loaded.file.origin,
            valid: loaded.error.is_none(),
            error: loaded.error.as_ref().map(ToString::to_string),
        };
        // The model the app would load: `--model`, the one downloaded in the app, the setting.
        let model_path = loaded.state.model(&loaded.settings);
        let model = model_path.as_ref().map(|path| match read_model_info(path) {
            Ok(info) => ModelReport {
                path: path.clone(),
                info: Some(info),
                error: None,
            },
            Err(err) => ModelReport {
                path: path.clone(),
                info: None,
                error: Some(err.to_string()),
            },
        });
        let model_info = model.as_ref().and_then(|m| m.info.as_ref());
        let plan = plan(
            &loaded.settings.llm,
            &hardware,
            model_info,
            Workload::WithWindow,
        );
        let renderers = graphics::renderers();
        // `plan` loaded them.
        let (backends, backends_error) = match backends::ensure_loaded() {
            Ok(report) => (Some(report.clone()), None),
            Err(err) => (None, Some(err.to_string())),
        };
        Self {
            settings,
            in_force: InForce::of(loaded),
            cpu: hardware.cpu,
            memory: hardware.memory,
            gpu: hardware.gpu,
            gpu_unavailable_reason: hardware.gpu_unavailable_reason,
            model,
            plan,
            backends,
            backends_error,
            server: ServerReport::probe(&loaded.settings.llm.backend),
            renderer_warning: graphics::check(&renderers)
                .err()
                .or_else(|| graphics::blank_transparent_window(&renderers)),
            renderers,
        }
    }

    /// The text `check` prints without `--json`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let path = self
            .settings
            .path
            .as_ref()
            .map_or_else(|| "bundled default".into(), |p| p.display().to_string());
        match &self.settings.error {
            None => line(format!("settings: {path}: valid")),
            Some(error) => line(format!("settings: INVALID: {error}")),
        }
        let from = |source: Source| match source {
            Source::File => "from the settings file",
            Source::State => "kept by the app in state.ron",
            Source::Flag => "from the command line",
            Source::Default => "default",
        };
        let shown = |path: &Option<PathBuf>, none: &str| {
            path.as_ref()
                .map_or_else(|| none.to_owned(), |p| p.display().to_string())
        };
        let in_force = &self.in_force;
        line(format!(
            "in force: persona {:?} ({}); model {} ({}); avatar {} ({}); scale {} ({})",
            in_force.persona.value,
            from(in_force.persona.from),
            shown(&in_force.model.value, "none"),
            from(in_force.model.from),
            shown(&in_force.avatar.value, "built-in"),
            from(in_force.avatar.from),
            in_force.window_scale.value,
            from(in_force.window_scale.from)
        ));
        for (what, path) in &in_force.skipped {
            line(format!(
                "skipped:  the {} {} (an earlier run stopped while loading it)",
                what.noun(),
                path.display()
            ));
        }
        line(format!(
            "cpu:      {} ({} physical / {} logical cores, {} usable)",
            self.cpu.model,
            self.cpu.physical_cores,
            self.cpu.logical_cores,
            self.cpu.available_parallelism
        ));
        line(format!(
            "ram:      {} total, {} available",
            human_bytes(self.memory.total_bytes),
            human_bytes(self.memory.available_bytes)
        ));
        match &self.gpu {
            Some(gpu) => line(format!(
                "gpu:      {} ({} VRAM, {} free)",
                gpu.name,
                human_bytes(gpu.vram_total_bytes),
                human_bytes(gpu.vram_free_bytes)
            )),
            None => line(format!(
                "gpu:      {}",
                self.gpu_unavailable_reason
                    .as_deref()
                    .unwrap_or("no NVIDIA GPU")
            )),
        }
        for renderer in &self.renderers {
            line(format!(
                "window:   {} ({}, {}, {} {})",
                renderer.name,
                renderer.backend,
                renderer.device_type,
                renderer.driver,
                renderer.driver_info
            ));
        }
        if let Some(warning) = &self.renderer_warning {
            line(format!("window:   WARNING: {warning}"));
        }
        match &self.model {
            None => line("model:    none set (llm.model_path or --model)".into()),
            Some(ModelReport {
                info: Some(info), ..
            }) => line(format!(
                "model:    {} ({}, {}, {} layers)",
                info.path.display(),
                human_bytes(info.file_size_bytes),
                info.architecture,
                info.n_layers
            )),
            Some(ModelReport { error, path, .. }) => line(format!(
                "model:    {}: {}",
                path.display(),
                error.as_deref().unwrap_or("unusable")
            )),
        }
        match (&self.backends, &self.backends_error) {
            (Some(report), _) => {
                line(format!(
                    "llama:    CPU module {} — {}",
                    report.cpu_variant.as_deref().unwrap_or("none"),
                    report.cpu_reason
                ));
                line(format!(
                    "llama:    GPU module {} — {}",
                    report.gpu_module.as_deref().unwrap_or("none"),
                    match report.gpu() {
                        Some(device) => format!(
                            "{} ({} free of {})",
                            device.description,
                            human_bytes(device.memory_free_bytes),
                            human_bytes(device.memory_total_bytes)
                        ),
                        None => report.gpu_reason.clone(),
                    }
                ));
                line(format!(
                    "llama:    modules from {} ({}), loaded in {:.0} ms",
                    report.dir.display(),
                    report.dir_source,
                    report.load_ms
                ));
            }
            (None, error) => line(format!(
                "llama:    {}",
                error.as_deref().unwrap_or("no llama.cpp modules loaded")
            )),
        }
        line(format!(
            "plan:     profile {}, GPU layers {}, threads {} — {}",
            self.plan.profile, self.plan.n_gpu_layers, self.plan.n_threads, self.plan.reason
        ));
        if let Some(server) = &self.server {
            line(format!(
                "backend:  OpenAI-compatible server {} (model {}) — the model and plan above are not used",
                server.base_url, server.model
            ));
            match &server.error {
                Some(error) => line(format!("server:   {error}")),
                None => {
                    let shown: Vec<&str> =
                        server.models.iter().take(20).map(String::as_str).collect();
                    let more = server.models.len().saturating_sub(shown.len());
                    line(format!(
                        "server:   {} model(s): {}{}",
                        server.models.len(),
                        shown.join(", "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    ));
                    if !server.model_listed {
                        line(format!(
                            "server:   \"{}\" is not among them: check llm.backend.model",
                            server.model
                        ));
                    }
                }
            }
        }
        out
    }
}
