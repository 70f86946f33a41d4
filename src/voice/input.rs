//! Listening in the app: the listener thread started and stopped from the `listen` settings,
//! held by the push-to-talk key or the chat panel's Talk button, muted while the mascot speaks
//! (unless `listen.barge_in`), and what it heard sent to the chat (or put in its input). No
//! microphone or no recognizer is one reason in the chat panel; typing goes on.

use std::path::PathBuf;

use bevy::prelude::*;

use super::downloads::RecognizerDownloaded;
use super::listen::{VadSettings, default_recognizers_dir};
use super::listener::{ListenConfig, ListenEvent, ListenWorker};
use super::output::VoiceOutput;
use super::recognize::default_recognizer;
use crate::AppSystems;
use crate::avatar::{Attending, AvatarCommand, AvatarCommands, FaceState};
use crate::config::{Expression, ListenSettings, Settings, SettingsChanged};
use crate::desktop::DesktopAction;
use crate::llm::{ChatDraft, LlmStatus, SendChat, StopReply};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ListenStatus>()
        .init_resource::<ListenInput>()
        .add_message::<HoldToTalk>()
        .add_message::<SpeechDraft>()
        .add_message::<DesktopAction>()
        .add_systems(
            Update,
            (
                configure,
                hold,
                mute_while_speaking,
                read_events,
                show_listening,
            )
                .chain()
                .in_set(AppSystems::Update),
        );
}

/// What listening is doing, for the chat panel.
#[derive(Resource, Debug, Clone, PartialEq, Default)]
pub enum ListenStatus {
    /// `listen.enabled` is off.
    #[default]
    Off,
    Loading,
    /// Ready on this microphone.
    Ready(String),
    /// Why it cannot listen; typing goes on.
    Failed(String),
}

/// Push-to-talk from the chat panel's Talk button: down (true) or up (false).
#[derive(Message, Debug, Clone, Copy)]
pub struct HoldToTalk(pub bool);

/// Words heard, for the chat input (`listen.send_at_once: false`).
#[derive(Message, Debug, Clone)]
pub struct SpeechDraft(pub String);

#[derive(Resource, Default)]
pub struct ListenInput {
    worker: Option<ListenWorker>,
    started_with: Option<ListenConfig>,
    /// The push-to-talk key or button is down.
    pub held: bool,
    /// The input level, 0..1, for the meter.
    pub level: f32,
    muted: bool,
    /// What was heard last, and its recognition time.
    pub last_heard: Option<(String, f64)>,
    /// The words heard so far of what the user is saying (`listen.partial_words`).
    pub partial: String,
    /// Hands-free: speech has started and is not yet heard.
    hearing: bool,
    /// The avatar shows it is listening ([`LISTENING_FACE`]): the preset's target before, to
    /// put back after.
    attentive: Option<f32>,
}

/// The face while the user speaks to the mascot: brows up, eyes open (the preset at this
/// weight), on top of the mood; it eases back when the words are heard or the key released.
pub const LISTENING_FACE: (Expression, f32) = (Expression::Surprised, 0.35);

fn wanted(settings: &ListenSettings) -> Option<ListenConfig> {
    if !settings.enabled {
        return None;
    }
    let dir = default_recognizers_dir().unwrap_or_else(|| PathBuf::from("recognizers"));
    Some(ListenConfig {
        recognizer: settings
            .recognizer
            .clone()
            .unwrap_or_else(|| dir.join(default_recognizer(&settings.language))),
        vad: settings
            .vad
            .clone()
            .unwrap_or_else(|| dir.join("silero-vad.onnx")),
        language: settings.language.clone(),
        device: settings.device.clone(),
        hands_free: settings.hands_free,
        partial_words: settings.partial_words,
        threads: 2,
        vad_settings: VadSettings::default(),
    })
}

/// The same models and device: hands-free switches without a restart.
fn same_load(a: &ListenConfig, b: &ListenConfig) -> bool {
    a.recognizer == b.recognizer
        && a.vad == b.vad
        && a.language == b.language
        && a.device == b.device
        && a.threads == b.threads
        && a.vad_settings == b.vad_settings
}

/// Starts the listener once the model has loaded (they would share the cores) and when the
/// listen settings change.
fn configure(
    mut changes: MessageReader<SettingsChanged>,
    mut downloaded: MessageReader<RecognizerDownloaded>,
    settings: Res<Settings>,
    llm: Res<LlmStatus>,
    mut input: ResMut<ListenInput>,
    mut status: ResMut<ListenStatus>,
    mut pending: Local<bool>,
) {
    if changes.read().any(|c| c.listen) {
        *pending = true;
    }
    if downloaded.read().count() > 0 {
        // The recognizer that was missing may be in now: load again.
        input.started_with = None;
        *pending = true;
    }
    let wanted = wanted(&settings.listen);
    if input.started_with.is_none() && wanted.is_some() {
        *pending = true;
    }
    if !*pending {
        return;
    }
    if matches!(*llm, LlmStatus::Loading | LlmStatus::WarmingUp) {
        if wanted.is_some() {
            *status = ListenStatus::Loading;
        }
        return;
    }
    *pending = false;
    match (&wanted, &input.started_with) {
        (Some(new), Some(old)) if new == old => return,
        (Some(new), Some(old)) if same_load(new, old) => {
            if let Some(worker) = &input.worker {
                worker.set_hands_free(new.hands_free);
            }
            input.started_with = wanted;
            return;
        }
        _ => {}
    }
    input.worker = None;
    input.held = false;
    input.hearing = false;
    input.level = 0.0;
    input.started_with = wanted.clone();
    let Some(config) = wanted else {
        *status = ListenStatus::Off;
        return;
    };
    info!("listening: loading {}", config.recognizer.display());
    input.worker = Some(ListenWorker::start(config));
    *status = ListenStatus::Loading;
}

/// The push-to-talk key (its release already cleared of X's autorepeat by the hotkeys,
/// desktop/hotkeys.rs) and the Talk button.
fn hold(
    mut actions: MessageReader<DesktopAction>,
    mut buttons: MessageReader<HoldToTalk>,
    mut input: ResMut<ListenInput>,
) {
    let mut wanted = None;
    for action in actions.read() {
        if let DesktopAction::PushToTalk { held } = action {
            wanted = Some(*held);
        }
    }
    for HoldToTalk(held) in buttons.read() {
        wanted = Some(*held);
    }
    let Some(held) = wanted else {
        return;
    };
    if held == input.held {
        return;
    }
    input.held = held;
    input.partial.clear();
    info!(
        "listening: push-to-talk {}",
        if held { "held" } else { "released" }
    );
    if let Some(worker) = &input.worker {
        worker.hold(held);
    }
}

/// Without barge-in the microphone is muted while the mascot speaks: through speakers it
/// would hear (and answer) itself.
fn mute_while_speaking(
    settings: Res<Settings>,
    voice: Res<VoiceOutput>,
    mut input: ResMut<ListenInput>,
) {
    let muted = !settings.listen.barge_in && voice.speaking() && !input.held;
    if muted != input.muted {
        input.muted = muted;
        // Muting forgets what was being heard.
        input.hearing = false;
        if let Some(worker) = &input.worker {
            worker.set_muted(muted);
        }
    }
}

fn read_events(
    settings: Res<Settings>,
    mut input: ResMut<ListenInput>,
    mut status: ResMut<ListenStatus>,
    mut send: MessageWriter<SendChat>,
    mut draft: MessageWriter<SpeechDraft>,
    mut stop: MessageWriter<StopReply>,
    mut ahead: MessageWriter<ChatDraft>,
) {
    let Some(worker) = &input.worker else {
        return;
    };
    for event in worker.events() {
        match event {
            ListenEvent::Ready {
                microphone,
                load_ms,
                pass_ms,
                partial_words,
            } => {
                info!(
                    "listening: ready on {microphone} in {load_ms:.0} ms (one pass {pass_ms:.0} ms, \
                     partial words {})",
                    crate::voice::listener::partial_words_label(
                        partial_words,
                        settings.listen.partial_words
                    )
                );
                *status = ListenStatus::Ready(microphone);
            }
            ListenEvent::Failed(err) => {
                warn!("listening off: {err}");
                input.worker = None;
                input.hearing = false;
                input.level = 0.0;
                input.partial.clear();
                *status = ListenStatus::Failed(err.to_string());
                return;
            }
            ListenEvent::Level(level) => input.level = level,
            ListenEvent::SpeechStarted => {
                input.hearing = true;
                // Barge-in: the user speaks over the mascot, which stops its reply and voice.
                if settings.listen.barge_in {
                    stop.write(StopReply);
                }
            }
            ListenEvent::Partial(text) => {
                debug!("listening: so far {text:?}");
                // Words sent as heard: the chat evaluates them ahead while the user speaks.
                if settings.listen.send_at_once {
                    ahead.write(ChatDraft(text.clone()));
                }
                input.partial = text;
            }
            ListenEvent::Heard {
                text,
                recognition_ms,
                ..
            } => {
                input.hearing = false;
                input.partial.clear();
                info!("listening: heard {text:?} in {recognition_ms:.0} ms");
                input.last_heard = Some((text.clone(), recognition_ms));
                if settings.listen.send_at_once {
                    send.write(SendChat(text));
                } else {
                    draft.write(SpeechDraft(text));
                }
            }
            ListenEvent::NotUnderstood(why) => {
                input.hearing = false;
                input.partial.clear();
                info!("listening: {why}");
            }
        }
    }
}

/// The avatar shows it listens while the push-to-talk key is held (or, hands-free, while the
/// user speaks): [`Attending`] starts the body's listening pose (the motion plugin), and the
/// face's preset is raised to [`LISTENING_FACE`]'s weight, then put back to what it was,
/// unless the mood changed it meanwhile.
fn show_listening(
    mut input: ResMut<ListenInput>,
    avatar: Option<Res<AvatarCommands>>,
    face: Option<Res<FaceState>>,
    attending: Option<ResMut<Attending>>,
) {
    let attentive = input.worker.is_some() && (input.held || input.hearing);
    // The body: the motion plugin's listening pose.
    if let Some(mut attending) = attending {
        attending.set_if_neq(Attending(attentive));
    }
    let (Some(avatar), Some(face)) = (avatar, face) else {
        return;
    };
    let (expression, weight) = LISTENING_FACE;
    let target = face.expressions.target(expression);
    match (attentive, input.attentive) {
        (true, None) => {
            input.attentive = Some(target);
            if target < weight {
                avatar.send(AvatarCommand::SetExpression { expression, weight });
            }
        }
        (false, Some(before)) => {
            input.attentive = None;
            if target == weight {
                avatar.send(AvatarCommand::SetExpression {
                    expression,
                    weight: before,
                });
            }
        }
        _ => {}
    }
}
