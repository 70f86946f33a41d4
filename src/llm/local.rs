//! The local backend: llama.cpp in this process ([`LlmEngine`]) with the model's prompt format.

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
        (engine.map(Self::new), notice)
    }

    pub fn new(engine: LlmEngine) -> Self {
        let prompter = Prompter::for_model(&engine);
        Self { engine, prompter }
    }
}

impl ChatBackend for LocalBackend {
    fn warm_up(&mut self, persona: &PersonaSettings) -> Result<ReplyStats, EngineError> {
        let (system, _) = self.prompter.prompt(persona, &[], None);
        // An empty system prompt still gets the template's opening tokens evaluated, and
        // llama.cpp refuses an empty batch.
        if system.trim().is_empty() {
            return self.engine.prefill(" ");
        }
        self.engine.prefill(&system)
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
