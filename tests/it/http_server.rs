//! The tests' one HTTP/1.1 server on 127.0.0.1: [`Server`] accepts connections, reads each
//! request ([`read_request`]) and hands it to the test's answer; [`TestServer`] is the
//! scripted file server of the download tests built on it, and the OpenAI tests answer with
//! server-sent events through it.
//!
//! Hand-written on purpose (only the client must be a real library): each test needs precise
//! misbehaviour — dropping the connection mid-body, ignoring Range, never answering, a stream
//! cut short or malformed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the server answers one request (scripted per request, in order; `Normal` after that).
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200, or 206 for `Range: bytes=N-`, or 416 past the end.
    Normal,
    /// Always 200 with the whole file, whatever the Range.
    IgnoreRange,
    /// Like `Normal`, but close the connection after sending this many body bytes.
    DropAfter(usize),
    /// Like `Normal`, but send the body in small chunks with a pause between them.
    Slow { chunk: usize, pause: Duration },
    /// Answer with this status and an empty body.
    Status(u16),
    /// 302 to this path on the same server.
    Redirect(String),
    /// Read the request and never answer (until the server is dropped).
    Silent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub path: String,
    pub range: Option<String>,
}

struct State {
    script: VecDeque<Behaviour>,
    requests: Vec<Recorded>,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST /v1/chat/completions HTTP/1.1`
    pub line: String,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The request target (`/v1/models`).
    pub fn path(&self) -> &str {
        self.line.split_whitespace().nth(1).unwrap_or("/")
    }

    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Reads one request (line, headers, a `Content-Length` body); `None` when the client closed
/// or sent something else.
pub fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    std::io::Read::read_exact(&mut reader, &mut body).ok()?;
    Some(Request {
        line: line.trim_end().to_owned(),
        headers,
        body,
    })
}

/// What a test answers with: the connection's number (from 0, in the order they were
/// accepted), its request, the stream to write the answer to (dropping it closes the
/// connection: the end of a close-delimited body) and the server's stop flag (for answers
/// that wait).
pub type Answer = dyn Fn(usize, &Request, &mut TcpStream, &AtomicBool) + Send + Sync;

/// A server on 127.0.0.1 answering each connection on its own thread; stops accepting when
/// dropped (or never, after [`Server::detach`]).
pub struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(
        answer: impl Fn(usize, &Request, &mut TcpStream, &AtomicBool) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::new(answer);
        let accepting = stop.clone();
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                if accepting.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let (answer, stop) = (answer.clone(), accepting.clone());
                thread::spawn(move || {
                    if let Some(request) = read_request(&mut stream) {
                        answer(n, &request, &mut stream, &stop);
                        let _ = stream.flush();
                    }
                });
            }
        });
        Self { port, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Keeps the server running for the rest of the test binary.
    pub fn detach(self) -> u16 {
        let port = self.port;
        std::mem::forget(self);
        port
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A server answering each `(path, bytes)` of `files` whole (200 with its length) and any
/// other path with 404: a catalogue's host, for the download tests.
pub fn serve_files(files: Vec<(String, Vec<u8>)>) -> Server {
    Server::start(move |_, request, stream, _| {
        let Some((_, body)) = files.iter().find(|(path, _)| path == request.path()) else {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            return;
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
    })
}

/// The scripted file server of the download tests: `content` at any path, each request
/// answered by the next [`Behaviour`] of the script.
pub struct TestServer {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl TestServer {
    pub fn start(content: Vec<u8>, script: Vec<Behaviour>) -> Self {
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            requests: Vec::new(),
        }));
        let shared = state.clone();
        let server = Server::start(move |_, request, stream, stop| {
            serve_file(request, stream, &content, &shared, stop);
        });
        Self { server, state }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }
}

fn serve_file(
    request: &Request,
    stream: &mut TcpStream,
    content: &[u8],
    state: &Mutex<State>,
    stop: &AtomicBool,
) {
    let range = request.header("range").map(str::to_owned);
    let behaviour = {
        let Ok(mut state) = state.lock() else { return };
        state.requests.push(Recorded {
            path: request.path().to_owned(),
            range: range.clone(),
        });
        state.script.pop_front().unwrap_or(Behaviour::Normal)
    };

    let head = |status: &str, extra: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n")
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let total = content.len();
    let (header, body): (String, &[u8]) = match &behaviour {
        Behaviour::Status(code) => (head(&format!("{code} Status"), "", 0), &[]),
        Behaviour::Redirect(to) => (head("302 Found", &format!("Location: {to}\r\n"), 0), &[]),
        Behaviour::Silent => {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        Behaviour::IgnoreRange => (head("200 OK", "", total), content),
        _ => match start {
            Some(n) if n >= total => (
                head(
                    "416 Range Not Satisfiable",
                    &format!("Content-Range: bytes */{total}\r\n"),
                    0,
                ),
                &[],
            ),
            Some(n) => (
                head(
                    "206 Partial Content",
                    &format!("Content-Range: bytes {n}-{}/{total}\r\n", total - 1),
                    total - n,
                ),
                &content[n..],
            ),
            None => (head("200 OK", "", total), content),
        },
    };
    if stream.write_all(header.as_bytes()).is_err() {
        return;
    }
    match behaviour {
        Behaviour::DropAfter(n) => {
            let _ = stream.write_all(&body[..n.min(body.len())]);
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Both);
        }
        Behaviour::Slow { chunk, pause } => {
            for piece in body.chunks(chunk) {
                if stop.load(Ordering::Relaxed) || stream.write_all(piece).is_err() {
                    return;
                }
                thread::sleep(pause);
            }
        }
        _ => {
            let _ = stream.write_all(body);
        }
    }
    let _ = stream.flush();
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
