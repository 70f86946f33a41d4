//! `desktop-mate snapshot`: renders the real mascot window, waits for it to settle, saves the
//! window's pixels with their alpha to a PNG and exits. Used by tests, the docs screenshots
//! script and bug reports.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

/// What to capture, inserted by `main` for the snapshot command.
#[derive(Resource, Debug, Clone)]
pub struct SnapshotRequest {
    pub out: PathBuf,
    /// Frames rendered before the capture (pipelines compile and the UI lays out meanwhile).
    pub settle_frames: u32,
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        capture_when_settled.in_set(crate::AppSystems::Apply),
    );
}

fn capture_when_settled(
    mut commands: Commands,
    mut request: ResMut<SnapshotRequest>,
    mut requested: Local<bool>,
) {
    if *requested {
        return;
    }
    if request.settle_frames > 0 {
        request.settle_frames -= 1;
        return;
    }
    *requested = true;
    let out = request.out.clone();
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
            match save_rgba_png(&captured.image, &out) {
                Ok(()) => {
                    info!("snapshot saved to {}", out.display());
                    exit.write(AppExit::Success);
                }
                Err(err) => {
                    error!("cannot save snapshot to {}: {err}", out.display());
                    exit.write(AppExit::from_code(1));
                }
            }
        },
    );
}

/// Writes the image as RGBA (Bevy's stock `save_to_disk` drops alpha).
pub fn save_rgba_png(image: &Image, out: &Path) -> Result<(), String> {
    let dynamic = image
        .clone()
        .try_into_dynamic()
        .map_err(|e| format!("unsupported screenshot format: {e}"))?;
    dynamic
        .to_rgba8()
        .save_with_format(out, image::ImageFormat::Png)
        .map_err(|e| e.to_string())
}
