//! The dispatch loop of one run: the only place with `tokio::select!`. It
//! feeds the scheduler events (executor updates, sealed outputs, timers,
//! cancellation), carries out its actions (prepare + submit, kill, record),
//! and journals every change before acting on the next batch.

use crate::artefact::{self, Sealed};
use crate::event::{Outcome, RunEvent, RunSummary, StepSize};
use crate::journal::{Journal, Op};
use crate::state::{RunState, StateStore, TaskState as Recorded};
use crate::{EngineError, layout};
use prepare::{PrepState, Preparer};
use stall::StallWatch;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::time::Instant;
use twinflow_core::scheduler::{
    Action, Event, KillReason, Outcome as TaskOutcome, RunOutcome, Scheduler, SchedulerConfig,
    TaskState,
};
use twinflow_core::{AttemptKey, AttemptStatus, Executor, Handle, Job, Plan, TaskId, Update};

mod cache;
pub(crate) mod control;
mod groups;
mod prepare;
mod rerun;
pub(crate) mod select;
mod stall;
mod trigger;

/// What reaches the loop.
#[derive(Debug)]
pub(crate) enum Msg {
    /// An executor's report.
    Update(Update),
    /// Outputs of a successful attempt, sealed off the loop's thread.
    Sealed {
        key: AttemptKey,
        result: Result<Vec<Sealed>, String>,
    },
    /// A task's directory is ready (see `prepare`).
    Prepared {
        key: AttemptKey,
        result: Result<(), String>,
    },
    /// The user cancelled.
    Cancel,
    /// An operator acts on some tasks (see `control`).
    Control(control::ControlRequest),
    /// Someone asks where some tasks are (see `select`).
    Select(select::SelectRequest),
}

/// The [`twinflow_core::UpdateSink`] of a run: its loop's channel.
#[derive(Debug)]
pub(crate) struct RunSink(pub mpsc::UnboundedSender<Msg>);

impl twinflow_core::UpdateSink for RunSink {
    fn send(&self, update: Update) {
        let _ = self.0.send(Msg::Update(update));
    }
}

/// Everything a loop starts from.
pub(crate) struct DispatchSetup {
    pub plan: Arc<Plan>,
    /// The run's hooks (`None`: it has none).
    pub hooks: Option<crate::hooks::HookFeed>,
    pub run_dir: PathBuf,
    pub store: Arc<Mutex<StateStore>>,
    /// The pending changes of every run of the engine, written together.
    pub journals: Arc<crate::journal::Hub>,
    pub executors: Vec<Arc<dyn Executor>>,
    /// The digest of each step's resolved image (by step index), `None`
    /// for a step on the host.
    pub images: Vec<Option<String>>,
    pub config: SchedulerConfig,
    pub cache: bool,
    pub resumed: bool,
    pub next_attempts: Vec<(u32, u32)>,
    /// Attempts of an earlier process that their backend follows.
    pub adopted: Vec<(AttemptKey, Handle)>,
    /// A rerun that took an ended run up: who asked (`rerun by USER
    /// (action N)`) and the tasks it reset, which really run.
    pub rerun: Option<(String, Vec<u32>)>,
    pub rx: mpsc::UnboundedReceiver<Msg>,
    pub tx: mpsc::UnboundedSender<Msg>,
    pub events: mpsc::UnboundedSender<RunEvent>,
}

/// An attempt in flight.
#[derive(Debug)]
struct InFlight {
    handle: Option<Handle>,
    cache_key: Option<String>,
    since: Instant,
}

/// The loop's state.
pub(crate) struct Dispatch {
    plan: Arc<Plan>,
    run_id: String,
    run_dir: PathBuf,
    store: Arc<Mutex<StateStore>>,
    executors: Vec<Arc<dyn Executor>>,
    scheduler: Scheduler,
    cache: bool,
    resumed: bool,
    base: Vec<u32>,
    rx: mpsc::UnboundedReceiver<Msg>,
    tx: mpsc::UnboundedSender<Msg>,
    events: mpsc::UnboundedSender<RunEvent>,
    started: Instant,
    wake: Option<Instant>,
    journal: Journal,
    in_flight: HashMap<u32, InFlight>,
    sealed: Vec<Option<Box<[Sealed]>>>,
    reasons: HashMap<u32, String>,
    timed_out: HashSet<u32>,
    /// Members being killed because another member of their group
    /// instance failed.
    group_stopped: HashSet<u32>,
    /// Whether the plan has coupling groups (else none of their work is done).
    grouped: bool,
    summary: RunSummary,
    pending: Vec<Event>,
    /// Every task's name, made at the first operator request (see
    /// [`Dispatch::task_names`]).
    task_names: Vec<Box<str>>,
    /// Operator requests (actions, selections) that came behind other
    /// messages: taken once those are applied, in order.
    operator_requests: std::collections::VecDeque<Msg>,
    /// Operator actions accepted this turn: applied before `pending`.
    control: Vec<Event>,
    /// Why tasks an operator killed ended (`killed by USER (action N)`).
    operator_killed: HashMap<u32, String>,
    /// Who asked for the rerun being applied (`rerun by USER (action N)`).
    rerun_by: String,
    /// Tasks a rerun reset: their next attempt really runs (no cache).
    rerun: HashSet<u32>,
    /// Running tasks killed because a task they depend on is rerun.
    rerun_killed: HashSet<u32>,
    /// Tasks of a resumed run that the store recorded as finished and that
    /// have not launched (or been reused) here yet: a rerun applies to them
    /// too (see `rerun::not_back_yet`).
    finished_before: HashSet<u32>,
    /// Tasks whose result was reused from the cache (for the summary).
    from_cache: HashSet<u32>,
    /// Why tasks were triggered or set by hand (`triggered by USER
    /// (action N)`, see `trigger.rs`).
    by_hand: HashMap<u32, String>,
    /// Outputs sealed for tasks being set succeeded, until the scheduler
    /// sets them.
    set_sealed: HashMap<u32, Vec<Sealed>>,
    adopted: Vec<(TaskId, u32)>,
    preparer: Preparer,
    prep: HashMap<u32, PrepState>,
    backlog: VecDeque<(TaskId, u32)>,
    preparing: usize,
    waiting_launch: HashMap<u32, u32>,
    precached: HashMap<u32, (String, String)>,
    keys: HashMap<u32, String>,
    code: cache::CodeDigests,
    /// [`DispatchSetup::images`].
    images: Vec<Option<String>>,
    due: Vec<Job>,
    /// [`DispatchSetup::hooks`]; dropped when the run ends.
    hooks: Option<crate::hooks::HookFeed>,
    /// Whether the current stall was announced (see [`Dispatch::stall`]).
    stalled: StallWatch,
}

impl Dispatch {
    pub(crate) fn new(setup: DispatchSetup) -> Self {
        let n = setup.plan.task_count();
        let n_steps = setup.plan.steps.len();
        let mut base = vec![0; n];
        for (task, next) in setup.next_attempts {
            if let Some(b) = base.get_mut(task as usize) {
                *b = next;
            }
        }
        // An adopted attempt is its task's scheduler attempt 0; its state and
        // handle are already in the journal.
        let mut in_flight = HashMap::new();
        for (key, handle) in &setup.adopted {
            base[key.task.index()] = key.attempt;
            in_flight.insert(
                key.task.0,
                InFlight {
                    handle: Some(handle.clone()),
                    cache_key: None,
                    since: Instant::now(),
                },
            );
        }
        let adopted = setup.adopted.iter().map(|(k, _)| (k.task, 0)).collect();
        let scheduler = Scheduler::new(&setup.plan, setup.config);
        let run_id = setup.plan.workflow.run_id.clone();
        let grouped = setup.plan.steps.iter().any(|s| s.group.is_some());
        let (rerun_by, rerun) = setup
            .rerun
            .map(|(by, reset)| (by, reset.into_iter().collect()))
            .unwrap_or_default();
        Self {
            summary: RunSummary {
                run_id: run_id.clone(),
                outcome: Outcome::Succeeded,
                run_dir: setup.run_dir.clone(),
                tasks: n as u64,
                ran: 0,
                cached: 0,
                failed: 0,
                skipped: 0,
                cancelled: 0,
                seconds: 0.0,
                failures: Vec::new(),
            },
            journal: Journal::new(
                Arc::clone(&setup.journals),
                Arc::clone(&setup.plan),
                run_id.clone(),
            ),
            adopted,
            plan: setup.plan,
            run_id,
            run_dir: setup.run_dir,
            store: setup.store,
            executors: setup.executors,
            scheduler,
            cache: setup.cache,
            resumed: setup.resumed,
            base,
            rx: setup.rx,
            preparer: Preparer::start(setup.tx.clone()),
            tx: setup.tx,
            events: setup.events,
            started: Instant::now(),
            wake: None,
            in_flight,
            sealed: vec![None; n],
            reasons: HashMap::new(),
            timed_out: HashSet::new(),
            group_stopped: HashSet::new(),
            grouped,
            pending: Vec::new(),
            operator_requests: std::collections::VecDeque::new(),
            task_names: Vec::new(),
            control: Vec::new(),
            operator_killed: HashMap::new(),
            rerun_by,
            rerun,
            rerun_killed: HashSet::new(),
            finished_before: HashSet::new(),
            from_cache: HashSet::new(),
            by_hand: HashMap::new(),
            set_sealed: HashMap::new(),
            prep: HashMap::new(),
            backlog: VecDeque::new(),
            preparing: 0,
            waiting_launch: HashMap::new(),
            precached: HashMap::new(),
            keys: HashMap::new(),
            code: cache::CodeDigests::new(n_steps),
            images: setup.images,
            due: Vec::new(),
            hooks: setup.hooks,
            stalled: StallWatch::default(),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn emit(&self, event: RunEvent) {
        if let Some(hooks) = &self.hooks {
            hooks.observe(&event);
        }
        let _ = self.events.send(event);
    }

    /// Announces a stall once: nothing in flight, nothing being prepared
    /// or due, no timer set, and tasks unfinished (the loop is about to
    /// wait with the run not over). Anything in flight ends the stall.
    fn stall(&mut self) {
        let idle = self.pending.is_empty()
            && self.in_flight.is_empty()
            && self.backlog.is_empty()
            && self.preparing == 0
            && self.waiting_launch.is_empty()
            && self.due.is_empty()
            && self.wake.is_none();
        let s = &self.summary;
        let finished = s.ran + s.cached + s.failed + s.skipped + s.cancelled;
        let unfinished = s.tasks.saturating_sub(finished);
        let busy = !self.in_flight.is_empty();
        if let Some(unfinished) = self.stalled.check(idle, busy, unfinished) {
            tracing::warn!(
                "run {} stalled: nothing runs or is ready, {unfinished} task(s) unfinished",
                self.run_id
            );
            self.emit(RunEvent::RunStalled { unfinished });
        }
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        let mut store = crate::lock(&self.store);
        self.journal.flush(&mut store).map_err(EngineError::State)
    }

    /// Writes the pending changes if the most urgent of them is due.
    fn flush_due(&mut self) -> Result<(), EngineError> {
        if self.journal.due() {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Runs to the end.
    pub(crate) async fn run(mut self) -> Result<RunSummary, EngineError> {
        let result = self.run_inner().await;
        for exec in &self.executors {
            exec.shutdown().await;
        }
        if result.is_err() {
            // Leave the run resumable: it is recorded as running by a process
            // that is about to end, which `runs` shows as interrupted.
            let _ = self.flush();
        }
        result
    }

    async fn run_inner(&mut self) -> Result<RunSummary, EngineError> {
        self.emit(RunEvent::RunStarted {
            format: crate::event::EVENTS_FORMAT.to_owned(),
            run_id: self.run_id.clone(),
            workflow: self.plan.workflow.name.clone(),
            run_dir: self.run_dir.clone(),
            steps: self
                .plan
                .steps
                .iter()
                .map(|s| StepSize {
                    name: s.name.clone(),
                    tasks: s.tasks.len() as u32,
                })
                .collect(),
            resumed: self.resumed,
        });
        let replayed = if self.resumed {
            self.replay_journal()?
        } else {
            Vec::new()
        };
        if !self.adopted.is_empty() {
            self.pending
                .push(Event::Adopted(std::mem::take(&mut self.adopted)));
        }
        self.pending.extend(replayed);
        self.pending.push(Event::Start);
        loop {
            loop {
                while !self.pending.is_empty() || !self.control.is_empty() {
                    // Operator actions first: a hold that arrives in the same
                    // turn as its task becomes ready keeps it from starting.
                    let mut events = std::mem::take(&mut self.control);
                    events.append(&mut self.pending);
                    for event in events {
                        let actions = self.scheduler.handle(event, self.now());
                        if let Some(outcome) = self.act(actions).await? {
                            return self.finish(outcome);
                        }
                    }
                }
                // An operator's request is taken against the state every
                // message before it left, one at a time: a release right
                // after a hold finds the task held.
                match self.operator_requests.pop_front() {
                    Some(msg) => self.on_message(msg),
                    None => break,
                }
            }
            self.stall();
            // What a crash must not lose is written before the loop waits;
            // the rest when it is due (see `journal::Urgency`).
            self.flush_due()?;
            let wake = match (self.wake, self.journal.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let msg = match wake {
                Some(at) => tokio::select! {
                    msg = self.rx.recv() => msg,
                    () = tokio::time::sleep_until(at) => {
                        self.flush_due()?;
                        if self.wake.is_some_and(|w| w <= Instant::now()) {
                            self.wake = None;
                            self.pending.push(Event::Tick);
                        }
                        continue;
                    }
                },
                None => self.rx.recv().await,
            };
            let Some(msg) = msg else {
                return Err(EngineError::Aborted("its channel closed".to_owned()));
            };
            if self.defer_operator(msg) {
                while let Ok(msg) = self.rx.try_recv() {
                    if !self.defer_operator(msg) || self.pending.len() >= 4096 {
                        break;
                    }
                }
            }
            if !self.due.is_empty() {
                let due = std::mem::take(&mut self.due);
                self.submit(due).await?;
            }
        }
    }

    fn finish(&mut self, outcome: RunOutcome) -> Result<RunSummary, EngineError> {
        let (outcome, state) = match outcome {
            RunOutcome::Succeeded => (Outcome::Succeeded, RunState::Succeeded),
            RunOutcome::Failed => (Outcome::Failed, RunState::Failed),
            RunOutcome::Cancelled => (Outcome::Cancelled, RunState::Cancelled),
        };
        self.journal.push(Op::RunFinished { state });
        self.flush()?;
        self.summary.outcome = outcome;
        self.summary.seconds = self.started.elapsed().as_secs_f64();
        self.emit(RunEvent::RunFinished(self.summary.clone()));
        // The hook runner ends once its last hook is done.
        self.hooks = None;
        Ok(self.summary.clone())
    }

    /// Scheduler attempt number of a persisted attempt, if it is current.
    pub(super) fn attempt_of(&self, key: AttemptKey) -> Option<u32> {
        key.attempt.checked_sub(*self.base.get(key.task.index())?)
    }

    pub(super) fn key(&self, task: TaskId, attempt: u32) -> AttemptKey {
        AttemptKey {
            task,
            attempt: self.base[task.index()] + attempt,
        }
    }

    /// Every task's name, by id: made once, at the first operator request
    /// (about 40 bytes a task), so that selectors are matched without
    /// making 100,000 names for each request.
    pub(super) fn task_names(&mut self) -> &[Box<str>] {
        if self.task_names.len() != self.plan.task_count() {
            self.task_names = (0..self.plan.task_count() as u32)
                .map(|t| self.plan.task_name(TaskId(t)).into_boxed_str())
                .collect();
        }
        &self.task_names
    }

    /// [`crate::control::select_tasks`] over the kept names.
    pub(super) fn select(
        &mut self,
        selectors: &[String],
    ) -> Result<Vec<TaskId>, crate::ControlError> {
        self.task_names();
        let names = &self.task_names;
        crate::control::select_tasks_named(
            &self.plan,
            |t| std::borrow::Cow::Borrowed(&names[t.index()]),
            selectors,
        )
    }

    /// Takes a message in, except an operator's request, which waits for
    /// every message before it to be applied (the loop's top takes it);
    /// whether to go on reading messages.
    fn defer_operator(&mut self, msg: Msg) -> bool {
        if matches!(msg, Msg::Control(_) | Msg::Select(_)) {
            self.operator_requests.push_back(msg);
            return false;
        }
        self.on_message(msg);
        true
    }

    fn on_message(&mut self, msg: Msg) {
        match msg {
            Msg::Cancel => self.pending.push(Event::Cancel),
            Msg::Control(request) => self.on_control(request),
            Msg::Select(request) => self.on_select(request),
            Msg::Prepared { key, result } => self.on_prepared(key, result),
            Msg::Sealed { key, result } => {
                let Some(attempt) = self.attempt_of(key) else {
                    return;
                };
                let t = key.task.0;
                if self.rerun_killed.contains(&t) {
                    self.ended_for_rerun(key.task, attempt);
                    return;
                }
                let outcome = match result {
                    Ok(sealed) => {
                        self.succeeded(t, key.attempt, sealed, None);
                        TaskOutcome::Succeeded
                    }
                    Err(reason) => self.failed(t, reason),
                };
                self.finished(key.task, attempt, outcome);
            }
            Msg::Update(Update { key, status }) => self.on_update(key, status),
        }
    }

    fn on_update(&mut self, key: AttemptKey, status: AttemptStatus) {
        let Some(attempt) = self.attempt_of(key) else {
            return;
        };
        let t = key.task.0;
        if !self.in_flight.contains_key(&t) {
            return;
        }
        if self.rerun_killed.contains(&t) && rerun::ends(&status) {
            self.ended_for_rerun(key.task, attempt);
            return;
        }
        let outcome = match status {
            AttemptStatus::Queued => {
                self.pending.push(Event::Queued {
                    task: key.task,
                    attempt,
                });
                return;
            }
            AttemptStatus::Submitted(handle) => {
                let durable = self.executors[self.plan.step_of(key.task).executor.index()]
                    .handles_must_be_durable();
                self.journal
                    .push_handle(t, key.attempt, handle.0.clone(), durable);
                if let Some(f) = self.in_flight.get_mut(&t) {
                    f.handle = Some(handle);
                }
                return;
            }
            AttemptStatus::Running => {
                self.journal.push(Op::Running { task: t });
                self.pending.push(Event::Started {
                    task: key.task,
                    attempt,
                });
                self.emit(RunEvent::TaskRunning {
                    task: t,
                    step: self.plan.task(key.task).step.0,
                });
                return;
            }
            AttemptStatus::AwaitingData(what) => {
                self.journal.push(Op::State {
                    task: t,
                    attempt: key.attempt,
                    state: Recorded::Awaiting,
                    reason: Some(what.clone()),
                });
                self.emit(RunEvent::TaskAwaiting {
                    task: t,
                    name: self.plan.task_name(key.task),
                    step: self.plan.task(key.task).step.0,
                    what,
                });
                return;
            }
            AttemptStatus::Exited(0) => {
                let step = self.plan.step_of(key.task);
                let paths = self.paths(key.task, key.attempt);
                let outputs: Vec<(String, String)> = step
                    .outputs
                    .iter()
                    .map(|o| (o.name.clone(), o.path.clone()))
                    .collect();
                if outputs.is_empty() {
                    self.succeeded(t, key.attempt, Vec::new(), None);
                    TaskOutcome::Succeeded
                } else if artefact::small_files(
                    &paths.workdir,
                    &outputs,
                    artefact::SEAL_INLINE_BYTES,
                ) {
                    // A few small files: hashed here, without a round trip
                    // through the blocking pool.
                    let result = artefact::seal(&paths.workdir, &outputs);
                    self.on_message(Msg::Sealed { key, result });
                    return;
                } else {
                    let tx = self.tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let result = artefact::seal(&paths.workdir, &outputs);
                        let _ = tx.send(Msg::Sealed { key, result });
                    });
                    return;
                }
            }
            AttemptStatus::Exited(code) => {
                let stderr = self.paths(key.task, key.attempt).stderr;
                self.failed(t, with_tail(format!("exited with status {code}"), &stderr))
            }
            AttemptStatus::Signalled(how) => {
                if self.timed_out.contains(&t)
                    || self.group_stopped.contains(&t)
                    || self.operator_killed.contains_key(&t)
                {
                    TaskOutcome::Killed
                } else {
                    self.failed(t, how)
                }
            }
            AttemptStatus::Cancelled => TaskOutcome::Killed,
            AttemptStatus::Lost => {
                self.reasons
                    .insert(t, "its executor lost track of it".to_owned());
                TaskOutcome::Lost
            }
            AttemptStatus::Error(message) => self.failed(t, message),
        };
        if outcome == TaskOutcome::Killed && self.timed_out.contains(&t) {
            let limit = self.plan.step_of(key.task).timeout_seconds.unwrap_or(0);
            self.reasons
                .insert(t, format!("timed out after {limit} s and was killed"));
        }
        if let Some(why) = self.operator_killed.remove(&t)
            && outcome != TaskOutcome::Succeeded
        {
            self.reasons.insert(t, why);
        }
        if self.group_stopped.remove(&t)
            && outcome != TaskOutcome::Succeeded
            && let Some(why) = self.group_reason(key.task)
        {
            self.reasons.insert(t, format!("stopped: {why}"));
        }
        self.finished(key.task, attempt, outcome);
    }

    /// Reports the end of an attempt to the scheduler (on the next turn).
    pub(super) fn finished(&mut self, task: TaskId, attempt: u32, outcome: TaskOutcome) {
        self.pending.push(Event::Finished {
            task,
            attempt,
            outcome,
        });
    }

    pub(super) fn failed(&mut self, t: u32, reason: String) -> TaskOutcome {
        self.reasons.insert(t, reason.clone());
        TaskOutcome::Failed { reason }
    }

    fn succeeded(&mut self, t: u32, attempt: u32, sealed: Vec<Sealed>, from: Option<String>) {
        let flight = self.in_flight.remove(&t);
        let task = TaskId(t);
        let step = self.plan.task(task).step.0;
        let seconds = flight
            .as_ref()
            .map_or(0.0, |f| f.since.elapsed().as_secs_f64());
        self.journal.push(Op::Sealed {
            task: t,
            artefacts: sealed.clone(),
        });
        self.journal.push(Op::State {
            task: t,
            attempt,
            state: Recorded::Succeeded,
            reason: from
                .as_ref()
                .map(|r| format!("reused the result of run {r}"))
                .or_else(|| self.triggered_reason(task)),
        });
        // After the state: a cached task has no row before it.
        let key = match flight {
            Some(InFlight {
                cache_key: Some(key),
                ..
            }) => Some(key),
            Some(_) => self.cache_key_if_sealed(task),
            None => None,
        };
        if let Some(key) = key {
            self.journal.push(Op::Cache {
                task: t,
                key,
                from: from.clone(),
            });
        }
        self.rerun.remove(&t);
        if from.is_some() {
            self.summary.cached += 1;
            self.from_cache.insert(t);
        } else {
            self.from_cache.remove(&t);
            self.summary.ran += 1;
        }
        self.sealed[t as usize] = Some(sealed.into_boxed_slice());
        self.emit(RunEvent::TaskSucceeded {
            task: t,
            name: self.plan.task_name(task),
            step,
            cached_from: from,
            seconds,
        });
    }

    pub(super) fn paths(&self, task: TaskId, attempt: u32) -> layout::TaskPaths {
        let step = self.plan.step_of(task);
        layout::task_paths(
            &self.run_dir,
            &step.name,
            self.plan.instance_index(task),
            attempt,
        )
    }

    /// Carries out the scheduler's actions; returns the run's outcome once it is over.
    async fn act(&mut self, actions: Vec<Action>) -> Result<Option<RunOutcome>, EngineError> {
        let mut launches = Vec::new();
        let mut finished = None;
        let launching: HashSet<u32> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Launch { task, .. } => Some(task.0),
                _ => None,
            })
            .collect();
        for action in actions {
            match action {
                Action::Launch { task, attempt } => launches.push((task, attempt)),
                Action::Ready { task, attempt } => {
                    if !launching.contains(&task.0) {
                        self.on_ready(task, attempt);
                    }
                }
                Action::Kill {
                    task,
                    attempt,
                    reason,
                } => self.kill(task, attempt, reason).await,
                Action::RetryAt { task, attempt, at } => {
                    let persisted = self.base[task.index()] + attempt - 1;
                    let reason = self.attempt_failed(task, persisted, Recorded::Retrying);
                    let retry_in = at.saturating_sub(self.now()) as f64 / 1000.0;
                    self.emit_failed(task, persisted, reason, Some(retry_in));
                }
                Action::GaveUp { task } => {
                    let persisted = self.base[task.index()] + self.scheduler.attempt(task);
                    let reason = self.attempt_failed(task, persisted, Recorded::Failed);
                    self.summary.failed += 1;
                    self.summary
                        .failures
                        .push((self.plan.task_name(task), reason.clone()));
                    self.emit_failed(task, persisted, reason, None);
                }
                Action::Skip { task, because } => self.skip(task, because),
                Action::Reset { task, was } => self.reset(task, was),
                Action::Set {
                    task,
                    was,
                    succeeded,
                } => self.set_by_hand(task, was, succeeded),
                Action::WakeAt(at) => {
                    self.wake = Some(self.started + std::time::Duration::from_millis(at));
                }
                Action::RunFinished(outcome) => finished = Some(outcome),
            }
        }
        self.note_cancelled();
        if !launches.is_empty() {
            self.launch_all(launches).await?;
        }
        Ok(finished)
    }

    /// Records a failed attempt (`retrying` or `failed`); returns its reason.
    fn attempt_failed(&mut self, task: TaskId, attempt: u32, state: Recorded) -> String {
        let reason = self
            .reasons
            .remove(&task.0)
            .or_else(|| self.group_reason(task))
            .unwrap_or_default();
        self.in_flight.remove(&task.0);
        self.journal.push(Op::State {
            task: task.0,
            attempt,
            state,
            reason: Some(reason.clone()),
        });
        reason
    }

    /// Tasks killed by a cancellation end without an action of their own.
    fn note_cancelled(&mut self) {
        let done: Vec<u32> = self
            .in_flight
            .keys()
            .copied()
            .filter(|&t| self.scheduler.task_state(TaskId(t)) == TaskState::Cancelled)
            .collect();
        for t in done {
            self.in_flight.remove(&t);
            let attempt = self.base[t as usize] + self.scheduler.attempt(TaskId(t));
            self.journal.push(Op::State {
                task: t,
                attempt,
                state: Recorded::Cancelled,
                reason: Some("the run was cancelled".to_owned()),
            });
            self.summary.cancelled += 1;
        }
    }

    /// Announces a failed attempt, naming only the log files it wrote.
    fn emit_failed(&self, task: TaskId, attempt: u32, reason: String, retry_in: Option<f64>) {
        let paths = self.paths(task, attempt);
        let written = |path: std::path::PathBuf| path.is_file().then_some(path);
        self.emit(RunEvent::TaskFailed {
            task: task.0,
            name: self.plan.task_name(task),
            step: self.plan.task(task).step.0,
            attempt,
            reason,
            retry_in,
            stderr: written(paths.stderr),
            stdout: written(paths.stdout),
        });
    }

    fn skip(&mut self, task: TaskId, because: Option<TaskId>) {
        let attempt = self.base[task.index()];
        let because = because.map(|b| self.plan.task_name(b));
        let (state, reason) = match &because {
            Some(b) => (Recorded::Skipped, format!("{b} failed")),
            None => (Recorded::Cancelled, "the run was cancelled".to_owned()),
        };
        if because.is_some() {
            self.summary.skipped += 1;
        } else {
            self.summary.cancelled += 1;
        }
        self.journal.push(Op::State {
            task: task.0,
            attempt,
            state,
            reason: Some(reason),
        });
        self.emit(RunEvent::TaskSkipped {
            task: task.0,
            name: self.plan.task_name(task),
            step: self.plan.task(task).step.0,
            because,
        });
    }

    async fn kill(&mut self, task: TaskId, attempt: u32, reason: KillReason) {
        match reason {
            KillReason::Timeout => {
                self.timed_out.insert(task.0);
            }
            KillReason::Group { .. } => {
                self.group_stopped.insert(task.0);
            }
            KillReason::Rerun => {
                self.rerun_killed.insert(task.0);
            }
            KillReason::Cancelled | KillReason::Operator => {}
        }
        let key = self.key(task, attempt);
        if self.waiting_launch.remove(&task.0).is_some() {
            if reason == KillReason::Rerun {
                self.ended_for_rerun(task, attempt);
                return;
            }
            // Never handed to a backend: it ends here.
            self.finished(task, attempt, TaskOutcome::Killed);
            return;
        }
        let Some(handle) = self.in_flight.get(&task.0).and_then(|f| f.handle.clone()) else {
            return;
        };
        let exec = &self.executors[self.plan.step_of(task).executor.index()];
        if let Err(e) = exec.cancel(key, &handle).await {
            tracing::warn!("failed to kill {}: {e}", self.plan.task_name(task));
        }
    }

    async fn launch_all(&mut self, launches: Vec<(TaskId, u32)>) -> Result<(), EngineError> {
        let mut jobs = Vec::with_capacity(launches.len());
        let mut group_failed = if self.grouped {
            self.launch_groups(&launches)
        } else {
            HashMap::new()
        };
        for (task, attempt) in launches {
            self.finished_before.remove(&task.0);
            self.timed_out.remove(&task.0);
            self.group_stopped.remove(&task.0);
            let key = self.key(task, attempt);
            let (cached, cache_key) = match self.precached.remove(&task.0) {
                Some((from, cache_key)) => (Some(from), cache_key),
                None => {
                    let cache_key = match self.keys.remove(&task.0) {
                        Some(k) => k,
                        None => self.cache_key(task),
                    };
                    let prepared = self.prep.contains_key(&task.0);
                    // A group member is served only with its whole instance
                    // (`launch_groups`).
                    let member = self.grouped && self.scheduler.group_instance(task).is_some();
                    let rerun = self.rerun.contains(&task.0);
                    let from = if self.cache && !prepared && !member && !rerun {
                        self.reuse(task, key.attempt, &cache_key)
                    } else {
                        None
                    };
                    (from, cache_key)
                }
            };
            self.in_flight.insert(
                task.0,
                InFlight {
                    handle: None,
                    cache_key: Some(cache_key),
                    since: Instant::now(),
                },
            );
            if let Some(from) = cached {
                let sealed = self.sealed[task.index()].take().unwrap_or_default();
                self.succeeded(task.0, key.attempt, sealed.into_vec(), Some(from));
                self.finished(task, attempt, TaskOutcome::Succeeded);
                continue;
            }
            if let Some(why) = group_failed.remove(&task.0) {
                let outcome = self.failed(task.0, why);
                self.finished(task, attempt, outcome);
                continue;
            }
            let note = self.trigger_note(task);
            self.journal.push(Op::State {
                task: task.0,
                attempt: key.attempt,
                state: Recorded::Queued,
                reason: note,
            });
            let prepared = match self.prep.remove(&task.0) {
                Some(PrepState::Done(a)) if a == attempt => Ok(self.job(task, key)),
                Some(PrepState::Failed(a, reason)) if a == attempt => Err(reason),
                Some(PrepState::Pending(a)) if a == attempt => {
                    self.prep.insert(task.0, PrepState::Pending(a));
                    self.waiting_launch.insert(task.0, attempt);
                    continue;
                }
                _ => self.prepare(task, key),
            };
            match prepared {
                Ok(job) => jobs.push(job),
                Err(reason) => {
                    let outcome = self.failed(task.0, reason);
                    self.finished(task, attempt, outcome);
                }
            }
        }
        self.submit(jobs).await
    }

    /// Hands jobs to their executors (one batch per executor, so a batch
    /// backend can group them) and journals their handles.
    async fn submit(&mut self, jobs: Vec<Job>) -> Result<(), EngineError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut batches: Vec<(usize, Vec<Job>)> = Vec::new();
        for job in jobs {
            let exec = self.plan.step_of(job.key.task).executor.index();
            match batches.iter_mut().find(|(e, _)| *e == exec) {
                Some((_, batch)) => batch.push(job),
                None => batches.push((exec, vec![job])),
            }
        }
        // Handles are journalled in the same transaction as the intent, right
        // after the batch is submitted and before anything else happens.
        for (exec, batch) in batches {
            let keys: Vec<AttemptKey> = batch.iter().map(|j| j.key).collect();
            for job in &batch {
                self.emit(RunEvent::TaskSubmitted {
                    task: job.key.task.0,
                    name: job.name.clone(),
                    step: self.plan.task(job.key.task).step.0,
                    attempt: job.key.attempt,
                });
            }
            let executor = Arc::clone(&self.executors[exec]);
            let durable = executor.handles_must_be_durable();
            let mut results = executor.submit_batch(batch).await;
            let pending = self
                .waiting_launch
                .keys()
                .filter(|t| self.plan.step_of(TaskId(**t)).executor.index() == exec)
                .count();
            executor.more_coming(pending);
            // A backend that answers fewer jobs than it was given fails the
            // rest rather than leaving them in flight for ever.
            results.resize_with(keys.len(), || {
                Err(twinflow_core::ExecutorError::new(
                    "its executor gave no answer to the submission",
                ))
            });
            for (key, result) in keys.into_iter().zip(results) {
                let task = key.task;
                match result {
                    Ok(handle) => {
                        self.journal
                            .push_handle(task.0, key.attempt, handle.0.clone(), durable);
                        if let Some(f) = self.in_flight.get_mut(&task.0) {
                            f.handle = Some(handle);
                        }
                    }
                    Err(e) => {
                        let outcome = self.failed(task.0, e.message);
                        if let Some(attempt) = self.attempt_of(key) {
                            self.finished(task, attempt, outcome);
                        }
                    }
                }
            }
        }
        self.flush_due()
    }
}

/// A failure message with the last lines of the task's standard error.
fn with_tail(message: String, stderr: &std::path::Path) -> String {
    let Ok(text) = std::fs::read(stderr) else {
        return message;
    };
    let start = text.len().saturating_sub(2048);
    let text = String::from_utf8_lossy(&text[start..]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() {
        return message;
    }
    format!("{message}: {}", tail.join(" | "))
}
