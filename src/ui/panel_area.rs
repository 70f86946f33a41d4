//! Where egui's panels are, for the avatar's visibility check ([`PanelArea`]): pixels under a
//! panel are not the avatar's.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};

use crate::avatar::PanelArea;

/// How far a panel's shadow reaches past it (logical pixels).
const SHADOW: f32 = 16.0;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<PanelArea>().add_systems(
        EguiPrimaryContextPass,
        (record_panel_area, log_panel_under_pointer),
    );
}

/// The egui layer under the pointer and its rectangle, logged (debug) when it changes: the
/// window's hit test trusts egui's "pointer over a panel", and this says which panel it was.
fn log_panel_under_pointer(
    mut contexts: EguiContexts,
    mut last: Local<Option<(String, String)>>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let now = ctx.pointer_latest_pos().and_then(|pos| {
        let layer = ctx.layer_id_at(pos)?;
        let rect = ctx.memory(|m| m.area_rect(layer.id));
        Some((format!("{layer:?}"), format!("{pos:?} in {rect:?}")))
    });
    if now.as_ref().map(|n| &n.0) != last.as_ref().map(|l| &l.0) {
        match &now {
            Some((layer, at)) => debug!("egui: pointer over {layer} ({at})"),
            None => debug!("egui: pointer over no panel"),
        }
        *last = now;
    }
    Ok(())
}

fn record_panel_area(mut contexts: EguiContexts, mut area: ResMut<PanelArea>) -> Result {
    let ctx = contexts.ctx_mut()?;
    // With the shadow egui draws around a window.
    let used = ctx.globally_used_rect().expand(SHADOW);
    let scale = ctx.pixels_per_point();
    let now = used.is_positive().then(|| {
        let corner = |x: f32, y: f32| [(x * scale).max(0.0) as u32, (y * scale).max(0.0) as u32];
        (
            corner(used.min.x.floor(), used.min.y.floor()),
            corner(used.max.x.ceil(), used.max.y.ceil()),
        )
    });
    if area.set_if_neq(PanelArea(now)) {
        debug!("egui: panels cover {now:?} (physical pixels, shadow included)");
    }
    Ok(())
}
