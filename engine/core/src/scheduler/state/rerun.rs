//! Rerunning finished tasks in a live run ([`Operator::Rerun`]): which
//! tasks go back to waiting (the selected finished ones and, transitively,
//! their dependents: unfinished or skipped ones always, finished ones with
//! `downstream`), resetting them, and restarting a dependent that was
//! killed because of the rerun. See the scheduler's module documentation.

use super::{Scheduler, TaskState};
use crate::TaskId;
use crate::scheduler::{Action, KillReason, Operator};
use std::collections::HashSet;

impl Scheduler {
    /// Whether `t` may be rerun: finished, not a coupling-group member, in
    /// a run that was not cancelled and is not over.
    pub(super) fn can_rerun(&self, t: u32) -> bool {
        self.state[t as usize].is_terminal()
            && self.instance_of(t).is_none()
            && !self.cancelled
            && !self.finished
    }

    /// The tasks a rerun of `tasks` puts back to waiting, in task order:
    /// those of `tasks` it applies to (see [`Scheduler::applies`]) and
    /// their dependents, transitively: unfinished and skipped ones always,
    /// finished ones only with `downstream`. A coupling-group member among
    /// the dependents is returned too (the caller refuses such a rerun).
    pub fn rerun_closure(&self, tasks: &[TaskId], downstream: bool) -> Vec<TaskId> {
        let mut chosen = vec![false; self.state.len()];
        let mut stack: Vec<u32> = Vec::new();
        for task in tasks {
            if task.index() < self.state.len()
                && self.applies(Operator::Rerun { downstream }, *task)
                && !chosen[task.index()]
            {
                chosen[task.index()] = true;
                stack.push(task.0);
            }
        }
        while let Some(t) = stack.pop() {
            let (from, to) = (
                self.dependents_at[t as usize],
                self.dependents_at[t as usize + 1],
            );
            for i in from..to {
                let d = self.dependents[i as usize];
                let done = matches!(
                    self.state[d as usize],
                    TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
                );
                if !chosen[d as usize] && (downstream || !done) {
                    chosen[d as usize] = true;
                    stack.push(d);
                }
            }
        }
        chosen
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(t, _)| TaskId(t as u32))
            .collect()
    }

    /// Applies a rerun: resets every task of its closure (group members
    /// among them are left as they are), then skips those with a
    /// dependency that failed for good and readies those whose
    /// dependencies are done.
    pub(super) fn rerun(&mut self, tasks: &[TaskId], downstream: bool, out: &mut Vec<Action>) {
        let closure: Vec<u32> = self
            .rerun_closure(tasks, downstream)
            .into_iter()
            .map(|t| t.0)
            .filter(|&t| self.instance_of(t).is_none())
            .collect();
        if closure.is_empty() {
            return;
        }
        for &t in &closure {
            self.reset(t, out);
        }
        self.recount(&closure, out);
    }

    /// Counts the dependencies of reset tasks afresh: each waits for every
    /// dependency that has not succeeded (now or before); one with a
    /// dependency that failed for good is skipped, one whose dependencies
    /// are done becomes ready.
    pub(super) fn recount(&mut self, closure: &[u32], out: &mut Vec<Action>) {
        let members: HashSet<u32> = closure.iter().copied().collect();
        for &t in closure {
            self.remaining[t as usize] = 0;
        }
        let mut failed_dep: Vec<(u32, u32)> = Vec::new();
        for u in 0..self.state.len() as u32 {
            let (from, to) = (
                self.dependents_at[u as usize],
                self.dependents_at[u as usize + 1],
            );
            for i in from..to {
                let d = self.dependents[i as usize];
                if !members.contains(&d) {
                    continue;
                }
                let state = self.state[u as usize];
                if state != TaskState::Succeeded {
                    self.remaining[d as usize] += 1;
                }
                if state.is_terminal() && state != TaskState::Succeeded {
                    failed_dep.push((d, u));
                }
            }
        }
        for (d, u) in failed_dep {
            self.doom(d, u, out);
        }
        if self.started {
            for &t in closure {
                if self.state[t as usize] == TaskState::Waiting && self.remaining[t as usize] == 0 {
                    self.make_ready(t);
                }
            }
        }
    }

    /// Puts `t` back to waiting; a running attempt is killed first (it
    /// waits once it ended, see [`Scheduler::restart`]).
    pub(super) fn reset(&mut self, t: u32, out: &mut Vec<Action>) {
        let was = self.state[t as usize];
        self.doomed.remove(&t);
        // Reset, it waits for its dependencies again.
        self.triggered.remove(&t);
        match was {
            TaskState::Running => {
                if !self.killing.contains_key(&t) {
                    out.push(Action::Kill {
                        task: TaskId(t),
                        attempt: self.attempt[t as usize],
                        reason: KillReason::Rerun,
                    });
                }
                self.killing.insert(t, KillReason::Rerun);
                out.push(Action::Reset {
                    task: TaskId(t),
                    was,
                });
                return;
            }
            TaskState::Ready => {
                let e = self.step_exec[self.step_of[t as usize] as usize] as usize;
                self.ready[e].retain(|&q| q != t);
                for held in &mut self.held {
                    held.retain(|&q| q != t);
                }
                self.parked.remove(&t);
            }
            TaskState::Waiting => {}
            TaskState::RetryWait => self.next_round(t),
            TaskState::Succeeded
            | TaskState::Failed
            | TaskState::Skipped
            | TaskState::Cancelled => {
                self.terminal -= 1;
                let p = self.point[t as usize];
                if p != super::NO_POINT {
                    self.unfinished_at_point[p as usize] += 1;
                    self.oldest_point = self.oldest_point.min(p);
                }
                self.next_round(t);
            }
        }
        self.state[t as usize] = TaskState::Waiting;
        if was != TaskState::Waiting {
            out.push(Action::Reset {
                task: TaskId(t),
                was,
            });
        }
    }

    /// A new attempt whose retries count afresh.
    fn next_round(&mut self, t: u32) {
        self.attempt[t as usize] += 1;
        self.rerun_base.insert(t, self.attempt[t as usize]);
    }

    /// A reset task whose dependency `failed` did not succeed: skipped now
    /// (held: when released), with what depends on it.
    fn doom(&mut self, t: u32, failed: u32, out: &mut Vec<Action>) {
        let state = self.state[t as usize];
        let held = state == TaskState::Waiting && self.on_hold[t as usize];
        if state == TaskState::Running || held {
            self.doomed.entry(t).or_insert(failed);
        } else if self.state[t as usize] == TaskState::Waiting {
            self.finish_task(t, TaskState::Skipped);
            out.push(Action::Skip {
                task: TaskId(t),
                because: Some(TaskId(failed)),
            });
            self.skip_dependents_of(t, failed, out);
        }
    }

    /// A dependent killed because of a rerun ended: it waits for its
    /// dependencies again, as a new attempt.
    pub(super) fn restart(&mut self, t: u32, out: &mut Vec<Action>) {
        self.state[t as usize] = TaskState::Waiting;
        self.next_round(t);
        if let Some(failed) = self.doomed.remove(&t) {
            self.doom(t, failed, out);
        } else if self.remaining[t as usize] == 0 && self.started {
            self.make_ready(t);
        }
    }
}
