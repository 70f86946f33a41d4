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
                    if line.contains("desktop_mate") || line.contains("panicked") {
                        self.log.push(line.clone());
                    }
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

/// The X pointer is shared: one test at a time.
static POINTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts the mascot with these settings and waits until its hit mask exists.
fn start(dir: &std::path::Path, settings: &str) -> Mascot {
    let config = dir.join("mascot.ron");
    std::fs::write(&config, settings).expect("write settings");
    let mut child = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
        .args(["--config", config.to_str().expect("utf8"), "run"])
        .env("HOME", dir)
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
    mascot
}

#[test]
fn clicks_pass_through_transparent_pixels_and_the_avatar_catches_them() {
    if std::env::var_os("DISPLAY").is_none() {
        eprintln!("no DISPLAY: run the tests through scripts/test.sh (Xvfb) for rendering tests");
        return;
    }
    let _pointer = POINTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("temp dir");
    // Without a window manager (Xvfb) the window goes exactly where asked.
    let mut mascot = start(
        dir.path(),
        "(window: (width: 300, height: 450, position: Some((200, 150))))",
    );

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

/// Real input through XTEST: the wheel over the avatar scales the window, dragging the
/// overlay by its title moves it; both end up in the settings file.
#[test]
fn wheel_scale_and_overlay_position_are_saved_to_settings() {
    use x11rb::protocol::xtest::ConnectionExt as _;
    if std::env::var_os("DISPLAY").is_none() {
        eprintln!("no DISPLAY: run the tests through scripts/test.sh (Xvfb) for rendering tests");
        return;
    }
    let _pointer = POINTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mascot = start(
        dir.path(),
        "(window: (width: 800, height: 700, position: Some((100, 100))),
          diagnostics: (overlay_visible: true))",
    );
    let (conn, screen) = x11rb::connect(None).expect("X display");
    let root = conn.setup().roots[screen].root;
    let input = |kind: u8, detail: u8, x: i16, y: i16| {
        conn.xtest_fake_input(kind, detail, 0, root, x, y, 0)
            .expect("fake input");
        conn.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(60));
    };
    const PRESS: u8 = 4;
    const RELEASE: u8 = 5;
    const MOTION: u8 = 6;

    // The wheel over the avatar's body (middle of the window).
    input(MOTION, 0, 500, 450);
    assert!(
        mascot
            .wait_for("window catches clicks", Duration::from_secs(20))
            .is_some()
    );
    input(PRESS, 4, 500, 450);
    input(RELEASE, 4, 500, 450);
    let saved = mascot.wait_for("scale 1.10 saved", Duration::from_secs(20));
    assert!(saved.is_some(), "{:#?}", mascot.log);

    // Drag the overlay by its title bar (top-right of the window) down and left.
    input(MOTION, 0, 100 + 700, 100 + 18);
    std::thread::sleep(Duration::from_millis(500));
    input(PRESS, 1, 100 + 700, 100 + 18);
    for step in 1..=10i16 {
        input(MOTION, 0, 100 + 700 - 30 * step, 100 + 18 + 30 * step);
    }
    input(RELEASE, 1, 400, 418);
    let moved = mascot.wait_for("overlay position", Duration::from_secs(20));
    assert!(moved.is_some(), "{:#?}", mascot.log);

    let text = std::fs::read_to_string(dir.path().join("mascot.ron")).expect("settings");
    let saved = desktop_mate::config::parse_settings(&text, std::path::Path::new("mascot.ron"))
        .expect("valid settings");
    assert!((saved.window.scale - 1.1).abs() < 1e-3, "{text}");
    let (x, y) = saved
        .diagnostics
        .overlay_position
        .expect("overlay position saved");
    assert!(
        y > 50.0 && x < 500.0,
        "moved down and left of the top-right corner: ({x}, {y})"
    );
    assert!(
        saved.diagnostics.overlay_visible,
        "the rest of the file is kept"
    );
}
