//! The same app the mascot runs, built headless with all plugins.

use bevy::prelude::*;
use desktop_mate::config::{self, Overrides, Settings, SettingsFile, SettingsStatus};
use desktop_mate::{AppSystems, AvatarPlugin, DiagnosticsPlugin, LlmPlugin};

fn app_with(source: &str) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    std::fs::write(&path, source).expect("write");
    let app =
        desktop_mate::headless_app(config::load_with(Some(&path), None, Overrides::default()));
    (app, dir)
}

#[test]
fn headless_app_has_the_three_plugins_and_runs_frames() {
    let (mut app, _dir) = app_with("(persona: (name: \"Headless\"))");
    assert!(app.is_plugin_added::<AvatarPlugin>());
    assert!(app.is_plugin_added::<LlmPlugin>());
    assert!(app.is_plugin_added::<DiagnosticsPlugin>());
    for _ in 0..10 {
        app.update();
    }
    let world = app.world_mut();
    assert_eq!(world.resource::<Settings>().persona.name, "Headless");
    assert!(world.resource::<SettingsStatus>().error.is_none());
    assert!(world.resource::<SettingsFile>().path.is_some());
    // The avatar's command channel and face state exist without a window.
    assert!(world.contains_resource::<desktop_mate::avatar::AvatarCommands>());
    assert!(world.contains_resource::<desktop_mate::avatar::FaceState>());
}

#[test]
fn a_bad_settings_file_still_starts_the_app_with_defaults_and_the_error() {
    let (mut app, _dir) = app_with("(window: (scale: \"big\"))");
    app.update();
    let world = app.world();
    assert_eq!(*world.resource::<Settings>(), Settings::default());
    let error = world
        .resource::<SettingsStatus>()
        .error
        .clone()
        .expect("error kept for the UI");
    assert_eq!(error.key, "window.scale");
}

#[derive(Resource, Default)]
struct Order(Vec<&'static str>);

#[test]
fn app_systems_run_in_their_configured_order() {
    let (mut app, _dir) = app_with("()");
    app.init_resource::<Order>();
    // Added in reverse on purpose: the set order must win.
    app.add_systems(
        Update,
        (
            (|mut o: ResMut<Order>| o.0.push("apply")).in_set(AppSystems::Apply),
            (|mut o: ResMut<Order>| o.0.push("update")).in_set(AppSystems::Update),
            (|mut o: ResMut<Order>| o.0.push("read")).in_set(AppSystems::ReadChannels),
        ),
    );
    app.update();
    assert_eq!(
        app.world().resource::<Order>().0,
        vec!["read", "update", "apply"]
    );
}
