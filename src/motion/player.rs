//! Clips on spawned avatars: when an avatar's rig is ready, every clip of the library is
//! retargeted onto its bones and put in one `AnimationGraph`; an `AnimationPlayer` with
//! `AnimationTransitions` on the avatar root plays them, cross-fading. The director (or a
//! `PlayMotion` message, or `snapshot --motion`) says what plays.

use std::collections::HashMap;
use std::time::Duration;

use bevy::animation::{AnimatedBy, AnimationTargetId, animated_field};
use bevy::prelude::*;
use serde_vrm::vrm1::vrmc_vrm::humanoid::HumanBoneName;

use super::director::{Director, DirectorSettings, Event, Play};
use super::library::{ClipDropped, MotionLibrary};
use super::retarget::{Retargeted, Skeleton, SkeletonBone, retarget};
use super::vrma::Track;
use crate::AppSystems;
use crate::avatar::expression::index;
use crate::avatar::{
    Attending, AvatarRig, BodyDriven, FaceState, LookTarget, RestBone, WindowHeld,
};
use crate::config::Expression;
use crate::config::{MotionSettings, Settings, SettingsChanged};
use crate::llm::{ReplyFinished, ReplyText, SendChat};

/// Cross-fade between two clips.
pub const FADE: Duration = Duration::from_millis(350);

/// Play a clip on every avatar now (the director takes over again when it ends).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct PlayMotion {
    pub clip: String,
    pub looping: bool,
}

/// `snapshot --motion NAME --at SECONDS`: this clip held at this time, the director off.
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct MotionOverride {
    pub clip: String,
    pub at: f32,
}

/// On an avatar root: its clips, as graph nodes (the bones they move are the rig's
/// `humanoid`, see [`skeleton`]).
#[derive(Component, Debug, Clone)]
pub struct AvatarMotions {
    pub nodes: HashMap<String, AnimationNodeIndex>,
    /// The library generation the graph was built from.
    generation: u32,
    /// The clip started last.
    pub current: Option<String>,
}

#[derive(Resource, Debug)]
struct Directing(Director);

/// The director's settings from `motion` settings.
fn director_settings(settings: &MotionSettings) -> DirectorSettings {
    let defaults = DirectorSettings::default();
    DirectorSettings {
        sleep_after: (settings.sleep_after_secs > 0.0).then_some(settings.sleep_after_secs),
        variation_every: if settings.idle_variations {
            defaults.variation_every
        } else {
            (f32::INFINITY, f32::INFINITY)
        },
        gesture_probability: if settings.gestures { 1.0 } else { 0.0 },
    }
}

pub(super) fn plugin(app: &mut App) {
    app.add_message::<ReplyText>()
        .add_message::<ReplyFinished>()
        .add_message::<SendChat>()
        .init_resource::<LookTarget>()
        .init_resource::<WindowHeld>()
        .add_systems(
            Update,
            (
                follow_settings,
                set_up_avatars,
                direct,
                play,
                show_clip_expressions,
            )
                .chain()
                .in_set(AppSystems::Apply),
        );
    let roles = app.world().resource::<MotionLibrary>().roles();
    let settings = app
        .world()
        .get_resource::<Settings>()
        .map(|s| director_settings(&s.motion))
        .unwrap_or_default();
    app.insert_resource(Directing(Director::new(fastrand::u64(..), settings, roles)));
}

/// `motion` settings changed: a new director (it greets again when
/// motion comes back on); switched off, the avatars stop and their bones go back to rest.
fn follow_settings(
    mut commands: Commands,
    settings: Res<Settings>,
    library: Res<MotionLibrary>,
    mut changes: MessageReader<SettingsChanged>,
    mut directing: ResMut<Directing>,
    mut avatars: Query<(Entity, &AvatarRig, &mut AvatarMotions, &mut AnimationPlayer)>,
    mut transforms: Query<&mut Transform>,
) {
    let changed = changes.read().fold(false, |any, c| any | c.motion);
    if !changed {
        return;
    }
    directing.0 = Director::new(
        fastrand::u64(..),
        director_settings(&settings.motion),
        library.roles(),
    );
    for (root, rig, mut motions, mut player) in &mut avatars {
        if settings.motion.enabled {
            commands.entity(root).insert(BodyDriven);
            continue;
        }
        player.stop_all();
        motions.current = None;
        commands.entity(root).remove::<BodyDriven>();
        for rest in animated(rig) {
            if let Ok(mut transform) = transforms.get_mut(rest.entity) {
                transform.rotation = rest.rest.rotation;
                transform.translation = rest.rest.translation;
            }
        }
    }
}

/// The target id of a humanoid bone in our clips.
pub fn target_id(bone: HumanBoneName) -> AnimationTargetId {
    AnimationTargetId::from_name(&Name::new(format!("desktop-mate/{}", bone.as_str())))
}

/// The avatar's humanoid bones at rest (measured by the rig when the scene spawned: by now the
/// procedural pose may have moved some).
pub fn skeleton(rig: &AvatarRig) -> Skeleton {
    let bones = rig
        .humanoid
        .iter()
        .map(|rest| SkeletonBone {
            bone: rest.bone,
            rest_rotation: rest.rest.rotation,
            rest_translation: rest.rest.translation,
            parent_world: rest.parent_world,
        })
        .collect();
    Skeleton { bones }
}

/// The rig's humanoid bones that clips move (not the eyes).
fn animated(rig: &AvatarRig) -> impl Iterator<Item = &RestBone> {
    rig.humanoid
        .iter()
        .filter(|rest| !super::retarget::NOT_ANIMATED.contains(&rest.bone))
}

fn keyframes<T: Copy>(track: &Track<T>, duration: f32) -> Vec<(f32, T)> {
    let mut keys: Vec<(f32, T)> = track
        .times
        .iter()
        .copied()
        .zip(track.values.iter().copied())
        .collect();
    // A one-key track holds its value: a curve needs two keys.
    if keys.len() == 1 {
        keys.push((duration.max(keys[0].0 + 0.001), keys[0].1));
    }
    keys
}

/// A retargeted clip as a Bevy clip.
pub fn animation_clip(retargeted: &Retargeted) -> AnimationClip {
    let duration = retargeted.duration.max(0.1);
    let mut clip = AnimationClip::default();
    for tracks in &retargeted.bones {
        let id = target_id(tracks.bone);
        if let Ok(curve) = AnimatableKeyframeCurve::new(keyframes(&tracks.rotation, duration)) {
            clip.add_curve_to_target(
                id,
                AnimatableCurve::new(animated_field!(Transform::rotation), curve),
            );
        }
        if let Some(translation) = &tracks.translation
            && let Ok(curve) = AnimatableKeyframeCurve::new(keyframes(translation, duration))
        {
            clip.add_curve_to_target(
                id,
                AnimatableCurve::new(animated_field!(Transform::translation), curve),
            );
        }
    }
    clip.set_duration(duration);
    clip
}

fn set_up_avatars(
    mut commands: Commands,
    settings: Res<Settings>,
    held: Option<Res<MotionOverride>>,
    library: Res<MotionLibrary>,
    rigs: Query<(Entity, &AvatarRig, Option<&AvatarMotions>)>,
    mut clips: ResMut<Assets<AnimationClip>>,
    mut graphs: ResMut<Assets<AnimationGraph>>,
) {
    let overridden = held.is_some();
    for (root, rig, motions) in &rigs {
        if motions.is_some_and(|m| m.generation == library.generation) {
            continue;
        }
        let skeleton = skeleton(rig);
        if skeleton.bones.is_empty() {
            // A model without humanoid bones: nothing to move (marked so it is not redone).
            commands.entity(root).insert(AvatarMotions {
                nodes: HashMap::new(),
                generation: library.generation,
                current: None,
            });
            continue;
        }
        let handles: Vec<Handle<AnimationClip>> = library
            .clips
            .iter()
            .map(|entry| clips.add(animation_clip(&retarget(&entry.clip, &skeleton))))
            .collect();
        let (graph, indices) = AnimationGraph::from_clips(handles);
        let nodes_by_name = library
            .clips
            .iter()
            .map(|entry| entry.name.clone())
            .zip(indices)
            .collect();
        for rest in animated(rig) {
            commands
                .entity(rest.entity)
                .insert((target_id(rest.bone), AnimatedBy(root)));
        }
        let current = motions.and_then(|m| m.current.clone());
        let mut root_commands = commands.entity(root);
        root_commands.insert((
            AnimationGraphHandle(graphs.add(graph)),
            AvatarMotions {
                nodes: nodes_by_name,
                generation: library.generation,
                current,
            },
        ));
        if settings.motion.enabled || overridden {
            root_commands.insert(BodyDriven);
        }
        if motions.is_none() {
            root_commands.insert((AnimationPlayer::default(), AnimationTransitions::new()));
        }
    }
}

/// Feeds the director with what happened and passes on what it decides.
#[allow(clippy::too_many_arguments)]
fn direct(
    time: Res<Time>,
    settings: Res<Settings>,
    library: Res<MotionLibrary>,
    overridden: Option<Res<MotionOverride>>,
    mut directing: ResMut<Directing>,
    mut sent: MessageReader<SendChat>,
    mut text: MessageReader<ReplyText>,
    mut finished: MessageReader<ReplyFinished>,
    mut dropped: MessageReader<ClipDropped>,
    look: Res<LookTarget>,
    mut last_look: Local<Option<Vec2>>,
    held: Res<WindowHeld>,
    attending: Res<Attending>,
    avatars: Query<(&AvatarMotions, &AnimationPlayer)>,
    mut play: MessageWriter<PlayMotion>,
) {
    if overridden.is_some() || !settings.motion.enabled || avatars.is_empty() {
        return;
    }
    if library.is_changed() {
        directing.0.set_clips(library.roles());
    }
    let mut events = Vec::new();
    if held.is_changed() && !held.is_added() {
        events.push(Event::Held(held.0));
    }
    if attending.is_changed() && !attending.is_added() {
        events.push(Event::Listening(attending.0));
    }
    if sent.read().count() > 0 {
        events.push(Event::Activity);
    }
    if text.read().count() > 0 {
        events.push(Event::Talking);
    }
    for reply in finished.read() {
        if let Some(emotion) = reply.emotion {
            events.push(Event::Emotion(emotion));
        } else {
            events.push(Event::Activity);
        }
    }
    // The pointer moving over or near the avatar counts as activity.
    if look.0.is_some_and(|p| p.length() < 1.5) && look.0 != *last_look {
        events.push(Event::Activity);
    }
    *last_look = look.0;
    let one_shot_ended = avatars.iter().any(|(motions, player)| {
        motions
            .current
            .as_ref()
            .and_then(|name| motions.nodes.get(name))
            .and_then(|node| player.animation(*node))
            .is_some_and(|active| active.is_finished())
    });
    if one_shot_ended {
        events.push(Event::Finished);
    }
    let decided = directing.0.step(time.delta_secs(), &events);
    // A dropped clip plays at once (after what the director decided this frame).
    let dropped = dropped.read().last().map(|clip| Play {
        clip: clip.0.clone(),
        looping: false,
    });
    if let Some(Play { clip, looping }) = dropped.or(decided) {
        debug!("motion: {clip}{}", if looping { " (looping)" } else { "" });
        play.write(PlayMotion { clip, looping });
    }
}

/// The playing clips' expression tracks (VRM 1.0 preset names) at their current time, weighted
/// like the clips themselves (cross-fades), into the face's clip layer.
fn show_clip_expressions(
    library: Res<MotionLibrary>,
    avatars: Query<(&AvatarMotions, &AnimationPlayer)>,
    mut face: ResMut<FaceState>,
) {
    let mut weights = [0.0_f32; Expression::COUNT];
    // The gaze of the clip that weighs most, when it has a lookAt track.
    let mut look: Option<(f32, Vec2)> = None;
    if let Some((motions, player)) = avatars.iter().next() {
        for (name, node) in &motions.nodes {
            let Some(active) = player.animation(*node) else {
                continue;
            };
            let Some(clip) = library.get(name) else {
                continue;
            };
            if let Some(gaze) = clip
                .clip
                .look_at
                .as_ref()
                .and_then(|track| track.sample(active.seek_time()))
                && active.weight() >= 0.5
                && look.is_none_or(|(weight, _)| active.weight() > weight)
            {
                look = Some((active.weight(), gaze));
            }
            for (expression, track) in &clip.clip.expressions {
                let (Some(preset), Some(value)) = (
                    Expression::from_vrm1_preset(expression),
                    track.sample(active.seek_time()),
                ) else {
                    continue;
                };
                let slot = &mut weights[index(preset)];
                *slot = slot.max(value * active.weight());
            }
        }
    }
    if face.clip != weights {
        face.clip = weights;
    }
    let look = look.map(|(_, gaze)| gaze);
    if face.clip_look != look {
        face.clip_look = look;
    }
}

fn play(
    mut requests: MessageReader<PlayMotion>,
    overridden: Option<Res<MotionOverride>>,
    mut avatars: Query<(
        &mut AvatarMotions,
        &mut AnimationPlayer,
        &mut AnimationTransitions,
    )>,
) {
    let request = requests.read().last().cloned();
    for (mut motions, mut player, mut transitions) in &mut avatars {
        if let Some(held) = &overridden {
            // Once: the clip held at the asked time.
            if motions.current.as_deref() == Some(held.clip.as_str()) {
                continue;
            }
            let Some(node) = motions.nodes.get(&held.clip).copied() else {
                continue;
            };
            player.stop_all();
            player.start(node).seek_to(held.at).pause();
            motions.current = Some(held.clip.clone());
            continue;
        }
        let Some(request) = &request else {
            continue;
        };
        let Some(node) = motions.nodes.get(&request.clip).copied() else {
            warn!("no motion called {:?}", request.clip);
            continue;
        };
        let active = transitions.play(&mut player, node, FADE);
        active.replay();
        if request.looping {
            active.repeat();
        }
        motions.current = Some(request.clip.clone());
    }
}
