//! What the global hotkeys and the tray ask of the mascot, sent from their own threads through
//! one channel that also wakes the Bevy loop: in winit's reactive mode an idle mascot sleeps
//! until an event comes, and a hotkey or a tray click is not a window event.

use std::sync::Arc;

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use crossbeam_channel::{Receiver, Sender};

use crate::AppSystems;
use crate::avatar::ClickThrough;
use crate::diagnostics::DiagnosticsOverlay;
use crate::ui::{ChatPanel, ExpressionsPanel, MemoryPanel, SettingsPanel};

/// One request to the mascot window.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesktopAction {
    /// Click-through off (the whole window catches clicks) or on again; off also shows a
    /// hidden mascot, so this always brings it back to interactive.
    ToggleClickThrough,
    /// Hide the mascot, or show it again.
    ToggleVisible,
    /// Open or close the chat panel (showing a hidden mascot first).
    ToggleChat,
    /// Open or close the expressions, settings or memory panel or the diagnostics overlay
    /// (showing a hidden mascot first).
    ToggleExpressions,
    ToggleSettings,
    ToggleMemory,
    ToggleDiagnostics,
    /// Flip `desktop.autostart` and save it to the settings file (handled in autostart.rs).
    ToggleAutostart,
    /// Flip `voice.enabled` and save it (handled by the voice plugin): off silences at once.
    ToggleVoice,
    /// The push-to-talk key went down (`held`) or up (handled by the voice plugin's listening).
    PushToTalk {
        held: bool,
    },
    Quit,
}

/// Sends [`DesktopAction`]s from any thread. Cloned into the hotkey and tray threads.
#[derive(Resource, Clone)]
pub struct DesktopActions {
    send: Sender<DesktopAction>,
    receive: Receiver<DesktopAction>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl DesktopActions {
    /// A channel without a loop to wake (tests drive `app.update()` themselves).
    pub fn new() -> Self {
        let (send, receive) = crossbeam_channel::unbounded();
        Self {
            send,
            receive,
            wake: None,
        }
    }

    /// Also wakes the event loop after each action.
    pub fn waking(wake: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            wake: Some(Arc::new(wake)),
            ..Self::new()
        }
    }

    pub fn send(&self, action: DesktopAction) {
        // The receiver lives in the same resource: sending fails only once the app is gone.
        let _ = self.send.send(action);
        if let Some(wake) = &self.wake {
            wake();
        }
    }
}

impl Default for DesktopActions {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) fn plugin(app: &mut App) {
    let actions = match app
        .world()
        .get_resource::<bevy::winit::EventLoopProxyWrapper>()
    {
        Some(proxy) => {
            let proxy = (**proxy).clone();
            DesktopActions::waking(move || {
                let _ = proxy.send_event(bevy::winit::WinitUserEvent::WakeUp);
            })
        }
        None => DesktopActions::new(),
    };
    app.insert_resource(actions)
        .add_message::<DesktopAction>()
        .add_systems(Update, read_actions.in_set(AppSystems::ReadChannels))
        .add_systems(Update, apply_actions.in_set(AppSystems::Update));
}

fn read_actions(actions: Res<DesktopActions>, mut out: MessageWriter<DesktopAction>) {
    out.write_batch(actions.receive.try_iter());
}

fn apply_actions(
    mut actions: MessageReader<DesktopAction>,
    mut windows: Query<&mut Window, With<PrimaryWindow>>,
    mut click_through: ResMut<ClickThrough>,
    chat: Option<ResMut<ChatPanel>>,
    expressions: Option<ResMut<ExpressionsPanel>>,
    (settings, memory): (Option<ResMut<SettingsPanel>>, Option<ResMut<MemoryPanel>>),
    overlay: Option<ResMut<DiagnosticsOverlay>>,
    mut exit: MessageWriter<AppExit>,
) {
    let (mut chat, mut expressions, mut settings, mut memory, mut overlay) =
        (chat, expressions, settings, memory, overlay);
    for action in actions.read() {
        let mut window = windows.single_mut().ok();
        let show = |window: &mut Option<Mut<Window>>| {
            if let Some(window) = window.as_mut()
                && !window.visible
            {
                window.visible = true;
                info!("mascot shown");
            }
        };
        match action {
            DesktopAction::ToggleClickThrough => {
                let hidden = window.as_ref().is_some_and(|w| !w.visible);
                // A hidden mascot comes back interactive whatever the state was.
                click_through.0 = !click_through.0 && !hidden;
                if !click_through.0 {
                    show(&mut window);
                }
                info!(
                    "click-through {}",
                    if click_through.0 {
                        "on: clicks on transparent pixels reach the desktop"
                    } else {
                        "off: the whole window catches clicks"
                    }
                );
            }
            DesktopAction::ToggleVisible => match window.as_mut() {
                Some(window) if window.visible => {
                    window.visible = false;
                    info!("mascot hidden");
                }
                _ => show(&mut window),
            },
            DesktopAction::ToggleChat => {
                let hidden = window.as_ref().is_some_and(|w| !w.visible);
                show(&mut window);
                if let Some(chat) = chat.as_mut() {
                    chat.open = hidden || !chat.open;
                    info!("chat panel {}", if chat.open { "open" } else { "closed" });
                }
            }
            DesktopAction::ToggleExpressions
            | DesktopAction::ToggleSettings
            | DesktopAction::ToggleMemory
            | DesktopAction::ToggleDiagnostics => {
                let hidden = window.as_ref().is_some_and(|w| !w.visible);
                show(&mut window);
                let open = match action {
                    DesktopAction::ToggleExpressions => expressions.as_mut().map(|p| &mut p.open),
                    DesktopAction::ToggleSettings => settings.as_mut().map(|p| &mut p.open),
                    DesktopAction::ToggleMemory => memory.as_mut().map(|p| &mut p.open),
                    _ => overlay.as_mut().map(|o| &mut o.visible),
                };
                if let Some(open) = open {
                    *open = hidden || !*open;
                }
            }
            DesktopAction::ToggleAutostart
            | DesktopAction::ToggleVoice
            | DesktopAction::PushToTalk { .. } => {}
            DesktopAction::Quit => {
                exit.write(AppExit::Success);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins);
        crate::schedule::configure(&mut app);
        app.insert_resource(ClickThrough(true))
            .init_resource::<ChatPanel>()
            .add_plugins(plugin);
        app.world_mut().spawn((Window::default(), PrimaryWindow));
        app
    }

    fn visible(app: &mut App) -> bool {
        let mut windows = app.world_mut().query::<&Window>();
        windows.single(app.world()).expect("window").visible
    }

    #[test]
    fn an_action_sent_from_another_thread_toggles_click_through_and_wakes_the_loop() {
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut app = app();
        let counter = woken.clone();
        let actions = DesktopActions::waking(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        app.insert_resource(actions.clone());
        std::thread::spawn(move || actions.send(DesktopAction::ToggleClickThrough))
            .join()
            .expect("sender thread");
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
        app.update();
        assert_eq!(*app.world().resource::<ClickThrough>(), ClickThrough(false));
        app.world()
            .resource::<DesktopActions>()
            .send(DesktopAction::ToggleClickThrough);
        app.update();
        assert_eq!(*app.world().resource::<ClickThrough>(), ClickThrough(true));
    }

    #[test]
    fn hiding_then_click_through_off_brings_the_mascot_back_interactive() {
        let mut app = app();
        let send = |app: &mut App, action| app.world().resource::<DesktopActions>().send(action);
        send(&mut app, DesktopAction::ToggleVisible);
        app.update();
        assert!(!visible(&mut app), "hidden");
        send(&mut app, DesktopAction::ToggleClickThrough);
        app.update();
        assert!(visible(&mut app), "shown again");
        assert_eq!(*app.world().resource::<ClickThrough>(), ClickThrough(false));
        // Hidden with click-through already off: shown, and still interactive.
        send(&mut app, DesktopAction::ToggleVisible);
        app.update();
        send(&mut app, DesktopAction::ToggleClickThrough);
        app.update();
        assert!(visible(&mut app), "shown again");
        assert_eq!(*app.world().resource::<ClickThrough>(), ClickThrough(false));

        // The chat shortcut on a hidden mascot shows it with the chat open.
        app.world_mut().resource_mut::<ChatPanel>().open = true;
        send(&mut app, DesktopAction::ToggleChat);
        app.update();
        assert!(!app.world().resource::<ChatPanel>().open, "closed");
        send(&mut app, DesktopAction::ToggleVisible);
        send(&mut app, DesktopAction::ToggleChat);
        app.update();
        assert!(visible(&mut app));
        assert!(app.world().resource::<ChatPanel>().open, "opened with it");
    }
}
