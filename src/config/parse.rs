//! RON text -> [`Settings`], with errors that name the file, line, column and key path.

use std::fmt;
use std::path::{Path, PathBuf};

use super::settings::Settings;
use super::validate::validate;

/// What went wrong with a settings file, in the user's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    Unreadable,
    Syntax,
    WrongType,
    UnknownKey,
    OutOfRange,
}

/// A settings file that could not be used. `Display` gives the one-line message shown in the
/// UI and by `desktop-mate check`: `file:line:column: key.path: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key path such as `llm.sampling.top_p`; empty when the error is not in a value.
    pub key: String,
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.kind != ErrorKind::Unreadable {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        let what = match self.kind {
            ErrorKind::Unreadable => "cannot read settings",
            ErrorKind::Syntax => "syntax error",
            ErrorKind::WrongType => "wrong type",
            ErrorKind::UnknownKey => "unknown key",
            ErrorKind::OutOfRange => "invalid value",
        };
        if self.key.is_empty() {
            write!(f, ": {what}: {}", self.message)
        } else {
            write!(f, ": {what} at `{}`: {}", self.key, self.message)
        }
    }
}

impl ConfigError {
    pub fn unreadable(path: &Path, err: &std::io::Error) -> Self {
        Self {
            path: path.to_owned(),
            line: 0,
            column: 0,
            key: String::new(),
            kind: ErrorKind::Unreadable,
            message: err.to_string(),
        }
    }
}

/// Parses and validates settings. `path` is only used in error messages.
pub fn parse_settings(source: &str, path: &Path) -> Result<Settings, ConfigError> {
    let error_at = |position: ron::error::Position, key: String, kind, message: String| {
        let position = first_visible_at_or_after(source, position);
        ConfigError {
            path: path.to_owned(),
            line: position.line,
            column: position.col,
            key,
            kind,
            message,
        }
    };

    let mut deserializer = ron::Deserializer::from_str(source).map_err(|e| {
        error_at(
            e.span.start,
            String::new(),
            ErrorKind::Syntax,
            e.code.to_string(),
        )
    })?;
    let settings: Settings = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(settings) => settings,
        Err(err) => {
            let key = key_path(err.path());
            let spanned = deserializer.span_error(err.into_inner());
            let kind = classify(&spanned.code);
            return Err(error_at(
                spanned.span.start,
                key,
                kind,
                spanned.code.to_string(),
            ));
        }
    };
    deserializer.end().map_err(|code| {
        let spanned = deserializer.span_error(code);
        error_at(
            spanned.span.start,
            String::new(),
            ErrorKind::Syntax,
            spanned.code.to_string(),
        )
    })?;

    if let Some(invalid) = validate(&settings).into_iter().next() {
        let position = locate_key(source, &invalid.key);
        return Err(error_at(
            position,
            invalid.key,
            ErrorKind::OutOfRange,
            invalid.message,
        ));
    }
    Ok(settings)
}

/// What can be kept of a settings file that does not load as a whole: every top-level section
/// (`window`, `llm`, `persona`, ...) that parses and validates on its own; the others keep
/// their defaults. So a typo in one section does not throw away the chosen model and persona.
/// Returns the settings and the names of the sections kept.
pub fn salvage_sections(source: &str, path: &Path) -> (Settings, Vec<&'static str>) {
    let mut settings = Settings::default();
    let mut kept = Vec::new();
    let (attributes, entries) = top_level_entries(source);
    for (key, value) in entries {
        let Ok(alone) = parse_settings(&format!("{attributes}({key}: {value})"), path) else {
            continue;
        };
        // Each section of `Settings`, by the name it has in the file.
        macro_rules! keep {
            ($($section:ident),*) => {
                match key.as_str() {
                    $(stringify!($section) => {
                        settings.$section = alone.$section;
                        stringify!($section)
                    })*
                    _ => continue,
                }
            };
        }
        let name = keep!(
            window,
            avatar,
            motion,
            llm,
            persona,
            chat,
            diagnostics,
            desktop
        );
        kept.push(name);
    }
    (settings, kept)
}

/// The `key: value` texts of the outermost struct of a RON file, comments and strings
/// skipped, and its `#![enable(...)]` attributes; stops at the first entry it cannot delimit
/// (an unclosed bracket or string).
fn top_level_entries(source: &str) -> (String, Vec<(String, String)>) {
    let mut attributes = String::new();
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let offset = |i: usize| chars.get(i).map_or(source.len(), |(o, _)| *o);
    let mut entries = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    // The entry being read: its key, and where its value starts.
    let mut key: Option<String> = None;
    let mut value_start = 0;
    let mut word = String::new();
    while let Some(c) = at(i) {
        match c {
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
                continue;
            }
            '/' if at(i + 1) == Some('*') => {
                i += 2;
                while at(i).is_some() && !(at(i) == Some('*') && at(i + 1) == Some('/')) {
                    i += 1;
                }
                i += 2;
                continue;
            }
            '"' | '\'' => {
                i += 1;
                while at(i).is_some_and(|q| q != c) {
                    if at(i) == Some('\\') {
                        i += 1;
                    }
                    i += 1;
                }
                if at(i).is_none() {
                    return (attributes, entries);
                }
            }
            '#' if depth == 0 => {
                // `#![enable(...)]`: kept for each section's own parse.
                let start = offset(i);
                while at(i).is_some_and(|c| c != ']') {
                    i += 1;
                }
                attributes.push_str(&source[start..offset(i + 1)]);
                attributes.push('\n');
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    word.clear();
                }
            }
            ')' | ']' | '}' => {
                if depth == 1 {
                    if let Some(key) = key.take() {
                        let value = source[value_start..offset(i)].trim().to_owned();
                        entries.push((key, value));
                    }
                    return (attributes, entries);
                }
                depth = depth.saturating_sub(1);
            }
            ',' if depth == 1 => {
                if let Some(key) = key.take() {
                    let value = source[value_start..offset(i)].trim().to_owned();
                    entries.push((key, value));
                }
                word.clear();
            }
            ':' if depth == 1 && key.is_none() && !word.is_empty() => {
                key = Some(std::mem::take(&mut word));
                value_start = offset(i + 1);
            }
            c if depth == 1 && key.is_none() && (c.is_alphanumeric() || c == '_') => {
                word.push(c);
            }
            c if depth == 1 && key.is_none() && !c.is_whitespace() => word.clear(),
            _ => {}
        }
        i += 1;
    }
    (attributes, entries)
}

/// ron reports some errors at the whitespace before the offending value: point at the value.
fn first_visible_at_or_after(source: &str, position: ron::error::Position) -> ron::error::Position {
    let Some(line) = source.lines().nth(position.line.saturating_sub(1)) else {
        return position;
    };
    let skipped = line
        .chars()
        .skip(position.col.saturating_sub(1))
        .take_while(|c| c.is_whitespace())
        .count();
    if position.col.saturating_sub(1) + skipped >= line.chars().count() {
        return position;
    }
    ron::error::Position {
        line: position.line,
        col: position.col + skipped,
    }
}

fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let parts: Vec<String> = path
        .iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    parts.join(".")
}

fn classify(code: &ron::Error) -> ErrorKind {
    use ron::Error as E;
    match code {
        E::NoSuchStructField { .. } | E::DuplicateStructField { .. } => ErrorKind::UnknownKey,
        E::InvalidValueForType { .. }
        | E::NoSuchEnumVariant { .. }
        | E::ExpectedBoolean
        | E::ExpectedFloat
        | E::ExpectedInteger
        | E::ExpectedString
        | E::ExpectedStructLike
        | E::ExpectedNamedStructLike(_)
        | E::ExpectedMap
        | E::ExpectedArray
        | E::ExpectedOption
        | E::ExpectedUnit
        | E::ExpectedChar
        | E::IntegerOutOfBounds
        | E::ExpectedDifferentLength { .. }
        | E::Message(_) => ErrorKind::WrongType,
        _ => ErrorKind::Syntax,
    }
}

/// Finds where `dotted.key.path` is written in the RON source (the position of its last
/// segment), skipping comments and strings. Falls back to the deepest segment found, then 1:1.
pub fn locate_key(source: &str, dotted: &str) -> ron::error::Position {
    let keys = written_keys(source);
    let mut found = ron::error::Position { line: 1, col: 1 };
    let mut from = 0;
    for segment in dotted.split('.') {
        match keys[from..].iter().position(|(name, _)| name == segment) {
            Some(offset) => {
                found = keys[from + offset].1;
                from += offset + 1;
            }
            None => break,
        }
    }
    found
}

/// Every identifier that is followed by `:` (a struct key or an enum map key), in order.
fn written_keys(source: &str) -> Vec<(String, ron::error::Position)> {
    let chars: Vec<char> = source.chars().collect();
    let mut keys = Vec::new();
    let (mut i, mut line, mut col) = (0, 1, 1);
    let advance = |i: &mut usize, line: &mut usize, col: &mut usize| {
        if chars[*i] == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut col);
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                advance(&mut i, &mut line, &mut col);
            }
            for _ in 0..2 {
                if i < chars.len() {
                    advance(&mut i, &mut line, &mut col);
                }
            }
        } else if c == '"' {
            advance(&mut i, &mut line, &mut col);
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    advance(&mut i, &mut line, &mut col);
                }
                advance(&mut i, &mut line, &mut col);
            }
            if i < chars.len() {
                advance(&mut i, &mut line, &mut col);
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = ron::error::Position { line, col };
            let mut name = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                name.push(chars[i]);
                advance(&mut i, &mut line, &mut col);
            }
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if chars.get(j) == Some(&':') {
                keys.push((name, start));
            }
        } else {
            advance(&mut i, &mut line, &mut col);
        }
    }
    keys
}
