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
    /// Whether a line containing `needle` was logged already (while starting) or comes soon.
    fn logged(&mut self, needle: &str, timeout: Duration) -> bool {
        self.log.iter().any(|line| line.contains(needle))
            || self.wait_for(needle, timeout).is_some()
    }

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
    start_with(dir, settings, &[])
}

/// [`start_with`] and these environment variables.
fn start_with(dir: &std::path::Path, settings: &str, options: &[&str]) -> Mascot {
    start_with_env(dir, settings, options, &[])
}

/// [`start`] with more command-line options. HOME and XDG_CONFIG_HOME point into `dir`, so
/// nothing the app writes for the desktop (autostart entry) leaves it.
fn start_with_env(
    dir: &std::path::Path,
    settings: &str,
    options: &[&str],
    env: &[(&str, &str)],
) -> Mascot {
    let config = dir.join("mascot.ron");
    std::fs::write(&config, settings).expect("write settings");
    let mut child = Command::new(env!("CARGO_BIN_EXE_desktop-mate"))
        .args(["--config", config.to_str().expect("utf8")])
        .args(options)
        .arg("run")
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .envs(env.iter().copied())
        .env(
            "RUST_LOG",
            "info,desktop_mate::avatar::window=debug,desktop_mate::ui::panel_area=debug,\
             desktop_mate::motion=debug",
        )
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
    // The chat panel is open at the bottom: use the transparent top-left corner, then the
    // avatar's chest in the middle of the window.
    const ORIGIN: (i16, i16) = (200, 150);
    const CORNER: (i16, i16) = (210, 160);
    const AVATAR: (i16, i16) = (350, 320);
    // Where the F3 overlay is drawn when shown (top-right): hidden, it takes no clicks.
    const OVERLAY: (i16, i16) = (490, 160);
    const THROUGH: &str = "clicks pass through";
    const CAUGHT: &str = "window catches clicks";
    for round in 0..2 {
        // Each state is awaited at its place relative to the window (ORIGIN).
        let through = move_and_wait(&input, &mut mascot, ORIGIN, CORNER, THROUGH, AVATAR, CAUGHT);
        assert!(through.is_some(), "round {round}: corner {:#?}", mascot.log);
        let caught = move_and_wait(&input, &mut mascot, ORIGIN, AVATAR, CAUGHT, CORNER, THROUGH);
        assert!(
            caught.is_some(),
            "round {round}: the avatar catches, the pointer relative to the window {:#?}",
            mascot.log
        );
        let through = move_and_wait(
            &input,
            &mut mascot,
            ORIGIN,
            OVERLAY,
            THROUGH,
            AVATAR,
            CAUGHT,
        );
        assert!(
            through.is_some(),
            "round {round}: hidden overlay {:#?}",
            mascot.log
        );
        let caught = move_and_wait(
            &input,
            &mut mascot,
            ORIGIN,
            AVATAR,
            CAUGHT,
            OVERLAY,
            THROUGH,
        );
        assert!(
            caught.is_some(),
            "round {round}: avatar again {:#?}",
            mascot.log
        );
    }
}

/// Moves the pointer to `to` (XTEST) and waits for the log line `needle` (the state `to`
/// gives) at `to` relative to the window's `origin`: a line of that state at another place (a
/// change the app logged before this move) is reported and passed over. The app reads the
/// pointer every frame and logs each change, so a change it misses means the fake motion never
/// reached the server's pointer (seen now and then in full parallel runs, for any of the
/// moves): up to three times, go through `via` (a place of the other state, `via_needle`) and
/// back, before calling it a failure.
fn move_and_wait(
    input: &FakeInput,
    mascot: &mut Mascot,
    origin: (i16, i16),
    to: (i16, i16),
    needle: &str,
    via: (i16, i16),
    via_needle: &str,
) -> Option<String> {
    let at = format!("Some(Vec2({}.0, {}.0))", to.0 - origin.0, to.1 - origin.1);
    for attempt in 0..3 {
        if attempt > 0 {
            eprintln!("no `{needle}` after moving to {to:?}: again through {via:?}");
            input.send(MOTION, 0, via.0, via.1);
            mascot.wait_for(via_needle, Duration::from_secs(5));
        }
        input.send(MOTION, 0, to.0, to.1);
        let deadline = Instant::now() + Duration::from_secs(7);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(line) = mascot.wait_for(needle, left) else {
                break;
            };
            if line.contains(&at) {
                return Some(line);
            }
            eprintln!("`{needle}` logged elsewhere than {at}, passed over: {line}");
        }
    }
    None
}

/// A first start has no saved place: the OS places the window (`Automatic`) and Bevy knows no
/// position until it moves. The app reads the real one, so the desktop pointer maps into the
/// window and the avatar catches clicks without the window ever being dragged.
#[test]
fn a_window_placed_by_the_os_still_maps_the_desktop_pointer() {
    let Some(_pointer) = x_display() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mascot = start(dir.path(), "(window: (width: 300, height: 450))");
    assert!(
        mascot.logged("window placed by the OS at", Duration::from_secs(20)),
        "{:#?}",
        mascot.log
    );
    let (conn, _) = connect_x();
    let (_, (x, y)) = mascot_window(&conn).expect("the mascot's window");
    let input = FakeInput::new();
    let caught = move_and_wait(
        &input,
        &mut mascot,
        (x, y),
        (x + 150, y + 170),
        "window catches clicks",
        (x + 10, y + 10),
        "clicks pass through",
    );
    assert!(
        caught.is_some(),
        "the avatar under the pointer catches clicks: {:#?}",
        mascot.log
    );
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
        let (conn, screen) = connect_x();
        let root = conn.setup().roots[screen].root;
        Self { conn, root }
    }

    /// A key event sent at once, without the pause [`FakeInput::send`] leaves after it.
    fn send_now(&self, kind: u8, detail: u8) {
        use x11rb::protocol::xtest::ConnectionExt as _;
        self.conn
            .xtest_fake_input(kind, detail, 0, self.root, 0, 0, 0)
            .expect("fake input");
        self.conn.flush().expect("flush");
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

/// A connection to the test's X display; retried, as the server now and then refuses one
/// while a mascot window starts rendering on a 2-core machine.
fn connect_x() -> (x11rb::rust_connection::RustConnection, usize) {
    let mut tries = 0;
    loop {
        match x11rb::connect(None) {
            Ok(connection) => return connection,
            Err(err) if tries < 10 => {
                tries += 1;
                eprintln!("X connection refused ({err}), retrying");
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(err) => panic!("X display: {err}"),
        }
    }
}

/// Keycodes of these keysyms in the server's current keymap.
fn keycodes(conn: &impl Connection, keysyms: &[u32]) -> Vec<u8> {
    use x11rb::protocol::xproto::ConnectionExt as _;
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = conn
        .get_keyboard_mapping(min, max - min + 1)
        .expect("keymap")
        .reply()
        .expect("keymap reply");
    let per = usize::from(map.keysyms_per_keycode);
    keysyms
        .iter()
        .map(|sym| {
            let index = map
                .keysyms
                .iter()
                .position(|s| s == sym)
                .unwrap_or_else(|| panic!("keysym {sym:#x} not in the keymap"));
            min + u8::try_from(index / per).expect("keycode")
        })
        .collect()
}

const KEY_PRESS: u8 = 2;
const KEY_RELEASE: u8 = 3;
const CONTROL_L: u32 = 0xffe3;
const SHIFT_L: u32 = 0xffe1;
const ALT_L: u32 = 0xffe9;
const KEY_C: u32 = 0x63;

impl FakeInput {
    /// Presses the keys in order and releases them in reverse, as fingers would.
    fn chord(&self, keysyms: &[u32]) {
        let codes = keycodes(&self.conn, keysyms);
        for code in &codes {
            self.send(KEY_PRESS, *code, 0, 0);
        }
        for code in codes.iter().rev() {
            self.send(KEY_RELEASE, *code, 0, 0);
        }
    }
}

#[test]
fn the_click_through_hotkey_pressed_through_xtest_makes_the_whole_window_catch_clicks() {
    let Some(_pointer) = x_display() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mascot = start(
        dir.path(),
        "(window: (width: 300, height: 450, position: Some((200, 150))))",
    );
    let input = FakeInput::new();
    // A transparent corner: clicks pass through.
    input.send(MOTION, 0, 200 + 10, 150 + 10);
    let through = mascot.wait_for("clicks pass through", Duration::from_secs(20));
    assert!(through.is_some(), "{:#?}", mascot.log);

    input.chord(&[CONTROL_L, ALT_L, SHIFT_L, KEY_C]);
    let off = mascot.wait_for("click-through off", Duration::from_secs(20));
    assert!(
        off.is_some(),
        "the hotkey reached the app: {:#?}",
        mascot.log
    );
    // Same transparent corner: now the window catches the click.
    input.send(MOTION, 0, 200 + 12, 150 + 12);
    let caught = mascot.wait_for("window catches clicks", Duration::from_secs(20));
    assert!(caught.is_some(), "{:#?}", mascot.log);

    input.chord(&[CONTROL_L, ALT_L, SHIFT_L, KEY_C]);
    let on = mascot.wait_for("click-through on", Duration::from_secs(20));
    assert!(on.is_some(), "{:#?}", mascot.log);
    input.send(MOTION, 0, 200 + 10, 150 + 10);
    let through = mascot.wait_for("clicks pass through", Duration::from_secs(20));
    assert!(through.is_some(), "{:#?}", mascot.log);
}

#[test]
fn a_hotkey_another_app_holds_is_a_log_line_and_the_others_still_register() {
    let Some(_pointer) = x_display() else {
        return;
    };
    use x11rb::protocol::xproto::{ConnectionExt as _, GrabMode, ModMask};
    // Another app holds Ctrl+Alt+Shift+C.
    let (holder, screen) = connect_x();
    let root = holder.setup().roots[screen].root;
    let code = keycodes(&holder, &[KEY_C])[0];
    holder
        .grab_key(
            false,
            root,
            ModMask::CONTROL | ModMask::SHIFT | ModMask::M1,
            code,
            GrabMode::ASYNC,
            GrabMode::ASYNC,
        )
        .expect("grab")
        .check()
        .expect("the test holds the key");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mascot = start(dir.path(), "()");
    let log = mascot.log.join("\n");
    assert!(
        log.contains("already taken by another app")
            && log.contains("set desktop.hotkeys.click_through to another shortcut"),
        "{log}"
    );
    assert!(
        log.contains("(desktop.hotkeys.show_hide)") && log.contains("registered"),
        "{log}"
    );
    assert!(
        mascot.child.try_wait().expect("wait").is_none(),
        "still running"
    );
}

#[test]
fn autostart_writes_the_xdg_entry_and_removes_it_when_switched_off() {
    let Some(_pointer) = x_display() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let entry = dir.path().join(".config/autostart/desktop-mate.desktop");
    let mut mascot = start(dir.path(), "(desktop: (autostart: true))");
    assert!(
        mascot.log.iter().any(|l| l.contains("autostart on"))
            || mascot
                .wait_for("autostart on", Duration::from_secs(10))
                .is_some(),
        "{:#?}",
        mascot.log
    );
    let text = std::fs::read_to_string(&entry).expect("autostart entry written");
    let config = dir.path().join("mascot.ron");
    assert!(
        text.contains(&format!(
            "Exec={} --config {} run",
            env!("CARGO_BIN_EXE_desktop-mate"),
            config.display()
        )),
        "{text}"
    );
    // Switched off while running (the file watcher applies the edit): the entry goes away.
    std::fs::write(&config, "(desktop: (autostart: false))").expect("edit settings");
    let off = mascot.wait_for("autostart off", Duration::from_secs(20));
    assert!(off.is_some(), "{:#?}", mascot.log);
    assert!(!entry.exists(), "entry removed");
}

/// The mascot's X window (found by its title) and its top-left corner on the root window.
fn mascot_window(conn: &impl Connection) -> Option<(u32, (i16, i16))> {
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};
    let root = conn.setup().roots[0].root;
    let tree = conn.query_tree(root).ok()?.reply().ok()?;
    tree.children.into_iter().find_map(|window| {
        let name = conn
            .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 256)
            .ok()?
            .reply()
            .ok()?;
        if !String::from_utf8_lossy(&name.value).contains("desktop-mate") {
            return None;
        }
        let at = conn
            .translate_coordinates(window, root, 0, 0)
            .ok()?
            .reply()
            .ok()?;
        Some((window, (at.dst_x, at.dst_y)))
    })
}

/// A window exactly the monitor's size would be drawn opaque by Windows' compositor: the app
/// makes it 1 px shorter, on every platform (here the X window's real height is read back).
#[test]
fn a_window_the_size_of_the_monitor_is_made_one_pixel_shorter() {
    let Some(_pointer) = x_display() else {
        return;
    };
    use x11rb::protocol::xproto::ConnectionExt as _;
    let (conn, screen) = connect_x();
    let (width, height) = {
        let root = &conn.setup().roots[screen];
        (root.width_in_pixels, root.height_in_pixels)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mascot = start(
        dir.path(),
        &format!("(window: (width: {width}, height: {height}, position: Some((0, 0))))"),
    );
    assert!(
        mascot.logged("covers a whole monitor", Duration::from_secs(20)),
        "{:#?}",
        mascot.log
    );
    let size = || {
        mascot_window(&conn).and_then(|(window, _)| {
            let geometry = conn.get_geometry(window).ok()?.reply().ok()?;
            Some((geometry.width, geometry.height))
        })
    };
    crate::support::wait_for(Duration::from_secs(20), || {
        size() == Some((width, height - 1))
    });
    let size = size();
    assert_eq!(size, Some((width, height - 1)), "{:#?}", mascot.log);
}

#[test]
fn show_in_taskbar_false_sets_the_skip_taskbar_state_on_the_x_window() {
    let Some(_pointer) = x_display() else {
        return;
    };
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};
    let dir = tempfile::tempdir().expect("temp dir");
    let mascot = start(dir.path(), "(window: (show_in_taskbar: false))");
    let (conn, _) = connect_x();
    let (window, _) = mascot_window(&conn).expect("the mascot's window");
    let atom = |name: &str| {
        conn.intern_atom(false, name.as_bytes())
            .expect("atom")
            .reply()
            .expect("atom reply")
            .atom
    };
    let states: Vec<u32> = conn
        .get_property(false, window, atom("_NET_WM_STATE"), AtomEnum::ATOM, 0, 64)
        .expect("property")
        .reply()
        .expect("property reply")
        .value32()
        .map(|atoms| atoms.collect())
        .unwrap_or_default();
    assert!(
        states.contains(&atom("_NET_WM_STATE_SKIP_TASKBAR")),
        "{states:?} on {window:#x}: {:#?}",
        mascot.log
    );
    assert!(states.contains(&atom("_NET_WM_STATE_SKIP_PAGER")));
}

#[test]
fn reset_window_forgets_the_saved_place_and_centres_the_window_on_the_primary_monitor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state_file = desktop_mate::config::StateFile::beside(Some(&dir.path().join("mascot.ron")));
    let lost = desktop_mate::config::AppState {
        window_position: Some((-5000, 9000)),
        window_scale: Some(3.0),
        ..Default::default()
    };
    state_file.save(&lost).expect("save state");
    let cli = <desktop_mate::cli::Cli as clap::Parser>::try_parse_from([
        "desktop-mate",
        "--reset-window",
    ])
    .expect("the flag parses without a subcommand");
    assert!(cli.global.reset_window);

    let Some(_pointer) = x_display() else {
        return;
    };
    let mascot = start_with(
        dir.path(),
        "(window: (width: 300, height: 400, scale: 2.0))",
        &["--reset-window"],
    );
    let saved = saved_state(dir.path());
    assert_eq!((saved.window_position, saved.window_scale), (None, None));
    let (conn, _) = connect_x();
    let (_, at) = mascot_window(&conn).expect("the mascot's window");
    // Scale 1 (not the setting's 2), centred on the 1280x1024 Xvfb screen.
    assert_eq!(
        at,
        ((1280 - 300) / 2, (1024 - 400) / 2),
        "{:#?}",
        mascot.log
    );
}

/// Splits the Xvfb screen into RandR monitors for one test; the screen is whole again after.
struct SplitMonitors {
    conn: x11rb::rust_connection::RustConnection,
    root: u32,
    names: Vec<u32>,
}

impl SplitMonitors {
    /// `(name, x, y, width, height)`; the first is primary and takes the screen's output, so
    /// the automatic whole-screen monitor gives way (as `xrandr --setmonitor NAME ... screen`).
    fn new(monitors: &[(&str, i16, i16, u16, u16)]) -> Self {
        use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
        use x11rb::protocol::xproto::ConnectionExt as _;
        let (conn, screen) = connect_x();
        let root = conn.setup().roots[screen].root;
        let outputs = conn
            .randr_get_screen_resources_current(root)
            .expect("randr")
            .reply()
            .expect("randr reply")
            .outputs;
        let mut names = Vec::new();
        for (i, (name, x, y, width, height)) in monitors.iter().enumerate() {
            let atom = conn
                .intern_atom(false, name.as_bytes())
                .expect("atom")
                .reply()
                .expect("atom reply")
                .atom;
            let monitor = MonitorInfo {
                name: atom,
                primary: i == 0,
                automatic: false,
                x: *x,
                y: *y,
                width: *width,
                height: *height,
                width_in_millimeters: u32::from(*width) / 4,
                height_in_millimeters: u32::from(*height) / 4,
                outputs: if i == 0 { outputs.clone() } else { Vec::new() },
            };
            conn.randr_set_monitor(root, monitor)
                .expect("set monitor")
                .check()
                .expect("the X server takes RandR 1.5 monitors");
            names.push(atom);
        }
        Self { conn, root, names }
    }
}

impl Drop for SplitMonitors {
    fn drop(&mut self) {
        use x11rb::protocol::randr::ConnectionExt as _;
        for name in &self.names {
            let _ = self
                .conn
                .randr_delete_monitor(self.root, *name)
                .map(|cookie| cookie.check());
        }
    }
}

#[test]
fn a_saved_place_on_no_monitor_comes_back_onto_the_nearest_one_and_is_kept_per_layout() {
    let Some(_pointer) = x_display() else {
        return;
    };
    // Two monitors on the 1280x1024 screen, with nothing below the left one.
    let _split = SplitMonitors::new(&[
        ("DM-LEFT", 0, 0, 640, 512),
        ("DM-RIGHT", 640, 512, 640, 512),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let state_file = desktop_mate::config::StateFile::beside(Some(&dir.path().join("mascot.ron")));
    // The last drag left it where only the (now gone) monitor below the left one was.
    let lost = desktop_mate::config::AppState {
        window_position: Some((60, 700)),
        ..Default::default()
    };
    state_file.save(&lost).expect("save state");
    let mut mascot = start(dir.path(), "(window: (width: 300, height: 400))");
    let moved = mascot.logged("is on no monitor", Duration::from_secs(20));
    assert!(moved, "{:#?}", mascot.log);
    let (conn, _) = connect_x();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut at = None;
    while Instant::now() < deadline {
        at = mascot_window(&conn).map(|(_, at)| at);
        if at == Some((60, 112)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nearest monitor: the left one (its bottom edge is 188 px from the window's centre).
    assert_eq!(at, Some((60, 112)), "{:#?}", mascot.log);
    drop(mascot);

    // A place saved for this layout wins over the last drag made on another one.
    let layout = "640x512+0+0 640x512+640+512";
    let per_layout = desktop_mate::config::AppState {
        window_position: Some((10, 10)),
        window_places: [(layout.to_owned(), (700, 560))].into(),
        ..Default::default()
    };
    state_file.save(&per_layout).expect("save state");
    let mut mascot = start(dir.path(), "(window: (width: 300, height: 400))");
    let placed = mascot.logged(
        "at (700, 560), its saved place on this monitor layout",
        Duration::from_secs(20),
    );
    assert!(placed, "{:#?}", mascot.log);
    let (conn, _) = connect_x();
    assert_eq!(mascot_window(&conn).map(|(_, at)| at), Some((700, 560)));
}

/// A private D-Bus session bus for one test (`dbus-daemon --session`), stopped on drop.
struct SessionBus {
    daemon: Child,
    address: String,
}

impl SessionBus {
    /// `None` (with a note) where dbus-daemon is not installed.
    fn start() -> Option<Self> {
        let mut daemon = match Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(daemon) => daemon,
            Err(err) => {
                crate::support::missing(
                    "dbus",
                    &format!("dbus-daemon ({err}; scripts/setup.sh --test installs it)"),
                );
                return None;
            }
        };
        let mut address = String::new();
        let stdout = daemon.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut address)
            .expect("bus address");
        Some(Self {
            daemon,
            address: address.trim().to_owned(),
        })
    }

    /// `dbus-send --print-reply` on this bus; the reply's text.
    fn send(&self, args: &[&str]) -> String {
        let output = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .arg("--print-reply")
            .args(args)
            .output()
            .expect("dbus-send");
        assert!(
            output.status.success(),
            "dbus-send {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The menu item ids by label, from `dbus-send`'s print of a dbusmenu `GetLayout` reply:
/// each item is `int32 ID`, then its properties as `string "key"` / `variant ... "value"`.
fn menu_ids(layout: &str) -> Vec<(i32, String)> {
    let mut last_id = None;
    let mut label_next = false;
    let mut items = Vec::new();
    for line in layout.lines().map(str::trim) {
        if let Some(id) = line.strip_prefix("int32 ") {
            last_id = id.parse().ok();
        } else if line == "string \"label\"" {
            label_next = true;
        } else if label_next {
            label_next = false;
            let label = line
                .strip_prefix("variant")
                .map(str::trim)
                .and_then(|rest| rest.strip_prefix("string \""))
                .and_then(|rest| rest.strip_suffix('"'));
            if let (Some(label), Some(id)) = (label, last_id) {
                items.push((id, label.to_owned()));
            }
        }
    }
    items
}

#[test]
fn the_tray_menu_is_on_the_session_bus_and_its_click_through_item_switches_it() {
    let Some(_pointer) = x_display() else {
        return;
    };
    let Some(bus) = SessionBus::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mascot = start_with_env(
        dir.path(),
        "(window: (width: 300, height: 450, position: Some((200, 150))))",
        &[],
        &[("DBUS_SESSION_BUS_ADDRESS", &bus.address)],
    );
    // No tray host on this bare bus: said once, and the mascot carries on.
    assert!(
        mascot.logged("no tray host on this desktop", Duration::from_secs(10)),
        "{:#?}",
        mascot.log
    );
    let names = bus.send(&[
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ListNames",
    ]);
    let item = names
        .lines()
        .filter_map(|l| l.trim().strip_prefix("string \""))
        .filter_map(|l| l.strip_suffix('"'))
        .find(|name| name.starts_with("org.kde.StatusNotifierItem-"))
        .unwrap_or_else(|| panic!("no StatusNotifierItem on the bus: {names}"))
        .to_owned();
    let layout = bus.send(&[
        &format!("--dest={item}"),
        "/MenuBar",
        "com.canonical.dbusmenu.GetLayout",
        "int32:0",
        "int32:-1",
        "array:string:label",
    ]);
    let items = menu_ids(&layout);
    let labels: Vec<&str> = items.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Hide mascot",
            "Click-through",
            "Chat",
            "Voice",
            "Expressions",
            "Settings",
            "Memory",
            "Diagnostics",
            "Start with the system",
            "Quit"
        ],
        "{layout}"
    );
    let click_through = items
        .iter()
        .find(|(_, l)| l == "Click-through")
        .map(|(id, _)| id.to_string())
        .expect("item");
    let input = FakeInput::new();
    input.send(MOTION, 0, 200 + 10, 150 + 10);
    assert!(
        mascot
            .wait_for("clicks pass through", Duration::from_secs(20))
            .is_some(),
        "{:#?}",
        mascot.log
    );
    let click = |bus: &SessionBus| {
        bus.send(&[
            &format!("--dest={item}"),
            "/MenuBar",
            "com.canonical.dbusmenu.Event",
            &format!("int32:{click_through}"),
            "string:clicked",
            "variant:int32:0",
            "uint32:0",
        ])
    };
    click(&bus);
    let off = mascot.wait_for("click-through off", Duration::from_secs(20));
    assert!(
        off.is_some(),
        "the tray click woke the app: {:#?}",
        mascot.log
    );
    input.send(MOTION, 0, 200 + 12, 150 + 12);
    assert!(
        mascot
            .wait_for("window catches clicks", Duration::from_secs(20))
            .is_some(),
        "{:#?}",
        mascot.log
    );
    click(&bus);
    assert!(
        mascot
            .wait_for("click-through on", Duration::from_secs(20))
            .is_some(),
        "{:#?}",
        mascot.log
    );
    let offline_lines = mascot
        .log
        .iter()
        .filter(|l| l.contains("no tray host"))
        .count();
    assert_eq!(offline_lines, 1, "said once");
}

const KEY_M: u32 = 0x6d;

/// The whole listening path in the real mascot window: the push-to-talk hotkey
/// (Ctrl+Alt+Shift+M) held through XTEST as fingers would, a recording played into the sound
/// server's "room" sink (the default microphone is its monitor) meanwhile, the keys released:
/// the words reach the chat and Gemma replies. The key is held for seconds with X's autorepeat
/// (release/press pairs at one instant), which must not end the utterance.
#[test]
fn push_to_talk_held_through_xtest_sends_the_words_and_the_mascot_replies() {
    let Some(_pointer) = x_display() else {
        return;
    };
    let (Some(gemma), Some(samples), Some(recognizer), Some(vad)) = (
        crate::support::gemma_model(),
        crate::support::speech_samples(),
        crate::support::recognizer_model(),
        crate::support::vad_model(),
    ) else {
        return;
    };
    let Some(server) = crate::voice::SoundServer::start() else {
        return;
    };
    server.add_room();
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = crate::listen::LISTENING_SETTINGS
        .replacen(
            "(\n",
            "(\n    window: (width: 300, height: 450, position: Some((200, 150))),\n",
            1,
        )
        .replace("MODEL", &crate::support::ron_path(&gemma))
        .replace("DIR", &crate::support::ron_path(dir.path()))
        .replace("RECOGNIZER", &crate::support::ron_path(&recognizer))
        .replace("VAD", &crate::support::ron_path(&vad));
    let env: Vec<(&str, String)> = server.env().into_iter().collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut mascot = start_with_env(dir.path(), &settings, &[], &env);
    assert!(
        mascot.logged("listening: ready", Duration::from_secs(120)),
        "{:#?}",
        mascot.log
    );
    let (wav, reference) = &samples[2];
    let input = FakeInput::new();
    let keys = keycodes(&input.conn, &[CONTROL_L, ALT_L, SHIFT_L, KEY_M]);
    for code in &keys {
        input.send(KEY_PRESS, *code, 0, 0);
    }
    assert!(
        mascot.logged("push-to-talk held", Duration::from_secs(10)),
        "the hotkey reached the app: {:#?}",
        mascot.log
    );
    // The body listens while the key is held.
    assert!(
        mascot.logged("motion: listening (looping)", Duration::from_secs(10)),
        "the listening pose: {:#?}",
        mascot.log
    );
    let mut player = server
        .command("paplay")
        .arg("--device=room")
        .arg(wav)
        .spawn()
        .expect("paplay");
    // Autorepeat as a real keyboard's X server sends it for a held key (XTEST keys do not
    // repeat): a release and a press of M every 100 ms, 25 ms apart (a release applied at
    // once, or in a frame before the press's, would end the hold).
    let m = keys[3];
    let mut repeats = 0;
    while player.try_wait().ok().flatten().is_none() {
        input.send_now(KEY_RELEASE, m);
        std::thread::sleep(Duration::from_millis(25));
        input.send_now(KEY_PRESS, m);
        repeats += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(repeats > 10, "{repeats} autorepeats");
    // The key stays down a second after the recording ends, as a user's does: under a loaded
    // machine the sound server's last words reach the microphone later (once, 400 ms was too
    // short in a full CI run and the last four words were cut).
    std::thread::sleep(Duration::from_millis(1000));
    for code in keys.iter().rev() {
        input.send(KEY_RELEASE, *code, 0, 0);
    }
    let heard = mascot.wait_for("listening: heard", Duration::from_secs(60));
    let Some(heard) = heard else {
        panic!("nothing heard: {:#?}", mascot.log);
    };
    // Released: back to the idle loop.
    let listening_at = mascot
        .log
        .iter()
        .rposition(|l| l.contains("motion: listening"));
    let idle_after = |log: &[String]| {
        listening_at.is_some_and(|at| log[at..].iter().any(|l| l.contains("motion: idle")))
    };
    assert!(
        idle_after(&mascot.log)
            || mascot
                .wait_for("motion: idle", Duration::from_secs(10))
                .is_some(),
        "the listening pose ends with the key: {:#?}",
        mascot.log
    );
    let releases = mascot
        .log
        .iter()
        .filter(|l| l.contains("push-to-talk released"))
        .count();
    assert_eq!(releases, 1, "one release for one hold: {:#?}", mascot.log);
    let text = heard
        .split("heard \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    let wrong = crate::voice::edits(&crate::voice::words(reference), &crate::voice::words(text));
    println!("push-to-talk through XTEST: {reference:?} -> {text:?}");
    assert!(
        wrong as f64 <= 0.2 * crate::voice::words(reference).len() as f64,
        "{reference:?} -> {text:?}"
    );
    assert!(
        mascot.logged("reply:", Duration::from_secs(120)),
        "the mascot replied: {:#?}",
        mascot.log
    );
}
