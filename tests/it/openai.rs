//! The OpenAI-compatible backend against real HTTP servers on 127.0.0.1 started here: a
//! hand-written one speaking OpenAI's server-sent events (every failure a server can have),
//! and llama.cpp's `llama-server` when scripts/build-llama-tools.sh has built it.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use desktop_mate::config::{ChatSettings, Emotion, PersonaSettings, SamplingSettings};
use desktop_mate::llm::contract::ChatError;
use desktop_mate::llm::contract::ReplyStream;
use desktop_mate::llm::contract::{GenerateOptions, StopReason};
use desktop_mate::llm::conversation::session::ChatSession;
use desktop_mate::llm::load::{BackendConfig, load_backend};
use desktop_mate::llm::openai::{OpenAiSettings, ServerError, list_models};
use serde_json::{Value, json};

use crate::cli::{desktop_mate, json_of};
use crate::http_server::{Request, Server};
use crate::support::shared_file;

/// A server answering its `n`th connection with `answer(n, stream)` (the one test server,
/// crate::http_server); the requests come back through the receiver. Returns its base URL
/// (`http://127.0.0.1:PORT/v1`); it runs until the test binary ends.
fn serve(
    answer: impl Fn(usize, &mut TcpStream) + Send + Sync + 'static,
) -> (String, Receiver<Request>) {
    let (sender, requests) = mpsc::channel();
    let sender = std::sync::Mutex::new(sender);
    let port = Server::start(move |n, request, stream, _| {
        // The test may not look at the requests.
        if let Ok(sender) = sender.lock() {
            let _ = sender.send(request.clone());
        }
        answer(n, stream);
    })
    .detach();
    (format!("http://127.0.0.1:{port}/v1"), requests)
}

pub(crate) const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";

pub(crate) fn piece(content: &str) -> String {
    let chunk = json!({"object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": content}, "finish_reason": null}
    ]});
    format!("data: {chunk}\n\n")
}

pub(crate) fn finish(reason: &str) -> String {
    let chunk = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]});
    format!("data: {chunk}\n\n")
}

pub(crate) fn usage(prompt: u64, completion: u64) -> String {
    let chunk = json!({"choices": [], "usage": {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion
    }});
    format!("data: {chunk}\n\n")
}

pub(crate) const DONE: &str = "data: [DONE]\n\n";

fn send(stream: &mut TcpStream, text: &str) {
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.flush();
}

/// A whole streamed reply made of `pieces`.
fn reply(stream: &mut TcpStream, pieces: &[&str], with_usage: bool) {
    send(stream, SSE_HEAD);
    for p in pieces {
        send(stream, &piece(p));
    }
    send(stream, &finish("stop"));
    if with_usage {
        send(stream, &usage(12, 3));
    }
    send(stream, DONE);
}

fn status(stream: &mut TcpStream, code: u16, reason: &str, body: &str) {
    send(
        stream,
        &format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
}

fn settings_for(base_url: &str) -> OpenAiSettings {
    OpenAiSettings::new(base_url, "test-model")
}

fn session(settings: OpenAiSettings) -> ChatSession {
    let backend = load_backend(BackendConfig::OpenAi(settings))
        .backend
        .expect("the server backend loads without contacting the server");
    ChatSession::new(backend, &ChatSettings::default())
}

fn options() -> GenerateOptions {
    GenerateOptions::from_sampling(&SamplingSettings {
        temperature: 0.2,
        seed: Some(7),
        max_tokens: 40,
        ..SamplingSettings::default()
    })
}

/// Sends `message`; returns the result and the pieces shown while streaming.
fn say(
    session: &mut ChatSession,
    message: &str,
    cancel: &AtomicBool,
    stop_after_first_piece: bool,
) -> (
    Result<desktop_mate::llm::conversation::session::SessionReply, ChatError>,
    Vec<String>,
) {
    let mut shown = Vec::new();
    let result = session.send(
        &PersonaSettings::default(),
        message,
        &options(),
        &mut ReplyStream {
            cancel,
            on_text: &mut |piece| {
                shown.push(piece.to_owned());
                if stop_after_first_piece {
                    cancel.store(true, Ordering::Relaxed);
                }
            },
        },
    );
    (result, shown)
}

#[test]
fn a_streamed_reply_shows_its_text_and_emotion_and_is_recorded() {
    let (url, requests) = serve(|n, stream| match n {
        0 => reply(stream, &["[jo", "y] Hel", "lo"], true),
        _ => reply(stream, &["[fun] Again", "!"], false),
    });
    let mut settings = settings_for(&url);
    settings.api_key = Some("sk-test".into());
    let mut session = session(settings);
    let never = AtomicBool::new(false);

    let (result, pieces) = say(&mut session, "Hi", &never, false);
    let reply = result.expect("reply");
    assert_eq!(reply.shown, "Hello");
    assert_eq!(pieces.concat(), "Hello", "the tag is never shown");
    assert_eq!(reply.emotion, Some(Emotion::Joy));
    assert_eq!(reply.turn.assistant, "[joy] Hello");
    assert_eq!(reply.stats.stop_reason, StopReason::EndOfGeneration);
    assert_eq!(reply.stats.generated_tokens, 3, "from the usage chunk");
    assert_eq!(reply.stats.prompt_tokens, 12);
    assert!(reply.stats.ttft_ms > 0.0);

    let request = requests.recv().expect("request");
    assert_eq!(request.line, "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(request.header("authorization"), Some("Bearer sk-test"));
    let body = &request.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 40);
    assert_eq!(body["seed"], 7);
    assert!((body["temperature"].as_f64().expect("temperature") - 0.2).abs() < 1e-6);
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{body}");
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(
        messages[0]["content"],
        PersonaSettings::default().system_prompt
    );
    assert_eq!(messages[1], json!({"role": "user", "content": "Hi"}));

    // The second message carries the first turn, as generated (tag included).
    let (result, _) = say(&mut session, "More", &never, false);
    let second = result.expect("second reply");
    assert_eq!(second.shown, "Again!");
    assert_eq!(second.emotion, Some(Emotion::Fun));
    assert_eq!(
        second.stats.generated_tokens, 2,
        "without usage: one token per piece"
    );
    let body = requests.recv().expect("second request").json();
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(body["messages"][2]["content"], "[joy] Hello");
    assert_eq!(session.turns().len(), 2);
}

#[test]
fn stop_ends_the_reply_at_once_and_keeps_what_was_shown_like_the_local_backend() {
    let (url, _requests) = serve(|_, stream| {
        send(stream, SSE_HEAD);
        send(stream, &piece("[neutral] Once"));
        // Then a very slow server.
        std::thread::sleep(Duration::from_secs(5));
        send(stream, &piece(" upon"));
    });
    let mut session = session(settings_for(&url));
    let cancel = AtomicBool::new(false);
    let start = Instant::now();
    let (result, _) = say(&mut session, "Tell me a story", &cancel, true);
    let reply = result.expect("a stopped reply is a reply");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "Stop does not wait for the server: {:?}",
        start.elapsed()
    );
    assert_eq!(reply.stats.stop_reason, StopReason::Cancelled);
    assert_eq!(reply.shown, "Once");
    // As with llama.cpp: a stopped reply is recorded as far as it went.
    assert_eq!(session.turns().len(), 1);
    assert_eq!(session.turns()[0].assistant, "[neutral] Once");
}

#[test]
fn stop_while_waiting_for_the_first_byte_does_not_wait() {
    let (url, _requests) = serve(|_, stream| {
        std::thread::sleep(Duration::from_secs(5));
        reply(stream, &["late"], false);
    });
    let mut session = session(settings_for(&url));
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::Relaxed);
        });
        let start = Instant::now();
        let (result, _) = say(&mut session, "Hi", &cancel, false);
        let reply = result.expect("stopped");
        assert_eq!(reply.stats.stop_reason, StopReason::Cancelled);
        assert!(start.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn a_server_that_is_down_is_a_clear_error() {
    // A port nobody listens on: bound, read, released.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut session = session(settings_for(&format!("http://127.0.0.1:{port}/v1")));
    let (result, _) = say(&mut session, "Hi", &AtomicBool::new(false), false);
    let err = result.expect_err("nobody listens");
    assert!(
        matches!(
            err.backend::<ServerError>(),
            Some(ServerError::Unreachable { .. })
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port}/v1/chat/completions"))
            && message.contains("is it running?"),
        "{message}"
    );
    assert!(session.turns().is_empty());
}

#[test]
fn a_server_killed_mid_reply_is_an_error_and_the_turn_is_not_recorded() {
    let (url, _requests) = serve(|n, stream| match n {
        0 => reply(stream, &["[joy] Fine"], false),
        // A chunked body (what servers send) cut off in the middle.
        1 => {
            send(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let event = piece("[sorrow] Sorry");
            send(stream, &format!("{:x}\r\n{event}\r\n", event.len()));
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        // Two pieces, then the process dies: the connection closes without the end.
        _ => {
            send(stream, SSE_HEAD);
            send(stream, &piece("[sorrow] I was"));
            send(stream, &piece(" saying"));
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    let mut session = session(settings_for(&url));
    let never = AtomicBool::new(false);
    say(&mut session, "Hi", &never, false).0.expect("first");
    let (result, pieces) = say(&mut session, "Hm?", &never, false);
    let err = result.expect_err("chunked body cut off");
    assert!(
        matches!(
            err.backend::<ServerError>(),
            Some(ServerError::Interrupted(_))
        ),
        "{err:?}"
    );
    assert_eq!(pieces.concat(), "Sorry");
    let (result, pieces) = say(&mut session, "And?", &never, false);
    let err = result.expect_err("cut off");
    assert!(
        matches!(
            err.backend::<ServerError>(),
            Some(ServerError::Interrupted(_))
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("stopped in the middle of the reply"),
        "{err}"
    );
    assert_eq!(pieces.concat(), "I was saying", "what arrived was shown");
    assert_eq!(session.turns().len(), 1, "only the completed turn");
    assert_eq!(session.turns()[0].assistant, "[joy] Fine");
}

#[test]
fn http_errors_say_what_to_fix() {
    let (url, _requests) = serve(|n, stream| match n {
        0 => status(
            stream,
            500,
            "Internal Server Error",
            r#"{"error":{"message":"the model crashed","type":"server_error"}}"#,
        ),
        1 => status(
            stream,
            401,
            "Unauthorized",
            r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#,
        ),
        2 => status(stream, 404, "Not Found", "404 page not found"),
        _ => status(stream, 503, "Service Unavailable", ""),
    });
    let mut session = session(settings_for(&url));
    let never = AtomicBool::new(false);
    let mut error = || {
        say(&mut session, "Hi", &never, false)
            .0
            .expect_err("an HTTP error")
            .to_string()
    };
    let e500 = error();
    assert!(
        e500.contains("HTTP 500") && e500.contains("the model crashed"),
        "{e500}"
    );
    let e401 = error();
    assert!(
        e401.contains("refused the API key")
            && e401.contains("Incorrect API key provided")
            && e401.contains("api_key_env"),
        "{e401}"
    );
    let e404 = error();
    assert!(
        e404.contains("HTTP 404")
            && e404.contains("test-model")
            && e404.contains("llm.backend.base_url")
            && e404.contains("404 page not found"),
        "{e404}"
    );
    let e503 = error();
    assert!(
        e503.contains("HTTP 503") && e503.contains("no details"),
        "{e503}"
    );
    assert!(session.turns().is_empty());
}

#[test]
fn a_malformed_stream_is_an_error() {
    let (url, _requests) = serve(|n, stream| {
        send(stream, SSE_HEAD);
        match n {
            0 => send(stream, "data: {\"choices\": [{\"delta\": {\"content\n\n"),
            1 => send(stream, "<html><body>Proxy error</body></html>\n"),
            _ => send(
                stream,
                "data: {\"error\": {\"message\": \"out of memory\"}}\n\n",
            ),
        }
    });
    let mut session = session(settings_for(&url));
    let never = AtomicBool::new(false);
    for expected in ["not a stream", "server-sent events", "out of memory"] {
        let err = say(&mut session, "Hi", &never, false)
            .0
            .expect_err("malformed");
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
    assert!(session.turns().is_empty());
}

#[test]
fn a_slow_first_byte_still_works() {
    let (url, _requests) = serve(|_, stream| {
        // Loading the model, reading a long prompt: nothing for over 5 s.
        std::thread::sleep(Duration::from_millis(5500));
        reply(stream, &["[surprised] ", "Oh, hi"], true);
    });
    let mut session = session(settings_for(&url));
    let (result, _) = say(&mut session, "Hi", &AtomicBool::new(false), false);
    let reply = result.expect("a slow server is not a dead one");
    assert_eq!(reply.shown, "Oh, hi");
    assert_eq!(reply.emotion, Some(Emotion::Surprised));
    assert!(reply.stats.ttft_ms >= 5000.0, "{}", reply.stats.ttft_ms);
}

#[test]
fn a_server_that_sends_nothing_for_the_read_timeout_is_given_up() {
    let (url, _requests) = serve(|_, stream| {
        send(stream, SSE_HEAD);
        send(stream, &piece("[joy] Hm"));
        std::thread::sleep(Duration::from_secs(4));
    });
    let mut settings = settings_for(&url);
    settings.read_timeout = Duration::from_secs(1);
    let mut session = session(settings);
    let start = Instant::now();
    let (result, _) = say(&mut session, "Hi", &AtomicBool::new(false), false);
    let err = result.expect_err("silent server");
    assert!(
        matches!(
            err.backend::<ServerError>(),
            Some(ServerError::Timeout { secs: 1 })
        ),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(session.turns().is_empty());
}

#[test]
fn a_server_that_ignores_max_tokens_has_its_reply_cut() {
    // options() asks for 40 tokens: at most 4096 bytes are kept (BYTES_PER_TOKEN x 40, at
    // least 4 KiB), however much the server sends; the connection is dropped there.
    let (url, _requests) = serve(|_, stream| {
        send(stream, SSE_HEAD);
        let words = piece(&"blah ".repeat(100));
        for _ in 0..20_000 {
            if stream.write_all(words.as_bytes()).is_err() {
                return;
            }
        }
        send(stream, &finish("stop"));
        send(stream, DONE);
    });
    let mut session = session(settings_for(&url));
    let (result, shown) = say(&mut session, "Hi", &AtomicBool::new(false), false);
    let reply = result.expect("a cut reply is still a reply");
    assert!(
        (3000..=4096).contains(&reply.shown.len()),
        "{} bytes kept",
        reply.shown.len()
    );
    assert_eq!(
        shown.concat(),
        reply.shown,
        "what was shown is what is kept"
    );
    assert_eq!(reply.stats.stop_reason, StopReason::MaxTokens);
    assert_eq!(session.turns().len(), 1);
    assert!(session.turns()[0].assistant.len() <= 4096);
}

#[test]
fn keep_alive_comments_do_not_keep_a_reply_going_past_its_deadline() {
    // A comment every 100 ms never trips the read timeout; the total deadline ends it.
    let (url, _requests) = serve(|_, stream| {
        send(stream, SSE_HEAD);
        send(stream, &piece("[joy] Hm"));
        for _ in 0..100 {
            if stream.write_all(b": keep-alive\n\n").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut settings = settings_for(&url);
    settings.read_timeout = Duration::from_secs(5);
    settings.total_timeout = Duration::from_secs(1);
    let mut session = session(settings);
    let start = Instant::now();
    let (result, _) = say(&mut session, "Hi", &AtomicBool::new(false), false);
    let err = result.expect_err("a reply that never ends");
    assert!(
        matches!(
            err.backend::<ServerError>(),
            Some(ServerError::Deadline { secs: 1 })
        ),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "given up at the deadline"
    );
    assert!(session.turns().is_empty());
}

#[test]
fn a_server_that_echoes_the_key_never_gets_it_shown() {
    const KEY: &str = "sk-echo-4242-secret";
    let (url, requests) = serve(|n, stream| {
        let echo = format!("bad header: Authorization: Bearer {KEY}");
        match n {
            0 => status(
                stream,
                400,
                "Bad Request",
                &json!({"error": {"message": echo}}).to_string(),
            ),
            1 => status(stream, 401, "Unauthorized", &echo),
            _ => {
                send(stream, SSE_HEAD);
                send(
                    stream,
                    &format!("data: {}\n\n", json!({"error": {"message": echo}})),
                );
            }
        }
    });
    let mut settings = settings_for(&url);
    settings.api_key = Some(KEY.into());
    let mut session = session(settings);
    for _ in 0..3 {
        let err = say(&mut session, "Hi", &AtomicBool::new(false), false)
            .0
            .expect_err("an error");
        let shown = err.to_string();
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!format!("{err:?}").contains(KEY), "{err:?}");
        assert!(shown.contains("Bearer <api key>"), "{shown}");
    }
    // The key did go to the server (it is the server's own words that were cleaned).
    let request = requests.recv().expect("a request");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[test]
fn raw_completion_streams_the_text_endpoint() {
    let (url, requests) = serve(|_, stream| {
        send(stream, SSE_HEAD);
        for text in ["Once", " upon", " a time"] {
            let chunk = json!({"choices": [{"index": 0, "text": text, "finish_reason": null}]});
            send(stream, &format!("data: {chunk}\n\n"));
        }
        let chunk = json!({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]});
        send(stream, &format!("data: {chunk}\n\n"));
        send(stream, DONE);
    });
    let mut session = session(settings_for(&url));
    let never = AtomicBool::new(false);
    let reply = session
        .complete(
            "Tell",
            &options(),
            &mut ReplyStream {
                cancel: &never,
                on_text: &mut |_| {},
            },
        )
        .expect("completion");
    assert_eq!(reply.text, "Once upon a time");
    assert_eq!(reply.stats.stop_reason, StopReason::MaxTokens);
    let request = requests.recv().expect("request");
    assert_eq!(request.line, "POST /v1/completions HTTP/1.1");
    assert_eq!(request.json()["prompt"], "Tell");
    assert!(session.turns().is_empty(), "a completion is not a turn");
}

fn models_server() -> String {
    let body = r#"{"object":"list","data":[{"id":"llama3.2:latest","object":"model"},{"id":"qwen3:4b","object":"model"}]}"#;
    let (url, _requests) = serve(move |_, stream| status(stream, 200, "OK", body));
    url
}

#[test]
fn the_model_list_is_read() {
    let models = list_models(&settings_for(&models_server())).expect("list");
    assert_eq!(models, ["llama3.2:latest", "qwen3:4b"]);
}

#[test]
fn check_lists_the_servers_models_or_says_why_it_cannot() {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("mascot.ron");
    let check = |base_url: &str| {
        std::fs::write(
            &config,
            format!("(llm: (backend: OpenAi(base_url: \"{base_url}\", model: \"llama3.2\")))"),
        )
        .expect("write");
        let args = ["check", "--config", config.to_str().expect("utf8")];
        let text = desktop_mate(&args, home.path());
        let json = desktop_mate(&[&args[..], &["--json"]].concat(), home.path());
        assert!(text.status.success() && json.status.success());
        (
            String::from_utf8_lossy(&text.stdout).into_owned(),
            json_of(&json),
        )
    };

    let (text, json) = check(&models_server());
    let server = &json["server"];
    assert_eq!(server["reachable"], true, "{json}");
    assert_eq!(server["models"], json!(["llama3.2:latest", "qwen3:4b"]));
    assert_eq!(server["model_listed"], true);
    assert!(
        text.contains("2 model(s): llama3.2:latest, qwen3:4b"),
        "{text}"
    );

    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (text, json) = check(&format!("http://127.0.0.1:{port}/v1"));
    assert_eq!(json["server"]["reachable"], false);
    let error = json["server"]["error"].as_str().expect("error");
    assert!(error.contains("cannot reach"), "{error}");
    assert!(text.contains("cannot reach"), "{text}");
}

#[test]
fn chat_and_bench_run_through_the_server() {
    let (url, _requests) = serve(|_, stream| reply(stream, &["[joy] Hi ", "there"], true));
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("mascot.ron");
    std::fs::write(
        &config,
        format!("(llm: (backend: OpenAi(base_url: \"{url}\", model: \"m\")))"),
    )
    .expect("write");
    let config = config.to_str().expect("utf8");
    let chat = desktop_mate(
        &["chat", "--json", "--config", config, "--prompt", "Hello"],
        home.path(),
    );
    assert!(
        chat.status.success(),
        "{}",
        String::from_utf8_lossy(&chat.stderr)
    );
    let reply = json_of(&chat);
    assert_eq!(reply["text"], "Hi there");
    assert_eq!(reply["emotion"], "joy");
    assert_eq!(reply["prompt_format"], "server");
    assert_eq!(reply["n_threads"], Value::Null);

    let bench = desktop_mate(
        &[
            "bench",
            "--json",
            "--turns",
            "3",
            "--max-tokens",
            "8",
            "--config",
            config,
        ],
        home.path(),
    );
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let report = json_of(&bench);
    assert_eq!(report["backend"], "open_ai");
    assert_eq!(report["turns"], 3);
    assert_eq!(report["threads_sweep"], json!([]));
    assert_eq!(report["ctx_sweep"], json!([]));
    assert!(
        report["skipped"]
            .as_str()
            .is_some_and(|s| s.contains("threads_sweep")),
        "{report}"
    );
    assert!(report["ttft_first_ms"].as_f64().expect("ttft") > 0.0);
    assert_eq!(report["max_tokens_sweep"].as_array().map(Vec::len), Some(3));
}

/// llama.cpp's own server, when scripts/build-llama-tools.sh has built it.
fn llama_server() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path =
        Path::new(&home).join(".cache/desktop-mate/llama-tools/build-0.3.36/bin/llama-server");
    if !path.is_file() {
        crate::support::missing(
            "llama-tools",
            &format!(
                "llama-server {} (scripts/build-llama-tools.sh)",
                path.display()
            ),
        );
    }
    path.is_file().then_some(path)
}

/// Kills the server when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn llama_server_streams_a_reply() {
    let Some(server) = llama_server() else { return };
    let Some(model) = shared_file("models/stories260K.gguf") else {
        eprintln!("../shared/models/stories260K.gguf is absent: skipped");
        return;
    };
    // llama-server has no `--port 0`: take a free port from the system and let it go.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let _child = Child(
        std::process::Command::new(server)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-m"])
            .arg(&model)
            .args(["-c", "256", "-t", "1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start llama-server"),
    );
    let settings = OpenAiSettings::new(&format!("http://127.0.0.1:{port}/v1"), "stories");
    let up = crate::support::wait_for(Duration::from_secs(60), || list_models(&settings).is_ok());
    assert!(
        up,
        "llama-server never came up: {:?}",
        list_models(&settings).err()
    );
    let backend = load_backend(BackendConfig::OpenAi(settings))
        .backend
        .expect("backend");
    // stories260K has no chat template: the raw text endpoint is what it can do.
    let mut session = ChatSession::new(backend, &ChatSettings::default());
    let never = AtomicBool::new(false);
    let mut streamed = String::new();
    let reply = session
        .complete(
            "Once upon a time",
            &GenerateOptions::from_sampling(&SamplingSettings {
                temperature: 0.0,
                max_tokens: 16,
                ..SamplingSettings::default()
            }),
            &mut ReplyStream {
                cancel: &never,
                on_text: &mut |piece| streamed.push_str(piece),
            },
        )
        .expect("a streamed reply from llama-server");
    assert!(!reply.text.is_empty());
    assert_eq!(streamed, reply.text);
    assert!(reply.stats.generated_tokens > 0, "{:?}", reply.stats);
    assert!(reply.stats.decode_tps > 0.0, "{:?}", reply.stats);
    // And the chat endpoint (llama-server formats the messages with its fallback template).
    let chat = session
        .send(
            &PersonaSettings::default(),
            "Hello",
            &GenerateOptions::from_sampling(&SamplingSettings {
                temperature: 0.0,
                max_tokens: 16,
                ..SamplingSettings::default()
            }),
            &mut ReplyStream {
                cancel: &never,
                on_text: &mut |_| {},
            },
        )
        .expect("a chat reply from llama-server");
    assert!(chat.stats.generated_tokens > 0, "{:?}", chat.stats);
    assert_eq!(session.turns().len(), 1);
}

#[derive(bevy::prelude::Resource, Default)]
struct Finished(Vec<desktop_mate::llm::ReplyFinished>);

fn record_finished(
    mut finished: bevy::prelude::ResMut<Finished>,
    mut done: bevy::prelude::MessageReader<desktop_mate::llm::ReplyFinished>,
) {
    finished.0.extend(done.read().cloned());
}

#[test]
fn the_app_chats_through_the_server_and_shows_its_errors() {
    use crate::support::update_until;
    use bevy::prelude::*;
    use desktop_mate::llm::{ChatHistory, LlmStatus, LlmTimings, SendChat};

    let (url, _requests) = serve(|n, stream| match n {
        0 => reply(stream, &["[joy] Hel", "lo!"], true),
        _ => status(
            stream,
            500,
            "Internal Server Error",
            r#"{"error":{"message":"the model crashed"}}"#,
        ),
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    std::fs::write(
        &path,
        format!("(llm: (backend: OpenAi(base_url: \"{url}\", model: \"m\")))"),
    )
    .expect("write");
    let mut loaded = desktop_mate::config::load_with(
        Some(&path),
        None,
        desktop_mate::config::Overrides::default(),
    );
    loaded.settings.chat.history_file = Some(dir.path().join("history.jsonl"));
    let mut app = desktop_mate::headless_app(loaded);
    app.init_resource::<Finished>()
        .add_systems(Last, record_finished);
    let ready = update_until(&mut app, Duration::from_secs(30), |w| {
        *w.resource::<LlmStatus>() == LlmStatus::Ready
    });
    assert!(ready, "status: {:?}", app.world().resource::<LlmStatus>());
    let timings = app.world().resource::<LlmTimings>();
    assert!(timings.plan.is_none(), "no load plan for a server");
    assert_eq!(timings.n_ctx, 0);

    app.world_mut().write_message(SendChat("hi".into()));
    assert!(update_until(&mut app, Duration::from_secs(30), |w| {
        !w.resource::<Finished>().0.is_empty()
    }));
    let finished = app.world().resource::<Finished>().0[0].clone();
    assert_eq!(finished.text, "Hello!");
    assert_eq!(finished.emotion, Some(Emotion::Joy));
    assert_eq!(app.world().resource::<ChatHistory>().turns.len(), 1);
    assert!(
        app.world()
            .resource::<LlmTimings>()
            .last_reply
            .as_ref()
            .is_some_and(|stats| stats.ttft_ms > 0.0)
    );

    app.world_mut().write_message(SendChat("again".into()));
    assert!(update_until(&mut app, Duration::from_secs(30), |w| {
        w.resource::<ChatHistory>().last_error.is_some()
            && *w.resource::<LlmStatus>() == LlmStatus::Ready
    }));
    let history = app.world().resource::<ChatHistory>();
    let error = history.last_error.as_deref().expect("shown");
    assert!(
        error.contains("HTTP 500") && error.contains("the model crashed"),
        "{error}"
    );
    assert_eq!(history.turns.len(), 1, "the failed message is not a turn");
    assert!(history.streaming.is_none());
}

/// A session with the server at `url` and a memory (by words) in a new temporary folder.
fn session_with_memory(url: &str) -> (ChatSession, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = desktop_mate::config::Settings::default();
    settings.chat.history_file = Some(dir.path().join("history.jsonl"));
    let mut session = session(settings_for(url));
    session.set_memory(desktop_mate::memory::open(&settings).expect("the memory opens"));
    (session, dir)
}

/// With a server backend the notes are one more chat request: the instructions as the system
/// message, the conversation as the user's. A server's good notes are kept with their topics,
/// the lines it invents are dropped, and a fact that changed replaces the old one (same
/// topic) instead of contradicting it.
#[test]
fn a_servers_notes_are_kept_checked_and_a_changed_fact_replaces_the_old_one() {
    use desktop_mate::llm::conversation::session::Notes;
    use desktop_mate::memory::store::{MemoryKind, MemoryStore};
    let (url, requests) = serve(|n, stream| match n {
        0 => reply(stream, &["[joy] Nice to meet you, Léa!"], true),
        1 => reply(
            stream,
            &[
                "FACT job: The user works nights at the hospital.\n",
                "FACT cat: The user has a cat called Miso.\n",
                "FACT car: The user drives a red Ferrari.\n",
                "EPISODE: Léa introduced herself: night shifts at the hospital, her cat Miso.\n",
            ],
            true,
        ),
        2 => reply(stream, &["[surprised] A new job, congratulations!"], true),
        _ => reply(
            stream,
            &["FACT job: The user now works days at the bakery.\n"],
            true,
        ),
    });
    let (mut session, dir) = session_with_memory(&url);
    let never = AtomicBool::new(false);
    let persona = PersonaSettings::default();

    let (result, _) = say(
        &mut session,
        "I'm Léa, I work nights at the hospital and my cat Miso keeps me company.",
        &never,
        false,
    );
    result.expect("reply");
    requests.recv().expect("the reply's request");
    let notes = session
        .take_notes(&persona, &options(), &never)
        .expect("notes");
    let Notes::Written(extracted, _) = notes else {
        panic!("the server was asked: {notes:?}");
    };
    assert_eq!(
        (extracted.added, extracted.replaced, extracted.dropped),
        (3, 0, 1),
        "two facts and the episode; the Ferrari was never mentioned"
    );
    let body = requests.recv().expect("the notes' request").json();
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "no conversation history: {body}");
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("FACT <topic>:"))
    );
    let transcript = messages[1]["content"].as_str().expect("content");
    assert!(transcript.contains("User: I'm Léa, I work nights at the hospital"));
    assert!(transcript.contains("Assistant: Nice to meet you, Léa!"));
    assert_eq!(body["temperature"], 0.0, "notes are greedy");

    let database = dir.path().join("memory.sqlite");
    let job = || {
        let store = MemoryStore::open(&database).expect("open").store;
        let all = store.list("Mate").expect("list");
        let jobs: Vec<String> = all
            .iter()
            .filter(|m| m.key.as_deref() == Some("job"))
            .map(|m| m.text.clone())
            .collect();
        (all, jobs)
    };
    let (all, jobs) = job();
    assert_eq!(jobs, ["The user works nights at the hospital."]);
    assert!(
        all.iter()
            .any(|m| m.kind == MemoryKind::Episode && m.text.contains("Miso"))
    );
    assert!(!all.iter().any(|m| m.text.contains("Ferrari")));

    let (result, _) = say(
        &mut session,
        "Big news: I changed jobs, I now work days at the bakery.",
        &never,
        false,
    );
    result.expect("reply");
    let notes = session
        .take_notes(&persona, &options(), &never)
        .expect("notes");
    let Notes::Written(extracted, _) = notes else {
        panic!("the server was asked: {notes:?}");
    };
    assert_eq!((extracted.added, extracted.replaced), (0, 1));
    let (_, jobs) = job();
    assert_eq!(
        jobs,
        ["The user now works days at the bakery."],
        "the changed fact replaced the old one"
    );
}

/// A memory already put in front of an earlier message still in the prompt is not put there
/// again: the second question about the same fact carries no memory block (its tokens would
/// be evaluated again for nothing), while the first one did.
#[test]
fn a_memory_already_in_the_prompt_is_not_repeated() {
    let (url, requests) = serve(|_, stream| reply(stream, &["[joy] Sure."], true));
    let (mut session, _dir) = session_with_memory(&url);
    let never = AtomicBool::new(false);
    let last_user = |body: &Value| -> String {
        let messages = body["messages"].as_array().expect("messages");
        messages[messages.len() - 1]["content"]
            .as_str()
            .expect("content")
            .to_owned()
    };
    for message in [
        "I have a cat called Zyxquorp and she sleeps all day",
        "tell me about Zyxquorp please",
        "what does Zyxquorp do all day?",
    ] {
        let (result, _) = say(&mut session, message, &never, false);
        result.expect("reply");
        if message.starts_with("I have") {
            // While the statement is in the prompt it is not recalled either
            // (memory::what_the_prompt_holds_is_not_recalled_…): a new conversation.
            session.clear();
        }
    }
    let bodies: Vec<Value> = (0..3)
        .map(|_| requests.recv().expect("request").json())
        .collect();
    assert!(!last_user(&bodies[0]).contains("remember"), "nothing yet");
    let first = last_user(&bodies[1]);
    assert!(
        first.contains("Zyxquorp and she sleeps")
            && first.ends_with("tell me about Zyxquorp please"),
        "recalled in front of the question: {first}"
    );
    assert_eq!(
        last_user(&bodies[2]),
        "what does Zyxquorp do all day?",
        "already in the prompt with the turn before"
    );
    let messages = bodies[2]["messages"].as_array().expect("messages");
    assert!(
        messages.iter().any(|m| m["content"]
            .as_str()
            .is_some_and(|c| c.contains("Zyxquorp and she sleeps"))),
        "the earlier turn still carries it"
    );
}
