//! The settings panel (F2): edits the same settings as `mascot.ron`, validates them, saves
//! atomically and reverts. Also shows the current settings-file error, if any.

use std::path::PathBuf;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::config::{Profile, Settings, SettingsFile, SettingsStatus, Threads, validate};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<SettingsPanel>();
    app.add_systems(Update, toggle_panel.in_set(crate::AppSystems::Update));
    app.add_systems(
        EguiPrimaryContextPass,
        (settings_error_banner, settings_panel),
    );
}

/// Key that opens and closes the settings panel.
pub const SETTINGS_KEY: KeyCode = KeyCode::F2;

#[derive(Resource, Default)]
pub struct SettingsPanel {
    pub open: bool,
    /// The edit in progress; `None` until the panel opens.
    draft: Option<Settings>,
    message: Option<Result<String, String>>,
}

fn toggle_panel(keys: Res<ButtonInput<KeyCode>>, mut panel: ResMut<SettingsPanel>) {
    if keys.just_pressed(SETTINGS_KEY) {
        panel.open = !panel.open;
    }
}

fn settings_error_banner(mut contexts: EguiContexts, status: Res<SettingsStatus>) -> Result {
    let Some(error) = &status.error else {
        return Ok(());
    };
    egui::Window::new("Settings error")
        .title_bar(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_TOP, [0.0, 4.0])
        .show(contexts.ctx_mut()?, |ui| {
            ui.set_max_width(ui.ctx().content_rect().width() - 24.0);
            ui.colored_label(
                egui::Color32::from_rgb(230, 80, 70),
                format!("Settings not applied — {error}"),
            );
        });
    Ok(())
}

fn settings_panel(
    mut contexts: EguiContexts,
    mut panel: ResMut<SettingsPanel>,
    mut settings: ResMut<Settings>,
    mut file: ResMut<SettingsFile>,
) -> Result {
    if !panel.open {
        panel.draft = None;
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut draft = panel.draft.take().unwrap_or_else(|| settings.clone());
    let mut open = true;
    let mut action = None;
    egui::Window::new("Settings")
        .open(&mut open)
        .default_width(340.0)
        .default_pos(egui::pos2(8.0, 64.0))
        .vscroll(true)
        .show(ctx, |ui| {
            edit_settings(ui, &mut draft);
            ui.separator();
            let problems = validate(&draft);
            for problem in &problems {
                ui.colored_label(
                    egui::Color32::from_rgb(230, 80, 70),
                    format!("{}: {}", problem.key, problem.message),
                );
            }
            if !file.overrides.is_empty() {
                ui.label("Model/avatar given on the command line are not saved.");
            }
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(problems.is_empty(), egui::Button::new("Save"))
                    .clicked()
                {
                    action = Some(true);
                }
                if ui.button("Revert").clicked() {
                    action = Some(false);
                }
            });
            match &panel.message {
                Some(Ok(text)) => {
                    ui.label(text);
                }
                Some(Err(text)) => {
                    ui.colored_label(egui::Color32::from_rgb(230, 80, 70), text);
                }
                None => {}
            }
        });
    match action {
        Some(true) => match file.save_edit(&draft) {
            Ok(effective) => {
                settings.set_if_neq(effective);
                panel.message = Some(Ok("Saved.".into()));
            }
            Err(error) => panel.message = Some(Err(error)),
        },
        Some(false) => {
            draft = settings.clone();
            panel.message = Some(Ok("Reverted to the settings in force.".into()));
        }
        None => {}
    }
    panel.open = open;
    panel.draft = open.then_some(draft);
    Ok(())
}

fn edit_settings(ui: &mut egui::Ui, s: &mut Settings) {
    ui.collapsing("Window", |ui| {
        ui.add(egui::DragValue::new(&mut s.window.width).prefix("width "));
        ui.add(egui::DragValue::new(&mut s.window.height).prefix("height "));
        ui.add(egui::Slider::new(&mut s.window.scale, 0.1..=10.0).text("scale"));
        ui.checkbox(&mut s.window.always_on_top, "always on top");
        ui.checkbox(&mut s.window.click_through, "click-through");
        ui.add(egui::Slider::new(&mut s.window.idle_fps, 1.0..=240.0).text("idle FPS"));
        ui.add(egui::Slider::new(&mut s.window.active_fps, 1.0..=240.0).text("active FPS"));
    });
    ui.collapsing("Avatar", |ui| {
        path_field(ui, "VRM file", &mut s.avatar.vrm_path);
        ui.add(
            egui::Slider::new(&mut s.avatar.transition_speed, 0.1..=100.0)
                .logarithmic(true)
                .text("transition speed"),
        );
        ui.checkbox(&mut s.avatar.auto_blink, "auto blink");
        ui.checkbox(&mut s.avatar.head_motion, "idle head motion");
        ui.checkbox(&mut s.avatar.breathing, "breathing");
        ui.checkbox(&mut s.avatar.look_at_cursor, "look at cursor");
    });
    egui::CollapsingHeader::new("Language model")
        .default_open(true)
        .show(ui, |ui| {
            path_field(ui, "GGUF model", &mut s.llm.model_path);
            egui::ComboBox::from_label("profile")
                .selected_text(s.llm.profile.as_str())
                .show_ui(ui, |ui| {
                    for profile in Profile::ALL {
                        ui.selectable_value(&mut s.llm.profile, profile, profile.as_str());
                    }
                });
            let mut auto_threads = s.llm.n_threads == Threads::Auto;
            ui.horizontal(|ui| {
                ui.checkbox(&mut auto_threads, "auto threads");
                if auto_threads {
                    s.llm.n_threads = Threads::Auto;
                } else {
                    let mut n = match s.llm.n_threads {
                        Threads::Count(n) => n,
                        Threads::Auto => 2,
                    };
                    ui.add(egui::DragValue::new(&mut n).range(1..=512));
                    s.llm.n_threads = Threads::Count(n);
                }
            });
            let mut auto_layers = s.llm.n_gpu_layers.is_none();
            ui.horizontal(|ui| {
                ui.checkbox(&mut auto_layers, "GPU layers from profile");
                if auto_layers {
                    s.llm.n_gpu_layers = None;
                } else {
                    let mut n = s.llm.n_gpu_layers.unwrap_or(0);
                    ui.add(egui::DragValue::new(&mut n).range(0..=1000));
                    s.llm.n_gpu_layers = Some(n);
                }
            });
            ui.add(egui::DragValue::new(&mut s.llm.n_ctx).prefix("context "));
        });
    ui.collapsing("Sampling", |ui| {
        let sampling = &mut s.llm.sampling;
        ui.add(egui::Slider::new(&mut sampling.temperature, 0.0..=2.0).text("temperature"));
        ui.add(egui::Slider::new(&mut sampling.top_k, 0..=200).text("top k"));
        ui.add(egui::Slider::new(&mut sampling.top_p, 0.0..=1.0).text("top p"));
        ui.add(egui::Slider::new(&mut sampling.min_p, 0.0..=1.0).text("min p"));
        ui.add(egui::Slider::new(&mut sampling.repeat_penalty, 0.5..=2.0).text("repeat penalty"));
        ui.add(egui::DragValue::new(&mut sampling.max_tokens).prefix("max tokens "));
    });
    ui.collapsing("Persona", |ui| {
        ui.horizontal(|ui| {
            ui.label("name");
            ui.text_edit_singleline(&mut s.persona.name);
        });
        ui.label("system prompt");
        ui.text_edit_multiline(&mut s.persona.system_prompt);
    });
}

fn path_field(ui: &mut egui::Ui, label: &str, path: &mut Option<PathBuf>) {
    let mut text = path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    ui.horizontal(|ui| {
        ui.label(label);
        if ui.text_edit_singleline(&mut text).changed() {
            *path = (!text.trim().is_empty()).then(|| PathBuf::from(text.trim()));
        }
    });
}
