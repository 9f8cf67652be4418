//! Filtered pages of a run's tasks, for `status` at scale: a page is found
//! through the indexes of schema version 2 and costs the same whatever the
//! run's size (keyset paging on the task id, never `OFFSET`).

use super::{StateError, StateStore, TaskRow, TaskState};
use crate::control::ControlError;
use crate::selection::{SelectedTask, Selection};
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

/// Which of a run's tasks (those with a record) a page holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFilter {
    /// Only this step's tasks (its index).
    pub step: Option<u32>,
    /// Only tasks in one of these states (none: any state).
    pub states: Vec<TaskState>,
    /// Only tasks whose name matches this glob: `*` any run of characters,
    /// `?` one, everything else literal (`[` and `]` too), case-sensitive;
    /// the glob of operator selectors ([`crate::sqlite_glob`]).
    pub name: Option<String>,
}

impl StateStore {
    /// Up to `limit` tasks of `run` matching `filter` whose id is above
    /// `after`, in task order, and whether more follow. Each state is read
    /// through the `tasks_by_state` index and the pages merged, so a page
    /// reads about `limit` rows per state asked (more only when a name glob
    /// passes few of them over).
    pub fn task_page(
        &self,
        run: &str,
        filter: &TaskFilter,
        after: Option<u32>,
        limit: usize,
    ) -> Result<(Vec<TaskRow>, bool), StateError> {
        let step = match filter.step {
            Some(step) => match self.step_range(run, step)? {
                Some(range) => Some((step, range)),
                None => return Ok((Vec::new(), false)),
            },
            None => None,
        };
        let states: Vec<Option<TaskState>> = if filter.states.is_empty() {
            vec![None]
        } else {
            let mut states = filter.states.clone();
            states.sort_by_key(|s| s.as_str());
            states.dedup();
            states.into_iter().map(Some).collect()
        };
        let mut rows = Vec::new();
        for state in states {
            // Named: without statistics SQLite may walk the primary key
            // instead, reading the whole run for a state few tasks are in.
            let mut tail = String::from(if state.is_some() {
                "INDEXED BY tasks_by_state WHERE run_id = ?1 AND task > ?2"
            } else {
                "WHERE run_id = ?1 AND task > ?2"
            });
            let mut args = vec![
                Value::Text(run.to_owned()),
                Value::Integer(after.map_or(-1, i64::from)),
            ];
            if let Some((step, (first, count))) = step {
                // A step's tasks are a range of ids: the primary key finds them.
                args.push(Value::Integer(i64::from(step)));
                args.push(Value::Integer(i64::from(first)));
                args.push(Value::Integer(i64::from(first) + i64::from(count)));
                let n = args.len();
                tail.push_str(&format!(
                    " AND step = ?{} AND task >= ?{} AND task < ?{n}",
                    n - 2,
                    n - 1
                ));
            }
            if let Some(state) = state {
                args.push(Value::Text(state.as_str().to_owned()));
                tail.push_str(&format!(" AND state = ?{}", args.len()));
            }
            if let Some(glob) = &filter.name {
                args.push(Value::Text(crate::sqlite_glob(glob)));
                tail.push_str(&format!(" AND name GLOB ?{}", args.len()));
            }
            args.push(Value::Integer(
                i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
            ));
            tail.push_str(&format!(" ORDER BY task LIMIT ?{}", args.len()));
            rows.extend(self.task_query(&tail, rusqlite::params_from_iter(args))?);
        }
        rows.sort_by_key(|r| r.task);
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    /// The recorded tasks of `run` that `selectors` name (the rules of
    /// [`crate::select_tasks`]: a task name, else a step name, else a glob),
    /// for a run that is not live: tasks never launched have no record and
    /// are not listed. A selector that names nothing recorded is an error.
    pub fn select_recorded(
        &self,
        run: &str,
        selectors: &[String],
    ) -> Result<Result<Selection, ControlError>, StateError> {
        if selectors.is_empty() {
            return Ok(Err(ControlError::Empty));
        }
        let mut rows: Vec<TaskRow> = Vec::new();
        for selector in selectors {
            let mut found = self.task_query(
                "WHERE run_id = ?1 AND name = ?2",
                rusqlite::params![run, selector],
            )?;
            if found.is_empty()
                && let Some(step) = self.step_index(run, selector)?
            {
                found = self.task_query(
                    "WHERE run_id = ?1 AND step = ?2",
                    rusqlite::params![run, step],
                )?;
            }
            if found.is_empty() && crate::is_glob(selector) {
                found = self.task_query(
                    "WHERE run_id = ?1 AND name GLOB ?2",
                    rusqlite::params![run, crate::sqlite_glob(selector)],
                )?;
            }
            if found.is_empty() {
                return Ok(Err(ControlError::NoMatch {
                    run: run.to_owned(),
                    selector: selector.clone(),
                }));
            }
            rows.extend(found);
        }
        rows.sort_by_key(|r| r.task);
        rows.dedup_by_key(|r| r.task);
        Ok(Ok(Selection {
            run_id: run.to_owned(),
            live: false,
            tasks: rows
                .into_iter()
                .map(|r| SelectedTask {
                    task: r.task,
                    name: r.name,
                    state: crate::selection::live_state(r.state),
                    attempt: r.attempt,
                    held: false,
                })
                .collect(),
        }))
    }

    /// The index of `run`'s step named `name`.
    pub fn step_index(&self, run: &str, name: &str) -> Result<Option<u32>, StateError> {
        Ok(self
            .rows(
                "SELECT step FROM steps WHERE run_id = ?1 AND name = ?2",
                rusqlite::params![run, name],
                |r| r.get(0),
            )?
            .pop())
    }

    /// The first task id and task count of step `step` of `run`.
    fn step_range(&self, run: &str, step: u32) -> Result<Option<(u32, u32)>, StateError> {
        Ok(self
            .rows(
                "SELECT first_task, task_count FROM steps WHERE run_id = ?1 AND step = ?2",
                rusqlite::params![run, step],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .pop())
    }
}
