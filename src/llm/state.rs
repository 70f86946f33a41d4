//! What the rest of the app sees of the chat: its status, the conversation, and the messages
//! that flow between the UI, the engine tasks and the avatar.

use bevy::prelude::*;

use crate::config::Emotion;
use crate::llm::contract::ChatTurn;
use crate::llm::contract::{Extracted, ReplyStats};
use crate::llm::plan::LoadPlan;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<LlmStatus>()
        .init_resource::<ChatHistory>()
        .init_resource::<LlmTimings>()
        .add_message::<SendChat>()
        .add_message::<ChatDraft>()
        .add_message::<StopReply>()
        .add_message::<ReplyText>()
        .add_message::<ReplyFinished>()
        .add_message::<ClearHistory>()
        .add_message::<ModelChosen>();
}

/// The chat's state machine, shown in the UI.
#[derive(Resource, Debug, Clone, PartialEq, Default)]
pub enum LlmStatus {
    /// No model set: `llm.model_path` in the settings, or `--model`.
    #[default]
    NoModel,
    Loading,
    WarmingUp,
    Ready,
    Generating,
    Error(String),
}

impl LlmStatus {
    /// One or two words, for the overlay.
    pub fn short(&self) -> &'static str {
        match self {
            LlmStatus::NoModel => "no model",
            LlmStatus::Loading => "loading",
            LlmStatus::WarmingUp => "warming up",
            LlmStatus::Ready => "ready",
            LlmStatus::Generating => "replying",
            LlmStatus::Error(_) => "error",
        }
    }

    pub fn label(&self) -> String {
        match self {
            LlmStatus::NoModel => {
                "no model: set llm.model_path in the settings (F2) or start with --model".into()
            }
            LlmStatus::Loading => "loading the model…".into(),
            LlmStatus::WarmingUp => "warming up…".into(),
            LlmStatus::Ready => "ready".into(),
            LlmStatus::Generating => "replying…".into(),
            LlmStatus::Error(message) => format!("error: {message}"),
        }
    }
}

/// The finished turns of this session's conversation.
#[derive(Resource, Debug, Clone, Default)]
pub struct ChatHistory {
    pub turns: Vec<ChatTurn>,
    /// The reply being streamed, as shown (emotion tag removed).
    pub streaming: Option<String>,
    /// Why the last message got no reply (too long, ...), until the next one.
    pub last_error: Option<String>,
    /// Turns before this index are no longer in the prompt. It only moves forward, in large
    /// steps, so that the prompt's prefix (and the KV cache) stays the same between turns.
    pub context_start: usize,
}

/// Measurements for the diagnostics overlay.
#[derive(Resource, Debug, Clone, Default)]
pub struct LlmTimings {
    pub plan: Option<LoadPlan>,
    pub load_ms: Option<f64>,
    pub warm_up_ms: Option<f64>,
    pub last_reply: Option<ReplyStats>,
    pub n_ctx: u32,
    pub context_used: usize,
    /// What the memory kept of the chat model's last notes, and how many notes a message
    /// stopped.
    pub notes: Option<Extracted>,
    pub notes_stopped: u32,
    /// The chat model is taking notes now (a message stops it).
    pub notes_running: bool,
    /// Drafts evaluated ahead to their end, and drafts a message stopped.
    pub drafts_ahead: u32,
    pub drafts_stopped: u32,
}

/// The user sends a message.
#[derive(Message, Debug, Clone)]
pub struct SendChat(pub String);

/// What the user is typing (or saying, heard so far): the session evaluates its prompt ahead
/// while the chat is idle, so that the reply to the message, once sent, starts sooner.
#[derive(Message, Debug, Clone)]
pub struct ChatDraft(pub String);

/// The user presses Stop: the reply ends within one token.
#[derive(Message, Debug, Clone, Default)]
pub struct StopReply;

/// A piece of reply text, as it is generated (emotion tag removed).
#[derive(Message, Debug, Clone)]
pub struct ReplyText(pub String);

/// A reply is complete.
#[derive(Message, Debug, Clone)]
pub struct ReplyFinished {
    pub text: String,
    /// From the reply's `[tag]`, else from its words and emoji (smoothed); `None` = neutral.
    pub emotion: Option<Emotion>,
    /// 0-100: [`crate::llm::conversation::emotion::TAG_INTENSITY`] for a tag, else the analyser's.
    pub intensity: f32,
    pub stats: ReplyStats,
}

/// A model was downloaded (or picked) in the app: load it.
#[derive(Message, Debug, Clone)]
pub struct ModelChosen(pub std::path::PathBuf);

/// The user clears the conversation (the file keeps a `.bak`).
#[derive(Message, Debug, Clone, Default)]
pub struct ClearHistory;
