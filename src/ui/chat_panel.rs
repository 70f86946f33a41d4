//! The chat panel (F1): conversation, the reply as it streams, input (Enter sends), Stop, and a
//! status line with the chat's state and speed.

use super::theme::{CHAT_KEY, RED};
use super::{Panel, toggle_panel};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::config::Settings;
use crate::hardware::human_bytes;
use crate::llm::{
    CancelDownload, ChatDraft, ChatHistory, ClearHistory, LlmStatus, LlmTimings, ModelDownloads,
    SendChat, StartDownload, StopReply,
};
use crate::voice::{HoldToTalk, ListenInput, ListenStatus, SpeechDraft, VoiceOutput, VoiceStatus};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ChatPanel>();
    app.add_systems(
        Update,
        toggle_panel::<ChatPanel>.in_set(crate::AppSystems::Update),
    );
    app.add_systems(EguiPrimaryContextPass, chat_panel);
}

#[derive(Resource)]
pub struct ChatPanel {
    pub open: bool,
    input: String,
    /// The Talk button is held down.
    talking: bool,
    /// The input as last handed to the chat as a draft, and when it was last edited.
    handed: String,
    edited: Option<std::time::Instant>,
}

/// An input left unchanged this long is handed to the chat as a draft even mid-word.
const DRAFT_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

impl Default for ChatPanel {
    fn default() -> Self {
        Self {
            open: true,
            input: String::new(),
            talking: false,
            handed: String::new(),
            edited: None,
        }
    }
}

/// Hands what is being typed to the chat, which evaluates it ahead (so the reply starts
/// sooner once it is sent): at the end of each word, or after a pause mid-word.
fn hand_draft(panel: &mut ChatPanel, draft: &mut MessageWriter<ChatDraft>) {
    let paused = panel.edited.map(|at| at.elapsed());
    if draft_due(&panel.input, &panel.handed, paused) {
        panel.handed.clone_from(&panel.input);
        draft.write(ChatDraft(panel.input.clone()));
    }
}

/// `input` is handed over as a draft: it has words, differs from what was `handed`, and ends
/// a word or has not changed for [`DRAFT_PAUSE`] (`paused`: since its last edit).
fn draft_due(input: &str, handed: &str, paused: Option<std::time::Duration>) -> bool {
    if input.trim().is_empty() || input == handed {
        return false;
    }
    let word_ended = input
        .chars()
        .last()
        .is_some_and(|c| c.is_whitespace() || c.is_ascii_punctuation());
    word_ended || paused.is_none_or(|paused| paused >= DRAFT_PAUSE)
}

/// Listening, as the panel shows it: the Talk button, the level, what was heard to edit.
#[derive(SystemParam)]
struct Listening<'w, 's> {
    input: Res<'w, ListenInput>,
    status: Res<'w, ListenStatus>,
    hold: MessageWriter<'w, HoldToTalk>,
    drafts: MessageReader<'w, 's, SpeechDraft>,
}

impl Panel for ChatPanel {
    const KEY: KeyCode = CHAT_KEY;

    fn open(&mut self) -> &mut bool {
        &mut self.open
    }
}

fn chat_panel(
    mut contexts: EguiContexts,
    mut panel: ResMut<ChatPanel>,
    history: Res<ChatHistory>,
    status: Res<LlmStatus>,
    timings: Res<LlmTimings>,
    settings: Res<Settings>,
    downloads: Res<ModelDownloads>,
    mut send: MessageWriter<SendChat>,
    mut draft: MessageWriter<ChatDraft>,
    mut stop: MessageWriter<StopReply>,
    mut clear: MessageWriter<ClearHistory>,
    mut start: MessageWriter<StartDownload>,
    mut cancel: MessageWriter<CancelDownload>,
    voice: Res<VoiceOutput>,
    voice_status: Res<VoiceStatus>,
    mut listening: Listening,
) -> Result {
    // Words heard for editing (`listen.send_at_once: false`) go to the input, panel opened.
    for SpeechDraft(text) in listening.drafts.read() {
        if !panel.input.is_empty() {
            panel.input.push(' ');
        }
        panel.input.push_str(text);
        panel.open = true;
    }
    if !panel.open {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let name = settings.persona.name.as_str();
    let mut open = true;
    egui::Window::new(format!("Chat with {name}"))
        .id(egui::Id::new("chat_panel"))
        .open(&mut open)
        .default_width(360.0)
        .anchor(egui::Align2::CENTER_BOTTOM, [0.0, -8.0])
        .resizable(false)
        .show(ctx, |ui| {
            if *status == LlmStatus::NoModel || downloads.active.is_some() {
                model_catalogue(ui, &downloads, &mut start, &mut cancel);
                ui.separator();
            }
            egui::ScrollArea::vertical()
                .max_height(220.0)
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    let (hidden, shown) = latest_turns(&history.turns);
                    if hidden > 0 {
                        ui.weak(format!(
                            "{hidden} earlier turns are in the history file, not shown"
                        ));
                    }
                    for turn in shown {
                        ui.label(
                            egui::RichText::new(format!("You: {}", clipped(&turn.user))).strong(),
                        );
                        ui.label(format!("{name}: {}", clipped(shown_reply(&turn.assistant))));
                    }
                    if let Some(streaming) = &history.streaming {
                        ui.label(format!("{name}: {}▌", clipped(streaming)));
                    }
                    if let Some(error) = &history.last_error {
                        ui.colored_label(RED, error);
                    }
                });
            ui.separator();
            let generating = *status == LlmStatus::Generating;
            // Stop also silences the voice still speaking a finished reply.
            let speaking = voice.speaking();
            ui.horizontal(|ui| {
                let input = ui.add_enabled(
                    *status == LlmStatus::Ready,
                    egui::TextEdit::singleline(&mut panel.input)
                        .hint_text("Say something…")
                        .desired_width(250.0),
                );
                if input.changed() {
                    panel.edited = Some(std::time::Instant::now());
                }
                let enter = input.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if generating || speaking {
                    if ui.button("Stop").clicked() {
                        stop.write(StopReply);
                    }
                } else if (ui.button("Send").clicked() || enter) && !panel.input.trim().is_empty() {
                    send.write(SendChat(std::mem::take(&mut panel.input)));
                    input.request_focus();
                }
                // After Send: a message sent is never handed over as a draft too.
                hand_draft(&mut panel, &mut draft);
                if !generating
                    && !history.turns.is_empty()
                    && ui
                        .small_button("Clear")
                        .on_hover_text("Forget the conversation (the history file keeps a .bak)")
                        .clicked()
                {
                    clear.write(ClearHistory);
                }
            });
            let mut line = status.label();
            if let Some(stats) = &timings.last_reply {
                line.push_str(&format!(
                    " · {:.1} tok/s · first token {:.0} ms",
                    stats.decode_tps, stats.ttft_ms
                ));
            }
            match &*status {
                LlmStatus::Error(_) => ui.colored_label(RED, line),
                _ => ui.weak(line),
            };
            // A voice that cannot speak says why; the chat goes on in text.
            if let VoiceStatus::Failed(reason) = &*voice_status {
                ui.colored_label(RED, format!("Voice off: {reason}"));
            }
            listen_row(ui, &mut panel, &mut listening);
        });
    panel.open = open;
    Ok(())
}

/// Hold Talk (or the push-to-talk key) and speak; the meter shows the microphone's level.
fn listen_row(ui: &mut egui::Ui, panel: &mut ChatPanel, listening: &mut Listening) {
    match &*listening.status {
        ListenStatus::Off => {}
        ListenStatus::Loading => {
            ui.weak("Listening: loading the recognizer…");
        }
        ListenStatus::Failed(reason) => {
            ui.colored_label(RED, format!("Listening off: {reason}"));
        }
        ListenStatus::Ready(microphone) => {
            ui.horizontal(|ui| {
                // (egui's fonts have no "●": the microphone emoji is in its emoji font.)
                let label = if listening.input.held {
                    "🎤 Listening"
                } else {
                    "Hold to talk"
                };
                let talk = ui
                    .add(egui::Button::new(label))
                    .on_hover_text(format!("Hold and speak ({microphone})"));
                let down = talk.is_pointer_button_down_on();
                if down != panel.talking {
                    panel.talking = down;
                    listening.hold.write(HoldToTalk(down));
                }
                ui.add(
                    egui::ProgressBar::new(listening.input.level)
                        .desired_width(80.0)
                        .desired_height(8.0),
                );
            });
            // On their own line, wrapped: a long sentence must not widen the panel.
            let line = if !listening.input.partial.is_empty() {
                format!("{}…", clipped(&listening.input.partial))
            } else if let Some((heard, ms)) = &listening.input.last_heard {
                format!("heard in {ms:.0} ms: {}", clipped(heard))
            } else {
                return;
            };
            ui.add(egui::Label::new(egui::RichText::new(line).weak()).wrap());
        }
    }
}

/// The panel lays out at most this many of the latest turns (egui lays out every label of a
/// scroll area each frame, visible or not): a long history costs the same as a short one.
const SHOWN_TURNS: usize = 40;
/// And at most this many characters of one message (a pasted book, a runaway reply).
const SHOWN_CHARS: usize = 2000;

/// How many turns are left out, and the latest ones the panel shows.
fn latest_turns(
    turns: &[crate::llm::contract::ChatTurn],
) -> (usize, &[crate::llm::contract::ChatTurn]) {
    let hidden = turns.len().saturating_sub(SHOWN_TURNS);
    (hidden, &turns[hidden..])
}

/// `text`, cut after [`SHOWN_CHARS`] characters with a note of how much more there is.
fn clipped(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => std::borrow::Cow::Owned(format!(
            "{}… ({} more characters)",
            &text[..cut],
            text[cut..].chars().count()
        )),
    }
}

/// History keeps the model's raw reply; the panel shows it without the emotion tag.
fn shown_reply(raw: &str) -> &str {
    crate::llm::conversation::chat::split_emotion_tag(raw)
        .1
        .trim_start()
}

/// First run: no model yet. The curated catalogue, what fits this machine, and the download
/// in progress (bytes, speed, time left, Cancel).
fn model_catalogue(
    ui: &mut egui::Ui,
    downloads: &ModelDownloads,
    start: &mut MessageWriter<StartDownload>,
    cancel: &mut MessageWriter<CancelDownload>,
) {
    if let Some((id, progress)) = &downloads.active {
        let name = downloads
            .catalogue
            .get(id)
            .map_or(id.as_str(), |e| e.name.as_str());
        ui.label(egui::RichText::new(format!("Downloading {name}")).strong());
        let (fraction, text) = match progress {
            Some(p) => {
                let total = p.bytes_total.unwrap_or(0);
                let eta = p
                    .eta
                    .map_or(String::new(), |eta| format!(" · {} s left", eta.as_secs()));
                (
                    if total > 0 {
                        p.bytes_done as f32 / total as f32
                    } else {
                        0.0
                    },
                    format!(
                        "{} / {} · {}/s{eta}",
                        human_bytes(p.bytes_done),
                        human_bytes(total),
                        human_bytes(p.bytes_per_second as u64)
                    ),
                )
            }
            None => (0.0, "connecting…".to_owned()),
        };
        ui.add(egui::ProgressBar::new(fraction).text(text));
        if ui
            .button("Cancel")
            .on_hover_text("Stop; the next download of it resumes where it stopped")
            .clicked()
        {
            cancel.write(CancelDownload);
        }
        return;
    }
    ui.label(egui::RichText::new("No model yet: pick one to download").strong());
    if let Some(error) = &downloads.error {
        ui.colored_label(RED, error);
    }
    egui::ScrollArea::vertical()
        .id_salt("catalogue")
        .max_height(200.0)
        .show(ui, |ui| {
            for entry in &downloads.catalogue.models {
                let fits = downloads
                    .fitting
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&entry.id));
                let here = downloads.downloaded.contains(&entry.id);
                ui.horizontal(|ui| {
                    let button = if here { "Use" } else { "Download" };
                    if ui.add_enabled(fits, egui::Button::new(button)).clicked() {
                        start.write(StartDownload(entry.id.clone()));
                    }
                    ui.label(egui::RichText::new(&entry.name).strong());
                    ui.weak(format!(
                        "{} · needs {} RAM{}",
                        human_bytes(entry.size_bytes),
                        human_bytes(entry.ram_needed_bytes()),
                        if fits {
                            ""
                        } else {
                            " · too big for this machine"
                        }
                    ));
                });
                ui.weak(&entry.good_for);
            }
        });
    ui.weak("Or set llm.model_path to any GGUF file (F2), or start with --model PATH.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::contract::ChatTurn;
    use std::time::Duration;

    #[test]
    fn a_draft_is_handed_over_at_each_word_end_or_after_a_pause() {
        let typing = Some(Duration::from_millis(50));
        let paused = Some(DRAFT_PAUSE);
        // Mid-word while typing: not yet; after the pause: yes.
        assert!(!draft_due("What is my na", "What is my ", typing));
        assert!(draft_due("What is my na", "What is my ", paused));
        // A word ended by a space or punctuation: at once.
        assert!(draft_due("What is my ", "What is my", typing));
        assert!(draft_due("What is my name?", "What is my ", typing));
        // The same text twice, or nothing to evaluate: never.
        assert!(!draft_due("What is my name?", "What is my name?", paused));
        assert!(!draft_due("   ", "", paused));
        assert!(!draft_due("", "What", paused));
        // Words put there by listening (never edited): at once.
        assert!(draft_due("heard this", "", None));
    }

    #[test]
    fn the_panel_lays_out_a_bounded_part_of_the_history() {
        let turns: Vec<ChatTurn> = (0..10_000)
            .map(|i| ChatTurn {
                user: format!("q{i}"),
                assistant: "a".repeat(i % 3 * 5000),
                recalled: None,
            })
            .collect();
        let (hidden, shown) = latest_turns(&turns);
        assert_eq!((hidden, shown.len()), (10_000 - SHOWN_TURNS, SHOWN_TURNS));
        assert_eq!(shown.last().map(|t| t.user.as_str()), Some("q9999"));
        assert_eq!(latest_turns(&turns[..3]), (0, &turns[..3]));
        let long = "é".repeat(SHOWN_CHARS + 5);
        let cut = clipped(&long);
        assert!(cut.ends_with("… (5 more characters)"), "{cut}");
        assert_eq!(cut.chars().filter(|c| *c == 'é').count(), SHOWN_CHARS);
        assert!(matches!(
            clipped("short"),
            std::borrow::Cow::Borrowed("short")
        ));
    }
}
