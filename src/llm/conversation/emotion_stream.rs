//! Strips the leading emotion tag (`[joy]`) from a streamed reply, even when the tag arrives
//! split across tokens, and remembers which emotion it named. Only the fixed set of emotions
//! is recognised: any other bracketed text is shown as it is.

use crate::config::Emotion;

use crate::llm::conversation::chat::split_emotion_tag;

/// Longest text that may still turn out to be a tag.
const MAX_TAG_LEN: usize = 16;

#[derive(Debug, Default)]
pub struct EmotionTagFilter {
    held: String,
    decided: bool,
    /// Whitespace right after the tag is dropped too.
    skip_space: bool,
    emotion: Option<Emotion>,
}

impl EmotionTagFilter {
    /// Adds a streamed piece; returns the text to show now.
    pub fn push(&mut self, piece: &str) -> String {
        if self.decided {
            return self.after_tag(piece);
        }
        self.held.push_str(piece);
        let trimmed = self.held.trim_start();
        if trimmed.is_empty() {
            return String::new();
        }
        if !trimmed.starts_with('[') {
            return self.release();
        }
        if !trimmed.contains(']') {
            if trimmed.len() > MAX_TAG_LEN {
                return self.release();
            }
            return String::new();
        }
        let held = std::mem::take(&mut self.held);
        let (emotion, rest) = split_emotion_tag(&held);
        self.decided = true;
        match emotion {
            Some(emotion) => {
                self.emotion = Some(emotion);
                self.skip_space = true;
                self.after_tag(rest)
            }
            None => held.trim_start().to_owned(),
        }
    }

    /// Text still held when the reply ends.
    pub fn finish(&mut self) -> String {
        self.decided = true;
        std::mem::take(&mut self.held)
    }

    pub fn emotion(&self) -> Option<Emotion> {
        self.emotion
    }

    /// Not a tag: show what was held, without the reply's leading whitespace.
    fn release(&mut self) -> String {
        self.decided = true;
        std::mem::take(&mut self.held).trim_start().to_owned()
    }

    fn after_tag(&mut self, piece: &str) -> String {
        if self.skip_space {
            let rest = piece.trim_start();
            if !rest.is_empty() {
                self.skip_space = false;
            }
            return rest.to_owned();
        }
        piece.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&str]) -> (String, Option<Emotion>) {
        let mut filter = EmotionTagFilter::default();
        let mut shown: String = pieces.iter().map(|p| filter.push(p)).collect();
        shown.push_str(&filter.finish());
        (shown, filter.emotion())
    }

    #[test]
    fn tag_split_across_tokens_is_removed_and_recognised() {
        assert_eq!(
            run(&[" [", "jo", "y", "]", " Hello", " there"]),
            ("Hello there".to_owned(), Some(Emotion::Joy))
        );
        assert_eq!(
            run(&["[sorrow] ", "", "Oh no"]),
            ("Oh no".to_owned(), Some(Emotion::Sorrow))
        );
    }

    #[test]
    fn unknown_or_missing_tags_leave_the_text_alone() {
        assert_eq!(
            run(&["[evil]", " laugh"]),
            ("[evil] laugh".to_owned(), None)
        );
        assert_eq!(run(&["Hi ", "[joy]"]), ("Hi [joy]".to_owned(), None));
        assert_eq!(run(&["  ", " is a rock"]), ("is a rock".to_owned(), None));
        assert_eq!(
            run(&["[this is not a tag at all, just text"]),
            ("[this is not a tag at all, just text".to_owned(), None)
        );
        assert_eq!(run(&["[jo"]), ("[jo".to_owned(), None));
    }
}
