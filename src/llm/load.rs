//! The one way to get a backend: which one and how, from the settings ([`BackendConfig`],
//! resolved by [`crate::llm::plan::resolve_model`]), loaded by [`load_backend`]. Adding a backend is
//! one file implementing [`crate::llm::contract::ChatBackend`] and one arm here.

use super::runtime::engine::EngineSettings;
use super::runtime::local::LocalBackend;
use crate::llm::contract::{ChatBackend, ChatError};
use crate::llm::openai::{OpenAiBackend, OpenAiSettings};

/// A loaded backend and, when the GPU load failed and it fell back to the CPU, why.
pub struct LoadedBackend {
    pub backend: Result<Box<dyn ChatBackend>, ChatError>,
    pub notice: Option<String>,
}

/// Which backend to load and how, resolved from the settings (`llm.backend`) by
/// [`crate::llm::plan::resolve_model`].
#[derive(Debug, Clone, PartialEq)]
pub enum BackendConfig {
    /// llama.cpp in this process.
    Local(EngineSettings),
    /// An OpenAI-compatible server.
    OpenAi(OpenAiSettings),
}

impl From<EngineSettings> for BackendConfig {
    fn from(settings: EngineSettings) -> Self {
        Self::Local(settings)
    }
}

impl BackendConfig {
    /// The model file, or `model at base_url`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(engine) => engine.model_path.display().to_string(),
            Self::OpenAi(server) => format!("{} at {}", server.model, server.base_url),
        }
    }
}

/// The one way to get a backend.
pub fn load_backend(config: impl Into<BackendConfig>) -> LoadedBackend {
    match config.into() {
        BackendConfig::Local(settings) => {
            let (backend, notice) = LocalBackend::load_with_cpu_retry(settings);
            LoadedBackend {
                backend: backend
                    .map(|b| Box::new(b) as Box<dyn ChatBackend>)
                    .map_err(ChatError::from),
                notice,
            }
        }
        BackendConfig::OpenAi(settings) => LoadedBackend {
            backend: Ok(Box::new(OpenAiBackend::load(settings))),
            notice: None,
        },
    }
}
