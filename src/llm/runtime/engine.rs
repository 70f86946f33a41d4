//! The llama.cpp chat engine, free of Bevy: loads a GGUF, keeps one context whose KV cache is
//! reused across turns (only tokens after the common prefix are evaluated), samples with the
//! settings' chain and streams UTF-8-safe text pieces.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaModel, RopeType};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;

use crate::config::SamplingSettings;
use crate::llm::contract::{ChatError, GenerateOptions, Reply, ReplyStats, StopReason};
use crate::llm::runtime::model_info::{ModelInfoError, read_model_info};
use crate::llm::runtime::text::{StopMatcher, Utf8Stream};
use crate::llm::runtime::warm_file;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    ModelFile(#[from] ModelInfoError),
    #[error("llama.cpp could not start: {0}")]
    Backend(String),
    #[error(
        "llama.cpp could not load {path}: {message} (corrupt file, unsupported architecture or not enough memory)"
    )]
    Load { path: PathBuf, message: String },
    #[error("could not create a context of {n_ctx} tokens: {message} (try a smaller llm.n_ctx)")]
    Context { n_ctx: u32, message: String },
    #[error("the message is empty")]
    EmptyPrompt,
    #[error(
        "the prompt is {tokens} tokens but the context holds {n_ctx}: shorten the message or raise llm.n_ctx"
    )]
    PromptTooLong { tokens: usize, n_ctx: u32 },
    #[error("llama.cpp failed while evaluating: {0}")]
    Decode(String),
    #[error("the reply's grammar cannot be used: {0}")]
    Grammar(String),
    #[error("cannot save the warm-up state to {0}")]
    State(String),
    #[error(
        "no room beside the conversation: {needed} tokens needed, {free} free in the context (tried again once the history is trimmed)"
    )]
    NoRoomAside { needed: usize, free: usize },
}

impl From<EngineError> for ChatError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::EmptyPrompt => ChatError::EmptyPrompt,
            err => ChatError::Backend(Box::new(err)),
        }
    }
}

/// How the engine is loaded, resolved from settings and the load plan.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    pub model_path: PathBuf,
    pub n_gpu_layers: u32,
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_threads: u16,
    pub n_threads_batch: u16,
    pub use_mmap: bool,
    pub use_mlock: bool,
}

/// The retry policy of [`LlmEngine::load_with_cpu_retry`] for any loader: a model file that
/// cannot be read is not retried (the CPU would fail the same way).
pub fn with_cpu_retry<T>(
    settings: EngineSettings,
    mut load: impl FnMut(EngineSettings) -> Result<T, EngineError>,
) -> (Result<T, EngineError>, Option<String>) {
    let layers = settings.n_gpu_layers;
    match load(settings.clone()) {
        Err(err) if layers > 0 && !matches!(err, EngineError::ModelFile(_)) => {
            let notice = format!(
                "loading with {layers} GPU layers failed ({err}); running on the CPU instead"
            );
            tracing::warn!("{notice}");
            let on_cpu = EngineSettings {
                n_gpu_layers: 0,
                ..settings
            };
            (load(on_cpu), Some(notice))
        }
        other => (other, None),
    }
}

/// llama.cpp's backend is process-wide and may be initialised once.
pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // The CPU module (and a GPU one) first: llama.cpp has no device without them. This
            // also sends llama.cpp's own logging through `tracing`.
            crate::llm::runtime::backends::ensure_loaded().map_err(|e| e.to_string())?;
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Backend(e.clone()))
}

type Context<'model> = LlamaContext<'model>;

/// The sequence of the context that side requests use ([`LlmEngine::generate_aside`]).
const ASIDE: i32 = 1;
/// Tokens of a side request's prompt evaluated at once: a reply asked for meanwhile waits
/// for one such batch at most (about 100 ms on 2 cores for Gemma 3 270M).
const ASIDE_BATCH: usize = 32;

self_cell::self_cell!(
    /// A model and the one context that borrows it.
    struct Session {
        owner: LlamaModel,
        #[covariant]
        dependent: Context,
    }
);

pub struct LlmEngine {
    session: Session,
    settings: EngineSettings,
    /// Tokens whose keys/values are in the KV cache, in order.
    evaluated: Vec<LlamaToken>,
    /// The text those tokens stand for (a prompt, then the reply's text as it was shown), so
    /// the next prompt that extends it is tokenized from where it differs, keeping the reply's
    /// tokens exactly as generated. Empty when unknown.
    evaluated_text: String,
    /// The one-token batch of every generated token, allocated once.
    one: LlamaBatch<'static>,
    pub load_time: Duration,
    /// The tokens a lead's texts can be made of, for the last lead's texts (see [`Lead::texts`]).
    lead_vocab: Option<(Vec<String>, Vec<LlamaToken>)>,
    /// The cache's positions can be moved (llama.cpp's context shift): not for recurrent or
    /// hybrid models, nor multi-section RoPE, where `seq_add` would assert.
    can_shift: bool,
    /// Where the tokens of a message evaluated ahead ([`Self::prefill_until`]) begin in the
    /// cache: the conversation's end. An aside that finds no room drops what follows.
    draft_from: Option<usize>,
}

// SAFETY: a llama.cpp context may be used from any thread, one thread at a time. `LlmEngine`
// owns its model and context together (self_cell), is not `Sync`, and every use goes through
// `&mut self`, so moving it to the task that runs the next job is sound. The model itself is
// already `Send + Sync` in llama-cpp-2.
#[allow(unsafe_code)]
unsafe impl Send for LlmEngine {}

impl LlmEngine {
    /// Loads the model and creates the context. Checks the file first for clear errors.
    /// [`LlmEngine::load`], and when that fails with layers on the GPU (driver error, out of
    /// GPU memory for the weights or the KV cache), loads again on the CPU. The second value
    /// says what happened, for the user.
    pub fn load_with_cpu_retry(
        settings: EngineSettings,
    ) -> (Result<Self, EngineError>, Option<String>) {
        with_cpu_retry(settings, Self::load)
    }

    pub fn load(settings: EngineSettings) -> Result<Self, EngineError> {
        let start = Instant::now();
        read_model_info(&settings.model_path)?;
        let backend = backend()?;
        let mut model_params = LlamaModelParams::default()
            .with_n_gpu_layers(settings.n_gpu_layers)
            .with_use_mmap(settings.use_mmap)
            .with_use_mlock(settings.use_mlock);
        if settings.n_gpu_layers == 0 {
            // No GPU device at all, not only no layers: llama.cpp would otherwise still put the
            // KV cache and large prompt batches on a loaded GPU module's device.
            model_params = model_params
                .with_devices(&[])
                .map_err(|e| EngineError::Backend(e.to_string()))?;
        }
        let model = LlamaModel::load_from_file(backend, &settings.model_path, &model_params)
            .map_err(|e| EngineError::Load {
                path: settings.model_path.clone(),
                message: e.to_string(),
            })?;
        let mut settings = settings;
        let trained = model.n_ctx_train();
        if trained > 0 && settings.n_ctx > trained {
            tracing::info!(
                "llm.n_ctx {} is above what the model was trained for; using {trained}",
                settings.n_ctx
            );
            settings.n_ctx = trained;
            settings.n_batch = settings.n_batch.min(trained);
        }
        let threads = i32::from(settings.n_threads.max(1));
        let context_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(settings.n_ctx))
            .with_n_batch(settings.n_batch)
            .with_n_ubatch(settings.n_batch)
            .with_n_threads(threads)
            .with_n_threads_batch(i32::from(settings.n_threads_batch.max(1)))
            // llama.cpp decides per backend and model (see docs/benchmarks.md).
            .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO)
            // Sequence 0 is the conversation, sequence 1 the side requests
            // ([`LlmEngine::generate_aside`]), sharing the context's cells.
            .with_n_seq_max(2)
            .with_kv_unified(true)
            // Sliding-window models (Gemma 3, ...) keep the whole context's keys and values, so
            // a conversation can reuse its cache instead of evaluating everything again.
            .with_swa_full(true);
        let n_ctx = settings.n_ctx;
        let can_shift = !model.is_recurrent()
            && !model.is_hybrid()
            && matches!(
                model.rope_type(),
                None | Some(RopeType::Norm | RopeType::NeoX)
            );
        let session = Session::try_new(model, |model| {
            model
                .new_context(backend, context_params)
                .map_err(|e| EngineError::Context {
                    n_ctx,
                    message: e.to_string(),
                })
        })?;
        Ok(Self {
            session,
            settings,
            evaluated: Vec::new(),
            evaluated_text: String::new(),
            one: LlamaBatch::new(1, 1),
            load_time: start.elapsed(),
            lead_vocab: None,
            can_shift,
            draft_from: None,
        })
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    pub fn model(&self) -> &LlamaModel {
        self.session.borrow_owner()
    }

    /// [`ASIDE_BATCH`], or the context's batch when smaller: llama.cpp asserts (aborts the
    /// process) on a batch larger than `n_batch`, which the settings let go down to 1.
    fn aside_batch(&self) -> usize {
        ASIDE_BATCH.min(self.settings.n_batch.max(1) as usize)
    }

    /// Tokens currently held in the KV cache.
    pub fn cached_tokens(&self) -> usize {
        self.evaluated.len()
    }

    pub fn n_ctx(&self) -> u32 {
        self.settings.n_ctx
    }

    /// Saves what the KV cache holds to `path` (llama.cpp's state file), for a later start:
    /// written to a temporary name, synced, renamed and sealed ([`warm_file`]).
    pub fn save_state(&self, path: &Path) -> Result<(), EngineError> {
        let temp = warm_file::temp_path(path);
        self.session
            .with_dependent(|_, ctx| ctx.state_save_file(&temp, &self.evaluated))
            .map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                EngineError::State(format!("{}: {e}", path.display()))
            })?;
        warm_file::seal(&temp, path)
            .map_err(|e| EngineError::State(format!("{}: {e}", path.display())))
    }

    /// The most bytes a state of `tokens` tokens of this model can take: the KV cache at
    /// f32 with room for wide key heads, the last logits and llama.cpp's headers. A file
    /// above it is damaged, and is never handed to llama.cpp (which would allocate it).
    fn max_state_bytes(&self, tokens: usize) -> u64 {
        let model = self.model();
        let embd = u64::try_from(model.n_embd()).unwrap_or(0);
        let vocab = u64::try_from(model.n_vocab()).unwrap_or(0);
        let per_token = u64::from(model.n_layer()) * embd * 2 * 4 * 8;
        (64 << 20) + (tokens as u64 + 1) * (per_token + 4) + vocab * 8
    }

    /// Restores a state saved by [`save_state`](Self::save_state) that holds exactly the tokens
    /// of `text`. Returns false, with an empty cache, when the file is missing, unreadable,
    /// damaged (size or checksum differ from its seal: it is removed) or holds anything else.
    pub fn load_state(&mut self, path: &Path, text: &str) -> bool {
        let expected = self.tokenize(text);
        let n_ctx = self.settings.n_ctx as usize;
        let data = match warm_file::verify(path, self.max_state_bytes(expected.len())) {
            Ok(data) => Some(data),
            Err(reason) => {
                if warm_file::seal_path(path).exists() {
                    tracing::warn!("warm start refused: {reason}; warming up again");
                }
                warm_file::remove(path);
                None
            }
        };
        let loaded = data.is_some_and(|data| {
            self.session
                .with_dependent_mut(|_, ctx| ctx.state_load_file(&data, n_ctx))
                .is_ok_and(|tokens| tokens == expected)
        });
        self.draft_from = None;
        if loaded {
            self.evaluated = expected;
            self.evaluated_text = text.to_owned();
        } else {
            self.session
                .with_dependent_mut(|_, ctx| ctx.clear_kv_cache());
            self.evaluated.clear();
            self.evaluated_text.clear();
        }
        loaded
    }

    /// Tokenizes text as a whole prompt (with BOS when the model wants one, and special tokens
    /// of chat templates recognised).
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        self.model().vocab().tokenize(text.as_bytes(), true, true)
    }

    /// Evaluates `prompt` so a later prompt starting with it pays only for what follows
    /// (used to warm up with the system prompt).
    pub fn prefill(&mut self, prompt: &str) -> Result<ReplyStats, EngineError> {
        let start = Instant::now();
        let tokens = self.prompt_tokens(prompt);
        let (reused, evaluated) = self.evaluate_prompt(&tokens, prompt)?;
        let prompt_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(ReplyStats {
            prompt_tokens: tokens.len(),
            reused_tokens: reused,
            prompt_ms,
            prompt_tps: rate(evaluated, prompt_ms),
            ..ReplyStats::empty()
        })
    }

    /// Evaluates `prompt` ahead of a reply that will likely start with it (the message being
    /// typed), in batches of [`ASIDE_BATCH`] so that a stop set by a message waits for one
    /// batch at most. `None` when it stopped; what was evaluated by then stays cached.
    pub fn prefill_until(
        &mut self,
        prompt: &str,
        cancel: &AtomicBool,
    ) -> Result<Option<ReplyStats>, EngineError> {
        let start = Instant::now();
        let tokens = self.prompt_tokens(prompt);
        let Some((reused, evaluated)) =
            self.evaluate_prompt_until(&tokens, prompt, Some(cancel))?
        else {
            return Ok(None);
        };
        let prompt_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(Some(ReplyStats {
            prompt_tokens: tokens.len(),
            reused_tokens: reused,
            prompt_ms,
            prompt_tps: rate(evaluated, prompt_ms),
            ..ReplyStats::empty()
        }))
    }

    /// Empties the KV cache and evaluates `tokens` as one prompt (in batches of `n_batch`, logits
    /// for the last token only), like llama-bench's `pp` test; returns how long it took.
    /// For speed measurements: the cache holds no known text afterwards.
    pub fn evaluate_fresh(&mut self, tokens: &[LlamaToken]) -> Result<Duration, EngineError> {
        self.session
            .with_dependent_mut(|_, ctx| ctx.clear_kv_cache());
        self.evaluated.clear();
        let start = Instant::now();
        self.evaluate_prompt(tokens, "")?;
        let elapsed = start.elapsed();
        self.evaluated_text.clear();
        Ok(elapsed)
    }

    /// Generates a reply to `prompt`, calling `on_text` with each new piece of text.
    /// `cancel` is checked before every token.
    pub fn generate(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, EngineError> {
        let start = Instant::now();
        if prompt.trim().is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let tokens = self.prompt_tokens(prompt);
        if tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let (reused, evaluated_now) = self.evaluate_prompt(&tokens, prompt)?;
        let prompt_ms = start.elapsed().as_secs_f64() * 1000.0;

        let mut sampler = Sampler::new(&options.sampling);
        // While the lead is being written, its grammar filters the candidates first (only the
        // tokens its texts can be made of, when it names them).
        let lead_vocab = match &options.lead {
            Some(lead) if !lead.texts.is_empty() => Some(self.lead_vocab(&lead.texts)),
            _ => None,
        };
        let mut lead = match &options.lead {
            Some(lead) => Some((
                LlamaSampler::grammar(self.model(), &lead.grammar, "root")
                    .map_err(|e| EngineError::Grammar(e.to_string()))?,
                lead.ends_with.as_str(),
                Vec::new(),
            )),
            None => None,
        };
        let mut utf8 = Utf8Stream::default();
        let mut bytes = Vec::with_capacity(32);
        let mut stops = StopMatcher::new(&options.stop);
        let mut text = String::new();
        let mut emit = |piece: &str, text: &mut String| {
            if !piece.is_empty() {
                text.push_str(piece);
                on_text(piece);
            }
        };
        let mut generated = 0usize;
        let mut first_token_at = None;
        let lead_start = Instant::now();
        let (mut lead_tokens, mut lead_ms) = (0, 0.0);
        let n_ctx = self.settings.n_ctx as usize;
        let stop_reason = loop {
            if cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if generated >= options.max_tokens as usize {
                break StopReason::MaxTokens;
            }
            if self.evaluated.len() >= n_ctx {
                break StopReason::ContextFull;
            }
            let constrained = lead.as_mut().map(|(grammar, _, _)| {
                self.session.with_dependent_mut(|_, ctx| {
                    sampler.constrained(ctx, grammar, lead_vocab.as_deref())
                })
            });
            let token = match (constrained, &mut lead) {
                (Some(Some(token)), Some((grammar, _, tokens))) => {
                    grammar.accept(token);
                    tokens.push(token);
                    token
                }
                (Some(None), _) => {
                    tracing::warn!(
                        "no token of this model fits the reply's opening; going on without it"
                    );
                    lead = None;
                    continue;
                }
                _ => self
                    .session
                    .with_dependent_mut(|_, ctx| sampler.sample(ctx)),
            };
            first_token_at.get_or_insert_with(Instant::now);
            generated += 1;
            if !self.spell(token, &mut bytes) {
                break StopReason::EndOfGeneration;
            }
            let piece = utf8.push(&bytes);
            let (safe, hit) = stops.push(&piece);
            emit(&safe, &mut text);
            if hit {
                break StopReason::StopString;
            }
            self.decode_one(token)?;
            self.evaluated_text.push_str(&piece);
            if let Some((_, ends_with, tokens)) = &lead
                && text.contains(*ends_with)
            {
                // The opening is written: the free sampler goes on, knowing its tokens.
                sampler.accept_many(tokens);
                lead_tokens = tokens.len();
                lead_ms = lead_start.elapsed().as_secs_f64() * 1000.0;
                lead = None;
            }
        };
        if !matches!(stop_reason, StopReason::StopString) {
            let tail = utf8.finish();
            self.evaluated_text.push_str(&tail);
            let (safe, _) = stops.push(&tail);
            emit(&safe, &mut text);
            emit(&stops.finish(), &mut text);
        }
        let decode_start = first_token_at.unwrap_or_else(Instant::now);
        let decode_ms = decode_start.elapsed().as_secs_f64() * 1000.0;
        Ok(Reply {
            text,
            stats: ReplyStats {
                prompt_tokens: tokens.len(),
                reused_tokens: reused,
                prompt_ms,
                prompt_tps: rate(evaluated_now, prompt_ms),
                ttft_ms: first_token_at.map_or(0.0, |t| (t - start).as_secs_f64() * 1000.0),
                generated_tokens: generated,
                decode_ms,
                decode_tps: rate(generated.saturating_sub(1), decode_ms),
                stop_reason,
                lead_tokens,
                lead_ms,
            },
        })
    }

    /// Generates a reply to `prompt` in sequence [`ASIDE`] of the context, beside the
    /// conversation: the conversation's cached tokens (sequence 0) stay as they are, so its
    /// next prompt is evaluated from where it left off. The prompt is evaluated in small
    /// batches and `cancel` is checked between them and before every token, so a reply the
    /// user asks for meanwhile waits for one batch at most. No grammar, no lead.
    pub fn generate_aside(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Reply, EngineError> {
        let start = Instant::now();
        if prompt.trim().is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let tokens = self.tokenize(prompt);
        if tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let needed = tokens.len() + options.max_tokens as usize;
        let free =
            |engine: &Self| (engine.settings.n_ctx as usize).saturating_sub(engine.evaluated.len());
        let n_ctx = self.settings.n_ctx as usize;
        // A message evaluated ahead and not sent gives its cells back first, when that makes
        // room (otherwise it stays for its message).
        if needed > free(self)
            && self
                .draft_from
                .is_some_and(|from| needed <= n_ctx.saturating_sub(from))
        {
            self.drop_draft();
        }
        if needed > free(self) {
            return Err(EngineError::NoRoomAside {
                needed,
                free: free(self),
            });
        }
        let clear = |engine: &mut Self| {
            engine.session.with_dependent_mut(|_, ctx| {
                ctx.clear_kv_cache_seq(Some(ASIDE as u32), None, None)
                    .unwrap_or(false)
            })
        };
        clear(self);
        let result = self.aside_inner(&tokens, options, cancel, on_text, start);
        // Whatever happened, the cells go back to the conversation.
        if !clear(self) {
            // A memory type that cannot drop a sequence: the conversation is evaluated again.
            self.session
                .with_dependent_mut(|_, ctx| ctx.clear_kv_cache());
            self.evaluated.clear();
            self.evaluated_text.clear();
            self.draft_from = None;
        }
        result
    }

    /// Drops the conversation's cached tokens (sequence 0) from position `keep` on. Some
    /// memory types can't drop a range: then the whole cache is cleared, with the tokens and
    /// text known to be in it, and the answer is `false`.
    fn cut_cache(&mut self, keep: usize) -> bool {
        let from = u32::try_from(keep).unwrap_or(u32::MAX);
        let cut = self.session.with_dependent_mut(|_, ctx| {
            ctx.clear_kv_cache_seq(Some(0), Some(from), None)
                .unwrap_or(false)
        });
        if !cut {
            self.session
                .with_dependent_mut(|_, ctx| ctx.clear_kv_cache());
            self.evaluated.clear();
            self.evaluated_text.clear();
        }
        cut
    }

    /// Takes the tokens of a message evaluated ahead and never sent out of the cache (see
    /// [`Self::draft_from`]); the conversation before it stays cached, with the text it
    /// spells, so its next prompt is evaluated from there as before the draft.
    fn drop_draft(&mut self) {
        let Some(from) = self.draft_from.take() else {
            return;
        };
        if from >= self.evaluated.len() {
            return;
        }
        if !self.cut_cache(from) {
            return;
        }
        // The kept tokens spell the start of the draft's prompt (a leading BOS that the text
        // does not spell left out); when they do not, the text is unknown and the next prompt
        // finds what it shares by the tokens' pieces (`kept_prefix`).
        let vocab = self.model().vocab();
        let mut spelled = Vec::new();
        for (i, &token) in self.evaluated[..from].iter().enumerate() {
            let at = spelled.len();
            vocab.token_to_piece_into(token, &mut spelled, true, None);
            if i == 0
                && token == vocab.bos()
                && !self.evaluated_text.as_bytes().starts_with(&spelled)
            {
                spelled.truncate(at);
            }
        }
        let known = self.evaluated_text.as_bytes().starts_with(&spelled)
            && self.evaluated_text.is_char_boundary(spelled.len());
        if known {
            self.evaluated_text.truncate(spelled.len());
        } else {
            self.evaluated_text.clear();
        }
        self.evaluated.truncate(from);
        tracing::debug!("a message evaluated ahead gave its cells to an aside; {from} tokens kept");
    }

    fn aside_inner(
        &mut self,
        tokens: &[LlamaToken],
        options: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
        start: Instant,
    ) -> Result<Reply, EngineError> {
        let batch = self.aside_batch();
        let cancelled = !self.decode_in_batches(tokens, 0, ASIDE, batch, Some(cancel))?;
        let prompt_ms = start.elapsed().as_secs_f64() * 1000.0;
        let mut sampler = Sampler::new(&options.sampling);
        let mut utf8 = Utf8Stream::default();
        let mut stops = StopMatcher::new(&options.stop);
        let mut bytes = Vec::with_capacity(32);
        let mut text = String::new();
        let mut generated = 0usize;
        let mut first_token_at = None;
        let stop_reason = loop {
            if cancelled || cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if generated >= options.max_tokens as usize {
                break StopReason::MaxTokens;
            }
            let token = self
                .session
                .with_dependent_mut(|_, ctx| sampler.sample(ctx));
            first_token_at.get_or_insert_with(Instant::now);
            generated += 1;
            if !self.spell(token, &mut bytes) {
                break StopReason::EndOfGeneration;
            }
            let (safe, hit) = stops.push(&utf8.push(&bytes));
            text.push_str(&safe);
            on_text(&safe);
            if hit {
                break StopReason::StopString;
            }
            self.decode_token(token, tokens.len() + generated - 1, ASIDE)?;
        };
        if !matches!(stop_reason, StopReason::StopString) {
            let (safe, _) = stops.push(&utf8.finish());
            let rest = safe + &stops.finish();
            text.push_str(&rest);
            on_text(&rest);
        }
        let decode_ms = first_token_at.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
        Ok(Reply {
            text,
            stats: ReplyStats {
                prompt_tokens: tokens.len(),
                prompt_ms,
                prompt_tps: rate(tokens.len(), prompt_ms),
                ttft_ms: first_token_at.map_or(0.0, |t| (t - start).as_secs_f64() * 1000.0),
                generated_tokens: generated,
                decode_ms,
                decode_tps: rate(generated.saturating_sub(1), decode_ms),
                stop_reason,
                ..ReplyStats::empty()
            },
        })
    }

    /// The text of a generated `token` into `bytes` (cleared first); `false` for an
    /// end-of-generation token, which has none.
    fn spell(&self, token: LlamaToken, bytes: &mut Vec<u8>) -> bool {
        let vocab = self.model().vocab();
        if vocab.is_eog(token) {
            return false;
        }
        bytes.clear();
        vocab.token_to_piece_into(token, bytes, false, None);
        true
    }

    /// Finds the tokens a lead with these texts can be made of now (see [`Lead::texts`]),
    /// so the first reply with that lead does not pay for it.
    pub fn prepare_lead(&mut self, texts: &[String]) {
        self.lead_vocab(texts);
    }

    /// The tokens whose piece occurs in one of `texts` (a superset of what a grammar allowing
    /// exactly those texts accepts at any step), computed once per set of texts.
    fn lead_vocab(&mut self, texts: &[String]) -> Vec<LlamaToken> {
        if let Some((for_texts, tokens)) = &self.lead_vocab
            && for_texts == texts
        {
            return tokens.clone();
        }
        let n_vocab = self.model().n_vocab().max(0);
        let mut bytes = Vec::with_capacity(32);
        let tokens: Vec<LlamaToken> = (0..n_vocab)
            .map(LlamaToken::new)
            .filter(|&token| {
                bytes.clear();
                self.model()
                    .vocab()
                    .token_to_piece_into(token, &mut bytes, false, None);
                !bytes.is_empty()
                    && texts
                        .iter()
                        .any(|text| text.as_bytes().windows(bytes.len()).any(|w| w == bytes))
            })
            .collect();
        self.lead_vocab = Some((texts.to_vec(), tokens.clone()));
        tokens
    }

    /// Makes the cache hold `prompt` (the same conversation without its oldest turns) by a
    /// context shift when it can ([`LlmEngine::shift_out_dropped`]), and applies the shift
    /// now (the last kept token is evaluated again: llama.cpp moves the keys on the next
    /// decode), so the next reply starts as fast as any other. Returns how many tokens were
    /// taken out. Only for turns dropped from the conversation in the cache: the kept
    /// tokens' keys were computed with the dropped turns before them (as with llama-server's
    /// context shift), which a new conversation (after Clear) must not inherit, so replies
    /// never shift on their own.
    pub fn shift_to(&mut self, prompt: &str) -> Result<usize, EngineError> {
        let shifted = self.shift_out_dropped(prompt);
        if shifted > 0 {
            tracing::info!(
                "context shift: {shifted} tokens of dropped turns taken out of the cache, {} kept",
                self.evaluated.len()
            );
            let tokens = self.evaluated.clone();
            let text = self.evaluated_text.clone();
            self.evaluate_prompt(&tokens, &text)?;
        }
        Ok(shifted)
    }

    /// When `prompt` is the cached text with one stretch taken out (the oldest turns dropped
    /// from a conversation: `X + D + Y` cached, `X + Y + new` asked), takes that stretch's
    /// tokens out of the cache and moves the later ones back (llama.cpp's context shift), so
    /// only the new text is evaluated instead of everything after `X`. `Y` is the longest
    /// stretch of the cache that continues the prompt after `X` (a template that trims the
    /// last reply makes the cache's end differ: what follows `Y` is taken out too and
    /// evaluated again). The stretches start and end on boundaries of the cached tokens as
    /// they were evaluated; the kept tokens keep the keys computed while the dropped turns
    /// were there, as with llama-server's context shift. Returns how many tokens were taken
    /// out (0: the prompt is not such a text, or the model cannot shift).
    fn shift_out_dropped(&mut self, prompt: &str) -> usize {
        /// A shift must keep at least this many cached tokens after the stretch.
        const MIN_KEPT: usize = 8;
        if !self.can_shift
            || self.evaluated_text.is_empty()
            || prompt.starts_with(self.evaluated_text.as_str())
        {
            return 0;
        }
        // What the cached tokens spell, and where each one starts (a leading BOS that the
        // prompt does not spell is left out).
        let vocab = self.model().vocab();
        let mut spelled = Vec::with_capacity(self.evaluated_text.len() + 16);
        let mut starts = Vec::with_capacity(self.evaluated.len() + 1);
        for &token in &self.evaluated {
            starts.push(spelled.len());
            vocab.token_to_piece_into(token, &mut spelled, true, None);
        }
        starts.push(spelled.len());
        let n = self.evaluated.len();
        let skip = usize::from(
            self.evaluated.first() == Some(&vocab.bos())
                && !prompt.as_bytes().starts_with(&spelled[..starts[1.min(n)]]),
        );
        let offset = |token: usize| starts[token] - starts[skip];
        let old = &spelled[starts[skip]..];
        let asked = prompt.as_bytes();
        let common = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
        // X: up to the last token boundary within the common prefix.
        let within = common(old, asked);
        let keep = (skip..=n)
            .take_while(|&token| offset(token) <= within)
            .last()
            .unwrap_or(skip);
        if keep <= skip || !prompt.is_char_boundary(offset(keep)) {
            return 0;
        }
        let rest = &asked[offset(keep)..];
        // Y: the cached stretch that continues the prompt after X the furthest, cut to a
        // token boundary that is a character boundary of the prompt.
        let mut best: Option<(usize, usize)> = None;
        for resume in keep + 1..n {
            let matched = common(&old[offset(resume)..], rest);
            let end = (resume..=n)
                .take_while(|&token| offset(token) - offset(resume) <= matched)
                .filter(|&token| {
                    prompt.is_char_boundary(offset(keep) + offset(token) - offset(resume))
                })
                .last()
                .unwrap_or(resume);
            if end - resume >= MIN_KEPT && best.is_none_or(|(r, e)| end - resume > e - r) {
                best = Some((resume, end));
            }
        }
        let Some((resume, end)) = best else {
            return 0;
        };
        let kept_text = prompt[..offset(keep) + offset(end) - offset(resume)].to_owned();
        let (from, to, tail) = (keep as u32, resume as u32, end as u32);
        let shifted = self.session.with_dependent_mut(|_, ctx| {
            ctx.kv_cache_seq_rm(0, Some(tail), None).is_ok()
                && ctx.kv_cache_seq_rm(0, Some(from), Some(to)).is_ok()
                && ctx
                    .kv_cache_seq_add(0, Some(to), None, -((to - from) as i32))
                    .is_ok()
        });
        if !shifted {
            // Whatever the cache holds now, it is not known: evaluate everything again.
            self.session
                .with_dependent_mut(|_, ctx| ctx.clear_kv_cache());
            self.evaluated.clear();
            self.evaluated_text.clear();
            return 0;
        }
        self.evaluated_text = kept_text;
        self.evaluated.truncate(end);
        self.evaluated.drain(keep..resume);
        n - (end - resume) - keep
    }

    /// The tokens of `prompt`. When it extends the text already in the cache (the previous
    /// prompt and the reply as it was generated), the cached tokens followed by the new text's
    /// tokens: re-tokenizing the whole conversation would split the earlier replies differently
    /// from how they were generated and invalidate the cache from the first of them on.
    fn prompt_tokens(&self, prompt: &str) -> Vec<LlamaToken> {
        if !prompt.is_empty() && prompt == self.evaluated_text {
            // All of it is cached (a context shift kept exactly this text).
            return self.evaluated.clone();
        }
        let kept = match prompt.strip_prefix(self.evaluated_text.as_str()) {
            Some(rest) if !self.evaluated_text.is_empty() && !rest.is_empty() => {
                Some((self.evaluated.len(), prompt.len() - rest.len()))
            }
            _ => self.kept_prefix(prompt),
        };
        if let Some((kept, at)) = kept {
            let rest = &prompt[at..];
            let vocab = self.model().vocab();
            let new = vocab.tokenize(rest.as_bytes(), false, true);
            // Tokenizers that put a space before every text they start (SentencePiece's
            // dummy prefix) would change the text: then tokenize the whole prompt instead.
            // Piece by piece: llama.cpp's detokenizer strips exactly that leading space.
            let pieces: Vec<u8> = new
                .iter()
                .flat_map(|&token| vocab.token_to_piece(token, true, None))
                .collect();
            if pieces == rest.as_bytes() {
                let mut tokens = self.evaluated[..kept].to_vec();
                tokens.extend(new);
                return tokens;
            }
        }
        self.tokenize(prompt)
    }

    /// When `prompt` departs from the cached text (a message evaluated ahead while it was
    /// being typed, then sent longer or changed): how many cached tokens spell its start, up
    /// to the last word start before the two part, and the prompt's bytes they spell. Only
    /// the rest is tokenized then; tokenizing the whole prompt instead would spell earlier
    /// replies as the tokenizer does rather than as they were generated and cached, and
    /// evaluate them again. `None` when no word start is shared.
    fn kept_prefix(&self, prompt: &str) -> Option<(usize, usize)> {
        let vocab = self.model().vocab();
        let asked = prompt.as_bytes();
        let mut piece = Vec::new();
        let (mut at, mut kept, mut after_space) = (0, None, false);
        for (i, &token) in self.evaluated.iter().enumerate() {
            piece.clear();
            vocab.token_to_piece_into(token, &mut piece, true, None);
            // A leading BOS that the prompt does not spell.
            if i == 0 && token == vocab.bos() && !asked.starts_with(&piece) {
                continue;
            }
            let word_start = after_space || piece.first().is_some_and(u8::is_ascii_whitespace);
            if i > 0 && word_start && prompt.is_char_boundary(at) {
                kept = Some((i, at));
            }
            if !asked[at..].starts_with(&piece) {
                break;
            }
            at += piece.len();
            after_space = piece.last().is_some_and(u8::is_ascii_whitespace);
        }
        kept.filter(|&(_, at)| at > 0)
    }

    /// Makes the KV cache hold exactly `tokens` (the tokens of `text`), evaluating only what
    /// follows the common prefix with what is cached. Returns (reused, evaluated) token counts.
    fn evaluate_prompt(
        &mut self,
        tokens: &[LlamaToken],
        text: &str,
    ) -> Result<(usize, usize), EngineError> {
        let done = self.evaluate_prompt_until(tokens, text, None)?;
        Ok(done.unwrap_or_default())
    }

    /// [`Self::evaluate_prompt`], checking `cancel` before each batch of [`ASIDE_BATCH`] when
    /// given: `None` when it stopped, the cache then holding the tokens evaluated until then.
    fn evaluate_prompt_until(
        &mut self,
        tokens: &[LlamaToken],
        text: &str,
        cancel: Option<&AtomicBool>,
    ) -> Result<Option<(usize, usize)>, EngineError> {
        // Stopped before it began: the cache and what it is known to spell stay as they were.
        if cancel.is_some_and(|cancel| cancel.load(Ordering::Relaxed)) {
            return Ok(None);
        }
        // Until the cache holds `tokens`, what it holds is not known as text.
        self.evaluated_text.clear();
        let n_ctx = self.settings.n_ctx as usize;
        if tokens.len() >= n_ctx {
            return Err(EngineError::PromptTooLong {
                tokens: tokens.len(),
                n_ctx: self.settings.n_ctx,
            });
        }
        let mut common = self
            .evaluated
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        // The last prompt token is always evaluated again: its logits start the reply.
        if common == tokens.len() {
            common = common.saturating_sub(1);
        }
        if !self.cut_cache(common) {
            common = 0;
        }
        self.evaluated.truncate(common);
        // A message evaluated ahead begins where it departs from the conversation's tokens
        // (a draft that extends an earlier draft begins where that one did).
        self.draft_from = match (cancel, self.draft_from) {
            (Some(_), Some(from)) => Some(from.min(common)),
            (Some(_), None) => Some(common),
            (None, _) => None,
        };

        let pending = &tokens[common..];
        // A failed batch leaves `evaluated` short of what the cache holds; the next prompt
        // clears the cache from where `evaluated` ends.
        match cancel {
            None => {
                let n_batch = self.settings.n_batch.max(1) as usize;
                self.decode_in_batches(pending, common, 0, n_batch, None)?;
                self.evaluated.extend_from_slice(pending);
            }
            Some(cancel) => {
                let batch = self.aside_batch();
                for chunk in pending.chunks(batch) {
                    if cancel.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    let first = self.evaluated.len();
                    self.decode_in_batches(chunk, first, 0, batch, None)?;
                    self.evaluated.extend_from_slice(chunk);
                }
            }
        }
        self.evaluated_text.push_str(text);
        Ok(Some((common, pending.len())))
    }

    /// Evaluates `tokens` in sequence `seq` at the positions from `first` on, `size` at a
    /// time, with logits for the last one only. `cancel` is checked before each batch:
    /// `false` when it stopped there.
    fn decode_in_batches(
        &mut self,
        tokens: &[LlamaToken],
        first: usize,
        seq: i32,
        size: usize,
        cancel: Option<&AtomicBool>,
    ) -> Result<bool, EngineError> {
        let mut batch = LlamaBatch::new(size, 1);
        for (index, chunk) in tokens.chunks(size).enumerate() {
            if cancel.is_some_and(|cancel| cancel.load(Ordering::Relaxed)) {
                return Ok(false);
            }
            batch.clear();
            for (i, token) in chunk.iter().enumerate() {
                let at = index * size + i;
                batch
                    .add(*token, (first + at) as i32, &[seq], at + 1 == tokens.len())
                    .map_err(|e| EngineError::Decode(e.to_string()))?;
            }
            self.session
                .with_dependent_mut(|_, ctx| ctx.decode(&mut batch))
                .map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        Ok(true)
    }

    /// Evaluates one generated `token` in sequence `seq` at `pos` (logits for it).
    fn decode_token(&mut self, token: LlamaToken, pos: usize, seq: i32) -> Result<(), EngineError> {
        let batch = &mut self.one;
        batch.clear();
        batch
            .add(token, pos as i32, &[seq], true)
            .map_err(|e| EngineError::Decode(e.to_string()))?;
        self.session
            .with_dependent_mut(|_, ctx| ctx.decode(batch))
            .map_err(|e| EngineError::Decode(e.to_string()))?;
        Ok(())
    }

    fn decode_one(&mut self, token: LlamaToken) -> Result<(), EngineError> {
        self.decode_token(token, self.evaluated.len(), 0)?;
        self.evaluated.push(token);
        Ok(())
    }
}

fn rate(count: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        count as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// The sampling chain: repeat penalty, top-k, top-p, min-p, temperature, then a seeded draw;
/// temperature 0 is greedy. Picks the same tokens as llama.cpp's chain of those samplers
/// (`llama_sampler_penalties` first) but faster on large vocabularies (Gemma 3: 262k tokens):
/// - the repeat penalty is applied to the at most 64 tokens it concerns, where llama.cpp's
///   penalties sampler looks every candidate up in a hash map;
/// - greedy picks the highest (penalized) logit straight from llama.cpp's logits, without
///   building the candidate array (the first of equal logits, like llama.cpp's greedy);
/// - otherwise the candidate array is filled into one buffer kept across tokens.
struct Sampler {
    /// Everything after the repeat penalty.
    chain: LlamaSampler,
    greedy: bool,
    penalty: Option<RepeatPenalty>,
    candidates: LlamaTokenDataArray,
}

impl Sampler {
    fn new(sampling: &SamplingSettings) -> Self {
        let penalty = ((sampling.repeat_penalty - 1.0).abs() > f32::EPSILON)
            .then(|| RepeatPenalty::new(sampling.repeat_penalty, 64));
        let greedy = sampling.temperature <= 0.0;
        let mut chain = Vec::new();
        if greedy {
            chain.push(LlamaSampler::greedy());
        } else {
            if sampling.top_k > 0 {
                chain.push(LlamaSampler::top_k(
                    i32::try_from(sampling.top_k).unwrap_or(i32::MAX),
                ));
            }
            chain.push(LlamaSampler::top_p(sampling.top_p, 1));
            chain.push(LlamaSampler::min_p(sampling.min_p, 1));
            chain.push(LlamaSampler::temp(sampling.temperature));
            let seed = sampling.seed.unwrap_or_else(random_seed);
            chain.push(LlamaSampler::dist(seed));
        }
        Self {
            chain: LlamaSampler::chain_simple(chain),
            greedy,
            penalty,
            candidates: LlamaTokenDataArray::new(Vec::new(), false),
        }
    }

    /// Samples from the last evaluated token's logits and accepts the token.
    fn sample(&mut self, ctx: &LlamaContext) -> LlamaToken {
        let token = if self.greedy {
            LlamaToken::new(greedy(ctx.get_logits_ith(-1), self.penalty.as_ref()) as i32)
        } else {
            self.fill(ctx);
            self.candidates.apply_sampler(&mut self.chain);
            self.candidates
                .selected_token()
                .expect("llama.cpp's dist sampler selects a token")
        };
        self.accept(token);
        token
    }

    /// The token the grammar allows and the chain picks (None when the grammar allows none);
    /// accepted neither by the chain nor the grammar (see [`Sampler::accept_many`]).
    /// `only`: the candidates to consider (a superset of what the grammar allows), or all.
    fn constrained(
        &mut self,
        ctx: &LlamaContext,
        grammar: &mut LlamaSampler,
        only: Option<&[LlamaToken]>,
    ) -> Option<LlamaToken> {
        match only {
            Some(tokens) => self.fill_only(ctx, tokens),
            None => self.fill(ctx),
        }
        self.candidates.apply_sampler(grammar);
        self.candidates.apply_sampler(&mut self.chain);
        self.candidates.selected_token()
    }

    /// The candidate array of the last token's logits, with the repeat penalty applied.
    fn fill(&mut self, ctx: &LlamaContext) {
        let logits = ctx.get_logits_ith(-1);
        let data = &mut self.candidates.data;
        data.clear();
        data.extend(
            logits
                .iter()
                .enumerate()
                .map(|(i, &logit)| LlamaTokenData::new(LlamaToken::new(i as i32), logit, 0.0)),
        );
        if let Some(penalty) = &self.penalty {
            for &token in penalty.counts.keys() {
                if let Some(candidate) = data.get_mut(token.0 as usize) {
                    candidate.set_logit(penalty.apply(candidate.logit()));
                }
            }
        }
        self.candidates.selected = None;
        self.candidates.sorted = false;
    }

    /// As [`Sampler::fill`], with only `tokens` as candidates: the grammar then checks a few
    /// hundred pieces instead of the whole vocabulary, and the chain (top-k, top-p, min-p,
    /// temperature, dist) sees the same finite candidates as after a full grammar pass.
    fn fill_only(&mut self, ctx: &LlamaContext, tokens: &[LlamaToken]) {
        let logits = ctx.get_logits_ith(-1);
        let data = &mut self.candidates.data;
        data.clear();
        data.extend(tokens.iter().filter_map(|&token| {
            let logit = *logits.get(usize::try_from(token.0).ok()?)?;
            let logit = match &self.penalty {
                Some(penalty) if penalty.counts.contains_key(&token) => penalty.apply(logit),
                _ => logit,
            };
            Some(LlamaTokenData::new(token, logit, 0.0))
        }));
        self.candidates.selected = None;
        self.candidates.sorted = false;
    }

    fn accept(&mut self, token: LlamaToken) {
        if let Some(penalty) = &mut self.penalty {
            penalty.accept(token);
        }
        self.chain.accept(token);
    }

    fn accept_many(&mut self, tokens: &[LlamaToken]) {
        for &token in tokens {
            self.accept(token);
        }
    }
}

/// llama.cpp's repeat penalty (`llama_sampler_init_penalties(n_vocab, last_n, repeat, 0, 0)`):
/// the logit of a token among the last `last_n` accepted ones is divided by the penalty when
/// positive, multiplied by it otherwise.
struct RepeatPenalty {
    penalty: f32,
    last_n: usize,
    last: VecDeque<LlamaToken>,
    counts: HashMap<LlamaToken, u32>,
}

impl RepeatPenalty {
    fn new(penalty: f32, last_n: usize) -> Self {
        Self {
            penalty,
            last_n,
            last: VecDeque::with_capacity(last_n),
            counts: HashMap::new(),
        }
    }

    fn accept(&mut self, token: LlamaToken) {
        *self.counts.entry(token).or_default() += 1;
        if self.last.len() >= self.last_n
            && let Some(old) = self.last.pop_front()
            && let Some(count) = self.counts.get_mut(&old)
        {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&old);
            }
        }
        self.last.push_back(token);
    }

    /// The logit of a penalized token.
    fn apply(&self, logit: f32) -> f32 {
        if logit <= 0.0 {
            logit * self.penalty
        } else {
            logit / self.penalty
        }
    }
}

/// The index of llama.cpp's greedy pick after the repeat penalty: the first of the highest
/// logits, the few penalized ones looked up once instead of every logit being looked up.
fn greedy(logits: &[f32], penalty: Option<&RepeatPenalty>) -> usize {
    let mut penalized: Vec<(usize, f32)> = penalty.map_or_else(Vec::new, |penalty| {
        penalty
            .counts
            .keys()
            .filter_map(|token| {
                let i = usize::try_from(token.0).ok()?;
                Some((i, penalty.apply(*logits.get(i)?)))
            })
            .collect()
    });
    penalized.sort_unstable_by_key(|&(i, _)| i);
    // In index order, replacing only on a strictly higher logit, as llama.cpp's loop does.
    let mut best: Option<(usize, f32)> = None;
    let mut scan = |from: usize, values: &[f32]| {
        for (i, &value) in values.iter().enumerate() {
            match best {
                Some((_, top)) if value.partial_cmp(&top) != Some(std::cmp::Ordering::Greater) => {}
                _ => best = Some((from + i, value)),
            }
        }
    };
    let mut from = 0;
    for &(i, value) in &penalized {
        scan(from, &logits[from..i]);
        scan(i, &[value]);
        from = i + 1;
    }
    scan(from, &logits[from..]);
    best.map_or(0, |(i, _)| i)
}

fn random_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(n_gpu_layers: u32) -> EngineSettings {
        EngineSettings {
            model_path: "m.gguf".into(),
            n_gpu_layers,
            n_ctx: 256,
            n_batch: 64,
            n_threads: 1,
            n_threads_batch: 1,
            use_mmap: true,
            use_mlock: false,
        }
    }

    fn gpu_fails(s: EngineSettings) -> Result<u32, EngineError> {
        if s.n_gpu_layers > 0 {
            Err(EngineError::Load {
                path: s.model_path,
                message: "cudaMalloc failed: out of memory".into(),
            })
        } else {
            Ok(s.n_gpu_layers)
        }
    }

    #[test]
    fn greedy_picks_like_llama_cpp_after_the_repeat_penalty() {
        let logits = [1.0, 3.0, -2.0, 3.0, 2.9, f32::NAN];
        assert_eq!(greedy(&logits, None), 1, "the first of equal logits");
        let mut penalty = RepeatPenalty::new(1.5, 2);
        penalty.accept(LlamaToken::new(1));
        // 3.0 / 1.5 = 2.0: token 3 is now the first of the highest.
        assert_eq!(greedy(&logits, Some(&penalty)), 3);
        penalty.accept(LlamaToken::new(3));
        assert_eq!(greedy(&logits, Some(&penalty)), 4);
        // Only the last two tokens count: 1 drops out of the window.
        penalty.accept(LlamaToken::new(3));
        assert_eq!(greedy(&logits, Some(&penalty)), 1);
        assert_eq!(penalty.counts.get(&LlamaToken::new(3)), Some(&2));
        assert_eq!(penalty.apply(-2.0), -3.0, "negative logits are multiplied");
        // A NaN first is never beaten, as in llama.cpp's loop.
        assert_eq!(greedy(&[f32::NAN, 1.0], None), 0);
    }

    #[test]
    fn a_gpu_failure_is_retried_on_the_cpu_with_a_notice() {
        let (loaded, notice) = with_cpu_retry(settings(33), gpu_fails);
        assert_eq!(loaded.ok(), Some(0), "loaded with 0 GPU layers");
        let notice = notice.expect("the user is told");
        assert!(notice.contains("33 GPU layers failed") && notice.contains("out of memory"));
        assert!(notice.contains("running on the CPU"));
        // On the CPU already, or a file problem: no retry, no notice.
        let (loaded, notice) = with_cpu_retry(settings(0), gpu_fails);
        assert_eq!((loaded.ok(), notice), (Some(0), None));
        let mut calls = 0;
        let (loaded, notice) = with_cpu_retry(settings(33), |s| {
            calls += 1;
            Err::<(), _>(EngineError::ModelFile(ModelInfoError::Missing(
                s.model_path,
            )))
        });
        assert!(loaded.is_err() && notice.is_none());
        assert_eq!(calls, 1);
    }
}
