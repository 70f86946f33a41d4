//! The settings panel (F2): edits the same settings as `mascot.ron`, validates them, saves
//! atomically and reverts. Also shows the current settings-file error, if any.

use std::path::PathBuf;

use super::theme::{RED, SETTINGS_KEY, outcome_line};
use super::{Panel, toggle_panel};
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::config::ranges::{self, Limit};
use crate::config::{
    ListenSettings, Profile, Settings, SettingsFile, SettingsStatus, SettingsWriter, Threads,
    VoiceSettings, validate,
};
use crate::voice::catalogue::VOICES;
use crate::voice::recognizers::RECOGNIZERS;
use crate::voice::{DownloadRecognizer, DownloadVoice, SaySample, VoiceDownloads, VoiceStatus};

/// What the sample button says.
const SAMPLE_TEXT: &str = "Hello! I am your desktop companion. Shall we talk a little?";
const SAMPLE_TEXT_FR: &str = "Bonjour ! Je suis ta compagne de bureau. On discute un peu ?";

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<SettingsPanel>();
    app.add_systems(
        Update,
        toggle_panel::<SettingsPanel>.in_set(crate::AppSystems::Update),
    );
    app.add_systems(
        EguiPrimaryContextPass,
        (settings_error_banner, settings_panel),
    );
}

#[derive(Resource, Default)]
pub struct SettingsPanel {
    pub open: bool,
    /// The edit in progress; `None` until the panel opens.
    draft: Option<Settings>,
    message: Option<Result<String, String>>,
}

impl Panel for SettingsPanel {
    const KEY: KeyCode = SETTINGS_KEY;

    fn open(&mut self) -> &mut bool {
        &mut self.open
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
                RED,
                format!(
                    "Settings error (the values that load are used until it is fixed) — {error}"
                ),
            );
        });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn settings_panel(
    mut contexts: EguiContexts,
    mut panel: ResMut<SettingsPanel>,
    mut writer: SettingsWriter,
    mut file: ResMut<SettingsFile>,
    voice_status: Res<VoiceStatus>,
    voice_downloads: Res<VoiceDownloads>,
    mut download: MessageWriter<DownloadVoice>,
    mut download_recognizer: MessageWriter<DownloadRecognizer>,
    mut sample: MessageWriter<SaySample>,
) -> Result {
    if !panel.open {
        panel.draft = None;
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut draft = panel
        .draft
        .take()
        .unwrap_or_else(|| writer.current().clone());
    let mut open = true;
    let mut action = None;
    // As tall as the window allows below its place (egui's default stops at about 400 px,
    // which hid the listening section's recognizers under the scroll).
    let height = (ctx.content_rect().height() - 64.0 - 16.0).max(200.0);
    egui::Window::new("Settings")
        .open(&mut open)
        .default_width(340.0)
        .default_height(height)
        .default_pos(egui::pos2(8.0, 64.0))
        .vscroll(true)
        .show(ctx, |ui| {
            let mut extra = |ui: &mut egui::Ui, section: Extra| match section {
                Extra::Voice(voice) => voice_state(
                    ui,
                    voice,
                    &voice_status,
                    &voice_downloads,
                    &mut download,
                    &mut sample,
                ),
                Extra::Listen(listen) => {
                    recognizer_state(ui, listen, &voice_downloads, &mut download_recognizer);
                }
            };
            edit_settings(ui, &mut draft, false, &mut extra);
            ui.separator();
            let problems = validate(&draft);
            for problem in &problems {
                ui.colored_label(RED, format!("{}: {}", problem.key, problem.message));
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
            outcome_line(ui, &panel.message);
        });
    match action {
        Some(true) => match file.save_edit(&draft) {
            Ok(effective) => {
                writer.put_in_force(effective);
                panel.message = Some(Ok("Saved.".into()));
            }
            Err(error) => panel.message = Some(Err(error)),
        },
        Some(false) => {
            draft = writer.current().clone();
            panel.message = Some(Ok("Reverted to the settings in force.".into()));
        }
        None => {}
    }
    panel.open = open;
    panel.draft = open.then_some(draft);
    Ok(())
}

/// Every field's range comes from [`ranges`], the table validation uses: a field narrower
/// than what the file may hold would clamp the value as soon as the panel shows it.
/// `extra` draws what is not a setting under a section's settings (the voice's state,
/// download and sample; the recognizers to download).
pub(crate) fn edit_settings(
    ui: &mut egui::Ui,
    s: &mut Settings,
    all_open: bool,
    extra: &mut dyn FnMut(&mut egui::Ui, Extra),
) {
    let section = |title: &str| egui::CollapsingHeader::new(title).default_open(all_open);
    section("Window").show(ui, |ui| {
        ui.add(
            egui::DragValue::new(&mut s.window.width)
                .range(ranges::WINDOW_WIDTH.range())
                .prefix("width "),
        );
        ui.add(
            egui::DragValue::new(&mut s.window.height)
                .range(ranges::WINDOW_HEIGHT.range())
                .prefix("height "),
        );
        ui.add(egui::Slider::new(&mut s.window.scale, ranges::WINDOW_SCALE.range()).text("scale"));
        ui.checkbox(&mut s.window.always_on_top, "always on top");
        ui.checkbox(&mut s.window.click_through, "click-through");
        ui.checkbox(&mut s.window.show_in_taskbar, "show in taskbar");
        ui.add(
            egui::Slider::new(&mut s.window.idle_fps, ranges::IDLE_FPS.range()).text("idle FPS"),
        );
        ui.add(
            egui::Slider::new(&mut s.window.active_fps, ranges::ACTIVE_FPS.range())
                .text("active FPS"),
        );
    });
    section("Desktop").show(ui, |ui| {
        ui.checkbox(&mut s.desktop.autostart, "start with the system");
        let hotkeys = &mut s.desktop.hotkeys;
        hotkey_field(ui, "click-through key", &mut hotkeys.click_through);
        hotkey_field(ui, "show/hide key", &mut hotkeys.show_hide);
        hotkey_field(ui, "chat key", &mut hotkeys.chat);
    });
    section("Avatar").show(ui, |ui| {
        path_field(ui, "VRM file", &mut s.avatar.vrm_path);
        ui.add(
            egui::Slider::new(
                &mut s.avatar.transition_speed,
                ranges::TRANSITION_SPEED.range(),
            )
            .logarithmic(true)
            .text("transition speed"),
        );
        ui.checkbox(&mut s.avatar.auto_blink, "auto blink");
        ui.checkbox(&mut s.avatar.head_motion, "idle head motion");
        ui.checkbox(&mut s.avatar.breathing, "breathing");
        ui.checkbox(&mut s.avatar.look_at_cursor, "look at cursor");
    });
    egui::CollapsingHeader::new("Motion").show(ui, |ui| {
        ui.checkbox(&mut s.motion.enabled, "motion clips");
        ui.checkbox(&mut s.motion.idle_variations, "idle variations");
        ui.checkbox(&mut s.motion.gestures, "gestures from the mood");
        ui.add(
            egui::Slider::new(
                &mut s.motion.sleep_after_secs,
                ranges::MOTION_SLEEP_AFTER.range(),
            )
            .logarithmic(true)
            .text("sleepy after (s, 0 = never)"),
        );
    });
    section("Memory").show(ui, |ui| {
        ui.checkbox(
            &mut s.memory.enabled,
            "remember what I tell (memory.sqlite)",
        );
        path_field(ui, "embedding GGUF", &mut s.memory.embedding_model);
        ui.add(
            egui::Slider::new(&mut s.memory.budget_tokens, ranges::MEMORY_BUDGET.range())
                .text("recalled tokens at most"),
        );
        ui.add(
            egui::Slider::new(
                &mut s.memory.notes_after_secs,
                ranges::MEMORY_NOTES_AFTER.range(),
            )
            .logarithmic(true)
            .text("model's notes after (s, 0 = never)"),
        );
    });
    egui::CollapsingHeader::new("Voice")
        .default_open(true)
        .show(ui, |ui| {
            ui.checkbox(&mut s.voice.enabled, "speak the replies");
            egui::ComboBox::from_label("voice")
                .selected_text(s.voice.voice.as_str())
                .show_ui(ui, |ui| {
                    for voice in VOICES {
                        ui.selectable_value(
                            &mut s.voice.voice,
                            voice.id.to_owned(),
                            format!(
                                "{} · {} · {:.0} MiB · {}",
                                voice.id,
                                voice.language,
                                voice.model_bytes as f64 / 1_048_576.0,
                                voice.licence
                            ),
                        );
                    }
                });
            ui.add(
                egui::Slider::new(&mut s.voice.speed, ranges::VOICE_SPEED.range()).text("speed"),
            );
            ui.add(
                egui::Slider::new(&mut s.voice.volume, ranges::VOICE_VOLUME.range()).text("volume"),
            );
            let mut device = s.voice.device.clone().unwrap_or_default();
            ui.horizontal(|ui| {
                ui.label("output device");
                ui.add(egui::TextEdit::singleline(&mut device).hint_text("default"));
            });
            s.voice.device = (!device.trim().is_empty()).then(|| device.trim().to_owned());
            path_field(ui, "eSpeak NG program", &mut s.voice.espeak_ng);
            extra(ui, Extra::Voice(&s.voice));
        });
    // Open when listening is on: its recognizers to download are what such a user looks for.
    egui::CollapsingHeader::new("Listening")
        .default_open(s.listen.enabled)
        .show(ui, |ui| {
            ui.checkbox(
                &mut s.listen.enabled,
                "listen while the push-to-talk key is held",
            );
            ui.checkbox(&mut s.listen.hands_free, "hands-free (no key)");
            ui.checkbox(&mut s.listen.send_at_once, "send what was heard at once");
            ui.checkbox(&mut s.listen.partial_words, "show the words while I speak");
            ui.checkbox(
                &mut s.listen.barge_in,
                "speaking stops the mascot (headphones)",
            );
            ui.horizontal(|ui| {
                ui.label("language");
                ui.add(egui::TextEdit::singleline(&mut s.listen.language).hint_text("auto"));
            });
            let mut device = s.listen.device.clone().unwrap_or_default();
            ui.horizontal(|ui| {
                ui.label("input device");
                ui.add(egui::TextEdit::singleline(&mut device).hint_text("default"));
            });
            s.listen.device = (!device.trim().is_empty()).then(|| device.trim().to_owned());
            path_field(ui, "recognizer folder", &mut s.listen.recognizer);
            path_field(ui, "Silero VAD model", &mut s.listen.vad);
            extra(ui, Extra::Listen(&s.listen));
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
            threads_field(ui, "auto threads", &mut s.llm.n_threads, ranges::N_THREADS);
            threads_field(
                ui,
                "auto prompt threads",
                &mut s.llm.n_threads_batch,
                ranges::N_THREADS_BATCH,
            );
            let mut auto_layers = s.llm.n_gpu_layers.is_none();
            ui.horizontal(|ui| {
                ui.checkbox(&mut auto_layers, "GPU layers from profile");
                if auto_layers {
                    s.llm.n_gpu_layers = None;
                } else {
                    let mut n = s.llm.n_gpu_layers.unwrap_or(0);
                    ui.add(egui::DragValue::new(&mut n).range(ranges::N_GPU_LAYERS.range()));
                    s.llm.n_gpu_layers = Some(n);
                }
            });
            ui.add(
                egui::DragValue::new(&mut s.llm.n_ctx)
                    .range(ranges::N_CTX.range())
                    .prefix("context "),
            );
        });
    section("Sampling").show(ui, |ui| {
        let n_ctx = s.llm.n_ctx;
        let sampling = &mut s.llm.sampling;
        ui.add(
            egui::Slider::new(&mut sampling.temperature, ranges::TEMPERATURE.range())
                .text("temperature"),
        );
        ui.add(
            egui::DragValue::new(&mut sampling.top_k)
                .range(ranges::TOP_K.range())
                .prefix("top k "),
        );
        ui.add(egui::Slider::new(&mut sampling.top_p, ranges::TOP_P.range()).text("top p"));
        ui.add(egui::Slider::new(&mut sampling.min_p, ranges::MIN_P.range()).text("min p"));
        ui.add(
            egui::Slider::new(&mut sampling.repeat_penalty, ranges::REPEAT_PENALTY.range())
                .text("repeat penalty"),
        );
        // Its bound follows n_ctx, which the user may be editing: validation reports it.
        ui.add(
            egui::DragValue::new(&mut sampling.max_tokens)
                .range(ranges::max_tokens(n_ctx).range())
                .clamp_existing_to_range(false)
                .prefix("max tokens "),
        );
    });
    section("Persona").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label("name");
            ui.text_edit_singleline(&mut s.persona.name);
        });
        ui.label("system prompt");
        ui.text_edit_multiline(&mut s.persona.system_prompt);
    });
}

fn threads_field(ui: &mut egui::Ui, label: &str, threads: &mut Threads, limit: Limit<u16>) {
    let mut auto = *threads == Threads::Auto;
    ui.horizontal(|ui| {
        ui.checkbox(&mut auto, label);
        if auto {
            *threads = Threads::Auto;
        } else {
            let mut n = match *threads {
                Threads::Count(n) => n,
                Threads::Auto => 2,
            };
            ui.add(egui::DragValue::new(&mut n).range(limit.range()));
            *threads = Threads::Count(n);
        }
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

/// A section whose settings have more under them than settings ([`edit_settings`]).
pub(crate) enum Extra<'a> {
    Voice(&'a VoiceSettings),
    Listen(&'a ListenSettings),
}

/// The catalogue's recognizers under the listening settings: downloaded, downloading, or a
/// button; and which language each hears.
fn recognizer_state(
    ui: &mut egui::Ui,
    listen: &ListenSettings,
    downloads: &VoiceDownloads,
    download: &mut MessageWriter<DownloadRecognizer>,
) {
    for entry in RECOGNIZERS {
        let label = format!(
            "{} ({}, {}, {:.0} MB)",
            entry.name,
            entry.languages,
            entry.licence,
            entry.bytes() as f64 / 1e6
        );
        match &downloads.active {
            _ if downloads.recognizer_installed(entry.id) => {
                ui.weak(format!("{label}: downloaded"));
            }
            Some((active, done, total)) if active == entry.id => {
                ui.add(
                    egui::ProgressBar::new(*done as f32 / (*total).max(1) as f32)
                        .text(format!(
                            "{}: {:.0} %",
                            entry.name,
                            *done as f64 * 100.0 / (*total).max(1) as f64
                        ))
                        .desired_width(300.0),
                );
            }
            Some(_) => {
                ui.weak(format!("{label}: after the download running"));
            }
            None => {
                if ui
                    .button(format!("Download {label}"))
                    .on_hover_text(
                        "Resumable and checked (SHA-256); kept in the recognizers folder",
                    )
                    .clicked()
                {
                    download.write(DownloadRecognizer(entry.id.to_owned()));
                }
            }
        }
    }
    if !listen.language.trim().eq_ignore_ascii_case("en") {
        ui.weak("Moonshine hears English: language en uses it (about five times faster).");
    }
}

/// The voice's state under its settings: why it is silent, the download of a catalogue voice
/// (with progress), and a sample of the voice in force.
fn voice_state(
    ui: &mut egui::Ui,
    voice: &VoiceSettings,
    status: &VoiceStatus,
    downloads: &VoiceDownloads,
    download: &mut MessageWriter<DownloadVoice>,
    sample: &mut MessageWriter<SaySample>,
) {
    let id = voice.voice.trim();
    let in_catalogue = VOICES.iter().any(|v| v.id == id);
    match &downloads.active {
        Some((active, done, total)) => {
            ui.add(
                egui::ProgressBar::new(*done as f32 / (*total).max(1) as f32)
                    .text(format!(
                        "{active}: {:.1} of {:.1} MiB",
                        *done as f64 / 1_048_576.0,
                        *total as f64 / 1_048_576.0
                    ))
                    .desired_width(300.0),
            );
        }
        None if in_catalogue
            && !downloads.installed(id)
            && ui
                .button(format!("Download {id}"))
                .on_hover_text("Resumable and checked (SHA-256); kept in the voices folder")
                .clicked() =>
        {
            download.write(DownloadVoice(id.to_owned()));
        }
        None => {}
    }
    if let Some(error) = &downloads.error {
        ui.colored_label(RED, error);
    }
    match status {
        VoiceStatus::Off => {
            ui.weak("The voice is off: replies are text only.");
        }
        VoiceStatus::Loading => {
            ui.weak("Loading the voice…");
        }
        VoiceStatus::Ready(_) => {
            if ui.button("Play a sample").clicked() {
                let text = if id.starts_with("fr") {
                    SAMPLE_TEXT_FR
                } else {
                    SAMPLE_TEXT
                };
                sample.write(SaySample(text.to_owned()));
            }
        }
        // While its download runs, "not downloaded yet" says nothing new.
        VoiceStatus::Failed(_) if downloads.active.is_some() => {}
        VoiceStatus::Failed(reason) => {
            ui.colored_label(RED, reason);
        }
    }
}

/// A global shortcut such as "Ctrl+Alt+Shift+C"; empty = none. Checked on Save.
fn hotkey_field(ui: &mut egui::Ui, label: &str, value: &mut Option<String>) {
    let mut text = value.clone().unwrap_or_default();
    ui.horizontal(|ui| {
        ui.label(label);
        ui.text_edit_singleline(&mut text);
    });
    *value = (!text.trim().is_empty()).then_some(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opening the panel must not change a value: with every section open, a few frames of the
    /// real widgets leave settings at the edges of their valid ranges as they were.
    #[test]
    fn showing_the_panel_changes_no_valid_value() {
        let mut settings = Settings::default();
        settings.window.width = 8000;
        settings.window.scale = 9.5;
        settings.window.idle_fps = 1.0;
        settings.avatar.transition_speed = 99.0;
        settings.motion.sleep_after_secs = 86_000.0;
        settings.memory.budget_tokens = 4096;
        settings.voice.speed = 1.9;
        settings.voice.volume = 0.1;
        settings.llm.n_threads = Threads::Count(300);
        settings.llm.n_threads_batch = Threads::Count(1);
        settings.llm.n_gpu_layers = Some(999);
        settings.llm.n_ctx = 1_000_000;
        let sampling = &mut settings.llm.sampling;
        sampling.temperature = 4.5;
        sampling.top_k = 5000;
        sampling.repeat_penalty = 4.0;
        sampling.min_p = 1.0;
        sampling.max_tokens = 1_000_000;
        assert_eq!(validate(&settings), Vec::new());
        let ctx = egui::Context::default();
        let mut draft = settings.clone();
        for _ in 0..3 {
            let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
                edit_settings(ui, &mut draft, true, &mut |_, _| {});
            });
            // No renderer here to upload the font texture to.
            output.textures_delta.clear();
        }
        assert_eq!(draft, settings);
    }
}
