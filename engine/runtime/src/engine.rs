//! The public face of the runtime: an [`Engine`] with a state directory and
//! executor backends, which submits plans and hands back [`RunHandle`]s
//! (how a submission opens, takes up and starts a run: [`submit`]).

pub(crate) mod images;
mod rerun_ended;
mod submit;

use crate::RunSettings;
use crate::control::{ActionReport, ControlError, OperatorAction};
use crate::dispatch::{Msg, RunSink};
use crate::event::{RunEvent, RunSummary};
use crate::state::{StateError, StateStore};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use submit::RunRef;
use tokio::sync::mpsc;
use twinflow_core::{Executor, ExecutorFactory, ExecutorKind, Plan, UpdateSink, WebhookSender};

/// Why the engine could not start or finish a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// No backend is registered for an executor's kind.
    #[error(
        "executor `{executor}` is kind `{kind}`, which this twinflow cannot run yet; \
         bind it to another backend with --site, or run everything here with --local"
    )]
    NoBackend {
        /// The executor's name.
        executor: String,
        /// Its kind.
        kind: &'static str,
    },
    /// A backend refused an executor's configuration.
    #[error("failed to set up executor `{executor}`: {message}")]
    Executor {
        /// The executor's name.
        executor: String,
        /// Why.
        message: String,
    },
    /// `resume` named a run the store does not have.
    #[error("no run `{0}` in this state directory")]
    NoSuchRun(String),
    /// A new run reused an existing id.
    #[error("run `{0}` already exists; resume it, or start a new run")]
    RunExists(String),
    /// The run to resume is still running.
    #[error("run `{run}` is still running (pid {pid}); wait for it or cancel it first")]
    StillRunning {
        /// The run.
        run: String,
        /// Its process.
        pid: u32,
    },
    /// The run to resume already succeeded.
    #[error(
        "run `{0}` already succeeded; start a new run to run it again (unchanged tasks come from the cache)"
    )]
    AlreadySucceeded(String),
    /// The workflow changed since the run was started.
    #[error(
        "the workflow changed since run `{0}` was started; start a new run instead \
         (tasks whose command and inputs did not change come from the cache)"
    )]
    PlanChanged(String),
    /// A file could not be created.
    #[error("failed to create {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A step asks for a container image that its executor does not run
    /// or could not resolve ([`twinflow_core::Executor::resolve_image`]):
    /// refused rather than run on the host under a provenance that would
    /// name the image.
    #[error(
        "step `{step}` runs in container `{image}`, which is refused rather than run on the \
         host: executor `{executor}` (kind {kind}) {reason}"
    )]
    ContainerRefused {
        /// The step (or the steps sharing the image, joined by "`, `").
        step: String,
        /// Its image, as written.
        image: String,
        /// The executor.
        executor: String,
        /// Its kind.
        kind: &'static str,
        /// The executor's words: "does not run containers yet", or why the
        /// image could not be resolved.
        reason: String,
    },
    /// An executor that steps run on sets a `prologue` that its backend does
    /// not run ([`Executor::runs_prologue`]): refused rather than run
    /// without it.
    #[error(
        "executor `{executor}` sets a prologue (`{prologue}`), which its backend ({kind}) does \
         not run; the run is refused rather than run without it (remove `prologue:` and load \
         the environment in the steps' `run`)"
    )]
    PrologueNotApplied {
        /// The executor.
        executor: String,
        /// Its backend's kind.
        kind: &'static str,
        /// Its prologue, as written.
        prologue: String,
    },
    /// A step's tasks are shaped (ranks, nodes, whole nodes, a launcher) in
    /// a way its executor's backend does not run ([`Executor::shape_refusal`]):
    /// refused rather than run in another shape.
    #[error(
        "step `{step}` cannot run as written: executor `{executor}` (kind {kind}) {reason}; \
         the run is refused rather than run in another shape"
    )]
    ShapeRefused {
        /// The step.
        step: String,
        /// Its executor.
        executor: String,
        /// The executor's backend kind.
        kind: &'static str,
        /// The backend's words.
        reason: String,
    },
    /// A Slurm executor that steps run on sets `user_max_jobs`, which its
    /// backend does not enforce ([`Executor::caps_user_jobs`]): refused
    /// rather than run without the cap.
    #[error(
        "executor `{executor}` sets `user_max_jobs: {cap}`, which its backend ({kind}) does not \
         enforce yet; the run is refused rather than run without the cap (remove \
         `user_max_jobs`; `max_jobs` caps the jobs of one run)"
    )]
    UserMaxJobsNotEnforced {
        /// The executor.
        executor: String,
        /// Its backend's kind.
        kind: &'static str,
        /// The cap, as written.
        cap: u32,
    },
    /// The plan has a webhook hook and the engine was built without a
    /// [`twinflow_core::WebhookSender`]: refused rather than never posted.
    #[error(
        "hook {hook} posts a webhook, and this engine has no webhook sender; the run is \
         refused rather than run without it (register one with `EngineBuilder::webhooks`, \
         or use a `run:` hook)"
    )]
    NoWebhookSender {
        /// The first webhook hook, as messages name it.
        hook: String,
    },
    /// An operator action that takes an ended run up again was refused
    /// (see [`RunOptions::rerun`]); nothing was journalled or taken up.
    #[error(transparent)]
    Action(#[from] ControlError),
    /// The run's dispatch loop ended without a summary (a bug).
    #[error("the run's dispatch loop ended unexpectedly: {0}")]
    Aborted(String),
}

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Take up an interrupted or failed run with the plan's run id instead of
    /// starting a new one.
    pub resume: bool,
    /// Reuse sealed results of earlier runs whose command and inputs match.
    pub cache: bool,
    /// Cancel everything at the first task that fails for good.
    pub fail_fast: bool,
    /// Slots of local executors that do not set `slots` (default: the cores).
    pub default_slots: Option<u32>,
    /// The settings stored with a new run, to compile its plan again
    /// (resume, exports); `status --json` shows them as `args`.
    pub args: RunSettings,
    /// With `resume`: take up an ended run (also one that succeeded) by
    /// applying this rerun first. It is journalled in the transaction that
    /// marks the run running again, and the tasks it resets (the selected
    /// finished ones; with [`crate::ActionKind::RerunDownstream`] their
    /// dependents too, transitively) lose their cache entries, so they run
    /// as new attempts before anything else is dispatched. The rest is
    /// taken up as any resume takes it. Refused ([`EngineError::Action`])
    /// as on a live run: a selector that matches nothing, no selected task
    /// finished.
    pub rerun: Option<OperatorAction>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            resume: false,
            cache: true,
            fail_fast: false,
            default_slots: None,
            args: RunSettings::default(),
            rerun: None,
        }
    }
}

/// Runs plans. Build one with [`Engine::builder`].
#[derive(Debug, Clone)]
pub struct Engine {
    store: Arc<Mutex<StateStore>>,
    /// Its runs' pending changes, written in one transaction (see
    /// `journal`).
    journals: Arc<crate::journal::Hub>,
    state_dir: PathBuf,
    factories: HashMap<ExecutorKind, Arc<dyn ExecutorFactory>>,
    webhooks: Option<Arc<dyn WebhookSender>>,
}

/// Configures an [`Engine`].
#[derive(Debug, Default)]
pub struct EngineBuilder {
    state_dir: Option<PathBuf>,
    factories: HashMap<ExecutorKind, Arc<dyn ExecutorFactory>>,
    webhooks: Option<Arc<dyn WebhookSender>>,
}

impl EngineBuilder {
    /// Where the state database and run directories live (default:
    /// [`default_state_dir`]).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Runs executors of `kind` with backends from `factory`.
    pub fn executor(mut self, kind: ExecutorKind, factory: impl ExecutorFactory + 'static) -> Self {
        self.factories.insert(kind, Arc::new(factory));
        self
    }

    /// Posts the runs' webhook hooks (`on: … webhook:`) with `sender`;
    /// without one, a plan with a webhook is refused at submit.
    pub fn webhooks(mut self, sender: impl WebhookSender + 'static) -> Self {
        self.webhooks = Some(Arc::new(sender));
        self
    }

    /// Opens the state store.
    pub fn build(self) -> Result<Engine, EngineError> {
        let state_dir = self.state_dir.unwrap_or_else(default_state_dir);
        // Absolute, so that sealed paths and input links mean the same from
        // every task's directory.
        let state_dir = std::path::absolute(&state_dir).map_err(|source| EngineError::Io {
            path: state_dir.clone(),
            source,
        })?;
        let mut store = StateStore::open(&state_dir)?;
        store.checkpoint_in_background();
        Ok(Engine {
            store: Arc::new(Mutex::new(store)),
            journals: Arc::default(),
            state_dir,
            factories: self.factories,
            webhooks: self.webhooks,
        })
    }
}

/// `$TWINFLOW_STATE_DIR`, else `$XDG_STATE_HOME/twinflow`, else
/// `~/.local/state/twinflow`, else `.twinflow` in the current directory.
pub fn default_state_dir() -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("TWINFLOW_STATE_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return dir.join("twinflow");
    }
    if let Some(home) = var("HOME") {
        return home.join(".local/state/twinflow");
    }
    PathBuf::from(".twinflow")
}

/// A fresh run id: `<workflow>-<UTC yyyymmdd-hhmmss>-<4 hex>`.
pub fn new_run_id(workflow: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let noise = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!(
        "{workflow}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{noise:04x}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// A fresh run id for a run of the workflow file `path`: [`new_run_id`] of
/// its stem, with characters other than letters, digits, `-` and `_` made
/// `-` (`run` when nothing is left).
pub fn new_run_id_for_file(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    new_run_id(if clean.is_empty() { "run" } else { &clean })
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Reads the state store through the engine's own connection (`f` gets
    /// it shared, so it can only read). A long-lived process that answers
    /// others' queries (the daemon) must read this way: on network file
    /// systems the store is opened with exclusive locking, and a second
    /// connection, even in the same process, would find it busy. Runs hold
    /// the same connection to journal their tasks, so keep `f` short.
    pub fn read_state<T>(&self, f: impl FnOnce(&StateStore) -> T) -> T {
        f(&crate::lock(&self.store))
    }

    /// Starts running `plan` (its `workflow.run_id` names the run) on the
    /// current tokio runtime and returns at once: opens the run in the
    /// store (or takes it up with `options.resume`), lets the backends take
    /// back what an earlier process left running, then starts dispatching.
    pub async fn submit(&self, plan: Plan, options: RunOptions) -> Result<RunHandle, EngineError> {
        if self.webhooks.is_none()
            && let Some(hook) = crate::hooks::first_webhook(&plan)
        {
            return Err(EngineError::NoWebhookSender { hook });
        }
        let run = RunRef::new(&self.state_dir, &plan);
        let (tx, rx) = mpsc::unbounded_channel();
        let sink: Arc<dyn UpdateSink> = Arc::new(RunSink(tx.clone()));
        let default_slots = options.default_slots.unwrap_or_else(cores);
        let executors = self.executors(&plan, &sink, default_slots)?;
        refuse_prologues(&plan, &executors)?;
        refuse_shapes(&plan, &executors)?;
        refuse_big_groups(&plan, default_slots)?;
        refuse_user_caps(&plan, &executors)?;
        let images = images::resolve(&plan, &executors).await?;
        let opened = self.open_or_resume(&run, &plan, &options)?;
        images::record(
            &mut crate::lock(&self.store),
            &run.id,
            &plan,
            &images,
            crate::state::wall_ms(),
        )?;
        std::fs::create_dir_all(&run.dir).map_err(|source| EngineError::Io {
            path: run.dir.clone(),
            source,
        })?;
        let taken = self
            .reattach(&run, &plan, &executors, opened, options.resume)
            .await?;
        Ok(self.start_dispatch(run, plan, executors, images, &options, taken, (tx, rx)))
    }

    /// The run's executors; a local one without `slots` gets
    /// `default_slots`.
    fn executors(
        &self,
        plan: &Plan,
        sink: &Arc<dyn UpdateSink>,
        default_slots: u32,
    ) -> Result<Vec<Arc<dyn Executor>>, EngineError> {
        plan.executors
            .iter()
            .map(|spec| {
                let resolved;
                let spec = match &spec.backend {
                    twinflow_core::BackendConfig::Local(local) if local.slots.is_none() => {
                        let mut with = spec.clone();
                        with.backend =
                            twinflow_core::BackendConfig::Local(twinflow_core::LocalConfig {
                                slots: Some(default_slots),
                                ..local.clone()
                            });
                        resolved = with;
                        &resolved
                    }
                    _ => spec,
                };
                let kind = spec.backend.kind();
                let factory = self
                    .factories
                    .get(&kind)
                    .ok_or_else(|| EngineError::NoBackend {
                        executor: spec.name.clone(),
                        kind: kind.as_str(),
                    })?;
                factory
                    .create(spec, Arc::clone(sink))
                    .map_err(|e| EngineError::Executor {
                        executor: spec.name.clone(),
                        message: e.message,
                    })
            })
            .collect()
    }
}

/// Refuses a plan whose steps run on an executor with a `prologue` its
/// backend does not run ([`Executor::runs_prologue`]): running the tasks
/// without it would be a silent no-op of a setting the user wrote.
/// `executors` are the plan's, in the same order.
fn refuse_prologues(plan: &Plan, executors: &[Arc<dyn Executor>]) -> Result<(), EngineError> {
    let unapplied = plan.steps.iter().find_map(|s| {
        let index = s.executor.index();
        let spec = plan.executors.get(index)?;
        let prologue = spec.prologue.as_ref()?;
        let runs = executors.get(index).is_some_and(|e| e.runs_prologue());
        (!runs).then_some((spec, prologue))
    });
    match unapplied {
        Some((executor, prologue)) => Err(EngineError::PrologueNotApplied {
            executor: executor.name.clone(),
            kind: executor.backend.kind().as_str(),
            prologue: prologue.clone(),
        }),
        None => Ok(()),
    }
}

/// Refuses a plan with a step whose executor cannot run its tasks in the
/// shape they ask for ([`Executor::shape_refusal`]). `executors` are the
/// plan's, in the same order.
fn refuse_shapes(plan: &Plan, executors: &[Arc<dyn Executor>]) -> Result<(), EngineError> {
    for step in &plan.steps {
        let index = step.executor.index();
        let (Some(spec), Some(executor)) = (plan.executors.get(index), executors.get(index)) else {
            continue;
        };
        if let Some(reason) = executor.shape_refusal(step) {
            return Err(EngineError::ShapeRefused {
                step: step.name.clone(),
                executor: spec.name.clone(),
                kind: spec.backend.kind().as_str(),
                reason,
            });
        }
    }
    Ok(())
}

/// Refuses a plan with a coupling group whose members need more of their
/// executor's capacity at once than it has (`slots`, or `default_slots`
/// cores): its members start together or not at all, so it could never
/// start. (The compiler refuses this already when `slots` is written.)
fn refuse_big_groups(plan: &Plan, default_slots: u32) -> Result<(), EngineError> {
    let mut seen = std::collections::HashSet::new();
    for step in &plan.steps {
        let Some(group) = step.group.as_deref() else {
            continue;
        };
        if !seen.insert(group) {
            continue;
        }
        let Some(spec) = plan.executors.get(step.executor.index()) else {
            continue;
        };
        let capacity = spec.capacity(default_slots);
        let (Some(limit), twinflow_core::scheduler::TaskCost::Cpus) =
            (capacity.limit, capacity.cost)
        else {
            continue;
        };
        let need: u64 = plan
            .steps
            .iter()
            .filter(|s| s.group.as_deref() == Some(group))
            .map(|s| u64::from(s.resources.cpus.max(1)) * u64::from(s.resources.tasks.max(1)))
            .sum();
        if need > u64::from(limit) {
            return Err(EngineError::ShapeRefused {
                step: step.name.clone(),
                executor: spec.name.clone(),
                kind: spec.backend.kind().as_str(),
                reason: format!(
                    "has {limit} slot(s), and the members of group `{group}` need {need} at \
                     once (they start together); give the executor more `slots` or the \
                     members fewer `cpus`"
                ),
            });
        }
    }
    Ok(())
}

/// Refuses a plan whose steps run on a Slurm executor with a
/// `user_max_jobs` its backend does not enforce
/// ([`Executor::caps_user_jobs`]): a cap the user wrote is never left
/// unapplied. `executors` are the plan's, in the same order.
fn refuse_user_caps(plan: &Plan, executors: &[Arc<dyn Executor>]) -> Result<(), EngineError> {
    let unapplied = plan.steps.iter().find_map(|s| {
        let index = s.executor.index();
        let spec = plan.executors.get(index)?;
        let twinflow_core::BackendConfig::Slurm(slurm) = &spec.backend else {
            return None;
        };
        let cap = slurm.user_max_jobs?;
        let caps = executors.get(index).is_some_and(|e| e.caps_user_jobs());
        (!caps).then_some((spec, cap))
    });
    match unapplied {
        Some((executor, cap)) => Err(EngineError::UserMaxJobsNotEnforced {
            executor: executor.name.clone(),
            kind: executor.backend.kind().as_str(),
            cap,
        }),
        None => Ok(()),
    }
}

fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Cancels a run from anywhere (a signal handler, another task).
#[derive(Debug, Clone)]
pub struct Canceller(mpsc::UnboundedSender<Msg>);

impl Canceller {
    /// Asks the run to cancel: running tasks are killed (SIGTERM, then SIGKILL
    /// after a grace period), the rest will not start.
    pub fn cancel(&self) {
        let _ = self.0.send(Msg::Cancel);
    }
}

/// Sends operator actions (hold, release, kill) to a live run from
/// anywhere (the daemon's routes, a run's own socket).
#[derive(Debug, Clone)]
pub struct Controller {
    run_id: String,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Controller {
    /// Resolves the action's selectors against the run's tasks, journals
    /// it in the state store (who, when, what) and then applies it; two
    /// actions are applied in the order they reach the run. Refused when a
    /// selector matches nothing, when it applies to none of the selected
    /// tasks, or when the run is no longer live.
    pub async fn act(&self, action: OperatorAction) -> Result<ActionReport, ControlError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = crate::dispatch::control::ControlRequest { action, reply };
        let not_live = || ControlError::NotLive(self.run_id.clone());
        if self.tx.send(Msg::Control(request)).is_err() {
            return Err(not_live());
        }
        answer.await.unwrap_or_else(|_| Err(not_live()))
    }

    /// The tasks `selectors` name (as [`Controller::act`] resolves them)
    /// and where each one is now. Refused when a selector matches nothing,
    /// or when the run is no longer live.
    pub async fn select(
        &self,
        selectors: Vec<String>,
    ) -> Result<crate::selection::Selection, ControlError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = crate::dispatch::select::SelectRequest { selectors, reply };
        let not_live = || ControlError::NotLive(self.run_id.clone());
        if self.tx.send(Msg::Select(request)).is_err() {
            return Err(not_live());
        }
        answer.await.unwrap_or_else(|_| Err(not_live()))
    }
}

/// A submitted run: its events as they happen, and its outcome.
#[derive(Debug)]
pub struct RunHandle {
    run_id: String,
    run_dir: PathBuf,
    events: mpsc::UnboundedReceiver<RunEvent>,
    control: Canceller,
    join: tokio::task::JoinHandle<Result<RunSummary, EngineError>>,
    /// The rerun that took the run up again ([`RunOptions::rerun`]).
    rerun: Option<ActionReport>,
}

impl RunHandle {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Where the run's files are.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The next event; `None` once the run is over and every event was read.
    /// Events are kept until read, so read them or drop the handle's events
    /// with [`RunHandle::wait`].
    pub async fn next_event(&mut self) -> Option<RunEvent> {
        self.events.recv().await
    }

    /// What the rerun of [`RunOptions::rerun`] that took this ended run up
    /// again did (`None` for any other submission).
    pub fn taken_up_by(&self) -> Option<&ActionReport> {
        self.rerun.as_ref()
    }

    /// Something that cancels this run.
    pub fn canceller(&self) -> Canceller {
        self.control.clone()
    }

    /// Something that sends operator actions to this run.
    pub fn controller(&self) -> Controller {
        Controller {
            run_id: self.run_id.clone(),
            tx: self.control.0.clone(),
        }
    }

    /// Cancels the run (see [`Canceller::cancel`]).
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// Waits for the run to end.
    pub async fn wait(self) -> Result<RunSummary, EngineError> {
        drop(self.events);
        match self.join.await {
            Ok(result) => result,
            Err(e) => Err(EngineError::Aborted(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn run_ids_name_the_workflow_and_sort_by_time() {
        let id = new_run_id("forest-bird");
        assert!(id.starts_with("forest-bird-20"), "{id}");
        assert_eq!(id.len(), "forest-bird-".len() + 8 + 1 + 6 + 1 + 4);
    }
}
