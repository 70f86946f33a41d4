//! What the chat model is asked when a conversation pauses, and what of its answer is kept,
//! without Bevy. The model writes one line per fact (`FACT topic: sentence`) and one
//! `EPISODE:` line; a line is kept only when it parses **and** is found in the conversation:
//! most of a fact's words must be the user's own, most of an episode's words must have been
//! said. **Decision**: plain lines rather than JSON or a grammar, because every backend can
//! write them (a server may not take a grammar, and a grammar over a 262k vocabulary costs
//! ~50 ms a token); the check against the conversation is what stops a small model's
//! inventions (Gemma 3 270M mostly repeats the transcript or the instructions: all dropped).

use crate::llm::contract::{ChatTurn, Extraction};

use super::store::{MemoryKind, NewMemory};

/// The turns of one request at most (the newest).
const MAX_TURNS: usize = 12;
/// Characters of one message in the transcript at most.
const MAX_MESSAGE_CHARS: usize = 400;
/// Tokens the model may write.
const MAX_ANSWER_TOKENS: u32 = 200;
/// Facts kept from one answer at most.
const MAX_FACTS: usize = 8;
const FACT_CHARS: std::ops::RangeInclusive<usize> = 8..=300;
const EPISODE_CHARS: std::ops::RangeInclusive<usize> = 10..=400;
const MAX_TOPIC_CHARS: usize = 40;
const FACT_IMPORTANCE: f32 = 0.7;
const EPISODE_IMPORTANCE: f32 = 0.4;

const INSTRUCTIONS: &str =
    "You write down what is worth remembering about the user from a conversation.
Write one line per fact the user stated about themselves, in this form:
FACT <topic>: <the fact, as a sentence about the user>
Then one line that sums up the conversation:
EPISODE: <what was talked about, and the user's mood>
Write nothing else. If the user said nothing about themselves, write only the EPISODE line.";

/// Words that say nothing about what a line is about (English and French).
const STOP_WORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "are",
    "was",
    "were",
    "has",
    "have",
    "had",
    "his",
    "her",
    "hers",
    "she",
    "him",
    "who",
    "not",
    "but",
    "now",
    "one",
    "with",
    "that",
    "this",
    "they",
    "them",
    "their",
    "from",
    "about",
    "said",
    "says",
    "also",
    "there",
    "what",
    "when",
    "which",
    "would",
    "been",
    "into",
    "your",
    "very",
    "much",
    "some",
    "more",
    "called",
    "named",
    "name",
    "user",
    "users",
    "talked",
    "talk",
    "talks",
    "conversation",
    "mood",
    "asked",
    "asks",
    "likes",
    "like",
    "loves",
    "love",
    "its",
    "is",
    "all",
    "any",
    "can",
    "does",
    "did",
    "les",
    "des",
    "une",
    "est",
    "qui",
    "que",
    "dans",
    "pour",
    "avec",
    "son",
    "ses",
    "sur",
    "pas",
    "par",
    "utilisateur",
    "utilisatrice",
    "aime",
    "elle",
    "lui",
    "leur",
];

/// The request for `turns` (the conversation since the last pause), or `None` when the user
/// said nothing of substance there (greetings only).
pub fn request(turns: &[ChatTurn]) -> Option<Extraction> {
    let turns = &turns[turns.len().saturating_sub(MAX_TURNS)..];
    let said: usize = turns
        .iter()
        .map(|turn| turn.user.split_whitespace().count())
        .sum();
    if said < 3 {
        return None;
    }
    let mut message = String::from("The conversation:\n\n");
    for turn in turns {
        message.push_str("User: ");
        message.push_str(&cut(turn.user.trim()));
        message.push_str("\nAssistant: ");
        message.push_str(&cut(without_tag(turn.assistant.trim())));
        message.push('\n');
    }
    Some(Extraction {
        instructions: INSTRUCTIONS.to_owned(),
        message,
        max_tokens: MAX_ANSWER_TOKENS,
    })
}

/// What an answer gives: memories to write, and each dropped line with why.
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    pub memories: Vec<NewMemory>,
    pub dropped: Vec<(String, &'static str)>,
}

/// Reads the model's `answer` to [`request`] for `turns`.
pub fn read(answer: &str, turns: &[ChatTurn]) -> Read {
    let user_words = stems(turns.iter().map(|turn| turn.user.as_str()));
    let all_words = stems(
        turns
            .iter()
            .flat_map(|turn| [turn.user.as_str(), turn.assistant.as_str()]),
    );
    let mut read = Read::default();
    let mut facts = 0;
    let mut episode = false;
    for line in answer.lines() {
        let line = bare(line);
        if line.is_empty() {
            continue;
        }
        let verdict = match parse(line) {
            None => Err("not a FACT or EPISODE line"),
            Some(Line::Fact { topic, text }) => {
                check(text, &FACT_CHARS, &user_words, "not what the user said")
                    .and_then(|()| {
                        if topic.chars().count() > MAX_TOPIC_CHARS
                            || !topic
                                .chars()
                                .all(|c| c.is_alphanumeric() || " -_'".contains(c))
                        {
                            Err("a malformed topic")
                        } else if facts == MAX_FACTS {
                            Err("too many facts")
                        } else {
                            Ok(())
                        }
                    })
                    .map(|()| {
                        facts += 1;
                        let mut memory = NewMemory::new(MemoryKind::Fact, text);
                        memory.key = (!topic.is_empty()).then(|| topic.to_owned());
                        memory.importance = FACT_IMPORTANCE;
                        memory
                    })
            }
            Some(Line::Episode(text)) => {
                let second = if episode {
                    Err("a second episode")
                } else {
                    Ok(())
                };
                check(text, &EPISODE_CHARS, &all_words, "not in the conversation")
                    .and(second)
                    .map(|()| {
                        episode = true;
                        let mut memory = NewMemory::new(MemoryKind::Episode, text);
                        memory.importance = EPISODE_IMPORTANCE;
                        memory
                    })
            }
        };
        match verdict {
            Ok(memory)
                if read
                    .memories
                    .iter()
                    .any(|kept| kept.text.eq_ignore_ascii_case(&memory.text)) =>
            {
                read.dropped.push((line.to_owned(), "a repeated line"));
            }
            Ok(memory) => read.memories.push(memory),
            Err(reason) => read.dropped.push((line.to_owned(), reason)),
        }
    }
    read
}

enum Line<'a> {
    Fact { topic: &'a str, text: &'a str },
    Episode(&'a str),
}

fn parse(line: &str) -> Option<Line<'_>> {
    let (head, text) = line.split_once(':')?;
    let text = text.trim().trim_start_matches('*').trim();
    let head = head.trim();
    let word = head.split_whitespace().next()?;
    if word.eq_ignore_ascii_case("episode") && head.len() == word.len() {
        return Some(Line::Episode(text));
    }
    if word.eq_ignore_ascii_case("fact") {
        let topic = head[word.len()..].trim();
        return Some(Line::Fact {
            topic: topic.trim_matches(|c| "<>*".contains(c)).trim(),
            text,
        });
    }
    None
}

/// `text` is a memory when its length is in `chars`, it is no placeholder (`<...>`), and at
/// least half of its content words (at least one) are among `known`.
fn check(
    text: &str,
    chars: &std::ops::RangeInclusive<usize>,
    known: &[String],
    unknown: &'static str,
) -> Result<(), &'static str> {
    if !chars.contains(&text.chars().count()) {
        return Err("too short or too long");
    }
    if text.contains('<') || text.contains('>') {
        return Err("a placeholder");
    }
    let words = stems(std::iter::once(text));
    let found = words.iter().filter(|word| known.contains(word)).count();
    if words.is_empty() || found * 2 < words.len() {
        return Err(unknown);
    }
    Ok(())
}

/// The content words of `texts`, lower case, cut to their first 4 characters (so "works" and
/// "work", "nights" and "night" meet), without [`STOP_WORDS`] and words under 3 characters.
fn stems<'a>(texts: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut stems: Vec<String> = texts
        .flat_map(|text| text.split(|c: char| !c.is_alphanumeric()))
        .map(str::to_lowercase)
        .filter(|word| word.chars().count() >= 3 && !STOP_WORDS.contains(&word.as_str()))
        .map(|word| word.chars().take(4).collect())
        .collect();
    stems.sort();
    stems.dedup();
    stems
}

/// A line without list marks and emphasis: `- `, `* `, `1. `, `**`.
fn bare(line: &str) -> &str {
    let line = line.trim().trim_start_matches(['-', '*', '•', ' ']);
    let digits = line.trim_start_matches(|c: char| c.is_ascii_digit());
    let line = match digits.strip_prefix(['.', ')']) {
        Some(rest) if digits.len() < line.len() => rest,
        _ => line,
    };
    line.trim().trim_matches('*').trim()
}

fn without_tag(reply: &str) -> &str {
    match reply
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
    {
        Some((tag, rest)) if tag.len() <= 16 && tag.chars().all(char::is_alphabetic) => {
            rest.trim_start()
        }
        _ => reply,
    }
}

fn cut(text: &str) -> String {
    text.chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns() -> Vec<ChatTurn> {
        vec![
            ChatTurn::new(
                "Hi! My name is Léa and I work nights at the hospital.",
                "[happy] Nice to meet you, Léa! Night shifts must be tiring.",
            ),
            ChatTurn::new(
                "Yes, and my cat Miso wakes me up at noon.",
                "Cats have their own schedule!",
            ),
        ]
    }

    #[test]
    fn the_request_holds_the_conversation_without_emotion_tags() {
        let asked = request(&turns()).expect("the user said something");
        assert!(asked.instructions.contains("FACT <topic>:"));
        assert!(asked.message.contains("User: Hi! My name is Léa"));
        assert!(asked.message.contains("Assistant: Nice to meet you, Léa!"));
        assert!(!asked.message.contains("[happy]"));
        assert_eq!(request(&[ChatTurn::new("hi", "[happy] Hello!")]), None);
    }

    #[test]
    fn facts_and_the_episode_are_kept_with_their_topics() {
        let answer = "FACT name: The user's name is Léa.\n\
                      - FACT job: The user works nights at the hospital.\n\
                      **FACT cat:** The user has a cat called Miso.\n\
                      EPISODE: Léa talked about her night shifts at the hospital and her cat Miso; tired but cheerful.\n";
        let read = read(answer, &turns());
        assert_eq!(read.dropped, vec![]);
        let kept: Vec<(MemoryKind, Option<&str>, &str)> = read
            .memories
            .iter()
            .map(|m| (m.kind, m.key.as_deref(), m.text.as_str()))
            .collect();
        assert_eq!(
            kept,
            vec![
                (MemoryKind::Fact, Some("name"), "The user's name is Léa."),
                (
                    MemoryKind::Fact,
                    Some("job"),
                    "The user works nights at the hospital."
                ),
                (
                    MemoryKind::Fact,
                    Some("cat"),
                    "The user has a cat called Miso."
                ),
                (
                    MemoryKind::Episode,
                    None,
                    "Léa talked about her night shifts at the hospital and her cat Miso; tired but cheerful."
                ),
            ]
        );
    }

    #[test]
    fn inventions_placeholders_and_echoes_are_dropped_with_a_reason() {
        // What Gemma 3 270M wrote for this conversation, and a few other failures.
        let answer = "User: Yes, I'm a cat.\n\
                      Assistant: I'm a cat.\n\
                      FACT pet: The user owns a horse named Thunder in Texas.\n\
                      FACT <topic>: <the fact, as a sentence about the user>\n\
                      FACT cat: Miso\n\
                      FACT a{b}: The user works nights at the hospital.\n\
                      EPISODE: <what was said about yourself>\n\
                      EPISODE: Yes, she has a lot of friends there.\n";
        let read = read(answer, &turns());
        assert_eq!(read.memories, vec![]);
        let reasons: Vec<&str> = read.dropped.iter().map(|(_, why)| *why).collect();
        assert_eq!(
            reasons,
            vec![
                "not a FACT or EPISODE line",
                "not a FACT or EPISODE line",
                "not what the user said",
                "a placeholder",
                "too short or too long",
                "a malformed topic",
                "a placeholder",
                "not in the conversation",
            ]
        );
    }

    #[test]
    fn a_fact_must_be_the_users_words_not_the_assistants() {
        // "tiring" and "schedule" were said by the assistant only.
        let fact = read("FACT work: The user finds the schedule tiring.", &turns());
        assert_eq!(fact.dropped[0].1, "not what the user said");
        // An episode may use both sides' words.
        let episode = read(
            "EPISODE: Night shifts are tiring; cats keep their own schedule.",
            &turns(),
        );
        assert_eq!(episode.memories.len(), 1, "{:?}", episode.dropped);
    }

    #[test]
    fn one_episode_and_no_repeats() {
        let answer = "FACT cat: The user has a cat called Miso.\n\
                      FACT cat: The user has a cat called Miso.\n\
                      EPISODE: Talked about Léa's cat Miso.\n\
                      EPISODE: Talked about the hospital at night.";
        let read = read(answer, &turns());
        assert_eq!(read.memories.len(), 2);
        let reasons: Vec<&str> = read.dropped.iter().map(|(_, why)| *why).collect();
        assert_eq!(reasons, vec!["a repeated line", "a second episode"]);
    }
}
