//! Changes waiting to be written: the dispatch loop pushes [`Op`]s as it
//! goes and flushes them in one transaction before it waits again or hands
//! work to a backend.

use crate::artefact::Sealed;
use crate::dispatch::wall_ms;
use crate::state::write::SealedRow;
use crate::state::{StateError, StateStore};
use std::sync::Arc;
use twinflow_core::{Plan, TaskId};

/// One change.
#[derive(Debug)]
pub(crate) enum Op {
    /// A task's new state.
    State {
        task: u32,
        attempt: u32,
        state: &'static str,
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
    /// The task's cache key (and the run its result was reused from).
    Cache {
        task: u32,
        key: String,
        from: Option<String>,
    },
    /// Its sealed outputs.
    Sealed { task: u32, artefacts: Vec<Sealed> },
    /// The run ended.
    RunFinished { state: &'static str },
}

/// The pending changes of one run.
#[derive(Debug)]
pub(crate) struct Journal {
    plan: Arc<Plan>,
    run_id: String,
    ops: Vec<Op>,
    urgent: bool,
}

impl Journal {
    pub(crate) fn new(plan: Arc<Plan>, run_id: String) -> Self {
        Self {
            plan,
            run_id,
            ops: Vec::new(),
            urgent: false,
        }
    }

    pub(crate) fn push(&mut self, op: Op) {
        self.urgent |= !matches!(op, Op::Running { .. });
        self.ops.push(op);
    }

    /// Whether something pending matters after a crash. "Began running"
    /// marks alone do not (a resumed run treats queued and running attempts
    /// alike), so they may wait for the next write.
    pub(crate) fn urgent(&self) -> bool {
        self.urgent
    }

    /// Whether anything is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Writes everything pending in one transaction.
    pub(crate) fn flush(&mut self, store: &mut StateStore) -> Result<(), StateError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let now = wall_ms();
        let (plan, run) = (&self.plan, self.run_id.as_str());
        let ops = &self.ops;
        store.write(|tx| {
            for op in ops {
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
                            state,
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
                    Op::RunFinished { state } => tx.finish_run(run, state, now)?,
                }
            }
            Ok(())
        })?;
        self.ops.clear();
        self.urgent = false;
        Ok(())
    }
}
