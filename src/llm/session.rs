//! One conversation, the same for the mascot and every terminal command: load -> warm-up ->
//! reply -> trim history -> emotion, written once, over a [`ChatBackend`].
//!
//! A backend only knows how to run a model: warm up on the persona, stream a reply to a
//! message after some history, and report its numbers. Everything about the conversation
//! (which turns are still in the prompt, the emotion tag, the mood across replies) lives here,
//! so a second backend (the OpenAI-compatible server of [`super::openai`]) is one new file and
//! one arm in [`load_backend`].

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::chat::{ChatTurn, PromptFormat};
use super::emotion::{EmotionSmoother, TAG_INTENSITY, tag_lead};
use super::emotion_stream::EmotionTagFilter;
use super::engine::{EngineError, EngineSettings, GenerateOptions, Reply, ReplyStats};
use super::local::LocalBackend;
use super::openai::{OpenAiBackend, OpenAiSettings};
use crate::config::{ChatSettings, Emotion, PersonaSettings};

/// One message to answer.
pub struct ChatRequest<'a> {
    pub persona: &'a PersonaSettings,
    /// The turns still in the prompt, oldest first.
    pub history: &'a [ChatTurn],
    pub message: &'a str,
    pub options: &'a GenerateOptions,
}

/// Where a reply's text goes as it is generated, and the flag that stops it.
pub struct ReplyStream<'a> {
    pub cancel: &'a AtomicBool,
    pub on_text: &'a mut dyn FnMut(&str),
}

/// What a backend must do. Loading is the backend's constructor, reached through
/// [`load_backend`].
pub trait ChatBackend: Send {
    /// Evaluates the persona's system prompt so that the first reply starts warm. With
    /// `state_dir`, a state saved there by an earlier start for the same model, settings and
    /// prompt is loaded instead, and a new one saved.
    fn warm_up(
        &mut self,
        persona: &PersonaSettings,
        state_dir: Option<&Path>,
    ) -> Result<ReplyStats, EngineError>;

    /// Streams a reply until it ends or `stream.cancel` is set. Returns the reply (text as
    /// generated, emotion tag included) and how many of the oldest turns of the request's
    /// history had to be left out to fit the context.
    fn generate(
        &mut self,
        request: &ChatRequest,
        stream: &mut ReplyStream,
    ) -> Result<(Reply, usize), EngineError>;

    /// A plain completion of `prompt`: no template, no persona (base models, tests).
    fn complete(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<Reply, EngineError>;

    fn stats(&self) -> BackendStats;
}

/// A backend's numbers, for the overlay, `chat --json` and `bench`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendStats {
    pub load_ms: f64,
    /// Context size in tokens.
    pub n_ctx: u32,
    /// Tokens in the KV cache now.
    pub cached_tokens: usize,
    pub prompt_format: PromptFormat,
}

/// A loaded backend and, when the GPU load failed and it fell back to the CPU, why.
pub struct LoadedBackend {
    pub backend: Result<Box<dyn ChatBackend>, EngineError>,
    pub notice: Option<String>,
}

/// Which backend to load and how, resolved from the settings (`llm.backend`) by
/// [`super::plan::resolve_model`].
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
                backend: backend.map(|b| Box::new(b) as Box<dyn ChatBackend>),
                notice,
            }
        }
        BackendConfig::OpenAi(settings) => LoadedBackend {
            backend: Ok(Box::new(OpenAiBackend::load(settings))),
            notice: None,
        },
    }
}

/// A finished reply, as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionReply {
    /// The reply without its emotion tag.
    pub shown: String,
    /// From the reply's `[tag]`, else from its words and emoji, smoothed over the last
    /// replies; `None` = neutral.
    pub emotion: Option<Emotion>,
    /// 0-100: [`TAG_INTENSITY`] for a tag, else the analyser's.
    pub intensity: f32,
    pub stats: ReplyStats,
    /// The turn as recorded in the conversation.
    pub turn: ChatTurn,
}

/// Where warm-up states are kept: `kv/` in the user cache folder.
pub fn warm_state_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "desktop-mate").map(|d| d.cache_dir().join("kv"))
}

/// The conversation with one backend.
pub struct ChatSession {
    backend: Box<dyn ChatBackend>,
    turns: Vec<ChatTurn>,
    /// Turns before this index are no longer in the prompt. It only moves forward, in large
    /// steps, so that the prompt's prefix (and the KV cache) stays the same between turns.
    context_start: usize,
    turns_kept: usize,
    /// Every reply opens with an emotion tag (a grammar constrains its first tokens).
    tag_grammar: bool,
    /// Warm-up states are kept on disk for the next start.
    warm_start: bool,
    mood: EmotionSmoother,
}

impl ChatSession {
    pub fn new(backend: Box<dyn ChatBackend>, chat: &ChatSettings) -> Self {
        let mut session = Self {
            backend,
            turns: Vec::new(),
            context_start: 0,
            turns_kept: 1,
            tag_grammar: false,
            warm_start: false,
            mood: EmotionSmoother::default(),
        };
        session.apply(chat);
        session
    }

    /// Follows the `chat` settings: how many turns the prompt may hold before half of them
    /// are dropped, and whether replies open with a tag.
    pub fn apply(&mut self, chat: &ChatSettings) {
        self.turns_kept = (chat.turns_kept as usize).max(1);
        self.tag_grammar = chat.tag_grammar;
        self.warm_start = chat.warm_start;
    }

    pub fn stats(&self) -> BackendStats {
        self.backend.stats()
    }

    pub fn turns(&self) -> &[ChatTurn] {
        &self.turns
    }

    pub fn context_start(&self) -> usize {
        self.context_start
    }

    /// Continues a conversation restored from disk.
    pub fn restore(&mut self, turns: Vec<ChatTurn>, context_start: usize) {
        self.context_start = context_start.min(turns.len());
        self.turns = turns;
    }

    pub fn clear(&mut self) {
        self.turns.clear();
        self.context_start = 0;
        self.mood = EmotionSmoother::default();
    }

    /// Evaluates the persona's system prompt (an empty one too) into the cache.
    pub fn warm_up(&mut self, persona: &PersonaSettings) -> Result<ReplyStats, EngineError> {
        let state_dir = self.warm_start.then(warm_state_dir).flatten();
        self.backend.warm_up(persona, state_dir.as_deref())
    }

    /// Answers `message`: streams the reply (emotion tag removed) through `on_text`, records
    /// the turn, and reads the mood. A failed reply leaves the conversation as it was.
    pub fn send(
        &mut self,
        persona: &PersonaSettings,
        message: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<SessionReply, EngineError> {
        if message.trim().is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let len = self.turns.len();
        if len - self.context_start.min(len) > self.turns_kept {
            // Forget half of what is kept at once rather than one turn per message.
            self.context_start = len - self.turns_kept.div_ceil(2);
        }
        let start = self.context_start.min(len);
        let mut filter = EmotionTagFilter::default();
        let mut shown = String::new();
        let mut show = |piece: String, on_text: &mut dyn FnMut(&str)| {
            if !piece.is_empty() {
                on_text(&piece);
                shown.push_str(&piece);
            }
        };
        let mut options = options.clone();
        if self.tag_grammar {
            options.lead = Some(tag_lead());
        }
        let request = ChatRequest {
            persona,
            history: &self.turns[start..],
            message,
            options: &options,
        };
        let on_text = &mut *stream.on_text;
        let (reply, dropped) = self.backend.generate(
            &request,
            &mut ReplyStream {
                cancel: stream.cancel,
                on_text: &mut |piece| show(filter.push(piece), on_text),
            },
        )?;
        show(filter.finish(), on_text);

        let (emotion, intensity) = match filter.emotion() {
            Some(tagged) => {
                self.mood.push_tag(tagged);
                (Some(tagged), TAG_INTENSITY)
            }
            None => self
                .mood
                .push(&shown)
                .map_or((None, 0.0), |s| (Some(s.emotion), s.intensity)),
        };
        if dropped > 0 {
            tracing::info!("dropped the {dropped} oldest turns to fit the context");
        }
        self.context_start = start + dropped;
        let turn = ChatTurn {
            user: message.to_owned(),
            assistant: reply.text,
        };
        self.turns.push(turn.clone());
        Ok(SessionReply {
            shown,
            emotion,
            intensity,
            stats: reply.stats,
            turn,
        })
    }

    /// A plain completion of `prompt` (no template, no persona, not recorded).
    pub fn complete(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<Reply, EngineError> {
        self.backend.complete(prompt, options, stream)
    }
}
