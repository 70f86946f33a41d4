//! Whether this session has a display the mascot's window can open on, asked before the event
//! loop is built: without one winit panics ("Failed to build event loop") after the user has
//! waited for the whole build. The terminal commands (`check`, `chat`, `bench`, ...) need none.

/// `Err` with the reason and what to do when the window cannot open here.
pub fn check() -> Result<(), String> {
    platform::check()
}

/// The window system the mascot's window opens on (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    X11,
    Wayland,
}

/// **Decision**: X11 (XWayland on a Wayland desktop) whenever an X display is there, although
/// the default build talks Wayland too (feature `wayland`): what makes the mascot a desktop
/// mascot is X11's there (always on top and its own placement, which Wayland compositors keep
/// to themselves; the global hotkeys). Native Wayland only without an X display: the window is
/// transparent there too and lets clicks through by its input region (`avatar/input_region.rs`),
/// but the compositor places it and decides its stacking, and no global shortcut reaches it.
pub fn backend(x_display: bool, wayland_display: bool) -> Option<Backend> {
    match (x_display, wayland_display) {
        (true, _) => Some(Backend::X11),
        (false, true) => Some(Backend::Wayland),
        (false, false) => None,
    }
}

/// Whether the window opens natively on Wayland in this session (a `wayland` build, a Wayland
/// display and no X display).
pub fn native_wayland() -> bool {
    cfg!(all(target_os = "linux", feature = "wayland"))
        && backend(set("DISPLAY"), set("WAYLAND_DISPLAY")) == Some(Backend::Wayland)
}

/// Whether an environment variable is set and not empty.
fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// What a native Wayland session gives and lacks, said once at start.
pub const NATIVE_WAYLAND: &str = "Wayland without XWayland: the mascot's window opens natively \
    (transparent; clicks on its empty pixels pass through by its input region), but the \
    compositor places it and decides whether it stays on top, and global hotkeys need X11: \
    enable XWayland for those (see the README's desktop table)";

/// Makes winit follow [`backend`]: winit opens on Wayland whenever `WAYLAND_DISPLAY` is set,
/// so a `wayland` build on a desktop with XWayland takes it out of this process's environment.
/// Returns the line to tell the user, once (also on native Wayland, [`NATIVE_WAYLAND`]). Call
/// from `main` before any thread starts.
#[allow(unsafe_code)] // std::env::remove_var; the block says why it is sound.
pub fn choose_backend() -> Option<&'static str> {
    if native_wayland() {
        return Some(NATIVE_WAYLAND);
    }
    let chosen = backend(set("DISPLAY"), set("WAYLAND_DISPLAY"));
    if !(cfg!(all(target_os = "linux", feature = "wayland"))
        && chosen == Some(Backend::X11)
        && set("WAYLAND_DISPLAY"))
    {
        return None;
    }
    // SAFETY: called by `main` before the app, its task pools or any other thread exist, so
    // nothing reads the environment meanwhile.
    unsafe { std::env::remove_var("WAYLAND_DISPLAY") };
    Some(
        "Wayland desktop with XWayland: the mascot's window opens through XWayland (always on \
         top, its own placement and click-through work there; see docs/building.md)",
    )
}

#[cfg(target_os = "linux")]
mod platform {
    /// What the user can do instead, for every "no display" case.
    const NO_DISPLAY_HELP: &str = "start it from a desktop session (X11 or Wayland), over ssh with `ssh -X`, or under a virtual display (`xvfb-run desktop-mate \
    snapshot --out mascot.png`); `desktop-mate check` and `desktop-mate chat` need no display";

    pub fn check() -> Result<(), String> {
        let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let x11 = set("DISPLAY");
        let wayland = set("WAYLAND_DISPLAY");
        match (x11, wayland) {
            (Some(display), _) => match super::connect_x() {
                Ok(()) => Ok(()),
                Err(err) => Err(format!(
                    "cannot open the X display {}: {err}; {NO_DISPLAY_HELP}",
                    display.to_string_lossy()
                )),
            },
            (None, Some(_)) if cfg!(feature = "wayland") => Ok(()),
            (None, Some(wayland)) => Err(format!(
                "this is a Wayland session ({}) without XWayland (DISPLAY is unset), and this \
                 build (`--no-default-features`) opens its window through X11 only: enable \
                 XWayland in your compositor, or build with the default features; \
                 {NO_DISPLAY_HELP}",
                wayland.to_string_lossy()
            )),
            (None, None) => Err(format!(
                "no display to open the mascot's window on (DISPLAY and WAYLAND_DISPLAY are \
                 unset): {NO_DISPLAY_HELP}"
            )),
        }
    }
}

/// A test connection to the X server. A server that drops a connection while it is set up
/// (seen in CI: "failed to read whole buffer", "Broken pipe": an Xvfb resetting as its last
/// client left, now run with `-noreset`) is asked twice more, 200 ms apart; one that refuses
/// or does not exist fails at once.
#[cfg(target_os = "linux")]
fn connect_x() -> Result<(), x11rb::errors::ConnectError> {
    use x11rb::errors::ConnectError;
    let mut tries = 0;
    loop {
        match x11rb::connect(None) {
            Ok(_) => return Ok(()),
            Err(ConnectError::IoError(err))
                if tries < 2
                    && matches!(
                        err.kind(),
                        std::io::ErrorKind::UnexpectedEof
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::ConnectionReset
                    ) =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    /// Windows and macOS always have their desktop.
    pub fn check() -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_x_display_is_preferred_and_wayland_alone_is_native() {
        assert_eq!(backend(true, true), Some(Backend::X11), "XWayland first");
        assert_eq!(backend(true, false), Some(Backend::X11));
        assert_eq!(backend(false, true), Some(Backend::Wayland));
        assert_eq!(backend(false, false), None);
    }
}
