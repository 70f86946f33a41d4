//! The window's place across monitor layouts: a saved place that lies on no connected monitor
//! (unplugged, resolution changed) is brought back onto the nearest one, and each layout of
//! monitors has its own saved place (`state.ron`'s `window_places`), so docking a laptop puts
//! the mascot back where it lived on that desk.
//!
//! Monitors come from RandR's monitor list on X11 (it includes `xrandr --setmonitor` splits),
//! else from Bevy's `Monitor` entities. Moving between monitors of different scale factors
//! keeps the window's logical size (Bevy resizes the surface on `ScaleFactorChanged`), so the
//! avatar keeps its size on screen.

use bevy::prelude::*;
use bevy::window::{Monitor, PrimaryMonitor, PrimaryWindow};

use crate::AppSystems;
use crate::config::AppState;

/// One monitor's rectangle on the desktop, in physical pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub primary: bool,
}

/// How much of the window must lie on a monitor for it to count as reachable (enough to grab).
const REACHABLE: i64 = 64;

/// Names a layout of monitors (order-independent): `"1920x1080+0+0 2560x1440+1920+0"`.
pub fn layout_key(screens: &[Screen]) -> String {
    let mut parts: Vec<String> = screens
        .iter()
        .map(|s| format!("{}x{}+{}+{}", s.width, s.height, s.x, s.y))
        .collect();
    parts.sort();
    parts.dedup();
    parts.join(" ")
}

fn overlap(a: (i64, i64), b: (i64, i64)) -> i64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0)
}

/// `saved` (top-left corner) when enough of a `size` window there lies on a monitor; otherwise
/// the window moved onto the monitor nearest to its centre, as far inside it as it fits.
/// Without any monitor the saved place is kept.
pub fn rescue_position(saved: (i32, i32), size: (u32, u32), screens: &[Screen]) -> (i32, i32) {
    let (x, y) = (i64::from(saved.0), i64::from(saved.1));
    let (w, h) = (i64::from(size.0).max(1), i64::from(size.1).max(1));
    let reachable = screens.iter().any(|s| {
        let (sx, sy) = (i64::from(s.x), i64::from(s.y));
        let (sw, sh) = (i64::from(s.width), i64::from(s.height));
        overlap((x, x + w), (sx, sx + sw)) >= REACHABLE.min(w)
            && overlap((y, y + h), (sy, sy + sh)) >= REACHABLE.min(h)
    });
    if reachable {
        return saved;
    }
    let centre = (x + w / 2, y + h / 2);
    let distance = |s: &Screen| {
        let (sx, sy) = (i64::from(s.x), i64::from(s.y));
        let dx = (sx - centre.0)
            .max(centre.0 - (sx + i64::from(s.width)))
            .max(0);
        let dy = (sy - centre.1)
            .max(centre.1 - (sy + i64::from(s.height)))
            .max(0);
        (dx * dx + dy * dy, !s.primary)
    };
    let Some(screen) = screens.iter().min_by_key(|s| distance(s)) else {
        return saved;
    };
    let clamp = |value: i64, start: i32, length: u32, size: i64| {
        let start = i64::from(start);
        let end = (start + i64::from(length) - size).max(start);
        value.clamp(start, end)
    };
    let x = clamp(x, screen.x, screen.width, w);
    let y = clamp(y, screen.y, screen.height, h);
    (
        i32::try_from(x).unwrap_or(screen.x),
        i32::try_from(y).unwrap_or(screen.y),
    )
}

/// A window that covers a whole monitor is taken by Windows' compositor for a fullscreen
/// window and drawn opaque: the see-through background turns black (peers met this; a window
/// 1 px short of the monitor stays transparent). When the window at `at` with `size` covers a
/// monitor, the height that ends 1 px above that monitor's bottom edge; `None` otherwise.
/// Applied on every platform: 1 px is invisible and the rule stays testable here.
pub fn short_of_cover(at: (i32, i32), size: (u32, u32), screens: &[Screen]) -> Option<u32> {
    let (x, y) = (i64::from(at.0), i64::from(at.1));
    let (w, h) = (i64::from(size.0), i64::from(size.1));
    screens
        .iter()
        .filter(|s| {
            let (sx, sy) = (i64::from(s.x), i64::from(s.y));
            x <= sx
                && y <= sy
                && x + w >= sx + i64::from(s.width)
                && y + h >= sy + i64::from(s.height)
        })
        .map(|s| i64::from(s.y) + i64::from(s.height) - 1 - y)
        .min()
        .and_then(|height| u32::try_from(height).ok())
        .filter(|height| *height > 0)
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        (
            // Only while unknown: the system must run on the main thread (winit's windows).
            learn_position.run_if(position_unknown),
            place_window,
            keep_short_of_cover,
        )
            .chain()
            .in_set(AppSystems::Apply),
    );
}

fn position_unknown(windows: Query<&Window, With<PrimaryWindow>>) -> bool {
    windows
        .single()
        .is_ok_and(|w| !matches!(w.position, WindowPosition::At(_)))
}

/// A window placed by the OS (`Automatic`, `Centered`: a first start, `--reset-window`) has no
/// known position until it moves, and without one the desktop pointer cannot be mapped into it
/// (click-through would not know what is under the pointer). Reads the real one from winit
/// (main thread) once the window exists.
fn learn_position(
    mut windows: Query<(Entity, &mut Window), With<PrimaryWindow>>,
    _main_thread: bevy::ecs::system::NonSendMarker,
) {
    let Ok((entity, mut window)) = windows.single_mut() else {
        return;
    };
    let known = bevy::winit::WINIT_WINDOWS.with_borrow(|winit| {
        winit
            .get_window(entity)
            .and_then(|w| w.outer_position().ok())
            .map(|p| IVec2::new(p.x, p.y))
    });
    if let Some(at) = known {
        info!("window placed by the OS at {at}");
        window.position = WindowPosition::At(at);
    }
}

/// Bevy's monitors as [`Screen`]s.
fn bevy_screens(monitors: &Query<(&Monitor, Has<PrimaryMonitor>)>) -> Vec<Screen> {
    monitors
        .iter()
        .map(|(m, primary)| Screen {
            x: m.physical_position.x,
            y: m.physical_position.y,
            width: m.physical_width,
            height: m.physical_height,
            primary,
        })
        .collect()
}

/// Whenever the window's size or place changes (placed at start, dragged, scaled with the
/// wheel) or a monitor comes: never exactly cover a monitor ([`short_of_cover`]).
fn keep_short_of_cover(
    mut windows: Query<&mut Window, With<PrimaryWindow>>,
    monitors: Query<(&Monitor, Has<PrimaryMonitor>)>,
    added: Query<(), Added<Monitor>>,
) {
    let Ok(mut window) = windows.single_mut() else {
        return;
    };
    if !window.is_changed() && added.is_empty() {
        return;
    }
    let WindowPosition::At(at) = window.position else {
        return;
    };
    let size = window.physical_size();
    if let Some(height) = short_of_cover((at.x, at.y), (size.x, size.y), &bevy_screens(&monitors)) {
        info!(
            "window {}x{} covers a whole monitor: made {height} px high, \
             so the compositor keeps it transparent",
            size.x, size.y
        );
        window.resolution.set_physical_resolution(size.x, height);
    }
}

/// Once monitors are known, and again whenever one comes or goes: the layout's own saved
/// place, rescued onto a monitor when it is on none.
fn place_window(
    mut windows: Query<&mut Window, With<PrimaryWindow>>,
    monitors: Query<(&Monitor, Has<PrimaryMonitor>)>,
    added: Query<(), Added<Monitor>>,
    mut removed: RemovedComponents<Monitor>,
    mut state: ResMut<AppState>,
    mut placed: Local<bool>,
) {
    let gone = removed.read().count() > 0;
    let changed = gone || !added.is_empty();
    if *placed && !changed {
        return;
    }
    let Ok(mut window) = windows.single_mut() else {
        return;
    };
    let screens = match x11::screens() {
        Some(screens) if !screens.is_empty() => screens,
        _ => bevy_screens(&monitors),
    };
    if screens.is_empty() {
        return;
    }
    *placed = true;
    let layout = layout_key(&screens);
    let saved = state.window_places.get(&layout).copied();
    if state.monitor_layout.as_ref() != Some(&layout) {
        debug!("monitor layout {layout}");
        state.monitor_layout = Some(layout);
    }
    let current = match window.position {
        WindowPosition::At(at) => Some((at.x, at.y)),
        _ => None,
    };
    let Some(wanted) = saved.or(current) else {
        return;
    };
    let size = window.physical_size();
    let rescued = rescue_position(wanted, (size.x, size.y), &screens);
    if Some(rescued) != current {
        if rescued == wanted {
            info!("window placed at {rescued:?}, its saved place on this monitor layout");
        } else {
            info!("window position {wanted:?} is on no monitor: moved onto one at {rescued:?}");
        }
        window.position = WindowPosition::At(IVec2::new(rescued.0, rescued.1));
    }
}

#[cfg(target_os = "linux")]
mod x11 {
    use x11rb::connection::Connection;
    use x11rb::protocol::randr::ConnectionExt;

    use super::Screen;

    /// RandR's monitors (real outputs and `--setmonitor` ones); `None` without X11 RandR 1.5.
    pub fn screens() -> Option<Vec<Screen>> {
        let (conn, screen) = x11rb::connect(None).ok()?;
        let root = conn.setup().roots.get(screen)?.root;
        let reply = conn.randr_get_monitors(root, true).ok()?.reply().ok()?;
        Some(
            reply
                .monitors
                .iter()
                .map(|m| Screen {
                    x: i32::from(m.x),
                    y: i32::from(m.y),
                    width: u32::from(m.width),
                    height: u32::from(m.height),
                    primary: m.primary,
                })
                .collect(),
        )
    }
}

#[cfg(not(target_os = "linux"))]
mod x11 {
    pub fn screens() -> Option<Vec<super::Screen>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(x: i32, y: i32, width: u32, height: u32, primary: bool) -> Screen {
        Screen {
            x,
            y,
            width,
            height,
            primary,
        }
    }

    #[test]
    fn a_window_covering_a_monitor_is_made_one_pixel_short() {
        let screens = [
            screen(0, 0, 1920, 1080, true),
            screen(1920, 0, 2560, 1440, false),
        ];
        // Exactly the first monitor: 1 px shorter.
        assert_eq!(short_of_cover((0, 0), (1920, 1080), &screens), Some(1079));
        // Larger than the second monitor and starting above it: ends 1 px above its bottom.
        assert_eq!(
            short_of_cover((1900, -20), (2600, 1500), &screens),
            Some(1459)
        );
        // Across both: the first one's bottom is the nearer edge.
        assert_eq!(short_of_cover((0, 0), (4480, 1440), &screens), Some(1079));
        // Smaller than any monitor, or 1 px short already: unchanged.
        assert_eq!(short_of_cover((0, 0), (400, 600), &screens), None);
        assert_eq!(short_of_cover((0, 0), (1920, 1079), &screens), None);
        assert_eq!(short_of_cover((1, 0), (1920, 1080), &screens), None);
    }

    #[test]
    fn a_place_on_a_monitor_is_kept_even_partly_off_screen() {
        let screens = [screen(0, 0, 1920, 1080, true)];
        assert_eq!(
            rescue_position((100, 100), (400, 600), &screens),
            (100, 100)
        );
        // Mostly off the right edge, but 100 px still there to grab.
        assert_eq!(
            rescue_position((1820, 900), (400, 600), &screens),
            (1820, 900)
        );
    }

    #[test]
    fn a_place_on_an_unplugged_monitor_comes_back_onto_the_nearest_one() {
        // The second monitor (right of the first) is gone.
        let laptop = [screen(0, 0, 1920, 1080, true)];
        assert_eq!(
            rescue_position((2500, 300), (400, 600), &laptop),
            (1520, 300)
        );
        // A monitor that was left and above.
        assert_eq!(rescue_position((-3000, -900), (400, 600), &laptop), (0, 0));
        // Only 10 px left on screen is not enough to grab.
        assert_eq!(
            rescue_position((1910, 200), (400, 600), &laptop),
            (1520, 200)
        );
        // Two monitors with a hole below the right one: the nearest, not the primary.
        let desk = [
            screen(0, 0, 1920, 1080, true),
            screen(1920, 0, 1280, 720, false),
        ];
        assert_eq!(rescue_position((2600, 800), (400, 600), &desk), (2600, 120));
        // A window bigger than the monitor goes to its top-left corner.
        assert_eq!(rescue_position((5000, 0), (4000, 600), &laptop), (0, 0));
        // No monitor known: nothing to decide.
        assert_eq!(rescue_position((5000, 0), (400, 600), &[]), (5000, 0));
    }

    #[test]
    fn the_layout_key_does_not_depend_on_monitor_order() {
        let a = screen(0, 0, 1920, 1080, true);
        let b = screen(1920, 0, 2560, 1440, false);
        assert_eq!(layout_key(&[a, b]), layout_key(&[b, a]));
        assert_eq!(layout_key(&[a, b]), "1920x1080+0+0 2560x1440+1920+0");
        assert_ne!(layout_key(&[a]), layout_key(&[a, b]));
    }
}
