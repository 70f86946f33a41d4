//! Keeps the conversation across runs: restored at start, each finished turn appended to the
//! history file off the frame loop, cleared on request.

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::tasks::IoTaskPool;

use super::history::{HistoryEntry, append_history, clear_history, history_path, load_history};
use super::state::{ChatHistory, ClearHistory};
use crate::AppSystems;
use crate::config::Settings;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, restore_history);
    app.add_systems(
        Update,
        (clear_on_request, save_new_turns)
            .chain()
            .in_set(AppSystems::Apply),
    );
}

/// The history file in use and how many turns of [`ChatHistory`] it already holds.
#[derive(Resource, Debug)]
struct HistoryFile {
    path: Option<PathBuf>,
    saved: usize,
}

fn restore_history(
    mut commands: Commands,
    settings: Res<Settings>,
    mut history: ResMut<ChatHistory>,
) {
    let path = history_path(&settings.chat);
    if let Some(path) = &path {
        match load_history(path) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    warn!("{warning}");
                }
                history.turns = loaded.entries.into_iter().map(|e| e.turn).collect();
                if !history.turns.is_empty() {
                    info!(
                        "restored {} turns from {}",
                        history.turns.len(),
                        path.display()
                    );
                }
            }
            Err(err) => warn!("cannot read the chat history {}: {err}", path.display()),
        }
    }
    let saved = history.turns.len();
    commands.insert_resource(HistoryFile { path, saved });
}

fn clear_on_request(
    mut requests: MessageReader<ClearHistory>,
    mut history: ResMut<ChatHistory>,
    file: Option<ResMut<HistoryFile>>,
) {
    if requests.read().count() == 0 {
        return;
    }
    history.turns.clear();
    history.context_start = 0;
    history.last_error = None;
    if let Some(mut file) = file {
        file.saved = 0;
        if let Some(path) = &file.path
            && let Err(err) = clear_history(path)
        {
            warn!("cannot clear the chat history {}: {err}", path.display());
        }
    }
}

fn save_new_turns(history: Res<ChatHistory>, file: Option<ResMut<HistoryFile>>) {
    let Some(mut file) = file else { return };
    if history.turns.len() <= file.saved {
        file.saved = file.saved.min(history.turns.len());
        return;
    }
    let new: Vec<HistoryEntry> = history.turns[file.saved..]
        .iter()
        .cloned()
        .map(HistoryEntry::now)
        .collect();
    file.saved = history.turns.len();
    let Some(path) = file.path.clone() else {
        return;
    };
    // fsync can take milliseconds: never in the frame loop.
    IoTaskPool::get()
        .spawn(async move {
            for entry in &new {
                if let Err(err) = append_history(&path, entry) {
                    warn!("cannot save the chat history to {}: {err}", path.display());
                    break;
                }
            }
        })
        .detach();
}
