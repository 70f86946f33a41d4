//! Keeps the conversation across runs: restored at start, each finished turn appended to the
//! history file by [`HistoryWriter`]'s thread (retried when it fails, flushed at exit), cleared
//! on request.

use bevy::prelude::*;

use crate::AppSystems;
use crate::config::Settings;
use crate::llm::conversation::history::{HistoryEntry, HistoryWriter, history_path, load_history};
use crate::llm::state::{ChatHistory, ClearHistory};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, restore_history);
    app.add_systems(
        Update,
        (clear_on_request, save_new_turns, show_write_failures)
            .chain()
            .in_set(AppSystems::Apply),
    );
}

/// The history's writer (none without a history file) and how many turns of [`ChatHistory`]
/// it was given. Dropped with the world at exit, which waits for the writes in flight.
#[derive(Resource)]
struct HistoryFile {
    writer: Option<HistoryWriter>,
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
    let writer = path.and_then(|path| match HistoryWriter::new(path) {
        Ok(writer) => Some(writer),
        Err(err) => {
            warn!("cannot start the chat history's writer: {err}; turns are not saved");
            None
        }
    });
    commands.insert_resource(HistoryFile { writer, saved });
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
        if let Some(writer) = &file.writer {
            writer.clear();
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
    // fsync can take milliseconds: never in the frame loop.
    if let Some(writer) = &file.writer {
        writer.append(new);
    }
}

/// A write that failed (and is being retried) is said in the chat panel.
fn show_write_failures(file: Option<Res<HistoryFile>>, mut history: ResMut<ChatHistory>) {
    let Some(writer) = file.as_ref().and_then(|f| f.writer.as_ref()) else {
        return;
    };
    if let Some(failure) = writer.failures().try_iter().last() {
        warn!("{failure}");
        history.last_error = Some(failure);
    }
}
