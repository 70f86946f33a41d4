//! `desktop-mate snapshot`: renders the real mascot window, waits for it to settle, saves the
//! window's pixels with their alpha to a PNG and exits. Used by tests, the docs screenshots
//! script and bug reports.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use crate::llm::{LlmStatus, ReplyFinished, SendChat};

/// What to capture, inserted by `main` for the snapshot command.
#[derive(Resource, Debug, Clone)]
pub struct SnapshotRequest {
    pub out: PathBuf,
    /// Frames rendered before the capture (pipelines compile and the UI lays out meanwhile).
    pub settle_frames: u32,
    /// A message to send once the chat is ready; the capture waits for the whole reply.
    pub say: Option<String>,
    /// With `say`: capture while the reply is still being generated (after `settle_frames`
    /// frames rendered during the generation) instead of after it.
    pub during_reply: bool,
}

/// Where a `--say` message stands.
#[derive(Resource, Debug, Default, PartialEq)]
enum SayProgress {
    #[default]
    Waiting,
    Sent,
    Answered,
}

pub fn plugin(app: &mut App) {
    app.init_resource::<SayProgress>();
    app.add_systems(
        Update,
        (say_when_ready, capture_when_settled)
            .chain()
            .in_set(crate::AppSystems::Apply),
    );
}

fn say_when_ready(
    request: Res<SnapshotRequest>,
    status: Res<LlmStatus>,
    mut progress: ResMut<SayProgress>,
    mut send: MessageWriter<SendChat>,
    mut finished: MessageReader<ReplyFinished>,
    mut frames_generating: Local<u32>,
) {
    let Some(message) = &request.say else {
        *progress = SayProgress::Answered;
        return;
    };
    match *progress {
        SayProgress::Waiting => match *status {
            LlmStatus::Ready => {
                send.write(SendChat(message.clone()));
                *progress = SayProgress::Sent;
            }
            // Nothing to wait for: capture what the user would see.
            LlmStatus::NoModel | LlmStatus::Error(_) => *progress = SayProgress::Answered,
            _ => {}
        },
        SayProgress::Sent => {
            if request.during_reply && *status == LlmStatus::Generating {
                *frames_generating += 1;
                if *frames_generating >= request.settle_frames.max(1) {
                    *progress = SayProgress::Answered;
                }
            } else if finished.read().count() > 0 || matches!(*status, LlmStatus::Error(_)) {
                *progress = SayProgress::Answered;
            }
        }
        SayProgress::Answered => {}
    }
}

fn capture_when_settled(
    mut commands: Commands,
    mut request: ResMut<SnapshotRequest>,
    progress: Res<SayProgress>,
    mut requested: Local<bool>,
) {
    if *requested || *progress != SayProgress::Answered {
        return;
    }
    // During a reply, the frames were already counted while it was being generated.
    if request.settle_frames > 0 && !request.during_reply {
        request.settle_frames -= 1;
        return;
    }
    *requested = true;
    let out = request.out.clone();
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>,
              status: Res<LlmStatus>,
              mut exit: MessageWriter<AppExit>| {
            match save_rgba_png(&captured.image, &out) {
                Ok(()) => {
                    let when = if *status == LlmStatus::Generating {
                        " while a reply was being generated"
                    } else {
                        ""
                    };
                    info!("snapshot saved to {}{when}", out.display());
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
