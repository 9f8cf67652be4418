//! Reruns in the dispatch loop: what the runtime does when the scheduler
//! puts a task back to waiting ([`Action::Reset`]): the summary forgets its
//! earlier end, its sealed outputs are dropped (its consumers stage the
//! new ones), its next attempt never comes from the cache, and a running
//! dependent killed for the rerun ends as cancelled, not failed.
//!
//! [`Action::Reset`]: twinflow_core::scheduler::Action::Reset

use super::Dispatch;
use crate::event::RunEvent;
use crate::journal::Op;
use crate::state::TaskState as Recorded;
use twinflow_core::scheduler::{Outcome as TaskOutcome, TaskState};
use twinflow_core::{AttemptStatus, TaskId};

/// Whether `status` ends an attempt.
pub(super) fn ends(status: &AttemptStatus) -> bool {
    matches!(
        status,
        AttemptStatus::Exited(_)
            | AttemptStatus::Signalled(_)
            | AttemptStatus::Cancelled
            | AttemptStatus::Lost
            | AttemptStatus::Error(_)
    )
}

impl Dispatch {
    /// The scheduler reset `task` (it was `was`) for a rerun.
    pub(super) fn reset(&mut self, task: TaskId, was: TaskState) {
        let t = task.0;
        let name = self.plan.task_name(task);
        self.forget_end(task, was);
        self.rerun.insert(t);
        self.sealed[task.index()] = None;
        // What was looked up or prepared for its earlier attempt is stale.
        self.precached.remove(&t);
        self.keys.remove(&t);
        self.prep.remove(&t);
        self.backlog.retain(|(q, _)| *q != task);
        tracing::info!(
            "run {}: {name} goes back to waiting ({})",
            self.run_id,
            self.rerun_by
        );
        // A running attempt is recorded as cancelled when its kill ends
        // (`ended_for_rerun`), then as waiting.
        if was != TaskState::Running {
            self.journal.push(Op::Waiting {
                task: t,
                reason: self.rerun_by.clone(),
            });
        }
        self.emit(RunEvent::TaskReset {
            task: t,
            name,
            step: self.plan.task(task).step.0,
            was: state_name(was).to_owned(),
            by: self.rerun_by.clone(),
        });
    }

    /// The summary forgets how `task` ended before (it was `was`): it is
    /// reset or set by hand.
    pub(super) fn forget_end(&mut self, task: TaskId, was: TaskState) {
        let t = task.0;
        let name = self.plan.task_name(task);
        match was {
            TaskState::Succeeded => {
                if self.from_cache.remove(&t) {
                    self.summary.cached = self.summary.cached.saturating_sub(1);
                } else {
                    self.summary.ran = self.summary.ran.saturating_sub(1);
                }
            }
            TaskState::Failed => {
                self.summary.failed = self.summary.failed.saturating_sub(1);
                if let Some(i) = self.summary.failures.iter().position(|(n, _)| *n == name) {
                    self.summary.failures.remove(i);
                }
            }
            TaskState::Skipped => self.summary.skipped = self.summary.skipped.saturating_sub(1),
            TaskState::Cancelled => {
                self.summary.cancelled = self.summary.cancelled.saturating_sub(1);
            }
            TaskState::Waiting | TaskState::Ready | TaskState::Running | TaskState::RetryWait => {}
        }
    }

    /// The tasks of `selected` a rerun reaches although the scheduler does
    /// not hold them finished: in a run taken up again, those the store
    /// recorded as finished that wait to be launched or reused here (a
    /// rerun arriving right after another took the run up). With
    /// `downstream`, such dependents of theirs too, transitively. In task
    /// order.
    pub(super) fn not_back_yet(&self, selected: &[TaskId], downstream: bool) -> Vec<TaskId> {
        if self.finished_before.is_empty() {
            return Vec::new();
        }
        let waits = |t: TaskId| {
            self.finished_before.contains(&t.0)
                && matches!(
                    self.scheduler.task_state(t),
                    TaskState::Waiting | TaskState::Ready
                )
        };
        let mut chosen: std::collections::BTreeSet<u32> = selected
            .iter()
            .copied()
            .filter(|&t| waits(t))
            .map(|t| t.0)
            .collect();
        if downstream && !chosen.is_empty() {
            // Dependencies come first in a fixed point over the plan.
            let mut grew = true;
            while grew {
                grew = false;
                for t in 0..self.plan.task_count() as u32 {
                    let task = TaskId(t);
                    if !chosen.contains(&t)
                        && waits(task)
                        && self
                            .plan
                            .dependencies(task)
                            .iter()
                            .any(|d| chosen.contains(&d.0))
                    {
                        chosen.insert(t);
                        grew = true;
                    }
                }
            }
        }
        chosen.into_iter().map(TaskId).collect()
    }

    /// `task`, finished before the run was taken up and not launched here
    /// yet, is rerun: its next attempt really runs (never a reused result).
    pub(super) fn will_run_again(&mut self, task: TaskId) {
        let t = task.0;
        self.finished_before.remove(&t);
        self.rerun.insert(t);
        self.precached.remove(&t);
        tracing::info!(
            "run {}: {} runs again when its turn comes ({})",
            self.run_id,
            self.plan.task_name(task),
            self.rerun_by
        );
    }

    /// A running task killed because a task it depends on is rerun ended:
    /// its attempt is recorded as cancelled and the scheduler puts it back
    /// to waiting.
    pub(super) fn ended_for_rerun(&mut self, task: TaskId, attempt: u32) {
        let t = task.0;
        self.rerun_killed.remove(&t);
        self.in_flight.remove(&t);
        let key = self.key(task, attempt);
        self.journal.push(Op::State {
            task: t,
            attempt: key.attempt,
            state: Recorded::Cancelled,
            reason: Some(format!(
                "killed to run again after a task it depends on ({})",
                self.rerun_by
            )),
        });
        self.journal.push(Op::Waiting {
            task: t,
            reason: self.rerun_by.clone(),
        });
        self.finished(task, attempt, TaskOutcome::Killed);
    }
}

fn state_name(state: TaskState) -> &'static str {
    match state {
        TaskState::Waiting => "waiting",
        TaskState::Ready => "ready",
        TaskState::Running => "running",
        TaskState::RetryWait => "retrying",
        TaskState::Succeeded => "succeeded",
        TaskState::Failed => "failed",
        TaskState::Skipped => "skipped",
        TaskState::Cancelled => "cancelled",
    }
}
