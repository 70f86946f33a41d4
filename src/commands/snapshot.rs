//! `desktop-mate snapshot`: renders the real mascot window, waits until the avatar is loaded
//! and its expressions have settled, saves the window's pixels with their alpha to a PNG and
//! exits. Used by tests, the docs screenshots script and bug reports.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use crate::avatar::{
    AvatarCommand, AvatarCommands, AvatarError, AvatarRig, AvatarStatus, FaceState, Framed, Seen,
};
use crate::config::{Expression, LoadedSettings};
use crate::llm::{LlmStatus, ModelDownloads, ReplyFinished, SendChat, StartDownload};
use crate::motion::{AvatarMotions, LibraryClip, MotionLibrary, MotionOverride};
use crate::voice::{DownloadVoice, VoiceDownloads};
use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;

#[derive(clap::Args, Debug, Clone)]
pub struct SnapshotArgs {
    /// PNG file to write.
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
    /// Window size for the snapshot, e.g. 400x600 (default: the settings' size).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// Show an expression, e.g. `--expression joy=0.8` (repeatable; 0..1).
    #[arg(long, value_name = "NAME=WEIGHT", value_parser = parse_expression)]
    pub expression: Vec<(Expression, f32)>,
    /// Keep the random motions (blink, head turns, breathing); by default they are paused so
    /// two snapshots differ only by what was asked.
    #[arg(long)]
    pub animate: bool,
    /// Open the settings panel before capturing.
    #[arg(long)]
    pub settings: bool,
    /// Open the Expressions panel (F4) before capturing.
    #[arg(long)]
    pub expressions_panel: bool,
    /// Open the Memory panel (F5) before capturing; the capture waits for its list.
    #[arg(long)]
    pub memory_panel: bool,
    /// Open the right-click menu in the middle of the window before capturing.
    #[arg(long)]
    pub menu: bool,
    /// Hide the chat panel.
    #[arg(long)]
    pub no_chat: bool,
    /// Show the diagnostics overlay (F3).
    #[arg(long)]
    pub overlay: bool,
    /// Send this chat message once the model is ready and capture after the reply.
    #[arg(long, value_name = "TEXT")]
    pub say: Option<String>,
    /// With --say: capture while the reply is still being generated.
    #[arg(long, requires = "say")]
    pub during_reply: bool,
    /// Show this motion clip (a name from `motion list`, or a .vrma file) held at `--at`.
    /// Without it (and without --animate) the idle clip is held at its start.
    #[arg(long, value_name = "NAME|FILE.vrma")]
    pub motion: Option<String>,
    /// With --motion: the time in the clip, in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        requires = "motion",
        default_value_t = 0.0
    )]
    pub at: f32,
    /// Also write the humanoid bones' rest and posed transforms (relative to the avatar root)
    /// as JSON here, for the motion tests.
    #[arg(long, value_name = "FILE.json", hide = true)]
    pub pose_out: Option<PathBuf>,
    /// Frames rendered before the capture, once everything else is ready.
    #[arg(long, default_value_t = 30)]
    pub settle_frames: u32,
    /// Start downloading this catalogue model (as the chat panel's button does) and capture
    /// while the download is in progress (`HF_ENDPOINT` may point to a mirror).
    #[arg(long, value_name = "ID", conflicts_with = "say")]
    pub download: Option<String>,
    /// Start downloading this catalogue voice (as the settings' Download button does) and
    /// capture while it downloads (`DESKTOP_MATE_VOICE_BASE_URL` may point to a mirror).
    #[arg(long, value_name = "ID", conflicts_with_all = ["say", "download"])]
    pub download_voice: Option<String>,
    /// With `listen.enabled`: hold push-to-talk once listening is ready and capture when the
    /// words heard so far show (something must be playing into the microphone meanwhile).
    #[arg(long)]
    pub hold_to_talk: bool,
}

/// Parses `NAME=WEIGHT` (`joy=0.8`, `blink_l=1`, `lookup=0.5`).
pub fn parse_expression(text: &str) -> Result<(Expression, f32), String> {
    let (name, weight) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=WEIGHT such as joy=0.8, found {text:?}"))?;
    let expression = Expression::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = crate::avatar::expression::EXPRESSIONS
            .iter()
            .map(|e| e.vrm_name())
            .collect();
        format!("unknown expression {name:?}; one of {}", names.join(", "))
    })?;
    let weight = weight
        .trim()
        .parse::<f32>()
        .ok()
        .filter(|w| (0.0..=1.0).contains(w))
        .ok_or_else(|| format!("weight must be a number 0..1, found {weight:?}"))?;
    Ok((expression, weight))
}

/// Builds the mascot app for the snapshot and runs it.
pub fn run(mut loaded: LoadedSettings, args: SnapshotArgs) -> AppExit {
    if args.overlay {
        loaded.settings.diagnostics.overlay_visible = true;
    }
    // No hit-mask captures: click-through is for the desktop, not for a snapshot.
    loaded.settings.window.click_through = false;
    if let Some((width, height)) = args.size {
        loaded.settings.window.width = width;
        loaded.settings.window.height = height;
        loaded.settings.window.scale = 1.0;
        loaded.state.window_scale = None;
    }
    // A snapshot shows the user's state but never changes what the app saved of it.
    loaded.state_file = crate::config::StateFile::default();
    // Checked before the window opens.
    let held = match motion_override(&args) {
        Ok(held) => held,
        Err(message) => {
            eprintln!("error: {message}");
            return AppExit::from_code(2);
        }
    };
    let mut app = crate::snapshot_app(loaded);
    // Every frame advances the app's clock by the same step, whatever the machine's speed
    // (lavapipe, Wine): what moves with time (spring bones, easing, clips) is then the same in
    // two snapshots that render the same number of frames.
    app.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(
        SNAPSHOT_FRAME,
    ));
    let world = app.world_mut();
    world.resource_mut::<crate::ui::SettingsPanel>().open = args.settings;
    world.resource_mut::<crate::ui::ChatPanel>().open = !args.no_chat;
    world.resource_mut::<crate::ui::ExpressionsPanel>().open = args.expressions_panel;
    world.resource_mut::<crate::ui::MemoryPanel>().open = args.memory_panel;
    if args.menu {
        let window = &world.resource::<crate::config::Settings>().window;
        let middle = Vec2::new(window.width as f32 / 2.0, window.height as f32 / 2.0);
        world.resource_mut::<crate::avatar::ContextMenu>().0 = Some(middle);
    }
    let commands = world.resource::<AvatarCommands>().clone();
    if !args.animate {
        for command in [
            AvatarCommand::SetAutoBlink(false),
            AvatarCommand::SetHeadMotion(false),
            AvatarCommand::SetBreathing(false),
            AvatarCommand::SetLookAtCursor(false),
        ] {
            commands.send(command);
        }
    }
    if let Some((held, clip)) = held {
        if let Some(clip) = clip {
            app.world_mut().resource_mut::<MotionLibrary>().add(clip);
        }
        app.insert_resource(held);
    }
    for (expression, weight) in &args.expression {
        commands.send(AvatarCommand::SetExpression {
            expression: *expression,
            weight: *weight,
        });
    }
    app.insert_resource(SnapshotRequest {
        out: args.out,
        settle_frames: args.settle_frames,
        say: args.say,
        during_reply: args.during_reply,
        download: args.download,
        download_voice: args.download_voice,
        pose_out: args.pose_out,
        hold_to_talk: args.hold_to_talk,
    })
    .add_plugins(plugin);
    let exit = app.run();
    // The reason an avatar could not be shown, for whoever reads the terminal or the CI log.
    if let Some(reason) = app
        .world()
        .get_resource::<AvatarError>()
        .and_then(|e| e.0.clone())
    {
        eprintln!("avatar: {reason}");
    }
    exit
}

/// The clip a snapshot holds: the one asked for (a library name or a .vrma file, added to the
/// library), else the idle loop at its start unless `--animate` lets the director run.
fn motion_override(
    args: &SnapshotArgs,
) -> Result<Option<(MotionOverride, Option<LibraryClip>)>, String> {
    let Some(asked) = &args.motion else {
        let idle = MotionOverride {
            clip: "idle".into(),
            at: 0.0,
        };
        return Ok((!args.animate).then_some((idle, None)));
    };
    if !(0.0..=crate::motion::vrma::MAX_DURATION).contains(&args.at) {
        return Err(format!(
            "--at must be 0..{} seconds",
            crate::motion::vrma::MAX_DURATION
        ));
    }
    if asked.to_ascii_lowercase().ends_with(".vrma") {
        let path = PathBuf::from(asked);
        let read = crate::motion::read_file(&path)?;
        let clip = LibraryClip::from_file(path, read, crate::motion::builtin::Role::OnRequest);
        let held = MotionOverride {
            clip: clip.name.clone(),
            at: args.at,
        };
        return Ok(Some((held, Some(clip))));
    }
    if crate::motion::builtin::builtin(asked).is_none() {
        let names: Vec<&str> = crate::motion::builtin::BUILTIN
            .iter()
            .map(|m| m.name)
            .collect();
        return Err(format!(
            "no motion called {asked:?}; one of {} or a .vrma file",
            names.join(", ")
        ));
    }
    let held = MotionOverride {
        clip: asked.clone(),
        at: args.at,
    };
    Ok(Some((held, None)))
}

/// The app time one snapshot frame stands for.
const SNAPSHOT_FRAME: std::time::Duration = std::time::Duration::from_nanos(33_333_333);

/// What to capture.
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
    /// A catalogue model to download; the capture happens while it downloads.
    pub download: Option<String>,
    /// A catalogue voice to download; the capture happens while it downloads.
    pub download_voice: Option<String>,
    /// Where to write the bones' transforms at the capture.
    pub pose_out: Option<PathBuf>,
    /// Hold push-to-talk and capture once the words so far show.
    pub hold_to_talk: bool,
}

/// Frames to wait for a requested screenshot before asking again.
const RECAPTURE_FRAMES: u32 = 150;

/// Blank captures taken again before one is saved as it is.
const BLANK_RETRIES: u32 = 5;

/// A capture came back blank: the next frame is captured instead.
#[derive(Resource, Debug, Default)]
struct BlankCaptures {
    count: u32,
    again: bool,
}

/// Frames to wait for an avatar before capturing without one.
const AVATAR_TIMEOUT_FRAMES: u32 = 1_200;

/// Where a `--say` message stands.
#[derive(Resource, Debug, Default, PartialEq)]
enum SayProgress {
    #[default]
    Waiting,
    Sent,
    Answered,
}

fn plugin(app: &mut App) {
    app.init_resource::<SayProgress>()
        .init_resource::<BlankCaptures>();
    app.add_systems(
        Update,
        (download_voice, say_when_ready, capture_when_settled)
            .chain()
            .in_set(crate::AppSystems::Apply),
    );
}

/// `--download-voice`: the download starts, the capture waits for its first bytes.
fn download_voice(
    request: Res<SnapshotRequest>,
    mut progress: ResMut<SayProgress>,
    downloads: Res<VoiceDownloads>,
    mut start: MessageWriter<DownloadVoice>,
) {
    let Some(id) = &request.download_voice else {
        return;
    };
    let receiving = downloads
        .active
        .as_ref()
        .is_some_and(|(_, done, _)| *done > 0);
    match *progress {
        SayProgress::Waiting => {
            start.write(DownloadVoice(id.clone()));
            *progress = SayProgress::Sent;
        }
        SayProgress::Sent if receiving || downloads.error.is_some() => {
            *progress = SayProgress::Answered;
        }
        _ => {}
    }
}

fn say_when_ready(
    request: Res<SnapshotRequest>,
    status: Res<LlmStatus>,
    mut progress: ResMut<SayProgress>,
    mut send: MessageWriter<SendChat>,
    mut finished: MessageReader<ReplyFinished>,
    downloads: Res<ModelDownloads>,
    mut start: MessageWriter<StartDownload>,
    mut frames_generating: Local<u32>,
) {
    if request.download_voice.is_some() {
        return;
    }
    if let Some(id) = &request.download {
        let receiving = downloads
            .active
            .as_ref()
            .and_then(|(_, p)| p.as_ref())
            .is_some_and(|p| p.bytes_done > 0);
        match *progress {
            SayProgress::Waiting => {
                start.write(StartDownload(id.clone()));
                *progress = SayProgress::Sent;
            }
            SayProgress::Sent if receiving || downloads.error.is_some() => {
                *progress = SayProgress::Answered;
            }
            _ => {}
        }
        return;
    }
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

/// True once the avatar is on screen, framed, checked for pixels ([`Seen`]), and its expressions have reached their targets.
fn avatar_settled(
    status: &AvatarStatus,
    framed: &Query<(), (With<Framed>, With<Seen>)>,
    face: &FaceState,
) -> bool {
    matches!(status, AvatarStatus::Ready(_))
        && !framed.is_empty()
        && !face.expressions.moving()
        && !face.blink.is_blinking()
}

#[allow(clippy::too_many_arguments)]
fn capture_when_settled(
    mut commands: Commands,
    mut request: ResMut<SnapshotRequest>,
    progress: Res<SayProgress>,
    status: Res<AvatarStatus>,
    framed: Query<(), (With<Framed>, With<Seen>)>,
    face: Res<FaceState>,
    mut blank: ResMut<BlankCaptures>,
    mut waited: Local<u32>,
    mut requested: Local<Option<u32>>,
    (settings, listening, memory_panel, memory_view, heard, mut hold): (
        Res<crate::config::Settings>,
        Res<crate::voice::ListenStatus>,
        Res<crate::ui::MemoryPanel>,
        Res<crate::memory::browse::MemoryView>,
        Res<crate::voice::ListenInput>,
        MessageWriter<crate::voice::HoldToTalk>,
    ),
) {
    if *progress != SayProgress::Answered {
        return;
    }
    // The Memory panel open: the capture shows its list, not "reading…".
    if memory_panel.open
        && (!memory_view.listed || memory_view.pending > 0)
        && *waited < AVATAR_TIMEOUT_FRAMES
    {
        *waited += 1;
        return;
    }
    // Listening on: the capture shows it ready (or why not), not loading.
    if settings.listen.enabled
        && matches!(
            *listening,
            crate::voice::ListenStatus::Off | crate::voice::ListenStatus::Loading
        )
        && *waited < AVATAR_TIMEOUT_FRAMES
    {
        *waited += 1;
        return;
    }
    // Push-to-talk held: the capture shows the words so far.
    if request.hold_to_talk
        && matches!(*listening, crate::voice::ListenStatus::Ready(_))
        && heard.partial.is_empty()
        && *waited < AVATAR_TIMEOUT_FRAMES
    {
        if !heard.held {
            hold.write(crate::voice::HoldToTalk(true));
        }
        *waited += 1;
        return;
    }
    if std::mem::take(&mut blank.again) {
        *requested = None;
    }
    // A capture that never reports back (seen rarely under Xvfb) is asked for again rather
    // than leaving the command waiting forever.
    if let Some(frames) = requested.as_mut() {
        *frames += 1;
        if *frames < RECAPTURE_FRAMES {
            return;
        }
        warn!("no screenshot after {RECAPTURE_FRAMES} frames; asking again");
    }
    *waited += 1;
    if !avatar_settled(&status, &framed, &face) {
        if *waited < AVATAR_TIMEOUT_FRAMES {
            return;
        }
        if *waited == AVATAR_TIMEOUT_FRAMES {
            warn!("no avatar after {AVATAR_TIMEOUT_FRAMES} frames ({status:?}); capturing anyway");
        }
    }
    // During a reply, the frames were already counted while it was being generated.
    if request.settle_frames > 0 && !request.during_reply {
        request.settle_frames -= 1;
        return;
    }
    *requested = Some(0);
    let out = request.out.clone();
    let pose_out = request.pose_out.clone();
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>,
              status: Res<LlmStatus>,
              avatar_error: Res<AvatarError>,
              mut blank: ResMut<BlankCaptures>,
              avatars: Query<(&AvatarRig, &GlobalTransform), With<AvatarMotions>>,
              bones: Query<(&HumanBoneName, &GlobalTransform)>,
              mut exit: MessageWriter<AppExit>| {
            // Under load, a frame presented while the window is being (re)configured can come
            // back with nothing drawn; the mascot always draws something, so take the next one.
            if blank.count < BLANK_RETRIES && is_blank(&captured.image) {
                blank.count += 1;
                blank.again = true;
                warn!("the captured frame was blank; capturing the next one");
                return;
            }
            // Why the asked avatar is not the one shown, for the terminal or the CI log.
            if let Some(reason) = &avatar_error.0 {
                eprintln!("avatar: {reason}");
            }
            if let Some(path) = &pose_out
                && let Err(err) = std::fs::write(path, pose_json(&avatars, &bones).to_string())
            {
                error!("cannot write {}: {err}", path.display());
                exit.write(AppExit::from_code(1));
                return;
            }
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

/// The first avatar's humanoid bones: rest (as clips are retargeted against) and posed transforms,
/// relative to the avatar root: `{"bones": {"head": {"rest_rotation": [x, y, z, w],
/// "rest_position": [x, y, z], "rotation": [...], "position": [...]}}}`.
fn pose_json(
    avatars: &Query<(&AvatarRig, &GlobalTransform), With<AvatarMotions>>,
    bones: &Query<(&HumanBoneName, &GlobalTransform)>,
) -> serde_json::Value {
    let Some((rig, root)) = avatars.iter().next() else {
        return serde_json::json!({"bones": {}});
    };
    let skeleton = crate::motion::skeleton(rig);
    let to_root = root.affine().inverse();
    let mut out = serde_json::Map::new();
    for (bone, global) in bones {
        let Some(rest) = skeleton.get(*bone) else {
            continue;
        };
        let (_, rotation, position) = (to_root * global.affine()).to_scale_rotation_translation();
        let (_, rest_rotation, rest_position) = rest.world().to_scale_rotation_translation();
        out.insert(
            bone.as_str().to_owned(),
            serde_json::json!({
                "rest_rotation": rest_rotation.to_array(),
                "rest_position": rest_position.to_array(),
                "rotation": rotation.to_array(),
                "position": position.to_array(),
            }),
        );
    }
    serde_json::json!({ "bones": out })
}

/// Writes the image as RGBA (Bevy's stock `save_to_disk` drops alpha).
pub fn save_rgba_png(image: &Image, out: &Path) -> Result<(), String> {
    rgba(image)?
        .save_with_format(out, image::ImageFormat::Png)
        .map_err(|e| e.to_string())
}

fn rgba(image: &Image) -> Result<image::RgbaImage, String> {
    let dynamic = image
        .clone()
        .try_into_dynamic()
        .map_err(|e| format!("unsupported screenshot format: {e}"))?;
    Ok(dynamic.to_rgba8())
}

/// Whether nothing at all was drawn in the captured frame (every pixel fully transparent).
fn is_blank(image: &Image) -> bool {
    rgba(image).is_ok_and(|rgba| rgba.pixels().all(|p| p[3] == 0))
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT such as 400x600, found {text:?}"))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|v| (64..=8192).contains(v))
            .ok_or_else(|| format!("size must be 64..8192 pixels, found {s:?}"))
    };
    Ok((parse(w)?, parse(h)?))
}
