//! The journal of operator actions in the state store (schema version 2):
//! writing one before it is applied (a rerun, or a set failed, also
//! forgets its tasks' cache entries), reading a run's actions back, and
//! the held tasks that follow from them (a trigger lifts a hold).

use super::write::Tx;
use super::{StateError, StateStore, TaskState};
use crate::control::{ActionKind, ActionRecord, Actor};
use rusqlite::params;
use std::collections::{BTreeMap, HashSet};

/// An action as it is journalled.
#[derive(Debug)]
pub(crate) struct ActionRow<'a> {
    pub run: &'a str,
    pub at_ms: i64,
    pub by: &'a Actor,
    pub kind: ActionKind,
    pub selectors: &'a [String],
    /// Task numbers it applies to, and their names.
    pub tasks: &'a [u32],
    pub names: &'a [String],
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

impl Tx<'_> {
    /// Appends an action; returns its number.
    pub(crate) fn action(&self, row: &ActionRow<'_>) -> rusqlite::Result<i64> {
        self.raw().execute(
            "INSERT INTO actions (run_id, at_ms, user, uid, kind, selectors, tasks, names)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                row.run,
                row.at_ms,
                row.by.user,
                row.by.uid,
                row.kind.as_str(),
                json(row.selectors),
                json(row.tasks),
                json(row.names),
            ],
        )?;
        Ok(self.raw().last_insert_rowid())
    }

    /// Forgets the cache entries of `tasks` (numbers) of run `run`: a
    /// rerun's tasks must really run, also when the run is resumed after
    /// a crash (a resume takes finished tasks from the cache).
    pub(crate) fn forget_cached(&self, run: &str, tasks: &[u32]) -> rusqlite::Result<()> {
        self.raw().execute(
            "DELETE FROM cache WHERE run_id = ?1 AND task IN (SELECT value FROM json_each(?2))",
            params![run, json(tasks)],
        )?;
        Ok(())
    }
}

impl StateStore {
    /// The actions on run `run` in the order they were accepted, each with
    /// the task numbers it applied to.
    pub(crate) fn action_rows(
        &self,
        run: &str,
    ) -> Result<Vec<(ActionRecord, Vec<u32>)>, StateError> {
        type Raw = (i64, i64, String, u32, String, String, String, String);
        let rows: Vec<Raw> = self.rows(
            "SELECT seq, at_ms, user, uid, kind, selectors, tasks, names FROM actions
             WHERE run_id = ?1 ORDER BY seq",
            params![run],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(seq, at_ms, user, uid, kind, selectors, tasks, names)| {
                // A kind a newer twinflow wrote is left out, not guessed.
                let kind = ActionKind::parse(&kind)?;
                let record = ActionRecord {
                    seq,
                    at_ms,
                    by: Actor { user, uid },
                    kind,
                    selectors: serde_json::from_str(&selectors).unwrap_or_default(),
                    tasks: serde_json::from_str(&names).unwrap_or_default(),
                };
                Some((record, serde_json::from_str(&tasks).unwrap_or_default()))
            })
            .collect())
    }

    /// The operator actions on run `run`, oldest first.
    pub fn actions(&self, run: &str) -> Result<Vec<ActionRecord>, StateError> {
        Ok(self.action_rows(run)?.into_iter().map(|(r, _)| r).collect())
    }

    /// The tasks of run `run` an operator holds, as its actions leave them
    /// (held and not released since), by number.
    pub(crate) fn held_task_ids(&self, run: &str) -> Result<Vec<u32>, StateError> {
        Ok(held(&self.action_rows(run)?).into_keys().collect())
    }

    /// When the latest attempt of each of `tasks` (numbers) of run `run`
    /// was launched, in ms, for those that have been.
    pub(crate) fn launched_ms(
        &self,
        run: &str,
        tasks: &[u32],
    ) -> Result<std::collections::HashMap<u32, i64>, StateError> {
        let rows = self.rows(
            "SELECT task, started_ms FROM tasks
             WHERE run_id = ?1 AND started_ms IS NOT NULL
               AND task IN (SELECT value FROM json_each(?2))",
            params![run, json(tasks)],
            |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    }

    /// The recorded state of every task of run `run` that has a row, with
    /// when it last changed as far as the store tells (its latest launch
    /// or end, ms).
    pub(crate) fn task_states(
        &self,
        run: &str,
    ) -> Result<std::collections::HashMap<u32, (TaskState, Option<i64>)>, StateError> {
        let rows = self.rows(
            "SELECT task, state, MAX(COALESCE(started_ms, 0), COALESCE(finished_ms, 0))
             FROM tasks WHERE run_id = ?1",
            params![run],
            |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, TaskState>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?;
        Ok(rows
            .into_iter()
            .map(|(t, s, at)| (t, (s, (at > 0).then_some(at))))
            .collect())
    }

    /// The names of the tasks of run `run` an operator holds that have not
    /// finished, in task order.
    pub fn held_tasks(&self, run: &str) -> Result<Vec<String>, StateError> {
        let held = held(&self.action_rows(run)?);
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let finished: HashSet<u32> = self
            .rows(
                "SELECT task, state FROM tasks WHERE run_id = ?1",
                params![run],
                |r| Ok((r.get::<_, u32>(0)?, r.get::<_, TaskState>(1)?)),
            )?
            .into_iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    TaskState::Succeeded
                        | TaskState::Failed
                        | TaskState::Skipped
                        | TaskState::Cancelled
                )
            })
            .map(|(t, _)| t)
            .collect();
        Ok(held
            .into_iter()
            .filter(|(t, _)| !finished.contains(t))
            .map(|(_, name)| name)
            .collect())
    }
}

/// The tasks held after `rows` (number to name), in task order.
fn held(rows: &[(ActionRecord, Vec<u32>)]) -> BTreeMap<u32, String> {
    let mut held = BTreeMap::new();
    for (record, tasks) in rows {
        match record.kind {
            ActionKind::Hold => {
                for (i, t) in tasks.iter().enumerate() {
                    let name = record.tasks.get(i).cloned().unwrap_or_default();
                    held.insert(*t, name);
                }
            }
            // A trigger lifts the hold on the tasks it starts.
            ActionKind::Release | ActionKind::Trigger => {
                for t in tasks {
                    held.remove(t);
                }
            }
            ActionKind::Kill
            | ActionKind::Rerun
            | ActionKind::RerunDownstream
            | ActionKind::SetSucceeded
            | ActionKind::SetFailed => {}
        }
    }
    held
}
