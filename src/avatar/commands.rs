//! The one command type that drives the avatar (the in-process replacement of the old app's
//! TCP commands). Any thread sends through [`AvatarCommands`]; [`drain_commands`] moves them into
//! the ECS once per frame.

use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};

use super::expression::{Expressions, emotion_weight};
use super::motion::{Blink, IdleHead, LipSync};
use crate::AppSystems;
use crate::config::{Emotion, Expression, Settings};

#[derive(Debug, Clone, PartialEq)]
pub enum AvatarCommand {
    /// Ease one preset towards a weight (0-1).
    SetExpression {
        expression: Expression,
        weight: f32,
    },
    /// Show an emotion through the settings' table (intensity 0-100 x multiplier, from the
    /// threshold on); the other moods ease out.
    ShowEmotion {
        emotion: Emotion,
        intensity: f32,
    },
    ResetExpressions,
    /// Weight units per second.
    SetTransitionSpeed(f32),
    SetAutoBlink(bool),
    SetHeadMotion(bool),
    SetBreathing(bool),
    SetLookAtCursor(bool),
    /// Streamed text the mouth follows.
    Speak(String),
    /// The text is over (or stopped): close the mouth.
    StopSpeaking,
    /// The voice drives the mouth (weights of a, i, u, e, o: what the speaker plays now) and
    /// streamed text no longer does; `None` = back to the text (voice off or failed).
    VoiceMouth(Option<[f32; 5]>),
}

/// Sender half, cloneable to any thread or plugin.
#[derive(Resource, Clone, Debug)]
pub struct AvatarCommands {
    sender: Sender<AvatarCommand>,
    receiver: Receiver<AvatarCommand>,
}

impl Default for AvatarCommands {
    fn default() -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        Self { sender, receiver }
    }
}

impl AvatarCommands {
    pub fn send(&self, command: AvatarCommand) {
        // The receiver lives as long as this resource: sending cannot fail while it exists.
        let _ = self.sender.send(command);
    }

    pub fn sender(&self) -> Sender<AvatarCommand> {
        self.sender.clone()
    }

    /// Commands waiting to be applied.
    pub fn queue_depth(&self) -> usize {
        self.receiver.len()
    }
}

/// What the face shows and the switches of its automatic motions.
#[derive(Resource, Debug, Clone)]
pub struct FaceState {
    pub expressions: Expressions,
    pub auto_blink: bool,
    pub head_motion: bool,
    pub breathing: bool,
    pub look_at_cursor: bool,
    pub blink: Blink,
    pub head: IdleHead,
    pub lips: LipSync,
    /// Weight of each preset actually applied this frame (eased expressions combined with
    /// blink, mouth and look-at).
    pub applied: [f32; Expression::COUNT],
    /// Weights a playing motion clip's expression tracks show this frame (the motion
    /// plugin's), layered over the mood like blink and mouth.
    pub clip: [f32; Expression::COUNT],
    /// Where a playing clip's lookAt track points the eyes (VRM look-at degrees: x = yaw > 0
    /// to the character's left, y = pitch > 0 down); wins over the cursor while it plays.
    pub clip_look: Option<Vec2>,
    /// Where the eyes look this frame (the cursor relative to the face, each axis -1..1), or
    /// `None` when they do not follow it. Each avatar maps it through its own look-at.
    pub gaze: Option<Vec2>,
    /// Commands applied since start, for the diagnostics.
    pub commands_applied: u64,
}

impl FaceState {
    pub fn from_settings(settings: &Settings) -> Self {
        let avatar = &settings.avatar;
        Self {
            expressions: Expressions::new(avatar.transition_speed),
            auto_blink: avatar.auto_blink,
            head_motion: avatar.head_motion,
            breathing: avatar.breathing,
            look_at_cursor: avatar.look_at_cursor,
            blink: Blink::new(0x5eed),
            head: IdleHead::new(0x4ead),
            lips: LipSync::default(),
            applied: [0.0; Expression::COUNT],
            clip: [0.0; Expression::COUNT],
            clip_look: None,
            gaze: None,
            commands_applied: 0,
        }
    }

    pub fn apply(&mut self, command: AvatarCommand, settings: &Settings) {
        match command {
            AvatarCommand::SetExpression { expression, weight } => {
                self.expressions.set(expression, weight);
            }
            AvatarCommand::ShowEmotion { emotion, intensity } => {
                if let Some(entry) = settings.avatar.emotions.get(&emotion) {
                    let weight = emotion_weight(entry, intensity);
                    self.expressions.set_mood(entry.expression, weight);
                }
            }
            AvatarCommand::ResetExpressions => self.expressions.reset(),
            AvatarCommand::SetTransitionSpeed(speed) => {
                self.expressions.speed = speed.clamp(0.1, 100.0);
            }
            AvatarCommand::SetAutoBlink(on) => self.auto_blink = on,
            AvatarCommand::SetHeadMotion(on) => self.head_motion = on,
            AvatarCommand::SetBreathing(on) => self.breathing = on,
            AvatarCommand::SetLookAtCursor(on) => self.look_at_cursor = on,
            AvatarCommand::Speak(text) => self.lips.push(&text),
            AvatarCommand::StopSpeaking => self.lips.stop(),
            // Up to one per frame while the voice speaks: not counted as expression commands.
            AvatarCommand::VoiceMouth(mouth) => {
                self.lips.follow_voice(mouth);
                return;
            }
        }
        self.commands_applied += 1;
    }
}

pub(super) fn plugin(app: &mut App) {
    let face = FaceState::from_settings(app.world().resource::<Settings>());
    app.init_resource::<AvatarCommands>()
        .insert_resource(face)
        .add_systems(
            Update,
            (
                drain_commands.in_set(AppSystems::ReadChannels),
                follow_settings.in_set(AppSystems::Update),
            ),
        );
}

/// Applies every waiting command (all of them: a burst never lags behind by frames).
pub fn drain_commands(
    commands: Res<AvatarCommands>,
    settings: Res<Settings>,
    mut face: ResMut<FaceState>,
) {
    for command in commands.receiver.try_iter() {
        face.apply(command, &settings);
    }
}

/// Edits of the avatar settings (panel, file) change the switches and the speed; other
/// settings changes (a window move) leave what commands set alone.
fn follow_settings(
    settings: Res<Settings>,
    mut face: ResMut<FaceState>,
    mut last: Local<Option<crate::config::AvatarSettings>>,
) {
    let avatar = &settings.avatar;
    let previous = last.replace(avatar.clone());
    if previous.is_none() || previous.as_ref() == Some(avatar) {
        return;
    }
    face.expressions.speed = avatar.transition_speed;
    face.auto_blink = avatar.auto_blink;
    face.head_motion = avatar.head_motion;
    face.breathing = avatar.breathing;
    face.look_at_cursor = avatar.look_at_cursor;
}
