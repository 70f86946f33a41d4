//! Chat prompts: the model's own chat template (`tokenizer.chat_template`, rendered with
//! minijinja as Hugging Face renders it, see [`super::template`]) or, for models without one, a
//! documented plain-text fallback; history trimming to fit the context.

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::engine::{EngineError, GenerateOptions, LlmEngine, Reply};
use super::template::{ChatTemplate, Message, TemplateError};
use crate::config::{Emotion, PersonaSettings};

/// One exchange of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub user: String,
    pub assistant: String,
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

/// Writes the prompts for one loaded model.
#[derive(Debug)]
pub struct Prompter {
    template: Option<ChatTemplate>,
    /// The BOS token's text when the tokenizer adds BOS itself: a template that starts with it
    /// would otherwise give the model two.
    added_bos: Option<String>,
}

impl Prompter {
    /// The plain-text format.
    pub fn plain() -> Self {
        Self {
            template: None,
            added_bos: None,
        }
    }

    /// The model's own template when it has one that compiles, else the plain-text format
    /// (with a log line saying why).
    pub fn for_model(engine: &LlmEngine) -> Self {
        let model = engine.model();
        let source = match model.chat_template(None).map(|t| t.to_string()) {
            Ok(Ok(source)) => source,
            _ => {
                tracing::info!("the model has no chat template; using the plain-text format");
                return Self::plain();
            }
        };
        let vocab = model.vocab();
        let text = |token| {
            let bytes = vocab.token_to_piece(token, true, None);
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let (bos, eos) = (text(vocab.bos()), text(vocab.eos()));
        match ChatTemplate::new(&source, &bos, &eos) {
            Ok(template) => Self {
                template: Some(template),
                added_bos: (vocab.should_add_bos() && !bos.is_empty()).then_some(bos),
            },
            Err(err) => {
                tracing::warn!(
                    "the model's chat template cannot be used ({err}); using the plain-text format"
                );
                Self::plain()
            }
        }
    }

    pub fn format(&self) -> PromptFormat {
        match self.template {
            Some(_) => PromptFormat::ModelTemplate,
            None => PromptFormat::PlainText,
        }
    }

    /// The prompt for `history` + `message`, and the stop strings that go with its format.
    /// With `message = None` and no history, the system part alone (for warm-up).
    pub fn prompt(
        &self,
        persona: &PersonaSettings,
        history: &[ChatTurn],
        message: Option<&str>,
    ) -> (String, Vec<String>) {
        if let Some(template) = &self.template {
            match self.template_prompt(template, persona, history, message) {
                Ok(prompt) => return (prompt, Vec::new()),
                Err(err) => tracing::warn!(
                    "the model's chat template failed ({err}); this prompt uses the plain-text format"
                ),
            }
        }
        plain_prompt(persona, history, message)
    }

    fn template_prompt(
        &self,
        template: &ChatTemplate,
        persona: &PersonaSettings,
        history: &[ChatTurn],
        message: Option<&str>,
    ) -> Result<String, TemplateError> {
        let system = persona.system_prompt.trim();
        let mut messages = Vec::with_capacity(history.len() * 2 + 2);
        for turn in history {
            messages.push(Message::new("user", &turn.user));
            messages.push(Message::new("assistant", &turn.assistant));
        }
        if let Some(message) = message {
            messages.push(Message::new("user", message));
        }
        let generation = message.is_some();
        let rendered = if system.is_empty() {
            template.render(&messages, generation)
        } else {
            let mut with_system = vec![Message::new("system", system)];
            with_system.extend(messages.iter().cloned());
            match template.render(&with_system, generation) {
                // Templates that refuse a system role (Gemma 2, some Mistral): the persona goes
                // in front of the first user message instead, as those models' authors advise.
                Err(TemplateError::Raised(_)) if !messages.is_empty() => {
                    let first = &mut messages[0];
                    first.content = format!("{system}\n\n{}", first.content);
                    template.render(&messages, generation)
                }
                other => other,
            }
        }?;
        Ok(match &self.added_bos {
            Some(bos) => rendered
                .strip_prefix(bos.as_str())
                .map(str::to_owned)
                .unwrap_or(rendered),
            None => rendered,
        })
    }
}

/// `{system}\n\nUser: {message}\n{name}: {reply}\n...`, stopping at `\nUser:`.
fn plain_prompt(
    persona: &PersonaSettings,
    history: &[ChatTurn],
    message: Option<&str>,
) -> (String, Vec<String>) {
    let mut prompt = String::new();
    if !persona.system_prompt.trim().is_empty() {
        prompt.push_str(persona.system_prompt.trim());
        prompt.push_str("\n\n");
    }
    for turn in history {
        // The reply exactly as the model continued `{name}:` (its own leading space, or none
        // when the emotion tag's grammar started it), so the prompt extends the cached text
        // and the reply's tokens are reused as generated.
        prompt.push_str(&format!(
            "User: {}\n{}:{}\n",
            turn.user.trim(),
            persona.name,
            turn.assistant
        ));
    }
    if let Some(message) = message {
        prompt.push_str(&format!("User: {}\n{}:", message.trim(), persona.name));
    }
    (prompt, vec!["\nUser:".to_owned(), "\n\nUser".to_owned()])
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
    let mut first = 0;
    loop {
        let (prompt, stops) = prompter.prompt(persona, &history[first..], Some(message));
        let tokens = engine.tokenize(&prompt).len();
        // Once turns must go, keep the prompt within half of what the reply leaves free.
        let max_tokens = options.max_tokens as usize;
        let limit = if first == 0 {
            n_ctx
        } else {
            (n_ctx + max_tokens) / 2
        };
        let fits = tokens + max_tokens <= limit;
        if fits || first == history.len() {
            let mut options = options.clone();
            options.stop.extend(stops);
            // Without history to drop, a long message still gets what room is left.
            let room = n_ctx.saturating_sub(tokens);
            options.max_tokens = options
                .max_tokens
                .min(u32::try_from(room).unwrap_or(u32::MAX));
            let reply = engine.generate(&prompt, &options, cancel, on_text)?;
            return Ok((reply, first));
        }
        first += 1;
    }
}

/// Splits a leading emotion tag such as `[joy]` off a reply. Only the fixed set of emotions
/// is recognised; anything else stays in the text.
pub fn split_emotion_tag(text: &str) -> (Option<Emotion>, &str) {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.strip_prefix('[') else {
        return (None, text);
    };
    let Some((tag, after)) = rest.split_once(']') else {
        return (None, text);
    };
    let emotion = Emotion::ALL.into_iter().find(|emotion| {
        ron::to_string(emotion).is_ok_and(|name| name.eq_ignore_ascii_case(tag.trim()))
    });
    match emotion {
        Some(emotion) => (Some(emotion), after.trim_start()),
        None => (None, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emotion_tags_are_split_only_for_known_emotions() {
        assert_eq!(split_emotion_tag("[joy] Hi!"), (Some(Emotion::Joy), "Hi!"));
        assert_eq!(
            split_emotion_tag("  [Surprised]Oh"),
            (Some(Emotion::Surprised), "Oh")
        );
        assert_eq!(split_emotion_tag("[evil] Hi"), (None, "[evil] Hi"));
        assert_eq!(split_emotion_tag("Hi [joy]"), (None, "Hi [joy]"));
    }
}
