//! desktop-mate: a VRM desktop mascot that chats through a local LLM.
//!
//! `main.rs` parses the command line and loads the settings; this crate builds the same
//! [`App`] for the mascot window ([`windowed_app`]), and for tests and benches
//! ([`headless_app`]).

pub mod avatar;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod desktop;
pub mod diagnostics;
pub mod hardware;
pub mod llm;
pub mod memory;
pub mod models;
pub mod motion;
mod schedule;
pub mod ui;
pub mod voice;

use bevy::prelude::*;
use bevy::window::{WindowLevel, WindowPosition, WindowResolution};

pub use avatar::AvatarPlugin;
pub use config::ConfigPlugin;
pub use desktop::DesktopPlugin;
pub use diagnostics::DiagnosticsPlugin;
pub use llm::LlmPlugin;
pub use memory::MemoryPlugin;
pub use motion::MotionPlugin;
pub use schedule::AppSystems;
pub use ui::UiPlugin;
pub use voice::VoicePlugin;

use config::{AppState, LoadedSettings, Settings};

/// Our plugins and resources, shared by the windowed and headless apps.
fn add_mascot_plugins(app: &mut App, loaded: LoadedSettings) {
    schedule::configure(app);
    config::insert_loaded(app, loaded);
    app.add_plugins((
        ConfigPlugin,
        AvatarPlugin,
        MotionPlugin,
        LlmPlugin,
        MemoryPlugin,
        VoicePlugin,
        DiagnosticsPlugin,
    ));
}

/// A window-less app with every plugin of the mascot, for tests and benches.
pub fn headless_app(loaded: LoadedSettings) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, bevy::state::app::StatesPlugin));
    add_mascot_plugins(&mut app, loaded);
    app
}

/// The mascot: a transparent, borderless, always-on-top window with the plugins and the UI.
pub fn windowed_app(loaded: LoadedSettings) -> App {
    windowed(loaded, DesktopPlugin::default())
}

/// The mascot's window for `snapshot`: no global hotkeys, tray icon or autostart entry.
pub fn snapshot_app(loaded: LoadedSettings) -> App {
    windowed(loaded, DesktopPlugin { presence: false })
}

fn windowed(loaded: LoadedSettings, desktop: DesktopPlugin) -> App {
    let window = primary_window(&loaded.settings, &loaded.state);
    let mut app = App::new();
    // Avatars are read through our normalizing source, which must exist before AssetPlugin.
    let avatar_files = avatar::AvatarFiles::default();
    app.register_asset_source(avatar::source::SOURCE, avatar_files.source())
        .insert_resource(avatar_files);
    app.add_plugins(
        DefaultPlugins
            .set(AssetPlugin {
                // We ship no .meta files; do not look for them next to user files.
                meta_check: bevy::asset::AssetMetaCheck::Never,
                ..default()
            })
            .set(WindowPlugin {
                primary_window: Some(window),
                ..default()
            })
            .set(bevy::log::LogPlugin {
                filter: "wgpu=error,naga=warn,bevy_render=info,bevy_egui=warn,llama-cpp-2=error"
                    .into(),
                ..default()
            })
            .set(TaskPoolPlugin {
                task_pool_options: task_pools(),
            }),
    )
    .insert_resource(ClearColor(Color::NONE))
    .add_plugins(bevy_egui::EguiPlugin::default());
    add_mascot_plugins(&mut app, loaded);
    app.add_plugins((UiPlugin, desktop));
    app
}

/// Bevy gives the async compute pool 25 % of the cores: one thread on a 2-core machine, which
/// pipeline compilation and screenshots also need. A reply occupies one thread for seconds,
/// so keep at least two.
fn task_pools() -> TaskPoolOptions {
    let mut options = TaskPoolOptions::default();
    options.async_compute.min_threads = 2;
    options
}

fn primary_window(settings: &Settings, state: &AppState) -> Window {
    let window = &settings.window;
    let scale = state.window_scale(settings);
    Window {
        title: format!("desktop-mate — {}", settings.persona.name),
        // Wayland's app_id (unset otherwise): desktops match the window to the installed
        // menu entry (its icon in the dock and task switcher), compositors' rules find it. Only
        // there: on X11 Bevy would give WM_CLASS an empty instance, where winit's default is
        // the program's name for both (what StartupWMClass matches).
        name: desktop::display::native_wayland().then(|| "desktop-mate".into()),
        resolution: WindowResolution::new(
            (window.width as f32 * scale).round() as u32,
            (window.height as f32 * scale).round() as u32,
        ),
        position: match state.window_position(settings) {
            Some((x, y)) => WindowPosition::At(IVec2::new(x, y)),
            None if state.run_reset_window => {
                WindowPosition::Centered(bevy::window::MonitorSelection::Primary)
            }
            None => WindowPosition::Automatic,
        },
        skip_taskbar: !window.show_in_taskbar,
        transparent: true,
        decorations: false,
        resizable: false,
        window_level: if window.always_on_top {
            WindowLevel::AlwaysOnTop
        } else {
            WindowLevel::Normal
        },
        composite_alpha_mode: desktop::transparency::composite_alpha_mode(),
        ..default()
    }
}
