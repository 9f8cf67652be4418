//! The executor contract: what the runtime asks of a backend (local processes,
//! Slurm, a cloud VM) and what a backend reports back.
//!
//! The runtime calls [`Executor::submit`] for one attempt of one task and
//! persists the returned [`Handle`] before it moves on, so a restarted process
//! can find the work again with [`Executor::reattach`]. Backends report
//! progress by pushing [`Update`]s into the [`UpdateSink`] they were built
//! with: a local executor as each child exits, a batch backend from one
//! polling loop that asks about all of its jobs at once (one `squeue`, never
//! one per job). [`Executor::cancel`] kills an attempt's whole process tree or
//! job; an `Update` with [`AttemptStatus::Cancelled`] (or an exit) follows.

use crate::{Resources, TaskId};
use std::fmt;
use std::path::PathBuf;

/// One attempt of one task: the key the runtime and its backends share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptKey {
    /// The task.
    pub task: TaskId,
    /// Its attempt, 0 for the first.
    pub attempt: u32,
}

/// Which run: its id and its directory. Every job of the run carries both in
/// its environment (`TWINFLOW_RUN_ID`, `TWINFLOW_RUN_DIR`), so a backend can
/// recognise leftovers of the run, and only of that run.
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    /// The run id.
    pub id: &'a str,
    /// Its directory.
    pub dir: &'a std::path::Path,
}

/// Everything a backend needs to start an attempt. The runtime has already
/// created `workdir`, staged the inputs under `workdir/inputs/` and created
/// the parent directories of the outputs and the directory of the logs.
#[derive(Debug, Clone)]
pub struct Job {
    /// Which attempt.
    pub key: AttemptKey,
    /// `step[key=value]@point`, for job names and messages.
    pub name: String,
    /// The shell script, run by `/bin/sh -e`.
    pub script: String,
    /// Environment added to the backend's own.
    pub env: Vec<(String, String)>,
    /// The task's working directory.
    pub workdir: PathBuf,
    /// Where its standard output goes. The backend creates the file, and
    /// may leave it uncreated while the task writes nothing to the stream
    /// (the local executor does): readers take a started attempt's missing
    /// log for an empty one.
    pub stdout: PathBuf,
    /// Where its standard error goes (created as `stdout` is).
    pub stderr: PathBuf,
    /// What it asked for.
    pub resources: Resources,
    /// Its step's name. Tasks of one step with the same resources may go out
    /// together (a Slurm job array).
    pub step: String,
    /// Its step's `pack:`: this many of the step's tasks share one
    /// allocation, `parallel` of them at a time; `None` leaves it to the
    /// backend (the Slurm executor packs tasks with a time limit under a
    /// minute, one after another).
    pub pack: Option<crate::PackSpec>,
    /// Its step's `launcher:` (`None`: the backend's default).
    pub launcher: Option<crate::Launcher>,
    /// The staged inputs: where each sits in `workdir` and whose output it
    /// is. A backend that runs elsewhere (the cloud executor) hands them
    /// over by name; one that shares this file system ignores them.
    pub inputs: Vec<JobInput>,
    /// The declared outputs, which the runtime seals once the attempt
    /// exited with 0.
    pub outputs: Vec<JobOutput>,
    /// Its coupling-group instance, for a member of one (`group:`); the
    /// members of an instance come one after another in one batch and
    /// start together (the local executor: concurrent processes; Slurm:
    /// one job, a step per member).
    pub group: Option<crate::JobGroup>,
}

/// One staged input file or directory of a [`Job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInput {
    /// Its path relative to the working directory (`inputs/<name>.csv`, `inputs/<name>/<i>.csv`: see
    /// [`crate::input_paths`]).
    pub rel: String,
    /// The task that produced it.
    pub producer: TaskId,
    /// The producer's output name.
    pub output: String,
    /// The sealed file or directory here that the link points to.
    pub source: PathBuf,
}

/// One declared output of a [`Job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    /// Its name (`outputs.<name>`).
    pub name: String,
    /// Its path relative to the working directory.
    pub rel: String,
}

/// How a backend finds an attempt again: opaque to the runtime, which only
/// stores it. A local pid with its start time, a Slurm job id, a VM and pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle(pub String);

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an attempt is, as its backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Accepted, waiting for resources.
    Queued,
    /// Handed on under a new handle, to be stored in place of the one
    /// [`Executor::submit`] returned: a backend that held the attempt in its
    /// own queue (the Slurm executor under `max_jobs`) has now submitted it.
    Submitted(Handle),
    /// Running.
    Running,
    /// Started, and waiting for data it needs to appear upstream (a data
    /// trigger: `wait_for:`), in the backend's words: what it waits for
    /// and when it looks again. Followed by `Running` once the data is
    /// there, or by an end.
    AwaitingData(String),
    /// Ended with this exit status (0 is success).
    Exited(i32),
    /// Killed by a signal it did not ask for (the backend's words).
    Signalled(String),
    /// Killed on the runtime's request.
    Cancelled,
    /// The backend has no record of it and it left no status.
    Lost,
    /// The backend could not run it (its words).
    Error(String),
}

impl AttemptStatus {
    /// Whether the attempt is over.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Self::Queued | Self::Submitted(_) | Self::Running | Self::AwaitingData(_)
        )
    }
}

/// A status change of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Which attempt.
    pub key: AttemptKey,
    /// Its new status.
    pub status: AttemptStatus,
}

/// Where backends push [`Update`]s. Sending never blocks.
pub trait UpdateSink: Send + Sync + fmt::Debug {
    /// Delivers one update; dropped silently once the runtime has gone.
    fn send(&self, update: Update);
}

/// A backend could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorError {
    /// Lowercase, carrying the command or path: "failed to run sbatch: ...".
    pub message: String,
    /// Whether trying again later may work (a busy controller, a dropped link).
    pub transient: bool,
}

impl fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExecutorError {}

impl ExecutorError {
    /// A permanent error.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }
}

/// A backend that runs attempts. Implementations are cheap to share
/// (`Arc<dyn Executor>`) and safe to call from several tasks.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + fmt::Debug {
    /// Starts an attempt and returns its handle once the backend has it.
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError>;

    /// Starts several attempts that became ready together, returning one
    /// result per job in the same order. A batch backend groups them (job
    /// arrays, packed allocations); the default submits one by one.
    async fn submit_batch(&self, jobs: Vec<Job>) -> Vec<Result<Handle, ExecutorError>> {
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            results.push(self.submit(job).await);
        }
        results
    }

    /// A hint after a batch: `pending` more attempts for this executor are
    /// being prepared and will be submitted soon. A batch backend may hold
    /// what it has until they come, to send them out together.
    fn more_coming(&self, pending: usize) {
        let _ = pending;
    }

    /// How many attempts beyond its capacity the runtime may hand it at
    /// once: it holds them (reporting [`AttemptStatus::Queued`]) and starts
    /// each itself the moment capacity frees up, without a round trip
    /// through the runtime (the local executor's supervisor starts the next
    /// task as one ends). 0, the default: none.
    fn holds_ahead(&self) -> u32 {
        0
    }

    /// Why this backend cannot run the tasks of `step` as the step shapes
    /// them, if it cannot: the runtime calls this for every step at submit
    /// and refuses the run with the reason rather than run the tasks in a
    /// shape they did not ask for. The default, [`default_shape_refusal`],
    /// refuses every parallel shape (several ranks or nodes, a per-node
    /// layout, whole nodes, a `launcher`, a parallel pack, a coupling
    /// group), which a backend must do something for; a backend that does
    /// overrides this, and still refuses what it does not run (through
    /// [`parallel_pack_refusal`] and [`group_refusal`]).
    fn shape_refusal(&self, step: &crate::StepSpec) -> Option<String> {
        default_shape_refusal(step)
    }

    /// Whether this backend runs its executor's `prologue` (shell lines such
    /// as `module load`) on the host before each task, outside any
    /// container. The runtime refuses a run whose steps use an executor
    /// with a prologue that its backend does not run, rather than run the
    /// tasks without it. False, the default.
    fn runs_prologue(&self) -> bool {
        false
    }

    /// Whether this backend keeps the user's jobs on its cluster under its
    /// executor's `user_max_jobs` (across all runs of one daemon). The
    /// runtime refuses a run whose steps use an executor with
    /// `user_max_jobs` that its backend does not enforce, rather than let
    /// the cap go unapplied. False, the default.
    fn caps_user_jobs(&self) -> bool {
        false
    }

    /// Whether a handle of this backend must reach the state store before
    /// anything else happens: true (the default) where the work outlives
    /// this process and is found again by its handle (a Slurm job, a VM
    /// task). A backend whose attempts [`Executor::reattach`] finds and ends
    /// without their handles (the local one: by their environment) returns
    /// false, and its handles are written with the next batch of changes.
    fn handles_must_be_durable(&self) -> bool {
        true
    }

    /// Prepares the image `container` names for the tasks of `steps` (steps
    /// of this executor that share that `container:`): picks the runtime
    /// (the spec's, else the executor's `container_runtime`), finds and
    /// fetches the image once on the host that runs the tasks and returns
    /// it with its digest. From then on the executor runs every job of
    /// those steps inside that image, never on the host. The runtime calls
    /// this at submit, once per distinct (executor, container), before any
    /// attempt is submitted, and refuses the run when it fails.
    ///
    /// The default refuses: an executor that does not apply containers
    /// says so rather than run the tasks on the host. Its message is a
    /// fragment the runtime completes with the executor's name and kind.
    async fn resolve_image(
        &self,
        container: &crate::ContainerSpec,
        steps: &[String],
    ) -> Result<crate::ResolvedImage, ExecutorError> {
        let _ = (container, steps);
        Err(ExecutorError::new("does not run containers yet"))
    }

    /// Takes back the attempts of `run` started by an earlier process
    /// of the runtime (found in its state store) and returns those it
    /// follows: their statuses arrive through the sink as usual. The others
    /// are gone: a backend that cannot follow work it did not start (a local
    /// process is not its child, so its exit status is out of reach) ends
    /// what is left of them, including attempts of the run whose handle was
    /// never recorded, and the runtime runs them again.
    async fn reattach(
        &self,
        run: RunRef<'_>,
        attempts: Vec<(AttemptKey, Handle)>,
    ) -> Result<Vec<AttemptKey>, ExecutorError>;

    /// Kills an attempt's whole process tree or job.
    async fn cancel(&self, key: AttemptKey, handle: &Handle) -> Result<(), ExecutorError>;

    /// Ends everything this executor still runs (the run is over or the
    /// process is going down) and waits until it has.
    async fn shutdown(&self);
}

/// Builds the executor of one plan executor (one `executors:` entry of a
/// workflow), for the backend kind it is registered under.
pub trait ExecutorFactory: Send + Sync + fmt::Debug {
    /// An executor for `spec`, reporting into `sink`.
    fn create(
        &self,
        spec: &crate::ExecutorSpec,
        sink: std::sync::Arc<dyn UpdateSink>,
    ) -> Result<std::sync::Arc<dyn Executor>, ExecutorError>;
}

/// What [`Executor::shape_refusal`] refuses by default: a step whose tasks
/// are more than one process on one node, that names a launcher, that packs
/// tasks to run several at a time, or that belongs to a coupling group. A
/// lowercase fragment the runtime completes with the step and executor.
pub fn default_shape_refusal(step: &crate::StepSpec) -> Option<String> {
    resource_shape_refusal(step)
        .or_else(|| parallel_pack_refusal(step))
        .or_else(|| group_refusal(step))
}

/// Refuses a `pack: {tasks: N, parallel: K}` with `K > 1` (one allocation
/// running K tasks at a time), for a backend that does not run it; a
/// `pack: N` (one after another) passes.
pub fn parallel_pack_refusal(step: &crate::StepSpec) -> Option<String> {
    let pack = step.pack.filter(|p| p.parallel > 1)?;
    Some(format!(
        "does not run parallel packs (`pack: {{tasks: {}, parallel: {}}}`) yet",
        pack.tasks, pack.parallel
    ))
}

/// Refuses a step in a coupling group (`group:`), for a backend that does
/// not co-schedule a group's members.
pub fn group_refusal(step: &crate::StepSpec) -> Option<String> {
    let group = step.group.as_deref()?;
    Some(format!(
        "does not co-schedule coupling groups yet (`group: {group}`): groups are not run yet"
    ))
}

/// Refuses a coupling group's member that runs in a container: no backend
/// binds the instance's `TWINFLOW_GROUP_DIR` into the image yet, so the
/// members could not meet there. Backends that run groups call it.
pub fn group_container_refusal(step: &crate::StepSpec) -> Option<String> {
    let (group, container) = (step.group.as_deref()?, step.container.as_ref()?);
    Some(format!(
        "does not run a coupling group's member in a container yet (`group: {group}`, \
         `container: {}`): the group directory is not bound into the image; drop `container:`",
        container.image
    ))
}

/// The ranks, nodes, whole nodes and launcher part of
/// [`default_shape_refusal`].
fn resource_shape_refusal(step: &crate::StepSpec) -> Option<String> {
    let r = &step.resources;
    if r.tasks > 1 {
        return Some(format!("does not start {} ranks per task yet", r.tasks));
    }
    if let Some(n) = r.nodes.filter(|n| *n > 1) {
        return Some(format!("does not run tasks across {n} nodes yet"));
    }
    if r.tasks_per_node.is_some() {
        return Some("does not place ranks per node (`tasks_per_node`) yet".to_owned());
    }
    if r.exclusive {
        return Some("does not give tasks whole nodes (`exclusive`) yet".to_owned());
    }
    step.launcher
        .map(|l| format!("does not run a `launcher: {}` yet", l.as_str()))
}
