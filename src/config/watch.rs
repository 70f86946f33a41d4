//! Hot reload: an external edit of the settings file applies live; a broken edit is reported
//! and ignored (the last good settings stay in force).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bevy::prelude::*;
use crossbeam_channel::{Receiver, unbounded};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::store::{SettingsFile, read_settings};
use super::{SettingsStatus, SettingsWriter};
use crate::AppSystems;

/// Editors save in bursts (truncate, write, rename): wait for quiet before reading.
const DEBOUNCE: Duration = Duration::from_millis(250);

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Startup, start_watching);
    app.add_systems(
        Update,
        apply_external_edits
            .in_set(AppSystems::ReadChannels)
            .run_if(resource_exists::<SettingsWatcher>),
    );
}

/// Present while the settings file is watched: from then on an edit applies live (tests wait
/// on it before editing).
#[derive(Resource, Debug)]
pub struct SettingsWatching(pub PathBuf);

#[derive(Resource)]
struct SettingsWatcher {
    edits: Receiver<()>,
    // Kept alive for as long as the app watches; behind a Mutex because it is not Sync.
    _debouncer: Mutex<Debouncer<RecommendedWatcher, RecommendedCache>>,
}

fn start_watching(mut commands: Commands, file: Option<Res<SettingsFile>>) {
    let Some(path) = file.and_then(|f| f.path.clone()) else {
        return;
    };
    match watch(path.clone()) {
        Ok(watcher) => {
            commands.insert_resource(watcher);
            commands.insert_resource(SettingsWatching(path));
        }
        Err(err) => warn!(
            "settings hot reload is off, cannot watch {}: {err}",
            path.display()
        ),
    }
}

fn watch(path: PathBuf) -> Result<SettingsWatcher, notify_debouncer_full::notify::Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_owned());
    let (sender, edits) = unbounded();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        let touches_file = events.iter().any(|event| {
            matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            ) && event.paths.iter().any(|p| p.file_name() == name.as_deref())
        });
        if touches_file {
            let _ = sender.send(());
        }
    })?;
    // Watch the folder, not the file: editors replace the file by renaming a new one over it.
    debouncer.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(SettingsWatcher {
        edits,
        _debouncer: Mutex::new(debouncer),
    })
}

fn apply_external_edits(
    watcher: Res<SettingsWatcher>,
    mut file: ResMut<SettingsFile>,
    mut writer: SettingsWriter,
    mut status: ResMut<SettingsStatus>,
) {
    if watcher.edits.try_iter().count() == 0 {
        return;
    }
    let Some(path) = file.path.clone() else {
        return;
    };
    match read_settings(&path) {
        Ok(on_disk) => {
            if status.error.is_some() {
                info!("settings file {} is valid again", path.display());
                status.error = None;
            }
            if on_disk != file.on_disk {
                let mut effective = on_disk.clone();
                file.overrides.apply(&mut effective);
                file.on_disk = on_disk;
                writer.put_in_force(effective);
                info!("reloaded settings from {}", path.display());
            }
        }
        Err(err) => {
            warn!("{err}; keeping the current settings");
            status.error = Some(err);
        }
    }
}
