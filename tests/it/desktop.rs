//! The mascot window on a real X display (Xvfb in CI): clicks on transparent pixels pass
//! through, the avatar catches them, and the pointer is followed while clicks pass through
//! (X11 sends the window no cursor events then, so the app must ask the server).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;

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

/// The shared X pointer for one test, or `None` (with a note) without a display.
fn x_display() -> Option<std::sync::MutexGuard<'static, ()>> {
    if !crate::support::display_available() {
        return None;
    }
    Some(crate::support::one_window_at_a_time())
}

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
    let Some(_pointer) = x_display() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // Without a window manager (Xvfb) the window goes exactly where asked.
    let mut mascot = start(
        dir.path(),
        "(window: (width: 300, height: 450, position: Some((200, 150))))",
    );

    let input = FakeInput::new();
    let warp = |x: i16, y: i16| input.send(MOTION, 0, x, y);
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

const PRESS: u8 = 4;
const RELEASE: u8 = 5;
const MOTION: u8 = 6;

/// Real input through XTEST, as a user's mouse would send it.
struct FakeInput {
    conn: x11rb::rust_connection::RustConnection,
    root: u32,
}

impl FakeInput {
    fn new() -> Self {
        let (conn, screen) = x11rb::connect(None).expect("X display");
        let root = conn.setup().roots[screen].root;
        Self { conn, root }
    }

    fn send(&self, kind: u8, detail: u8, x: i16, y: i16) {
        use x11rb::protocol::xtest::ConnectionExt as _;
        self.conn
            .xtest_fake_input(kind, detail, 0, self.root, x, y, 0)
            .expect("fake input");
        self.conn.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(60));
    }
}

/// What the app saved of its own state (`state.ron` beside the settings).
fn saved_state(dir: &std::path::Path) -> desktop_mate::config::AppState {
    let file = desktop_mate::config::StateFile::beside(Some(&dir.join("mascot.ron")));
    let (state, problem) = file.load();
    assert_eq!(problem, None);
    state
}

/// The user's settings file is never written by a drag or a wheel.
fn settings_untouched(dir: &std::path::Path, written: &str) {
    let now = std::fs::read_to_string(dir.join("mascot.ron")).expect("settings");
    assert_eq!(
        now, written,
        "mascot.ron is the user's: the app does not rewrite it"
    );
}

#[test]
fn the_wheel_over_the_avatar_scales_the_window_and_saves_the_scale_in_the_state_file() {
    let Some(_pointer) = x_display() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let written = "// my mascot\n(window: (width: 400, height: 600, position: Some((100, 100))))";
    let mut mascot = start(dir.path(), written);
    let input = FakeInput::new();
    // A transparent corner first, then the avatar's face (the chat panel is open below it).
    input.send(MOTION, 0, 100 + 10, 100 + 10);
    let through = mascot.wait_for("clicks pass through", Duration::from_secs(20));
    assert!(through.is_some(), "{:#?}", mascot.log);
    input.send(MOTION, 0, 100 + 200, 100 + 150);
    let caught = mascot.wait_for("window catches clicks", Duration::from_secs(20));
    assert!(caught.is_some(), "{:#?}", mascot.log);
    // The window's new input shape reaches the X server a frame or two later.
    std::thread::sleep(Duration::from_millis(500));
    input.send(PRESS, 4, 100 + 200, 100 + 150);
    input.send(RELEASE, 4, 100 + 200, 100 + 150);
    let saved = mascot.wait_for("saved", Duration::from_secs(20));
    assert!(saved.is_some(), "{:#?}", mascot.log);
    // One notch is 1.1x; XTEST's button 4 can arrive as two wheel events (core + XInput2).
    let scale = saved_state(dir.path())
        .window_scale
        .expect("scale saved in state.ron");
    let notches = (scale.ln() / 1.1f32.ln()).round();
    assert!(
        (1.0..=2.0).contains(&notches) && (scale - 1.1f32.powf(notches)).abs() < 1e-3,
        "scale {scale} is 1.1 per notch"
    );
    settings_untouched(dir.path(), written);
}

#[test]
fn the_overlay_dragged_by_its_title_keeps_its_new_place_in_the_state_file() {
    let Some(_pointer) = x_display() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // Tall enough for the whole overlay to move down 100 px inside the window.
    let written = "(window: (width: 800, height: 900, position: Some((100, 100))),
          diagnostics: (overlay_visible: true))";
    let mut mascot = start(dir.path(), written);
    let input = FakeInput::new();
    // Press on the title bar (top-right of the window) and move left, as a hand would.
    input.send(MOTION, 0, 100 + 700, 100 + 18);
    std::thread::sleep(Duration::from_millis(700));
    input.send(PRESS, 1, 100 + 700, 100 + 18);
    std::thread::sleep(Duration::from_millis(300));
    for step in 1..=10i16 {
        input.send(MOTION, 0, 100 + 700 - 45 * step, 100 + 18 + 10 * step);
    }
    std::thread::sleep(Duration::from_millis(300));
    input.send(RELEASE, 1, 100 + 250, 100 + 118);
    let moved = mascot.wait_for("overlay position", Duration::from_secs(20));
    assert!(moved.is_some(), "{:#?}", mascot.log);
    let (x, y) = saved_state(dir.path())
        .overlay_position
        .expect("overlay position saved in state.ron");
    assert!(
        x < 300.0 && y > 30.0,
        "moved left and down from the top-right corner: ({x}, {y})"
    );
    settings_untouched(dir.path(), written);
}
