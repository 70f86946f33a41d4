//! What the memory keeps from a finished turn, without Bevy. **Decision** for this first
//! version: the user's own statements about themselves, verbatim ("I have a cat called Miso",
//! "je travaille de nuit"), found by first-person words; questions, greetings and short
//! messages are not kept. Extraction of facts and episode summaries by the chat model is the
//! next step (docs/architecture.md, "Memory"); nothing the model writes is stored yet.

/// Words of at least this many make a statement worth keeping.
const MIN_WORDS: usize = 4;
/// Longest statement kept (characters).
const MAX_CHARS: usize = 400;

const FIRST_PERSON: &[&str] = &[
    // English
    "i", "i'm", "im", "i've", "i'd", "i'll", "my", "mine", "myself", "we", "our",
    // French
    "je", "j'", "j'ai", "j'aime", "j'adore", "j'habite", "mon", "ma", "mes", "nous", "notre", "nos",
];

const REQUESTS: &[&str] = &[
    "tell",
    "show",
    "give",
    "can",
    "could",
    "would",
    "will",
    "please",
    "help",
    "let's",
    "write",
    "explain",
    "remind",
    "dis",
    "dis-moi",
    "peux-tu",
    "pourrais-tu",
    "montre",
    "donne",
    "explique",
    "rappelle",
];

/// The message as a memory's text when it is a statement about the user, else `None`.
pub fn statement(message: &str) -> Option<String> {
    let text = message.trim();
    if text.ends_with('?') || text.split_whitespace().count() < MIN_WORDS {
        return None;
    }
    let lower = text.to_lowercase();
    // Requests ("tell me about my cat", "peux-tu ...") are not statements.
    let first = lower.split_whitespace().next().unwrap_or_default();
    if REQUESTS.contains(&first) {
        return None;
    }
    let first_person = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .any(|word| FIRST_PERSON.contains(&word) || word.starts_with("j'"));
    if !first_person {
        return None;
    }
    let kept: String = text.chars().take(MAX_CHARS).collect();
    Some(format!("The user said: \"{kept}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_about_the_user_are_kept_questions_and_small_talk_are_not() {
        assert_eq!(
            statement("I have a cat called Miso").as_deref(),
            Some("The user said: \"I have a cat called Miso\"")
        );
        assert!(statement("J'habite à Lyon depuis deux ans").is_some());
        assert!(statement("My sister lives in Montreal now").is_some());
        assert_eq!(statement("What is my cat's name?"), None);
        assert_eq!(statement("hello there"), None);
        assert_eq!(statement("tell me about my cat please"), None, "a request");
        assert_eq!(statement("The weather is nice today outside"), None);
        let long = format!("I think {}", "very ".repeat(200));
        assert!(statement(&long).is_some_and(|s| s.chars().count() < 430));
    }
}
