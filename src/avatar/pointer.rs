//! The desktop pointer position, read from the OS. Once a window lets clicks through (hit-test
//! off) it gets no cursor events any more, so click-through can only be switched back on, and
//! the eyes can only follow the pointer across the desktop, by asking the OS where it is.
//!
//! One source per platform, same contract: [`GlobalPointer::position`] gives the pointer in
//! the desktop's physical pixels, the unit of the window's `WindowPosition::At`.
//! - Linux: X11 (also XWayland) through x11rb's pure-Rust connection, `QueryPointer`.
//! - Windows: `GetPhysicalCursorPos` (physical pixels whatever the DPI awareness; winit makes
//!   the process per-monitor DPI aware, so window positions are physical too).
//! - macOS: `NSEvent::mouseLocation` (points, origin at the bottom left of the main display),
//!   flipped against the main display's height and scaled by the window's scale factor. Not
//!   compile-checked against the macOS SDK here (see README).
//!
//! Elsewhere [`GlobalPointer::connect`] reports that it is unavailable and the window keeps
//! catching every click.

#[cfg(target_os = "linux")]
mod imp {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::ConnectionExt;
    use x11rb::rust_connection::RustConnection;

    pub struct GlobalPointer {
        conn: RustConnection,
        root: u32,
    }

    impl GlobalPointer {
        pub fn connect() -> Result<Self, String> {
            let (conn, screen) =
                x11rb::connect(None).map_err(|e| format!("no X11 display: {e}"))?;
            let root = conn
                .setup()
                .roots
                .get(screen)
                .map(|s| s.root)
                .ok_or_else(|| "X11 display without a screen".to_owned())?;
            Ok(Self { conn, root })
        }

        pub fn position(&self, _scale_factor: f32) -> Option<(i32, i32)> {
            let reply = self.conn.query_pointer(self.root).ok()?.reply().ok()?;
            Some((i32::from(reply.root_x), i32::from(reply.root_y)))
        }
    }
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::Foundation::POINT;
    use windows_sys::Win32::UI::WindowsAndMessaging::GetPhysicalCursorPos;

    pub struct GlobalPointer;

    impl GlobalPointer {
        pub fn connect() -> Result<Self, String> {
            // Always there: while it cannot be read (a locked workstation), `position` is None
            // and the window catches clicks until it can again.
            Ok(Self)
        }

        pub fn position(&self, _scale_factor: f32) -> Option<(i32, i32)> {
            let mut point = POINT { x: 0, y: 0 };
            // SAFETY: GetPhysicalCursorPos writes one POINT through a valid, exclusive pointer.
            #[allow(unsafe_code)]
            let ok = unsafe { GetPhysicalCursorPos(&mut point) };
            (ok != 0).then_some((point.x, point.y))
        }
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use objc2_app_kit::NSEvent;
    use objc2_core_graphics::{CGDisplayBounds, CGMainDisplayID};

    pub struct GlobalPointer;

    impl GlobalPointer {
        pub fn connect() -> Result<Self, String> {
            Ok(Self)
        }

        pub fn position(&self, scale_factor: f32) -> Option<(i32, i32)> {
            // Points with y up from the bottom of the main display (the one with the menu
            // bar, whose top-left corner is the desktop's origin).
            let point = NSEvent::mouseLocation();
            let main = CGDisplayBounds(CGMainDisplayID());
            let (x, y) = super::flip_points(point.x, point.y, main.size.height);
            let scale = f64::from(scale_factor);
            Some(((x * scale).round() as i32, (y * scale).round() as i32))
        }
    }
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
mod imp {
    pub struct GlobalPointer;

    impl GlobalPointer {
        pub fn connect() -> Result<Self, String> {
            Err("reading the desktop pointer is not implemented on this platform".to_owned())
        }

        pub fn position(&self, _scale_factor: f32) -> Option<(i32, i32)> {
            None
        }
    }
}

/// macOS desktop points (origin bottom left of the main display, y up) to top-left-origin
/// points with y down, as window positions are given.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn flip_points(x: f64, y: f64, main_display_height: f64) -> (f64, f64) {
    (x, main_display_height - y)
}

/// The desktop pointer. `position(scale_factor)` is in physical pixels; `scale_factor` (the
/// window's) converts where the OS reports logical points (macOS) and is ignored elsewhere.
pub use imp::GlobalPointer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_points_flip_against_the_main_display() {
        // The main display's top-left corner is the desktop's origin.
        assert_eq!(flip_points(0.0, 900.0, 900.0), (0.0, 0.0));
        assert_eq!(flip_points(100.0, 0.0, 900.0), (100.0, 900.0));
        // A display above the main one has negative y, one below it y beyond its height.
        assert_eq!(flip_points(10.0, 1200.0, 900.0), (10.0, -300.0));
        assert_eq!(flip_points(10.0, -100.0, 900.0), (10.0, 1000.0));
    }

    /// The pointer the OS moved is where our source reads it, in physical pixels (under Wine
    /// with Xvfb this goes through Wine's user32 to the X server and back).
    #[cfg(windows)]
    #[test]
    fn windows_pointer_reads_where_the_os_put_it() {
        use windows_sys::Win32::UI::WindowsAndMessaging::SetPhysicalCursorPos;
        let pointer = GlobalPointer::connect().expect("a desktop pointer");
        for (x, y) in [(200, 150), (37, 411)] {
            // SAFETY: plain Win32 call with integer arguments.
            #[allow(unsafe_code)]
            let moved = unsafe { SetPhysicalCursorPos(x, y) };
            assert_ne!(moved, 0, "SetPhysicalCursorPos failed");
            assert_eq!(pointer.position(1.0), Some((x, y)));
            // The scale factor is for macOS points only: physical pixels stay as they are.
            assert_eq!(pointer.position(2.0), Some((x, y)));
        }
    }
}
