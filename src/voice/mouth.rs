//! The mouth follows what the speaker plays: each frame, the sentence and sample the mixer
//! reads ([`super::playback::PlayClock`]) pick the frame of that sentence's mouth track, shifted
//! by the time the device takes to play what the mixer read. (The face eases at 30 weight units
//! per second: at 60 frames per second it reaches a new weight within the frame, no lead is
//! needed; a 25 ms lead costs a tenth of the correlation with the sound, see the voice tests.)
//! Sent to the avatar through its command channel, only when it changes.

use bevy::prelude::*;

use super::output::{VoiceOutput, VoiceStatus};
use crate::AppSystems;
use crate::avatar::{AvatarCommand, AvatarCommands};

/// The device plays what the mixer read about this much later (a buffer of the ALSA/PulseAudio
/// or WASAPI stream).
const DEVICE_LATENCY_SECONDS: f32 = 0.04;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(Update, follow_sound.in_set(AppSystems::Apply));
}

fn follow_sound(
    status: Res<VoiceStatus>,
    mut output: ResMut<VoiceOutput>,
    commands: Option<Res<AvatarCommands>>,
    mut sent: Local<Option<[f32; 5]>>,
) {
    let Some(commands) = commands else {
        return;
    };
    let mouth = match (&*status, &output.clock) {
        (VoiceStatus::Ready(_), Some(clock)) => {
            let (sentence, sample) = clock.now();
            // Sentences before the one playing are done.
            while output
                .tracks
                .front()
                .is_some_and(|(id, _, _)| *id < sentence)
            {
                output.tracks.pop_front();
            }
            let weights = output
                .tracks
                .front()
                .filter(|(id, _, _)| *id == sentence)
                .map(|(_, rate, track)| {
                    let seconds = sample as f32 / (*rate).max(1) as f32;
                    track.at(seconds - DEVICE_LATENCY_SECONDS)
                })
                .unwrap_or([0.0; 5]);
            Some(weights)
        }
        _ => None,
    };
    if *sent != mouth {
        commands.send(AvatarCommand::VoiceMouth(mouth));
        *sent = mouth;
    }
}
