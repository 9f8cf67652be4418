//! The scheduler: a pure state machine over a [`Plan`]. The runtime feeds it
//! [`Event`]s with an explicit clock (`now`, milliseconds) and carries out the
//! [`Action`]s it returns; it never touches processes, files or time itself,
//! so every rule is tested without either.
//!
//! Rules: a task is ready when all its dependencies succeeded; it launches
//! when its executor has capacity (an [`ExecutorCapacity`] each: a limit and
//! what a task costs, given by the config, so the scheduler knows no
//! backend) and its cycle point is within `runahead` of the oldest
//! unfinished point; a failure is retried with exponential backoff while attempts are
//! left; a task exceeding its timeout is killed (and counts as a failure);
//! once a task has failed for good its dependents are skipped while
//! independent branches go on (`fail_fast` cancels everything instead);
//! cancelling kills what runs and finishes the run as cancelled.
//!
//! Operator actions ([`Event::Operator`], see [`Operator`]): a held task
//! never launches (a running one finishes; a held one that fails waits
//! before its retry), also when it becomes ready in the same turn; release
//! makes it eligible again. Kill stops a running attempt for good (no
//! retry): the task fails, its dependents are skipped, except held ones,
//! which wait until released (and are skipped then). A group member is
//! held, released and killed with its whole instance.
//!
//! Rerun ([`Operator::Rerun`]) applies to finished tasks that are not
//! coupling-group members: each goes back to waiting (a new attempt, with
//! its retries counted afresh) and runs once its dependencies have
//! succeeded. Its dependents that are unfinished or skipped wait for it
//! again (a running one is killed, [`KillReason::Rerun`], and runs again
//! as a new attempt); with `downstream` its finished dependents run again
//! too, transitively. A reset task with a dependency that failed for good
//! is skipped at once. The run's outcome counts the tasks' final states:
//! a failed task that reruns and succeeds no longer fails the run.
//!
//! Trigger ([`Operator::Trigger`]) starts a task that has not started
//! (waiting for its dependencies, or ready and held) now: it is queued on
//! its executor at once (a hold on it is lifted), and runs with its inputs
//! as they are. Its dependencies' later ends never queue it again, and a
//! dependency that fails later does not skip it; a retry of it does not
//! wait for them either. Set ([`Operator::SetSucceeded`],
//! [`Operator::SetFailed`], see `state/trigger.rs`) marks tasks that are
//! not running by hand ([`Action::Set`]): succeeded, its dependents become
//! ready as if it had run (skipped ones wait for their dependencies
//! again); failed, it fails for good and its dependents are skipped
//! (held ones wait), as for a kill. Neither applies to coupling-group
//! members.
//!
//! Coupling groups (`group:`, see [`crate::group_instances`]): the members
//! of a group instance become ready together (when each one's dependencies
//! are met), launch together in one batch and only when their summed cost
//! fits the executor's capacity at once, minus what its backend holds ahead
//! ([`SchedulerConfig::held_ahead`]), never some of them. When one member
//! fails, times out or is lost, the others are killed
//! ([`KillReason::Group`]); once all have ended, the instance as a whole is
//! retried (every member a new attempt) while the fewest retries of its
//! members allow, or every member gives up. A member that succeeded waits
//! ([`TaskState::RetryWait`]) until the whole instance has: only then are
//! its dependents released.

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
    /// These tasks already failed for good (an operator killed them in an
    /// earlier process of the run, and nothing reran them since); only
    /// before `Start`. Their dependents are skipped; members of coupling
    /// groups are left to run again.
    AlreadyFailed(Vec<TaskId>),
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
    /// An operator acted on these tasks (tasks it does not apply to, see
    /// [`Scheduler::applies`], are left as they are).
    Operator {
        /// What to do.
        op: Operator,
        /// To which tasks.
        tasks: Vec<TaskId>,
    },
}

/// What an operator does to tasks of a live run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// Do not launch them (running attempts finish).
    Hold,
    /// Let held tasks launch again.
    Release,
    /// Kill their running attempts; they fail for good.
    Kill,
    /// Run finished tasks again as new attempts (never from a cache: see
    /// [`Action::Reset`]). Their unfinished or skipped dependents wait for
    /// them (running ones are killed and run again); with `downstream`,
    /// their finished dependents run again too.
    Rerun {
        /// Also every finished dependent, transitively.
        downstream: bool,
    },
    /// Start tasks that have not started now, although their dependencies
    /// are not done (a hold on them is lifted).
    Trigger,
    /// Mark tasks that are not running as succeeded (the runtime sealed
    /// their outputs); their dependents become ready as if they had run.
    SetSucceeded,
    /// Mark tasks that are not running as failed for good; their
    /// dependents are skipped (held ones wait), as for a kill.
    SetFailed,
}

/// Why a task is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// It ran past its `timeout`.
    Timeout,
    /// The run was cancelled (by the user, or by `fail_fast`).
    Cancelled,
    /// An operator killed it ([`Operator::Kill`]): it fails, not retried.
    Operator,
    /// It depends on a task an operator reruns ([`Operator::Rerun`]): it
    /// goes back to waiting for it and runs again as a new attempt.
    Rerun,
    /// Another member of its coupling-group instance failed (`failed`):
    /// the instance is stopped as a whole, to be retried or given up.
    Group {
        /// The member whose failure stops the instance.
        failed: TaskId,
    },
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
    /// An operator's rerun ([`Operator::Rerun`]) put the task back to
    /// waiting; it was `was` (a running one is also killed, and its end
    /// reported as usual). Its next attempt must really run: the runtime
    /// does not satisfy it from a cache, and forgets its sealed outputs.
    Reset {
        /// The task.
        task: TaskId,
        /// Its state before.
        was: TaskState,
    },
    /// An operator set the task by hand ([`Operator::SetSucceeded`],
    /// [`Operator::SetFailed`]); it was `was`. Succeeded: the runtime
    /// records the outputs it sealed for it. Failed: an
    /// [`Action::GaveUp`] follows, and the skips of its dependents.
    Set {
        /// The task.
        task: TaskId,
        /// Its state before.
        was: TaskState,
        /// Whether it was set succeeded (else failed).
        succeeded: bool,
    },
    /// Call back with [`Event::Tick`] at this time (a retry or a timeout is due).
    WakeAt(Millis),
    /// Every task is finished: the run is over.
    RunFinished(RunOutcome),
}

/// What one task of a step costs of its executor's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCost {
    /// Its `cpus` (at least 1, at most the limit): capacity counts cores.
    Cpus,
    /// One: capacity counts tasks (jobs).
    One,
}

/// How much of one executor tasks may use at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorCapacity {
    /// The most in use at once; `None` is unlimited. A task costing more
    /// than the limit still runs, alone.
    pub limit: Option<u32>,
    /// What a task costs.
    pub cost: TaskCost,
}

impl ExecutorCapacity {
    /// No limit: the backend queues work itself.
    pub const UNLIMITED: Self = Self {
        limit: None,
        cost: TaskCost::One,
    };

    /// `cores` cores, each task taking its `cpus`.
    pub fn cores(cores: u32) -> Self {
        Self {
            limit: Some(cores.max(1)),
            cost: TaskCost::Cpus,
        }
    }
}

/// Tuning of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Stop at the first task that fails for good (cancel the rest).
    pub fail_fast: bool,
    /// Capacity per executor, by executor index; an executor without an
    /// entry is unlimited.
    pub capacity: Vec<ExecutorCapacity>,
    /// Delay before the first retry; doubled for each further one.
    pub backoff_base: Millis,
    /// Longest delay between retries.
    pub backoff_max: Millis,
    /// Emit [`Action::Ready`] when a task enters its executor's queue.
    pub announce_ready: bool,
    /// How much of each executor's capacity (by executor index) is attempts
    /// its backend holds ahead, not yet started
    /// ([`crate::Executor::holds_ahead`]): a coupling-group instance
    /// launches only when all its members fit into the rest at once, so
    /// that the backend starts them together.
    pub held_ahead: Vec<u32>,
}

impl SchedulerConfig {
    /// Default tuning for a plan: each executor's capacity as its settings
    /// give it ([`crate::ExecutorSpec::capacity`], `default_slots` being the
    /// machine's cores), computed once here; backoff 1 s doubling to 5 min.
    pub fn for_plan(plan: &crate::Plan, default_slots: u32) -> Self {
        Self::with_capacity(
            plan.executors
                .iter()
                .map(|e| e.capacity(default_slots))
                .collect(),
        )
    }

    /// The capacity of executor `e`.
    pub fn capacity(&self, e: usize) -> ExecutorCapacity {
        self.capacity
            .get(e)
            .copied()
            .unwrap_or(ExecutorCapacity::UNLIMITED)
    }

    /// Default tuning with these capacities, by executor index.
    pub fn with_capacity(capacity: Vec<ExecutorCapacity>) -> Self {
        Self {
            fail_fast: false,
            capacity,
            backoff_base: 1_000,
            backoff_max: 300_000,
            announce_ready: false,
            held_ahead: Vec::new(),
        }
    }
}
