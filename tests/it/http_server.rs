//! A small scripted HTTP/1.1 file server on 127.0.0.1 for the download tests.
//!
//! Hand-written on purpose (only the client must be a real library): each test needs precise
//! misbehaviour — dropping the connection mid-body, ignoring Range, never answering.

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

pub struct TestServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    pub fn start(content: Vec<u8>, script: Vec<Behaviour>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let content = Arc::new(content);
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (content, state, stop) = (content.clone(), state.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (content, state, stop) = (content.clone(), state.clone(), stop.clone());
                    thread::spawn(move || serve(stream, &content, &state, &stop));
                }
            });
        }
        Self { port, state, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut stream: TcpStream, content: &[u8], state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
    let behaviour = {
        let mut state = state.lock().unwrap();
        state.requests.push(Recorded {
            path,
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
