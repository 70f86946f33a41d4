//! `window.show_in_taskbar: false` keeps the mascot out of the taskbar and Alt-Tab where the
//! platform allows: Bevy's `skip_taskbar` on Windows (set when the window is made, see
//! `lib.rs`), `_NET_WM_STATE_SKIP_TASKBAR` + `_SKIP_PAGER` on X11 (here). Elsewhere the
//! window keeps its entry.

use bevy::prelude::*;
use bevy::window::{PrimaryWindow, RawHandleWrapper};

use crate::AppSystems;
use crate::config::Settings;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, follow_setting.in_set(AppSystems::Apply));
}

/// Applies the setting once the window exists, and again when it changes.
fn follow_setting(
    settings: Res<Settings>,
    windows: Query<&RawHandleWrapper, With<PrimaryWindow>>,
    mut applied: Local<Option<bool>>,
) {
    let show = settings.window.show_in_taskbar;
    if *applied == Some(show) {
        return;
    }
    let Ok(handle) = windows.single() else {
        return;
    };
    let first = applied.is_none();
    *applied = Some(show);
    if first && show {
        // A new window has its taskbar entry: nothing to undo, and the window manager's own
        // _NET_WM_STATE (always-on-top, ...) is better left untouched.
        return;
    }
    if let Some(window) = x11_window(handle) {
        match x11::skip_taskbar(window, !show) {
            Ok(()) => info!(
                "taskbar entry {} (X window {window:#x})",
                if show {
                    "shown"
                } else {
                    "skipped (_NET_WM_STATE_SKIP_TASKBAR)"
                }
            ),
            Err(err) => warn!("cannot change the taskbar entry: {err}"),
        }
    }
}

// Xlib's window id is a C `unsigned long`: 64 bits on Linux, 32 on Windows.
#[cfg_attr(windows, allow(clippy::useless_conversion))]
fn x11_window(handle: &RawHandleWrapper) -> Option<u32> {
    match handle.get_window_handle() {
        raw_window_handle::RawWindowHandle::Xlib(h) => u32::try_from(h.window).ok(),
        raw_window_handle::RawWindowHandle::Xcb(h) => Some(h.window.get()),
        _ => None,
    }
}

#[cfg(target_os = "linux")]
mod x11 {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{
        AtomEnum, ClientMessageEvent, ConnectionExt, EventMask, PropMode,
    };
    use x11rb::wrapper::ConnectionExt as _;

    /// Adds or removes the skip states: a client message to the root window for a running
    /// window manager (EWMH), and the property itself for when none runs yet.
    pub fn skip_taskbar(window: u32, skip: bool) -> Result<(), String> {
        let (conn, screen) = x11rb::connect(None).map_err(|e| e.to_string())?;
        let root = conn
            .setup()
            .roots
            .get(screen)
            .map(|s| s.root)
            .ok_or("X11 display without a screen")?;
        let atom = |name: &str| -> Result<u32, String> {
            Ok(conn
                .intern_atom(false, name.as_bytes())
                .map_err(|e| e.to_string())?
                .reply()
                .map_err(|e| e.to_string())?
                .atom)
        };
        let state = atom("_NET_WM_STATE")?;
        let ours = [
            atom("_NET_WM_STATE_SKIP_TASKBAR")?,
            atom("_NET_WM_STATE_SKIP_PAGER")?,
        ];
        let current: Vec<u32> = conn
            .get_property(false, window, state, AtomEnum::ATOM, 0, 64)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?
            .value32()
            .map(|atoms| atoms.collect())
            .unwrap_or_default();
        let mut wanted: Vec<u32> = current.into_iter().filter(|a| !ours.contains(a)).collect();
        if skip {
            wanted.extend(ours);
        }
        conn.change_property32(PropMode::REPLACE, window, state, AtomEnum::ATOM, &wanted)
            .map_err(|e| e.to_string())?
            .check()
            .map_err(|e| format!("cannot set _NET_WM_STATE: {e}"))?;
        // _NET_WM_STATE_ADD = 1, _REMOVE = 0; source 1 = a normal application.
        let message =
            ClientMessageEvent::new(32, window, state, [u32::from(skip), ours[0], ours[1], 1, 0]);
        conn.send_event(
            false,
            root,
            EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY,
            message,
        )
        .map_err(|e| e.to_string())?
        // Waits for the server: requests still queued when this connection closes are lost.
        .check()
        .map_err(|e| format!("cannot ask the window manager: {e}"))?;
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod x11 {
    pub fn skip_taskbar(_window: u32, _skip: bool) -> Result<(), String> {
        Ok(())
    }
}
