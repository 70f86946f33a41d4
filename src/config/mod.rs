//! Settings: typed RON file, load order, validation with file:line:column messages,
//! atomic saving and hot reload. Everything but the hot-reload glue is free of Bevy systems.

mod parse;
mod settings;
mod store;
mod validate;
mod watch;

use bevy::prelude::*;

pub use parse::{ConfigError, ErrorKind, locate_key, parse_settings};
pub use settings::*;
pub use store::{
    BUNDLED_DEFAULT, FILE_NAME, LoadedSettings, Overrides, SettingsFile, SettingsOrigin, load,
    load_with, read_settings, save_settings, to_ron, user_config_dir, user_data_dir, write_atomic,
};
pub use validate::{InvalidValue, OVERLAY_KEYS, validate};

/// The current problem with the settings file, shown in the UI until it is fixed.
#[derive(Resource, Debug, Default, Clone)]
pub struct SettingsStatus {
    pub error: Option<ConfigError>,
}

/// Inserts the loaded settings and watches their file for external edits.
pub fn plugin(app: &mut App) {
    app.init_resource::<SettingsStatus>();
    app.add_plugins(watch::plugin);
}

/// Puts settings loaded by [`load`] into the app (done before the plugins are added).
pub fn insert_loaded(app: &mut App, loaded: LoadedSettings) {
    if let Some(error) = &loaded.error {
        error!("{error}; running on the default settings until it is fixed");
    }
    app.insert_resource(loaded.settings)
        .insert_resource(loaded.file)
        .insert_resource(SettingsStatus {
            error: loaded.error,
        });
}
