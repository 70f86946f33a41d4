//! An external edit of the settings file applies live in a running (headless) app; a broken
//! edit is reported and ignored.

use crate::support::update_until;

use std::fs;
use std::time::Duration;

use desktop_mate::config::{
    self, ErrorKind, Overrides, Settings, SettingsStatus, SettingsWatching,
};

#[test]
fn good_edit_applies_and_broken_edit_is_ignored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    fs::write(&path, "(persona: (name: \"Ada\"))\n").expect("write");
    let loaded = config::load_with(Some(&path), None, Overrides::default());
    assert!(loaded.error.is_none());
    let mut app = desktop_mate::headless_app(loaded);
    app.update();
    assert_eq!(app.world().resource::<Settings>().persona.name, "Ada");
    // The watcher says when it watches.
    assert!(update_until(&mut app, Duration::from_secs(10), |world| {
        world.contains_resource::<SettingsWatching>()
    }));

    fs::write(
        &path,
        "(persona: (name: \"Grace\"), window: (width: 500))\n",
    )
    .expect("edit");
    let applied = update_until(&mut app, Duration::from_secs(10), |world| {
        world.resource::<Settings>().persona.name == "Grace"
    });
    assert!(applied, "a good edit must apply live");
    assert_eq!(app.world().resource::<Settings>().window.width, 500);

    fs::write(&path, "(persona: (name: \"Broken\"), window: (width: 5))\n").expect("bad edit");
    let reported = update_until(&mut app, Duration::from_secs(10), |world| {
        world.resource::<SettingsStatus>().error.is_some()
    });
    assert!(reported, "a broken edit must be reported");
    let error = app
        .world()
        .resource::<SettingsStatus>()
        .error
        .clone()
        .expect("error");
    assert_eq!(error.kind, ErrorKind::OutOfRange);
    assert_eq!(error.key, "window.width");
    let settings = app.world().resource::<Settings>();
    assert_eq!(settings.persona.name, "Grace", "last good settings stay");
    assert_eq!(settings.window.width, 500);
    // The broken file is the user's: it is not rewritten.
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        "(persona: (name: \"Broken\"), window: (width: 5))\n"
    );

    fs::write(&path, "(persona: (name: \"Fixed\"))\n").expect("fix");
    let fixed = update_until(&mut app, Duration::from_secs(10), |world| {
        world.resource::<SettingsStatus>().error.is_none()
            && world.resource::<Settings>().persona.name == "Fixed"
    });
    assert!(fixed, "fixing the file clears the error and applies it");
}

#[test]
fn overrides_survive_a_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mascot.ron");
    fs::write(&path, "()\n").expect("write");
    let overrides = Overrides {
        model: Some("/tmp/override.gguf".into()),
        avatar: None,
        ..Overrides::default()
    };
    let mut app = desktop_mate::headless_app(config::load_with(Some(&path), None, overrides));
    assert!(update_until(&mut app, Duration::from_secs(10), |world| {
        world.contains_resource::<SettingsWatching>()
    }));
    fs::write(
        &path,
        "(llm: (model_path: Some(\"/m/file.gguf\"), n_ctx: 2048))\n",
    )
    .expect("edit");
    let applied = update_until(&mut app, Duration::from_secs(10), |world| {
        world.resource::<Settings>().llm.n_ctx == 2048
    });
    assert!(applied);
    let settings = app.world().resource::<Settings>();
    assert_eq!(
        settings.llm.model_path.as_deref(),
        Some(std::path::Path::new("/tmp/override.gguf"))
    );
}
