//! A see-through window: the composite alpha mode each platform needs, checked against what
//! the window's surface supports before Bevy configures it.
//!
//! Bevy hands the window's `composite_alpha_mode` to wgpu as is, and configuring a surface
//! with a mode it does not list is a wgpu validation error (a panic). So, just before Bevy
//! creates the surface, we create a throw-away surface for the same window, read its
//! capabilities, and replace an unsupported mode by the best supported one, with a log line.

use bevy::prelude::*;
use bevy::render::renderer::{RenderAdapter, RenderInstance};
use bevy::render::view::window::{ExtractedWindow, create_surfaces};
use bevy::render::{Render, RenderApp};
use bevy::window::{CompositeAlphaMode, RawHandleWrapper};

/// The mode that makes the clear colour's alpha reach the desktop on each platform.
/// Linux (X11 compositors) and Windows (also with NVIDIA drivers, where `Auto` gives a black
/// background: desktop-homunculus PR #74) take premultiplied alpha; macOS post-multiplied.
pub fn composite_alpha_mode() -> CompositeAlphaMode {
    if cfg!(target_os = "macos") {
        CompositeAlphaMode::PostMultiplied
    } else {
        CompositeAlphaMode::PreMultiplied
    }
}

/// Modes that keep the window transparent, best first, then the always-valid `Auto`.
const FALLBACKS: [CompositeAlphaMode; 4] = [
    CompositeAlphaMode::PreMultiplied,
    CompositeAlphaMode::PostMultiplied,
    CompositeAlphaMode::Inherit,
    CompositeAlphaMode::Auto,
];

fn to_wgpu(mode: CompositeAlphaMode) -> wgpu::CompositeAlphaMode {
    match mode {
        CompositeAlphaMode::Auto => wgpu::CompositeAlphaMode::Auto,
        CompositeAlphaMode::Opaque => wgpu::CompositeAlphaMode::Opaque,
        CompositeAlphaMode::PreMultiplied => wgpu::CompositeAlphaMode::PreMultiplied,
        CompositeAlphaMode::PostMultiplied => wgpu::CompositeAlphaMode::PostMultiplied,
        CompositeAlphaMode::Inherit => wgpu::CompositeAlphaMode::Inherit,
    }
}

/// `wanted` if the surface supports it, else the first supported fallback (`Auto` is always
/// accepted by wgpu). The second value says why the mode changed.
pub fn choose_alpha_mode(
    wanted: CompositeAlphaMode,
    supported: &[wgpu::CompositeAlphaMode],
) -> (CompositeAlphaMode, Option<String>) {
    let ok = |mode: CompositeAlphaMode| {
        mode == CompositeAlphaMode::Auto || supported.contains(&to_wgpu(mode))
    };
    if ok(wanted) {
        return (wanted, None);
    }
    let chosen = FALLBACKS
        .into_iter()
        .find(|mode| ok(*mode))
        .unwrap_or(CompositeAlphaMode::Auto);
    let note = format!(
        "composite alpha mode {wanted:?} is not supported by this window's surface \
         (supported: {supported:?}); using {chosen:?}{}",
        if chosen == CompositeAlphaMode::Auto {
            ": the background may be opaque (see README troubleshooting)"
        } else {
            ""
        }
    );
    (chosen, Some(note))
}

pub(super) fn plugin(app: &mut App) {
    if let Some(render_app) = app.get_sub_app_mut(RenderApp) {
        render_app.add_systems(Render, check_alpha_modes.before(create_surfaces));
    }
}

/// Checks each new window's alpha mode against its surface's capabilities.
#[allow(unsafe_code)]
fn check_alpha_modes(
    // Surfaces must be created on the main thread on macOS (as Bevy's `create_surfaces`).
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    _main_thread: bevy::ecs::system::NonSendMarker,
    mut windows: Query<(Entity, &mut ExtractedWindow, &RawHandleWrapper)>,
    instance: Res<RenderInstance>,
    adapter: Res<RenderAdapter>,
    mut checked: Local<bevy::platform::collections::HashMap<Entity, CompositeAlphaMode>>,
) {
    for (entity, mut window, handle) in &mut windows {
        if let Some(mode) = checked.get(&entity) {
            window.alpha_mode = *mode;
            continue;
        }
        let target = wgpu::SurfaceTargetUnsafe::RawHandle {
            raw_display_handle: Some(handle.get_display_handle()),
            raw_window_handle: handle.get_window_handle(),
        };
        // SAFETY: the same handles Bevy's `create_surfaces` turns into the window's surface
        // right after this system; they stay valid while the window's `ExtractedWindow` exists,
        // and this temporary surface is dropped before that one is created.
        let surface = match unsafe { instance.create_surface_unsafe(target) } {
            Ok(surface) => surface,
            Err(err) => {
                warn!("cannot check the window's alpha modes: {err}");
                checked.insert(entity, window.alpha_mode);
                continue;
            }
        };
        let supported = surface.get_capabilities(&adapter).alpha_modes;
        drop(surface);
        let (mode, note) = choose_alpha_mode(window.alpha_mode, &supported);
        match note {
            Some(note) => warn!("{note}"),
            None => info!("composite alpha mode {mode:?} (supported: {supported:?})"),
        }
        window.alpha_mode = mode;
        checked.insert(entity, mode);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::CompositeAlphaMode as W;

    #[test]
    fn a_supported_mode_is_kept_and_an_unsupported_one_falls_back_with_a_reason() {
        let (mode, note) = choose_alpha_mode(
            CompositeAlphaMode::PreMultiplied,
            &[W::Opaque, W::PreMultiplied],
        );
        assert_eq!((mode, note), (CompositeAlphaMode::PreMultiplied, None));

        let (mode, note) = choose_alpha_mode(
            CompositeAlphaMode::PostMultiplied,
            &[W::Opaque, W::PreMultiplied],
        );
        assert_eq!(mode, CompositeAlphaMode::PreMultiplied);
        assert!(note.is_some_and(|n| n.contains("PostMultiplied is not supported")));

        // Only opaque (DX12 swap chains without DirectComposition): Auto, with a warning.
        let (mode, note) = choose_alpha_mode(CompositeAlphaMode::PreMultiplied, &[W::Opaque]);
        assert_eq!(mode, CompositeAlphaMode::Auto);
        assert!(note.is_some_and(|n| n.contains("may be opaque")));
    }
}
