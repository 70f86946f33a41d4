//! Chat prompts: the model's own chat template (`tokenizer.chat_template`, rendered with
//! minijinja as Hugging Face renders it, see [`super::template`]) or, for models without one, a
//! documented plain-text fallback; history trimming to fit the context.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::engine::{EngineError, GenerateOptions, LlmEngine, Reply};
use super::template::{ChatTemplate, Message, TemplateError};
use super::template_vet::{self, TemplateSource, Verdict};
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
    template: Option<(ChatTemplate, TemplateSource)>,
    /// The BOS token's text when the tokenizer adds BOS itself: a template that starts with it
    /// would otherwise give the model two.
    added_bos: Option<String>,
    /// Set when the template failed or exceeded its budget in a real render: the plain-text
    /// format from then on (and at the next load, by its remembered verdict).
    given_up: AtomicBool,
}

impl Prompter {
    /// The plain-text format.
    pub fn plain() -> Self {
        Self {
            template: None,
            added_bos: None,
            given_up: AtomicBool::new(false),
        }
    }

    /// The model's own template when it has one that is usable, else the plain-text format;
    /// with a notice for the user when the model's template was refused.
    pub fn for_model(engine: &LlmEngine) -> (Self, Option<String>) {
        let model = engine.model();
        let source = match model.chat_template(None).map(|t| t.to_string()) {
            Ok(Ok(source)) => source,
            _ => {
                tracing::info!("the model has no chat template; using the plain-text format");
                return (Self::plain(), None);
            }
        };
        let vocab = model.vocab();
        let text = |token| {
            let bytes = vocab.token_to_piece(token, true, None);
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let (bos, eos) = (text(vocab.bos()), text(vocab.eos()));
        let added_bos = (vocab.should_add_bos() && !bos.is_empty()).then(|| bos.clone());
        Self::for_template(TemplateSource { source, bos, eos }, added_bos)
    }

    /// [`for_model`](Self::for_model) for a template's source and tokens.
    pub fn for_template(
        template: TemplateSource,
        added_bos: Option<String>,
    ) -> (Self, Option<String>) {
        let refused = |why: String| {
            let notice = format!(
                "the model's chat template cannot be used ({why}); using the plain-text format"
            );
            tracing::warn!("{notice}");
            (Self::plain(), Some(notice))
        };
        if !ChatTemplate::is_jinja(&template.source) {
            let name: String = template.source.chars().take(40).collect();
            return refused(format!(
                "it names a format, {name:?}, instead of being a template"
            ));
        }
        if let Verdict::Refused(why) = template_vet::vet(&template) {
            return refused(why);
        }
        match ChatTemplate::new(&template.source, &template.bos, &template.eos) {
            Ok(compiled) => (
                Self {
                    template: Some((compiled, template)),
                    added_bos,
                    given_up: AtomicBool::new(false),
                },
                None,
            ),
            Err(err) => refused(err.to_string()),
        }
    }

    pub fn format(&self) -> PromptFormat {
        match self.template {
            Some(_) if !self.given_up.load(Ordering::Relaxed) => PromptFormat::ModelTemplate,
            _ => PromptFormat::PlainText,
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
        if let Some((template, source)) = &self.template
            && !self.given_up.load(Ordering::Relaxed)
        {
            match self.template_prompt(template, persona, history, message) {
                Ok(prompt) => return (prompt, Vec::new()),
                Err(err) if err.is_templates_fault() => {
                    tracing::warn!(
                        "the model's chat template failed ({err}); the plain-text format from now on"
                    );
                    self.given_up.store(true, Ordering::Relaxed);
                    template_vet::refuse(source, &err.to_string());
                }
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
