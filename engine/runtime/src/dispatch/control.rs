//! Operator actions in the dispatch loop: an action is resolved to tasks,
//! refused when it applies to none of them, journalled in the state store
//! (who, when, what) and only then handed to the scheduler, ahead of the
//! executor reports of the same turn (a rerun first forgets the cache
//! entries of every task it resets, and a set failed those of its tasks,
//! in the same transaction; a trigger or a set is checked first, see
//! `trigger.rs`). A resumed run starts from its
//! journal: tasks held and not released are held again, a kill whose
//! attempt still runs is carried out, and triggers and sets are replayed
//! (`trigger.rs`).

use super::Dispatch;
use crate::control::{ActionKind, ActionReport, ControlError, OperatorAction};
use crate::state::wall_ms;
use twinflow_core::TaskId;
use twinflow_core::scheduler::{Event, Operator};

/// An action on the way into the loop, with where its answer goes.
#[derive(Debug)]
pub(crate) struct ControlRequest {
    pub action: OperatorAction,
    pub reply: tokio::sync::oneshot::Sender<Result<ActionReport, ControlError>>,
}

impl Dispatch {
    pub(super) fn on_control(&mut self, request: ControlRequest) {
        let result = self.accept(&request.action);
        let _ = request.reply.send(result);
    }

    fn accept(&mut self, action: &OperatorAction) -> Result<ActionReport, ControlError> {
        let selected = self.select(&action.selectors)?;
        let op = action.kind.operator();
        let by_hand = matches!(
            op,
            Operator::Trigger | Operator::SetSucceeded | Operator::SetFailed
        );
        if by_hand {
            self.refuse_group_members(action.kind, &selected)?;
        }
        let applied: Vec<TaskId> = selected
            .iter()
            .copied()
            .filter(|&t| self.scheduler.applies(op, t))
            .collect();
        // Finished tasks of a run taken up again whose result is not back.
        let not_back = match op {
            Operator::Rerun { downstream } => self.not_back_yet(&selected, downstream),
            _ => Vec::new(),
        };
        if applied.is_empty() && not_back.is_empty() {
            return Err(ControlError::nothing_applies(
                &self.run_id,
                action.kind,
                selected.len(),
            ));
        }
        // A rerun resets dependents too: all of them must be in reach.
        let reset: Vec<u32> = match op {
            Operator::Rerun { downstream } => {
                let reset = self.scheduler.rerun_closure(&applied, downstream);
                if let Some(&member) = reset
                    .iter()
                    .find(|&&t| self.scheduler.group_instance(t).is_some())
                {
                    return Err(ControlError::Unsupported {
                        run: self.run_id.clone(),
                        kind: action.kind.as_str().to_owned(),
                        why: format!(
                            "{} is a member of a coupling group; rerunning group members is not supported",
                            self.plan.task_name(member)
                        ),
                    });
                }
                let mut reset: Vec<u32> = reset.into_iter().map(|t| t.0).collect();
                reset.extend(not_back.iter().map(|t| t.0));
                reset
            }
            Operator::SetFailed => applied.iter().map(|t| t.0).collect(),
            _ => Vec::new(),
        };
        let warnings = if by_hand {
            self.check_by_hand(action.kind, &applied)?
        } else {
            Vec::new()
        };
        let mut chosen: Vec<TaskId> = applied.clone();
        chosen.extend(not_back.iter().copied().filter(|t| selected.contains(t)));
        chosen.sort_unstable();
        let names: Vec<String> = chosen.iter().map(|&t| self.plan.task_name(t)).collect();
        let numbers: Vec<u32> = chosen.iter().map(|t| t.0).collect();
        let run = self.run_id.clone();
        let journal_err = |message: String| ControlError::Journal { run, message };
        // The changes before it first, so that the store keeps their order.
        if let Err(e) = self.flush() {
            self.set_sealed.clear();
            return Err(journal_err(e.to_string()));
        }
        let seq = crate::lock(&self.store)
            .write(|tx| {
                let seq = tx.action(&crate::state::ActionRow {
                    run: &self.run_id,
                    at_ms: wall_ms(),
                    by: &action.by,
                    kind: action.kind,
                    selectors: &action.selectors,
                    tasks: &numbers,
                    names: &names,
                })?;
                tx.forget_cached(&self.run_id, &reset)?;
                // A task set succeeded: its outputs with the action, so
                // that a crash right after it loses neither.
                for &t in &numbers {
                    for a in self.set_sealed.get(&t).into_iter().flatten() {
                        let path = a.path.display().to_string();
                        tx.artefact(
                            &self.run_id,
                            t,
                            &crate::state::write::SealedRow {
                                output: &a.output,
                                path: &path,
                                size: a.size,
                                sha256: &a.sha256,
                                mtime_ns: a.mtime_ns,
                            },
                        )?;
                    }
                }
                Ok(seq)
            })
            .map_err(|e| journal_err(e.to_string()));
        let seq = match seq {
            Ok(seq) => seq,
            Err(e) => {
                self.set_sealed.clear();
                return Err(e);
            }
        };
        tracing::info!(
            "run {}: {} by {} (action {seq}): {}",
            self.run_id,
            action.kind.as_str(),
            action.by.user,
            names.join(", ")
        );
        if action.kind == ActionKind::Kill {
            for &t in &numbers {
                self.operator_killed
                    .insert(t, format!("killed by {} (action {seq})", action.by.user));
            }
        }
        if action.kind.is_rerun() {
            self.rerun_by = format!("rerun by {} (action {seq})", action.by.user);
        }
        for t in &not_back {
            self.will_run_again(*t);
        }
        if by_hand {
            let why = super::trigger::by_hand_text(action.kind, &action.by.user, seq);
            for &t in &numbers {
                self.by_hand.insert(t, why.clone());
                if action.kind == ActionKind::Trigger {
                    // It runs now: never served from the cache.
                    self.rerun.insert(t);
                }
            }
            // The dependents a set succeeded puts back to waiting.
            self.rerun_by = why;
        }
        if !applied.is_empty() {
            self.control.push(Event::Operator { op, tasks: applied });
        }
        Ok(ActionReport {
            seq,
            kind: action.kind,
            applied: names,
            skipped: selected.len() - numbers.len(),
            taken_up: false,
            warnings,
        })
    }

    /// The journal's effect on a resumed run, as events for before the
    /// start: holds still in force, and kills of attempts it adopted.
    pub(super) fn replay_journal(&mut self) -> Result<Vec<Event>, crate::EngineError> {
        let store = crate::lock(&self.store);
        let rows = store.action_rows(&self.run_id)?;
        // A rerun whose tasks have not launched since it was journalled
        // (the process died first) still decides: they really run, never
        // reused from another run's cache either.
        for (record, tasks) in rows.iter().filter(|(r, _)| r.kind.is_rerun()) {
            let reset = crate::control::plan_closure(
                &self.plan,
                tasks,
                record.kind == ActionKind::RerunDownstream,
            );
            let launched = store.launched_ms(&self.run_id, &reset)?;
            for t in reset {
                if launched.get(&t).is_none_or(|&at| at < record.at_ms) {
                    self.rerun.insert(t);
                    self.rerun_by = format!("rerun by {} (action {})", record.by.user, record.seq);
                }
            }
        }
        self.finished_before = store
            .tasks(&self.run_id)?
            .into_iter()
            .filter(|t| {
                use crate::state::TaskState as S;
                matches!(
                    t.state,
                    S::Succeeded | S::Failed | S::Skipped | S::Cancelled | S::Lost
                ) && !self.rerun.contains(&t.task)
            })
            .map(|t| t.task)
            .collect();
        let held = store.held_task_ids(&self.run_id)?;
        let adopted_ids: Vec<u32> = self.adopted.iter().map(|(t, _)| t.0).collect();
        let launched = store.launched_ms(&self.run_id, &adopted_ids)?;
        let states = store.task_states(&self.run_id)?;
        let killed = self.killed_for_good(&store, &rows, &adopted_ids, &states)?;
        drop(store);
        let mut events = Vec::new();
        if !held.is_empty() {
            events.push(Event::Operator {
                op: Operator::Hold,
                tasks: held.into_iter().map(TaskId).collect(),
            });
        }
        // The newest action naming an adopted task decides: a kill whose
        // attempt still runs is carried out now. Actions older than the
        // adopted attempt's launch were about an earlier attempt (a task
        // killed, then run again by a resume): they do not touch it.
        let adopted: std::collections::HashSet<u32> = adopted_ids.into_iter().collect();
        let mut last: std::collections::HashMap<u32, (ActionKind, String)> = Default::default();
        for (record, tasks) in &rows {
            let about_this_attempt =
                |t: &&u32| launched.get(t).is_none_or(|&launch| record.at_ms >= launch);
            for t in tasks
                .iter()
                .filter(|t| adopted.contains(t))
                .filter(about_this_attempt)
            {
                last.insert(
                    *t,
                    (
                        record.kind,
                        format!("killed by {} (action {})", record.by.user, record.seq),
                    ),
                );
            }
        }
        let kills: Vec<TaskId> = last
            .into_iter()
            .filter(|(_, (kind, _))| *kind == ActionKind::Kill)
            .map(|(t, (_, why))| {
                self.operator_killed.insert(t, why);
                TaskId(t)
            })
            .collect();
        if !kills.is_empty() {
            events.push(Event::Operator {
                op: Operator::Kill,
                tasks: kills,
            });
        }
        if !killed.is_empty() {
            for t in &killed {
                self.finished_before.remove(&t.0);
            }
            events.push(Event::AlreadyFailed(killed));
        }
        events.extend(self.replay_by_hand(&rows, &states)?);
        Ok(events)
    }

    /// The tasks an operator killed whose killed attempt is their latest
    /// and ended failed, with no action about them since (a rerun, a set,
    /// a trigger): a kill is for good, so a resume (or a rerun of other
    /// tasks taking the ended run up again) does not run them again.
    fn killed_for_good(
        &self,
        store: &crate::StateStore,
        rows: &[(crate::control::ActionRecord, Vec<u32>)],
        adopted: &[u32],
        states: &std::collections::HashMap<u32, (crate::TaskState, Option<i64>)>,
    ) -> Result<Vec<TaskId>, crate::EngineError> {
        let mut newest: std::collections::HashMap<u32, &crate::control::ActionRecord> =
            Default::default();
        for (record, tasks) in rows {
            for &t in tasks {
                newest.insert(t, record);
            }
        }
        let candidates: Vec<u32> = newest
            .iter()
            .filter(|(t, record)| {
                record.kind == ActionKind::Kill
                    && !adopted.contains(t)
                    && !self.rerun.contains(t)
                    && states
                        .get(t)
                        .is_some_and(|(state, _)| *state == crate::TaskState::Failed)
            })
            .map(|(&t, _)| t)
            .collect();
        let launched = store.launched_ms(&self.run_id, &candidates)?;
        let mut killed: Vec<TaskId> = candidates
            .into_iter()
            .filter(|t| {
                launched
                    .get(t)
                    .is_some_and(|&at| newest.get(t).is_some_and(|r| at <= r.at_ms))
            })
            .map(TaskId)
            .collect();
        killed.sort_unstable();
        Ok(killed)
    }
}
