//! Streaming text helpers: bytes -> valid UTF-8 pieces, and stop strings that may arrive split
//! across tokens.

/// Turns token bytes into text without ever splitting a multi-byte character: incomplete
/// sequences wait for the next token; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(err) => {
                    let valid = err.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match err.error_len() {
                        // Incomplete character at the end: keep it for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end of the reply (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Holds back text that could be the start of a stop string, so a stop string is never shown,
/// even when it arrives in pieces.
#[derive(Debug)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds a piece; returns the text that is safe to show, and whether a stop string matched
    /// (the text before it is returned, the stop string and anything after are dropped).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        self.held.push_str(piece);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min()
        {
            let safe = self.held[..at].to_owned();
            self.held.clear();
            return (safe, true);
        }
        // Keep the longest tail that is a prefix of some stop string.
        let keep = self
            .stops
            .iter()
            .map(|stop| longest_suffix_prefix(&self.held, stop))
            .max()
            .unwrap_or(0);
        let split = self.held.len() - keep;
        let safe = self.held[..split].to_owned();
        self.held.drain(..split);
        (safe, false)
    }

    /// The held-back text, once the reply is over without a match.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Length in bytes of the longest suffix of `text` that is a proper prefix of `stop`.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = stop.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && stop.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_byte_characters_split_across_tokens_are_never_broken() {
        let mut stream = Utf8Stream::default();
        let bytes = "é😀".as_bytes();
        assert_eq!(stream.push(&bytes[..1]), "");
        assert_eq!(stream.push(&bytes[1..3]), "é");
        assert_eq!(stream.push(&bytes[3..5]), "");
        assert_eq!(stream.push(&bytes[5..]), "😀");
        assert_eq!(stream.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.push(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
        assert_eq!(stream.push(&[0xE2, 0x82]), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
    }

    #[test]
    fn stop_string_split_across_pieces_is_never_shown() {
        let mut stops = StopMatcher::new(&["\nUser:".to_owned()]);
        assert_eq!(stops.push("Hello"), ("Hello".to_owned(), false));
        assert_eq!(stops.push(" there\nUs"), (" there".to_owned(), false));
        assert_eq!(stops.push("er: more"), (String::new(), true));
    }

    #[test]
    fn held_text_is_released_when_it_stops_matching() {
        let mut stops = StopMatcher::new(&["</s>".to_owned()]);
        assert_eq!(stops.push("a <"), ("a ".to_owned(), false));
        assert_eq!(stops.push("b"), ("<b".to_owned(), false));
        assert_eq!(stops.push("x </"), ("x ".to_owned(), false));
        assert_eq!(stops.finish(), "</");
    }
}
