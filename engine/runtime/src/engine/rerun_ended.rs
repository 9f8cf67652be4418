//! A rerun that takes an ended run up again ([`RunOptions::rerun`]): which
//! of the selected tasks it applies to (those the store records as
//! finished), which tasks it resets (those, and with `downstream` every
//! dependent, transitively), and journalling it in the same transaction
//! that marks the run running again, so that the journal alone decides
//! after a crash: the action is applied exactly once.
//!
//! [`RunOptions::rerun`]: super::RunOptions::rerun

use crate::control::{
    ActionKind, ActionReport, ControlError, OperatorAction, plan_closure, select_tasks,
};
use crate::state::{ActionRow, StateStore, TaskState, Tx, wall_ms};
use std::collections::HashSet;
use twinflow_core::{Plan, TaskId};

/// A rerun of an ended run, resolved against its store.
#[derive(Debug)]
pub(super) struct EndedRerun {
    action: OperatorAction,
    /// The selected tasks it applies to: numbers and names.
    applied: Vec<u32>,
    names: Vec<String>,
    skipped: usize,
    /// Every task it resets (its cache entries are forgotten and its next
    /// attempt really runs).
    pub(super) reset: Vec<u32>,
}

impl EndedRerun {
    /// Resolves `action` (a rerun) on run `run` of `plan` as `store`
    /// records it; refused as on a live run when a selector matches nothing
    /// or no selected task is finished.
    pub(super) fn resolve(
        store: &StateStore,
        run: &str,
        plan: &Plan,
        action: OperatorAction,
    ) -> Result<Self, crate::EngineError> {
        if !action.kind.is_rerun() {
            return Err(ControlError::Unsupported {
                run: run.to_owned(),
                kind: action.kind.as_str().to_owned(),
                why: "the run is not live; only a rerun takes an ended run up again".to_owned(),
            }
            .into());
        }
        let selected = select_tasks(plan, &action.selectors)?;
        let finished: HashSet<u32> = store
            .tasks(run)?
            .into_iter()
            .filter(|t| {
                matches!(
                    t.state,
                    TaskState::Succeeded
                        | TaskState::Failed
                        | TaskState::Skipped
                        | TaskState::Cancelled
                        | TaskState::Lost
                )
            })
            .map(|t| t.task)
            .collect();
        let applied: Vec<u32> = selected
            .iter()
            .map(|t| t.0)
            .filter(|t| finished.contains(t))
            .collect();
        if applied.is_empty() {
            return Err(ControlError::nothing_applies(run, action.kind, selected.len()).into());
        }
        let reset = plan_closure(plan, &applied, action.kind == ActionKind::RerunDownstream);
        if let Some(&member) = reset
            .iter()
            .find(|&&t| plan.step_of(TaskId(t)).group.is_some())
        {
            return Err(ControlError::Unsupported {
                run: run.to_owned(),
                kind: action.kind.as_str().to_owned(),
                why: format!(
                    "{} is a member of a coupling group; rerunning group members is not supported",
                    plan.task_name(TaskId(member))
                ),
            }
            .into());
        }
        Ok(Self {
            names: applied.iter().map(|&t| plan.task_name(TaskId(t))).collect(),
            skipped: selected.len() - applied.len(),
            applied,
            reset,
            action,
        })
    }

    /// Journals the action and forgets the cache entries of the tasks it
    /// resets, in the caller's transaction; the report to answer.
    pub(super) fn journal(&self, tx: &Tx<'_>, run: &str) -> rusqlite::Result<ActionReport> {
        let seq = tx.action(&ActionRow {
            run,
            at_ms: wall_ms(),
            by: &self.action.by,
            kind: self.action.kind,
            selectors: &self.action.selectors,
            tasks: &self.applied,
            names: &self.names,
        })?;
        tx.forget_cached(run, &self.reset)?;
        Ok(ActionReport {
            seq,
            kind: self.action.kind,
            applied: self.names.clone(),
            skipped: self.skipped,
            taken_up: true,
            warnings: Vec::new(),
        })
    }

    /// Who asked, as the reset tasks' messages say it.
    pub(super) fn by(&self, seq: i64) -> String {
        format!("rerun by {} (action {seq})", self.action.by.user)
    }
}
