//! Whether this session has a display the mascot's window can open on, asked before the event
//! loop is built: without one winit panics ("Failed to build event loop") after the user has
//! waited for the whole build. The terminal commands (`check`, `chat`, `bench`, ...) need none.

/// `Err` with the reason and what to do when the window cannot open here.
pub fn check() -> Result<(), String> {
    platform::check()
}

#[cfg(target_os = "linux")]
mod platform {
    /// What the user can do instead, for every "no display" case.
    const NO_DISPLAY_HELP: &str = "start it from a desktop session (X11, or Wayland with \
    XWayland), over ssh with `ssh -X`, or under a virtual display (`xvfb-run desktop-mate \
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
                 build opens its window through X11: enable XWayland in your compositor, or \
                 build with `--features wayland`; {NO_DISPLAY_HELP}",
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
/// (seen once in CI: "failed to read whole buffer", a busy Xvfb) is asked twice more, 200 ms
/// apart; one that refuses or does not exist fails at once.
#[cfg(target_os = "linux")]
fn connect_x() -> Result<(), x11rb::errors::ConnectError> {
    use x11rb::errors::ConnectError;
    let mut tries = 0;
    loop {
        match x11rb::connect(None) {
            Ok(_) => return Ok(()),
            Err(ConnectError::IoError(err))
                if tries < 2 && err.kind() == std::io::ErrorKind::UnexpectedEof =>
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
