//! Chat prompts: the model's own chat template (`tokenizer.chat_template`, rendered with
//! minijinja as Hugging Face renders it, see [`crate::llm::conversation::template`]) or, for models without one, a
//! documented plain-text fallback; history trimming to fit the context.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::llm::contract::{ChatTurn, PromptFormat};

use crate::config::{Emotion, PersonaSettings};
use crate::llm::conversation::template::{ChatTemplate, Message, TemplateError};
use crate::llm::conversation::template_vet::{self, TemplateSource, Verdict};

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

    /// The prompts of a model with this chat template (`tokenizer.chat_template`) and tokens:
    /// the template when it is usable, else the plain-text format with a notice saying why.
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
            messages.push(Message::new("user", turn.prompt_user().as_ref()));
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
            turn.prompt_user().trim(),
            persona.name,
            turn.assistant
        ));
    }
    if let Some(message) = message {
        prompt.push_str(&format!("User: {}\n{}:", message.trim(), persona.name));
    }
    (prompt, vec!["\nUser:".to_owned(), "\n\nUser".to_owned()])
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
