//! System-wide shortcuts (`desktop.hotkeys`, global-hotkey: X11 key grabs, Windows
//! `RegisterHotKey`, macOS). They reach the mascot even while clicks pass through it or it is
//! hidden, so the way back from a stuck mascot never depends on its window. A shortcut that
//! another app already holds is a log line naming the setting to change, not a failure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bevy::prelude::*;
use global_hotkey::hotkey::HotKey;
use global_hotkey::{GlobalHotKeyEvent, GlobalHotKeyManager, HotKeyState};

use super::actions::{DesktopAction, DesktopActions};
use crate::AppSystems;
use crate::config::{HotkeySettings, Settings, parse_hotkey};

/// The shortcuts to register: `(setting key, shortcut, action)`. Invalid ones were refused by
/// validation already; they are skipped here too.
pub fn shortcuts(settings: &HotkeySettings) -> Vec<(&'static str, HotKey, DesktopAction)> {
    settings
        .entries()
        .into_iter()
        .filter_map(|(key, text)| {
            let action = match key {
                "desktop.hotkeys.click_through" => DesktopAction::ToggleClickThrough,
                "desktop.hotkeys.show_hide" => DesktopAction::ToggleVisible,
                "desktop.hotkeys.voice" => DesktopAction::ToggleVoice,
                "desktop.hotkeys.push_to_talk" => DesktopAction::PushToTalk { held: true },
                _ => DesktopAction::ToggleChat,
            };
            parse_hotkey(text).ok().map(|hotkey| (key, hotkey, action))
        })
        .collect()
}

/// The registered shortcuts; the event handler (set once per process) reads the table.
struct Hotkeys {
    manager: GlobalHotKeyManager,
    registered: Vec<HotKey>,
    applied: HotkeySettings,
    table: Arc<Mutex<HashMap<u32, DesktopAction>>>,
}

impl Hotkeys {
    fn register(&mut self, settings: &HotkeySettings) {
        if let Err(err) = self.manager.unregister_all(&self.registered) {
            warn!("global hotkeys: could not release the previous shortcuts: {err}");
        }
        self.registered.clear();
        self.applied = settings.clone();
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.clear();
        for (key, hotkey, action) in shortcuts(settings) {
            match self.manager.register(hotkey) {
                Ok(()) => {
                    info!("global hotkey {hotkey} registered ({key})");
                    table.insert(hotkey.id(), action);
                    self.registered.push(hotkey);
                }
                Err(global_hotkey::Error::AlreadyRegistered(_)) => warn!(
                    "global hotkey {hotkey} ({key}) is already taken by another app: \
                     set {key} to another shortcut in mascot.ron"
                ),
                Err(err) => warn!("global hotkey {hotkey} ({key}) not registered: {err}"),
            }
        }
    }
}

/// X11 autorepeats a held key as a release and a press at one instant: a push-to-talk release
/// counts only when no press follows within this time. global-hotkey's X11 thread reads its
/// events between 50 ms sleeps, so the press can reach the handler up to one such sleep (plus
/// a loaded machine's delay) after the release: 50 ms here once counted a held key as
/// released (CI, stop 37). A fifth of a second is still far below a deliberate re-press.
const RELEASE_GRACE: Duration = Duration::from_millis(200);

pub(super) fn plugin(app: &mut App) {
    // global-hotkey grabs keys through X11: with the window on native Wayland there is no X
    // server to grab them from, and Wayland gives no client system-wide shortcuts.
    if super::display::native_wayland() {
        info!(
            "global hotkeys off: native Wayland gives no app system-wide shortcuts (they work \
             under XWayland); the tray menu switches click-through and shows the mascot"
        );
        return;
    }
    let manager = match GlobalHotKeyManager::new() {
        Ok(manager) => manager,
        Err(err) => {
            info!("global hotkeys off: {err}");
            return;
        }
    };
    let table = Arc::new(Mutex::new(HashMap::new()));
    let actions = app.world().resource::<DesktopActions>().clone();
    let lookup = table.clone();
    let presses = Arc::new(AtomicU64::new(0));
    GlobalHotKeyEvent::set_event_handler(Some(move |event: GlobalHotKeyEvent| {
        let action = lookup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&event.id())
            .copied();
        let pressed = event.state() == HotKeyState::Pressed;
        match action {
            // Push-to-talk: down and up both count; a release only when no press follows it
            // within the grace (X autorepeats a held key as release/press pairs).
            Some(DesktopAction::PushToTalk { .. }) if pressed => {
                presses.fetch_add(1, Ordering::SeqCst);
                actions.send(DesktopAction::PushToTalk { held: true });
            }
            Some(DesktopAction::PushToTalk { .. }) => {
                let seen = presses.load(Ordering::SeqCst);
                let (actions, presses) = (actions.clone(), presses.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(RELEASE_GRACE);
                    if presses.load(Ordering::SeqCst) == seen {
                        actions.send(DesktopAction::PushToTalk { held: false });
                    }
                });
            }
            Some(action) if pressed => actions.send(action),
            _ => {}
        }
    }));
    let mut hotkeys = Hotkeys {
        manager,
        registered: Vec::new(),
        applied: HotkeySettings::default(),
        table,
    };
    hotkeys.register(&app.world().resource::<Settings>().desktop.hotkeys);
    // The manager is kept on the main thread: on some platforms it must stay where it was made.
    app.insert_non_send(hotkeys).add_systems(
        Update,
        follow_settings
            .run_if(resource_changed::<Settings>)
            .in_set(AppSystems::Update),
    );
}

fn follow_settings(settings: Res<Settings>, mut hotkeys: NonSendMut<Hotkeys>) {
    if hotkeys.applied != settings.desktop.hotkeys {
        hotkeys.register(&settings.desktop.hotkeys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_set_shortcut_maps_to_its_action() {
        let mut settings = HotkeySettings::default();
        let all = shortcuts(&settings);
        assert_eq!(
            all.iter().map(|(_, _, a)| *a).collect::<Vec<_>>(),
            [
                DesktopAction::ToggleClickThrough,
                DesktopAction::ToggleVisible,
                DesktopAction::ToggleChat,
                DesktopAction::ToggleVoice,
                DesktopAction::PushToTalk { held: true }
            ]
        );
        assert_eq!(all[0].1, parse_hotkey("Ctrl+Alt+Shift+C").expect("parses"));
        settings.show_hide = None;
        settings.voice = None;
        settings.push_to_talk = None;
        settings.chat = Some("not a shortcut".into());
        let left = shortcuts(&settings);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, "desktop.hotkeys.click_through");
    }
}
