//! The tray icon and its menu: show/hide, click-through, chat, expressions, settings,
//! diagnostics, start with the system, quit. Each item sends a [`DesktopAction`] (which wakes
//! the Bevy loop), so the tray works whatever the window's click-through state.
//!
//! Linux: a StatusNotifierItem over D-Bus (ksni, no GTK), shown by KDE, GNOME with the
//! AppIndicator extension, XFCE, waybar... Without a tray host (or without a session bus) that
//! is logged once and the mascot carries on; the hotkeys still bring it back. Other platforms
//! have no tray yet.

use bevy::prelude::*;

use super::actions::DesktopAction;

/// What the menu shows as checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrayState {
    pub visible: bool,
    pub click_through: bool,
    pub autostart: bool,
}

/// One menu entry: a label, its checkmark (`None` = a plain item), its action; `None` as a
/// whole is a separator.
pub type MenuEntry = Option<(&'static str, Option<bool>, DesktopAction)>;

/// The tray menu, top to bottom.
pub fn menu(state: TrayState) -> Vec<MenuEntry> {
    vec![
        Some((
            if state.visible {
                "Hide mascot"
            } else {
                "Show mascot"
            },
            None,
            DesktopAction::ToggleVisible,
        )),
        Some((
            "Click-through",
            Some(state.click_through),
            DesktopAction::ToggleClickThrough,
        )),
        None,
        Some(("Chat", None, DesktopAction::ToggleChat)),
        Some(("Expressions", None, DesktopAction::ToggleExpressions)),
        Some(("Settings", None, DesktopAction::ToggleSettings)),
        Some(("Diagnostics", None, DesktopAction::ToggleDiagnostics)),
        None,
        Some((
            "Start with the system",
            Some(state.autostart),
            DesktopAction::ToggleAutostart,
        )),
        Some(("Quit", None, DesktopAction::Quit)),
    ]
}

#[cfg(target_os = "linux")]
pub(super) use sni::plugin;

#[cfg(not(target_os = "linux"))]
pub(super) fn plugin(_app: &mut App) {
    info!("no tray icon on this platform yet: use the global hotkeys (desktop.hotkeys)");
}

#[cfg(target_os = "linux")]
mod sni {
    use std::sync::atomic::{AtomicBool, Ordering};

    use bevy::prelude::*;
    use bevy::window::PrimaryWindow;
    use ksni::blocking::{Handle, TrayMethods};
    use ksni::menu::{CheckmarkItem, MenuItem, StandardItem};

    use super::{TrayState, menu};
    use crate::AppSystems;
    use crate::avatar::ClickThrough;
    use crate::config::Settings;
    use crate::desktop::actions::DesktopActions;

    struct MascotTray {
        actions: DesktopActions,
        state: TrayState,
    }

    /// "No tray host" is said once per run, however often the watcher comes and goes.
    static SAID_OFFLINE: AtomicBool = AtomicBool::new(false);

    impl ksni::Tray for MascotTray {
        fn id(&self) -> String {
            "desktop-mate".into()
        }

        fn title(&self) -> String {
            "desktop-mate".into()
        }

        fn icon_name(&self) -> String {
            "face-smile".into()
        }

        fn icon_pixmap(&self) -> Vec<ksni::Icon> {
            vec![icon()]
        }

        /// A click on the icon shows or hides the mascot.
        fn activate(&mut self, _x: i32, _y: i32) {
            self.actions.send(super::DesktopAction::ToggleVisible);
        }

        fn menu(&self) -> Vec<MenuItem<Self>> {
            menu(self.state)
                .into_iter()
                .map(|entry| match entry {
                    None => MenuItem::Separator,
                    Some((label, None, action)) => StandardItem {
                        label: label.into(),
                        activate: Box::new(move |tray: &mut Self| tray.actions.send(action)),
                        ..Default::default()
                    }
                    .into(),
                    Some((label, Some(checked), action)) => CheckmarkItem {
                        label: label.into(),
                        checked,
                        activate: Box::new(move |tray: &mut Self| tray.actions.send(action)),
                        ..Default::default()
                    }
                    .into(),
                })
                .collect()
        }

        fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
            if !SAID_OFFLINE.swap(true, Ordering::Relaxed) {
                info!(
                    "no tray host on this desktop ({reason:?}): no tray icon; the global \
                     hotkeys (desktop.hotkeys) still show the mascot and switch click-through"
                );
            }
            // Keep serving: a tray host started later picks the icon up.
            true
        }

        fn watcher_online(&self) {
            info!("tray icon shown");
        }
    }

    /// A 32x32 ARGB icon (a round face) for hosts that do not know the themed one.
    fn icon() -> ksni::Icon {
        const SIZE: i32 = 32;
        let mut data = Vec::with_capacity((SIZE * SIZE * 4) as usize);
        for y in 0..SIZE {
            for x in 0..SIZE {
                let (dx, dy) = (x as f32 - 15.5, y as f32 - 15.5);
                let inside = dx * dx + dy * dy <= 15.0 * 15.0;
                let eye = (dx.abs() - 5.0).powi(2) + (dy + 4.0).powi(2) <= 5.0;
                let argb: [u8; 4] = match (inside, eye) {
                    (false, _) => [0, 0, 0, 0],
                    (true, true) => [255, 60, 40, 60],
                    (true, false) => [255, 250, 200, 210],
                };
                data.extend_from_slice(&argb);
            }
        }
        ksni::Icon {
            width: SIZE,
            height: SIZE,
            data,
        }
    }

    #[derive(Resource)]
    struct TrayHandle(Handle<MascotTray>);

    pub fn plugin(app: &mut App) {
        let tray = MascotTray {
            actions: app.world().resource::<DesktopActions>().clone(),
            state: TrayState::default(),
        };
        // Without a watcher the item still serves on the bus (and shows once a host starts).
        match tray.assume_sni_available(true).spawn() {
            Ok(handle) => {
                info!("tray icon served on the D-Bus session bus");
                app.insert_resource(TrayHandle(handle))
                    .add_systems(Update, follow_state.in_set(AppSystems::Apply));
            }
            Err(err) => info!(
                "no tray icon: {err}; the global hotkeys (desktop.hotkeys) still show the \
                 mascot and switch click-through"
            ),
        }
    }

    /// Keeps the menu's checkmarks and labels in step with the app.
    fn follow_state(
        tray: Res<TrayHandle>,
        windows: Query<&Window, With<PrimaryWindow>>,
        click_through: Res<ClickThrough>,
        settings: Res<Settings>,
        mut shown: Local<Option<TrayState>>,
    ) {
        let state = TrayState {
            visible: windows.single().is_ok_and(|w| w.visible),
            click_through: click_through.0,
            autostart: settings.desktop.autostart,
        };
        if *shown == Some(state) {
            return;
        }
        *shown = Some(state);
        tray.0.update(|tray| tray.state = state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_has_every_item_and_shows_the_state() {
        let labels = |state| {
            menu(state)
                .into_iter()
                .map(|e| e.map(|(label, checked, _)| (label, checked)))
                .collect::<Vec<_>>()
        };
        let state = TrayState {
            visible: true,
            click_through: true,
            autostart: false,
        };
        assert_eq!(
            labels(state),
            [
                Some(("Hide mascot", None)),
                Some(("Click-through", Some(true))),
                None,
                Some(("Chat", None)),
                Some(("Expressions", None)),
                Some(("Settings", None)),
                Some(("Diagnostics", None)),
                None,
                Some(("Start with the system", Some(false))),
                Some(("Quit", None)),
            ]
        );
        let hidden = labels(TrayState {
            visible: false,
            ..state
        });
        assert_eq!(hidden[0], Some(("Show mascot", None)));
    }
}
