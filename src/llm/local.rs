//! The local backend: llama.cpp in this process ([`LlmEngine`]) with the model's prompt format.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::chat::{Prompter, reply};
use super::engine::{EngineError, EngineSettings, GenerateOptions, LlmEngine, Reply, ReplyStats};
use super::session::{BackendStats, ChatBackend, ChatRequest, ReplyStream};
use crate::config::PersonaSettings;

pub struct LocalBackend {
    engine: LlmEngine,
    prompter: Prompter,
}

impl LocalBackend {
    /// Loads the model; when loading with GPU layers fails, loads it again on the CPU and
    /// says why in the notice.
    pub fn load_with_cpu_retry(
        settings: EngineSettings,
    ) -> (Result<Self, EngineError>, Option<String>) {
        let (engine, notice) = LlmEngine::load_with_cpu_retry(settings);
        match engine {
            Ok(engine) => {
                let (backend, template_notice) = Self::with_notice(engine);
                let notice = match (notice, template_notice) {
                    (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                    (a, b) => a.or(b),
                };
                (Ok(backend), notice)
            }
            Err(err) => (Err(err), notice),
        }
    }

    /// The backend, and a notice when the model's chat template was refused.
    fn with_notice(engine: LlmEngine) -> (Self, Option<String>) {
        let (prompter, notice) = Prompter::for_model(&engine);
        (Self { engine, prompter }, notice)
    }
}

/// Warm-up states kept: the newest few (one per model, persona and settings recently used).
const WARM_STATES_KEPT: usize = 4;

/// The state file for this model file (path, size, modification time), these settings and
/// this prompt: anything else would load a cache that does not match.
fn warm_state_file(dir: &Path, settings: &EngineSettings, text: &str) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    let meta = std::fs::metadata(&settings.model_path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let mut hash = Sha256::new();
    hash.update(settings.model_path.to_string_lossy().as_bytes());
    hash.update(meta.len().to_le_bytes());
    hash.update(modified.as_nanos().to_le_bytes());
    hash.update(format!(
        "{} {} {} {}",
        settings.n_ctx,
        settings.n_batch,
        settings.n_gpu_layers,
        env!("CARGO_PKG_VERSION")
    ));
    hash.update(text.as_bytes());
    let digest: String = hash.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(dir.join(format!("{digest}.state")))
}

/// Removes all but the newest [`WARM_STATES_KEPT`] states beside `kept`.
fn forget_older_states(kept: &Path) {
    let Some(dir) = kept.parent() else { return };
    for old in super::warm_file::states_in(dir)
        .into_iter()
        .skip(WARM_STATES_KEPT)
    {
        if old != kept {
            super::warm_file::remove(&old);
        }
    }
}

impl ChatBackend for LocalBackend {
    fn warm_up(
        &mut self,
        persona: &PersonaSettings,
        state_dir: Option<&Path>,
    ) -> Result<ReplyStats, EngineError> {
        let (system, _) = self.prompter.prompt(persona, &[], None);
        // An empty system prompt still gets the template's opening tokens evaluated, and
        // llama.cpp refuses an empty batch.
        let text = if system.trim().is_empty() {
            " "
        } else {
            system.as_str()
        };
        let Some(path) =
            state_dir.and_then(|dir| warm_state_file(dir, self.engine.settings(), text))
        else {
            return self.engine.prefill(text);
        };
        let start = Instant::now();
        if self.engine.load_state(&path, text) {
            let tokens = self.engine.cached_tokens();
            tracing::info!("warm start: loaded {tokens} tokens from {}", path.display());
            return Ok(ReplyStats {
                prompt_tokens: tokens,
                reused_tokens: tokens,
                prompt_ms: start.elapsed().as_secs_f64() * 1000.0,
                ..ReplyStats::empty()
            });
        }
        let stats = self.engine.prefill(text)?;
        let saved = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| EngineError::State(e.to_string()))
            .and_then(|()| self.engine.save_state(&path));
        match saved {
            Ok(()) => forget_older_states(&path),
            Err(err) => tracing::warn!("{err}; the next start warms up again"),
        }
        Ok(stats)
    }

    fn generate(
        &mut self,
        request: &ChatRequest,
        stream: &mut ReplyStream,
    ) -> Result<(Reply, usize), EngineError> {
        reply(
            &mut self.engine,
            &self.prompter,
            request.persona,
            request.history,
            request.message,
            request.options,
            stream.cancel,
            stream.on_text,
        )
    }

    fn complete(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<Reply, EngineError> {
        self.engine
            .generate(prompt, options, stream.cancel, stream.on_text)
    }

    fn stats(&self) -> BackendStats {
        BackendStats {
            load_ms: self.engine.load_time.as_secs_f64() * 1000.0,
            n_ctx: self.engine.n_ctx(),
            cached_tokens: self.engine.cached_tokens(),
            prompt_format: self.prompter.format(),
        }
    }
}
