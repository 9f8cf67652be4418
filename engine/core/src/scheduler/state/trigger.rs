//! Triggering tasks ([`Operator::Trigger`]: they start now, whatever their
//! dependencies do) and setting tasks by hand ([`Operator::SetSucceeded`],
//! [`Operator::SetFailed`]). See the scheduler's module documentation for
//! the rules.

use super::{Scheduler, TaskState};
use crate::TaskId;
use crate::scheduler::{Action, Operator};

impl Scheduler {
    /// Whether `t` may be triggered: not started (waiting for its
    /// dependencies, or ready and held), not a coupling-group member, in a
    /// run that was not cancelled and is not over. A ready task that is
    /// not held is already queued on its executor.
    pub(super) fn can_trigger(&self, t: u32) -> bool {
        let state = self.state[t as usize];
        let unstarted =
            state == TaskState::Waiting || (state == TaskState::Ready && self.on_hold[t as usize]);
        unstarted && self.instance_of(t).is_none() && !self.cancelled && !self.finished
    }

    /// Whether `t` may be set to `to` by hand: not running, not already
    /// `to`, not a coupling-group member, in a run that was not cancelled
    /// and is not over.
    pub(super) fn can_set(&self, t: u32, to: TaskState) -> bool {
        let state = self.state[t as usize];
        state != TaskState::Running
            && state != to
            && self.instance_of(t).is_none()
            && !self.cancelled
            && !self.finished
    }

    /// Whether an operator triggered `task` (and it was not reset since).
    pub fn is_triggered(&self, task: TaskId) -> bool {
        self.triggered.contains(&task.0)
    }

    /// Applies a trigger or a set to those of `tasks` it applies to.
    pub(super) fn trigger_or_set(&mut self, op: Operator, tasks: &[TaskId], out: &mut Vec<Action>) {
        for task in tasks {
            if task.index() >= self.state.len() || !self.applies(op, *task) {
                continue;
            }
            match op {
                Operator::Trigger => self.trigger(task.0),
                Operator::SetSucceeded => self.set(task.0, true, out),
                Operator::SetFailed => self.set(task.0, false, out),
                Operator::Hold | Operator::Release | Operator::Kill | Operator::Rerun { .. } => {}
            }
        }
    }

    /// Queues `t` on its executor now (bypassing `runahead`); a hold on it
    /// is lifted.
    fn trigger(&mut self, t: u32) {
        self.unqueue(t);
        self.on_hold[t as usize] = false;
        self.doomed.remove(&t);
        self.triggered.insert(t);
        self.state[t as usize] = TaskState::Ready;
        self.enqueue(t);
    }

    /// Takes a ready task out of its executor's queue, the `runahead`
    /// lists and the held ones.
    fn unqueue(&mut self, t: u32) {
        if self.state[t as usize] != TaskState::Ready {
            return;
        }
        let e = self.step_exec[self.step_of[t as usize] as usize] as usize;
        self.ready[e].retain(|&q| q != t);
        for held in &mut self.held {
            held.retain(|&q| q != t);
        }
        self.parked.remove(&t);
    }

    /// Marks `t` succeeded or failed by hand.
    fn set(&mut self, t: u32, succeeded: bool, out: &mut Vec<Action>) {
        let was = self.state[t as usize];
        self.unqueue(t);
        self.doomed.remove(&t);
        self.triggered.remove(&t);
        if was.is_terminal() {
            self.terminal -= 1;
            let p = self.point[t as usize];
            if p != super::NO_POINT {
                self.unfinished_at_point[p as usize] += 1;
                self.oldest_point = self.oldest_point.min(p);
            }
        }
        // Not finished for the moment: a state that matches no queue.
        self.state[t as usize] = TaskState::Waiting;
        out.push(Action::Set {
            task: TaskId(t),
            was,
            succeeded,
        });
        if succeeded {
            let revived = self.skipped_because_of(t);
            self.succeed(t);
            for &d in &revived {
                self.reset(d, out);
            }
            self.recount(&revived, out);
        } else {
            if was == TaskState::Succeeded {
                self.unready_dependents(t);
            }
            self.give_up(t, out);
        }
    }

    /// The tasks skipped, transitively, because `t` did not succeed, and
    /// its held dependents waiting to be skipped: they wait for their
    /// dependencies again once it is set succeeded.
    fn skipped_because_of(&self, t: u32) -> Vec<u32> {
        let mut chosen: Vec<u32> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![t];
        while let Some(u) = stack.pop() {
            let (from, to) = (
                self.dependents_at[u as usize],
                self.dependents_at[u as usize + 1],
            );
            for i in from..to {
                let d = self.dependents[i as usize];
                let skipped = self.state[d as usize] == TaskState::Skipped;
                let doomed =
                    self.state[d as usize] == TaskState::Waiting && self.doomed.contains_key(&d);
                if (skipped || doomed) && seen.insert(d) {
                    chosen.push(d);
                    if skipped {
                        stack.push(d);
                    }
                }
            }
        }
        chosen.sort_unstable();
        chosen
    }

    /// A succeeded task is set failed: its dependents that are ready
    /// because of it (and were not triggered) wait again, to be skipped.
    fn unready_dependents(&mut self, t: u32) {
        let (from, to) = (
            self.dependents_at[t as usize],
            self.dependents_at[t as usize + 1],
        );
        for i in from..to {
            let d = self.dependents[i as usize];
            if self.state[d as usize] == TaskState::Ready && !self.triggered.contains(&d) {
                self.unqueue(d);
                self.state[d as usize] = TaskState::Waiting;
                self.remaining[d as usize] += 1;
            }
        }
    }
}
