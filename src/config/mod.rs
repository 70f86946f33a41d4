//! Settings: typed RON file, load order, validation with file:line:column messages,
//! atomic saving and hot reload; and the app's own state file (`state.ron`). Everything but
//! the hot-reload glue is free of Bevy systems.
//!
//! Data flows one way: the settings file (or the panel's Save) -> [`SettingsWriter`] ->
//! the `Settings` resource + a [`SettingsChanged`] message naming the sections that changed.
//! Nothing else writes `Settings`; what the app tracks itself goes to [`AppState`].

mod edit;
mod files;
mod load_guard;
mod parse;
pub mod ranges;
mod settings;
mod state;
mod store;
mod validate;
mod watch;

pub use watch::SettingsWatching;

use bevy::ecs::system::{RunSystemOnce, SystemParam};
use bevy::prelude::*;

pub use edit::{EditError, edit_in_place};
pub use files::{
    BoundedReadError, MAX_TEXT_FILE_BYTES, read_bounded, read_text_file, write_atomic,
};
pub use load_guard::{CRASH_TEST_VARIABLE, GUARD_FILE_NAME, Guarded, LoadGuard, RetrySkipped};
pub use parse::{ConfigError, ErrorKind, locate_key, parse_settings};
pub use settings::*;
pub use state::{AppState, STATE_FILE_NAME, SeenSettings, StateFile};
pub use store::{
    BUNDLED_DEFAULT, FILE_NAME, LoadedSettings, Overrides, SettingsFile, SettingsOrigin, load,
    load_with, read_settings, save_settings, to_ron, user_config_dir, user_data_dir,
};
pub use validate::{
    InvalidValue, OVERLAY_KEYS, PANEL_KEYS, api_key_env_rule, key_transport_rule, parse_hotkey,
    validate,
};

/// Which sections of the settings the user changed (an edit of the file, or Save in the
/// panel). Readers react to their own section instead of diffing the whole settings.
#[derive(Message, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsChanged {
    pub window: bool,
    pub avatar: bool,
    pub motion: bool,
    pub llm: bool,
    pub persona: bool,
    pub chat: bool,
    pub memory: bool,
    pub voice: bool,
    pub listen: bool,
    pub diagnostics: bool,
    pub desktop: bool,
}

impl SettingsChanged {
    pub fn between(old: &Settings, new: &Settings) -> Self {
        Self {
            window: old.window != new.window,
            avatar: old.avatar != new.avatar,
            motion: old.motion != new.motion,
            llm: old.llm != new.llm,
            persona: old.persona != new.persona,
            chat: old.chat != new.chat,
            memory: old.memory != new.memory,
            voice: old.voice != new.voice,
            listen: old.listen != new.listen,
            diagnostics: old.diagnostics != new.diagnostics,
            desktop: old.desktop != new.desktop,
        }
    }

    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// What writing the settings needs: the one way the user's changes (a file edit, Save in the
/// panel) are put in force.
#[derive(SystemParam)]
pub struct SettingsWriter<'w> {
    settings: ResMut<'w, Settings>,
    state: ResMut<'w, AppState>,
    state_file: Res<'w, StateFile>,
    changed: MessageWriter<'w, SettingsChanged>,
}

impl SettingsWriter<'_> {
    /// The settings in force.
    pub fn current(&self) -> &Settings {
        &self.settings
    }

    /// One change to the settings in force, saved to the user's file (comments kept) and put
    /// in force: the switches of the tray, the hotkeys and the panels.
    pub fn save_switch(
        &mut self,
        file: &mut SettingsFile,
        change: impl FnOnce(&mut Settings),
    ) -> Result<SettingsChanged, String> {
        let mut edited = self.current().clone();
        change(&mut edited);
        let effective = file.save_edit(&edited)?;
        Ok(self.put_in_force(effective))
    }

    /// Puts settings the user changed in force: the app's state yields for the keys the user
    /// set (and is saved), and each changed section is announced. Returns what changed.
    pub fn put_in_force(&mut self, new: Settings) -> SettingsChanged {
        let sections = SettingsChanged::between(&self.settings, &new);
        if sections.any() {
            // Also records the values now in force (`seen`), for the next start.
            if self.state.yield_to_settings(&self.settings, &new)
                && let Err(reason) = self.state_file.save(&self.state)
            {
                warn!("the app's state could not follow the new settings: {reason}");
            }
            *self.settings = new;
            self.changed.write(sections);
        }
        sections
    }
}

/// [`SettingsWriter::put_in_force`] for code that holds the world (tests, commands).
pub fn edit_settings(world: &mut World, edit: impl FnOnce(&mut Settings)) -> SettingsChanged {
    let mut new = world.resource::<Settings>().clone();
    edit(&mut new);
    world
        .run_system_once_with(
            |In(new): In<Settings>, mut writer: SettingsWriter| writer.put_in_force(new),
            new,
        )
        .unwrap_or_default()
}

/// The current problem with the settings file, shown in the UI until it is fixed.
#[derive(Resource, Debug, Default, Clone)]
pub struct SettingsStatus {
    pub error: Option<ConfigError>,
}

/// Watches the settings file for external edits (the settings themselves are inserted by
/// [`insert_loaded`] before any plugin is built).
pub struct ConfigPlugin;

impl Plugin for ConfigPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SettingsStatus>()
            .init_resource::<AppState>()
            .init_resource::<StateFile>()
            .add_message::<SettingsChanged>();
        app.add_plugins(watch::plugin);
    }
}

/// Puts settings loaded by [`load`] into the app (done before the plugins are added).
pub fn insert_loaded(app: &mut App, loaded: LoadedSettings) {
    if let Some(error) = &loaded.error {
        error!("{error}; running on the default settings until it is fixed");
    }
    if let Some(problem) = &loaded.state_problem {
        warn!("{problem}");
    }
    app.insert_resource(loaded.settings)
        .insert_resource(loaded.file)
        .insert_resource(loaded.state)
        .insert_resource(loaded.state_file)
        .insert_resource(loaded.guard)
        .add_message::<RetrySkipped>()
        .insert_resource(SettingsStatus {
            error: loaded.error,
        });
}
