//! Triggered and hand-set tasks in the dispatch loop (`twinflow trigger`,
//! `twinflow set`): what accepting such an action checks (no member of a
//! coupling group; for set succeeded, every declared output on disk in the
//! task's directory, sealed there as it is, or the whole action is
//! refused), the warnings a trigger gives (the dependencies its tasks start
//! without), recording a task set by hand ([`Action::Set`]), the note a
//! triggered task's queued state carries (who triggered it, which inputs
//! were missing when it was prepared), and what a resumed run takes from
//! the journal: the newest trigger or set naming a task decides (a rerun
//! after it undoes it). A set is in force when the store records the task
//! as it set it, or records nothing of it since the action (the process
//! ended before it wrote the task's new state; the outputs of a set
//! succeeded are written with the action): a task set succeeded keeps its
//! sealed outputs (while they are intact), one set failed fails again. A
//! task triggered that succeeded keeps its outputs too; one that did not
//! starts at once.
//!
//! [`Action::Set`]: twinflow_core::scheduler::Action::Set

use super::Dispatch;
use crate::artefact::{self, Sealed};
use crate::control::{ActionKind, ActionRecord, ControlError};
use crate::event::RunEvent;
use crate::journal::Op;
use crate::state::TaskState as Recorded;
use std::collections::HashMap;
use twinflow_core::TaskId;
use twinflow_core::scheduler::{Event, Operator, TaskState};

/// Why a task was triggered or set, for its journal: `set succeeded by
/// USER (action N)`.
pub(super) fn by_hand_text(kind: ActionKind, record_by: &str, seq: i64) -> String {
    let what = match kind {
        ActionKind::Trigger => "triggered",
        ActionKind::SetSucceeded => "set succeeded",
        ActionKind::SetFailed => "set failed",
        _ => kind.as_str(),
    };
    format!("{what} by {record_by} (action {seq})")
}

impl Dispatch {
    /// Refuses a trigger or a set that selects a coupling-group member:
    /// a group runs and fails as a whole.
    pub(super) fn refuse_group_members(
        &self,
        kind: ActionKind,
        selected: &[TaskId],
    ) -> Result<(), ControlError> {
        match selected
            .iter()
            .find(|&&t| self.scheduler.group_instance(t).is_some())
        {
            Some(&member) => Err(ControlError::Unsupported {
                run: self.run_id.clone(),
                kind: kind.as_str().to_owned(),
                why: format!(
                    "{} is a member of a coupling group; a group runs or fails as a whole, \
                     and its members cannot be triggered or set one by one",
                    self.plan.task_name(member)
                ),
            }),
            None => Ok(()),
        }
    }

    /// Checks a trigger or a set before it is journalled: each of the
    /// `applied` tasks set succeeded has every declared output (sealed
    /// here, into `self.set_sealed`). Returns the warnings for the
    /// operator (a trigger's missing dependencies).
    pub(super) fn check_by_hand(
        &mut self,
        kind: ActionKind,
        applied: &[TaskId],
    ) -> Result<Vec<String>, ControlError> {
        let refuse = |why: String| ControlError::Unsupported {
            run: self.run_id.clone(),
            kind: kind.as_str().to_owned(),
            why,
        };
        let mut warnings = Vec::new();
        match kind {
            ActionKind::SetSucceeded => {
                let mut sealed: Vec<(u32, Vec<Sealed>)> = Vec::with_capacity(applied.len());
                for &task in applied {
                    let workdir = self.paths(task, 0).workdir;
                    let mut artefacts = Vec::new();
                    for o in &self.plan.step_of(task).outputs {
                        let one = [(o.name.clone(), o.path.clone())];
                        let mut found = artefact::seal(&workdir, &one).map_err(|e| {
                            refuse(format!(
                                "{}: {e} (expected at {}); nothing was set",
                                self.plan.task_name(task),
                                workdir.join(&o.path).display()
                            ))
                        })?;
                        artefacts.append(&mut found);
                    }
                    sealed.push((task.0, artefacts));
                }
                self.set_sealed.extend(sealed);
            }
            ActionKind::Trigger => {
                for &task in applied {
                    let unfinished: Vec<String> = self
                        .plan
                        .dependencies(task)
                        .iter()
                        .filter(|&&d| self.scheduler.task_state(d) != TaskState::Succeeded)
                        .map(|&d| self.plan.task_name(d))
                        .collect();
                    if !unfinished.is_empty() {
                        warnings.push(format!(
                            "{} starts although {} did not succeed: inputs from them are missing",
                            self.plan.task_name(task),
                            unfinished.join(", ")
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(warnings)
    }

    /// The scheduler set `task` (it was `was`) by hand: its earlier end is
    /// forgotten; succeeded, its sealed outputs are recorded (with a cache
    /// key), failed, the give-up that follows carries why.
    pub(super) fn set_by_hand(&mut self, task: TaskId, was: TaskState, succeeded: bool) {
        let t = task.0;
        self.forget_end(task, was);
        self.sealed[task.index()] = None;
        self.precached.remove(&t);
        self.keys.remove(&t);
        self.prep.remove(&t);
        self.backlog.retain(|(q, _)| *q != task);
        self.rerun.remove(&t);
        self.in_flight.remove(&t);
        let why = self.by_hand.get(&t).cloned().unwrap_or_default();
        let name = self.plan.task_name(task);
        tracing::info!("run {}: {name} {why}", self.run_id);
        if !succeeded {
            self.set_sealed.remove(&t);
            self.reasons.insert(t, why);
            return;
        }
        let sealed = self.set_sealed.remove(&t).unwrap_or_default();
        let attempt = self.base[task.index()] + self.scheduler.attempt(task);
        self.journal.push(Op::Sealed {
            task: t,
            artefacts: sealed.clone(),
        });
        self.journal.push(Op::State {
            task: t,
            attempt,
            state: Recorded::Succeeded,
            reason: Some(why),
        });
        self.sealed[task.index()] = Some(sealed.into_boxed_slice());
        let key = self.cache_key(task);
        self.journal.push(Op::Cache {
            task: t,
            key,
            from: None,
        });
        self.from_cache.remove(&t);
        self.summary.ran += 1;
        self.emit(RunEvent::TaskSucceeded {
            task: t,
            name,
            step: self.plan.task(task).step.0,
            cached_from: None,
            seconds: 0.0,
        });
    }

    /// The reason a triggered task's queued state carries, and its
    /// succeeded state once it ran (see [`Dispatch::triggered_reason`]):
    /// who triggered it and which of its inputs were missing when it was
    /// launched (also logged as a warning). `None` for a task that was not
    /// triggered.
    pub(super) fn trigger_note(&mut self, task: TaskId) -> Option<String> {
        if !self.scheduler.is_triggered(task) {
            return None;
        }
        let why = self.by_hand.get(&task.0).cloned().unwrap_or_default();
        let why = match why.split_once("; started without") {
            Some((who, _)) => who.to_owned(),
            None => why,
        };
        let mut missing = Vec::new();
        for input in self.plan.inputs(task) {
            for producer in input.producers {
                let sealed = self.sealed[producer.index()]
                    .as_deref()
                    .is_some_and(|s| s.iter().any(|a| a.output == input.spec.output));
                if !sealed {
                    missing.push(format!(
                        "`{}` (output `{}` of {})",
                        input.spec.name,
                        input.spec.output,
                        self.plan.task_name(*producer)
                    ));
                }
            }
        }
        if missing.is_empty() {
            return Some(why);
        }
        let note = format!("{why}; started without input {}", missing.join(", "));
        tracing::warn!("run {}: {} {note}", self.run_id, self.plan.task_name(task));
        self.by_hand.insert(task.0, note.clone());
        Some(note)
    }

    /// The note of a triggered task's last launch, for its end.
    pub(super) fn triggered_reason(&self, task: TaskId) -> Option<String> {
        if !self.scheduler.is_triggered(task) {
            return None;
        }
        self.by_hand.get(&task.0).cloned()
    }

    /// The journal's triggers and sets, as events for a resumed run before
    /// its start (see the module documentation).
    pub(super) fn replay_by_hand(
        &mut self,
        rows: &[(ActionRecord, Vec<u32>)],
        states: &HashMap<u32, (Recorded, Option<i64>)>,
    ) -> Result<Vec<Event>, crate::EngineError> {
        let mut last: HashMap<u32, (ActionKind, String, i64)> = HashMap::new();
        for (record, tasks) in rows {
            for &t in tasks {
                match record.kind {
                    ActionKind::Trigger | ActionKind::SetSucceeded | ActionKind::SetFailed => {
                        let why = by_hand_text(record.kind, &record.by.user, record.seq);
                        last.insert(t, (record.kind, why, record.at_ms));
                    }
                    ActionKind::Rerun | ActionKind::RerunDownstream => {
                        last.remove(&t);
                    }
                    ActionKind::Hold | ActionKind::Release | ActionKind::Kill => {}
                }
            }
        }
        let mut last: Vec<(u32, (ActionKind, String, i64))> = last
            .into_iter()
            .filter(|(t, _)| (*t as usize) < self.plan.task_count())
            .collect();
        last.sort_unstable_by_key(|(t, _)| *t);
        let (mut done, mut failed, mut triggered) = (Vec::new(), Vec::new(), Vec::new());
        for (t, (kind, why, at_ms)) in last {
            let (state, changed) = match states.get(&t) {
                Some(&(state, changed)) => (Some(state), changed),
                None => (None, None),
            };
            // Nothing recorded of the task since the action.
            let unchanged = changed.is_none_or(|c| c <= at_ms);
            let task = TaskId(t);
            let set_succeeded = kind == ActionKind::SetSucceeded && unchanged;
            match kind {
                ActionKind::SetSucceeded | ActionKind::Trigger
                    if state == Some(Recorded::Succeeded) || set_succeeded =>
                {
                    let artefacts =
                        crate::lock(&self.store).write(|tx| tx.artefacts_of(&self.run_id, t))?;
                    let step = self.plan.step_of(task);
                    let intact = step.outputs.iter().all(|o| {
                        artefacts
                            .iter()
                            .any(|a| a.output == o.name && artefact::intact(a, &o.path))
                    });
                    if !intact {
                        // Its outputs changed since: it runs again.
                        continue;
                    }
                    self.sealed[task.index()] = Some(artefacts.into_boxed_slice());
                    if state != Some(Recorded::Succeeded) {
                        // The process ended before it recorded the set.
                        self.journal.push(Op::State {
                            task: t,
                            attempt: self.base[task.index()],
                            state: Recorded::Succeeded,
                            reason: Some(why),
                        });
                    }
                    self.summary.cached += 1;
                    self.from_cache.insert(t);
                    self.emit(RunEvent::TaskSucceeded {
                        task: t,
                        name: self.plan.task_name(task),
                        step: step_index(self, task),
                        cached_from: Some(self.run_id.clone()),
                        seconds: 0.0,
                    });
                    done.push(task);
                }
                ActionKind::SetFailed if state == Some(Recorded::Failed) || unchanged => {
                    self.by_hand.insert(t, why);
                    failed.push(task);
                }
                ActionKind::Trigger => {
                    self.by_hand.insert(t, why);
                    self.rerun.insert(t);
                    triggered.push(task);
                }
                _ => {}
            }
        }
        let mut events = Vec::new();
        if !done.is_empty() {
            events.push(Event::AlreadyDone(done));
        }
        if !failed.is_empty() {
            events.push(Event::Operator {
                op: Operator::SetFailed,
                tasks: failed,
            });
        }
        if !triggered.is_empty() {
            events.push(Event::Operator {
                op: Operator::Trigger,
                tasks: triggered,
            });
        }
        Ok(events)
    }
}

fn step_index(d: &Dispatch, task: TaskId) -> u32 {
    d.plan.task(task).step.0
}
