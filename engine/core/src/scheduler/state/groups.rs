//! Coupling-group instances in the scheduler: readiness of an instance (all
//! its members ready), its launch as one batch within the capacity that
//! starts at once, stopping the rest when a member fails, and settling the
//! instance once all members ended (succeed all, retry all, or give up
//! all). See the scheduler's module documentation for the rules.

use super::{Scheduler, TaskState};
use crate::scheduler::{Action, KillReason, Millis};
use crate::{GroupInstance, Plan, TaskId};
use std::cmp::Reverse;
use std::collections::HashMap;

/// One group instance's scheduling state.
#[derive(Debug)]
pub(super) struct Instance {
    /// Its group and members (the first is the leader, which stands for
    /// the instance in its executor's ready queue).
    pub(super) spec: GroupInstance,
    /// The members' summed cost.
    pub(super) cost: u32,
    /// The fewest retries among its members' steps.
    retries: u32,
    /// Members ready for the next attempt.
    ready: u32,
    /// Members launched (or adopted) that have not ended.
    pub(super) running: u32,
    /// The first member of this attempt that did not succeed.
    failed: Option<TaskId>,
    /// The attempt is stopped to start over after a resume (some members
    /// were still running, others not): it costs no retry.
    restart: bool,
    /// Members reported done before the start (a resumed or cached result).
    done_before: Vec<u32>,
    /// An operator killed the current attempt: it is not retried.
    pub(super) killed: bool,
}

/// The instances of `plan` and the instance of each grouped task.
pub(super) fn build(
    plan: &Plan,
    step_cost: &[u32],
    step_retries: &[u32],
) -> (Vec<Instance>, HashMap<u32, u32>) {
    let specs = crate::group_instances(plan);
    let mut of = HashMap::new();
    let instances = specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let steps = || spec.members.iter().map(|&m| plan.task(m).step.index());
            for m in &spec.members {
                of.insert(m.0, i as u32);
            }
            Instance {
                cost: steps().map(|s| step_cost[s]).sum(),
                retries: steps().map(|s| step_retries[s]).min().unwrap_or(0),
                ready: 0,
                running: 0,
                failed: None,
                restart: false,
                done_before: Vec::new(),
                killed: false,
                spec,
            }
        })
        .collect();
    (instances, of)
}

impl Scheduler {
    /// The instance of task `t`, if it is in a coupling group (no lookup
    /// at all for a plan without groups).
    pub(super) fn instance_of(&self, t: u32) -> Option<usize> {
        if self.groups.is_empty() {
            return None;
        }
        self.group_of.get(&t).map(|&i| i as usize)
    }

    /// The coupling-group instance `task` is a member of, if any.
    pub fn group_instance(&self, task: TaskId) -> Option<&GroupInstance> {
        self.instance_of(task.0).map(|i| &self.groups[i].spec)
    }

    /// The member whose failure stopped the current attempt of `task`'s
    /// group instance, if one did (for the reason the runtime records).
    pub fn group_failure(&self, task: TaskId) -> Option<TaskId> {
        self.instance_of(task.0).and_then(|i| self.groups[i].failed)
    }

    /// One more member of instance `i` is ready; its leader once all are.
    pub(super) fn instance_ready(&mut self, i: usize) -> Option<u32> {
        let inst = &mut self.groups[i];
        inst.ready += 1;
        if (inst.ready as usize) < inst.spec.members.len() {
            return None;
        }
        inst.ready = 0;
        inst.spec.members.first().map(|m| m.0)
    }

    /// The capacity of executor `e` that starts at once: `capacity` less
    /// what its backend holds ahead.
    pub(super) fn started_capacity(&self, e: usize, capacity: Option<u32>) -> Option<u32> {
        let ahead = self.config.held_ahead.get(e).copied().unwrap_or(0);
        capacity.map(|c| c.saturating_sub(ahead).max(1))
    }

    /// Launches every member of instance `i`, in step order, in one batch
    /// (its cost is already counted).
    pub(super) fn launch_instance(&mut self, i: usize, now: Millis, out: &mut Vec<Action>) {
        let inst = &mut self.groups[i];
        inst.failed = None;
        inst.running = inst.spec.members.len() as u32;
        for k in 0..self.groups[i].spec.members.len() {
            let t = self.groups[i].spec.members[k].0;
            let step = self.step_of[t as usize] as usize;
            self.state[t as usize] = TaskState::Running;
            let attempt = self.attempt[t as usize];
            if let Some(timeout) = self.step_timeout[step] {
                self.set_deadline(t, attempt, now + timeout);
            }
            out.push(Action::Launch {
                task: TaskId(t),
                attempt,
            });
        }
    }

    /// Member `t` of instance `i` ended (`ok`: it succeeded). The first
    /// that did not succeed stops the others; once none runs, the instance
    /// settles.
    pub(super) fn member_ended(
        &mut self,
        i: usize,
        t: u32,
        ok: bool,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        // Ended; it waits for the rest of its instance.
        self.state[t as usize] = TaskState::RetryWait;
        let inst = &mut self.groups[i];
        inst.running = inst.running.saturating_sub(1);
        if !ok && inst.failed.is_none() {
            inst.failed = Some(TaskId(t));
            self.stop_others(i, TaskId(t), out);
        }
        if self.groups[i].running == 0 {
            self.settle(i, now, out);
        }
    }

    /// Kills the members of instance `i` still running, because `failed`
    /// did not succeed.
    fn stop_others(&mut self, i: usize, failed: TaskId, out: &mut Vec<Action>) {
        for k in 0..self.groups[i].spec.members.len() {
            let m = self.groups[i].spec.members[k].0;
            if self.state[m as usize] != TaskState::Running || self.killing.contains_key(&m) {
                continue;
            }
            let reason = KillReason::Group { failed };
            self.killing.insert(m, reason);
            out.push(Action::Kill {
                task: TaskId(m),
                attempt: self.attempt[m as usize],
                reason,
            });
        }
    }

    /// Every member of instance `i` ended: all succeeded, or the instance
    /// is retried as a whole, or every member gives up.
    fn settle(&mut self, i: usize, now: Millis, out: &mut Vec<Action>) {
        let members: Vec<u32> = self.groups[i].spec.members.iter().map(|m| m.0).collect();
        if self.groups[i].failed.is_none() {
            for &m in &members {
                self.succeed(m);
            }
            return;
        }
        let attempt = members
            .iter()
            .map(|&m| self.attempt[m as usize])
            .max()
            .unwrap_or(0);
        let restart = std::mem::take(&mut self.groups[i].restart);
        let killed = std::mem::take(&mut self.groups[i].killed);
        if restart || (attempt < self.groups[i].retries && !killed) {
            let at = if restart {
                now
            } else {
                self.retry_at(attempt, now)
            };
            for &m in &members {
                self.state[m as usize] = TaskState::RetryWait;
                self.attempt[m as usize] = attempt + 1;
                self.timers
                    .push(Reverse((at, super::Timer::Retry, m, attempt + 1)));
                out.push(Action::RetryAt {
                    task: TaskId(m),
                    attempt: attempt + 1,
                    at,
                });
            }
            return;
        }
        self.failed_any = true;
        for &m in &members {
            self.finish_task(m, TaskState::Failed);
            out.push(Action::GaveUp { task: TaskId(m) });
        }
        if self.config.fail_fast {
            self.cancel(out);
        } else {
            for &m in &members {
                self.skip_dependents(m, out);
            }
        }
    }

    /// Member `t` of instance `i` is done from before the start; the
    /// instance is, once every member is (else its members run again).
    pub(super) fn member_done_before(&mut self, i: usize, t: u32) {
        let inst = &mut self.groups[i];
        if !inst.done_before.contains(&t) {
            inst.done_before.push(t);
        }
        if inst.done_before.len() < inst.spec.members.len() {
            return;
        }
        let members: Vec<u32> = inst.spec.members.iter().map(|m| m.0).collect();
        for m in members {
            if !self.state[m as usize].is_terminal() {
                self.succeed(m);
            }
        }
    }

    /// At the start: an instance of which some members were adopted
    /// running and others not (an earlier process stopped in between)
    /// cannot go on as one; its running members are killed and it starts
    /// over, without counting a retry.
    pub(super) fn restart_partly_adopted(&mut self, out: &mut Vec<Action>) {
        for i in 0..self.groups.len() {
            let n = self.groups[i].spec.members.len() as u32;
            let running = self.groups[i].running;
            if running == 0 || running == n {
                continue;
            }
            let members: Vec<u32> = self.groups[i].spec.members.iter().map(|m| m.0).collect();
            let Some(&absent) = members
                .iter()
                .find(|&&m| self.state[m as usize] != TaskState::Running)
            else {
                continue;
            };
            for &m in &members {
                if self.state[m as usize] == TaskState::Waiting {
                    self.state[m as usize] = TaskState::RetryWait;
                }
            }
            self.groups[i].restart = true;
            self.groups[i].failed = Some(TaskId(absent));
            self.stop_others(i, TaskId(absent), out);
        }
    }
}
