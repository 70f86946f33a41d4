//! The local backend: llama.cpp in this process ([`LlmEngine`]) with the model's prompt format.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::engine::{EngineError, EngineSettings, LlmEngine};
use crate::config::PersonaSettings;
use crate::llm::contract::ChatTurn;
use crate::llm::contract::{
    BackendStats, ChatBackend, ChatError, ChatRequest, GenerateOptions, Reply, ReplyStats,
    ReplyStream,
};
use crate::llm::conversation::chat::Prompter;
use crate::llm::conversation::template_vet::TemplateSource;

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
        let (prompter, notice) = prompter_for(&engine);
        (Self { engine, prompter }, notice)
    }
}

/// The model's prompt format: its own template when it has one that is usable, else the plain-text format;
/// with a notice for the user when the model's template was refused.
pub fn prompter_for(engine: &LlmEngine) -> (Prompter, Option<String>) {
    let model = engine.model();
    let Ok(Ok(source)) = model.chat_template(None).map(|t| t.to_string()) else {
        tracing::info!("the model has no chat template; using the plain-text format");
        return (Prompter::plain(), None);
    };
    let vocab = model.vocab();
    let text = |token| {
        let bytes = vocab.token_to_piece(token, true, None);
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let (bos, eos) = (text(vocab.bos()), text(vocab.eos()));
    let added_bos = (vocab.should_add_bos() && !bos.is_empty()).then(|| bos.clone());
    Prompter::for_template(TemplateSource { source, bos, eos }, added_bos)
}

/// Answers `message` after `history`, dropping the oldest turns when the prompt plus the reply
/// would not fit in the context. Returns the reply and how many turns were dropped.
///
/// Turns are dropped until the prompt fills at most half of what the reply leaves free (like
/// llama.cpp's context shift), not just until it fits: dropping changes the prompt's prefix
/// and costs a full re-evaluation, so it should happen rarely, not on every later turn.
pub fn reply(
    engine: &mut LlmEngine,
    prompter: &Prompter,
    persona: &PersonaSettings,
    history: &[ChatTurn],
    message: &str,
    options: &GenerateOptions,
    cancel: &AtomicBool,
    on_text: &mut dyn FnMut(&str),
) -> Result<(Reply, usize), EngineError> {
    if message.trim().is_empty() {
        return Err(EngineError::EmptyPrompt);
    }
    let n_ctx = engine.n_ctx() as usize;
    let max_tokens = options.max_tokens as usize;
    // The prompt from turn `first` on, and its size in tokens when it could fit at all (a
    // prompt longer than the context can hold in bytes is not tokenized).
    let measure = |engine: &LlmEngine, first: usize| {
        let (prompt, stops) = prompter.prompt(persona, &history[first..], Some(message));
        let tokens = (prompt.len() <= n_ctx.saturating_mul(MAX_BYTES_PER_TOKEN))
            .then(|| engine.tokenize(&prompt).len());
        (prompt, stops, tokens)
    };
    let fits =
        |tokens: Option<usize>, limit: usize| tokens.is_some_and(|t| t + max_tokens <= limit);
    let mut chosen = (0, measure(engine, 0));
    if !fits(chosen.1.2, n_ctx) && !history.is_empty() {
        // Once turns must go, keep the prompt within half of what the reply leaves free; the
        // fewest turns dropped that achieve it, found by bisection (each try renders and
        // tokenizes the whole prompt).
        let limit = (n_ctx + max_tokens) / 2;
        let (mut lo, mut hi) = (1, history.len());
        chosen = (hi, measure(engine, hi));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let tried = measure(engine, mid);
            if fits(tried.2, limit) {
                hi = mid;
                chosen = (mid, tried);
            } else {
                lo = mid + 1;
            }
        }
    }
    let (first, (prompt, stops, tokens)) = chosen;
    if first > 0
        && let Err(err) = engine.shift_to(&prompt)
    {
        // The reply evaluates what it needs.
        tracing::warn!("context shift: {err}");
    }
    let mut options = options.clone();
    options.stop.extend(stops);
    // Without history to drop, a long message still gets what room is left.
    let room = n_ctx.saturating_sub(tokens.unwrap_or(n_ctx));
    options.max_tokens = options
        .max_tokens
        .min(u32::try_from(room).unwrap_or(u32::MAX));
    let reply = engine.generate(&prompt, &options, cancel, on_text)?;
    Ok((reply, first))
}

/// No token of a real vocabulary is longer than this in bytes: a prompt with more bytes than
/// this times the context cannot fit, whatever its tokens.
const MAX_BYTES_PER_TOKEN: usize = 64;

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
    // "2 seqs": the context's layout since side requests got their own sequence.
    hash.update(format!(
        "{} {} {} {} 2 seqs",
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
    for old in crate::llm::runtime::warm_file::states_in(dir)
        .into_iter()
        .skip(WARM_STATES_KEPT)
    {
        if old != kept {
            crate::llm::runtime::warm_file::remove(&old);
        }
    }
}

impl ChatBackend for LocalBackend {
    fn warm_up(
        &mut self,
        persona: &PersonaSettings,
        state_dir: Option<&Path>,
    ) -> Result<ReplyStats, ChatError> {
        // The emotion tag's candidate tokens (a pass over the whole vocabulary, ~20 ms on
        // Gemma's 262k) are found now rather than in the first reply.
        self.engine
            .prepare_lead(&crate::llm::conversation::emotion::tag_lead().texts);
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
            return Ok(self.engine.prefill(text)?);
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
    ) -> Result<(Reply, usize), ChatError> {
        Ok(reply(
            &mut self.engine,
            &self.prompter,
            request.persona,
            request.history,
            request.message,
            request.options,
            stream.cancel,
            stream.on_text,
        )?)
    }

    fn aside(
        &mut self,
        request: &ChatRequest,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ChatError> {
        let (prompt, stops) = self
            .prompter
            .prompt(request.persona, &[], Some(request.message));
        let mut options = request.options.clone();
        options.stop.extend(stops);
        Ok(self
            .engine
            .generate_aside(&prompt, &options, stream.cancel, stream.on_text)?)
    }

    fn keep_only(&mut self, persona: &PersonaSettings, history: &[ChatTurn]) {
        let (prompt, _) = self.prompter.prompt(persona, history, None);
        if let Err(err) = self.engine.shift_to(&prompt) {
            // The next reply evaluates what it needs.
            tracing::warn!("context shift: {err}");
        }
    }

    fn prepare(
        &mut self,
        request: &ChatRequest,
        cancel: &AtomicBool,
    ) -> Result<Option<ReplyStats>, ChatError> {
        if request.message.trim().is_empty() {
            return Ok(None);
        }
        let (prompt, _) =
            self.prompter
                .prompt(request.persona, request.history, Some(request.message));
        // A prompt that leaves no room for the reply is left to the reply, which drops turns.
        let n_ctx = self.engine.n_ctx() as usize;
        let room = n_ctx.saturating_sub(request.options.max_tokens as usize);
        if prompt.len() > n_ctx.saturating_mul(MAX_BYTES_PER_TOKEN)
            || self.engine.tokenize(&prompt).len() > room
        {
            return Ok(None);
        }
        Ok(self.engine.prefill_until(&prompt, cancel)?)
    }

    fn complete(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ChatError> {
        Ok(self
            .engine
            .generate(prompt, options, stream.cancel, stream.on_text)?)
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
