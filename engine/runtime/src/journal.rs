//! Changes waiting to be written: the dispatch loop pushes [`Op`]s as it
//! goes and writes them in one transaction when the most urgent of them is
//! due ([`Urgency`]): at once for what a crash must not lose (the handle of
//! a Slurm job), within [`SOON`] for task states, so that a run of many
//! short tasks writes one transaction per 20 ms rather than one per task.

use crate::artefact::Sealed;
use crate::state::wall_ms;
use crate::state::write::SealedRow;
use crate::state::{RunState, StateError, StateStore, TaskState};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use twinflow_core::{Plan, TaskId};

/// One change.
#[derive(Debug)]
pub(crate) enum Op {
    /// A task's new state.
    State {
        task: u32,
        attempt: u32,
        state: TaskState,
        reason: Option<String>,
    },
    /// The backend handle of a submitted attempt.
    Handle {
        task: u32,
        attempt: u32,
        handle: String,
    },
    /// The attempt began running.
    Running { task: u32 },
    /// An operator put the task back to wait (see `dispatch/rerun.rs`).
    Waiting { task: u32, reason: String },
    /// The task's cache key (and the run its result was reused from).
    Cache {
        task: u32,
        key: String,
        from: Option<String>,
    },
    /// Its sealed outputs.
    Sealed { task: u32, artefacts: Vec<Sealed> },
    /// The run ended.
    RunFinished { state: RunState },
}

/// How long a pending change may wait to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// "Began running" marks: a resumed run treats queued and running
    /// attempts alike, so they wait up to [`LAZY`].
    Lazy,
    /// Task states, cache keys, sealed outputs, handles a backend can do
    /// without: a killed run loses at most the last [`SOON`] of them (those
    /// tasks run again when it is resumed), and a busy run writes one
    /// transaction per [`SOON`] rather than one per task.
    Soon,
    /// Handles of work that outlives this process (a Slurm job), the end of
    /// the run: written before the loop waits or hands more work out.
    Now,
}

impl Urgency {
    fn wait(self) -> Duration {
        match self {
            Self::Lazy => LAZY,
            Self::Soon => SOON,
            Self::Now => Duration::ZERO,
        }
    }
}

/// How long "began running" marks may wait.
pub(crate) const LAZY: Duration = Duration::from_millis(200);
/// How long other changes may wait (see [`Urgency::Soon`]).
pub(crate) const SOON: Duration = Duration::from_millis(20);
/// Past this many pending changes they are written whatever their urgency.
const MAX_PENDING: usize = 4096;

/// The pending changes of one run, each with the wall-clock time (ms) it
/// happened at.
#[derive(Debug)]
pub(crate) struct Journal {
    plan: Arc<Plan>,
    run_id: String,
    ops: Vec<(i64, Op)>,
    /// When the pending changes must be written at the latest: the
    /// earliest of their deadlines.
    deadline: Option<Instant>,
}

impl Journal {
    pub(crate) fn new(plan: Arc<Plan>, run_id: String) -> Self {
        Self {
            plan,
            run_id,
            ops: Vec::new(),
            deadline: None,
        }
    }

    /// Adds a change; how urgent it is follows from its kind (a handle is
    /// [`Urgency::Now`]; see [`Journal::push_handle`]).
    pub(crate) fn push(&mut self, op: Op) {
        let urgency = match op {
            Op::Running { .. } => Urgency::Lazy,
            Op::State { .. } | Op::Waiting { .. } | Op::Cache { .. } | Op::Sealed { .. } => {
                Urgency::Soon
            }
            Op::Handle { .. } | Op::RunFinished { .. } => Urgency::Now,
        };
        self.push_with(op, urgency);
    }

    /// Adds a handle; `durable`: its backend needs it written at once (see
    /// `Executor::handles_must_be_durable`).
    pub(crate) fn push_handle(&mut self, task: u32, attempt: u32, handle: String, durable: bool) {
        let urgency = if durable { Urgency::Now } else { Urgency::Soon };
        self.push_with(
            Op::Handle {
                task,
                attempt,
                handle,
            },
            urgency,
        );
    }

    fn push_with(&mut self, op: Op, urgency: Urgency) {
        let urgency = if self.ops.len() >= MAX_PENDING {
            Urgency::Now
        } else {
            urgency
        };
        let due = Instant::now() + urgency.wait();
        self.deadline = Some(self.deadline.map_or(due, |held| held.min(due)));
        self.ops.push((wall_ms(), op));
    }

    /// Whether the pending changes must be written now.
    pub(crate) fn due(&self) -> bool {
        self.deadline.is_some_and(|at| at <= Instant::now())
    }

    /// When the pending changes must be written at the latest.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Writes everything pending in one transaction.
    pub(crate) fn flush(&mut self, store: &mut StateStore) -> Result<(), StateError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let (plan, run) = (&self.plan, self.run_id.as_str());
        let ops = &self.ops;
        store.write(|tx| {
            for (at, op) in ops {
                let now = *at;
                match op {
                    Op::State {
                        task,
                        attempt,
                        state,
                        reason,
                    } => {
                        let id = TaskId(*task);
                        let t = plan.task(id);
                        tx.task_state(
                            run,
                            *task,
                            &plan.task_name(id),
                            t.step.0,
                            plan.step_of(id).executor.0,
                            *attempt,
                            *state,
                            reason.as_deref(),
                            now,
                        )?;
                    }
                    Op::Handle {
                        task,
                        attempt,
                        handle,
                    } => tx.task_handle(run, *task, *attempt, handle, now)?,
                    Op::Running { task } => tx.task_running(run, *task)?,
                    Op::Waiting { task, reason } => tx.task_waiting(run, *task, reason)?,
                    Op::Cache { task, key, from } => {
                        tx.task_cache(run, *task, key, from.as_deref())?;
                    }
                    Op::Sealed { task, artefacts } => {
                        for a in artefacts {
                            let path = a.path.display().to_string();
                            tx.artefact(
                                run,
                                *task,
                                &SealedRow {
                                    output: &a.output,
                                    path: &path,
                                    size: a.size,
                                    sha256: &a.sha256,
                                    mtime_ns: a.mtime_ns,
                                },
                            )?;
                        }
                    }
                    Op::RunFinished { state } => tx.finish_run(run, *state, now)?,
                }
            }
            Ok(())
        })?;
        self.ops.clear();
        self.deadline = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> Journal {
        let yaml = "version: 1\nname: j\nexecutors: { here: { kind: local } }\n\
                    steps:\n  a:\n    executor: here\n    run: 'true'\n";
        let plan = twinflow_workflow::compile_str(
            "j.yaml",
            yaml,
            &twinflow_workflow::CompileOptions::default(),
        )
        .unwrap();
        Journal::new(Arc::new(plan), "r".to_owned())
    }

    fn state(state: TaskState) -> Op {
        Op::State {
            task: 0,
            attempt: 0,
            state,
            reason: None,
        }
    }

    /// The deadline, as an offset from a time taken just before the push.
    fn wait_after(j: &mut Journal, push: impl FnOnce(&mut Journal)) -> Duration {
        let before = Instant::now();
        push(j);
        j.deadline().unwrap().duration_since(before)
    }

    #[test]
    fn each_kind_of_change_waits_as_long_as_a_crash_can_afford() {
        let mut j = journal();
        assert_eq!(j.deadline(), None);
        // Running marks alone wait longest.
        let lazy = wait_after(&mut j, |j| j.push(Op::Running { task: 0 }));
        assert!(lazy >= LAZY && lazy < LAZY + SOON, "{lazy:?}");
        // A task state brings the deadline forward...
        let soon = wait_after(&mut j, |j| j.push(state(TaskState::Succeeded)));
        assert!(soon >= SOON && soon < LAZY, "{soon:?}");
        // ...and a later one does not push it back.
        let first = j.deadline();
        std::thread::sleep(Duration::from_millis(2));
        j.push(state(TaskState::Queued));
        assert_eq!(j.deadline(), first);
        // A handle the backend can do without waits like a state; one of a
        // Slurm job must be written before the loop waits.
        j.push_handle(0, 0, "pid:1:2".to_owned(), false);
        assert_eq!(j.deadline(), first);
        j.push_handle(0, 0, "slurm:7".to_owned(), true);
        assert!(j.due());
    }

    #[test]
    fn a_long_backlog_is_written_whatever_its_urgency() {
        let mut j = journal();
        for _ in 0..MAX_PENDING {
            j.push(Op::Running { task: 0 });
        }
        let lazy = j.deadline();
        j.push(Op::Running { task: 0 });
        assert!(j.deadline() < lazy);
        assert!(j.due());
    }

    #[test]
    fn changes_keep_the_time_they_happened_not_the_time_they_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        let mut j = journal();
        j.push(state(TaskState::Queued));
        std::thread::sleep(Duration::from_millis(60));
        j.push(state(TaskState::Succeeded));
        j.flush(&mut store).unwrap();
        assert_eq!(j.deadline(), None);
        let seconds = store.task("r", "a").unwrap().unwrap().seconds.unwrap();
        assert!(seconds >= 0.06, "{seconds} s between the two changes");
    }
}
