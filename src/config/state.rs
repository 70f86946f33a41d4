//! What the app tracks at run time and restores at the next start — where the window was
//! dragged, its scale, where the overlay was dragged, the last avatar dropped on the window,
//! the model downloaded from the chat panel, the motion clips kept in the idle set —
//! kept in `state.ron` beside the settings. The user's `mascot.ron` is theirs: the app writes
//! it only when the user presses Save in the settings panel.
//!
//! Each entry, when present, wins over the matching setting (`window.position`,
//! `window.scale`, `diagnostics.overlay_position`, `avatar.vrm_path`, `llm.model_path`); when the user changes
//! that setting (in the file or the panel), the entry is forgotten so the new setting applies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bevy::prelude::Resource;
use serde::{Deserialize, Serialize};

use super::files::{MAX_TEXT_FILE_BYTES, read_text_file, write_atomic};
use super::ranges;
use super::settings::Settings;

pub const STATE_FILE_NAME: &str = "state.ron";

/// The farthest a saved window or overlay place may be from the origin, in pixels: beyond any
/// real desktop (X11 and Windows coordinates are 16-bit), and far from where arithmetic on a
/// place could overflow.
const PLACE_LIMIT: i32 = 1 << 16;

/// The most motion clips kept in the idle set.
pub const MAX_KEPT_MOTIONS: usize = 64;

#[derive(Resource, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AppState {
    pub window_position: Option<(i32, i32)>,
    /// Where the window was dragged on each monitor layout (`"1920x1080+0+0 ..."`), so each
    /// desk keeps its own place; `window_position` is the last drag on any layout.
    pub window_places: BTreeMap<String, (i32, i32)>,
    pub window_scale: Option<f32>,
    pub overlay_position: Option<(f32, f32)>,
    pub avatar: Option<PathBuf>,
    pub model: Option<PathBuf>,
    /// Motion clips (.vrma) dropped on the window and kept in the idle set (F4).
    pub kept_motions: Vec<PathBuf>,
    /// The values `mascot.ron` had for the settings above when the app last put it in force:
    /// a start that finds other values knows the user edited the file while the app was
    /// closed, and the entries for those settings give way (as they do to an edit while it
    /// runs). `None` in files of older versions.
    pub seen: Option<SeenSettings>,
    /// `--avatar` / `--model` for this run: they win over everything, and are never saved
    /// (nor do they erase the saved entries).
    #[serde(skip)]
    pub run_avatar: Option<PathBuf>,
    #[serde(skip)]
    pub run_model: Option<PathBuf>,
    /// `--reset-window` for this run: the window starts on the primary monitor at scale 1,
    /// whatever the settings say (a drag or the wheel during the run still counts).
    #[serde(skip)]
    pub run_reset_window: bool,
    /// The monitor layout the window is on now (known once the monitors are).
    #[serde(skip)]
    pub monitor_layout: Option<String>,
}

/// The settings that [`AppState`]'s entries stand in for, as the settings file had them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SeenSettings {
    pub window_position: Option<(i32, i32)>,
    pub window_scale: Option<f32>,
    pub overlay_position: Option<(f32, f32)>,
    pub avatar: Option<PathBuf>,
    pub model: Option<PathBuf>,
}

impl SeenSettings {
    pub fn of(settings: &Settings) -> Self {
        Self {
            window_position: settings.window.position,
            window_scale: Some(settings.window.scale),
            overlay_position: settings.diagnostics.overlay_position,
            avatar: settings.avatar.vrm_path.clone(),
            model: settings.llm.model_path.clone(),
        }
    }

    /// `settings` with the values seen then.
    fn onto(&self, settings: &Settings) -> Settings {
        let mut then = settings.clone();
        then.window.position = self.window_position;
        if let Some(scale) = self.window_scale {
            then.window.scale = scale;
        }
        then.diagnostics.overlay_position = self.overlay_position;
        then.avatar.vrm_path = self.avatar.clone();
        then.llm.model_path = self.model.clone();
        then
    }
}

impl AppState {
    /// At start, with the settings file as it is now (it loaded without error): the entries
    /// whose setting the user edited while the app was closed give way, and what the file
    /// says now is remembered. True when an entry was forgotten.
    pub fn follow_settings_file(&mut self, file: &Settings) -> bool {
        let forgot = match self.seen.clone() {
            Some(seen) => self.yield_to_settings(&seen.onto(file), file),
            None => false,
        };
        self.seen = Some(SeenSettings::of(file));
        forgot
    }

    pub fn window_position(&self, settings: &Settings) -> Option<(i32, i32)> {
        if self.run_reset_window {
            return self.window_position;
        }
        self.window_position.or(settings.window.position)
    }

    pub fn window_scale(&self, settings: &Settings) -> f32 {
        let setting = if self.run_reset_window {
            1.0
        } else {
            settings.window.scale
        };
        self.window_scale.unwrap_or(setting)
    }

    /// A drag by the user: kept as the last place and as the current monitor layout's place.
    pub fn remember_window_position(&mut self, position: (i32, i32)) {
        self.window_position = Some(position);
        if let Some(layout) = &self.monitor_layout {
            self.window_places.insert(layout.clone(), position);
        }
    }

    /// `--reset-window`: forgets the saved window place and scale, and puts the window on the
    /// primary monitor at scale 1 for this run. True when it forgot an entry (save the file).
    pub fn reset_window(&mut self) -> bool {
        let forgot = self.window_position.is_some()
            || self.window_scale.is_some()
            || !self.window_places.is_empty();
        self.window_position = None;
        self.window_places.clear();
        self.window_scale = None;
        self.run_reset_window = true;
        forgot
    }

    pub fn overlay_position(&self, settings: &Settings) -> Option<(f32, f32)> {
        self.overlay_position
            .or(settings.diagnostics.overlay_position)
    }

    pub fn avatar(&self, settings: &Settings) -> Option<PathBuf> {
        self.run_avatar
            .clone()
            .or_else(|| self.avatar.clone())
            .or_else(|| settings.avatar.vrm_path.clone())
    }

    /// The downloaded model is skipped once its file is gone (`model rm`, moved by hand).
    pub fn model(&self, settings: &Settings) -> Option<PathBuf> {
        self.run_model
            .clone()
            .or_else(|| self.model.clone().filter(|path| path.is_file()))
            .or_else(|| settings.llm.model_path.clone())
    }

    /// Drops the entries no window could use (a scale outside `window.scale`'s range or not a
    /// number, a place beyond [`PLACE_LIMIT`]): the file is the app's, but a damaged or
    /// hand-edited one must not stop every later start. Says what it dropped.
    pub fn sanitize(&mut self) -> Vec<String> {
        let mut dropped = Vec::new();
        if let Some(scale) = self.window_scale
            && ranges::WINDOW_SCALE.check(scale).is_err()
        {
            dropped.push(format!(
                "window_scale {scale} (must be {})",
                ranges::WINDOW_SCALE.doc()
            ));
            self.window_scale = None;
        }
        let limit = PLACE_LIMIT.unsigned_abs();
        let place_ok = |(x, y): (i32, i32)| x.unsigned_abs() <= limit && y.unsigned_abs() <= limit;
        if let Some(place) = self.window_position
            && !place_ok(place)
        {
            dropped.push(format!("window_position {place:?}"));
            self.window_position = None;
        }
        self.window_places.retain(|layout, place| {
            let ok = place_ok(*place);
            if !ok {
                dropped.push(format!("window_places[{layout:?}] {place:?}"));
            }
            ok
        });
        if let Some((x, y)) = self.overlay_position
            && !(x.is_finite()
                && y.is_finite()
                && x.abs() <= PLACE_LIMIT as f32
                && y.abs() <= PLACE_LIMIT as f32)
        {
            dropped.push(format!("overlay_position ({x}, {y})"));
            self.overlay_position = None;
        }
        if self.kept_motions.len() > MAX_KEPT_MOTIONS {
            dropped.push(format!("kept_motions beyond the first {MAX_KEPT_MOTIONS}"));
            self.kept_motions.truncate(MAX_KEPT_MOTIONS);
        }
        dropped
    }

    /// Forgets the entries whose setting the user changed from `old` to `new`; true when it
    /// forgot any (the state file should then be saved).
    pub fn yield_to_settings(&mut self, old: &Settings, new: &Settings) -> bool {
        let before = self.clone();
        if old.window.position != new.window.position {
            self.window_position = None;
            self.window_places.clear();
        }
        if old.window.scale != new.window.scale {
            self.window_scale = None;
        }
        if old.diagnostics.overlay_position != new.diagnostics.overlay_position {
            self.overlay_position = None;
        }
        if old.avatar.vrm_path != new.avatar.vrm_path {
            self.avatar = None;
        }
        if old.llm.model_path != new.llm.model_path {
            self.model = None;
        }
        let forgot = *self != before;
        self.seen = Some(SeenSettings::of(new));
        forgot
    }
}

/// Where the state is kept (`None`: nowhere to keep it, e.g. on the bundled settings alone).
#[derive(Resource, Debug, Clone, Default)]
pub struct StateFile {
    pub path: Option<PathBuf>,
}

impl StateFile {
    /// The state file beside a settings file.
    pub fn beside(settings_path: Option<&Path>) -> Self {
        Self {
            path: settings_path.map(|p| p.with_file_name(STATE_FILE_NAME)),
        }
    }

    /// Reads the state; a missing file is an empty state, a damaged one too (with the reason,
    /// for the log). The file is not touched until the app next saves its state.
    pub fn load(&self) -> (AppState, Option<String>) {
        let Some(path) = &self.path else {
            return (AppState::default(), None);
        };
        let text = match read_text_file(path, MAX_TEXT_FILE_BYTES) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return (AppState::default(), None);
            }
            Err(err) => {
                return (
                    AppState::default(),
                    Some(format!("cannot read {}: {err}", path.display())),
                );
            }
        };
        match ron::from_str::<AppState>(&text) {
            Ok(mut state) => {
                let dropped = state.sanitize();
                let problem = (!dropped.is_empty()).then(|| {
                    format!(
                        "{}: ignored {} (out of range)",
                        path.display(),
                        dropped.join(", ")
                    )
                });
                (state, problem)
            }
            Err(err) => (
                AppState::default(),
                Some(format!(
                    "{}: {err}; starting without the saved window state",
                    path.display()
                )),
            ),
        }
    }

    /// Writes the state atomically.
    pub fn save(&self, state: &AppState) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Err("no settings folder to keep the window state in".into());
        };
        let pretty = ron::ser::PrettyConfig::new().struct_names(false);
        let body = ron::ser::to_string_pretty(state, pretty).map_err(|e| e.to_string())?;
        let text = format!(
            "// desktop-mate's own state (window place and scale, overlay place, last dropped\n\
             // avatar, downloaded model). Written by the app; your settings are in mascot.ron.\n{body}\n"
        );
        write_atomic(path, &text).map_err(|e| format!("could not save {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn state_wins_until_the_user_changes_the_setting() {
        let mut settings = Settings::default();
        settings.window.scale = 1.5;
        let mut state = AppState {
            window_scale: Some(2.0),
            avatar: Some("dropped.vrm".into()),
            ..AppState::default()
        };
        assert_eq!(state.window_scale(&settings), 2.0);
        assert_eq!(state.avatar(&settings), Some(PathBuf::from("dropped.vrm")));
        let mut edited = settings.clone();
        edited.window.scale = 0.8;
        assert!(
            state.yield_to_settings(&settings, &edited),
            "forgot the scale"
        );
        assert!(
            !state.yield_to_settings(&edited, &edited),
            "nothing more to forget"
        );
        assert_eq!(state.window_scale(&edited), 0.8);
        assert_eq!(
            state.avatar(&edited),
            Some(PathBuf::from("dropped.vrm")),
            "an unrelated edit keeps the dropped avatar"
        );
    }

    #[test]
    fn reset_window_forgets_the_place_and_scale_and_ignores_the_settings_for_the_run() {
        let mut settings = Settings::default();
        settings.window.position = Some((5000, 5000));
        settings.window.scale = 3.0;
        let mut state = AppState {
            window_position: Some((-4000, 20)),
            window_scale: Some(2.5),
            avatar: Some("dropped.vrm".into()),
            ..AppState::default()
        };
        assert!(state.reset_window(), "forgot the saved entries");
        assert_eq!(state.window_position(&settings), None, "primary monitor");
        assert_eq!(state.window_scale(&settings), 1.0);
        assert_eq!(state.avatar, Some("dropped.vrm".into()), "the rest is kept");
        // A drag and the wheel during the run still count.
        state.window_position = Some((10, 10));
        state.window_scale = Some(1.2);
        assert_eq!(state.window_position(&settings), Some((10, 10)));
        assert_eq!(state.window_scale(&settings), 1.2);
        assert!(!AppState::default().reset_window(), "nothing to forget");
    }

    #[test]
    fn a_drag_is_remembered_for_the_monitor_layout_it_happened_on() {
        let mut state = AppState::default();
        state.remember_window_position((5, 5));
        assert!(state.window_places.is_empty(), "layout not known yet");
        state.monitor_layout = Some("1920x1080+0+0".into());
        state.remember_window_position((100, 200));
        state.monitor_layout = Some("1920x1080+0+0 2560x1440+1920+0".into());
        state.remember_window_position((2500, 300));
        assert_eq!(state.window_position, Some((2500, 300)));
        assert_eq!(state.window_places.get("1920x1080+0+0"), Some(&(100, 200)));
        let mut settings = Settings::default();
        let mut edited = settings.clone();
        edited.window.position = Some((0, 0));
        assert!(state.yield_to_settings(&settings, &edited));
        assert!(
            state.window_places.is_empty(),
            "the user's setting wins everywhere"
        );
        settings.window.position = Some((0, 0));
        assert!(!state.yield_to_settings(&settings, &edited));
    }

    #[test]
    fn a_run_override_wins_but_is_never_saved_nor_erases_the_saved_entry() {
        let dir = tempfile::tempdir().expect("temp dir");
        let downloaded = dir.path().join("downloaded.gguf");
        fs::write(&downloaded, b"GGUF").expect("write");
        let file = StateFile {
            path: Some(dir.path().join(STATE_FILE_NAME)),
        };
        let mut state = AppState {
            model: Some(downloaded.clone()),
            run_model: Some("for-this-run.gguf".into()),
            ..AppState::default()
        };
        let settings = Settings::default();
        assert_eq!(
            state.model(&settings),
            Some(PathBuf::from("for-this-run.gguf"))
        );
        state.window_scale = Some(1.5);
        file.save(&state).expect("save");
        let (saved, _) = file.load();
        assert_eq!(
            saved.model,
            Some(downloaded.clone()),
            "still there for the next run"
        );
        assert_eq!(saved.run_model, None);
        assert_eq!(saved.model(&settings), Some(downloaded.clone()));
        // Once its file is gone, the downloaded model gives way to the setting.
        fs::remove_file(&downloaded).expect("remove");
        assert_eq!(saved.model(&settings), None);
    }

    #[test]
    fn a_setting_edited_while_the_app_was_closed_wins_over_the_state() {
        let mut file = Settings::default();
        file.window.scale = 1.0;
        file.llm.model_path = Some("a.gguf".into());
        // The app ran on that file: the user scaled the window, downloaded a model.
        let mut state = AppState {
            window_scale: Some(2.0),
            model: Some("downloaded.gguf".into()),
            ..AppState::default()
        };
        assert!(
            !state.follow_settings_file(&file),
            "first start: nothing to compare"
        );
        // Next start, file unchanged: the state still wins.
        assert!(!state.follow_settings_file(&file));
        assert_eq!(state.window_scale(&file), 2.0);
        assert_eq!(state.model, Some("downloaded.gguf".into()));
        // The user edits the scale and the model in mascot.ron while the app is closed.
        let mut edited = file.clone();
        edited.window.scale = 1.5;
        edited.llm.model_path = Some("chosen.gguf".into());
        assert!(state.follow_settings_file(&edited));
        assert_eq!(state.window_scale(&edited), 1.5);
        assert_eq!(state.model, None);
        assert_eq!(state.seen, Some(SeenSettings::of(&edited)));
        // Untouched settings keep their entries.
        let mut kept = AppState {
            avatar: Some("dropped.vrm".into()),
            seen: Some(SeenSettings::of(&edited)),
            ..AppState::default()
        };
        let mut other = edited.clone();
        other.window.scale = 3.0;
        assert!(!kept.follow_settings_file(&other));
        assert_eq!(kept.avatar, Some("dropped.vrm".into()));
    }

    #[test]
    fn out_of_range_values_in_the_state_file_are_dropped_not_used() {
        // Each of these once stopped every later start (winit asked for an infinite or huge
        // window, or place arithmetic overflowed).
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(STATE_FILE_NAME);
        fs::write(
            &path,
            "(window_scale: Some(inf), window_position: Some((2147483647, -2147483648)), \
             window_places: {\"1920x1080+0+0\": (100, 200), \"bad\": (0, 999999999)}, \
             overlay_position: Some((NaN, 10.0)), avatar: Some(\"a.vrm\"))",
        )
        .expect("write");
        let file = StateFile {
            path: Some(path.clone()),
        };
        let (state, problem) = file.load();
        let problem = problem.expect("said what was dropped");
        assert!(
            problem.contains("window_scale inf")
                && problem.contains("window_position")
                && problem.contains("\"bad\"")
                && problem.contains("overlay_position"),
            "{problem}"
        );
        assert_eq!(state.window_scale, None);
        assert_eq!(state.window_position, None);
        assert_eq!(state.overlay_position, None);
        assert_eq!(
            state.window_places.into_iter().collect::<Vec<_>>(),
            vec![("1920x1080+0+0".to_owned(), (100, 200))]
        );
        assert_eq!(
            state.avatar,
            Some(PathBuf::from("a.vrm")),
            "the rest is kept"
        );
        for scale in ["1e30", "-1.0", "0.0", "NaN", "11.0"] {
            fs::write(&path, format!("(window_scale: Some({scale}))")).expect("write");
            assert_eq!(file.load().0.window_scale, None, "{scale}");
        }
        fs::write(&path, "(window_scale: Some(2.5))").expect("write");
        assert_eq!(
            file.load(),
            (
                AppState {
                    window_scale: Some(2.5),
                    ..AppState::default()
                },
                None
            )
        );
    }

    #[test]
    fn a_damaged_state_file_gives_an_empty_state_and_is_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(STATE_FILE_NAME);
        fs::write(&path, "(window_scale: \"big\")").expect("write");
        let file = StateFile {
            path: Some(path.clone()),
        };
        let (state, problem) = file.load();
        assert_eq!(state, AppState::default());
        assert!(problem.is_some_and(|p| p.contains("state.ron")));
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            "(window_scale: \"big\")"
        );
        let saved = AppState {
            window_position: Some((10, 20)),
            ..AppState::default()
        };
        file.save(&saved).expect("save");
        assert_eq!(file.load(), (saved, None));
    }
}
