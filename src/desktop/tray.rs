//! The tray icon and its menu: show/hide, click-through, chat, voice, expressions, settings,
//! diagnostics, start with the system, quit. Each item sends a [`DesktopAction`] (which wakes
//! the Bevy loop), so the tray works whatever the window's click-through state.
//!
//! Linux: a StatusNotifierItem over D-Bus (ksni, no GTK), shown by KDE, GNOME with the
//! AppIndicator extension, XFCE, waybar... Without a tray host (or without a session bus) that
//! is logged once and the mascot carries on; the hotkeys still bring it back.
//! Windows: a notification-area icon with a popup menu (tray-icon + muda), created on the main
//! thread, whose messages winit's loop pumps. macOS has no tray yet.

use bevy::prelude::*;
use bevy::window::PrimaryWindow;

use super::actions::DesktopAction;
use crate::avatar::ClickThrough;
use crate::config::Settings;

/// What the menu shows as checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrayState {
    pub visible: bool,
    pub click_through: bool,
    pub autostart: bool,
    pub voice: bool,
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
        Some(("Voice", Some(state.voice), DesktopAction::ToggleVoice)),
        Some(("Expressions", None, DesktopAction::ToggleExpressions)),
        Some(("Settings", None, DesktopAction::ToggleSettings)),
        Some(("Memory", None, DesktopAction::ToggleMemory)),
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

/// What the menu should show now.
fn current_state(
    windows: &Query<&Window, With<PrimaryWindow>>,
    click_through: &ClickThrough,
    settings: &Settings,
) -> TrayState {
    TrayState {
        visible: windows.single().is_ok_and(|w| w.visible),
        click_through: click_through.0,
        autostart: settings.desktop.autostart,
        voice: settings.voice.enabled,
    }
}

/// The icon, 32x32 RGBA (a round face), for hosts without the themed one.
#[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]
fn icon_rgba() -> Vec<u8> {
    const SIZE: i32 = ICON_SIZE as i32;
    let mut data = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (dx, dy) = (x as f32 - 15.5, y as f32 - 15.5);
            let inside = dx * dx + dy * dy <= 15.0 * 15.0;
            let eye = (dx.abs() - 5.0).powi(2) + (dy + 4.0).powi(2) <= 5.0;
            let rgba: [u8; 4] = match (inside, eye) {
                (false, _) => [0, 0, 0, 0],
                (true, true) => [60, 40, 60, 255],
                (true, false) => [250, 200, 210, 255],
            };
            data.extend_from_slice(&rgba);
        }
    }
    data
}

const ICON_SIZE: u32 = 32;

#[cfg(target_os = "linux")]
pub(super) use sni::plugin;

#[cfg(windows)]
pub(super) use win::plugin;

#[cfg(not(any(target_os = "linux", windows)))]
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

    /// The icon in the ARGB order StatusNotifierItem hosts read.
    fn icon() -> ksni::Icon {
        let mut data = super::icon_rgba();
        for pixel in data.as_chunks_mut::<4>().0 {
            pixel.rotate_right(1);
        }
        ksni::Icon {
            width: super::ICON_SIZE as i32,
            height: super::ICON_SIZE as i32,
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
        let state = super::current_state(&windows, &click_through, &settings);
        if *shown == Some(state) {
            return;
        }
        *shown = Some(state);
        tray.0.update(|tray| tray.state = state);
    }
}

#[cfg(windows)]
mod win {
    use std::collections::HashMap;

    use bevy::prelude::*;
    use bevy::window::PrimaryWindow;
    use tray_icon::menu::{CheckMenuItem, Menu, MenuEvent, MenuId, MenuItem, PredefinedMenuItem};
    use tray_icon::{
        Icon, MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent,
    };

    use super::{DesktopAction, TrayState, menu};
    use crate::AppSystems;
    use crate::avatar::ClickThrough;
    use crate::config::Settings;
    use crate::desktop::actions::DesktopActions;

    /// A menu item we update: plain (its label changes) or with a checkmark.
    pub(super) enum Item {
        Plain(MenuItem),
        Check(CheckMenuItem),
    }

    /// The menu built from [`menu`]: the Win32 menu, its items in order (separators left
    /// out) and the action each item's id stands for.
    pub(super) struct BuiltMenu {
        pub menu: Menu,
        pub items: Vec<Item>,
        pub actions: HashMap<MenuId, DesktopAction>,
    }

    pub(super) fn build_menu(state: TrayState) -> Result<BuiltMenu, tray_icon::menu::Error> {
        let win_menu = Menu::new();
        let mut items = Vec::new();
        let mut actions = HashMap::new();
        for entry in menu(state) {
            match entry {
                None => win_menu.append(&PredefinedMenuItem::separator())?,
                Some((label, None, action)) => {
                    let item = MenuItem::new(label, true, None);
                    win_menu.append(&item)?;
                    actions.insert(item.id().clone(), action);
                    items.push(Item::Plain(item));
                }
                Some((label, Some(checked), action)) => {
                    let item = CheckMenuItem::new(label, true, checked, None);
                    win_menu.append(&item)?;
                    actions.insert(item.id().clone(), action);
                    items.push(Item::Check(item));
                }
            }
        }
        Ok(BuiltMenu {
            menu: win_menu,
            items,
            actions,
        })
    }

    /// Shows `state` on the items (labels and checkmarks), in [`menu`]'s order.
    pub(super) fn show(items: &[Item], state: TrayState) {
        for (item, (label, checked, _)) in items.iter().zip(menu(state).into_iter().flatten()) {
            match (item, checked) {
                (Item::Plain(item), _) => item.set_text(label),
                (Item::Check(item), Some(checked)) => item.set_checked(checked),
                (Item::Check(_), None) => {}
            }
        }
    }

    /// The icon and its items: Win32 objects of the main thread (a non-send resource).
    pub(super) struct WinTray {
        _icon: TrayIcon,
        items: Vec<Item>,
        shown: Option<TrayState>,
    }

    pub fn plugin(app: &mut App) {
        let actions = app.world().resource::<DesktopActions>().clone();
        // Plugins are built on the main thread, the one winit's loop runs on: Windows
        // delivers the icon's and the menu's messages to the thread that created them.
        match build(actions) {
            Ok(tray) => {
                info!("tray icon added to the notification area");
                app.insert_non_send(tray)
                    .add_systems(Update, follow_state.in_set(AppSystems::Apply));
            }
            Err(err) => info!(
                "no tray icon: {err}; the global hotkeys (desktop.hotkeys) still show the \
                 mascot and switch click-through"
            ),
        }
    }

    pub(super) fn build(actions: DesktopActions) -> Result<WinTray, String> {
        let built = build_menu(TrayState::default()).map_err(|e| e.to_string())?;
        let by_id = built.actions;
        let menu_actions = actions.clone();
        // Called on the main thread while winit pumps messages; the action wakes the loop.
        // muda and tray-icon keep the first handler a process sets (one app per process).
        MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
            if let Some(action) = by_id.get(&event.id) {
                menu_actions.send(*action);
            }
        }));
        // A click on the icon shows or hides the mascot; the menu opens on a right click.
        TrayIconEvent::set_event_handler(Some(move |event: TrayIconEvent| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                actions.send(DesktopAction::ToggleVisible);
            }
        }));
        let icon = Icon::from_rgba(super::icon_rgba(), super::ICON_SIZE, super::ICON_SIZE)
            .map_err(|e| e.to_string())?;
        let icon = TrayIconBuilder::new()
            .with_tooltip("desktop-mate")
            .with_icon(icon)
            .with_menu(Box::new(built.menu))
            .with_menu_on_left_click(false)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(WinTray {
            _icon: icon,
            items: built.items,
            shown: None,
        })
    }

    /// Keeps the menu's checkmarks and labels in step with the app.
    fn follow_state(
        mut tray: NonSendMut<WinTray>,
        windows: Query<&Window, With<PrimaryWindow>>,
        click_through: Res<ClickThrough>,
        settings: Res<Settings>,
    ) {
        let state = super::current_state(&windows, &click_through, &settings);
        if tray.shown == Some(state) {
            return;
        }
        tray.shown = Some(state);
        show(&tray.items, state);
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
            voice: true,
        };
        assert_eq!(
            labels(state),
            [
                Some(("Hide mascot", None)),
                Some(("Click-through", Some(true))),
                None,
                Some(("Chat", None)),
                Some(("Voice", Some(true))),
                Some(("Expressions", None)),
                Some(("Settings", None)),
                Some(("Memory", None)),
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

    /// The notification-area icon itself (Shell_NotifyIcon under Wine's explorer), with its
    /// menu; removed again when dropped.
    #[cfg(windows)]
    #[test]
    fn the_windows_tray_icon_is_created() {
        let tray = win::build(crate::desktop::actions::DesktopActions::new());
        assert!(tray.is_ok(), "{:?}", tray.err());
    }

    /// The real Win32 menu (muda) from the table: every item in order, each id mapped to its
    /// action, checkmarks and the show/hide label following the state.
    #[cfg(windows)]
    #[test]
    fn the_windows_menu_is_the_table() {
        use tray_icon::menu::MenuItemKind;
        let state = TrayState {
            visible: true,
            click_through: true,
            autostart: false,
            voice: false,
        };
        let built = win::build_menu(state).expect("menu");
        let kinds: Vec<String> = built
            .menu
            .items()
            .iter()
            .map(|item| match item {
                MenuItemKind::MenuItem(i) => i.text(),
                MenuItemKind::Check(i) => format!("[{}] {}", i.is_checked(), i.text()),
                MenuItemKind::Predefined(_) => "---".to_owned(),
                _ => "?".to_owned(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "Hide mascot",
                "[true] Click-through",
                "---",
                "Chat",
                "[false] Voice",
                "Expressions",
                "Settings",
                "Memory",
                "Diagnostics",
                "---",
                "[false] Start with the system",
                "Quit",
            ]
        );
        let table: Vec<DesktopAction> = menu(state).into_iter().flatten().map(|e| e.2).collect();
        let mapped: Vec<DesktopAction> = built
            .items
            .iter()
            .map(|item| {
                let id = match item {
                    win::Item::Plain(i) => i.id(),
                    win::Item::Check(i) => i.id(),
                };
                built.actions[id]
            })
            .collect();
        assert_eq!(mapped, table);
        win::show(
            &built.items,
            TrayState {
                visible: false,
                click_through: false,
                autostart: true,
                voice: true,
            },
        );
        let texts: Vec<String> = built
            .menu
            .items()
            .iter()
            .filter_map(|item| match item {
                MenuItemKind::MenuItem(i) => Some(i.text()),
                MenuItemKind::Check(i) => Some(format!("[{}] {}", i.is_checked(), i.text())),
                _ => None,
            })
            .collect();
        assert_eq!(texts[0], "Show mascot");
        assert_eq!(texts[1], "[false] Click-through");
        assert_eq!(texts[3], "[true] Voice");
        assert_eq!(texts[8], "[true] Start with the system");
    }
}
