//! Where egui's panels are, for the avatar's visibility check ([`PanelArea`]): pixels under a
//! panel are not the avatar's.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};

use crate::avatar::PanelArea;

/// How far a panel's shadow reaches past it (logical pixels).
const SHADOW: f32 = 16.0;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<PanelArea>()
        .add_systems(EguiPrimaryContextPass, record_panel_area);
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
    area.set_if_neq(PanelArea(now));
    Ok(())
}
