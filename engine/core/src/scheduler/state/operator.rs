//! Operator actions in the scheduler: holding tasks out of their
//! executor's queue, releasing them, and killing running attempts for good.
//! See the scheduler's module documentation for the rules.

use super::{Scheduler, TaskState};
use crate::TaskId;
use crate::scheduler::{Action, KillReason, Operator};

/// Where a held task was kept out of its executor's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Park {
    /// On its way in (it became ready while held): enqueued on release.
    BeforeQueue,
    /// Taken off the queue's front by dispatch: put back on release.
    Queued,
}

impl Scheduler {
    /// Whether `op` does something to `task` now: hold to an unfinished
    /// task, release to a held one, kill to a running attempt or one
    /// waiting for its retry.
    pub fn applies(&self, op: Operator, task: TaskId) -> bool {
        let Some(&state) = self.state.get(task.index()) else {
            return false;
        };
        match op {
            Operator::Hold => !state.is_terminal(),
            Operator::Release => self.on_hold[task.index()],
            Operator::Kill => matches!(state, TaskState::Running | TaskState::RetryWait),
            Operator::Rerun { .. } => self.can_rerun(task.0),
            Operator::Trigger => self.can_trigger(task.0),
            Operator::SetSucceeded => self.can_set(task.0, TaskState::Succeeded),
            Operator::SetFailed => self.can_set(task.0, TaskState::Failed),
        }
    }

    /// Whether an operator holds `task`.
    pub fn is_held(&self, task: TaskId) -> bool {
        self.on_hold.get(task.index()).copied().unwrap_or(false)
    }

    /// Applies `op` to `tasks` (and to the whole instance of a group member).
    pub(super) fn operator(&mut self, op: Operator, tasks: &[TaskId], out: &mut Vec<Action>) {
        if let Operator::Rerun { downstream } = op {
            self.rerun(tasks, downstream, out);
            return;
        }
        if matches!(
            op,
            Operator::Trigger | Operator::SetSucceeded | Operator::SetFailed
        ) {
            self.trigger_or_set(op, tasks, out);
            return;
        }
        let mut all: Vec<u32> = Vec::with_capacity(tasks.len());
        for task in tasks {
            if task.index() >= self.state.len() {
                continue;
            }
            match self.instance_of(task.0) {
                Some(i) => all.extend(self.groups[i].spec.members.iter().map(|m| m.0)),
                None => all.push(task.0),
            }
        }
        for t in all {
            if !self.applies(op, TaskId(t)) {
                continue;
            }
            match op {
                Operator::Hold => self.on_hold[t as usize] = true,
                Operator::Release => self.release(t, out),
                Operator::Kill => self.kill(t, out),
                Operator::Rerun { .. }
                | Operator::Trigger
                | Operator::SetSucceeded
                | Operator::SetFailed => {}
            }
        }
    }

    fn release(&mut self, t: u32, out: &mut Vec<Action>) {
        self.on_hold[t as usize] = false;
        if let Some(failed) = self.doomed.remove(&t) {
            if self.state[t as usize] == TaskState::Waiting && !self.cancelled {
                self.finish_task(t, TaskState::Skipped);
                out.push(Action::Skip {
                    task: TaskId(t),
                    because: Some(TaskId(failed)),
                });
                self.skip_dependents_of(t, failed, out);
            }
            return;
        }
        match self.parked.remove(&t) {
            Some(Park::BeforeQueue) if self.state[t as usize] == TaskState::Ready => {
                self.enqueue(t);
            }
            Some(Park::Queued) if self.state[t as usize] == TaskState::Ready => {
                let e = self.step_exec[self.step_of[t as usize] as usize] as usize;
                self.ready[e].push_back(t);
            }
            _ => {}
        }
    }

    fn kill(&mut self, t: u32, out: &mut Vec<Action>) {
        match self.state[t as usize] {
            TaskState::Running if !self.killing.contains_key(&t) => {
                if let Some(i) = self.instance_of(t) {
                    self.groups[i].killed = true;
                }
                self.killing.insert(t, KillReason::Operator);
                out.push(Action::Kill {
                    task: TaskId(t),
                    attempt: self.attempt[t as usize],
                    reason: KillReason::Operator,
                });
            }
            TaskState::Running => {
                // Already being killed (a timeout, its group): it fails
                // for good when it ends.
                self.killing.insert(t, KillReason::Operator);
                if let Some(i) = self.instance_of(t) {
                    self.groups[i].killed = true;
                }
            }
            TaskState::RetryWait => match self.instance_of(t) {
                // Members still run: they are killed (this same action
                // reaches every member), and the instance gives up once
                // they ended.
                Some(i) if self.groups[i].running > 0 => self.groups[i].killed = true,
                _ => self.give_up(t, out),
            },
            _ => {}
        }
    }
}
