//! The Expressions panel (F4): a slider per preset, reset, easing speed and the automatic
//! motions, all sent as [`AvatarCommand`]s like any other sender's; the motion clips, each
//! played once or looped (a [`PlayMotion`]).

use super::theme::{EXPRESSIONS_KEY, RED};
use super::{Panel, toggle_panel};
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::avatar::expression::{EXPRESSIONS, Source};
use crate::avatar::{AvatarCommand, AvatarCommands, AvatarError, AvatarRig, FaceState};
use crate::motion::{EditMotion, KEPT, MotionLibrary, MotionSource, PlayMotion};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ExpressionsPanel>();
    app.add_systems(
        Update,
        toggle_panel::<ExpressionsPanel>.in_set(crate::AppSystems::Update),
    );
    app.add_systems(EguiPrimaryContextPass, expressions_panel);
}

#[derive(Resource, Default)]
pub struct ExpressionsPanel {
    pub open: bool,
}

impl Panel for ExpressionsPanel {
    const KEY: KeyCode = EXPRESSIONS_KEY;

    fn open(&mut self) -> &mut bool {
        &mut self.open
    }
}

fn expressions_panel(
    mut contexts: EguiContexts,
    mut panel: ResMut<ExpressionsPanel>,
    face: Res<FaceState>,
    commands: Res<AvatarCommands>,
    rigs: Query<&AvatarRig>,
    error: Res<AvatarError>,
    library: Res<MotionLibrary>,
    mut play: MessageWriter<PlayMotion>,
    mut edit: MessageWriter<EditMotion>,
) -> Result {
    if !panel.open {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let rig = rigs.iter().next();
    let mut open = true;
    egui::Window::new("Expressions")
        .id(egui::Id::new("expressions_panel"))
        .open(&mut open)
        .default_width(250.0)
        .anchor(egui::Align2::LEFT_TOP, [8.0, 8.0])
        .resizable(false)
        .show(ctx, |ui| {
            if let Some(reason) = &error.0 {
                ui.colored_label(RED, reason);
            }
            egui::ScrollArea::vertical()
                .max_height(330.0)
                .show(ui, |ui| {
                    for expression in EXPRESSIONS {
                        let mut weight = face.expressions.target(expression);
                        let note = match rig.map(|r| r.map.source(expression)) {
                            Some(Source::Fallback(via)) => {
                                let via: Vec<&str> = via.iter().map(|e| e.vrm_name()).collect();
                                format!(" (via {})", via.join("+"))
                            }
                            Some(Source::Missing) => " (not on this model)".to_owned(),
                            _ => String::new(),
                        };
                        let slider = egui::Slider::new(&mut weight, 0.0..=1.0)
                            .text(format!("{}{note}", expression.vrm_name()));
                        if ui.add(slider).changed() {
                            commands.send(AvatarCommand::SetExpression { expression, weight });
                        }
                    }
                });
            ui.separator();
            if ui.button("Reset").clicked() {
                commands.send(AvatarCommand::ResetExpressions);
            }
            let mut speed = face.expressions.speed;
            if ui
                .add(egui::Slider::new(&mut speed, 0.1..=20.0).text("speed (1/s)"))
                .changed()
            {
                commands.send(AvatarCommand::SetTransitionSpeed(speed));
            }
            let toggles = [
                (
                    "Auto blink",
                    face.auto_blink,
                    AvatarCommand::SetAutoBlink as fn(bool) -> _,
                ),
                (
                    "Head motion",
                    face.head_motion,
                    AvatarCommand::SetHeadMotion,
                ),
                ("Breathing", face.breathing, AvatarCommand::SetBreathing),
                (
                    "Look at cursor",
                    face.look_at_cursor,
                    AvatarCommand::SetLookAtCursor,
                ),
            ];
            for (label, mut on, command) in toggles {
                if ui.checkbox(&mut on, label).changed() {
                    commands.send(command(on));
                }
            }
            egui::CollapsingHeader::new("Motions").show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("motions")
                    .max_height(160.0)
                    .show(ui, |ui| {
                        for clip in &library.clips {
                            ui.horizontal(|ui| {
                                if ui.small_button("play").clicked() {
                                    play.write(PlayMotion {
                                        clip: clip.name.clone(),
                                        looping: false,
                                    });
                                }
                                if ui.small_button("loop").clicked() {
                                    play.write(PlayMotion {
                                        clip: clip.name.clone(),
                                        looping: true,
                                    });
                                }
                                ui.label(format!("{} ({:.1} s)", clip.name, clip.clip.duration));
                                if matches!(clip.source, MotionSource::File(_)) {
                                    let mut kept = clip.role == KEPT;
                                    if ui.checkbox(&mut kept, "idle").changed() {
                                        edit.write(EditMotion::Keep {
                                            clip: clip.name.clone(),
                                            keep: kept,
                                        });
                                    }
                                    if ui.small_button("remove").clicked() {
                                        edit.write(EditMotion::Remove(clip.name.clone()));
                                    }
                                }
                            });
                        }
                    });
                ui.label(
                    "Drop a .vrma file on the mascot to play it; \"idle\" keeps it among the \
                     idle variations (remembered).",
                );
            });
        });
    panel.open = open;
    Ok(())
}
