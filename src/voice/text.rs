//! What the voice says: the streamed reply cut into sentences as it arrives, and each sentence
//! cleaned of what must not be spoken (emotion tags, markdown, emoji, links, code blocks).
//! Bevy-free; the voice plugin and `desktop-mate say` share it.

use crate::config::Emotion;

/// A sentence this long without an end is cut at its last clause mark (`,` `;` `:` dash).
const CLAUSE_CUT_CHARS: usize = 160;
/// ... and this long without any clause mark, at its last space.
const HARD_CUT_CHARS: usize = 280;
/// A clause cut leaves at least this much in the part spoken first.
const MIN_CLAUSE_CHARS: usize = 24;

/// Words that end with a period without ending the sentence (lowercase, without the period).
/// English and French; a single letter (an initial: "J. R. R. Tolkien") is never an end either.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "cf", "fig",
    "approx", "dept", "inc", "ltd", "mt", "mme", "mlle", "p.ex", "env", "av", "bd", "vol", "p",
    "pp",
];

/// Cuts a streamed reply into speakable sentences.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    /// Text received and not yet given out.
    pending: String,
    /// Inside a ``` fenced block: code is not read aloud.
    in_code_block: bool,
}

impl SentenceSplitter {
    /// Adds a streamed piece; returns the sentences it completed, cleaned for speech.
    pub fn push(&mut self, piece: &str) -> Vec<String> {
        self.pending.push_str(piece);
        let mut sentences = Vec::new();
        while let Some(end) = self.next_end(false) {
            self.emit(end, &mut sentences);
        }
        sentences
    }

    /// The reply ended: whatever is left, cleaned (empty when nothing speakable is left).
    pub fn finish(&mut self) -> Vec<String> {
        let mut sentences = Vec::new();
        while let Some(end) = self.next_end(true) {
            self.emit(end, &mut sentences);
        }
        let rest = std::mem::take(&mut self.pending);
        self.take_line(&rest, &mut sentences);
        self.in_code_block = false;
        sentences
    }

    fn emit(&mut self, end: usize, sentences: &mut Vec<String>) {
        let text: String = self.pending.drain(..end).collect();
        self.take_line(&text, sentences);
    }

    /// Cleans one cut piece (which may span lines of a code fence) and keeps it if speakable.
    fn take_line(&mut self, text: &str, sentences: &mut Vec<String>) {
        let mut spoken = String::new();
        for line in text.split('\n') {
            if line.trim_start().starts_with("```") && line.matches("```").count() == 1 {
                self.in_code_block = !self.in_code_block;
                continue;
            }
            if self.in_code_block {
                continue;
            }
            if !spoken.is_empty() {
                spoken.push(' ');
            }
            spoken.push_str(line);
        }
        let cleaned = speakable(&spoken);
        if !cleaned.is_empty() {
            sentences.push(cleaned);
        }
    }

    /// Byte offset just past the next complete sentence in `pending`, if there is one.
    /// `at_end`: no more text will come, so a final mark needs no following space.
    fn next_end(&self, at_end: bool) -> Option<usize> {
        let text = &self.pending;
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut last_clause = None;
        let mut last_space = None;
        for (i, &(at, c)) in chars.iter().enumerate() {
            let next = chars.get(i + 1).map(|&(_, c)| c);
            if c == '\n' {
                // A line break ends a paragraph, a list item or a heading.
                if at > 0 {
                    return Some(at + 1);
                }
                continue;
            }
            if matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？') {
                // Closing quotes and brackets stay with their sentence.
                let mut j = i + 1;
                while let Some(&(_, q)) = chars.get(j) {
                    if matches!(
                        q,
                        '.' | '!' | '?' | '…' | '"' | '\'' | '”' | '’' | ')' | '»' | '*' | '_'
                    ) {
                        j += 1;
                    } else {
                        break;
                    }
                }
                let after = chars.get(j).map(|&(_, c)| c);
                let end_byte = chars.get(j).map_or(text.len(), |&(at, _)| at);
                // Chinese and Japanese end marks need no space after them.
                let full_width = matches!(c, '。' | '！' | '？');
                match after {
                    None if !at_end && !full_width => return None,
                    Some(next) if !next.is_whitespace() && !full_width => {}
                    _ if c == '.' && j == i + 1 && is_abbreviation(&text[..at]) => {}
                    _ => return Some(end_byte),
                }
            }
            if (matches!(c, ',' | ';' | ':' | '—' | '–') && next.is_some_and(char::is_whitespace))
                || matches!(c, '，' | '、' | '；' | '：')
            {
                last_clause = Some(at + c.len_utf8());
            }
            // A space at the very start cuts nothing (the text left from the last cut).
            if c.is_whitespace() && at > 0 {
                last_space = Some(at);
            }
            let length = i + 1;
            if length >= CLAUSE_CUT_CHARS
                && let Some(cut) = last_clause
                && text[..cut].chars().count() >= MIN_CLAUSE_CHARS
            {
                return Some(cut);
            }
            if length >= HARD_CUT_CHARS {
                // No space at all (a long URL, base64, CJK without marks): cut here.
                return Some(last_space.unwrap_or(at + c.len_utf8()));
            }
        }
        None
    }
}

/// Whether the word just before a period is an abbreviation or an initial, not an end.
fn is_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or_default();
    let letters = word.trim_start_matches(['*', '_', '\'']);
    // An initial ("J. R. R."), but not the pronoun "I".
    if letters.chars().count() == 1 && letters.chars().all(char::is_uppercase) && letters != "I" {
        return true;
    }
    // A numbered list item's number ("1. Buy milk"): the sentence starts after it.
    if !letters.is_empty()
        && letters.chars().all(|c| c.is_ascii_digit())
        && before.trim_start() == letters
    {
        return true;
    }
    // "3." followed by a space in a numbered list item is handled by the line break; a number
    // ending a sentence ("I am 42.") is an end.
    let lower = letters.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
}

/// One sentence as it should be spoken: no emotion tags, no markdown markers, no links' targets,
/// no emoji, whitespace collapsed. Empty when nothing speakable is left.
pub fn speakable(text: &str) -> String {
    let text = strip_emotion_tags(text);
    let text = strip_links(&text);
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let word = strip_line_marker(word, out.is_empty());
        let cleaned: String = word
            .chars()
            .filter(|&c| !is_markup(c) && !is_emoji(c))
            .collect();
        // A word that was only markup or emoji ("**", "🙂", "#") disappears with its space.
        if cleaned.chars().any(char::is_alphanumeric) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&cleaned);
        } else if cleaned
            .chars()
            .any(|c| matches!(c, '.' | ',' | '!' | '?' | ';' | ':' | '…'))
        {
            // Punctuation left alone by a removed emoji ("news 🎉!") joins the word before it.
            out.push_str(&cleaned);
        }
    }
    // A sentence the model opened with the previous one's comma (", there was...").
    let out = out.trim_start_matches([',', ';', ':', '.', ' ']);
    if out.chars().any(char::is_alphanumeric) {
        out.to_owned()
    } else {
        String::new()
    }
}

/// `[joy]`, `[Sorrow]`, ...: the emotion tags a model writes, wherever they are.
fn strip_emotion_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if is_emotion(&after[..close]) => rest = &after[close + 1..],
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_emotion(name: &str) -> bool {
    Emotion::ALL.into_iter().any(|emotion| {
        ron::to_string(&emotion).is_ok_and(|known| known.eq_ignore_ascii_case(name.trim()))
    })
}

/// `[text](target)` -> `text`; bare `http(s)://...` addresses are not read out.
fn strip_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find("](")
            && let Some(end) = after[close + 2..].find(')')
        {
            out.push_str(&rest[..open]);
            out.push_str(&after[..close]);
            rest = &after[close + 2 + end + 1..];
        } else {
            out.push_str(&rest[..=open]);
            rest = after;
        }
    }
    out.push_str(rest);
    out.split_whitespace()
        .filter(|word| {
            let word = word.trim_start_matches(['(', '<', '"']);
            !(word.starts_with("http://")
                || word.starts_with("https://")
                || word.starts_with("www."))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A markdown heading, quote or bullet marker at the start of a line is not spoken.
fn strip_line_marker(word: &str, first: bool) -> &str {
    if first && (word.chars().all(|c| c == '#') || matches!(word, ">" | "-" | "*" | "+")) {
        return "";
    }
    word
}

/// Markdown emphasis, code and heading characters.
fn is_markup(c: char) -> bool {
    matches!(
        c,
        '*' | '_' | '`' | '#' | '~' | '|' | '<' | '>' | '[' | ']' | '{' | '}' | '\\'
    )
}

/// Pictographs, symbols and their joiners: not spoken.
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF // emoticons, pictographs, transport, flags, supplemental symbols
        | 0x2600..=0x27BF // miscellaneous symbols, dingbats
        | 0x2B00..=0x2BFF // arrows and stars (⭐)
        | 0x2190..=0x21FF // arrows
        | 0x2300..=0x23FF // technical (⌛, ⏰)
        | 0x25A0..=0x25FF // geometric shapes
        | 0xFE00..=0xFE0F // variation selectors
        | 0x200D          // zero-width joiner
        | 0x20E3          // keycap
        | 0xE0020..=0xE007F // tag characters
        | 0x3030 | 0x303D | 0x3297 | 0x3299)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_stream(pieces: &[&str]) -> Vec<String> {
        let mut splitter = SentenceSplitter::default();
        let mut out: Vec<String> = pieces
            .iter()
            .flat_map(|piece| splitter.push(piece))
            .collect();
        out.extend(splitter.finish());
        out
    }

    fn split(text: &str) -> Vec<String> {
        // One character at a time: the worst streaming case.
        let pieces: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let streamed = split_stream(&pieces);
        assert_eq!(
            streamed,
            split_stream(&[text]),
            "streaming changes the cut of {text:?}"
        );
        streamed
    }

    #[test]
    fn sentences_end_at_marks_followed_by_space_or_the_end() {
        assert_eq!(
            split("Hello there! How are you? I am fine."),
            ["Hello there!", "How are you?", "I am fine."]
        );
        assert_eq!(
            split("Wait... what?! Really?"),
            ["Wait...", "what?!", "Really?"]
        );
        assert_eq!(
            split("She said \"no.\" Then left."),
            ["She said \"no.\"", "Then left."]
        );
    }

    #[test]
    fn a_sentence_is_given_out_as_soon_as_the_next_one_starts() {
        let mut splitter = SentenceSplitter::default();
        assert!(splitter.push("It is 3.5 degrees").is_empty());
        assert!(
            splitter.push(" today.").is_empty(),
            "the end needs what follows"
        );
        assert_eq!(splitter.push(" Brr"), ["It is 3.5 degrees today."]);
        assert_eq!(splitter.finish(), ["Brr"]);
    }

    #[test]
    fn abbreviations_initials_and_numbers_do_not_end_a_sentence() {
        assert_eq!(
            split("Dr. Smith met Mr. J. R. Tolkien at 10.30 today, e.g. for tea. Fine."),
            [
                "Dr. Smith met Mr. J. R. Tolkien at 10.30 today, e.g. for tea.",
                "Fine."
            ]
        );
        assert_eq!(
            split("Mme. Dubois a 42 ans. M. Martin aussi."),
            ["Mme. Dubois a 42 ans.", "M. Martin aussi."]
        );
        assert_eq!(split("Pi is 3.14159. Yes."), ["Pi is 3.14159.", "Yes."]);
        assert_eq!(split("So am I. Yes."), ["So am I.", "Yes."]);
        assert_eq!(
            split("1. Buy milk. 2. Call Sam."),
            ["1. Buy milk.", "2. Call Sam."]
        );
        assert_eq!(split("你好。今天天气很好！"), ["你好。", "今天天气很好！"]);
    }

    #[test]
    fn markdown_emoji_and_emotion_tags_are_not_spoken() {
        assert_eq!(
            split(
                "[joy] **Great** news 🎉! See [the docs](https://example.com/x) or https://x.y now."
            ),
            ["Great news!", "See the docs or now."]
        );
        assert_eq!(
            split("# Title\n- first item\n- second `code` item\n> quoted [sorrow] line"),
            ["Title", "first item", "second code item", "quoted line"]
        );
        assert_eq!(
            split("Here:\n```rust\nfn main() {}\n```\nDone."),
            ["Here:", "Done."]
        );
        assert_eq!(
            split("Run ```ls -la``` now.\nMore text."),
            ["Run ls -la now.", "More text."]
        );
        assert_eq!(split("🙂👍🏽 ✨"), Vec::<String>::new());
        assert_eq!(speakable(", there was a girl."), "there was a girl.");
        assert_eq!(speakable("[evil] stays"), "evil stays");
    }

    #[test]
    fn a_long_sentence_without_an_end_is_cut_at_a_clause_then_at_a_space() {
        let clause = "this part goes on and on without stopping, ".repeat(6);
        let parts = split(&clause);
        assert!(parts.len() >= 2, "{parts:?}");
        for part in &parts {
            assert!(part.chars().count() <= CLAUSE_CUT_CHARS, "{part:?}");
            assert!(
                part.ends_with(',') || part == parts.last().unwrap_or(part),
                "{part:?}"
            );
        }
        // No space at all after a cut: cut anyway, nothing lost, no endless loop.
        let long = format!("Hi. {}", "a".repeat(700));
        let parts = split(&long);
        assert_eq!(
            parts.concat(),
            format!("Hi.{}", "a".repeat(700)),
            "{parts:?}"
        );
        assert!(
            parts
                .iter()
                .all(|part| part.chars().count() <= HARD_CUT_CHARS)
        );
        let words = "word ".repeat(120);
        let parts = split(&words);
        assert!(parts.len() >= 2, "{parts:?}");
        assert!(
            parts
                .iter()
                .all(|part| part.chars().count() <= HARD_CUT_CHARS)
        );
        assert_eq!(parts.join(" "), words.trim());
    }
}
