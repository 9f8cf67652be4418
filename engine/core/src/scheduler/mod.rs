//! The scheduler: a pure state machine over a [`Plan`]. The runtime feeds it
//! [`Event`]s with an explicit clock (`now`, milliseconds) and carries out the
//! [`Action`]s it returns; it never touches processes, files or time itself,
//! so every rule is tested without either.
//!
//! Rules: a task is ready when all its dependencies succeeded; it launches
//! when its executor has capacity (cpus for local executors, jobs for the
//! others) and its cycle point is within `runahead` of the oldest unfinished
//! point; a failure is retried with exponential backoff while attempts are
//! left; a task exceeding its timeout is killed (and counts as a failure);
//! once a task has failed for good its dependents are skipped while
//! independent branches go on (`fail_fast` cancels everything instead);
//! cancelling kills what runs and finishes the run as cancelled.

mod state;
#[cfg(test)]
mod tests;

pub use state::{Scheduler, TaskState};

use crate::TaskId;

/// Milliseconds on the runtime's clock.
pub type Millis = u64;

/// How a task attempt ended, as its executor reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0 and every output present.
    Succeeded,
    /// It failed: non-zero exit, missing output, executor error.
    Failed {
        /// What went wrong, for the user.
        reason: String,
    },
    /// It was killed after a [`Action::Kill`].
    Killed,
    /// The backend forgot it and it left no status.
    Lost,
}

/// What the runtime tells the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Begin: launch what is ready.
    Start,
    /// These tasks are already done (a cached or resumed result); only before `Start`.
    AlreadyDone(Vec<TaskId>),
    /// These attempts are already running (an earlier process of the
    /// runtime started them and their backend follows them); only before
    /// `Start`. They hold capacity and end with `Finished` like any other.
    Adopted(Vec<(TaskId, u32)>),
    /// The attempt waits for resources in its backend (a pending Slurm job,
    /// a local task waiting for a slot shared with other runs): its timeout
    /// clock stops until it is `Started`.
    Queued {
        /// The task.
        task: TaskId,
        /// Its attempt (0 for the first).
        attempt: u32,
    },
    /// The attempt began running (for the timeout; launch time counts until
    /// then, unless it was `Queued`).
    Started {
        /// The task.
        task: TaskId,
        /// Its attempt (0 for the first).
        attempt: u32,
    },
    /// The attempt ended.
    Finished {
        /// The task.
        task: TaskId,
        /// Its attempt.
        attempt: u32,
        /// How.
        outcome: Outcome,
    },
    /// Time passed (the runtime woke up as asked by [`Action::WakeAt`]).
    Tick,
    /// The user cancelled the run.
    Cancel,
}

/// Why a task is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// It ran past its `timeout`.
    Timeout,
    /// The run was cancelled (by the user, or by `fail_fast`).
    Cancelled,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every task succeeded.
    Succeeded,
    /// At least one task failed for good (exit code 1).
    Failed,
    /// The run was cancelled (exit code 130).
    Cancelled,
}

/// What the scheduler asks the runtime to do (or to record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start this attempt of the task.
    Launch {
        /// The task.
        task: TaskId,
        /// Its attempt (0 for the first).
        attempt: u32,
    },
    /// Kill this attempt (its whole process tree or job); a `Finished` follows.
    Kill {
        /// The task.
        task: TaskId,
        /// Its attempt.
        attempt: u32,
        /// Why.
        reason: KillReason,
    },
    /// The task failed and will be tried again at `at`.
    RetryAt {
        /// The task.
        task: TaskId,
        /// The attempt that will run.
        attempt: u32,
        /// When.
        at: Millis,
    },
    /// The task failed for good.
    GaveUp {
        /// The task.
        task: TaskId,
    },
    /// The task will not run: a dependency failed or the run was cancelled.
    Skip {
        /// The task.
        task: TaskId,
        /// The failed task it depends on, if that is the reason.
        because: Option<TaskId>,
    },
    /// The task's dependencies are done and it waits in its executor's queue
    /// (only with [`SchedulerConfig::announce_ready`]): the runtime may
    /// prepare it before capacity frees up. A `Launch` may follow in the same
    /// batch.
    Ready {
        /// The task.
        task: TaskId,
        /// The attempt that will run.
        attempt: u32,
    },
    /// Call back with [`Event::Tick`] at this time (a retry or a timeout is due).
    WakeAt(Millis),
    /// Every task is finished: the run is over.
    RunFinished(RunOutcome),
}

/// Tuning of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Stop at the first task that fails for good (cancel the rest).
    pub fail_fast: bool,
    /// Capacity per executor, by executor index: cpus for a local executor,
    /// jobs for the others; `None` is unlimited.
    pub capacity: Vec<Option<u32>>,
    /// Delay before the first retry; doubled for each further one.
    pub backoff_base: Millis,
    /// Longest delay between retries.
    pub backoff_max: Millis,
    /// Emit [`Action::Ready`] when a task enters its executor's queue.
    pub announce_ready: bool,
}

impl SchedulerConfig {
    /// Default tuning for a plan: local executors get their `slots` (or
    /// `default_slots`, the machine's cores); Slurm executors no limit here,
    /// as they enforce `max_jobs` themselves (counting Slurm jobs, of which
    /// a packed one carries many tasks); cloud executors no limit; backoff
    /// 1 s doubling to 5 min.
    pub fn for_plan(plan: &crate::Plan, default_slots: u32) -> Self {
        use crate::BackendConfig;
        let capacity = plan
            .executors
            .iter()
            .map(|e| match &e.backend {
                BackendConfig::Local(l) => Some(l.slots.unwrap_or(default_slots).max(1)),
                BackendConfig::Slurm(_) | BackendConfig::Cloud(_) => None,
            })
            .collect();
        Self {
            fail_fast: false,
            capacity,
            backoff_base: 1_000,
            backoff_max: 300_000,
            announce_ready: false,
        }
    }
}
