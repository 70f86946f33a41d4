//! The clips the mascot knows: the built-in ones and `.vrma` files dropped on the window (read
//! on a task pool, never on the frame loop).

use std::path::PathBuf;
use std::sync::Arc;

use bevy::prelude::*;
use bevy::tasks::{IoTaskPool, Task, futures_lite::future};
use bevy::window::FileDragAndDrop;

use super::builtin::{BUILTIN, Role};
use super::vrma::{MAX_FILE_BYTES, VrmaClip, VrmaError, read_vrma};
use crate::AppSystems;
use crate::avatar::AvatarError;
use crate::config::{AppState, StateFile};

/// Where a clip came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MotionSource {
    Builtin,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct LibraryClip {
    pub name: String,
    pub clip: Arc<VrmaClip>,
    pub looping: bool,
    pub role: Role,
    pub source: MotionSource,
}

/// Every clip that can play. Avatars get each of them retargeted when they spawn, and a clip
/// added later is retargeted onto the avatars then.
#[derive(Resource, Debug, Clone, Default)]
pub struct MotionLibrary {
    pub clips: Vec<LibraryClip>,
    /// Bumped when a clip is added, so that players add it to their graphs.
    pub generation: u32,
}

impl LibraryClip {
    /// A clip read from `path`, named by its file name (`wave.vrma` is `wave`); played once.
    pub fn from_file(path: PathBuf, clip: VrmaClip, role: Role) -> Self {
        let name = path.file_stem().map_or_else(
            || "dropped".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        );
        Self {
            name,
            clip: Arc::new(clip),
            looping: false,
            role,
            source: MotionSource::File(path),
        }
    }
}

impl MotionLibrary {
    /// The built-in clips (a clip that cannot be read is logged and left out: a bug, caught by
    /// the tests).
    pub fn builtin() -> Self {
        let clips = BUILTIN
            .iter()
            .filter_map(|motion| match read_vrma(motion.bytes) {
                Ok(clip) => Some(LibraryClip {
                    name: motion.name.to_owned(),
                    clip: Arc::new(clip),
                    looping: motion.looping,
                    role: motion.role,
                    source: MotionSource::Builtin,
                }),
                Err(err) => {
                    error!("built-in motion {} cannot be read: {err}", motion.name);
                    None
                }
            })
            .collect();
        Self {
            clips,
            generation: 0,
        }
    }

    pub fn get(&self, name: &str) -> Option<&LibraryClip> {
        self.clips.iter().find(|c| c.name == name)
    }

    /// Adds or replaces a clip; returns its name.
    pub fn add(&mut self, clip: LibraryClip) -> String {
        let name = clip.name.clone();
        self.clips.retain(|c| c.name != name);
        self.clips.push(clip);
        self.generation += 1;
        name
    }

    /// (name, role) of every clip, for the director.
    pub fn roles(&self) -> Vec<(String, Role)> {
        self.clips
            .iter()
            .map(|c| (c.name.clone(), c.role))
            .collect()
    }
}

/// Reads a `.vrma` file (bounded, regular files only).
pub fn read_file(path: &std::path::Path) -> Result<VrmaClip, String> {
    use crate::config::BoundedReadError;
    let bytes = crate::config::read_bounded(path, MAX_FILE_BYTES).map_err(|err| {
        let why = match err {
            BoundedReadError::NotRegular => "not a regular file".to_owned(),
            BoundedReadError::TooBig { size } => {
                format!("{size} bytes, more than a motion clip may have ({MAX_FILE_BYTES})")
            }
            BoundedReadError::Io(e) => e.to_string(),
        };
        format!("{}: {why}", path.display())
    })?;
    read_vrma(&bytes).map_err(|e: VrmaError| format!("{}: {e}", path.display()))
}

/// A clip file being read: dropped now (played once read), or kept from an earlier run.
#[derive(Component)]
struct ReadingClip {
    path: PathBuf,
    kept: bool,
    task: Task<Result<VrmaClip, String>>,
}

/// A clip the user dropped and wants to see now.
#[derive(Message, Debug, Clone)]
pub struct ClipDropped(pub String);

/// The F4 list's edits of a clip read from a file.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum EditMotion {
    /// In the idle set (played now and then, remembered in state.ron) or not.
    Keep { clip: String, keep: bool },
    /// Out of the library (and of the idle set).
    Remove(String),
}

/// The role of a clip kept in the idle set.
pub const KEPT: Role = Role::IdleVariation { weight: 1 };

fn reading(path: PathBuf, kept: bool) -> ReadingClip {
    let task = IoTaskPool::get().spawn({
        let path = path.clone();
        async move { read_file(&path) }
    });
    ReadingClip { path, kept, task }
}

pub(super) fn plugin(app: &mut App) {
    app.insert_resource(MotionLibrary::builtin())
        .add_message::<FileDragAndDrop>()
        .add_message::<ClipDropped>()
        .add_message::<EditMotion>()
        .init_resource::<AvatarError>()
        .add_systems(Startup, read_kept_clips)
        .add_systems(
            Update,
            (read_dropped_clips, collect_read_clips, edit_clips).in_set(AppSystems::Update),
        );
}

/// The clips kept in the idle set by earlier runs.
fn read_kept_clips(mut commands: Commands, state: Option<Res<AppState>>) {
    for path in state.iter().flat_map(|s| s.kept_motions.iter()) {
        commands.spawn(reading(path.clone(), true));
    }
}

/// Keeps a file's clip in the idle set (remembered in state.ron) or takes it out, or removes
/// it from the library.
fn edit_clips(
    mut edits: MessageReader<EditMotion>,
    mut library: ResMut<MotionLibrary>,
    mut state: ResMut<AppState>,
    file: Res<StateFile>,
) {
    for edit in edits.read() {
        let (name, keep) = match edit {
            EditMotion::Keep { clip, keep } => (clip, *keep),
            EditMotion::Remove(clip) => (clip, false),
        };
        let Some(index) = library.clips.iter().position(|c| &c.name == name) else {
            continue;
        };
        let MotionSource::File(path) = library.clips[index].source.clone() else {
            continue;
        };
        match edit {
            EditMotion::Remove(_) => {
                library.clips.remove(index);
                library.generation += 1;
            }
            EditMotion::Keep { .. } => {
                library.clips[index].role = if keep { KEPT } else { Role::OnRequest };
            }
        }
        state.kept_motions.retain(|p| p != &path);
        if keep {
            state.kept_motions.push(path);
        }
        if let Err(reason) = file.save(&state) {
            warn!("motion list not saved: {reason}");
        }
    }
}

fn read_dropped_clips(mut commands: Commands, mut drops: MessageReader<FileDragAndDrop>) {
    for drop in drops.read() {
        let FileDragAndDrop::DroppedFile { path_buf, .. } = drop else {
            continue;
        };
        if !path_buf
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("vrma"))
        {
            continue;
        }
        commands.spawn(reading(path_buf.clone(), false));
    }
}

fn collect_read_clips(
    mut commands: Commands,
    mut reading: Query<(Entity, &mut ReadingClip)>,
    mut library: ResMut<MotionLibrary>,
    mut error: ResMut<AvatarError>,
    mut dropped: MessageWriter<ClipDropped>,
) {
    for (entity, mut read) in &mut reading {
        let Some(result) = future::block_on(future::poll_once(&mut read.task)) else {
            continue;
        };
        commands.entity(entity).despawn();
        match result {
            Ok(clip) => {
                for note in &clip.notes {
                    info!("{}: {note}", read.path.display());
                }
                let role = if read.kept { KEPT } else { Role::OnRequest };
                let name = library.add(LibraryClip::from_file(read.path.clone(), clip, role));
                info!("motion {name} added from {}", read.path.display());
                if !read.kept {
                    dropped.write(ClipDropped(name));
                }
            }
            Err(reason) => {
                warn!("motion not added: {reason}");
                error.0 = Some(format!("motion not added: {reason}"));
            }
        }
    }
}
