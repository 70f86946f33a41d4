//! Where the settings file lives, first-run creation, atomic saving and per-run overrides.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bevy::prelude::Resource;

use super::files::{MAX_TEXT_FILE_BYTES, read_text_file, write_atomic};
use super::load_guard::LoadGuard;
use super::parse::{ConfigError, parse_settings};
use super::settings::Settings;
use super::state::{AppState, StateFile};

/// The documented default settings, shipped inside the binary.
pub const BUNDLED_DEFAULT: &str = include_str!("../../config/mascot.ron");
pub const FILE_NAME: &str = "mascot.ron";

/// Where the settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingsOrigin {
    /// `--config PATH`
    CommandLine,
    /// The user's config folder (created from the default on first run).
    UserConfig,
    /// No usable config folder: the bundled default, in memory only.
    Bundled,
}

/// Settings given on the command line for this run only; never written to the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub model: Option<PathBuf>,
    pub avatar: Option<PathBuf>,
    /// `--reset-window`: forget the saved window place and scale (see [`AppState::reset_window`]).
    pub reset_window: bool,
}

impl Overrides {
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(model) = &self.model {
            settings.llm.model_path = Some(model.clone());
        }
        if let Some(avatar) = &self.avatar {
            settings.avatar.vrm_path = Some(avatar.clone());
        }
    }

    /// Puts back the file's own values for overridden keys, so saving never persists an override.
    pub fn restore(&self, on_disk: &Settings, settings: &mut Settings) {
        if self.model.is_some() {
            settings.llm.model_path = on_disk.llm.model_path.clone();
        }
        if self.avatar.is_some() {
            settings.avatar.vrm_path = on_disk.avatar.vrm_path.clone();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.model.is_none() && self.avatar.is_none()
    }
}

/// The settings file behind the running app.
#[derive(Resource, Debug, Clone)]
pub struct SettingsFile {
    /// `None` when running on the bundled default only.
    pub path: Option<PathBuf>,
    pub origin: SettingsOrigin,
    /// The last settings successfully read from (or saved to) the file, without overrides.
    pub on_disk: Settings,
    pub overrides: Overrides,
}

/// Result of loading at start: always usable settings, plus the error if the file was bad.
#[derive(Debug, Clone)]
pub struct LoadedSettings {
    /// Effective settings (file or defaults, with overrides applied).
    pub settings: Settings,
    pub file: SettingsFile,
    pub error: Option<ConfigError>,
    /// True when this run wrote the user's copy from the bundled default.
    pub created: bool,
    /// What the app restores of its last run (`state.ron` beside the settings file).
    pub state: AppState,
    pub state_file: StateFile,
    /// Why the state file could not be used, if it could not.
    pub state_problem: Option<String>,
    /// What an earlier run stopped while loading (skipped now), and the record of loads.
    pub guard: LoadGuard,
}

/// The user's config folder (`~/.config/desktop-mate` on Linux), if the OS has one.
pub fn user_config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "desktop-mate").map(|d| d.config_dir().to_owned())
}

/// The user's data folder (chat history, recordings).
pub fn user_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "desktop-mate").map(|d| d.data_dir().to_owned())
}

/// Load order: `--config PATH`, else the user's config folder (writing it from the default
/// on first run), else the bundled default.
pub fn load(cli_path: Option<&Path>, overrides: Overrides) -> LoadedSettings {
    load_with(cli_path, user_config_dir().as_deref(), overrides)
}

/// [`load`] with an explicit user config folder (tests use a temporary one).
pub fn load_with(
    cli_path: Option<&Path>,
    user_dir: Option<&Path>,
    overrides: Overrides,
) -> LoadedSettings {
    let (path, origin, created) = match (cli_path, user_dir) {
        (Some(path), _) => (Some(path.to_owned()), SettingsOrigin::CommandLine, false),
        (None, Some(dir)) => {
            let path = dir.join(FILE_NAME);
            let created = !path.exists() && create_user_copy(dir, &path);
            (Some(path), SettingsOrigin::UserConfig, created)
        }
        (None, None) => (None, SettingsOrigin::Bundled, false),
    };

    let (on_disk, error) = match &path {
        Some(path) => match read_settings(path) {
            Ok(settings) => (settings, None),
            // A broken file still says what the user chose in its other sections.
            Err(err) => match read_text_file(path, MAX_TEXT_FILE_BYTES)
                .map(|text| super::parse::salvage_sections(&text, path))
            {
                Ok((settings, kept)) if !kept.is_empty() => {
                    tracing::warn!(
                        "{err}; the sections that load on their own are kept: {}",
                        kept.join(", ")
                    );
                    (settings, Some(err))
                }
                _ => (Settings::default(), Some(err)),
            },
        },
        None => match parse_settings(BUNDLED_DEFAULT, Path::new(FILE_NAME)) {
            Ok(settings) => (settings, None),
            Err(err) => (Settings::default(), Some(err)),
        },
    };
    let mut settings = on_disk.clone();
    overrides.apply(&mut settings);
    let state_file = StateFile::beside(path.as_deref());
    let (mut state, state_problem) = state_file.load();
    // Values edited in the file while the app was closed win over the app's copies of them
    // (only a file that loaded cleanly says what the user wants: not the defaults of a typo).
    if error.is_none() && state.follow_settings_file(&on_disk) {
        tracing::info!("settings edited while the app was closed win over state.ron's entries");
    }
    // `--avatar` / `--model` are for this run: they win over the app's state too, without
    // touching what it saved.
    state.run_avatar = overrides.avatar.clone();
    state.run_model = overrides.model.clone();
    let mut state_problem = state_problem;
    if overrides.reset_window && state.reset_window() {
        // Forgotten for good, so a crash before the next drag does not bring the lost place back.
        if let Err(problem) = state_file.save(&state) {
            state_problem = Some(problem);
        }
    }
    let guard = LoadGuard::beside(path.as_deref());
    LoadedSettings {
        settings,
        state,
        state_file,
        state_problem,
        guard,
        file: SettingsFile {
            path,
            origin,
            on_disk,
            overrides,
        },
        error,
        created,
    }
}

fn create_user_copy(dir: &Path, path: &Path) -> bool {
    let result = fs::create_dir_all(dir).and_then(|()| write_atomic(path, BUNDLED_DEFAULT));
    match result {
        Ok(()) => {
            tracing::info!("wrote default settings to {}", path.display());
            true
        }
        Err(err) => {
            tracing::warn!(
                "could not write default settings to {}: {err}",
                path.display()
            );
            false
        }
    }
}

/// Reads and validates one settings file.
pub fn read_settings(path: &Path) -> Result<Settings, ConfigError> {
    let source =
        read_text_file(path, MAX_TEXT_FILE_BYTES).map_err(|e| ConfigError::unreadable(path, &e))?;
    parse_settings(&source, path)
}

/// The RON text written by [`save_settings`]. Comments of the previous file are not kept
/// (RON has no comment-preserving editor); the previous file is kept as `mascot.ron.bak`.
pub fn to_ron(settings: &Settings) -> Result<String, ron::Error> {
    let pretty = ron::ser::PrettyConfig::new()
        .depth_limit(6)
        .struct_names(false)
        .separate_tuple_members(false);
    let body = ron::ser::to_string_pretty(settings, pretty)?;
    Ok(format!(
        "// desktop-mate settings, saved by the app. Every key is documented in the README\n\
         // (\"Configuration\"); the previous version of this file is in {FILE_NAME}.bak.\n{body}\n"
    ))
}

/// Writes `new` over a settings file that holds `old`: only the changed values are edited in
/// the file's text, so the user's comments and layout stay. A file that cannot be edited that
/// way (it does not parse any more) is rewritten whole, its text kept in `<name>.bak`.
fn save_edited(path: &Path, old: &Settings, new: &Settings) -> Result<(), String> {
    let failed = |e: io::Error| format!("could not save {}: {e}", path.display());
    let original = match read_text_file(path, MAX_TEXT_FILE_BYTES) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return save_settings(path, new).map_err(failed);
        }
        Err(err) => return Err(failed(err)),
    };
    match super::edit::edit_in_place(&original, old, new) {
        Ok(text) if text == original => Ok(()),
        Ok(text) => {
            fs::copy(path, path.with_extension("ron.bak")).map_err(failed)?;
            write_atomic(path, &text).map_err(failed)
        }
        // The app ran on defaults because the file did not validate at start: the file's own
        // values (unvalidated) are what the edit starts from.
        Err(super::edit::EditError::Stale)
            if let Ok(in_file) = ron::from_str::<Settings>(&original)
                && let Ok(text) = super::edit::edit_in_place(&original, &in_file, new) =>
        {
            fs::copy(path, path.with_extension("ron.bak")).map_err(failed)?;
            write_atomic(path, &text).map_err(failed)
        }
        Err(super::edit::EditError::Stale) => Err(format!(
            "{} was changed outside the app since it was read; nothing saved (its new values load in a moment; save again then)",
            path.display()
        )),
        Err(err) => {
            tracing::warn!(
                "{}: {err}; writing the whole file instead (your version is kept in {FILE_NAME}.bak)",
                path.display()
            );
            save_settings(path, new).map_err(failed)
        }
    }
}

/// Saves settings atomically, keeping the previous file as `<name>.bak`.
pub fn save_settings(path: &Path, settings: &Settings) -> io::Result<()> {
    let text = to_ron(settings).map_err(io::Error::other)?;
    if path.is_file() {
        let backup = path.with_extension("ron.bak");
        fs::copy(path, &backup)?;
    }
    write_atomic(path, &text)
}

impl SettingsFile {
    /// Saves settings edited in the app: overridden keys keep their file values, the edit is
    /// validated first, and on success `on_disk` follows the file. Returns the effective
    /// settings to put in force.
    pub fn save_edit(&mut self, edited: &Settings) -> Result<Settings, String> {
        if let Some(problem) = super::validate::validate(edited).into_iter().next() {
            return Err(format!("{}: {}", problem.key, problem.message));
        }
        let Some(path) = self.path.clone() else {
            return Err(
                "no settings folder on this system: start with --config PATH to save".into(),
            );
        };
        let mut to_save = edited.clone();
        self.overrides.restore(&self.on_disk, &mut to_save);
        save_edited(&path, &self.on_disk, &to_save)?;
        self.on_disk = to_save.clone();
        let mut effective = to_save;
        self.overrides.apply(&mut effective);
        Ok(effective)
    }
}

#[cfg(test)]
mod tests {
    /// Dotfile managers keep `mascot.ron` as a link into their repository: a save writes the
    /// file it points to and leaves the link a link (relative links and chains too).
    #[cfg(unix)]
    #[test]
    fn a_symlinked_file_stays_a_symlink_after_a_save() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("dotfiles");
        std::fs::create_dir(&repo).expect("mkdir");
        let real = repo.join("mascot.ron");
        std::fs::write(&real, "(window: (scale: 1.0))").expect("write");
        let config = dir.path().join("config");
        std::fs::create_dir(&config).expect("mkdir");
        let link = config.join("mascot.ron");
        std::os::unix::fs::symlink("../dotfiles/mascot.ron", &link).expect("link");
        let chained = config.join("again.ron");
        std::os::unix::fs::symlink(&link, &chained).expect("link");

        super::write_atomic(&chained, "(window: (scale: 2.0))").expect("save");
        for l in [&link, &chained] {
            assert!(
                std::fs::symlink_metadata(l)
                    .expect("meta")
                    .file_type()
                    .is_symlink()
            );
        }
        assert_eq!(
            std::fs::read_to_string(&real).expect("read"),
            "(window: (scale: 2.0))"
        );
        let mut names: Vec<String> = std::fs::read_dir(&config)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["again.ron", "mascot.ron"],
            "no temporary file left"
        );
    }

    /// Roaming AppData, as the README says (`%APPDATA%\desktop-mate\config\mascot.ron`).
    #[cfg(windows)]
    #[test]
    fn windows_settings_live_under_appdata() {
        let appdata = std::path::PathBuf::from(std::env::var_os("APPDATA").expect("APPDATA"));
        let root = appdata.join("desktop-mate");
        assert_eq!(super::user_config_dir(), Some(root.join("config")));
        assert_eq!(super::user_data_dir(), Some(root.join("data")));
    }

    /// Windows refuses to replace a file another program holds open without delete sharing
    /// (Notepad does): the save fails with that error, the file keeps its text, no temporary
    /// file is left, and the next save once it is closed works.
    #[cfg(windows)]
    #[test]
    fn a_save_over_a_file_another_program_holds_fails_and_loses_nothing() {
        use std::os::windows::fs::OpenOptionsExt;
        const FILE_SHARE_READ: u32 = 1;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mascot.ron");
        std::fs::write(&path, "(window: (scale: 2.0))").expect("write");
        let held = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ)
            .open(&path)
            .expect("open");
        let settings = crate::config::Settings::default();
        let err = super::save_settings(&path, &settings).expect_err("the file is held open");
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::PermissionDenied,
            "{err} ({:?})",
            err.raw_os_error()
        );
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "(window: (scale: 2.0))"
        );
        drop(held);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["mascot.ron", "mascot.ron.bak"]);
        super::save_settings(&path, &settings).expect("saved once the file is closed");
        assert_eq!(
            super::read_settings(&path).expect("read back"),
            settings,
            "the saved file reads back as what was saved"
        );
    }
}
