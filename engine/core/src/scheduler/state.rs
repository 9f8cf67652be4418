//! The scheduler's state: per-task vectors (one entry per task, no per-task
//! allocation), dependents in compressed rows, ready queues per executor,
//! tasks held back by `runahead` per cycle point, and lazy timers.
//! Coupling-group instances live in `groups.rs`.

mod groups;
mod operator;
mod rerun;
mod trigger;

use super::{Action, Event, KillReason, Millis, Outcome, RunOutcome, SchedulerConfig, TaskCost};
use crate::{Plan, TaskId};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

/// Where a task is in its life (as `twinflow watch` and the daemon's
/// `select` route report it, in kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    /// Some dependency has not succeeded yet.
    Waiting,
    /// Dependencies done; queued for capacity or held back by `runahead`.
    Ready,
    /// Launched (queued in its backend or running).
    Running,
    /// Failed; another attempt is scheduled.
    RetryWait,
    /// Done.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Will not run: a dependency failed.
    Skipped,
    /// Will not run, or was killed: the run was cancelled.
    Cancelled,
}

impl TaskState {
    /// The lowercase name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::RetryWait => "retry-wait",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// True once the task will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Skipped | Self::Cancelled
        )
    }
}

const NO_POINT: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Deadline,
    Retry,
}

/// The scheduler of one run. See the module documentation for its rules.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    state: Vec<TaskState>,
    attempt: Vec<u32>,
    remaining: Vec<u32>,
    dependents_at: Vec<u32>,
    dependents: Vec<u32>,
    step_of: Vec<u32>,
    point: Vec<u32>,
    step_exec: Vec<u32>,
    step_cost: Vec<u32>,
    step_retries: Vec<u32>,
    step_timeout: Vec<Option<Millis>>,
    in_use: Vec<u32>,
    ready: Vec<VecDeque<u32>>,
    runahead: Option<u32>,
    unfinished_at_point: Vec<u32>,
    oldest_point: u32,
    held: Vec<Vec<u32>>,
    announced: Vec<u32>,
    timers: BinaryHeap<Reverse<(Millis, Timer, u32, u32)>>,
    deadline: HashMap<u32, Millis>,
    killing: HashMap<u32, KillReason>,
    last_wake: Option<Millis>,
    terminal: usize,
    started: bool,
    cancelled: bool,
    failed_any: bool,
    finished: bool,
    /// Coupling-group instances (empty for a plan without groups).
    groups: Vec<groups::Instance>,
    /// The instance of each grouped task.
    group_of: HashMap<u32, u32>,
    /// Tasks an operator holds ([`super::Operator::Hold`]).
    on_hold: Vec<bool>,
    /// Held tasks kept out of their executor's queue, and where they were
    /// taken from (see `operator.rs`).
    parked: HashMap<u32, operator::Park>,
    /// Held waiting tasks whose dependency failed for good (that one):
    /// skipped once released.
    doomed: HashMap<u32, u32>,
    /// The attempt each rerun task's current round began with: its
    /// retries count from there (see `rerun.rs`).
    rerun_base: HashMap<u32, u32>,
    /// Tasks an operator triggered ([`super::Operator::Trigger`]) that
    /// have not been reset since: they run whatever their dependencies do
    /// (see `trigger.rs`).
    triggered: HashSet<u32>,
}

impl Scheduler {
    /// A scheduler for every task of `plan`.
    pub fn new(plan: &Plan, config: SchedulerConfig) -> Self {
        let n = plan.task_count();
        let points = plan.cycle.as_ref().map_or(1, |c| c.points.len().max(1));
        let mut remaining = vec![0u32; n];
        let mut counts = vec![0u32; n + 1];
        for (i, r) in remaining.iter_mut().enumerate() {
            let deps = plan.dependencies(TaskId(i as u32));
            *r = deps.len() as u32;
            for d in deps {
                counts[d.index() + 1] += 1;
            }
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let dependents_at = counts.clone();
        let mut fill = counts;
        let mut dependents = vec![0u32; dependents_at[n] as usize];
        for i in 0..n {
            for d in plan.dependencies(TaskId(i as u32)) {
                dependents[fill[d.index()] as usize] = i as u32;
                fill[d.index()] += 1;
            }
        }
        let mut step_of = vec![0u32; n];
        let mut point = vec![NO_POINT; n];
        let mut unfinished_at_point = vec![0u32; points];
        for (s, step) in plan.steps.iter().enumerate() {
            for id in step.tasks.clone() {
                step_of[id as usize] = s as u32;
                if step.cycling {
                    let p = (id - step.tasks.start) as usize % points;
                    point[id as usize] = p as u32;
                    unfinished_at_point[p] += 1;
                }
            }
        }
        let step_exec: Vec<u32> = plan.steps.iter().map(|s| s.executor.0).collect();
        let step_cost: Vec<u32> = plan
            .steps
            .iter()
            .map(|s| {
                let capacity = config.capacity(s.executor.index());
                match capacity.cost {
                    TaskCost::Cpus => {
                        // Every rank takes its `cpus`.
                        let cap = capacity.limit.unwrap_or(u32::MAX);
                        let cores = s.resources.cpus.saturating_mul(s.resources.tasks.max(1));
                        cores.clamp(1, cap.max(1))
                    }
                    TaskCost::One => 1,
                }
            })
            .collect();
        let executors = plan.executors.len();
        let step_retries: Vec<u32> = plan.steps.iter().map(|s| s.retries).collect();
        let (groups, group_of) = groups::build(plan, &step_cost, &step_retries);
        Self {
            groups,
            group_of,
            on_hold: vec![false; n],
            parked: HashMap::new(),
            doomed: HashMap::new(),
            rerun_base: HashMap::new(),
            triggered: HashSet::new(),
            state: vec![TaskState::Waiting; n],
            attempt: vec![0; n],
            remaining,
            dependents_at,
            dependents,
            step_of,
            point,
            step_exec,
            step_cost,
            step_retries,
            step_timeout: plan
                .steps
                .iter()
                .map(|s| s.timeout_seconds.map(|t| t * 1_000))
                .collect(),
            in_use: vec![0; executors],
            ready: vec![VecDeque::new(); executors],
            runahead: plan.cycle.as_ref().and_then(|c| c.runahead),
            oldest_point: 0,
            held: vec![Vec::new(); points],
            announced: Vec::new(),
            unfinished_at_point,
            timers: BinaryHeap::new(),
            deadline: HashMap::new(),
            killing: HashMap::new(),
            last_wake: None,
            terminal: 0,
            started: false,
            cancelled: false,
            failed_any: false,
            finished: false,
            config,
        }
    }

    /// The state of a task.
    pub fn task_state(&self, task: TaskId) -> TaskState {
        self.state[task.index()]
    }

    /// The current attempt of a task (0 for the first).
    pub fn attempt(&self, task: TaskId) -> u32 {
        self.attempt[task.index()]
    }

    /// True once the run is over.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Feeds one event at time `now`; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => {
                self.started = true;
                self.restart_partly_adopted(&mut out);
                for t in 0..self.state.len() as u32 {
                    if self.state[t as usize] == TaskState::Waiting
                        && self.remaining[t as usize] == 0
                    {
                        self.make_ready(t);
                    }
                }
            }
            Event::AlreadyDone(tasks) => {
                for task in tasks {
                    let t = task.0;
                    if !self.state[t as usize].is_terminal()
                        && self.state[t as usize] != TaskState::Running
                    {
                        match self.instance_of(t) {
                            Some(i) => self.member_done_before(i, t),
                            None => self.succeed(t),
                        }
                    }
                }
            }
            Event::AlreadyFailed(tasks) => {
                for task in tasks {
                    let t = task.0;
                    let Some(&state) = self.state.get(t as usize) else {
                        continue;
                    };
                    if !state.is_terminal()
                        && state != TaskState::Running
                        && self.instance_of(t).is_none()
                    {
                        self.failed_any = true;
                        self.finish_task(t, TaskState::Failed);
                        self.skip_dependents(t, &mut out);
                    }
                }
            }
            Event::Adopted(attempts) => {
                for (task, attempt) in attempts {
                    let t = task.0 as usize;
                    if self.state.get(t) != Some(&TaskState::Waiting) {
                        continue;
                    }
                    let step = self.step_of[t] as usize;
                    self.state[t] = TaskState::Running;
                    self.attempt[t] = attempt;
                    self.in_use[self.step_exec[step] as usize] += self.step_cost[step];
                    if let Some(i) = self.instance_of(task.0) {
                        self.groups[i].running += 1;
                    }
                    if let Some(timeout) = self.step_timeout[step] {
                        self.set_deadline(task.0, attempt, now + timeout);
                    }
                }
            }
            Event::Queued { task, attempt } => {
                if self.is_current(task.0, attempt) {
                    self.deadline.remove(&task.0);
                }
            }
            Event::Started { task, attempt } => {
                let t = task.0;
                if self.is_current(t, attempt)
                    && let Some(timeout) = self.step_timeout[self.step_of[t as usize] as usize]
                {
                    self.set_deadline(t, attempt, now + timeout);
                }
            }
            Event::Finished {
                task,
                attempt,
                outcome,
            } => {
                if self.is_current(task.0, attempt) {
                    self.finished_attempt(task.0, attempt, outcome, now, &mut out);
                }
            }
            Event::Tick => {}
            Event::Cancel => self.cancel(&mut out),
            Event::Operator { op, tasks } => self.operator(op, &tasks, &mut out),
        }
        self.fire_timers(now, &mut out);
        for t in std::mem::take(&mut self.announced) {
            if self.state[t as usize] == TaskState::Ready
                && !self.cancelled
                && !self.on_hold[t as usize]
            {
                out.push(Action::Ready {
                    task: TaskId(t),
                    attempt: self.attempt[t as usize],
                });
            }
        }
        if self.started && !self.cancelled {
            self.dispatch(now, &mut out);
        }
        self.check_finished(&mut out);
        if !self.finished
            && let Some(Reverse((at, ..))) = self.timers.peek()
            && self.last_wake != Some(*at)
        {
            self.last_wake = Some(*at);
            out.push(Action::WakeAt(*at));
        }
        out
    }

    fn is_current(&self, t: u32, attempt: u32) -> bool {
        self.state.get(t as usize) == Some(&TaskState::Running)
            && self.attempt[t as usize] == attempt
    }

    fn set_deadline(&mut self, t: u32, attempt: u32, at: Millis) {
        self.deadline.insert(t, at);
        self.timers.push(Reverse((at, Timer::Deadline, t, attempt)));
    }

    fn finished_attempt(
        &mut self,
        t: u32,
        attempt: u32,
        outcome: Outcome,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let step = self.step_of[t as usize] as usize;
        self.in_use[self.step_exec[step] as usize] -= self.step_cost[step];
        self.deadline.remove(&t);
        let kill = self.killing.remove(&t);
        if kill == Some(KillReason::Rerun) && !self.cancelled {
            self.restart(t, out);
            return;
        }
        if let Some(i) = self.instance_of(t)
            && !self.cancelled
            && kill != Some(KillReason::Cancelled)
        {
            self.member_ended(i, t, outcome == Outcome::Succeeded, now, out);
            return;
        }
        if outcome == Outcome::Succeeded && self.instance_of(t).is_none() {
            self.succeed(t);
            return;
        }
        if self.cancelled || kill == Some(KillReason::Cancelled) {
            self.finish_task(t, TaskState::Cancelled);
            return;
        }
        let round = attempt - self.rerun_base.get(&t).copied().unwrap_or(0).min(attempt);
        if round < self.step_retries[step] && kill != Some(KillReason::Operator) {
            let at = self.retry_at(attempt, now);
            self.state[t as usize] = TaskState::RetryWait;
            self.attempt[t as usize] = attempt + 1;
            self.timers
                .push(Reverse((at, Timer::Retry, t, attempt + 1)));
            out.push(Action::RetryAt {
                task: TaskId(t),
                attempt: attempt + 1,
                at,
            });
            return;
        }
        self.give_up(t, out);
    }

    /// The task failed for good: its dependents are skipped (or the run
    /// cancelled with `fail_fast`).
    fn give_up(&mut self, t: u32, out: &mut Vec<Action>) {
        self.failed_any = true;
        self.finish_task(t, TaskState::Failed);
        out.push(Action::GaveUp { task: TaskId(t) });
        if self.config.fail_fast {
            self.cancel(out);
        } else {
            self.skip_dependents(t, out);
        }
    }

    /// When attempt `attempt + 1` of a task that failed runs: exponential
    /// backoff from `now`.
    fn retry_at(&self, attempt: u32, now: Millis) -> Millis {
        let shift = attempt.min(20);
        let delay = self
            .config
            .backoff_base
            .saturating_mul(1 << shift)
            .min(self.config.backoff_max);
        now + delay
    }

    fn succeed(&mut self, t: u32) {
        self.finish_task(t, TaskState::Succeeded);
        let (from, to) = (
            self.dependents_at[t as usize],
            self.dependents_at[t as usize + 1],
        );
        for i in from..to {
            let d = self.dependents[i as usize];
            if self.state[d as usize].is_terminal() {
                // Finished before this (a rerun's dependent left as it
                // was, or one skipped): its count is made afresh if it
                // is ever reset.
                continue;
            }
            self.remaining[d as usize] -= 1;
            if self.remaining[d as usize] == 0
                && self.state[d as usize] == TaskState::Waiting
                && self.started
            {
                self.make_ready(d);
            }
        }
    }

    /// Skips what depends on `failed`, transitively; a held dependent
    /// waits (it is skipped once released, see `operator.rs`).
    fn skip_dependents(&mut self, failed: u32, out: &mut Vec<Action>) {
        self.skip_dependents_of(failed, failed, out);
    }

    fn skip_dependents_of(&mut self, from: u32, failed: u32, out: &mut Vec<Action>) {
        let mut stack = vec![from];
        while let Some(t) = stack.pop() {
            let (from, to) = (
                self.dependents_at[t as usize],
                self.dependents_at[t as usize + 1],
            );
            for i in from..to {
                let d = self.dependents[i as usize];
                if self.state[d as usize] == TaskState::Waiting && self.on_hold[d as usize] {
                    self.doomed.entry(d).or_insert(failed);
                } else if self.state[d as usize] == TaskState::Waiting {
                    self.finish_task(d, TaskState::Skipped);
                    out.push(Action::Skip {
                        task: TaskId(d),
                        because: Some(TaskId(failed)),
                    });
                    stack.push(d);
                }
            }
        }
    }

    fn cancel(&mut self, out: &mut Vec<Action>) {
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        for t in 0..self.state.len() as u32 {
            match self.state[t as usize] {
                TaskState::Waiting | TaskState::Ready | TaskState::RetryWait => {
                    self.finish_task(t, TaskState::Cancelled);
                    out.push(Action::Skip {
                        task: TaskId(t),
                        because: None,
                    });
                }
                TaskState::Running => {
                    self.killing.insert(t, KillReason::Cancelled);
                    out.push(Action::Kill {
                        task: TaskId(t),
                        attempt: self.attempt[t as usize],
                        reason: KillReason::Cancelled,
                    });
                }
                _ => {}
            }
        }
        for q in &mut self.ready {
            q.clear();
        }
    }

    /// Moves a task to a terminal state, keeping the runahead window current.
    fn finish_task(&mut self, t: u32, state: TaskState) {
        self.state[t as usize] = state;
        self.terminal += 1;
        let p = self.point[t as usize];
        if p == NO_POINT {
            return;
        }
        self.unfinished_at_point[p as usize] -= 1;
        let before = self.oldest_point;
        while (self.oldest_point as usize) < self.unfinished_at_point.len()
            && self.unfinished_at_point[self.oldest_point as usize] == 0
        {
            self.oldest_point += 1;
        }
        if let Some(ahead) = self.runahead
            && self.oldest_point != before
        {
            let limit = (self.oldest_point as usize + ahead as usize + 1).min(self.held.len());
            for point in (before as usize + ahead as usize + 1).min(limit)..limit {
                for task in std::mem::take(&mut self.held[point]) {
                    self.enqueue(task);
                }
            }
        }
    }

    fn make_ready(&mut self, t: u32) {
        self.state[t as usize] = TaskState::Ready;
        let p = self.point[t as usize];
        if let Some(ahead) = self.runahead
            && p != NO_POINT
            && p > self.oldest_point + ahead
        {
            self.held[p as usize].push(t);
            return;
        }
        self.enqueue(t);
    }

    /// Puts a ready task in its executor's queue; a group member, once
    /// every member of its instance is ready, as its instance (the leader).
    fn enqueue(&mut self, t: u32) {
        if self.on_hold[t as usize] {
            self.parked.insert(t, operator::Park::BeforeQueue);
            return;
        }
        if self.config.announce_ready {
            self.announced.push(t);
        }
        let t = match self.instance_of(t) {
            None => t,
            Some(i) => match self.instance_ready(i) {
                Some(leader) => leader,
                None => return,
            },
        };
        let e = self.step_exec[self.step_of[t as usize] as usize] as usize;
        self.ready[e].push_back(t);
    }

    fn fire_timers(&mut self, now: Millis, out: &mut Vec<Action>) {
        while let Some(Reverse((at, kind, t, attempt))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.last_wake == Some(at) {
                self.last_wake = None;
            }
            match kind {
                Timer::Deadline => {
                    if self.is_current(t, attempt)
                        && self.deadline.get(&t) == Some(&at)
                        && !self.killing.contains_key(&t)
                    {
                        self.killing.insert(t, KillReason::Timeout);
                        out.push(Action::Kill {
                            task: TaskId(t),
                            attempt,
                            reason: KillReason::Timeout,
                        });
                    }
                }
                Timer::Retry => {
                    if self.state[t as usize] == TaskState::RetryWait
                        && self.attempt[t as usize] == attempt
                    {
                        if self.remaining[t as usize] == 0 {
                            self.make_ready(t);
                        } else if self.triggered.contains(&t) {
                            // Triggered: its retry does not wait for its
                            // dependencies either.
                            self.state[t as usize] = TaskState::Ready;
                            self.enqueue(t);
                        } else {
                            // A group member restarted after a resume before
                            // its dependencies were done again.
                            self.state[t as usize] = TaskState::Waiting;
                        }
                    }
                }
            }
        }
    }

    /// Launches ready tasks, first come first served per executor, while capacity lasts.
    fn dispatch(&mut self, now: Millis, out: &mut Vec<Action>) {
        for e in 0..self.ready.len() {
            let capacity = self.config.capacity(e).limit;
            while let Some(&t) = self.ready[e].front() {
                if self.on_hold[t as usize] {
                    // Held after it was queued (a group instance is held
                    // as a whole, so its leader stands for it).
                    self.ready[e].pop_front();
                    self.parked.insert(t, operator::Park::Queued);
                    continue;
                }
                let step = self.step_of[t as usize] as usize;
                let group = self.instance_of(t);
                let (cost, cap) = match group {
                    None => (self.step_cost[step], capacity),
                    Some(i) => (self.groups[i].cost, self.started_capacity(e, capacity)),
                };
                if let Some(cap) = cap
                    && self.in_use[e] > 0
                    && self.in_use[e] + cost > cap
                {
                    break;
                }
                self.ready[e].pop_front();
                self.in_use[e] += cost;
                if let Some(i) = group {
                    self.launch_instance(i, now, out);
                    continue;
                }
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
    }

    fn check_finished(&mut self, out: &mut Vec<Action>) {
        if self.finished || !self.started || self.terminal < self.state.len() {
            return;
        }
        self.finished = true;
        // A task that failed and then ran again successfully (a rerun)
        // does not fail the run: its final state counts.
        self.failed_any = self.failed_any && self.state.contains(&TaskState::Failed);
        let outcome = if self.cancelled && !self.failed_any {
            RunOutcome::Cancelled
        } else if self.failed_any {
            RunOutcome::Failed
        } else {
            RunOutcome::Succeeded
        };
        out.push(Action::RunFinished(outcome));
    }
}
