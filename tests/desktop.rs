//! The mascot window on a real X display (Xvfb in CI): clicks on transparent pixels pass
//! through, the avatar catches them, and the pointer is followed while clicks pass through
//! (X11 sends the window no cursor events then, so the app must ask the server).

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt;

struct Mascot {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Mascot {
    /// Waits for a log line containing `needle`; returns it.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Mascot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn clicks_pass_through_transparent_pixels_and_the_avatar_catches_them() {
    if std::env::var_os("DISPLAY").is_none() {
        eprintln!("no DISPLAY: run the tests through scripts/test.sh (Xvfb) for rendering tests");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("mascot.ron");
    // Without a window manager (Xvfb) the window goes exactly where asked.
    std::fs::write(
        &config,
        "(window: (width: 300, height: 450, position: Some((200, 150))))",
    )
    .expect("write settings");
    let mut child = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
        .args(["--config", config.to_str().expect("utf8"), "run"])
        .env("HOME", dir.path())
        .env("RUST_LOG", "info,desktop_mate::avatar::window=debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the mascot");
    let stderr = child.stderr.take().expect("stderr");
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut mascot = Mascot {
        child,
        lines,
        log: Vec::new(),
    };
    let ready = mascot.wait_for("hit mask ready", Duration::from_secs(60));
    assert!(ready.is_some(), "no hit mask: {:#?}", mascot.log);

    let (conn, screen) = x11rb::connect(None).expect("X display");
    let root = conn.setup().roots[screen].root;
    let warp = |x: i16, y: i16| {
        conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, x, y)
            .expect("warp");
        conn.flush().expect("flush");
    };
    // The chat panel is open at the bottom: use the transparent top-left corner, then the
    // avatar's chest in the middle of the window.
    for round in 0..2 {
        warp(200 + 10, 150 + 10);
        let through = mascot.wait_for("clicks pass through", Duration::from_secs(20));
        assert!(through.is_some(), "round {round}: corner {:#?}", mascot.log);
        warp(200 + 150, 150 + 170);
        let caught = mascot.wait_for("window catches clicks", Duration::from_secs(20));
        assert!(caught.is_some(), "round {round}: avatar {:#?}", mascot.log);
        assert!(
            caught.is_some_and(|line| line.contains("Some(Vec2(150.0, 170.0))")),
            "the pointer position is relative to the window"
        );
        // Where the F3 overlay is drawn when shown (top-right): hidden, it takes no clicks.
        warp(200 + 290, 150 + 10);
        let through = mascot.wait_for("clicks pass through", Duration::from_secs(20));
        assert!(
            through.is_some(),
            "round {round}: hidden overlay {:#?}",
            mascot.log
        );
        warp(200 + 150, 150 + 170);
        assert!(
            mascot
                .wait_for("window catches clicks", Duration::from_secs(20))
                .is_some()
        );
    }
}
