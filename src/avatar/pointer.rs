//! The desktop pointer position, read from the display server. Once a window lets clicks
//! through (hit-test off), X11 stops sending it cursor events, so click-through can only be
//! switched back on by asking the server where the pointer is.
//!
//! Implemented for X11 (also XWayland) with x11rb's pure-Rust connection. Elsewhere
//! [`GlobalPointer::connect`] reports that it is unavailable and the window keeps catching
//! every click (documented in the README).

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

        /// Pointer position on the desktop, in physical pixels.
        pub fn position(&self) -> Option<(i32, i32)> {
            let reply = self.conn.query_pointer(self.root).ok()?.reply().ok()?;
            Some((i32::from(reply.root_x), i32::from(reply.root_y)))
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub struct GlobalPointer;

    impl GlobalPointer {
        pub fn connect() -> Result<Self, String> {
            Err("reading the desktop pointer is implemented for X11 only".to_owned())
        }

        pub fn position(&self) -> Option<(i32, i32)> {
            None
        }
    }
}

pub use imp::GlobalPointer;
