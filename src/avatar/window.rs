//! The mascot window on the desktop: clicks on transparent pixels pass through to the desktop,
//! left-drag on the avatar moves the window, the wheel scales it, right-click opens the menu;
//! position and scale are kept in the app's state file (`state.ron`), never in the settings.
//!
//! Hit-testing uses the rendered alpha: every 0.3 s while something moves (1 s when idle) the
//! window's pixels are captured and their alpha kept in a [`HitMask`]; when the pointer moves,
//! the pixel under it decides whether the window catches clicks. The avatar and open egui panels
//! are both opaque in that capture, and egui's own "pointer over a panel" is checked too, so a
//! panel opened a moment ago catches clicks before the next capture.
//!
//! On a native Wayland session the pointer cannot be read outside the window, so the same mask
//! becomes the surface's input region instead (`input_region.rs`): the compositor sends the
//! window only the clicks on drawn pixels.

use bevy::input::mouse::{MouseScrollUnit, MouseWheel};
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use std::mem::ManuallyDrop;

use bevy::window::{CursorOptions, PrimaryWindow, RawHandleWrapper, WindowMoved};
use bevy_egui::input::EguiWantsInput;

use super::commands::FaceState;
use super::face::LookTarget;
use super::hit_mask::HitMask;
use super::input_region::{self, InputRegion};
use super::pointer::GlobalPointer;
use crate::AppSystems;
use crate::config::{AppState, Settings, StateFile, ranges};

/// Where the right-click menu is open (logical window pixels); drawn by the UI.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct ContextMenu(pub Option<Vec2>);

/// Whether clicks on transparent pixels pass through right now: `window.click_through` at
/// start and whenever the user changes that setting; the tray and the global hotkey switch it
/// for the run (off = the whole window catches clicks, the way back from a stuck mascot).
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickThrough(pub bool);

/// Pointer and hit-test state of the mascot window.
#[derive(Resource, Default)]
pub struct WindowHits {
    pointer: Option<GlobalPointer>,
    pub mask: HitMask,
    capture_in_flight: bool,
    /// Seconds since a capture was asked for, or since the last one came back.
    since_capture: f32,
    /// Whether the pixel under the pointer belongs to the avatar or a panel.
    pub over_mascot: bool,
    /// Counts the captures that became the mask.
    mask_serial: u64,
    /// The window's input region on native Wayland. Never dropped: it lives on winit's
    /// `wl_display`, which may be gone by the time the world is dropped at exit.
    region: Option<ManuallyDrop<InputRegion>>,
    /// Whether the window was asked for its input region yet.
    region_tried: bool,
    /// What the region was last made from: mask serial, click-through, scale factor bits.
    region_from: Option<(u64, bool, u32)>,
    /// The region last sent (`None` inside: the whole window), so an unchanged one is not
    /// sent again after each capture.
    region_sent: Option<Option<Vec<[i32; 4]>>>,
}

/// Seconds until window position/scale changes are written to the state file.
#[derive(Resource, Debug, Default)]
struct PendingSave(Option<f32>);

/// Seconds left in which window moves count as the user's drag (and are saved); moves made
/// by the window manager (placing the window at start) are not written to the file.
#[derive(Resource, Debug, Default)]
struct DragWindow(f32);

/// True while the user drags the window: a drag's move arrived less than
/// [`HELD_SECS`] ago (the motion plugin shows the held pose meanwhile).
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct WindowHeld(pub bool);

/// Seconds after the last move of a drag that the window still counts as held.
const HELD_SECS: f32 = 0.4;

/// How long after pressing on the avatar the OS may report the drag's moves.
const DRAG_WINDOW_SECS: f32 = 30.0;

const SAVE_DELAY: f32 = 0.6;

/// Seconds after which a capture that has not come back counts as lost.
const LOST_CAPTURE_SECS: f32 = 2.0;

/// Squares of this many physical pixels make the Wayland input region (a few dozen
/// rectangles for an avatar; the hit test's radius is inside them).
const REGION_CELL: u32 = 8;

pub(super) fn plugin(app: &mut App) {
    let pointer = match GlobalPointer::connect() {
        Ok(pointer) => Some(pointer),
        Err(reason) => {
            info!(
                "no desktop pointer ({reason}): on native Wayland the window's input region \
                 lets clicks through, elsewhere the whole window catches them"
            );
            None
        }
    };
    let click_through = app.world().resource::<Settings>().window.click_through;
    app.insert_resource(WindowHits {
        pointer,
        ..default()
    })
    .insert_resource(ClickThrough(click_through))
    .init_resource::<ContextMenu>()
    .init_resource::<PendingSave>()
    .init_resource::<DragWindow>()
    .init_resource::<WindowHeld>()
    .add_systems(
        Update,
        (
            follow_click_through_setting,
            capture_hit_mask,
            wayland_input_region,
            hit_test,
            mouse_actions,
            follow_moves,
            save_window_changes,
        )
            .chain()
            .in_set(AppSystems::Update),
    );
}

/// A change of `window.click_through` by the user wins over the tray's or hotkey's switch.
fn follow_click_through_setting(
    settings: Res<Settings>,
    mut click_through: ResMut<ClickThrough>,
    mut setting: Local<Option<bool>>,
) {
    let now = settings.window.click_through;
    if setting.is_some_and(|before| before != now) {
        click_through.0 = now;
    }
    *setting = Some(now);
}

/// Asks for a capture of the window now and then; its alpha becomes the hit mask.
fn capture_hit_mask(
    mut commands: Commands,
    time: Res<Time>,
    click_through: Res<ClickThrough>,
    face: Res<FaceState>,
    mut hits: ResMut<WindowHits>,
) {
    if !click_through.0 || (hits.pointer.is_none() && hits.region.is_none()) {
        return;
    }
    hits.since_capture += time.delta_secs();
    // A capture that never reports back (seen under Xvfb while the window is configured) is
    // asked for again, rather than leaving the hit mask as it was for the rest of the run.
    if hits.capture_in_flight {
        if hits.since_capture < LOST_CAPTURE_SECS {
            return;
        }
        debug!("no hit-mask capture after {LOST_CAPTURE_SECS} s; asking again");
        hits.capture_in_flight = false;
    }
    let animating = face.expressions.moving() || face.lips.active() || face.head.moving();
    let interval = if animating || hits.mask.is_empty() {
        0.3
    } else {
        1.0
    };
    if hits.since_capture < interval {
        return;
    }
    hits.since_capture = 0.0;
    hits.capture_in_flight = true;
    commands.spawn(Screenshot::primary_window()).observe(
        |captured: On<ScreenshotCaptured>, mut hits: ResMut<WindowHits>| {
            hits.capture_in_flight = false;
            hits.since_capture = 0.0;
            let image = &captured.image;
            if let Some(data) = &image.data
                && let Some(mask) = HitMask::from_rgba(image.width(), image.height(), data)
            {
                if hits.mask.is_empty() {
                    debug!("hit mask ready ({}x{})", image.width(), image.height());
                }
                hits.mask = mask;
                hits.mask_serial += 1;
            }
        },
    );
}

/// On a native Wayland surface (no desktop pointer to read), the window's input region
/// follows the hit mask: the drawn squares with click-through on, the whole window with it
/// off or before the first capture. A panel is in the region from the first capture that
/// shows it (within 0.3 s while something moves, 1 s idle): egui's used area is one box
/// around every panel and shadow, too coarse to add (it covered the whole window here).
fn wayland_input_region(
    windows: Query<(&Window, &RawHandleWrapper), With<PrimaryWindow>>,
    click_through: Res<ClickThrough>,
    mut hits: ResMut<WindowHits>,
) {
    if hits.pointer.is_some() {
        return;
    }
    let Ok((window, handles)) = windows.single() else {
        return;
    };
    let hits = &mut *hits;
    if !hits.region_tried {
        hits.region_tried = true;
        let (display, handle) = (handles.get_display_handle(), handles.get_window_handle());
        if !input_region::is_wayland(display, handle) {
            return;
        }
        // SAFETY: the primary window's own handles; the window lives until the app exits
        // (closing it ends the app), and the region is never dropped (see `WindowHits`).
        #[allow(unsafe_code)]
        let connected = unsafe { InputRegion::connect(display, handle) };
        match connected {
            Ok(region) => {
                info!(
                    "native Wayland: clicks on transparent pixels pass through by the window's \
                     input region"
                );
                hits.region = Some(ManuallyDrop::new(region));
            }
            Err(reason) => {
                warn!(
                    "native Wayland without an input region ({reason}): the whole window catches clicks"
                );
            }
        }
    }
    let Some(region) = hits.region.as_mut() else {
        return;
    };
    let scale = window.scale_factor();
    let from = (hits.mask_serial, click_through.0, scale.to_bits());
    if hits.region_from == Some(from) {
        return;
    }
    hits.region_from = Some(from);
    let rectangles = (click_through.0 && !hits.mask.is_empty())
        .then(|| hits.mask.rectangles(REGION_CELL, scale));
    if hits.region_sent.as_ref() == Some(&rectangles) {
        return;
    }
    let sent = region.set(rectangles.as_deref());
    hits.region_sent = Some(rectangles.clone());
    match sent {
        Ok(()) => match &rectangles {
            Some(rectangles) => debug!("input region: {} rectangles", rectangles.len()),
            None => debug!("input region: the whole window"),
        },
        Err(reason) => warn!("cannot set the window's input region: {reason}"),
    }
}

/// True when egui has a panel under the pointer or is using it (dragging a slider).
fn over_panel(egui: Option<&EguiWantsInput>) -> bool {
    egui.is_some_and(|e| e.is_pointer_over_area() || e.wants_pointer_input())
}

/// Pointer position in physical window pixels: from the display server when we can ask it
/// (also while clicks pass through), else from the window's cursor events.
fn pointer_in_window(hits: &WindowHits, window: &Window) -> Option<Vec2> {
    if let (Some(pointer), WindowPosition::At(origin)) = (&hits.pointer, window.position)
        && let Some((x, y)) = pointer.position(window.scale_factor())
    {
        return Some(Vec2::new((x - origin.x) as f32, (y - origin.y) as f32));
    }
    window.physical_cursor_position()
}

fn hit_test(
    mut windows: Query<(&Window, &mut CursorOptions), With<PrimaryWindow>>,
    egui: Option<Res<EguiWantsInput>>,
    click_through: Res<ClickThrough>,
    buttons: Res<ButtonInput<MouseButton>>,
    mut hits: ResMut<WindowHits>,
    mut look: ResMut<LookTarget>,
) {
    let Ok((window, mut cursor)) = windows.single_mut() else {
        return;
    };
    let pointer = pointer_in_window(&hits, window);
    // Eyes and head follow the pointer anywhere on the desktop, relative to the face (upper
    // quarter of the window).
    let size = window.physical_size().as_vec2().max(Vec2::ONE);
    look.0 = pointer.map(|p| {
        let face = Vec2::new(size.x / 2.0, size.y * 0.25);
        Vec2::new(
            (p.x - face.x) / (size.x / 2.0),
            (face.y - p.y) / (size.y / 2.0),
        )
    });
    let over_panel = over_panel(egui.as_deref());
    let over_mascot =
        over_panel || hits.mask.is_empty() || pointer.is_some_and(|p| hits.mask.hit(p.x, p.y));
    hits.over_mascot = over_mascot;
    // Without the desktop pointer we could never switch hit-testing back on: keep it on.
    let catch = !click_through.0
        || hits.pointer.is_none()
        || over_mascot
        || buttons.pressed(MouseButton::Left);
    if cursor.hit_test != catch {
        cursor.hit_test = catch;
        debug!(
            "pointer at {pointer:?}: {}{}",
            if catch {
                "window catches clicks"
            } else {
                "clicks pass through"
            },
            if over_panel {
                " (egui: over a panel)"
            } else {
                ""
            }
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn mouse_actions(
    mut windows: Query<&mut Window, With<PrimaryWindow>>,
    egui: Option<Res<EguiWantsInput>>,
    buttons: Res<ButtonInput<MouseButton>>,
    mut wheel: MessageReader<MouseWheel>,
    hits: Res<WindowHits>,
    settings: Res<Settings>,
    mut state: ResMut<AppState>,
    mut menu: ResMut<ContextMenu>,
    mut pending: ResMut<PendingSave>,
    mut drag: ResMut<DragWindow>,
) {
    let Ok(mut window) = windows.single_mut() else {
        return;
    };
    let over_panel = over_panel(egui.as_deref());
    let on_avatar = hits.over_mascot && !over_panel;
    if buttons.just_pressed(MouseButton::Left) && on_avatar {
        menu.0 = None;
        window.start_drag_move();
        drag.0 = DRAG_WINDOW_SECS;
    }
    if buttons.just_pressed(MouseButton::Right) && on_avatar {
        menu.0 = window.cursor_position();
    }
    let lines: f32 = wheel
        .read()
        .map(|event| match event.unit {
            MouseScrollUnit::Line => event.y,
            MouseScrollUnit::Pixel => event.y / 40.0,
        })
        .sum();
    if lines != 0.0 && on_avatar {
        let scale = (state.window_scale(&settings) * 1.1f32.powf(lines))
            .clamp(ranges::WINDOW_SCALE.min, ranges::WINDOW_SCALE.max);
        state.window_scale = Some(scale);
        let base = &settings.window;
        window
            .resolution
            .set(base.width as f32 * scale, base.height as f32 * scale);
        pending.0 = Some(SAVE_DELAY);
    }
}

/// The window was moved (dragged, or by the window manager): remember where.
fn follow_moves(
    time: Res<Time>,
    mut moves: MessageReader<WindowMoved>,
    primary: Query<(), With<PrimaryWindow>>,
    settings: Res<Settings>,
    mut state: ResMut<AppState>,
    mut pending: ResMut<PendingSave>,
    mut drag: ResMut<DragWindow>,
    mut held: ResMut<WindowHeld>,
    mut since_move: Local<f32>,
) {
    drag.0 = (drag.0 - time.delta_secs()).max(0.0);
    *since_move += time.delta_secs();
    let moved = moves.read().filter(|m| primary.contains(m.window)).last();
    if moved.is_some() && drag.0 > 0.0 {
        *since_move = 0.0;
    }
    held.set_if_neq(WindowHeld(drag.0 > 0.0 && *since_move < HELD_SECS));
    let Some(moved) = moved else {
        return;
    };
    let position = Some((moved.position.x, moved.position.y));
    if drag.0 > 0.0 && state.window_position(&settings) != position {
        // Only a drag by the user counts: the window manager's placement is not a choice.
        debug!("window dragged to {position:?}");
        state.remember_window_position((moved.position.x, moved.position.y));
        pending.0 = Some(SAVE_DELAY);
    }
}

/// Writes position and scale once the user has stopped moving or scaling for a moment.
fn save_window_changes(
    time: Res<Time>,
    state: Res<AppState>,
    file: Res<StateFile>,
    mut pending: ResMut<PendingSave>,
    mut drag: ResMut<DragWindow>,
) {
    let Some(left) = pending.0.as_mut() else {
        return;
    };
    *left -= time.delta_secs();
    if *left > 0.0 {
        return;
    }
    pending.0 = None;
    drag.0 = 0.0;
    match file.save(&state) {
        Ok(()) => info!(
            "window position {:?} and scale {:?} saved",
            state.window_position, state.window_scale
        ),
        Err(reason) => warn!("window position not saved: {reason}"),
    }
}
