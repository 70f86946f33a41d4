//! The conversation, free of Bevy and of any backend: the session over a
//! [`crate::llm::contract::ChatBackend`] (`session`), prompts and history turns (`chat`), the
//! model's chat template and its test renders (`template`, `template_vet`), the emotion tag and
//! mood (`emotion`, `emotion_stream`) and the history file (`history`).

pub mod chat;
pub mod emotion;
pub mod emotion_stream;
pub mod history;
pub mod session;
pub mod template;
pub mod template_vet;
