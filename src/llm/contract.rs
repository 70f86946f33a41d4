//! The contract between the conversation and a backend: what a backend must do
//! ([`ChatBackend`]), what it is asked ([`ChatRequest`], [`GenerateOptions`]) and what it gives
//! back ([`Reply`], [`ReplyStats`], [`BackendStats`], [`ChatError`]). Owned by neither backend:
//! llama.cpp in this process (`runtime::local`) and an OpenAI-compatible server (`openai`)
//! both implement it, and the conversation (`conversation::session`) only sees it.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::config::{PersonaSettings, SamplingSettings};
use serde::Deserialize;

/// One exchange of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub user: String,
    pub assistant: String,
    /// What the memory recalled for this message, put in front of it in every prompt that
    /// holds the turn (so later prompts repeat the evaluated text and the cache holds); never
    /// shown in the chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recalled: Option<String>,
}

impl ChatTurn {
    pub fn new(user: impl Into<String>, assistant: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            assistant: assistant.into(),
            recalled: None,
        }
    }

    /// The user's part as prompts carry it: the recalled memories, then the message.
    pub fn prompt_user(&self) -> std::borrow::Cow<'_, str> {
        match &self.recalled {
            Some(recalled) => with_recalled(recalled, &self.user).into(),
            None => self.user.as_str().into(),
        }
    }
}

/// A message with the memories recalled for it in front.
pub fn with_recalled(recalled: &str, message: &str) -> String {
    format!("{}\n\n{message}", recalled.trim_end())
}

/// The long-term memory as a conversation sees it (src/memory/ implements it): memories for
/// a message before the reply, each finished turn after it, and, when the conversation
/// pauses, what the chat model writes about the turns since the last pause.
pub trait Recall: Send {
    /// Lines that open every prompt of the conversation, after the persona's system prompt:
    /// the facts most worth keeping in mind (the most important and recent), or `None`. They
    /// are evaluated with the system prompt at warm-up, so a message needing one of them
    /// pays nothing for it; [`Recall::recall`] does not repeat them. Chosen once, within
    /// `most_tokens` (a share of the context) as well as the memory's own budget; afterwards
    /// a memory only leaves them (edited or forgotten, here or by another writer).
    fn standing(&mut self, most_tokens: usize) -> Option<String> {
        let _ = most_tokens;
        None
    }
    /// Lines to put in front of `message` in the prompt, or `None`. `history`: the turns
    /// still in the prompt; a memory already there (recalled for one of them, or taken from
    /// what the user said in them) is not repeated: its tokens would be evaluated again for
    /// nothing.
    fn recall(&mut self, message: &str, history: &[ChatTurn]) -> Option<String>;
    /// A finished turn (the reply is already shown): learn from it.
    fn observe(&mut self, turn: &ChatTurn);
    /// What to ask the chat model about `turns` (the conversation since the last pause), or
    /// `None` when there is nothing worth asking.
    fn extraction(&mut self, turns: &[ChatTurn]) -> Option<Extraction>;
    /// The model's answer to [`Recall::extraction`]: what parses and is found in `turns` is
    /// kept, the rest dropped with a log line.
    fn extracted(&mut self, turns: &[ChatTurn], answer: &str) -> Extracted;
}

/// A side request to the chat model, outside the conversation: the memory's questions.
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// Takes the place of the persona's system prompt.
    pub instructions: String,
    pub message: String,
    pub max_tokens: u32,
}

/// What the memory did with an answer to an [`Extraction`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Extracted {
    /// New memories written.
    pub added: usize,
    /// Older facts that now say the new text.
    pub replaced: usize,
    /// Lines of the answer that did not parse, were not found in the conversation, or could
    /// not be written.
    pub dropped: usize,
}

/// Why a chat failed. A backend's own errors (llama.cpp's, a server's) travel as
/// [`ChatError::Backend`]; [`ChatError::backend`] gets them back by type.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the message is empty")]
    EmptyPrompt,
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl ChatError {
    /// The backend's error, when it is an `E`.
    pub fn backend<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Self::Backend(err) => err.downcast_ref::<E>(),
            Self::EmptyPrompt => None,
        }
    }
}

/// How prompts are written for the loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormat {
    /// The GGUF's `tokenizer.chat_template`.
    ModelTemplate,
    /// No usable template: `{system}\n\nUser: {message}\n{name}: {reply}\n...`, stopping at
    /// `\nUser:`.
    PlainText,
    /// A chat server: it writes the prompt from the messages with its own template.
    Server,
}

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfGeneration,
    MaxTokens,
    StopString,
    Cancelled,
    ContextFull,
}

/// Timings and counts of one reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyStats {
    /// Prompt tokens in total, and how many of them came from the KV cache.
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub prompt_ms: f64,
    /// Evaluated prompt tokens per second (0 when everything was cached).
    pub prompt_tps: f64,
    /// From the call to the first generated token.
    pub ttft_ms: f64,
    pub generated_tokens: usize,
    pub decode_ms: f64,
    pub decode_tps: f64,
    pub stop_reason: StopReason,
    /// Tokens of the grammar-constrained opening (the emotion tag), and the time from the end
    /// of the prompt until it was written.
    pub lead_tokens: usize,
    pub lead_ms: f64,
}

impl ReplyStats {
    /// Nothing evaluated nor generated.
    pub fn empty() -> Self {
        Self {
            prompt_tokens: 0,
            reused_tokens: 0,
            prompt_ms: 0.0,
            prompt_tps: 0.0,
            ttft_ms: 0.0,
            generated_tokens: 0,
            decode_ms: 0.0,
            decode_tps: 0.0,
            stop_reason: StopReason::MaxTokens,
            lead_tokens: 0,
            lead_ms: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub stats: ReplyStats,
}

/// What one generation may do.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub sampling: SamplingSettings,
    pub max_tokens: u32,
    pub stop: Vec<String>,
    /// A grammar the start of the reply must follow; free text after it.
    pub lead: Option<Lead>,
}

/// The start of a reply constrained by a GBNF grammar (llama.cpp's grammar sampler), until the
/// generated text contains `ends_with`; then sampling goes on without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    pub grammar: String,
    pub ends_with: String,
    /// Every text the grammar allows, when they are few and known (the emotion tags): only the
    /// tokens whose piece occurs in one of them are offered to the grammar, instead of the
    /// whole vocabulary (a grammar checks each candidate: ~50 ms a token on a 262k vocabulary).
    /// Empty = the whole vocabulary.
    pub texts: Vec<String>,
}

impl GenerateOptions {
    pub fn from_sampling(sampling: &SamplingSettings) -> Self {
        Self {
            sampling: sampling.clone(),
            max_tokens: sampling.max_tokens,
            stop: Vec::new(),
            lead: None,
        }
    }
}

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
/// [`crate::llm::load::load_backend`].
pub trait ChatBackend: Send {
    /// Evaluates the persona's system prompt so that the first reply starts warm. With
    /// `state_dir`, a state saved there by an earlier start for the same model, settings and
    /// prompt is loaded instead, and a new one saved.
    fn warm_up(
        &mut self,
        persona: &PersonaSettings,
        state_dir: Option<&Path>,
    ) -> Result<ReplyStats, ChatError>;

    /// Streams a reply until it ends or `stream.cancel` is set. Returns the reply (text as
    /// generated, emotion tag included) and how many of the oldest turns of the request's
    /// history had to be left out to fit the context.
    fn generate(
        &mut self,
        request: &ChatRequest,
        stream: &mut ReplyStream,
    ) -> Result<(Reply, usize), ChatError>;

    /// Answers `request` (its history is empty) beside the conversation: a local backend
    /// leaves the conversation's KV cache as it was, so the next reply starts as warm as
    /// without it. `stream.cancel` stops it within a few tokens.
    fn aside(
        &mut self,
        request: &ChatRequest,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ChatError>;

    /// The conversation goes on with only `history` (its oldest turns dropped): a local
    /// backend takes the dropped turns out of its cache now (context shift), between replies,
    /// so the next reply does not pay for it. Nothing to do for a server.
    fn keep_only(&mut self, _persona: &PersonaSettings, _history: &[ChatTurn]) {}

    /// Evaluates ahead the prompt `request` makes (its message: what the user is typing), so
    /// that the reply to it, or to a message that starts the same, evaluates only what
    /// differs. `cancel` stops it between batches (a message arrived). `None` when stopped or
    /// when there is nothing to do (a server; a prompt that would need turns dropped).
    fn prepare(
        &mut self,
        _request: &ChatRequest,
        _cancel: &AtomicBool,
    ) -> Result<Option<ReplyStats>, ChatError> {
        Ok(None)
    }

    /// A plain completion of `prompt`: no template, no persona (base models, tests).
    fn complete(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ChatError>;

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
