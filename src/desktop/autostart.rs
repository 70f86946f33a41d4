//! "Start with the system" (`desktop.autostart`, auto-launch): the XDG autostart entry
//! `~/.config/autostart/desktop-mate.desktop` on Linux, the `Run` registry key on Windows, a
//! login item on macOS. The setting is the truth: at start and whenever it changes, the entry
//! is written or removed to match it (so an entry left by an earlier run goes away when off).

use std::path::{Path, PathBuf};

use auto_launch::{AutoLaunch, AutoLaunchBuilder};
use bevy::prelude::*;

use super::actions::DesktopAction;
use crate::AppSystems;
use crate::config::{Settings, SettingsFile, SettingsOrigin, SettingsWriter};

/// Why the system's start-up entry could not be changed (shown in the log).
#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("cannot find this program's path: {0}")]
    NoProgramPath(std::io::Error),
    #[error("cannot set up starting with the system: {0}")]
    Entry(#[from] auto_launch::Error),
}

/// The entry that starts `program` with `args` at login.
pub fn entry(program: &Path, args: &[String]) -> Result<AutoLaunch, AutostartError> {
    // auto-launch writes the XDG entry's `Exec=` line as given: quote what needs it there.
    let quote = |text: &str| {
        if cfg!(target_os = "linux") {
            exec_quoted(text)
        } else {
            text.to_owned()
        }
    };
    let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    Ok(AutoLaunchBuilder::new()
        .set_app_name("desktop-mate")
        .set_app_path(&quote(&program.to_string_lossy()))
        .set_args(&args)
        .build()?)
}

/// One argument of a desktop entry's `Exec=` line (Desktop Entry spec, "The Exec key"): as
/// it is when plain, else in double quotes with `"`, `` ` ``, `$` and `\` escaped by a
/// backslash. The key's value is a string whose own escapes apply first, so in the file that
/// backslash is doubled (`\\$`, and `\\\\` for a backslash, as the spec spells out), and `%`
/// (a field code) is written `%%`.
pub fn exec_quoted(argument: &str) -> String {
    let plain = !argument.is_empty()
        && argument
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./:=+,@".contains(c));
    if plain {
        return argument.to_owned();
    }
    let mut quoted = String::from("\"");
    for c in argument.chars() {
        match c {
            '\\' => quoted.push_str("\\\\\\\\"),
            '"' | '`' | '$' => {
                quoted.push_str("\\\\");
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Writes or removes the entry so it matches `enabled`; `Ok(true)` when it was not so before.
/// An enabled entry is always written again, so it starts this program with this settings
/// file even after the program moved (an update, another install folder).
pub fn apply(entry: &AutoLaunch, enabled: bool) -> Result<bool, AutostartError> {
    let was = entry.is_enabled()?;
    if enabled {
        entry.enable()?;
    } else if was {
        entry.disable()?;
    }
    Ok(was != enabled)
}

/// The command line the entry starts: the mascot, with the settings file this run uses when
/// it was given on the command line.
fn start_args(file: &SettingsFile) -> Vec<String> {
    let mut args = Vec::new();
    if file.origin == SettingsOrigin::CommandLine
        && let Some(path) = &file.path
    {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        args.push("--config".to_owned());
        args.push(path.to_string_lossy().into_owned());
    }
    args.push("run".to_owned());
    args
}

fn program() -> Result<PathBuf, AutostartError> {
    std::env::current_exe().map_err(AutostartError::NoProgramPath)
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        (
            toggle_from_tray,
            follow_setting.run_if(resource_changed::<Settings>),
        )
            .chain()
            .in_set(AppSystems::Update),
    );
}

/// The tray's "Start with the system" changes the setting as Save in the settings panel
/// would: in the file (only that value is edited) and in force.
fn toggle_from_tray(
    mut actions: MessageReader<DesktopAction>,
    mut file: ResMut<SettingsFile>,
    mut writer: SettingsWriter,
) {
    for _ in actions
        .read()
        .filter(|a| **a == DesktopAction::ToggleAutostart)
    {
        if let Err(reason) =
            writer.save_switch(&mut file, |s| s.desktop.autostart = !s.desktop.autostart)
        {
            warn!("start with the system not changed: {reason}");
        }
    }
}

/// Runs at start (the resource is new) and after each settings change.
fn follow_setting(
    settings: Res<Settings>,
    file: Res<SettingsFile>,
    mut applied: Local<Option<bool>>,
) {
    let wanted = settings.desktop.autostart;
    if *applied == Some(wanted) {
        return;
    }
    let at_start = applied.is_none();
    *applied = Some(wanted);
    // At start, "off" removes the entry only when these are the user's own settings: a run with
    // `--config other.ron` (a demo, a test, a developer's build) must not delete the entry the
    // user's mascot starts from. Switching it off while running always does.
    if at_start && !wanted && file.origin != SettingsOrigin::UserConfig {
        return;
    }
    let result = program().and_then(|program| apply(&entry(&program, &start_args(&file))?, wanted));
    match result {
        Ok(true) if wanted => info!("autostart on: the mascot starts with the system"),
        Ok(true) => info!("autostart off: start-up entry removed"),
        Ok(false) => debug!("autostart already {}", if wanted { "on" } else { "off" }),
        Err(err) => warn!("{err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tray_item_saves_the_switch_in_the_users_file_and_puts_it_in_force() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mascot.ron");
        std::fs::write(&path, "// mine\n(window: (width: 300))\n").expect("write");
        let loaded = crate::config::load_with(Some(&path), None, Default::default());
        let mut app = App::new();
        app.add_plugins(MinimalPlugins);
        crate::config::insert_loaded(&mut app, loaded);
        app.add_message::<crate::config::SettingsChanged>()
            .add_message::<DesktopAction>()
            .add_systems(Update, toggle_from_tray);
        app.world_mut()
            .write_message(DesktopAction::ToggleAutostart);
        app.update();
        assert!(app.world().resource::<Settings>().desktop.autostart);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("// mine"),
            "the user's comment stays: {text}"
        );
        let saved = crate::config::read_settings(&path).expect("reads back");
        assert!(saved.desktop.autostart);
        assert_eq!(saved.window.width, 300);
    }

    #[test]
    fn exec_arguments_with_spaces_or_specials_are_quoted() {
        assert_eq!(
            exec_quoted("/usr/bin/desktop-mate"),
            "/usr/bin/desktop-mate"
        );
        assert_eq!(
            exec_quoted("/home/me/My Apps/desktop-mate"),
            "\"/home/me/My Apps/desktop-mate\""
        );
        assert_eq!(exec_quoted("a\"b$c"), r#""a\\"b\\$c""#);
        assert_eq!(exec_quoted(r"C:\x"), r#""C:\\\\x""#);
        assert_eq!(exec_quoted("100%"), r#""100%%""#);
        assert_eq!(exec_quoted(""), "\"\"");
    }

    #[test]
    fn the_entry_starts_the_mascot_with_the_command_line_settings_file() {
        // An absolute path on this OS (on Windows "/home/me" would be relative to the drive).
        let path = std::env::temp_dir().join("me").join("mascot.ron");
        let file = SettingsFile {
            path: Some(path.clone()),
            origin: SettingsOrigin::CommandLine,
            on_disk: Settings::default(),
            overrides: Default::default(),
        };
        assert_eq!(
            start_args(&file),
            ["--config", path.to_str().expect("utf8"), "run"]
        );
        // A relative one is made absolute: the entry starts from another folder.
        let relative = SettingsFile {
            path: Some("mascot.ron".into()),
            ..file.clone()
        };
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            start_args(&relative),
            [
                "--config",
                cwd.join("mascot.ron").to_str().expect("utf8"),
                "run"
            ]
        );
        let user = SettingsFile {
            origin: SettingsOrigin::UserConfig,
            ..file
        };
        assert_eq!(start_args(&user), ["run"]);
    }
}
