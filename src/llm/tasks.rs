//! Runs the engine on Bevy's AsyncComputeTaskPool, one task per job (load, warm-up, reply).
//! The engine moves into the task and comes back with its result, so the frame loop never
//! waits on llama.cpp; reply text streams back through a crossbeam channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};
use crossbeam_channel::{Receiver, Sender, unbounded};

use super::chat::{ChatTurn, PromptFormat, format_prompt, prompt_format, reply};
use super::emotion::{EmotionSmoother, TAG_INTENSITY};
use super::emotion_stream::EmotionTagFilter;
use super::engine::{EngineError, EngineSettings, GenerateOptions, LlmEngine, Reply, ReplyStats};
use super::plan::{ResolvedModel, Workload, resolve_model};
use super::state::{
    ChatHistory, LlmStatus, LlmTimings, ReplyFinished, ReplyText, SendChat, StopReply,
};
use crate::AppSystems;
use crate::config::{LlmSettings, PersonaSettings, Settings};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<LlmWorker>();
    app.add_systems(
        Update,
        (
            poll_job.in_set(AppSystems::ReadChannels),
            (reload_on_settings_change, start_reply, stop_reply)
                .chain()
                .in_set(AppSystems::Update),
        ),
    );
}

enum JobOutcome {
    /// The engine, its prompt format, and the notice when it fell back to the CPU.
    Loaded(Result<LlmEngine, EngineError>, PromptFormat, Option<String>),
    WarmedUp(Box<LlmEngine>, Result<ReplyStats, EngineError>),
    Replied(Box<LlmEngine>, String, Result<(Reply, usize), EngineError>),
}

/// Owns the engine between jobs and the job in flight.
#[derive(Resource)]
pub struct LlmWorker {
    /// `SyncCell`: the engine is `Send` but not `Sync`; the worker only hands out `&mut`.
    engine: SyncCell<Option<LlmEngine>>,
    format: PromptFormat,
    job: Option<Task<JobOutcome>>,
    cancel: Arc<AtomicBool>,
    text_sender: Sender<String>,
    text: Receiver<String>,
    /// Settings the engine was (or is being) loaded with.
    loaded_with: Option<EngineSettings>,
    /// A settings change arrived during a job: reload once it is done.
    reload_pending: bool,
    /// The `llm` settings last resolved: other settings changes (persona, window, ...) must not
    /// re-read the model header and probe the GPU in the frame loop.
    resolved_for: Option<LlmSettings>,
    emotion_filter: EmotionTagFilter,
    mood: EmotionSmoother,
}

impl Default for LlmWorker {
    fn default() -> Self {
        let (text_sender, text) = unbounded();
        Self {
            engine: SyncCell::new(None),
            format: PromptFormat::PlainText,
            job: None,
            cancel: Arc::new(AtomicBool::new(false)),
            text_sender,
            text,
            loaded_with: None,
            reload_pending: true,
            resolved_for: None,
            emotion_filter: EmotionTagFilter::default(),
            mood: EmotionSmoother::default(),
        }
    }
}

impl Drop for LlmWorker {
    /// Quitting in the middle of a reply: stop it (within one token) and wait for the task,
    /// so llama.cpp is never torn down by the process exit while a thread is inside it.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(job) = self.job.take() {
            let _ = bevy::tasks::block_on(job);
        }
    }
}

fn reload_on_settings_change(
    settings: Res<Settings>,
    mut worker: ResMut<LlmWorker>,
    mut status: ResMut<LlmStatus>,
    mut timings: ResMut<LlmTimings>,
) {
    let llm_unchanged = worker.resolved_for.as_ref() == Some(&settings.llm);
    if (!settings.is_changed() || llm_unchanged) && !worker.reload_pending {
        return;
    }
    if worker.job.is_some() {
        // Never mid-reply: apply once the running job is done.
        worker.reload_pending = true;
        return;
    }
    worker.reload_pending = false;
    worker.resolved_for = Some(settings.llm.clone());
    let wanted = match resolve_model(&settings, Workload::WithWindow) {
        Ok(wanted) => wanted,
        Err(err) => {
            *worker.engine.get() = None;
            worker.loaded_with = None;
            *status = LlmStatus::Error(err.to_string());
            return;
        }
    };
    let Some(ResolvedModel {
        engine: engine_settings,
        plan: load_plan,
        ..
    }) = wanted
    else {
        *worker.engine.get() = None;
        worker.loaded_with = None;
        *status = LlmStatus::NoModel;
        return;
    };
    if worker.loaded_with.as_ref() == Some(&engine_settings) && worker.engine.get().is_some() {
        return;
    }
    info!(
        "loading {} ({}, {} threads, {} GPU layers)",
        engine_settings.model_path.display(),
        load_plan.reason,
        load_plan.n_threads,
        load_plan.n_gpu_layers
    );
    timings.plan = Some(load_plan);
    *worker.engine.get() = None;
    worker.loaded_with = Some(engine_settings.clone());
    *status = LlmStatus::Loading;
    worker.job = Some(AsyncComputeTaskPool::get().spawn(async move {
        let (loaded, notice) = LlmEngine::load_with_cpu_retry(engine_settings);
        let format = loaded
            .as_ref()
            .map_or(PromptFormat::PlainText, prompt_format);
        JobOutcome::Loaded(loaded, format, notice)
    }));
}

fn start_reply(
    mut requests: MessageReader<SendChat>,
    mut worker: ResMut<LlmWorker>,
    mut status: ResMut<LlmStatus>,
    mut history: ResMut<ChatHistory>,
    settings: Res<Settings>,
) {
    for SendChat(message) in requests.read() {
        if message.trim().is_empty() {
            continue;
        }
        let Some(mut engine) = worker.engine.get().take() else {
            warn!("message ignored: the chat is {}", status.label());
            continue;
        };
        let persona = settings.persona.clone();
        let kept = (settings.chat.turns_kept as usize).max(1);
        let len = history.turns.len();
        if len - history.context_start.min(len) > kept {
            // Forget half of what is kept at once rather than one turn per message.
            history.context_start = len - kept.div_ceil(2);
        }
        let start = history.context_start.min(len);
        let turns: Vec<ChatTurn> = history.turns[start..].to_vec();
        let options = GenerateOptions::from_sampling(&settings.llm.sampling);
        let format = worker.format;
        let message = message.clone();
        let cancel = Arc::clone(&worker.cancel);
        cancel.store(false, Ordering::Relaxed);
        let sender = worker.text_sender.clone();
        worker.emotion_filter = EmotionTagFilter::default();
        history.streaming = Some(String::new());
        history.last_error = None;
        *status = LlmStatus::Generating;
        worker.job = Some(AsyncComputeTaskPool::get().spawn(async move {
            let result = reply(
                &mut engine,
                format,
                &persona,
                &turns,
                &message,
                &options,
                &cancel,
                &mut |piece| {
                    let _ = sender.send(piece.to_owned());
                },
            );
            JobOutcome::Replied(Box::new(engine), message, result)
        }));
        break;
    }
}

fn stop_reply(mut stops: MessageReader<StopReply>, worker: Res<LlmWorker>) {
    if stops.read().count() > 0 {
        worker.cancel.store(true, Ordering::Relaxed);
    }
}

fn poll_job(
    mut worker: ResMut<LlmWorker>,
    mut status: ResMut<LlmStatus>,
    mut history: ResMut<ChatHistory>,
    mut timings: ResMut<LlmTimings>,
    mut text_out: MessageWriter<ReplyText>,
    mut finished_out: MessageWriter<ReplyFinished>,
    settings: Res<Settings>,
) {
    let worker = &mut *worker;
    for piece in worker.text.try_iter() {
        let shown = worker.emotion_filter.push(&piece);
        if !shown.is_empty() {
            if let Some(streaming) = &mut history.streaming {
                streaming.push_str(&shown);
            }
            text_out.write(ReplyText(shown));
        }
    }
    let Some(outcome) = worker.job.as_mut().and_then(check_ready) else {
        return;
    };
    worker.job = None;
    match outcome {
        JobOutcome::Loaded(Ok(mut engine), format, notice) => {
            if let Some(notice) = notice {
                // Shown under the conversation, and the overlay's profile line says CPU.
                history.last_error = Some(notice.clone());
                if let Some(plan) = &mut timings.plan {
                    plan.n_gpu_layers = 0;
                    plan.profile = crate::config::Profile::CpuFallback;
                    plan.reason = notice;
                }
            }
            timings.load_ms = Some(engine.load_time.as_secs_f64() * 1000.0);
            timings.n_ctx = engine.n_ctx();
            worker.format = format;
            if settings.llm.warm_up {
                *status = LlmStatus::WarmingUp;
                let persona = settings.persona.clone();
                worker.job = Some(AsyncComputeTaskPool::get().spawn(async move {
                    let result = warm_up(&mut engine, format, &persona);
                    JobOutcome::WarmedUp(Box::new(engine), result)
                }));
            } else {
                *worker.engine.get() = Some(engine);
                *status = LlmStatus::Ready;
            }
        }
        JobOutcome::Loaded(Err(err), _, _) => {
            error!("{err}");
            *status = LlmStatus::Error(err.to_string());
        }
        JobOutcome::WarmedUp(engine, result) => {
            match result {
                Ok(stats) => timings.warm_up_ms = Some(stats.prompt_ms),
                Err(err) => warn!("warm-up skipped: {err}"),
            }
            timings.context_used = engine.cached_tokens();
            *worker.engine.get() = Some(*engine);
            *status = LlmStatus::Ready;
        }
        JobOutcome::Replied(engine, message, result) => {
            timings.context_used = engine.cached_tokens();
            *worker.engine.get() = Some(*engine);
            *status = LlmStatus::Ready;
            let tail = worker.emotion_filter.finish();
            let shown = history.streaming.take().unwrap_or_default() + &tail;
            let (emotion, intensity) = match worker.emotion_filter.emotion() {
                Some(tagged) => {
                    worker.mood.push_tag(tagged);
                    (Some(tagged), TAG_INTENSITY)
                }
                None => worker
                    .mood
                    .push(&shown)
                    .map_or((None, 0.0), |s| (Some(s.emotion), s.intensity)),
            };
            match result {
                Ok((reply, dropped)) => {
                    history.context_start += dropped;
                    history.turns.push(ChatTurn {
                        user: message,
                        assistant: reply.text.clone(),
                    });
                    info!(
                        "reply: {} prompt tokens ({} cached), first token {:.0} ms, {} tokens at {:.1} tok/s",
                        reply.stats.prompt_tokens,
                        reply.stats.reused_tokens,
                        reply.stats.ttft_ms,
                        reply.stats.generated_tokens,
                        reply.stats.decode_tps
                    );
                    timings.last_reply = Some(reply.stats.clone());
                    finished_out.write(ReplyFinished {
                        text: shown,
                        emotion,
                        intensity,
                        stats: reply.stats,
                    });
                }
                Err(err) => {
                    // The conversation is intact and the engine ready; the user sees why
                    // this message failed.
                    warn!("{err}");
                    history.last_error = Some(err.to_string());
                }
            }
        }
    }
}

fn warm_up(
    engine: &mut LlmEngine,
    format: PromptFormat,
    persona: &PersonaSettings,
) -> Result<ReplyStats, EngineError> {
    let (system, _) = format_prompt(engine, format, persona, &[], None);
    if system.trim().is_empty() {
        return engine.prefill(" ");
    }
    engine.prefill(&system)
}
