//! One conversation, the same for the mascot and every terminal command: load -> warm-up ->
//! reply -> trim history -> emotion, written once, over a [`ChatBackend`].
//!
//! A backend only knows how to run a model: warm up on the persona, stream a reply to a
//! message after some history, and report its numbers. Everything about the conversation
//! (which turns are still in the prompt, the emotion tag, the mood across replies) lives here,
//! so a second backend (the OpenAI-compatible server of [`crate::llm::openai`]) is one new file
//! and one arm in [`crate::llm::load::load_backend`].

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::emotion::{EmotionSmoother, TAG_INTENSITY, tag_lead};
use super::emotion_stream::EmotionTagFilter;
use crate::config::{ChatSettings, Emotion, PersonaSettings};
use crate::llm::contract::ChatTurn;
use crate::llm::contract::{
    BackendStats, ChatBackend, ChatError, ChatRequest, Extracted, GenerateOptions, Recall, Reply,
    ReplyStats, ReplyStream, StopReason, with_recalled,
};

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
    /// Spent choosing the memories for the message before the backend was asked (part of
    /// what the user waits for the first token, outside `stats.ttft_ms`).
    pub recall_ms: f64,
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
    /// The long-term memory, when on.
    memory: Option<Box<dyn Recall>>,
    /// Turns before this index were given to the memory's extraction (or came from an earlier
    /// run, whose turns were observed then).
    noted: usize,
    /// The standing memories the last prompt opened with ([`Recall::standing`]).
    standing: Option<String>,
    /// A prompt with them failed: left out until another memory is set.
    standing_off: bool,
}

/// What [`ChatSession::take_notes`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Notes {
    /// No memory, no new turns, or nothing in them worth asking the model about.
    Nothing,
    /// Stopped for a message: the same turns are tried at the next pause.
    Cancelled,
    /// The model answered; what the memory kept of it, and the side request's numbers.
    Written(Extracted, ReplyStats),
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
            memory: None,
            noted: 0,
            standing: None,
            standing_off: false,
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

    /// Recall before each reply and observe after it (`None`: no memory).
    pub fn set_memory(&mut self, memory: Option<Box<dyn Recall>>) {
        self.memory = memory;
        self.standing = None;
        self.standing_off = false;
    }

    pub fn stats(&self) -> BackendStats {
        self.backend.stats()
    }

    /// The standing memories the last prompt opened with, if any.
    pub fn standing(&self) -> Option<&str> {
        self.standing.as_deref()
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
        self.noted = turns.len();
        self.turns = turns;
    }

    pub fn clear(&mut self) {
        self.turns.clear();
        self.context_start = 0;
        self.noted = 0;
        self.mood = EmotionSmoother::default();
    }

    /// Evaluates the persona's system prompt (an empty one too) into the cache. With memory,
    /// the standing memories after it: the persona's own prompt is read from (and saved to)
    /// the warm-up state on disk, the standing memories are evaluated on top and never saved
    /// (a memory forgotten must not stay in a cache file). If they cannot be evaluated (a
    /// context too small), the session goes on without them.
    pub fn warm_up(&mut self, persona: &PersonaSettings) -> Result<ReplyStats, ChatError> {
        let state_dir = self.warm_start.then(warm_state_dir).flatten();
        let plain = self.backend.warm_up(persona, state_dir.as_deref())?;
        let Some(with_standing) = self.with_standing(persona) else {
            return Ok(plain);
        };
        match self.backend.warm_up(&with_standing, None) {
            Ok(mut stats) => {
                stats.prompt_ms += plain.prompt_ms;
                Ok(stats)
            }
            Err(err) => {
                self.drop_standing(&err);
                self.backend.warm_up(persona, None)
            }
        }
    }

    /// The persona with the memory's standing memories after its system prompt
    /// ([`Recall::standing`], at most a quarter of the context), or `None` without them.
    fn with_standing(&mut self, persona: &PersonaSettings) -> Option<PersonaSettings> {
        let n_ctx = self.backend.stats().n_ctx as usize;
        let most_tokens = if n_ctx == 0 { usize::MAX } else { n_ctx / 4 };
        self.standing = match (&mut self.memory, self.standing_off) {
            (Some(memory), false) => memory.standing(most_tokens),
            _ => None,
        };
        let standing = self.standing.as_deref()?.trim_end();
        let mut persona = persona.clone();
        persona.system_prompt = if persona.system_prompt.trim().is_empty() {
            standing.to_owned()
        } else {
            format!("{}\n\n{standing}", persona.system_prompt.trim_end())
        };
        Some(persona)
    }

    /// A prompt with the standing memories failed before its first token: the rest of the
    /// session goes without them (memories never make a reply fail).
    fn drop_standing(&mut self, err: &ChatError) {
        tracing::warn!("the standing memories are left out of this session: {err}");
        self.standing_off = true;
        self.standing = None;
    }

    /// Answers `message`: streams the reply (emotion tag removed) through `on_text`, records
    /// the turn, and reads the mood. A failed reply leaves the conversation as it was.
    pub fn send(
        &mut self,
        persona: &PersonaSettings,
        message: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<SessionReply, ChatError> {
        if message.trim().is_empty() {
            return Err(ChatError::EmptyPrompt);
        }
        let recall_start = Instant::now();
        let mut with_standing = self.with_standing(persona);
        let start = self.next_start();
        self.context_start = start;
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
        let history = &self.turns[start..];
        let mut recalled = self
            .memory
            .as_mut()
            .and_then(|memory| memory.recall(message, history));
        let recall_ms = recall_start.elapsed().as_secs_f64() * 1000.0;
        let on_text = &mut *stream.on_text;
        let (reply, dropped) = loop {
            let prompt_message = match &recalled {
                Some(recalled) => with_recalled(recalled, message),
                None => message.to_owned(),
            };
            let request = ChatRequest {
                persona: with_standing.as_ref().unwrap_or(persona),
                history: &self.turns[start..],
                message: &prompt_message,
                options: &options,
            };
            let mut streamed = false;
            let result = self.backend.generate(
                &request,
                &mut ReplyStream {
                    cancel: stream.cancel,
                    on_text: &mut |piece| {
                        streamed = true;
                        show(filter.push(piece), on_text);
                    },
                },
            );
            match result {
                // Memories never make a reply fail: a prompt they made too long for the
                // context (or any error before the first token) is tried once without them.
                Err(err) if recalled.is_some() && !streamed => {
                    tracing::warn!("reply without the recalled memories: {err}");
                    recalled = None;
                }
                Err(err) if with_standing.is_some() && !streamed => {
                    self.drop_standing(&err);
                    with_standing = None;
                }
                result => break result?,
            }
        };
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
            recalled,
        };
        self.turns.push(turn.clone());
        if let Some(memory) = &mut self.memory {
            memory.observe(&turn);
        }
        let len = self.turns.len();
        if len - self.context_start.min(len) > self.turns_kept {
            // The next message would drop the oldest turns: drop them now, while the user
            // reads, so the backend's cache is shifted before that message.
            self.context_start = len - self.turns_kept.div_ceil(2);
            self.backend.keep_only(
                with_standing.as_ref().unwrap_or(persona),
                &self.turns[self.context_start..],
            );
        }
        Ok(SessionReply {
            shown,
            emotion,
            intensity,
            stats: reply.stats,
            recall_ms,
            turn,
        })
    }

    /// Where the next message's history starts: past the kept turns, half of them are
    /// forgotten at once rather than one turn per message.
    fn next_start(&self) -> usize {
        let len = self.turns.len();
        if len - self.context_start.min(len) > self.turns_kept {
            len - self.turns_kept.div_ceil(2)
        } else {
            self.context_start.min(len)
        }
    }

    /// Evaluates ahead the prompt that `send` would make for `draft` (the message being
    /// typed or heard), its memories recalled as `send` recalls them, so that sending the
    /// same message (or one starting the same) evaluates only what differs. `cancel` stops
    /// it between batches. `Ok(None)`: stopped, or nothing to evaluate.
    pub fn prepare(
        &mut self,
        persona: &PersonaSettings,
        draft: &str,
        options: &GenerateOptions,
        cancel: &AtomicBool,
    ) -> Result<Option<ReplyStats>, ChatError> {
        if draft.trim().is_empty() {
            return Ok(None);
        }
        let with_standing = self.with_standing(persona);
        let persona = with_standing.as_ref().unwrap_or(persona);
        let history = &self.turns[self.next_start()..];
        let recalled = self
            .memory
            .as_mut()
            .and_then(|memory| memory.recall(draft, history));
        let message = match &recalled {
            Some(recalled) => with_recalled(recalled, draft),
            None => draft.to_owned(),
        };
        let request = ChatRequest {
            persona,
            history,
            message: &message,
            options,
        };
        self.backend.prepare(&request, cancel)
    }

    /// Turns the memory has not been asked about yet.
    pub fn unnoted_turns(&self) -> usize {
        if self.memory.is_some() {
            self.turns.len() - self.noted.min(self.turns.len())
        } else {
            0
        }
    }

    /// When the conversation pauses: asks the chat model, beside the conversation (a local
    /// backend keeps its cache), what to remember of the turns since the last notes, and
    /// gives the answer to the memory, which keeps what it can check. Stops within a few
    /// tokens when `cancel` is set. Greedy sampling: notes are not creative writing.
    pub fn take_notes(
        &mut self,
        persona: &PersonaSettings,
        options: &GenerateOptions,
        cancel: &AtomicBool,
    ) -> Result<Notes, ChatError> {
        let end = self.turns.len();
        let start = self.noted.min(end);
        let Some(memory) = self.memory.as_mut().filter(|_| start < end) else {
            return Ok(Notes::Nothing);
        };
        let turns = &self.turns[start..end];
        let Some(extraction) = memory.extraction(turns) else {
            self.noted = end;
            return Ok(Notes::Nothing);
        };
        let persona = PersonaSettings {
            system_prompt: extraction.instructions,
            ..persona.clone()
        };
        let mut options = options.clone();
        options.sampling.temperature = 0.0;
        options.max_tokens = extraction.max_tokens;
        options.lead = None;
        let request = ChatRequest {
            persona: &persona,
            history: &[],
            message: &extraction.message,
            options: &options,
        };
        let reply = self.backend.aside(
            &request,
            &mut ReplyStream {
                cancel,
                on_text: &mut |_| {},
            },
        )?;
        if reply.stats.stop_reason == StopReason::Cancelled {
            return Ok(Notes::Cancelled);
        }
        let extracted = memory.extracted(turns, &reply.text);
        self.noted = end;
        Ok(Notes::Written(extracted, reply.stats))
    }

    /// A plain completion of `prompt` (no template, no persona, not recorded).
    pub fn complete(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ChatError> {
        self.backend.complete(prompt, options, stream)
    }
}
