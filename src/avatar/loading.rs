//! Loading the avatar named in settings (or dropped on the window) through bevy_vrm, and
//! falling back to the built-in mascot with a visible message when it cannot load.

use std::f32::consts::PI;

use bevy::asset::AssetLoadFailedEvent;
use bevy::gltf::extensions::GltfExtensionHandlers;
use bevy::prelude::*;
use bevy::world_serialization::WorldInstanceReady;
use bevy_shader_mtoon::MtoonMaterial;
use bevy_vrm::VrmPlugins;
use bevy_vrm::instance::VrmInstance;
use bevy_vrm::loader::Vrm;
use bevy_vrm::spring_bones::SpringBones;
use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;

use super::rig::{AvatarRig, MeshIndexHandler, VrmMeshIndex};
use super::source::{AvatarFile, AvatarFiles};
use super::vrm_file::VrmVersion;
use crate::AppSystems;
use crate::config::{AppState, Guarded, LoadGuard, RetrySkipped, Settings};

/// Ask for another avatar (`None` = the built-in one).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct LoadAvatar(pub AvatarFile);

/// Where the avatar stands, for the UI and the snapshot command.
#[derive(Resource, Debug, Clone, PartialEq, Default)]
pub enum AvatarStatus {
    #[default]
    None,
    Loading(AvatarFile),
    Ready(AvatarFile),
}

/// The last avatar that could not be shown and why; cleared when another loads.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct AvatarError(pub Option<String>);

/// The avatar's root entity, turned 180° about Y to face the camera (which looks from +Z).
///
/// Below it, every avatar faces -Z (verified by rendering both versions): VRM 0.x files are authored facing -Z and bevy_vrm 0.5 leaves
/// them so, while it turns the glTF scene entity of VRM 1.0 files (authored facing +Z, as glTF
/// says) by 180° (`Facing::PositiveZ` in its `Avatar::apply`). So one rotation serves both.
#[derive(Component, Debug, Clone)]
pub struct AvatarRoot {
    pub file: AvatarFile,
    pub asset_path: String,
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<AvatarStatus>()
        .init_resource::<AvatarError>()
        .add_message::<LoadAvatar>()
        .add_plugins(VrmPlugins)
        .add_systems(Startup, load_from_settings)
        .add_systems(
            Update,
            (
                reload_on_settings_change,
                retry_skipped,
                start_loading,
                fall_back_on_failure,
            )
                .chain()
                .in_set(AppSystems::Update),
        );
}

/// Registers our glTF handler (the glTF plugin's handler list exists once plugins are built).
pub(super) fn finish(app: &mut App) {
    if let Some(handlers) = app.world().get_resource::<GltfExtensionHandlers>() {
        handlers.0.write_blocking().push(Box::new(MeshIndexHandler));
    }
}

/// The dropped avatar (app state) if any, else the one in the settings, else the built-in one.
fn wanted(settings: &Settings, state: &AppState) -> AvatarFile {
    state
        .avatar(settings)
        .map_or(AvatarFile::Default, AvatarFile::Path)
}

fn load_from_settings(
    settings: Res<Settings>,
    state: Res<AppState>,
    mut load: MessageWriter<LoadAvatar>,
) {
    load.write(LoadAvatar(wanted(&settings, &state)));
}

fn reload_on_settings_change(
    settings: Res<Settings>,
    state: Res<AppState>,
    status: Res<AvatarStatus>,
    mut last: Local<Option<AvatarFile>>,
    mut load: MessageWriter<LoadAvatar>,
) {
    let file = wanted(&settings, &state);
    let previous = last.replace(file.clone());
    if previous.is_some() && previous.as_ref() != Some(&file) && *status != AvatarStatus::None {
        load.write(LoadAvatar(file));
    }
}

/// The user asks to load the avatar skipped at start (its load crashed an earlier run).
fn retry_skipped(
    mut retries: MessageReader<RetrySkipped>,
    guard: Option<Res<LoadGuard>>,
    settings: Res<Settings>,
    state: Res<AppState>,
    mut error: ResMut<AvatarError>,
    mut load: MessageWriter<LoadAvatar>,
) {
    let asked = retries.read().any(|r| r.0 == Guarded::Avatar);
    if asked
        && let Some(guard) = guard
        && guard.retry(Guarded::Avatar).is_some()
    {
        error.0 = None;
        load.write(LoadAvatar(wanted(&settings, &state)));
    }
}

#[allow(clippy::too_many_arguments)]
fn start_loading(
    mut commands: Commands,
    mut requests: MessageReader<LoadAvatar>,
    files: Res<AvatarFiles>,
    asset_server: Res<AssetServer>,
    roots: Query<Entity, With<AvatarRoot>>,
    settings: Res<Settings>,
    state: Res<AppState>,
    guard: Option<Res<LoadGuard>>,
    mut error: ResMut<AvatarError>,
    mut status: ResMut<AvatarStatus>,
) {
    let Some(LoadAvatar(mut file)) = requests.read().last().cloned() else {
        return;
    };
    // A file that an earlier run stopped while loading is not loaded again until the user
    // asks (the window's "Try again"); any other file is recorded before it is read.
    if let (Some(guard), AvatarFile::Path(path)) = (guard.as_deref(), file.clone()) {
        if guard.should_skip(Guarded::Avatar, &path) {
            let reason = format!(
                "the last start stopped while loading avatar {}: skipped, showing the default avatar",
                path.display()
            );
            warn!("{reason}");
            error.0 = Some(reason);
            file = AvatarFile::Default;
        } else {
            guard.begin(Guarded::Avatar, &path);
        }
    }
    for root in &roots {
        commands.entity(root).despawn();
    }
    let asset_path = files.register(file.clone());
    info!("loading avatar {}", file.describe());
    let handle: Handle<Vrm> = asset_server.load(asset_path.clone());
    let scale = state.window_scale(&settings);
    commands
        .spawn((
            Name::new("Avatar"),
            AvatarRoot {
                file: file.clone(),
                asset_path,
            },
            VrmInstance(handle),
            Transform::from_rotation(Quat::from_rotation_y(PI)).with_scale(Vec3::splat(scale)),
            Visibility::default(),
        ))
        .observe(on_avatar_spawned);
    *status = AvatarStatus::Loading(file);
}

/// The scene is in the world: collect the rig and report the avatar ready.
fn on_avatar_spawned(
    ready: On<WorldInstanceReady>,
    mut commands: Commands,
    roots: Query<&AvatarRoot>,
    files: Res<AvatarFiles>,
    children: Query<&Children>,
    nodes: Query<(Option<&VrmMeshIndex>, Option<&HumanBoneName>, &Transform)>,
    parents: Query<&ChildOf>,
    materials: Query<(
        Option<&MeshMaterial3d<StandardMaterial>>,
        Option<&MeshMaterial3d<MtoonMaterial>>,
    )>,
    parts: Query<(
        Has<HumanBoneName>,
        Option<&SpringBones>,
        Has<MeshMaterial3d<MtoonMaterial>>,
    )>,
    mut status: ResMut<AvatarStatus>,
    mut error: ResMut<AvatarError>,
    guard: Option<Res<LoadGuard>>,
) {
    let Ok(root) = roots.get(ready.entity) else {
        return;
    };
    if root.file != AvatarFile::Default
        && let Some(guard) = &guard
    {
        guard.end(Guarded::Avatar);
    }
    // The asset source read the expressions and look-at when it read the file.
    let model = files.take_outcome(&root.asset_path).and_then(Result::ok);
    let rig = AvatarRig::build(
        ready.entity,
        model.as_ref(),
        &children,
        &nodes,
        &parents,
        &materials,
    );
    // What bevy_vrm made of the VRM extension: none of these exist when it failed to parse.
    let (mut bones, mut springs, mut mtoon) = (0, 0, 0);
    for (bone, spring, toon) in parts
        .iter_many(children.iter_descendants(ready.entity))
        .matched()
    {
        bones += usize::from(bone);
        springs += spring.map_or(0, |s| s.0.len());
        mtoon += usize::from(toon);
    }
    let (version, expressions) = model.as_ref().map_or(("?", 0), |model| {
        let version = match model.version {
            VrmVersion::V0 => "0.x",
            VrmVersion::V1 => "1.0",
        };
        (version, model.expressions.expressions.len())
    });
    info!(
        "avatar {} ready: VRM {version}, {expressions} expressions, {} morph meshes, \
         {bones} humanoid bones, {springs} spring-bone chains, {mtoon} MToon meshes",
        root.file.describe(),
        rig.morphs.len()
    );
    commands.entity(ready.entity).insert(rig);
    if root.file != AvatarFile::Default {
        error.0 = None;
    }
    *status = AvatarStatus::Ready(root.file.clone());
}

fn fall_back_on_failure(
    mut failures: MessageReader<AssetLoadFailedEvent<Vrm>>,
    roots: Query<&AvatarRoot>,
    files: Res<AvatarFiles>,
    guard: Option<Res<LoadGuard>>,
    mut error: ResMut<AvatarError>,
    mut load: MessageWriter<LoadAvatar>,
) {
    for failure in failures.read() {
        let Some(root) = roots
            .iter()
            .find(|root| failure.path.to_string() == root.asset_path)
        else {
            continue;
        };
        // Our own words when our reader refused the file, else the glTF loader's.
        let detail = match files.take_outcome(&root.asset_path) {
            Some(Err(reason)) => reason,
            _ => failure.error.to_string(),
        };
        // On one line: the glTF loader's messages may span several.
        let detail: Vec<&str> = detail
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let reason = format!(
            "cannot load avatar {}: {}; showing the default avatar",
            root.file.describe(),
            detail.join(" ")
        );
        error!("{reason}");
        error.0 = Some(reason);
        if root.file != AvatarFile::Default {
            // Refused with a message: a clean end, nothing to skip next time.
            if let Some(guard) = &guard {
                guard.end(Guarded::Avatar);
            }
            load.write(LoadAvatar(AvatarFile::Default));
        }
    }
}
