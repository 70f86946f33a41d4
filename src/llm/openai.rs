//! The server backend: any server speaking OpenAI's chat completions API (Ollama, LM Studio,
//! llama-server, vLLM, OpenAI itself), streamed over HTTP with `ureq`.
//!
//! The request runs on its own thread, which sends the stream's lines over a channel; the
//! caller's loop polls that channel and the cancel flag, so Stop takes effect at once even
//! while the server is still thinking about its first token (the thread then drops the
//! response, closing the connection, at its next read). The server keeps no state for us: every
//! reply sends the persona, the turns still in the prompt and the message.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::{Backend, PersonaSettings, api_key_env_rule, key_transport_rule};
use crate::llm::contract::{
    BackendStats, ChatBackend, ChatError, ChatRequest, GenerateOptions, PromptFormat, Reply,
    ReplyStats, ReplyStream, StopReason,
};

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may send nothing (before the first token: while it reads the prompt or
/// loads the model; later: between two pieces) before the reply is given up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a whole reply may take, first byte to last: a server that keeps the connection
/// alive (SSE comments every few seconds never trip [`READ_TIMEOUT`]) without finishing is
/// given up after this.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(300);
/// The most reply text kept, whatever the server sends: `max_tokens` x this many bytes
/// (at least [`REPLY_FLOOR`], at most [`REPLY_LIMIT`]). A server that ignores `max_tokens`
/// has its reply cut there, as if the limit had been reached.
const BYTES_PER_TOKEN: usize = 64;
const REPLY_FLOOR: usize = 4096;
const REPLY_LIMIT: usize = 256 * 1024;
/// The longest line of the stream (and error body) that is read.
const LINE_LIMIT: u64 = 1024 * 1024;
/// OpenAI accepts at most four stop strings.
const MAX_STOPS: usize = 4;

/// Where the server is and how to talk to it, resolved from [`Backend::OpenAi`].
#[derive(Clone, PartialEq)]
pub struct OpenAiSettings {
    /// Without a trailing `/`, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    pub model: String,
    /// Read from the environment at load; never written to the settings file.
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// [`TOTAL_TIMEOUT`] unless a test shortens it.
    pub total_timeout: Duration,
}

impl std::fmt::Debug for OpenAiSettings {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("total_timeout", &self.total_timeout)
            .finish()
    }
}

impl OpenAiSettings {
    /// No key, the default timeouts.
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.trim().trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key: None,
            connect_timeout: CONNECT_TIMEOUT,
            read_timeout: READ_TIMEOUT,
            total_timeout: TOTAL_TIMEOUT,
        }
    }

    /// From `llm.backend`: `None` for the local backend; the key is read from the named
    /// environment variable now.
    pub fn from_backend(backend: &Backend) -> Result<Option<Self>, ServerError> {
        Self::from_backend_with(backend, |name| std::env::var(name).ok())
    }

    /// [`from_backend`](Self::from_backend) with the environment given by `env`. The key's
    /// variable must be one named for this purpose, and the key goes only over https or to
    /// this machine (the rules of [`api_key_env_rule`] and [`key_transport_rule`]).
    pub fn from_backend_with(
        backend: &Backend,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ServerError> {
        let Backend::OpenAi {
            base_url,
            model,
            api_key_env,
        } = backend
        else {
            return Ok(None);
        };
        let mut settings = Self::new(base_url, model);
        if let Some(name) = api_key_env {
            api_key_env_rule(name).map_err(ServerError::KeyRefused)?;
            key_transport_rule(&settings.base_url).map_err(ServerError::KeyRefused)?;
            match env(name) {
                Some(key) if !key.trim().is_empty() => {
                    settings.api_key = Some(key.trim().to_owned());
                }
                _ => return Err(ServerError::MissingKey(name.clone())),
            }
        }
        Ok(Some(settings))
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .timeout_per_write(Some(self.read_timeout))
            .build()
            .into()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url)
    }
}

/// What went wrong talking to the server, in the user's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServerError {
    #[error(
        "llm.backend.api_key_env names {0}, which is not set: set it to the server's API key, or write api_key_env: None for a server without a key"
    )]
    MissingKey(String),
    /// The key would go where it must not (a variable not named for keys, plain http to
    /// another machine): the rule broken, in the user's words.
    #[error("llm.backend.api_key_env: {0}")]
    KeyRefused(String),
    #[error("cannot reach the chat server at {url}: {message} (is it running?)")]
    Unreachable { url: String, message: String },
    #[error(
        "the chat server at {url} refused the API key (HTTP {status}): {message} (check llm.backend.api_key_env and its variable)"
    )]
    Unauthorized {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "the chat server has no {url} or no model \"{model}\" (HTTP 404): {message} (check llm.backend.base_url, which usually ends in /v1, and llm.backend.model)"
    )]
    NotFound {
        url: String,
        model: String,
        message: String,
    },
    #[error("the chat server answered HTTP {status} to {url}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the chat server sent nothing for {secs} s: reply given up")]
    Timeout { secs: u64 },
    #[error("the chat server did not finish its reply within {secs} s: reply given up")]
    Deadline { secs: u64 },
    #[error("the chat server's reply is not a stream this app can read: {0}")]
    Malformed(String),
    #[error("the chat server stopped in the middle of the reply: {0}")]
    Interrupted(String),
    #[error("the chat server reported an error in the reply: {0}")]
    InStream(String),
}

/// One thing the request thread saw.
enum Event {
    Line(String),
    End,
    Failed(ServerError),
}

/// The OpenAI-compatible backend.
pub struct OpenAiBackend {
    settings: OpenAiSettings,
    agent: ureq::Agent,
    load_ms: f64,
}

impl OpenAiBackend {
    /// Nothing is sent: a server that is down is reported by the first reply (and by
    /// `desktop-mate check`, which lists its models).
    pub fn load(settings: OpenAiSettings) -> Self {
        let start = Instant::now();
        let agent = settings.agent();
        Self {
            settings,
            agent,
            load_ms: start.elapsed().as_secs_f64() * 1000.0,
        }
    }

    pub fn settings(&self) -> &OpenAiSettings {
        &self.settings
    }

    /// Streams `POST {base_url}/{path}` with `body`; `chat` reads `delta.content`, else
    /// `text` (`/completions`). At most `max_tokens`' worth of text is kept; nothing the
    /// server sent back shows the API key.
    fn stream(
        &self,
        path: &str,
        body: Value,
        chat: bool,
        max_tokens: u32,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ChatError> {
        let max_bytes = (max_tokens as usize)
            .saturating_mul(BYTES_PER_TOKEN)
            .clamp(REPLY_FLOOR, REPLY_LIMIT);
        self.stream_reply(path, body, chat, max_bytes, stream)
            .map_err(|err| err.redacted(self.settings.api_key.as_deref()).into())
    }

    fn stream_reply(
        &self,
        path: &str,
        body: Value,
        chat: bool,
        max_bytes: usize,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ServerError> {
        let start = Instant::now();
        let events = self.spawn_request(path, body);
        let mut text = String::new();
        let mut pieces = 0usize;
        let mut first_at = None;
        let mut last_at = None;
        let mut usage = Usage::default();
        let mut finish: Option<String> = None;
        let mut done = false;
        let mut cancelled = false;
        let mut cut = false;
        let poll = Duration::from_millis(20);
        loop {
            if stream.cancel.load(Ordering::Relaxed) {
                cancelled = true;
                break;
            }
            if start.elapsed() > self.settings.total_timeout {
                return Err(ServerError::Deadline {
                    secs: self.settings.total_timeout.as_secs(),
                });
            }
            let line = match events.recv_timeout(poll) {
                // Before anything is cut short for a message: no piece of the key survives.
                Ok(Event::Line(line)) => redact(line, self.settings.api_key.as_deref()),
                Ok(Event::End) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Event::Failed(err)) => return Err(err),
                Err(RecvTimeoutError::Timeout) => continue,
            };
            let Some(data) = sse_data(&line)? else {
                continue;
            };
            if data == "[DONE]" {
                done = true;
                break;
            }
            let chunk: Value = serde_json::from_str(data)
                .map_err(|e| ServerError::Malformed(format!("{e} in `{}`", shorten(data))))?;
            if let Some(error) = chunk.get("error") {
                return Err(ServerError::InStream(error_message(error)));
            }
            usage.read(&chunk);
            let Some(choice) = chunk["choices"].get(0) else {
                continue;
            };
            let piece = if chat {
                choice["delta"]["content"].as_str()
            } else {
                choice["text"].as_str()
            };
            if let Some(piece) = piece.filter(|p| !p.is_empty()) {
                let now = Instant::now();
                first_at.get_or_insert(now);
                last_at = Some(now);
                pieces += 1;
                let piece = within(piece, max_bytes.saturating_sub(text.len()));
                text.push_str(piece);
                (stream.on_text)(piece);
                if text.len() + 4 > max_bytes {
                    tracing::warn!(
                        "the chat server sent more than {max_bytes} bytes for a reply of at most \
                         {} tokens: reply cut",
                        max_bytes / BYTES_PER_TOKEN
                    );
                    cut = true;
                    break;
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish = Some(reason.to_owned());
            }
        }
        // Dropping the receiver ends the request thread at its next read, closing the connection.
        drop(events);
        if !cancelled && !done && !cut && finish.is_none() {
            return Err(ServerError::Interrupted(format!(
                "the connection closed after {} characters, without the end of the stream",
                text.chars().count()
            )));
        }
        let stop_reason = if cancelled {
            StopReason::Cancelled
        } else if cut || finish.as_deref() == Some("length") {
            StopReason::MaxTokens
        } else {
            StopReason::EndOfGeneration
        };
        let generated = usage.completion_tokens.unwrap_or(pieces);
        let ms = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1000.0;
        let ttft_ms = first_at.map_or(0.0, |t| ms(start, t));
        let decode_ms = match (first_at, last_at) {
            (Some(first), Some(last)) => ms(first, last),
            _ => 0.0,
        };
        let prompt_tokens = usage.prompt_tokens.unwrap_or(0);
        Ok(Reply {
            text,
            stats: ReplyStats {
                prompt_tokens,
                reused_tokens: usage.cached_tokens.unwrap_or(0),
                // The server's prompt processing is what the wait for the first piece is.
                prompt_ms: ttft_ms,
                prompt_tps: rate(prompt_tokens, ttft_ms),
                ttft_ms,
                generated_tokens: generated,
                decode_ms,
                decode_tps: rate(generated.saturating_sub(1), decode_ms),
                stop_reason,
                lead_tokens: 0,
                lead_ms: 0.0,
            },
        })
    }

    /// Sends the request on a thread of its own; its lines come back through the channel.
    fn spawn_request(&self, path: &str, body: Value) -> Receiver<Event> {
        let (sender, events) = mpsc::channel();
        let agent = self.agent.clone();
        let url = self.settings.url(path);
        let key = self.settings.api_key.clone();
        let model = self.settings.model.clone();
        let secs = self.settings.read_timeout.as_secs();
        std::thread::Builder::new()
            .name("openai-reply".into())
            .spawn(move || {
                let sent = post(&agent, &url, key.as_deref(), &body.to_string());
                let response = match sent {
                    Ok(response) => response,
                    Err(err) => {
                        let _ = sender.send(Event::Failed(request_error(err, &url, secs)));
                        return;
                    }
                };
                match check_status(response, &url, &model, key.as_deref()) {
                    Ok(response) => read_lines(response, &sender, secs),
                    Err(err) => {
                        let _ = sender.send(Event::Failed(err));
                    }
                }
            })
            .expect("spawning a thread");
        events
    }
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    key: Option<&str>,
    body: &str,
) -> Result<HttpResponse, ureq::Error> {
    let mut request = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "text/event-stream");
    if let Some(key) = key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    request.send(body)
}

type HttpResponse = ureq::http::Response<ureq::Body>;

/// A 2xx response, or the error its status and body say (the key redacted from the body).
fn check_status(
    mut response: HttpResponse,
    url: &str,
    model: &str,
    key: Option<&str>,
) -> Result<HttpResponse, ServerError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(LINE_LIMIT)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    let body = redact(body, key);
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("error").map(error_message))
        .unwrap_or_else(|| {
            let body = body.trim();
            if body.is_empty() {
                "no details".to_owned()
            } else {
                shorten(body)
            }
        });
    let (url, model) = (url.to_owned(), model.to_owned());
    Err(match status {
        401 | 403 => ServerError::Unauthorized {
            url,
            status,
            message,
        },
        404 => ServerError::NotFound {
            url,
            model,
            message,
        },
        _ => ServerError::Status {
            url,
            status,
            message,
        },
    })
}

/// Sends every line of the body, then [`Event::End`] (or the error that ended it). Stops as
/// soon as nobody listens.
fn read_lines(response: HttpResponse, sender: &Sender<Event>, secs: u64) {
    let mut reader = BufReader::new(response.into_body().into_reader());
    loop {
        let mut line = Vec::new();
        let read = (&mut reader).take(LINE_LIMIT).read_until(b'\n', &mut line);
        let event = match read {
            Ok(0) => Event::End,
            Ok(_) if line.len() as u64 >= LINE_LIMIT && !line.ends_with(b"\n") => Event::Failed(
                ServerError::Malformed(format!("a line longer than {} KiB", LINE_LIMIT / 1024)),
            ),
            Ok(_) => match String::from_utf8(line) {
                Ok(line) => Event::Line(line),
                Err(_) => Event::Failed(ServerError::Malformed("a line that is not UTF-8".into())),
            },
            Err(err) => Event::Failed(match ureq::Error::from(err) {
                ureq::Error::Timeout(_) => ServerError::Timeout { secs },
                err => ServerError::Interrupted(err.to_string()),
            }),
        };
        let last = !matches!(event, Event::Line(_));
        if sender.send(event).is_err() || last {
            return;
        }
    }
}

fn request_error(err: ureq::Error, url: &str, secs: u64) -> ServerError {
    match err {
        ureq::Error::Timeout(ureq::Timeout::Connect) => ServerError::Unreachable {
            url: url.to_owned(),
            message: "connecting timed out".into(),
        },
        ureq::Error::Timeout(_) => ServerError::Timeout { secs },
        err => ServerError::Unreachable {
            url: url.to_owned(),
            message: err.to_string(),
        },
    }
}

/// The data of an SSE line: `None` for blank lines, comments and other fields.
fn sse_data(line: &str) -> Result<Option<&str>, ServerError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() || line.starts_with(':') {
        return Ok(None);
    }
    if let Some(data) = line.strip_prefix("data:") {
        return Ok(Some(data.strip_prefix(' ').unwrap_or(data).trim_end()));
    }
    let field = line.split(':').next().unwrap_or_default();
    if ["event", "id", "retry"].contains(&field) {
        return Ok(None);
    }
    Err(ServerError::Malformed(format!(
        "expected server-sent events (`data: {{...}}`), found `{}`",
        shorten(line)
    )))
}

/// `error.message` of an OpenAI error object (or the value itself when it is a string).
fn error_message(error: &Value) -> String {
    error["message"]
        .as_str()
        .or_else(|| error.as_str())
        .map_or_else(|| shorten(&error.to_string()), shorten)
}

/// The longest start of `piece` that fits in `room` bytes, cut at a character boundary.
fn within(piece: &str, room: usize) -> &str {
    if piece.len() <= room {
        return piece;
    }
    let mut end = room;
    while !piece.is_char_boundary(end) {
        end -= 1;
    }
    &piece[..end]
}

/// What stands for the API key wherever a server's words are shown or logged.
const REDACTED: &str = "<api key>";

/// `text` with every copy of the key replaced.
fn redact(text: String, key: Option<&str>) -> String {
    match key {
        Some(key) if !key.is_empty() && text.contains(key) => text.replace(key, REDACTED),
        _ => text,
    }
}

impl From<ServerError> for ChatError {
    fn from(err: ServerError) -> Self {
        ChatError::Backend(Box::new(err))
    }
}

impl ServerError {
    /// The same error with every copy of `key` in its text replaced (a server may echo the
    /// request's Authorization header in an error body).
    pub fn redacted(self, key: Option<&str>) -> Self {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return self;
        };
        let clean = |text: String| text.replace(key, REDACTED);
        match self {
            ServerError::Unreachable { url, message } => ServerError::Unreachable {
                url: clean(url),
                message: clean(message),
            },
            ServerError::Unauthorized {
                url,
                status,
                message,
            } => ServerError::Unauthorized {
                url: clean(url),
                status,
                message: clean(message),
            },
            ServerError::NotFound {
                url,
                model,
                message,
            } => ServerError::NotFound {
                url: clean(url),
                model,
                message: clean(message),
            },
            ServerError::Status {
                url,
                status,
                message,
            } => ServerError::Status {
                url: clean(url),
                status,
                message: clean(message),
            },
            ServerError::Malformed(message) => ServerError::Malformed(clean(message)),
            ServerError::Interrupted(message) => ServerError::Interrupted(clean(message)),
            ServerError::InStream(message) => ServerError::InStream(clean(message)),
            other @ (ServerError::MissingKey(_)
            | ServerError::KeyRefused(_)
            | ServerError::Timeout { .. }
            | ServerError::Deadline { .. }) => other,
        }
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

fn rate(count: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        count as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// Token counts from the last chunk (`stream_options.include_usage`), when the server sends them.
#[derive(Default)]
struct Usage {
    prompt_tokens: Option<usize>,
    completion_tokens: Option<usize>,
    cached_tokens: Option<usize>,
}

impl Usage {
    fn read(&mut self, chunk: &Value) {
        let usage = &chunk["usage"];
        let count = |v: &Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
        if let Some(n) = count(&usage["prompt_tokens"]) {
            self.prompt_tokens = Some(n);
        }
        if let Some(n) = count(&usage["completion_tokens"]) {
            self.completion_tokens = Some(n);
        }
        if let Some(n) = count(&usage["prompt_tokens_details"]["cached_tokens"]) {
            self.cached_tokens = Some(n);
        }
    }
}

/// The sampling fields every OpenAI-compatible server knows.
fn sampling(body: &mut Value, options: &GenerateOptions) {
    let sampling = &options.sampling;
    body["temperature"] = json!(sampling.temperature);
    body["top_p"] = json!(sampling.top_p);
    body["max_tokens"] = json!(options.max_tokens);
    if let Some(seed) = sampling.seed {
        body["seed"] = json!(seed);
    }
    if !options.stop.is_empty() {
        let stops: Vec<&String> = options.stop.iter().take(MAX_STOPS).collect();
        body["stop"] = json!(stops);
    }
}

/// The chat request's body: system (the persona), the turns, the message.
pub fn chat_body(model: &str, request: &ChatRequest) -> Value {
    let mut messages = Vec::with_capacity(request.history.len() * 2 + 2);
    let system = request.persona.system_prompt.trim();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for turn in request.history {
        messages.push(json!({"role": "user", "content": turn.prompt_user()}));
        messages.push(json!({"role": "assistant", "content": turn.assistant}));
    }
    messages.push(json!({"role": "user", "content": request.message}));
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    sampling(&mut body, request.options);
    body
}

impl ChatBackend for OpenAiBackend {
    /// Nothing to do: the server keeps no conversation for us, and a request would cost a
    /// paid service tokens for a cache this client cannot count on.
    fn warm_up(
        &mut self,
        _persona: &PersonaSettings,
        _state_dir: Option<&std::path::Path>,
    ) -> Result<ReplyStats, ChatError> {
        Ok(ReplyStats {
            stop_reason: StopReason::EndOfGeneration,
            ..ReplyStats::empty()
        })
    }

    /// The whole history is sent (the session already keeps it to `chat.turns_kept`): the
    /// server's context size is unknown here, so nothing is dropped.
    fn generate(
        &mut self,
        request: &ChatRequest,
        stream: &mut ReplyStream,
    ) -> Result<(Reply, usize), ChatError> {
        if request.message.trim().is_empty() {
            return Err(ChatError::EmptyPrompt);
        }
        let body = chat_body(&self.settings.model, request);
        let max_tokens = request.options.max_tokens;
        Ok((
            self.stream("chat/completions", body, true, max_tokens, stream)?,
            0,
        ))
    }

    /// The server keeps no conversation: a side request is one more chat request.
    fn aside(
        &mut self,
        request: &ChatRequest,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ChatError> {
        self.generate(request, stream).map(|(reply, _)| reply)
    }

    /// `POST /completions` (the legacy text endpoint: Ollama, LM Studio, llama-server and vLLM
    /// have it; OpenAI only for its instruct models).
    fn complete(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        stream: &mut ReplyStream,
    ) -> Result<Reply, ChatError> {
        if prompt.trim().is_empty() {
            return Err(ChatError::EmptyPrompt);
        }
        let mut body = json!({
            "model": self.settings.model,
            "prompt": prompt,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        sampling(&mut body, options);
        self.stream("completions", body, false, options.max_tokens, stream)
    }

    fn stats(&self) -> BackendStats {
        BackendStats {
            load_ms: self.load_ms,
            n_ctx: 0,
            cached_tokens: 0,
            prompt_format: PromptFormat::Server,
        }
    }
}

/// `GET {base_url}/models`: the model ids the server lists (for `desktop-mate check`).
pub fn list_models(settings: &OpenAiSettings) -> Result<Vec<String>, ServerError> {
    let url = settings.url("models");
    let mut request = settings.agent().get(&url);
    if let Some(key) = &settings.api_key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    let secs = settings.read_timeout.as_secs();
    let key = settings.api_key.as_deref();
    let response = request
        .call()
        .map_err(|e| request_error(e, &url, secs).redacted(key))?;
    let mut response = check_status(response, &url, &settings.model, key)?;
    let body = response
        .body_mut()
        .with_config()
        .limit(16 * LINE_LIMIT)
        .read_to_string()
        .map_err(|e| ServerError::Interrupted(e.to_string()))?;
    let body = redact(body, key);
    let list: Value = serde_json::from_str(&body).map_err(|e| {
        ServerError::Malformed(format!("{e} in the model list `{}`", shorten(&body)))
    })?;
    let Some(models) = list["data"].as_array() else {
        return Err(ServerError::Malformed(format!(
            "the model list has no `data` array: `{}`",
            shorten(&body)
        )));
    };
    Ok(models
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_lines_are_read_as_the_spec_says() {
        assert_eq!(sse_data("data: {\"a\":1}\n"), Ok(Some("{\"a\":1}")));
        assert_eq!(sse_data("data:[DONE]\r\n"), Ok(Some("[DONE]")));
        assert_eq!(sse_data("\n"), Ok(None));
        assert_eq!(sse_data(": keep-alive\n"), Ok(None));
        assert_eq!(sse_data("event: message\n"), Ok(None));
        assert!(matches!(
            sse_data("<html>oops</html>\n"),
            Err(ServerError::Malformed(_))
        ));
    }

    #[test]
    fn a_piece_is_cut_at_a_character_boundary() {
        assert_eq!(within("héllo", 10), "héllo");
        assert_eq!(within("héllo", 2), "h");
        assert_eq!(within("héllo", 3), "hé");
        assert_eq!(within("héllo", 0), "");
    }

    #[test]
    fn the_key_is_redacted_from_what_a_server_says() {
        let err = ServerError::Status {
            url: "http://127.0.0.1:1/v1/chat/completions".into(),
            status: 500,
            message: "bad request, headers: Authorization: Bearer sk-secret-123".into(),
        };
        let shown = err.redacted(Some("sk-secret-123")).to_string();
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert!(shown.contains("Bearer <api key>"), "{shown}");
        let err = ServerError::InStream("sk-secret-123 is not valid".into());
        assert_eq!(
            err.redacted(Some("sk-secret-123")).to_string(),
            "the chat server reported an error in the reply: <api key> is not valid"
        );
    }

    #[test]
    fn a_key_goes_only_to_variables_named_for_it_over_https_or_to_this_machine() {
        let env = |name: &str| (name != "UNSET_API_KEY").then(|| format!("value-of-{name}"));
        let backend = |url: &str, var: &str| Backend::OpenAi {
            base_url: url.into(),
            model: "m".into(),
            api_key_env: Some(var.into()),
        };
        let key = |url: &str, var: &str| {
            OpenAiSettings::from_backend_with(&backend(url, var), env)
                .map(|s| s.and_then(|s| s.api_key))
        };
        assert_eq!(
            key("https://api.example.com/v1", "OPENAI_API_KEY"),
            Ok(Some("value-of-OPENAI_API_KEY".into()))
        );
        assert_eq!(
            key("http://127.0.0.1:8080/v1", "DESKTOP_MATE_KEY"),
            Ok(Some("value-of-DESKTOP_MATE_KEY".into()))
        );
        assert_eq!(
            key("http://localhost:11434/v1", "GROQ_API_KEY"),
            Ok(Some("value-of-GROQ_API_KEY".into()))
        );
        assert_eq!(
            key("http://[::1]:1234/v1", "LMSTUDIO_API_KEY"),
            Ok(Some("value-of-LMSTUDIO_API_KEY".into()))
        );
        for refused in ["GITHUB_TOKEN", "PATH", "HOME", "AWS_SECRET_ACCESS_KEY"] {
            let err = key("https://api.example.com/v1", refused).expect_err(refused);
            assert!(
                matches!(&err, ServerError::KeyRefused(m) if m.contains(refused)),
                "{err}"
            );
        }
        let err = key("http://192.168.1.20:8080/v1", "OPENAI_API_KEY").expect_err("plain http");
        assert!(
            matches!(&err, ServerError::KeyRefused(m) if m.contains("https")),
            "{err}"
        );
        let err = key("http://127.0.0.1.evil.example/v1", "OPENAI_API_KEY")
            .expect_err("not this machine");
        assert!(matches!(err, ServerError::KeyRefused(_)), "{err}");
        assert_eq!(
            key("https://api.example.com/v1", "UNSET_API_KEY"),
            Err(ServerError::MissingKey("UNSET_API_KEY".into()))
        );
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let mut settings = OpenAiSettings::new("http://127.0.0.1:1/v1/", "m");
        settings.api_key = Some("sk-secret".into());
        assert_eq!(settings.base_url, "http://127.0.0.1:1/v1");
        assert!(!format!("{settings:?}").contains("sk-secret"));
    }
}
