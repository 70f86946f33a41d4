//! Runs the chat session on Bevy's AsyncComputeTaskPool, one task per job (load, warm-up,
//! reply). The session moves into the task and comes back with its result, so the frame loop never
//! waits on llama.cpp; reply text streams back through a crossbeam channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};
use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::llm::contract::{ChatError, Recall};

use crate::AppSystems;
use crate::config::{
    AppState, Guarded, LlmSettings, LoadGuard, RetrySkipped, SamplingSettings, Settings,
    SettingsChanged,
};
use crate::llm::contract::ReplyStream;
use crate::llm::contract::{GenerateOptions, ReplyStats};
use crate::llm::conversation::session::{ChatSession, Notes, SessionReply};
use crate::llm::load::{BackendConfig, load_backend};
use crate::llm::plan::{ResolvedModel, Workload, resolve_model};
use crate::llm::state::{
    ChatDraft, ChatHistory, ClearHistory, LlmStatus, LlmTimings, ModelChosen, ReplyFinished,
    ReplyText, SendChat, StopReply,
};

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<LlmWorker>();
    app.add_systems(Startup, load_backends_early);
    app.add_systems(
        Update,
        (
            poll_job.in_set(AppSystems::ReadChannels),
            (
                reload_on_settings_change,
                follow_memory_settings,
                clear_on_request,
                collect_drafts,
                start_reply,
                stop_reply,
                prepare_draft,
                take_notes_when_idle,
            )
                .chain()
                .in_set(AppSystems::Update),
        ),
    );
}

/// llama.cpp's modules (and a GPU driver's start, hundreds of milliseconds) on their own
/// thread at start, so the first load plan, made on the frame loop, finds them ready. Not for
/// a server backend: a GPU module would take a GPU context for nothing.
fn load_backends_early(settings: Res<Settings>) {
    if !matches!(settings.llm.backend, crate::config::Backend::Local) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("llama-backends".into())
        .spawn(|| {
            // The outcome is logged there and read again by the load plan.
            let _ = crate::llm::runtime::backends::ensure_loaded();
        });
    if let Err(err) = spawned {
        tracing::warn!("cannot start the thread that loads llama.cpp's modules: {err}");
    }
}

/// Opens the long-term memory for a new session (the memory plugin inserts it; without it
/// the chat has no memory): the [`Recall`] seam, or `None` with why for the chat panel. Runs
/// on the loading task, never on the frame loop.
#[derive(Resource, Clone)]
pub struct RecallProvider(
    pub Arc<dyn Fn(&Settings) -> Result<Option<Box<dyn Recall>>, String> + Send + Sync>,
);

enum JobOutcome {
    /// The session, the notice when the engine fell back to the CPU, and why the memory could
    /// not be opened.
    Loaded(
        Result<ChatSession, ChatError>,
        Option<String>,
        Option<String>,
    ),
    WarmedUp(Box<ChatSession>, Result<ReplyStats, ChatError>),
    Replied(Box<ChatSession>, Result<SessionReply, ChatError>),
    Noted(Box<ChatSession>, Result<Notes, ChatError>),
    Prepared(Box<ChatSession>, Result<Option<ReplyStats>, ChatError>),
}

/// Owns the chat session between jobs and the job in flight.
#[derive(Resource)]
pub struct LlmWorker {
    /// `SyncCell`: the session is `Send` but not `Sync`; the worker only hands out `&mut`.
    session: SyncCell<Option<ChatSession>>,
    job: Option<Task<JobOutcome>>,
    cancel: Arc<AtomicBool>,
    text_sender: Sender<String>,
    text: Receiver<String>,
    /// Settings the backend was (or is being) loaded with.
    loaded_with: Option<BackendConfig>,
    /// A settings change arrived during a job: reload once it is done.
    reload_pending: bool,
    /// The conversation was cleared during a job: clear the session once it is back.
    clear_pending: bool,
    /// The `llm` settings (sampling aside) of the last load plan.
    planned_for: Option<LlmSettings>,
    /// The `memory` settings (and persona) the session's memory was opened with.
    memory_for: Option<(crate::config::MemorySettings, String)>,
    /// The memory being opened again after its settings changed (beside the session, which
    /// stays free for replies and reloads), then the result until the session is idle.
    memory_task: Option<Task<OpenedMemory>>,
    memory_ready: SyncCell<Option<OpenedMemory>>,
    /// When the last reply ended, until the memory's notes on it are taken.
    idle_since: Option<Instant>,
    /// The job in flight is the memory's notes: a message stops it and waits here.
    noting: bool,
    queued: Option<String>,
    /// The job in flight evaluates a draft ahead: a message stops it the same way.
    preparing: bool,
    /// The latest draft not evaluated yet, and the last one evaluated.
    draft: Option<String>,
    prepared: String,
}

type OpenedMemory = Result<Option<Box<dyn Recall>>, String>;

impl Default for LlmWorker {
    fn default() -> Self {
        let (text_sender, text) = unbounded();
        Self {
            session: SyncCell::new(None),
            job: None,
            cancel: Arc::new(AtomicBool::new(false)),
            text_sender,
            text,
            loaded_with: None,
            reload_pending: true,
            clear_pending: false,
            planned_for: None,
            memory_for: None,
            memory_task: None,
            memory_ready: SyncCell::new(None),
            idle_since: None,
            noting: false,
            queued: None,
            preparing: false,
            draft: None,
            prepared: String::new(),
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

fn without_sampling(llm: &LlmSettings) -> LlmSettings {
    LlmSettings {
        sampling: SamplingSettings::default(),
        ..llm.clone()
    }
}

/// Loads the model at start and again when the `llm` settings change (other sections never
/// re-read the model header or probe the GPU in the frame loop).
#[allow(clippy::too_many_arguments)]
fn reload_on_settings_change(
    mut changes: MessageReader<SettingsChanged>,
    mut chosen: MessageReader<ModelChosen>,
    mut retries: MessageReader<RetrySkipped>,
    settings: Res<Settings>,
    state: Res<AppState>,
    guard: Option<Res<LoadGuard>>,
    mut worker: ResMut<LlmWorker>,
    mut status: ResMut<LlmStatus>,
    mut timings: ResMut<LlmTimings>,
    recall: Option<Res<RecallProvider>>,
) {
    // "Try again" on a model skipped at start (its load crashed an earlier run).
    if retries.read().any(|r| r.0 == Guarded::Model)
        && let Some(guard) = &guard
        && guard.retry(Guarded::Model).is_some()
    {
        worker.reload_pending = true;
        worker.loaded_with = None;
    }
    // Sampling is read per message: only the settings that shape the load plan reload (and a
    // plan made while the model sits in VRAM would find less room and differ).
    let plan_changed = changes.read().any(|changed| changed.llm)
        && worker.planned_for.as_ref() != Some(&without_sampling(&settings.llm));
    if plan_changed || chosen.read().count() > 0 {
        worker.reload_pending = true;
    }
    // Never mid-reply: a pending reload waits until the running job is done.
    if !worker.reload_pending || worker.job.is_some() {
        return;
    }
    worker.reload_pending = false;
    worker.planned_for = Some(without_sampling(&settings.llm));
    // The model downloaded from the chat panel, unless the user set another since.
    let mut effective = settings.clone();
    effective.llm.model_path = state.model(&settings);
    let wanted = match resolve_model(&effective, Workload::WithWindow) {
        Ok(wanted) => wanted,
        Err(err) => {
            *worker.session.get() = None;
            worker.loaded_with = None;
            *status = LlmStatus::Error(err.to_string());
            return;
        }
    };
    let Some(ResolvedModel { backend, local }) = wanted else {
        *worker.session.get() = None;
        worker.loaded_with = None;
        *status = LlmStatus::NoModel;
        return;
    };
    if worker.loaded_with.as_ref() == Some(&backend) && worker.session.get().is_some() {
        return;
    }
    // A model file an earlier run stopped while loading is not loaded again until the user
    // asks; any other is recorded (on the loading thread) before llama.cpp reads it.
    let model_file = match &backend {
        BackendConfig::Local(engine) => Some(engine.model_path.clone()),
        BackendConfig::OpenAi(_) => None,
    };
    let guard = guard.as_deref().cloned();
    if let (Some(guard), Some(path)) = (&guard, &model_file)
        && guard.should_skip(Guarded::Model, path)
    {
        let reason = format!(
            "the last start stopped while loading the model {}: skipped (Try again at the top of the window)",
            path.display()
        );
        warn!("{reason}");
        *worker.session.get() = None;
        worker.loaded_with = None;
        *status = LlmStatus::Error(reason);
        return;
    }
    match &local {
        Some(local) => info!(
            "loading {} ({}, {} threads, {} GPU layers)",
            backend.describe(),
            local.plan.reason,
            local.plan.n_threads,
            local.plan.n_gpu_layers
        ),
        None => info!("chatting through the server: {}", backend.describe()),
    }
    timings.plan = local.map(|local| local.plan);
    *worker.session.get() = None;
    worker.loaded_with = Some(backend.clone());
    *status = LlmStatus::Loading;
    let chat = settings.chat.clone();
    let memory = recall.map(|provider| (provider.clone(), settings.clone()));
    worker.memory_for = Some((settings.memory.clone(), settings.persona.name.clone()));
    worker.memory_task = None;
    *worker.memory_ready.get() = None;
    worker.job = Some(AsyncComputeTaskPool::get().spawn(async move {
        if let (Some(guard), Some(path)) = (&guard, &model_file) {
            guard.begin(Guarded::Model, path);
        }
        let loaded = load_backend(backend);
        let mut memory_notice = None;
        let session = loaded.backend.map(|backend| {
            let mut session = ChatSession::new(backend, &chat);
            if let Some((provider, settings)) = &memory {
                match (provider.0)(settings) {
                    Ok(recall) => session.set_memory(recall),
                    Err(reason) => memory_notice = Some(reason),
                }
            }
            session
        });
        JobOutcome::Loaded(session, loaded.notice, memory_notice)
    }));
}

/// A change of the `memory` settings (or the persona, whose memories they are) opens the
/// memory again on a task; the session takes it once it is idle.
fn follow_memory_settings(
    settings: Res<Settings>,
    recall: Option<Res<RecallProvider>>,
    mut worker: ResMut<LlmWorker>,
    mut history: ResMut<ChatHistory>,
) {
    let wanted = (settings.memory.clone(), settings.persona.name.clone());
    if worker.memory_for.as_ref().is_some_and(|had| *had != wanted) {
        worker.memory_for = Some(wanted);
        let provider = recall.map(|r| r.clone());
        let settings = settings.clone();
        worker.memory_task = Some(
            AsyncComputeTaskPool::get()
                .spawn(async move { provider.map_or(Ok(None), |p| (p.0)(&settings)) }),
        );
    }
    if let Some(opened) = worker.memory_task.as_mut().and_then(check_ready) {
        worker.memory_task = None;
        *worker.memory_ready.get() = Some(opened);
    }
    let worker = &mut *worker;
    let Some(session) = worker.session.get().as_mut() else {
        return;
    };
    match worker.memory_ready.get().take() {
        Some(Ok(memory)) => session.set_memory(memory),
        Some(Err(reason)) => {
            warn!("{reason}");
            session.set_memory(None);
            history.last_error = Some(reason);
        }
        None => {}
    }
}

fn clear_on_request(mut requests: MessageReader<ClearHistory>, mut worker: ResMut<LlmWorker>) {
    if requests.read().count() == 0 {
        return;
    }
    match worker.session.get() {
        Some(session) => session.clear(),
        None => worker.clear_pending = true,
    }
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
        if worker.noting || worker.preparing {
            // The memory's notes (or a draft evaluated ahead) give way: the message is
            // answered once they stopped (within a few tokens or one batch), and the notes are
            // taken at the next pause.
            worker.cancel.store(true, Ordering::Relaxed);
            worker.queued = Some(message.clone());
            history.streaming = Some(String::new());
            *status = LlmStatus::Generating;
            break;
        }
        if begin_reply(
            &mut worker,
            &mut status,
            &mut history,
            &settings,
            message.clone(),
        ) {
            break;
        }
    }
}

/// Starts the reply to `message` on a task; `false` (logged) when there is no session.
fn begin_reply(
    worker: &mut LlmWorker,
    status: &mut LlmStatus,
    history: &mut ChatHistory,
    settings: &Settings,
    message: String,
) -> bool {
    let Some(mut session) = worker.session.get().take() else {
        warn!("message ignored: the chat is {}", status.label());
        return false;
    };
    session.apply(&settings.chat);
    let persona = settings.persona.clone();
    let options = GenerateOptions::from_sampling(&settings.llm.sampling);
    let cancel = Arc::clone(&worker.cancel);
    cancel.store(false, Ordering::Relaxed);
    let sender = worker.text_sender.clone();
    history.streaming = Some(String::new());
    history.last_error = None;
    worker.idle_since = None;
    // Drafts were of this message; the next ones are evaluated against the new turn.
    worker.draft = None;
    worker.prepared.clear();
    *status = LlmStatus::Generating;
    worker.job = Some(AsyncComputeTaskPool::get().spawn(async move {
        let mut stream = ReplyStream {
            cancel: &cancel,
            on_text: &mut |piece| {
                let _ = sender.send(piece.to_owned());
            },
        };
        let result = session.send(&persona, &message, &options, &mut stream);
        JobOutcome::Replied(Box::new(session), result)
    }));
    true
}

/// After a reply and `memory.notes_after_secs` without a message, the chat model writes
/// down what to remember of the new turns, on a task beside the conversation (the status
/// stays Ready: a message stops the notes and is answered).
fn take_notes_when_idle(
    mut worker: ResMut<LlmWorker>,
    mut timings: ResMut<LlmTimings>,
    settings: Res<Settings>,
) {
    let after = settings.memory.notes_after_secs;
    let due = worker
        .idle_since
        .is_some_and(|since| after > 0 && since.elapsed().as_secs_f64() >= f64::from(after));
    if !due || worker.job.is_some() {
        return;
    }
    worker.idle_since = None;
    let Some(mut session) = worker
        .session
        .get()
        .take_if(|session| session.unnoted_turns() > 0)
    else {
        return;
    };
    let persona = settings.persona.clone();
    let options = GenerateOptions::from_sampling(&settings.llm.sampling);
    let cancel = Arc::clone(&worker.cancel);
    cancel.store(false, Ordering::Relaxed);
    worker.noting = true;
    timings.notes_running = true;
    worker.job = Some(AsyncComputeTaskPool::get().spawn(async move {
        let result = session.take_notes(&persona, &options, &cancel);
        JobOutcome::Noted(Box::new(session), result)
    }));
}

/// Keeps the latest draft, before a message of the same frame is started (which drops it:
/// the draft was of that message).
fn collect_drafts(mut drafts: MessageReader<ChatDraft>, mut worker: ResMut<LlmWorker>) {
    if let Some(ChatDraft(draft)) = drafts.read().last() {
        if worker.idle_since.is_some() {
            worker.idle_since = Some(Instant::now());
        }
        worker.draft = Some(draft.clone());
    }
}

/// Evaluates the latest draft (typed in the chat panel, or heard so far) ahead, on a task,
/// when the session is idle; a draft also counts as activity, so the memory's notes wait.
fn prepare_draft(mut worker: ResMut<LlmWorker>, status: Res<LlmStatus>, settings: Res<Settings>) {
    if worker.job.is_some() || *status != LlmStatus::Ready {
        return;
    }
    let Some(draft) = worker.draft.take() else {
        return;
    };
    if draft.trim().is_empty() || draft == worker.prepared {
        return;
    }
    let Some(mut session) = worker.session.get().take() else {
        return;
    };
    session.apply(&settings.chat);
    worker.prepared.clone_from(&draft);
    let persona = settings.persona.clone();
    let options = GenerateOptions::from_sampling(&settings.llm.sampling);
    let cancel = Arc::clone(&worker.cancel);
    cancel.store(false, Ordering::Relaxed);
    worker.preparing = true;
    worker.job = Some(AsyncComputeTaskPool::get().spawn(async move {
        let result = session.prepare(&persona, &draft, &options, &cancel);
        JobOutcome::Prepared(Box::new(session), result)
    }));
}

fn stop_reply(
    mut stops: MessageReader<StopReply>,
    mut worker: ResMut<LlmWorker>,
    mut history: ResMut<ChatHistory>,
) {
    if stops.read().count() > 0 {
        worker.cancel.store(true, Ordering::Relaxed);
        // A message waiting for the notes or a draft to give way is not answered either.
        if worker.queued.take().is_some() {
            history.streaming = None;
        }
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
    guard: Option<Res<LoadGuard>>,
) {
    let worker = &mut *worker;
    for piece in worker.text.try_iter() {
        if let Some(streaming) = &mut history.streaming {
            streaming.push_str(&piece);
        }
        text_out.write(ReplyText(piece));
    }
    let Some(outcome) = worker.job.as_mut().and_then(check_ready) else {
        return;
    };
    worker.job = None;
    let session = match outcome {
        JobOutcome::Loaded(Ok(mut session), notice, memory_notice) => {
            if let Some(reason) = memory_notice {
                warn!("{reason}");
                history.last_error = Some(reason);
            }
            if let Some(notice) = notice {
                // Shown under the conversation, and the overlay's profile line says CPU.
                history.last_error = Some(notice.clone());
                if let Some(plan) = &mut timings.plan {
                    plan.n_gpu_layers = 0;
                    plan.profile = crate::config::Profile::CpuFallback;
                    plan.reason = notice;
                }
            }
            let stats = session.stats();
            timings.load_ms = Some(stats.load_ms);
            timings.n_ctx = stats.n_ctx;
            session.restore(history.turns.clone(), history.context_start);
            // The warm-up reads the saved cache: still part of the guarded load.
            let guard = guard.as_deref().cloned();
            if settings.llm.warm_up {
                *status = LlmStatus::WarmingUp;
                let persona = settings.persona.clone();
                worker.job = Some(AsyncComputeTaskPool::get().spawn(async move {
                    let result = session.warm_up(&persona);
                    if let Some(guard) = guard {
                        guard.end(Guarded::Model);
                    }
                    JobOutcome::WarmedUp(Box::new(session), result)
                }));
                return;
            }
            if let Some(guard) = guard {
                guard.end(Guarded::Model);
            }
            session
        }
        JobOutcome::Loaded(Err(err), _, _) => {
            if let Some(guard) = &guard {
                guard.end(Guarded::Model);
            }
            error!("{err}");
            *status = LlmStatus::Error(err.to_string());
            return;
        }
        JobOutcome::WarmedUp(session, result) => {
            match result {
                Ok(stats) => timings.warm_up_ms = Some(stats.prompt_ms),
                Err(err) => warn!("warm-up skipped: {err}"),
            }
            *session
        }
        JobOutcome::Replied(session, result) => {
            history.streaming = None;
            match result {
                Ok(reply) => {
                    history.context_start = session.context_start();
                    history.turns.push(reply.turn);
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
                        text: reply.shown,
                        emotion: reply.emotion,
                        intensity: reply.intensity,
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
            worker.idle_since = Some(Instant::now());
            *session
        }
        JobOutcome::Noted(session, result) => {
            worker.noting = false;
            timings.notes_running = false;
            match result {
                Ok(Notes::Written(extracted, stats)) => {
                    info!(
                        "memory notes: {} added, {} replaced, {} dropped ({} prompt tokens, {} written, {:.0} ms)",
                        extracted.added,
                        extracted.replaced,
                        extracted.dropped,
                        stats.prompt_tokens,
                        stats.generated_tokens,
                        stats.prompt_ms + stats.decode_ms
                    );
                    timings.notes = Some(extracted);
                }
                Ok(Notes::Cancelled) => {
                    info!("memory notes stopped for a message");
                    timings.notes_stopped += 1;
                }
                Ok(Notes::Nothing) => {}
                // Never shown as the chat's error: the conversation is not concerned.
                Err(err) => warn!("memory notes not taken: {err}"),
            }
            *session
        }
        JobOutcome::Prepared(session, result) => {
            worker.preparing = false;
            match result {
                Ok(Some(stats)) => {
                    debug!(
                        "draft evaluated ahead: {} of {} prompt tokens in {:.0} ms",
                        stats.prompt_tokens - stats.reused_tokens,
                        stats.prompt_tokens,
                        stats.prompt_ms
                    );
                    timings.drafts_ahead += 1;
                }
                Ok(None) => {
                    if worker.cancel.load(Ordering::Relaxed) {
                        timings.drafts_stopped += 1;
                    }
                    // Tried again when handed again.
                    worker.prepared.clear();
                }
                // The reply evaluates what it needs.
                Err(err) => {
                    debug!("draft not evaluated ahead: {err}");
                    worker.prepared.clear();
                }
            }
            *session
        }
    };
    let mut session = session;
    if std::mem::take(&mut worker.clear_pending) {
        session.clear();
    }
    timings.context_used = session.stats().cached_tokens;
    *worker.session.get() = Some(session);
    *status = LlmStatus::Ready;
    if let Some(message) = worker.queued.take() {
        begin_reply(worker, &mut status, &mut history, &settings, message);
    }
}
