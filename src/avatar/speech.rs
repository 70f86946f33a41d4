//! The chat drives the avatar: streamed text moves the mouth, a finished reply shows its
//! emotion. Everything goes through the same [`AvatarCommands`] channel as any other sender.

use bevy::prelude::*;

use super::commands::{AvatarCommand, AvatarCommands};
use crate::AppSystems;
use crate::config::Emotion;
use crate::llm::{ReplyFinished, ReplyText};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, follow_chat.in_set(AppSystems::Update));
}

fn follow_chat(
    mut text: MessageReader<ReplyText>,
    mut finished: MessageReader<ReplyFinished>,
    commands: Res<AvatarCommands>,
) {
    for ReplyText(piece) in text.read() {
        commands.send(AvatarCommand::Speak(piece.clone()));
    }
    for reply in finished.read() {
        // No tag and nothing in the words: back to neutral (through the table, so the
        // neutral multiplier applies).
        let (emotion, intensity) = match reply.emotion {
            Some(emotion) => (emotion, reply.intensity),
            None => (Emotion::Neutral, 100.0),
        };
        commands.send(AvatarCommand::ShowEmotion { emotion, intensity });
    }
}
