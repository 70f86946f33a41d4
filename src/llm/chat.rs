//! Chat prompts: the model's own chat template (llama.cpp's built-in template engine) or, for
//! models without one, a documented plain-text fallback; history trimming to fit the context.

use std::sync::atomic::AtomicBool;

use llama_cpp_2::model::LlamaChatMessage;
use serde::{Deserialize, Serialize};

use super::engine::{EngineError, GenerateOptions, LlmEngine, Reply};
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
}

pub fn prompt_format(engine: &LlmEngine) -> PromptFormat {
    let model = engine.model();
    let Ok(template) = model.chat_template(None) else {
        return PromptFormat::PlainText;
    };
    let probe = [
        LlamaChatMessage::new("system".into(), "s".into()),
        LlamaChatMessage::new("user".into(), "u".into()),
    ];
    let Ok(probe) = probe.into_iter().collect::<Result<Vec<_>, _>>() else {
        return PromptFormat::PlainText;
    };
    match model.apply_chat_template(&template, &probe, true) {
        Ok(_) => PromptFormat::ModelTemplate,
        Err(err) => {
            tracing::warn!(
                "the model's chat template is not supported by llama.cpp ({err}); using the plain-text format"
            );
            PromptFormat::PlainText
        }
    }
}

/// The prompt for `history` + `message`, and the stop strings that go with its format.
/// With `message = None` and no history, the system part alone (for warm-up).
pub fn format_prompt(
    engine: &LlmEngine,
    format: PromptFormat,
    persona: &PersonaSettings,
    history: &[ChatTurn],
    message: Option<&str>,
) -> (String, Vec<String>) {
    if format == PromptFormat::ModelTemplate
        && let Some(prompt) = template_prompt(engine, persona, history, message)
    {
        return (prompt, Vec::new());
    }
    let mut prompt = String::new();
    if !persona.system_prompt.trim().is_empty() {
        prompt.push_str(persona.system_prompt.trim());
        prompt.push_str("\n\n");
    }
    for turn in history {
        prompt.push_str(&format!(
            "User: {}\n{}: {}\n",
            turn.user.trim(),
            persona.name,
            turn.assistant.trim()
        ));
    }
    if let Some(message) = message {
        prompt.push_str(&format!("User: {}\n{}:", message.trim(), persona.name));
    }
    (prompt, vec!["\nUser:".to_owned(), "\n\nUser".to_owned()])
}

fn template_prompt(
    engine: &LlmEngine,
    persona: &PersonaSettings,
    history: &[ChatTurn],
    message: Option<&str>,
) -> Option<String> {
    let model = engine.model();
    let template = model.chat_template(None).ok()?;
    let mut messages = Vec::new();
    if !persona.system_prompt.trim().is_empty() {
        messages.push(("system", persona.system_prompt.clone()));
    }
    for turn in history {
        messages.push(("user", turn.user.clone()));
        messages.push(("assistant", turn.assistant.clone()));
    }
    if let Some(message) = message {
        messages.push(("user", message.to_owned()));
    }
    let messages: Vec<LlamaChatMessage> = messages
        .into_iter()
        .map(|(role, content)| LlamaChatMessage::new(role.into(), content))
        .collect::<Result<_, _>>()
        .ok()?;
    model
        .apply_chat_template(&template, &messages, message.is_some())
        .ok()
}

/// Answers `message` after `history`, dropping the oldest turns when the prompt plus the reply
/// would not fit in the context. Returns the reply and how many turns were dropped.
///
/// Turns are dropped until the prompt and reply fill at most half of the context (like
/// llama.cpp's context shift), not just until they fit: dropping changes the prompt's prefix
/// and costs a full re-evaluation, so it should happen rarely, not on every later turn.
pub fn reply(
    engine: &mut LlmEngine,
    format: PromptFormat,
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
        let (prompt, stops) =
            format_prompt(engine, format, persona, &history[first..], Some(message));
        let tokens = engine.tokenize(&prompt).len();
        let limit = if first == 0 { n_ctx } else { n_ctx / 2 };
        let fits = tokens + options.max_tokens as usize <= limit;
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
