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

/// Nesting that printing and `tojson` follow (chat data is a few levels deep): a deeper value,
/// or one that contains itself, is an error instead of a stack overflow.
const MAX_DEPTH: usize = 64;

/// The most one of our helpers (printing a container, `string`, `tojson`, `raise_exception`)
/// produces in one call; below that, what the render's remaining fuel still pays for.
const MAX_HELPER_BYTES: usize = 16 << 20;

/// Longest `strftime_now` format (real templates use a dozen characters).
const MAX_STRFTIME_FORMAT: usize = 256;

/// A rendered prompt may be this much larger than what went in (messages and special tokens)
/// times [`OUTPUT_PER_INPUT_BYTE`]: real templates add a few dozen bytes per message.
const OUTPUT_BASE_BYTES: usize = 256 << 10;
const OUTPUT_PER_INPUT_BYTE: usize = 4;

/// Stack of the thread a template is compiled and rendered on. minijinja recurses on nesting
/// in the source and in values; the task pools' default stacks (2 MiB) overflow on a few
/// thousand levels, this on a few hundred thousand (reserved, committed only when touched).
/// `vet` tests a new template on the same stack in a child process.
pub const RENDER_STACK: usize = 64 << 20;

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
    Syntax(String),
    /// The template called `raise_exception(message)`, typically to refuse the conversation
    /// (a system message, roles that do not alternate).
    #[error("the chat template refused the conversation: {0}")]
    Raised(String),
    /// Rendering failed otherwise: an error in the template's logic, an unsupported feature.
    /// (Messages only: minijinja's errors can hold the template's values, which must be freed
    /// on the render thread's stack.)
    #[error("rendering the chat template failed: {0}")]
    Render(String),
    /// The extra variables given to [`ChatTemplate::render_with`] are not a map.
    #[error("extra template variables must be a map, got {0}")]
    ExtraNotAMap(String),
    /// The template engine panicked (a bug in it); the template is unusable.
    #[error("the chat template engine panicked while {0}")]
    Panicked(&'static str),
    /// The render needed more work, memory or output than any chat template does.
    #[error("the chat template exceeded its budget: {0}")]
    Budget(String),
    /// No thread could be started to render on.
    #[error("cannot start the chat template's thread: {0}")]
    Thread(String),
}

impl TemplateError {
    /// Whether this says something about the template itself (it never renders, or asks for
    /// more than any template needs), not about this one conversation.
    pub fn is_templates_fault(&self) -> bool {
        matches!(
            self,
            Self::Syntax(_) | Self::Render(_) | Self::Panicked(_) | Self::Budget(_)
        )
    }
}

/// Runs `f` on a thread with [`RENDER_STACK`]; a panic there (a bug in the template engine)
/// is [`TemplateError::Panicked`] with `what` it was doing.
fn on_render_stack<T: Send>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, TemplateError> + Send,
) -> Result<T, TemplateError> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("chat-template".into())
            .stack_size(RENDER_STACK)
            .spawn_scoped(scope, f)
            .map_err(|err| TemplateError::Thread(err.to_string()))?;
        handle.join().unwrap_or(Err(TemplateError::Panicked(what)))
    })
}

/// The rendered prompt, refused past its cap.
struct CappedWriter {
    bytes: Vec<u8>,
    cap: usize,
    exceeded: bool,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            self.exceeded = true;
            return Err(std::io::Error::other("prompt cap"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
        let env = on_render_stack("compiling the template", move || {
            let syntax = |err: Error| TemplateError::Syntax(err.to_string());
            let mut env = environment().map_err(syntax)?;
            env.add_template_owned(TEMPLATE_NAME, source)
                .map_err(syntax)?;
            Ok(env)
        })?;
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

    /// Whether `source` is a Jinja template at all: a GGUF may name one of llama.cpp's built-in
    /// formats (`chatml`, `llama3`) instead, which rendered as a template would be the whole
    /// prompt.
    pub fn is_jinja(source: &str) -> bool {
        source.contains("{{") || source.contains("{%")
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
        let input: usize = messages
            .iter()
            .map(|m| m.role.len() + m.content.len())
            .sum::<usize>()
            + self.bos_token.len()
            + self.eos_token.len();
        let cap = OUTPUT_BASE_BYTES.saturating_add(input.saturating_mul(OUTPUT_PER_INPUT_BYTE));
        let context = merge_maps([base, extra]); // later maps win
        on_render_stack("rendering the template", || {
            let mut writer = CappedWriter {
                bytes: Vec::new(),
                cap,
                exceeded: false,
            };
            let rendered = self
                .env
                .get_template(TEMPLATE_NAME)
                .and_then(|template| template.render_captured_to(context, &mut writer).map(drop));
            match rendered {
                Ok(()) => String::from_utf8(writer.bytes)
                    .map_err(|_| TemplateError::Budget("the prompt is not UTF-8".into())),
                Err(_) if writer.exceeded => Err(TemplateError::Budget(format!(
                    "the prompt grew past {} KiB for {} KiB of messages",
                    cap >> 10,
                    input >> 10
                ))),
                Err(err) => Err(match raised_message(&err) {
                    Some(message) => TemplateError::Raised(message),
                    None if err.kind() == ErrorKind::OutOfFuel => {
                        TemplateError::Budget(err.to_string())
                    }
                    None => TemplateError::Render(err.to_string()),
                }),
            }
        })
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
    env.set_unknown_method_callback(python_method);
    env.set_formatter(py_formatter);
    env.add_filter("tojson", tojson);
    env.add_filter(
        "string",
        |state: &State, value: &Value| -> Result<Value, Error> {
            if value.kind() == ValueKind::String {
                return Ok(value.clone());
            }
            let mut out = Limited::for_state(state);
            py_str(value, &mut out, 0)?;
            Ok(Value::from(out.finish()?))
        },
    );
    // jinja2's `pprint` is `pprint.pformat`; minijinja's pretty Debug output is quadratic in
    // the nesting. Python's repr, bounded like the rest.
    env.add_filter(
        "pprint",
        |state: &State, value: &Value| -> Result<Value, Error> {
            let mut out = Limited::for_state(state);
            py_repr(value, &mut out, 0)?;
            Ok(Value::from(out.finish()?))
        },
    );
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", |format: &str| {
        strftime(format, jiff::ZonedDateTime::now().datetime())
    });
    Ok(env)
}

/// The widest padding a Python method may ask for (`'x'.center(n)`, `'{:>n}'.format(x)`):
/// pycompat builds the padded string before any fuel is charged.
const MAX_PYTHON_WIDTH: u64 = 64 << 10;

/// Python's `str`/`dict`/`list` methods (`minijinja_contrib::pycompat`), with the widths they
/// pad to bounded first.
fn python_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let too_wide = |n: u64| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{method}: a width of {n} (at most {MAX_PYTHON_WIDTH})"),
        )
    };
    if value.kind() == ValueKind::String {
        for arg in args {
            if let Ok(n) = i64::try_from(arg.clone())
                && n.unsigned_abs() > MAX_PYTHON_WIDTH
            {
                return Err(too_wide(n.unsigned_abs()));
            }
            if let Some(kwargs) = arg.as_object().filter(|_| arg.is_kwargs()) {
                for (_, v) in kwargs.try_iter_pairs().into_iter().flatten() {
                    if let Ok(n) = i64::try_from(v)
                        && n.unsigned_abs() > MAX_PYTHON_WIDTH
                    {
                        return Err(too_wide(n.unsigned_abs()));
                    }
                }
            }
        }
        if method == "format" {
            // Widths written into the format string itself: `{:>999999999}`.
            let text = value.as_str().unwrap_or_default();
            let fields = text.split('{').skip(1).filter_map(|f| f.split_once('}'));
            let specs = fields.map(|(field, _)| field);
            for number in specs.flat_map(|spec| spec.split(|c: char| !c.is_ascii_digit())) {
                if number.len() > 6 || number.parse::<u64>().is_ok_and(|n| n > MAX_PYTHON_WIDTH) {
                    return Err(too_wide(number.parse().unwrap_or(u64::MAX)));
                }
            }
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

fn raise_exception(state: &State, message: Value) -> Result<Value, Error> {
    let mut text = Limited::for_state(state);
    py_str(&message, &mut text, 0)?;
    let text = text.finish()?;
    Err(Error::new(ErrorKind::InvalidOperation, text.clone()).with_source(Raised(text)))
}

/// `datetime.strftime(format)` on a naive date-time.
fn strftime(format: &str, now: jiff::civil::DateTime) -> Result<String, Error> {
    if format.len() > MAX_STRFTIME_FORMAT {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "strftime_now: a format of {} bytes (at most {MAX_STRFTIME_FORMAT})",
                format.len()
            ),
        ));
    }
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

/// What our helpers write into: it stops growing past its limit (a template asking for
/// gigabytes gets an out-of-fuel error, not an allocation failure, which would abort).
struct Limited {
    text: String,
    limit: usize,
    over: bool,
}

impl Limited {
    fn new(limit: usize) -> Self {
        Self {
            text: String::new(),
            limit,
            over: false,
        }
    }

    /// At most [`MAX_HELPER_BYTES`], and no more than the render's remaining fuel pays for.
    fn for_state(state: &State) -> Self {
        let affordable = state
            .fuel_levels()
            .map_or(u64::MAX, |(_, remaining)| remaining.saturating_mul(64));
        Self::new(usize::try_from(affordable).map_or(MAX_HELPER_BYTES, |a| a.min(MAX_HELPER_BYTES)))
    }

    fn push(&mut self, c: char) {
        if self.text.len() + c.len_utf8() > self.limit {
            self.over = true;
        } else {
            self.text.push(c);
        }
    }

    fn push_str(&mut self, s: &str) {
        if self.text.len() + s.len() > self.limit {
            self.over = true;
        } else {
            self.text.push_str(s);
        }
    }

    fn check(&self) -> Result<(), Error> {
        if self.over {
            Err(Error::new(
                ErrorKind::OutOfFuel,
                format!("a value printed past {} bytes", self.limit),
            ))
        } else {
            Ok(())
        }
    }

    fn finish(self) -> Result<String, Error> {
        self.check()?;
        Ok(self.text)
    }
}

impl std::fmt::Write for Limited {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        if self.over {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// Refuses values nested deeper than [`MAX_DEPTH`] (a value that contains itself is one).
fn check_depth(depth: usize, what: &str) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{what}: value nested deeper than {MAX_DEPTH} levels (or it contains itself)"),
        ))
    } else {
        Ok(())
    }
}

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
            let mut text = Limited::for_state(state);
            py_str(value, &mut text, 0)?;
            out.write_str(&text.finish()?).map_err(write_failed)
        }
    }
}

/// Python's `str(value)`.
fn py_str(value: &Value, out: &mut Limited, depth: usize) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined => Ok(()),
        ValueKind::String => {
            out.push_str(value.as_str().unwrap_or_default());
            out.check()
        }
        _ => py_repr(value, out, depth),
    }
}

/// Python's `repr(value)`.
fn py_repr(value: &Value, out: &mut Limited, depth: usize) -> Result<(), Error> {
    check_depth(depth, "printing")?;
    out.check()?;
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
                py_repr(&item, out, depth + 1)?;
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
                py_repr(&key, out, depth + 1)?;
                out.push_str(": ");
                py_repr(&value.get_item(&key)?, out, depth + 1)?;
            }
            out.push('}');
        }
        _ => write!(out, "{value}").map_err(write_failed)?,
    }
    out.check()
}

fn py_number(value: &Value, out: &mut Limited) {
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
fn py_float(f: f64, out: &mut Limited, json: bool) {
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
fn py_str_repr(s: &str, out: &mut Limited) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        if out.over {
            return;
        }
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

/// Longest `indent` and separator strings `tojson` takes.
const MAX_JSON_PUNCTUATION: usize = 64;

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, each argument positional or by keyword.
fn tojson(state: &State, value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
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
    let too_long = |what: &str| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: {what} longer than {MAX_JSON_PUNCTUATION} characters"),
        )
    };
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
            let n = usize::try_from(n).unwrap_or(0);
            if n > MAX_JSON_PUNCTUATION {
                return Err(too_long("indent"));
            }
            Some(" ".repeat(n))
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
            let parts: Vec<Value> = separators.try_iter()?.take(3).collect();
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
    if indent
        .as_ref()
        .is_some_and(|i| i.len() > MAX_JSON_PUNCTUATION)
    {
        return Err(too_long("indent"));
    }
    if item_separator.len() > MAX_JSON_PUNCTUATION || key_separator.len() > MAX_JSON_PUNCTUATION {
        return Err(too_long("separators"));
    }
    let options = JsonOptions {
        ensure_ascii: ensure_ascii.is_true(),
        indent,
        item_separator,
        key_separator,
        sort_keys: sort_keys.is_true(),
    };
    let mut out = Limited::for_state(state);
    json_dump(value, &options, 0, &mut out)?;
    Ok(Value::from(out.finish()?))
}

fn json_newline(options: &JsonOptions, level: usize, out: &mut Limited) {
    if let Some(indent) = &options.indent {
        out.push('\n');
        for _ in 0..level {
            if out.over {
                return;
            }
            out.push_str(indent);
        }
    }
}

fn json_dump(
    value: &Value,
    options: &JsonOptions,
    level: usize,
    out: &mut Limited,
) -> Result<(), Error> {
    check_depth(level, "tojson")?;
    out.check()?;
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
            let mut items = value.try_iter()?.peekable();
            if items.peek().is_none() {
                out.push_str("[]");
                return out.check();
            }
            out.push('[');
            for (i, item) in items.enumerate() {
                if i > 0 {
                    out.push_str(&options.item_separator);
                }
                json_newline(options, level + 1, out);
                json_dump(&item, options, level + 1, out)?;
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
                return out.check();
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
                        let mut text = Limited::new(64);
                        json_dump(key, options, level + 1, &mut text)?;
                        text.finish()?
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
    out.check()
}

/// A JSON string as Python's `json` module writes it.
fn json_string(s: &str, ensure_ascii: bool, out: &mut Limited) {
    out.push('"');
    for c in s.chars() {
        if out.over {
            return;
        }
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
        assert!(matches!(render(source, &[]), Err(TemplateError::Budget(_))));
        let source = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        assert!(matches!(render(source, &[]), Err(TemplateError::Render(_))));
    }

    /// Each of these once ended the process (stack overflow, allocation failure, a hang): now
    /// each is an error of the template, rendered from a thread with a task pool's 2 MiB stack.
    #[test]
    fn hostile_templates_end_in_an_error_not_an_abort() {
        let nest = |n: usize, wrap: &str| {
            format!(
                "{{% set ns = namespace(x=[]) %}}{{% for i in range({n}) %}}{{% set ns.x = {wrap} %}}{{% endfor %}}"
            )
        };
        let cases: Vec<(&str, String)> = vec![
            ("dropping 100 000 nested lists", nest(100_000, "[ns.x]") + "done"),
            ("dropping 100 000 nested maps", nest(100_000, "{'a': ns.x}") + "done"),
            ("printing 100 000 nested lists", nest(100_000, "[ns.x]") + "{{ ns.x }}"),
            ("pprint of nested lists", nest(100_000, "[ns.x]") + "{{ ns.x | pprint }}"),
            ("string of nested lists", nest(100_000, "[ns.x]") + "{{ ns.x | string }}"),
            ("tojson of nested lists", nest(100_000, "[ns.x]") + "{{ ns.x | tojson }}"),
            (
                "a namespace that contains itself, printed",
                "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns }}".into(),
            ),
            (
                "a namespace that contains itself, raised",
                "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ raise_exception(ns) }}".into(),
            ),
            (
                "a namespace that contains itself, as JSON",
                "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns | tojson }}".into(),
            ),
            (
                "tojson with ensure_ascii of 100 MB",
                "{% set s = ['é' * 1000000] * 100 %}{% for i in range(100) %}{% set t = s | tojson(ensure_ascii=true) %}{% endfor %}".into(),
            ),
            (
                "string of 100 MB of escapes",
                "{% set s = ['\\x01' * 1000000] * 100 %}{% for i in range(100) %}{% set t = s | string %}{% endfor %}".into(),
            ),
            (
                "tojson indented a thousand spaces",
                "{{ [[[1]]] | tojson(indent=100000) }}".into(),
            ),
            (
                "tojson with a 100 kB separator",
                "{{ [1, 2, 3] * 1000 | tojson(separators=['x' * 100000, ':']) }}".into(),
            ),
            ("str.format width of a billion", "{{ '{:>999999999}'.format(1) }}".into()),
            (
                "str.format width by keyword",
                "{{ '{:>{w}}'.format(1, w=999999999) }}".into(),
            ),
            ("str.center of a billion", "{{ 'x'.center(999999999) }}".into()),
            ("str.zfill of a billion", "{{ '1'.zfill(999999999) }}".into()),
            ("strftime_now of a 10 MB format", "{{ strftime_now('%c' * 10000000) }}".into()),
            (
                "output of 10 GB",
                "{% set s = 'x' * 1000000 %}{% for i in range(10000) %}{{ s }}{% endfor %}".into(),
            ),
            (
                "a string doubled 40 times",
                "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}".into(),
            ),
            ("a macro calling itself", "{% macro f(n) %}{{ f(n + 1, n, n) }}{% endmacro %}{{ f(0) }}".into()),
        ];
        for (what, source) in cases {
            let result = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    ChatTemplate::new(&source, "<s>", "</s>")
                        .and_then(|t| t.render(&[Message::new("user", "hi")], true))
                })
                .expect("thread")
                .join()
                .expect("no panic");
            if what.starts_with("dropping") {
                // Nesting a template may build, it may also free.
                assert_eq!(result.ok().as_deref(), Some("done"), "{what}");
                continue;
            }
            assert!(
                matches!(
                    result,
                    Err(TemplateError::Budget(_) | TemplateError::Render(_))
                ),
                "{what}: {result:?}"
            );
        }
        // A real prompt much larger than its messages is the template's doing.
        let template = ChatTemplate::new(
            "{% for i in range(100000) %}{{ messages }}{% endfor %}",
            "",
            "",
        )
        .expect("compiles");
        let err = template
            .render(&[Message::new("user", "hi")], true)
            .expect_err("capped");
        assert!(err.to_string().contains("grew past 256 KiB"), "{err}");
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
