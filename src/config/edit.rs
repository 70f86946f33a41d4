//! Comment-preserving save of `mascot.ron`: only the values that changed between `old` and
//! `new` are rewritten in the file's text, so the user's comments, key order and layout survive.
//!
//! How it works:
//! 1. `old` and `new` are turned into trees of [`Val`] by a small serde serializer: named
//!    structs become branches, every other value (number, string, enum, `Option`, tuple,
//!    sequence) is a leaf, and maps are branches keyed by their keys' RON text.
//! 2. The original text is tokenized (comments, strings, raw strings and char literals skipped
//!    correctly) and the struct/map layout is located from the tokens.
//! 3. Each changed leaf has its value span replaced (a trailing `//` comment keeps its column
//!    when it was aligned); a key missing from the file (it relied on the default) is inserted
//!    before the closing `)` of its struct, with its siblings' indentation, and a missing struct
//!    is written with only its changed keys. Map entries are edited one by one; in a multi-line
//!    map added entries are inserted before `}` and removed ones deleted with their line. A map
//!    whose entries cannot be matched to the text, or a one-line map whose key set changed, is
//!    replaced as one value (comments inside it are lost).
//! 4. The result must read back as exactly `new`, or an error is returned instead of a text.

use ron::ser::PrettyConfig;
use serde::Serialize;
use serde::ser::{self, Serializer};

use super::settings::Settings;

/// Why the file could not be edited in place. The original text is never partially edited:
/// on any error the caller still has the untouched file.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The original text is not a valid settings file.
    #[error("the settings file does not parse: {0}")]
    Original(#[source] ron::error::SpannedError),
    /// The original text does not hold `old` (the file changed since it was read).
    #[error("the settings file changed since it was read (it no longer holds the old settings)")]
    Stale,
    /// Serializing a value failed.
    #[error("could not serialize the settings: {0}")]
    Serialize(#[from] ron::Error),
    /// The text's structure could not be followed (should not happen for a file that parses).
    #[error("cannot follow the settings file's structure at byte {offset}: {message}")]
    Syntax { offset: usize, message: String },
    /// A value could not be edited in place.
    #[error("cannot edit `{key}` in place: {reason}")]
    Unsupported { key: String, reason: String },
    /// The edited text does not read back as `new`; it was discarded.
    #[error("the edited file would not read back as the new settings: {0}")]
    Verify(String),
}

/// Returns `original` with only the values that differ between `old` and `new` rewritten.
///
/// `original` must parse to `old` (else [`EditError::Stale`]). When `old == new` the original
/// is returned byte for byte. The returned text always parses to exactly `new`.
pub fn edit_in_place(original: &str, old: &Settings, new: &Settings) -> Result<String, EditError> {
    let on_disk: Settings = ron::from_str(original).map_err(EditError::Original)?;
    if on_disk != *old {
        return Err(EditError::Stale);
    }
    if old == new {
        return Ok(original.to_owned());
    }

    let doc = Doc::new(original)?;
    let root = doc.root()?;
    let style = Style::detect(&doc, &root);
    let old_val = Val::of(old, &style)?;
    let new_val = Val::of(new, &style)?;
    let (Kind::Struct(old_fields), Kind::Struct(new_fields)) = (&old_val.kind, &new_val.kind)
    else {
        return Err(unsupported("", "the settings do not serialize as a struct"));
    };

    let mut edits = Vec::new();
    let editor = Editor {
        doc: &doc,
        style: &style,
    };
    editor.edit_struct(&root, old_fields, new_fields, "", &mut edits)?;
    let edited = apply(original, edits)?;

    let back: Settings =
        ron::from_str(&edited).map_err(|e| EditError::Verify(format!("it does not parse: {e}")))?;
    if back != *new {
        let back_val = Val::of(&back, &style)?;
        let why = match first_difference(&back_val, &new_val, "") {
            Some(key) => format!("it reads back a different value at `{key}`"),
            None => "a value does not equal itself once read back (NaN?)".to_owned(),
        };
        return Err(EditError::Verify(why));
    }
    Ok(edited)
}

fn unsupported(key: &str, reason: impl Into<String>) -> EditError {
    EditError::Unsupported {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// The key path of the first leaf whose RON text differs between `a` and `b`.
fn first_difference(a: &Val, b: &Val, path: &str) -> Option<String> {
    if a.inline == b.inline {
        return None;
    }
    let children: Vec<(String, &Val, &Val)> = match (&a.kind, &b.kind) {
        (Kind::Struct(x), Kind::Struct(y)) => x
            .iter()
            .zip(y)
            .map(|((k, va), (_, vb))| ((*k).to_owned(), va, vb))
            .collect(),
        (Kind::Map(x), Kind::Map(y)) => x
            .iter()
            .filter_map(|(k, va)| {
                y.iter()
                    .find(|(kb, _)| kb == k)
                    .map(|(_, vb)| (k.clone(), va, vb))
            })
            .collect(),
        _ => Vec::new(),
    };
    children
        .iter()
        .find_map(|(k, va, vb)| first_difference(va, vb, &join_key(path, k)))
        .or_else(|| Some(path.to_owned()))
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

// ---------------------------------------------------------------------------------------------
// Values: the typed settings as a tree of branches (structs, maps) and leaves.

/// One serialized value: its one-line RON text (also used to compare values) and its shape.
#[derive(Debug)]
struct Val {
    inline: String,
    /// Multi-line pretty text, for maps only (unindented: lines after the first start at 0).
    multi: Option<String>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Leaf,
    Struct(Vec<(&'static str, Val)>),
    /// Entries keyed by the key's one-line RON text, in serialization order.
    Map(Vec<(String, Val)>),
}

/// The file's formatting conventions, used for the text written.
struct Style {
    new_line: &'static str,
    /// One level of indentation.
    unit: String,
}

impl Style {
    fn detect(doc: &Doc<'_>, root: &StructSpan) -> Self {
        let new_line = if doc.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let base = doc.line_indent(doc.tokens[root.open].start);
        let unit = root
            .fields
            .iter()
            .find(|f| doc.starts_line(doc.tokens[f.key].start))
            .map(|f| doc.line_indent(doc.tokens[f.key].start))
            .and_then(|indent| indent.strip_prefix(base).map(str::to_owned))
            .filter(|unit| !unit.is_empty())
            .unwrap_or_else(|| "    ".to_owned());
        Self { new_line, unit }
    }

    fn inline_config() -> PrettyConfig {
        PrettyConfig::new()
            .new_line("")
            .indentor("")
            .struct_names(false)
            .separate_tuple_members(false)
            .compact_arrays(true)
            .compact_structs(true)
            .compact_maps(true)
    }

    fn multi_config(&self) -> PrettyConfig {
        PrettyConfig::new()
            .new_line(self.new_line)
            .indentor(self.unit.clone())
            .struct_names(false)
            .separate_tuple_members(false)
            .compact_structs(true)
    }
}

impl Val {
    fn of<T: Serialize + ?Sized>(value: &T, style: &Style) -> Result<Self, ron::Error> {
        let inline = ron::ser::to_string_pretty(value, Style::inline_config())?;
        let kind = value.serialize(Classifier { style })?;
        let multi = match kind {
            Kind::Map(_) => Some(ron::ser::to_string_pretty(value, style.multi_config())?),
            _ => None,
        };
        Ok(Self {
            inline,
            multi,
            kind,
        })
    }
}

/// A serializer that only records a value's shape: struct fields and map entries become
/// [`Val`]s, everything else is a leaf.
struct Classifier<'a> {
    style: &'a Style,
}

struct StructCollector<'a> {
    style: &'a Style,
    fields: Vec<(&'static str, Val)>,
}

struct MapCollector<'a> {
    style: &'a Style,
    key: Option<String>,
    entries: Vec<(String, Val)>,
}

/// Accepts the parts of a leaf compound value without looking at them.
struct Skip;

impl<'a> Serializer for Classifier<'a> {
    type Ok = Kind;
    type Error = ron::Error;
    type SerializeSeq = Skip;
    type SerializeTuple = Skip;
    type SerializeTupleStruct = Skip;
    type SerializeTupleVariant = Skip;
    type SerializeMap = MapCollector<'a>;
    type SerializeStruct = StructCollector<'a>;
    type SerializeStructVariant = Skip;

    fn serialize_bool(self, _: bool) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_i8(self, _: i8) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_i16(self, _: i16) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_i32(self, _: i32) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_i64(self, _: i64) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_u8(self, _: u8) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_u16(self, _: u16) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_u32(self, _: u32) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_u64(self, _: u64) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_f32(self, _: f32) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_f64(self, _: f64) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_char(self, _: char) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_str(self, _: &str) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_none(self) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_unit(self) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Skip, ron::Error> {
        Ok(Skip)
    }
    fn serialize_tuple(self, _: usize) -> Result<Skip, ron::Error> {
        Ok(Skip)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Skip, ron::Error> {
        Ok(Skip)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Skip, ron::Error> {
        Ok(Skip)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapCollector<'a>, ron::Error> {
        Ok(MapCollector {
            style: self.style,
            key: None,
            entries: Vec::new(),
        })
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<StructCollector<'a>, ron::Error> {
        Ok(StructCollector {
            style: self.style,
            fields: Vec::new(),
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Skip, ron::Error> {
        Ok(Skip)
    }
}

impl ser::SerializeStruct for StructCollector<'_> {
    type Ok = Kind;
    type Error = ron::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ron::Error> {
        self.fields.push((key, Val::of(value, self.style)?));
        Ok(())
    }
    fn end(self) -> Result<Kind, ron::Error> {
        Ok(Kind::Struct(self.fields))
    }
}

impl ser::SerializeMap for MapCollector<'_> {
    type Ok = Kind;
    type Error = ron::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ron::Error> {
        self.key = Some(ron::ser::to_string_pretty(key, Style::inline_config())?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ron::Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <ron::Error as ser::Error>::custom("map value without a key"))?;
        self.entries.push((key, Val::of(value, self.style)?));
        Ok(())
    }
    fn end(self) -> Result<Kind, ron::Error> {
        Ok(Kind::Map(self.entries))
    }
}

macro_rules! skip_compound {
    ($($trait:ident :: $method:ident;)*) => {$(
        impl ser::$trait for Skip {
            type Ok = Kind;
            type Error = ron::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), ron::Error> {
                Ok(())
            }
            fn end(self) -> Result<Kind, ron::Error> {
                Ok(Kind::Leaf)
            }
        }
    )*};
}

skip_compound! {
    SerializeSeq::serialize_element;
    SerializeTuple::serialize_element;
    SerializeTupleStruct::serialize_field;
    SerializeTupleVariant::serialize_field;
}

impl ser::SerializeStructVariant for Skip {
    type Ok = Kind;
    type Error = ron::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        _: &T,
    ) -> Result<(), ron::Error> {
        Ok(())
    }
    fn end(self) -> Result<Kind, ron::Error> {
        Ok(Kind::Leaf)
    }
}

// ---------------------------------------------------------------------------------------------
// Text: tokens and the located layout of structs and maps.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Ident,
    /// A string, raw string, byte string or char literal.
    Literal,
    Open(u8),
    Close(u8),
    Comma,
    Colon,
    /// Anything else (numbers, `#!`, ...).
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

struct Doc<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    /// For an `Open` token, the index of its matching `Close` (else `usize::MAX`).
    partner: Vec<usize>,
}

/// A `( key: value, ... )` struct in the text; indices are token indices.
#[derive(Debug)]
struct StructSpan {
    open: usize,
    close: usize,
    fields: Vec<Entry>,
}

/// One `key: value` of a struct or map; indices are token indices, `key` is the key's first
/// token and `key_last` its last one.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: usize,
    key_last: usize,
    first: usize,
    last: usize,
    comma: Option<usize>,
}

fn syntax(offset: usize, message: &str) -> EditError {
    EditError::Syntax {
        offset,
        message: message.to_owned(),
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Returns the index just past a `"..."` literal whose opening quote is at `i`.
fn skip_quoted(bytes: &[u8], i: usize, quote: u8) -> Result<usize, EditError> {
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b if b == quote => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(syntax(i, "unterminated string or char literal"))
}

/// If a raw string `r#"..."#` starts at `i` (at the `r`), returns the index just past it.
fn skip_raw_string(bytes: &[u8], i: usize) -> Result<Option<usize>, EditError> {
    let mut j = i + 1;
    let mut hashes = 0;
    while bytes.get(j) == Some(&b'#') {
        hashes += 1;
        j += 1;
    }
    if bytes.get(j) != Some(&b'"') {
        return Ok(None);
    }
    j += 1;
    while j < bytes.len() {
        let closing = bytes
            .get(j + 1..j + 1 + hashes)
            .is_some_and(|tail| tail.iter().all(|&b| b == b'#'));
        if bytes[j] == b'"' && closing {
            return Ok(Some(j + 1 + hashes));
        }
        j += 1;
    }
    Err(syntax(i, "unterminated raw string"))
}

fn tokenize(text: &str) -> Result<Vec<Token>, EditError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let start = i;
        let tok = match b {
            _ if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'/' if next == Some(b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if next == Some(b'*') => {
                let mut depth = 0usize;
                loop {
                    match (bytes.get(i), bytes.get(i + 1)) {
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some(b'*'), Some(b'/')) => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(_), _) => i += 1,
                        (None, _) => return Err(syntax(start, "unterminated block comment")),
                    }
                }
                continue;
            }
            b'"' | b'\'' => {
                i = skip_quoted(bytes, i, b)?;
                Tok::Literal
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                Tok::Open(b)
            }
            b')' | b']' | b'}' => {
                i += 1;
                Tok::Close(b)
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b':' => {
                i += 1;
                Tok::Colon
            }
            b'b' if next == Some(b'"') || next == Some(b'\'') => {
                i = skip_quoted(bytes, i + 1, bytes[i + 1])?;
                Tok::Literal
            }
            b'b' if next == Some(b'r') && matches!(bytes.get(i + 2), Some(b'"' | b'#')) => {
                match skip_raw_string(bytes, i + 1)? {
                    Some(end) => {
                        i = end;
                        Tok::Literal
                    }
                    None => {
                        i = ident_end(bytes, i);
                        Tok::Ident
                    }
                }
            }
            b'r' if next == Some(b'"') || next == Some(b'#') => match skip_raw_string(bytes, i)? {
                Some(end) => {
                    i = end;
                    Tok::Literal
                }
                None => {
                    // A raw identifier `r#name`.
                    i = ident_end(bytes, i + 2);
                    Tok::Ident
                }
            },
            _ if is_ident_start(b) => {
                i = ident_end(bytes, i);
                Tok::Ident
            }
            _ => {
                i += 1;
                while i < bytes.len() {
                    let c = bytes[i];
                    let comment = c == b'/' && matches!(bytes.get(i + 1), Some(b'/') | Some(b'*'));
                    if c.is_ascii_whitespace() || b"()[]{},:\"'".contains(&c) || comment {
                        break;
                    }
                    i += 1;
                }
                Tok::Other
            }
        };
        tokens.push(Token { tok, start, end: i });
    }
    Ok(tokens)
}

/// Identifiers may contain `.`, `+`, `-` only when raw; plain ones stop at other bytes.
fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_ident_byte(bytes[i]) {
        i += 1;
    }
    i
}

impl<'a> Doc<'a> {
    fn new(text: &'a str) -> Result<Self, EditError> {
        let tokens = tokenize(text)?;
        let mut partner = vec![usize::MAX; tokens.len()];
        let mut stack: Vec<usize> = Vec::new();
        for (index, token) in tokens.iter().enumerate() {
            match token.tok {
                Tok::Open(_) => stack.push(index),
                Tok::Close(close) => {
                    let open = stack
                        .pop()
                        .ok_or_else(|| syntax(token.start, "unmatched closing bracket"))?;
                    let expected = match tokens[open].tok {
                        Tok::Open(b'(') => b')',
                        Tok::Open(b'[') => b']',
                        _ => b'}',
                    };
                    if close != expected {
                        return Err(syntax(token.start, "mismatched closing bracket"));
                    }
                    partner[open] = index;
                }
                _ => {}
            }
        }
        if let Some(&open) = stack.last() {
            return Err(syntax(tokens[open].start, "unclosed bracket"));
        }
        Ok(Self {
            text,
            tokens,
            partner,
        })
    }

    fn slice(&self, first: usize, last: usize) -> &'a str {
        &self.text[self.tokens[first].start..self.tokens[last].end]
    }

    /// The name of an identifier token, without a raw identifier's `r#`.
    fn ident(&self, index: usize) -> &'a str {
        let token = self.tokens[index];
        let name = &self.text[token.start..token.end];
        name.strip_prefix("r#").unwrap_or(name)
    }

    fn is(&self, index: usize, tok: Tok) -> bool {
        self.tokens.get(index).is_some_and(|t| t.tok == tok)
    }

    fn line_start(&self, pos: usize) -> usize {
        self.text[..pos].rfind('\n').map_or(0, |nl| nl + 1)
    }

    /// The spaces and tabs that start the line holding `pos`.
    fn line_indent(&self, pos: usize) -> &'a str {
        let line = &self.text[self.line_start(pos)..];
        let len = line.len() - line.trim_start_matches([' ', '\t']).len();
        &line[..len]
    }

    /// Whether only spaces and tabs precede `pos` on its line.
    fn starts_line(&self, pos: usize) -> bool {
        self.text[self.line_start(pos)..pos]
            .bytes()
            .all(|b| b == b' ' || b == b'\t')
    }

    /// The top-level struct: after `#![enable(..)]` attributes, `Name(` or `(`.
    fn root(&self) -> Result<StructSpan, EditError> {
        let mut i = 0;
        while self
            .tokens
            .get(i)
            .is_some_and(|t| t.tok == Tok::Other && self.text[t.start..].starts_with('#'))
        {
            i += 1;
            if !self.is(i, Tok::Open(b'[')) {
                return Err(syntax(self.tokens[i - 1].start, "expected `[` after `#!`"));
            }
            i = self.partner[i] + 1;
        }
        if self.is(i, Tok::Ident) && self.is(i + 1, Tok::Open(b'(')) {
            i += 1;
        }
        if !self.is(i, Tok::Open(b'(')) {
            let offset = self.tokens.get(i).map_or(self.text.len(), |t| t.start);
            return Err(syntax(offset, "expected the settings struct `(`"));
        }
        self.parse_struct(i)
    }

    /// Entries between the brackets of the `Open` token at `open`.
    fn entries(&self, open: usize) -> Result<Vec<Entry>, EditError> {
        let close = self.partner[open];
        let mut entries = Vec::new();
        let mut i = open + 1;
        while i < close {
            let key = i;
            let colon = self.skip_to(i, close, Tok::Colon);
            if colon >= close || colon == key {
                return Err(syntax(self.tokens[key].start, "expected `key: value`"));
            }
            let first = colon + 1;
            let end = self.skip_to(first, close, Tok::Comma);
            if end == first {
                return Err(syntax(self.tokens[colon].start, "missing value after `:`"));
            }
            let comma = (end < close).then_some(end);
            entries.push(Entry {
                key,
                key_last: colon - 1,
                first,
                last: end - 1,
                comma,
            });
            i = end + 1;
        }
        Ok(entries)
    }

    /// The first token at or after `i` (skipping bracketed groups) that is `tok`, or `close`.
    fn skip_to(&self, mut i: usize, close: usize, tok: Tok) -> usize {
        while i < close && self.tokens[i].tok != tok {
            i = match self.tokens[i].tok {
                Tok::Open(_) => self.partner[i] + 1,
                _ => i + 1,
            };
        }
        i.min(close)
    }

    fn parse_struct(&self, open: usize) -> Result<StructSpan, EditError> {
        let fields = self.entries(open)?;
        for field in &fields {
            if field.key != field.key_last || !self.is(field.key, Tok::Ident) {
                return Err(syntax(
                    self.tokens[field.key].start,
                    "expected a field name",
                ));
            }
        }
        Ok(StructSpan {
            open,
            close: self.partner[open],
            fields,
        })
    }

    /// The struct written as the value `first..=last`: `(..)` or `Name(..)`.
    fn struct_at(&self, first: usize, last: usize) -> Option<StructSpan> {
        let open = if self.is(first, Tok::Ident) {
            first + 1
        } else {
            first
        };
        if self.is(open, Tok::Open(b'(')) && self.partner[open] == last {
            self.parse_struct(open).ok()
        } else {
            None
        }
    }

    /// The map written as the value `first..=last`: `{..}`.
    fn map_at(&self, first: usize, last: usize) -> Option<Vec<Entry>> {
        if self.is(first, Tok::Open(b'{')) && self.partner[first] == last {
            self.entries(first).ok()
        } else {
            None
        }
    }
}

impl StructSpan {
    fn field(&self, doc: &Doc<'_>, name: &str) -> Option<Entry> {
        self.fields
            .iter()
            .copied()
            .find(|f| doc.ident(f.key) == name)
    }
}

// ---------------------------------------------------------------------------------------------
// Edits.

/// Replace `start..end` of the original with `text` (`start == end` inserts).
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn apply(original: &str, mut edits: Vec<Edit>) -> Result<String, EditError> {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(original.len() + 64);
    let mut at = 0;
    for edit in edits {
        if edit.start < at {
            return Err(unsupported("", "two edits overlap"));
        }
        out.push_str(&original[at..edit.start]);
        out.push_str(&edit.text);
        at = edit.end;
    }
    out.push_str(&original[at..]);
    Ok(out)
}

/// A key to insert: its text, its old value when it is a struct field (to write only the
/// changed fields of a missing struct), and its new value.
type Item<'v> = (String, Option<&'v Val>, &'v Val);

struct Editor<'d, 'a> {
    doc: &'d Doc<'a>,
    style: &'d Style,
}

impl Editor<'_, '_> {
    fn edit_struct(
        &self,
        span: &StructSpan,
        old: &[(&'static str, Val)],
        new: &[(&'static str, Val)],
        path: &str,
        edits: &mut Vec<Edit>,
    ) -> Result<(), EditError> {
        if old.len() != new.len() || old.iter().zip(new).any(|((a, _), (b, _))| a != b) {
            return Err(unsupported(
                path,
                "the struct's fields differ between old and new",
            ));
        }
        let mut missing: Vec<Item<'_>> = Vec::new();
        for ((name, old_val), (_, new_val)) in old.iter().zip(new) {
            if old_val.inline == new_val.inline {
                continue;
            }
            let key = join_key(path, name);
            match span.field(self.doc, name) {
                Some(field) => self.edit_value(field, old_val, new_val, &key, edits)?,
                None => missing.push(((*name).to_owned(), Some(old_val), new_val)),
            }
        }
        if !missing.is_empty() {
            let last = span.fields.last().copied();
            self.insert_entries(span.open, span.close, &span.fields, last, &missing, edits);
        }
        Ok(())
    }

    /// Edits the value of `entry` (a struct field or a map entry) from `old` to `new`.
    fn edit_value(
        &self,
        entry: Entry,
        old: &Val,
        new: &Val,
        key: &str,
        edits: &mut Vec<Edit>,
    ) -> Result<(), EditError> {
        let doc = self.doc;
        let edited_inside = match (&old.kind, &new.kind) {
            (Kind::Struct(old_fields), Kind::Struct(new_fields)) => {
                match doc.struct_at(entry.first, entry.last) {
                    Some(span) => {
                        self.edit_struct(&span, old_fields, new_fields, key, edits)?;
                        true
                    }
                    None => false,
                }
            }
            (Kind::Map(old_entries), Kind::Map(new_entries)) => {
                self.edit_map(entry, old_entries, new_entries, key, edits)?
            }
            _ => false,
        };
        if edited_inside {
            return Ok(());
        }
        // Replace the whole value.
        let start = doc.tokens[entry.first].start;
        let end = doc.tokens[entry.last].end;
        let multi_line = doc.text[start..end].contains('\n');
        let indent = doc.line_indent(doc.tokens[entry.key].start);
        let text = self.render_full(new, multi_line, indent);
        if !multi_line {
            self.keep_comment_column(end, text.len() as isize - (end - start) as isize, edits);
        }
        edits.push(Edit { start, end, text });
        Ok(())
    }

    /// When a one-line value ending at `end` grows or shrinks by `delta` bytes and is followed
    /// on its line by `,`, two or more spaces and a `//` comment, resizes the spaces (keeping
    /// at least one) so the comment stays in its column where possible.
    fn keep_comment_column(&self, end: usize, delta: isize, edits: &mut Vec<Edit>) {
        let rest = &self.doc.text[end..];
        let after_comma = rest.strip_prefix(',').unwrap_or(rest);
        let spaces_start = end + (rest.len() - after_comma.len());
        let spaces = after_comma.len() - after_comma.trim_start_matches(' ').len();
        // A single space is a separator, not an alignment: leave it.
        if delta == 0 || spaces < 2 || !after_comma[spaces..].starts_with("//") {
            return;
        }
        let wanted = (spaces as isize - delta).max(1) as usize;
        edits.push(Edit {
            start: spaces_start,
            end: spaces_start + spaces,
            text: " ".repeat(wanted),
        });
    }

    /// `new` in full; multi-line (for a non-empty map) when asked, continued lines indented
    /// from `indent`.
    fn render_full(&self, new: &Val, multi_line: bool, indent: &str) -> String {
        match (&new.multi, &new.kind) {
            (Some(multi), Kind::Map(entries)) if multi_line && !entries.is_empty() => {
                let continued = format!("{}{indent}", self.style.new_line);
                multi.replace(self.style.new_line, &continued)
            }
            _ => new.inline.clone(),
        }
    }

    /// A value for a key missing from the file: a struct lists only its changed fields (the
    /// others keep relying on their defaults), anything else is written in full.
    fn render_missing(&self, old: &Val, new: &Val, multi_line: bool, indent: &str) -> String {
        let (Kind::Struct(old_fields), Kind::Struct(new_fields)) = (&old.kind, &new.kind) else {
            return self.render_full(new, multi_line, indent);
        };
        let inner = format!("{indent}{}", self.style.unit);
        let parts: Vec<String> = old_fields
            .iter()
            .zip(new_fields)
            .filter(|((_, o), (_, n))| o.inline != n.inline)
            .map(|((_, o), (name, n))| {
                format!("{name}: {}", self.render_missing(o, n, multi_line, &inner))
            })
            .collect();
        if multi_line {
            let nl = self.style.new_line;
            let mut text = format!("({nl}");
            for part in parts {
                text.push_str(&format!("{inner}{part},{nl}"));
            }
            text.push_str(indent);
            text.push(')');
            text
        } else {
            format!("({})", parts.join(", "))
        }
    }

    /// Edits a map value entry by entry, when every written key can be matched to its
    /// serialized text. Entries are added or removed only in a multi-line map; a one-line map
    /// whose key set changed is left to be replaced whole. Returns whether it edited.
    fn edit_map(
        &self,
        entry: Entry,
        old: &[(String, Val)],
        new: &[(String, Val)],
        key: &str,
        edits: &mut Vec<Edit>,
    ) -> Result<bool, EditError> {
        let doc = self.doc;
        let Some(written) = doc.map_at(entry.first, entry.last) else {
            return Ok(false);
        };
        let find = |wanted: &str| {
            let mut hits = written
                .iter()
                .filter(|e| doc.slice(e.key, e.key_last) == wanted);
            match (hits.next(), hits.next()) {
                (Some(hit), None) => Some(*hit),
                _ => None,
            }
        };
        let Some(located) = old
            .iter()
            .map(|(k, _)| find(k))
            .collect::<Option<Vec<Entry>>>()
            .filter(|located| located.len() == written.len())
        else {
            return Ok(false);
        };
        let same_keys = old.len() == new.len() && old.iter().zip(new).all(|(a, b)| a.0 == b.0);
        let (open, close) = (doc.tokens[entry.first].start, doc.tokens[entry.last].end);
        if !same_keys && !doc.text[open..close].contains('\n') {
            return Ok(false);
        }

        let mut kept = Vec::new();
        for ((name, old_val), at) in old.iter().zip(&located) {
            match new.iter().find(|(k, _)| k == name) {
                Some((_, new_val)) => {
                    kept.push(*at);
                    if old_val.inline != new_val.inline {
                        self.edit_value(*at, old_val, new_val, &join_key(key, name), edits)?;
                    }
                }
                None => self.delete_entry(*at, edits),
            }
        }
        let added: Vec<Item<'_>> = new
            .iter()
            .filter(|(k, _)| !old.iter().any(|(o, _)| o == k))
            .map(|(k, v)| (k.clone(), None, v))
            .collect();
        if !added.is_empty() {
            kept.sort_by_key(|e| e.key);
            let last = kept.last().copied();
            self.insert_entries(entry.first, entry.last, &written, last, &added, edits);
        }
        Ok(true)
    }

    /// Removes one map entry: its whole line(s) with a trailing `//` comment when it starts a
    /// line and nothing else follows it there, else just `key: value,`.
    fn delete_entry(&self, entry: Entry, edits: &mut Vec<Edit>) {
        let doc = self.doc;
        let start = doc.tokens[entry.key].start;
        let end = entry
            .comma
            .map_or(doc.tokens[entry.last].end, |c| doc.tokens[c].end);
        let line_end = doc.text[end..]
            .find('\n')
            .map_or(doc.text.len(), |n| end + n + 1);
        let rest = doc.text[end..line_end].trim();
        if doc.starts_line(start) && (rest.is_empty() || rest.starts_with("//")) {
            edits.push(Edit {
                start: doc.line_start(start),
                end: line_end,
                text: String::new(),
            });
        } else {
            let spaces = doc.text[end..].len() - doc.text[end..].trim_start_matches(' ').len();
            edits.push(Edit {
                start,
                end: end + spaces,
                text: String::new(),
            });
        }
    }

    /// Inserts `items` before the closing bracket `close` of the struct or map opened at
    /// `open`. `written` are its entries (for the indentation), `last` the last one kept (it
    /// gets a comma if it has none).
    fn insert_entries(
        &self,
        open: usize,
        close: usize,
        written: &[Entry],
        last: Option<Entry>,
        items: &[Item<'_>],
        edits: &mut Vec<Edit>,
    ) {
        let doc = self.doc;
        let nl = self.style.new_line;
        let open_pos = doc.tokens[open].start;
        let close_pos = doc.tokens[close].start;
        let render = |(name, old, new): &Item<'_>, multi_line: bool, indent: &str| {
            let value = match old {
                Some(old) => self.render_missing(old, new, multi_line, indent),
                None => self.render_full(new, multi_line, indent),
            };
            format!("{name}: {value}")
        };

        if let Some(last) = last.filter(|_| !doc.text[open_pos..close_pos].contains('\n')) {
            // A one-line struct stays on one line.
            let parts: Vec<String> = items.iter().map(|item| render(item, false, "")).collect();
            let (at, text) = match last.comma {
                Some(comma) => (doc.tokens[comma].end, format!(" {},", parts.join(", "))),
                None => (doc.tokens[last.last].end, format!(", {}", parts.join(", "))),
            };
            edits.push(Edit {
                start: at,
                end: at,
                text,
            });
            return;
        }

        let open_indent = doc.line_indent(open_pos);
        let indent = written
            .iter()
            .find(|f| doc.starts_line(doc.tokens[f.key].start))
            .map_or_else(
                || format!("{open_indent}{}", self.style.unit),
                |f| doc.line_indent(doc.tokens[f.key].start).to_owned(),
            );
        if let Some(last) = last.filter(|l| l.comma.is_none()) {
            let at = doc.tokens[last.last].end;
            edits.push(Edit {
                start: at,
                end: at,
                text: ",".to_owned(),
            });
        }
        let mut lines = String::new();
        for item in items {
            lines.push_str(&format!("{indent}{},{nl}", render(item, true, &indent)));
        }
        if doc.starts_line(close_pos) {
            let at = doc.line_start(close_pos);
            edits.push(Edit {
                start: at,
                end: at,
                text: lines,
            });
        } else {
            edits.push(Edit {
                start: close_pos,
                end: close_pos,
                text: format!("{nl}{lines}{open_indent}"),
            });
        }
    }
}
