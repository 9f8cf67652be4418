//! What a run tells its watchers: [`RunEvent`]s as they happen and a
//! [`RunSummary`] at the end. Both serialise to the JSON that
//! `twinflow run --json` prints, one object a line (`"event"` names the kind),
//! and read back from it (`twinflow watch` shows a daemon's run this way).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The version of the event stream (`twinflow run --json`), announced by
/// [`RunEvent::RunStarted`]. Fields may be added within a version; renaming
/// or removing one makes a new version.
pub const EVENTS_FORMAT: &str = "twinflow.events/v1";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every task succeeded.
    Succeeded,
    /// At least one task failed.
    Failed,
    /// Cancelled (Ctrl-C, [`crate::RunHandle::cancel`], or `fail_fast`).
    Cancelled,
}

/// One step's size, announced when a run starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSize {
    /// The step.
    pub name: String,
    /// Its number of tasks.
    pub tasks: u32,
}

/// Something that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RunEvent {
    /// The run began (or was resumed).
    RunStarted {
        /// The version of this event stream, [`EVENTS_FORMAT`].
        format: String,
        /// Its id.
        run_id: String,
        /// The workflow's name.
        workflow: String,
        /// Where its files are.
        run_dir: PathBuf,
        /// Its steps, in order.
        steps: Vec<StepSize>,
        /// Whether an interrupted run was taken up again.
        resumed: bool,
    },
    /// An attempt was handed to its executor.
    TaskSubmitted {
        /// Task id.
        task: u32,
        /// Task name.
        name: String,
        /// Step index.
        step: u32,
        /// Attempt (0 for the first).
        attempt: u32,
    },
    /// An attempt began running.
    TaskRunning {
        /// Task id.
        task: u32,
        /// Step index.
        step: u32,
    },
    /// A started attempt waits for external data to be published (a
    /// source task of a data trigger); sent again at each check.
    TaskAwaiting {
        /// Task id.
        task: u32,
        /// Task name.
        name: String,
        /// Step index.
        step: u32,
        /// What it waits for and when it looks again, in the backend's words.
        what: String,
    },
    /// A task is done and its outputs are sealed.
    TaskSucceeded {
        /// Task id.
        task: u32,
        /// Task name.
        name: String,
        /// Step index.
        step: u32,
        /// The run whose identical result was reused instead of running it.
        cached_from: Option<String>,
        /// Seconds it ran (0 when cached).
        seconds: f64,
    },
    /// An attempt failed.
    TaskFailed {
        /// Task id.
        task: u32,
        /// Task name.
        name: String,
        /// Step index.
        step: u32,
        /// The attempt (0 for the first, as in its log files' names and
        /// `twinflow logs --attempt`).
        attempt: u32,
        /// What went wrong.
        reason: String,
        /// Seconds until the next attempt, when it will be retried.
        retry_in: Option<f64>,
        /// Its standard error file, `None` (`null`) when the attempt wrote
        /// none (log files are created on their first byte; a task that was
        /// never started, or timed out silently, has none).
        stderr: Option<PathBuf>,
        /// Its standard output file, `None` (`null`) when it wrote none.
        #[serde(default)]
        stdout: Option<PathBuf>,
    },
    /// A task will not run.
    TaskSkipped {
        /// Task id.
        task: u32,
        /// Task name.
        name: String,
        /// Step index.
        step: u32,
        /// The failed task it depended on (none: the run was cancelled).
        because: Option<String>,
    },
    /// An operator's rerun put the task back to waiting: it runs again as
    /// a new attempt (a running one was killed first). Its earlier end no
    /// longer counts.
    TaskReset {
        /// Task id.
        task: u32,
        /// Task name.
        name: String,
        /// Step index.
        step: u32,
        /// Its state before: `succeeded`, `failed`, `skipped`,
        /// `cancelled`, `running`, `ready` or `retrying`.
        was: String,
        /// Who asked: `rerun by USER (action N)`.
        by: String,
    },
    /// Nothing runs and nothing is ready, yet tasks are unfinished (held,
    /// or waiting behind a failed dependency while the run is not over);
    /// sent once per stall.
    RunStalled {
        /// Tasks not finished.
        unfinished: u64,
    },
    /// The run is over.
    RunFinished(RunSummary),
    /// A hook (`on:`) failed: it exited non-zero, timed out, or its webhook
    /// was not delivered. Never fatal to the run; also in
    /// `<run dir>/logs/hooks.log`. May come after `run-finished` (the
    /// run's `finished` hooks run once it is over).
    HookFailed {
        /// The hook, e.g. `on.failure[0] (run: ./notify.sh)` or
        /// `step `x` on.retry[1] (webhook https://host/path)`.
        hook: String,
        /// The event that fired it (`failure`, `retry`, `success`,
        /// `stalled`, `finished`; empty for dropped fires).
        kind: String,
        /// The task whose event it was.
        task: Option<String>,
        /// What went wrong.
        reason: String,
    },
}

/// How a run went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Its id.
    pub run_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Where its files are.
    pub run_dir: PathBuf,
    /// Tasks in the plan.
    pub tasks: u64,
    /// Tasks that ran and succeeded.
    pub ran: u64,
    /// Tasks whose earlier result was reused.
    pub cached: u64,
    /// Tasks that failed for good.
    pub failed: u64,
    /// Tasks skipped because a dependency failed.
    pub skipped: u64,
    /// Tasks cancelled.
    pub cancelled: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Failed tasks: (name, reason), in the order they failed.
    pub failures: Vec<(String, String)>,
}
