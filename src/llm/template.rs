//! Chat templates rendered as the model's authors wrote them.
//!
//! A GGUF's `tokenizer.chat_template` is a Jinja template written for Hugging Face
//! `transformers`, which renders it with jinja2 in the environment built by
//! `transformers.utils.chat_template_utils._compile_jinja_template` and the variables passed by
//! `render_jinja_template`. [`ChatTemplate`] rebuilds that environment on `minijinja`:
//!
//! - `trim_blocks` and `lstrip_blocks` on, trailing newline of the source dropped (jinja2's
//!   default), `{% break %}`/`{% continue %}` (jinja2's `loopcontrols` extension);
//! - `raise_exception(message)` fails the render with [`TemplateError::Raised`];
//! - `strftime_now(format)`: the local time (`datetime.now()`, naive), formatted by `format`;
//! - `tojson` as `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
//!   sort_keys=sort_keys)`, not jinja2's HTML-escaping one;
//! - variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, and `tools` and
//!   `documents` set to none (as transformers passes them without tools or documents);
//! - Python's `str`/`dict`/`list` methods (`.strip()`, `.startswith()`, `.split()`, `.items()`,
//!   `.get()`, ...) via `minijinja_contrib::pycompat`;
//! - printing follows Python's `str()`: `None`, `True`, `False`, floats as `repr`, lists and
//!   dicts as their Python repr; the `string` filter does the same;
//! - `{% generation %}...{% endgeneration %}` (transformers' assistant-mask tag) renders its
//!   body.
//!
//! Known differences from jinja2 that no template we know of relies on: `strftime_now` fails on a
//! directive that jiff does not know (glibc copies it through), a variable set inside a
//! `{% generation %}` block stays visible after it, and `repr()` of a string treats only control,
//! separator and common format characters as unprintable.
//!
//! This module knows nothing of llama.cpp: it takes the template source and the text of the
//! special tokens.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs, merge_maps};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};

/// Name of the template inside its environment (shows up in error messages).
const TEMPLATE_NAME: &str = "chat_template";

/// Upper bound on the work of one render (minijinja's fuel: about one unit per instruction and
/// per 64 bytes created), so that a hostile or broken template cannot spin or allocate without
/// end. Real templates use a few thousand units per message.
const FUEL: u64 = 5_000_000;

/// One message of the conversation, as `{"role": ..., "content": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    fn to_value(&self) -> Value {
        Value::from_pairs([
            ("role", Value::from(self.role.as_str())),
            ("content", Value::from(self.content.as_str())),
        ])
    }
}

/// What went wrong with a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The source is not a valid template (minijinja's message says what and where).
    #[error("the chat template does not compile: {0}")]
    Syntax(minijinja::Error),
    /// The template called `raise_exception(message)`, typically to refuse the conversation
    /// (a system message, roles that do not alternate).
    #[error("the chat template refused the conversation: {0}")]
    Raised(String),
    /// Rendering failed otherwise: an error in the template's logic, an unsupported feature,
    /// the work bound exceeded.
    #[error("rendering the chat template failed: {0}")]
    Render(minijinja::Error),
    /// The extra variables given to [`ChatTemplate::render_with`] are not a map.
    #[error("extra template variables must be a map, got {0}")]
    ExtraNotAMap(String),
    /// The template engine panicked (a bug in it); the template is unusable.
    #[error("the chat template engine panicked while {0}")]
    Panicked(&'static str),
}

/// The marker that `raise_exception` attaches to its error, to tell a refusal from a failure.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// A chat template compiled once, rendered for each prompt.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source` (a `tokenizer.chat_template`). `bos_token` and `eos_token` are the
    /// text of the model's special tokens, given to the template as `bos_token`/`eos_token`.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, TemplateError> {
        let source = rewrite_generation_tags(source).into_owned();
        let compiled = catch_unwind(AssertUnwindSafe(move || -> Result<_, TemplateError> {
            let mut env = environment().map_err(TemplateError::Syntax)?;
            env.add_template_owned(TEMPLATE_NAME, source)
                .map_err(TemplateError::Syntax)?;
            Ok(env)
        }));
        let env = compiled.map_err(|_| TemplateError::Panicked("compiling the template"))??;
        Ok(Self {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// Makes `strftime_now` read `now` instead of the clock (for reproducible prompts and tests).
    pub fn with_fixed_time(mut self, now: jiff::civil::DateTime) -> Self {
        self.env
            .add_function("strftime_now", move |format: &str| strftime(format, now));
        self
    }

    /// The prompt for `messages`, ending with the header of the assistant's next turn when
    /// `add_generation_prompt` is set.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        self.render_with(messages, add_generation_prompt, Value::UNDEFINED)
    }

    /// As [`render`](Self::render), with more template variables: `extra` is a map (for
    /// instance `minijinja::context! { enable_thinking => false }`, or
    /// `Value::from(minijinja::value::Serde(&x))` for serializable data) whose entries override the
    /// defaults, as keyword arguments to `apply_chat_template` do.
    pub fn render_with(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        extra: Value,
    ) -> Result<String, TemplateError> {
        let extra = match extra.kind() {
            ValueKind::Undefined | ValueKind::None => {
                Value::from_pairs(std::iter::empty::<(Value, Value)>())
            }
            ValueKind::Map => extra,
            kind => return Err(TemplateError::ExtraNotAMap(kind.to_string())),
        };
        let base = Value::from_pairs([
            (
                "messages",
                Value::from(messages.iter().map(Message::to_value).collect::<Vec<_>>()),
            ),
            ("tools", Value::from(())),
            ("documents", Value::from(())),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
        ]);
        let context = merge_maps([base, extra]); // later maps win
        let rendered = catch_unwind(AssertUnwindSafe(|| {
            let template = self.env.get_template(TEMPLATE_NAME)?;
            template.render(context)
        }));
        match rendered {
            Err(_) => Err(TemplateError::Panicked("rendering the template")),
            Ok(Ok(text)) => Ok(text),
            Ok(Err(err)) => Err(match raised_message(&err) {
                Some(message) => TemplateError::Raised(message),
                None => TemplateError::Render(err),
            }),
        }
    }
}

/// The message given to `raise_exception`, if that is what failed the render.
fn raised_message(err: &Error) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(raised) = e.downcast_ref::<Raised>() {
            return Some(raised.0.clone());
        }
        current = e.source();
    }
    None
}

/// The environment of transformers' `_compile_jinja_template`.
fn environment() -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(FUEL));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(py_formatter);
    env.add_filter("tojson", tojson);
    env.add_filter("string", |value: &Value| -> Result<Value, Error> {
        if value.kind() == ValueKind::String {
            return Ok(value.clone());
        }
        let mut out = String::new();
        py_str(value, &mut out)?;
        Ok(Value::from(out))
    });
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", |format: &str| {
        strftime(format, jiff::ZonedDateTime::now().datetime())
    });
    Ok(env)
}

fn raise_exception(message: Value) -> Result<Value, Error> {
    let mut text = String::new();
    py_str(&message, &mut text)?;
    Err(Error::new(ErrorKind::InvalidOperation, text.clone()).with_source(Raised(text)))
}

/// `datetime.strftime(format)` on a naive date-time.
fn strftime(format: &str, now: jiff::civil::DateTime) -> Result<String, Error> {
    jiff::fmt::strtime::format(format, now).map_err(|err| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now({format:?}) failed: {err}"),
        )
    })
}

/// Rewrites transformers' `{% generation %}`/`{% endgeneration %}` tags (which only mark the
/// assistant's text for training masks) to `{% if true %}`/`{% endif %}`, keeping their
/// whitespace control.
fn rewrite_generation_tags(source: &str) -> Cow<'_, str> {
    if !source.contains("generation") {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        match parse_generation_tag(tag) {
            Some((len, left, end, right)) => {
                out.push_str("{%");
                out.push_str(left);
                out.push_str(if end { " endif " } else { " if true " });
                out.push_str(right);
                out.push_str("%}");
                rest = &tag[len..];
            }
            None => {
                out.push_str("{%");
                rest = &tag[2..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// For `{%[-+] (end)generation [-+]%}` at the start of `tag`: its length, its left modifier,
/// whether it is the end tag, its right modifier.
fn parse_generation_tag(tag: &str) -> Option<(usize, &str, bool, &str)> {
    let mut pos = 2;
    let modifier = |s: &str| {
        if s.starts_with('-') || s.starts_with('+') {
            1
        } else {
            0
        }
    };
    let left_len = modifier(&tag[pos..]);
    let left = &tag[pos..pos + left_len];
    pos += left_len;
    pos += tag[pos..].len() - tag[pos..].trim_start().len();
    let word_len = tag[pos..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(tag.len() - pos);
    let end = match &tag[pos..pos + word_len] {
        "generation" => false,
        "endgeneration" => true,
        _ => return None,
    };
    pos += word_len;
    pos += tag[pos..].len() - tag[pos..].trim_start().len();
    let right_len = modifier(&tag[pos..]);
    let right = &tag[pos..pos + right_len];
    pos += right_len;
    tag[pos..]
        .starts_with("%}")
        .then_some((pos + 2, left, end, right))
}

// ---------------------------------------------------------------------------------------------
// Python's str(), repr() and json.dumps()

fn write_failed(_: std::fmt::Error) -> Error {
    Error::from(ErrorKind::WriteFailure)
}

/// Prints values as jinja2 does (`str(value)`).
fn py_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String | ValueKind::Undefined | ValueKind::Plain | ValueKind::Invalid => {
            minijinja::escape_formatter(out, state, value)
        }
        _ => {
            let mut text = String::new();
            py_str(value, &mut text)?;
            out.write_str(&text).map_err(write_failed)
        }
    }
}

/// Python's `str(value)`.
fn py_str(value: &Value, out: &mut String) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined => Ok(()),
        ValueKind::String => {
            out.push_str(value.as_str().unwrap_or_default());
            Ok(())
        }
        _ => py_repr(value, out),
    }
}

/// Python's `repr(value)`.
fn py_repr(value: &Value, out: &mut String) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined => out.push_str("Undefined"),
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => py_number(value, out),
        ValueKind::String => py_str_repr(value.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            let tuple = value.is_tuple();
            out.push(if tuple { '(' } else { '[' });
            let mut count = 0;
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(&item, out)?;
                count += 1;
            }
            if tuple && count == 1 {
                out.push(',');
            }
            out.push(if tuple { ')' } else { ']' });
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(&key, out)?;
                out.push_str(": ");
                py_repr(&value.get_item(&key)?, out)?;
            }
            out.push('}');
        }
        _ => write!(out, "{value}").map_err(write_failed)?,
    }
    Ok(())
}

fn py_number(value: &Value, out: &mut String) {
    if value.is_integer() {
        let _ = write!(out, "{value}");
    } else {
        match f64::try_from(value.clone()) {
            Ok(f) => py_float(f, out, false),
            Err(_) => {
                let _ = write!(out, "{value}");
            }
        }
    }
}

/// `repr(float)` (`json` = true: `json.dumps` spelling of the non-finite values).
fn py_float(f: f64, out: &mut String, json: bool) {
    if f.is_nan() {
        out.push_str(if json { "NaN" } else { "nan" });
        return;
    }
    if f.is_infinite() {
        out.push_str(match (f > 0.0, json) {
            (true, true) => "Infinity",
            (false, true) => "-Infinity",
            (true, false) => "inf",
            (false, false) => "-inf",
        });
        return;
    }
    // Shortest round-trip digits, as Python's repr; Python switches to exponent notation
    // below 1e-4 and from 1e16 on.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if f == 0.0 || (-4..16).contains(&exp) {
        let fixed = format!("{f}");
        out.push_str(&fixed);
        if !fixed.contains('.') {
            out.push_str(".0");
        }
    } else {
        let _ = write!(
            out,
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
}

/// `repr(str)`.
fn py_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !py_printable(c) => {
                let n = c as u32;
                let _ = if n <= 0xff {
                    write!(out, "\\x{n:02x}")
                } else if n <= 0xffff {
                    write!(out, "\\u{n:04x}")
                } else {
                    write!(out, "\\U{n:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable()` for one character, for the characters that occur in text:
/// control characters, separators other than the space, and the common format characters are
/// not printable.
fn py_printable(c: char) -> bool {
    !(c.is_control()
        || matches!(c,
            '\u{a0}' | '\u{ad}' | '\u{1680}' | '\u{2000}'..='\u{200f}' | '\u{2028}'..='\u{202f}'
            | '\u{205f}'..='\u{2064}' | '\u{3000}' | '\u{feff}'))
}

struct JsonOptions {
    ensure_ascii: bool,
    indent: Option<String>,
    item_separator: String,
    key_separator: String,
    sort_keys: bool,
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, each argument positional or by keyword.
fn tojson(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let mut positional: Vec<Value> = args.into_values();
    let kwargs = match positional.last() {
        Some(last) if last.is_kwargs() => {
            Some(Kwargs::try_from(positional.pop().unwrap_or_default())?)
        }
        _ => None,
    };
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if positional.len() > NAMES.len() {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments",
        ));
    }
    let mut params: [Value; 4] = Default::default();
    for (i, name) in NAMES.iter().enumerate() {
        let by_keyword = match &kwargs {
            Some(kwargs) => kwargs.get::<Option<Value>>(name)?,
            None => None,
        };
        params[i] = match (positional.get(i), by_keyword) {
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson got multiple values for argument {name:?}"),
                ));
            }
            (Some(v), None) => v.clone(),
            (None, Some(v)) => v,
            (None, None) => Value::from(()),
        };
    }
    if let Some(kwargs) = &kwargs {
        kwargs.assert_all_used()?;
    }
    let [ensure_ascii, indent, separators, sort_keys] = params;
    let indent = match indent.kind() {
        ValueKind::None | ValueKind::Undefined => None,
        ValueKind::String => Some(indent.as_str().unwrap_or_default().to_owned()),
        ValueKind::Number | ValueKind::Bool => {
            let n = i64::try_from(indent.clone()).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be an integer or a string",
                )
            })?;
            Some(" ".repeat(usize::try_from(n).unwrap_or(0).min(1024)))
        }
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "tojson: indent must be an integer or a string",
            ));
        }
    };
    let (item_separator, key_separator) = match separators.kind() {
        ValueKind::None | ValueKind::Undefined => (
            if indent.is_some() { "," } else { ", " }.to_owned(),
            ": ".to_owned(),
        ),
        _ => {
            let parts: Vec<Value> = separators.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] if a.as_str().is_some() && b.as_str().is_some() => (
                    a.as_str().unwrap_or_default().to_owned(),
                    b.as_str().unwrap_or_default().to_owned(),
                ),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be a pair of strings",
                    ));
                }
            }
        }
    };
    let options = JsonOptions {
        ensure_ascii: ensure_ascii.is_true(),
        indent,
        item_separator,
        key_separator,
        sort_keys: sort_keys.is_true(),
    };
    let mut out = String::new();
    json_dump(value, &options, 0, &mut out)?;
    Ok(Value::from(out))
}

fn json_newline(options: &JsonOptions, level: usize, out: &mut String) {
    if let Some(indent) = &options.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
}

fn json_dump(
    value: &Value,
    options: &JsonOptions,
    level: usize,
    out: &mut String,
) -> Result<(), Error> {
    if level > 256 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value nested too deeply",
        ));
    }
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if value.is_integer() {
                let _ = write!(out, "{value}");
            } else {
                py_float(f64::try_from(value.clone())?, out, true);
            }
        }
        ValueKind::String => json_string(
            value.as_str().unwrap_or_default(),
            options.ensure_ascii,
            out,
        ),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&options.item_separator);
                }
                json_newline(options, level + 1, out);
                json_dump(item, options, level + 1, out)?;
            }
            json_newline(options, level, out);
            out.push(']');
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((key, item));
            }
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if options.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&options.item_separator);
                }
                json_newline(options, level + 1, out);
                let key = match key.kind() {
                    ValueKind::String => key.as_str().unwrap_or_default().to_owned(),
                    ValueKind::None => "null".to_owned(),
                    ValueKind::Bool => (if key.is_true() { "true" } else { "false" }).to_owned(),
                    ValueKind::Number => {
                        let mut text = String::new();
                        json_dump(key, options, level + 1, &mut text)?;
                        text
                    }
                    kind => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            format!(
                                "tojson: keys must be str, int, float, bool or None, not {kind}"
                            ),
                        ));
                    }
                };
                json_string(&key, options.ensure_ascii, out);
                out.push_str(&options.key_separator);
                json_dump(item, options, level + 1, out)?;
            }
            json_newline(options, level, out);
            out.push('}');
        }
        kind => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: object of type {kind} is not JSON serializable"),
            ));
        }
    }
    Ok(())
}

/// A JSON string as Python's `json` module writes it.
fn json_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, messages: &[Message]) -> Result<String, TemplateError> {
        ChatTemplate::new(source, "<s>", "</s>")?.render(messages, true)
    }

    fn eval(expr: &str) -> String {
        render(&format!("{{{{ {expr} }}}}"), &[]).unwrap()
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        // Expected strings from json.dumps(...) in CPython 3.11.
        assert_eq!(
            eval(r#"{"a": [1, 2.5, none, true], "é": "<&>\"\n"} | tojson"#),
            r#"{"a": [1, 2.5, null, true], "é": "<&>\"\n"}"#
        );
        assert_eq!(
            eval(r#"{"a": [1, {}], "b": []} | tojson(indent=2)"#),
            "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}"
        );
        assert_eq!(
            eval(r#"{"b": 1, "a": "é😊"} | tojson(sort_keys=true, ensure_ascii=true)"#),
            r#"{"a": "\u00e9\ud83d\ude0a", "b": 1}"#
        );
        assert_eq!(eval(r#"[1, 2] | tojson(separators=(",", ":"))"#), "[1,2]");
        assert_eq!(
            eval(r#"[1e16, 1e-5, 0.0001, -0.0, 3.0, 1e300 * 1e300] | tojson"#),
            "[1e+16, 1e-05, 0.0001, -0.0, 3.0, Infinity]"
        );
        assert_eq!(
            eval(r#"{1: "x", none: "y"} | tojson"#),
            r#"{"1": "x", "null": "y"}"#
        );
        assert_eq!(eval(r#""\x01\x7f" | tojson"#), "\"\\u0001\u{7f}\"");
        assert_eq!(eval(r#"[1] | tojson(indent="\t")"#), "[\n\t1\n]");
        assert_eq!(eval(r#"[1] | tojson(none, 0)"#), "[\n1\n]");
    }

    #[test]
    fn tojson_rejects_what_python_rejects() {
        assert!(render("{{ undefined_thing | tojson }}", &[]).is_err());
        assert!(render("{{ [1] | tojson(bogus=1) }}", &[]).is_err());
        assert!(render("{{ [1] | tojson(indent=[1]) }}", &[]).is_err());
    }

    #[test]
    fn prints_like_python_str() {
        assert_eq!(eval("none"), "None");
        assert_eq!(eval("true"), "True");
        assert_eq!(
            eval("[1, 'a', \"it's\", none, false, 2.0]"),
            "[1, 'a', \"it's\", None, False, 2.0]"
        );
        assert_eq!(eval("{'k': 'v\\n'}"), "{'k': 'v\\n'}");
        assert_eq!(eval("(1,)"), "(1,)");
        assert_eq!(eval("true | string"), "True");
        assert_eq!(eval("1e16"), "1e+16");
        assert_eq!(eval("undefined_thing"), "");
        assert_eq!(eval("'x' in undefined_thing"), "False");
        assert_eq!(eval("none.attr"), "");
        assert_eq!(eval("'a' ~ true ~ none"), "aTrueNone");
    }

    #[test]
    fn python_methods_and_loop_controls() {
        assert_eq!(eval("'  a b '.strip().split(' ')"), "['a', 'b']");
        assert_eq!(eval("'<think>x'.startswith('<think>')"), "True");
        assert_eq!(eval("{'a': 1}.get('b', 2)"), "2");
        assert_eq!(
            render(
                "{% for i in [1, 2, 3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}",
                &[]
            )
            .unwrap(),
            "1"
        );
    }

    #[test]
    fn variables_and_whitespace_control() {
        let source = "{% for m in messages %}\n    {{ m.role }}:{{ m['content'] }}{% if not loop.last %},{% endif %}\n{% endfor %}\n{{ bos_token }}{{ eos_token }}{{ tools is none }}{{ documents is none }}{{ add_generation_prompt }}\n";
        let out = render(
            source,
            &[Message::new("user", "a"), Message::new("assistant", "b")],
        )
        .unwrap();
        assert_eq!(out, "    user:a,    assistant:b<s></s>TrueTrueTrue");
    }

    #[test]
    fn extra_variables_override_defaults() {
        let template = ChatTemplate::new(
            "{{ bos_token }}|{{ x }}|{{ tools | tojson }}",
            "<s>",
            "</s>",
        )
        .unwrap();
        let out = template
            .render_with(
                &[],
                false,
                minijinja::context! { x => 1, bos_token => "B", tools => vec![1] },
            )
            .unwrap();
        assert_eq!(out, "B|1|[1]");
        assert!(matches!(
            template.render_with(&[], false, Value::from(3)),
            Err(TemplateError::ExtraNotAMap(_))
        ));
    }

    #[test]
    fn raise_exception_is_a_refusal() {
        let err = render("{{ raise_exception('no ' ~ 'way') }}", &[]).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Raised(m) if m == "no way"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "the chat template refused the conversation: no way"
        );
        // Raised from inside a macro too.
        let err = render(
            "{% macro f() %}{{ raise_exception('deep') }}{% endmacro %}{{ f() }}",
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(&err, TemplateError::Raised(m) if m == "deep"),
            "{err}"
        );
    }

    #[test]
    fn bad_templates_fail_without_panicking() {
        for source in [
            "{% for %}",
            "{{ 1 +",
            "{% endif %}",
            "{% if x %}",
            "{{ x | nosuchfilter }}",
            "{{ nosuchfn() }}",
            "{{ none.attr.more }}",
            "{{ undefined_thing.attr }}",
            "{{ 1 / 0 }}",
            "{{ messages[0]['content'] }}x{{ [].strip() }}",
            "{{ strftime_now('%Q') }}",
        ] {
            let result = render(source, &[]);
            assert!(
                matches!(
                    result,
                    Err(TemplateError::Syntax(_) | TemplateError::Render(_))
                ),
                "{source}: {result:?}"
            );
        }
        let err = render("{% for %}", &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the chat template does not compile: syntax error"),
            "{err}"
        );
    }

    #[test]
    fn runaway_templates_are_stopped() {
        let source =
            "{% for a in range(10000) %}{% for b in range(10000) %}{{ a }}{% endfor %}{% endfor %}";
        assert!(matches!(render(source, &[]), Err(TemplateError::Render(_))));
        let source = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        assert!(matches!(render(source, &[]), Err(TemplateError::Render(_))));
    }

    #[test]
    fn generation_tags_render_their_body() {
        let source = "{% for m in messages %}\n{%- generation -%}\n  [{{ m.content }}]\n{%- endgeneration %}\n{% endfor %}";
        assert_eq!(
            render(source, &[Message::new("assistant", "x")]).unwrap(),
            "[x]"
        );
        assert_eq!(
            rewrite_generation_tags("{%+generation%}{% endgeneration -%}{% if %}"),
            "{%+ if true %}{% endif -%}{% if %}"
        );
        assert_eq!(
            rewrite_generation_tags("{{ 'generation' }}{%"),
            "{{ 'generation' }}{%"
        );
    }

    #[test]
    fn strftime_now_reads_the_fixed_clock() {
        let now = jiff::civil::date(2025, 3, 7).at(9, 5, 3, 0);
        let template = ChatTemplate::new(
            "{{ strftime_now('%d %b %Y|%B %d, %Y|%Y-%m-%d %H:%M:%S') }}",
            "",
            "",
        )
        .unwrap()
        .with_fixed_time(now);
        assert_eq!(
            template.render(&[], false).unwrap(),
            "07 Mar 2025|March 07, 2025|2025-03-07 09:05:03"
        );
        let live = ChatTemplate::new("{{ strftime_now('%Y') }}", "", "")
            .unwrap()
            .render(&[], false)
            .unwrap();
        assert_eq!(live.len(), 4);
    }
}
