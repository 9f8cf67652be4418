//! Filtered, ordered pages of a run's tasks, for `status` at scale: a page
//! is found through the indexes of schema versions 3 and 4 and costs the
//! same whatever the run's size and however deep it is (keyset paging on
//! (sort key, task id), never `OFFSET`): each page ends with a
//! [`TaskCursor`] that the next one starts after.

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

/// The order of a page of tasks: the one place its names are spelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskOrder {
    /// Task order (the plan's ids).
    #[default]
    Id,
    /// The longest first: tasks running now first (the longest running so
    /// far first), then ended tasks by the time of their latest attempt
    /// (`finished - started`), then tasks never started; ties in id order.
    Longest,
    /// The most recently started (latest attempt) first, then tasks never
    /// started; ties in id order.
    Latest,
}

impl TaskOrder {
    /// Every order, in the order the TUI's `o` cycles them.
    pub const ALL: [Self; 3] = [Self::Id, Self::Longest, Self::Latest];

    /// Its name, as sent and typed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Longest => "longest",
            Self::Latest => "latest",
        }
    }

    /// The column holding its sort key (the virtual columns of schema
    /// version 4, not indexed; the task id itself in task order).
    fn key_column(self) -> &'static str {
        match self {
            Self::Id => "task",
            Self::Longest => "longest_key",
            Self::Latest => "latest_key",
        }
    }
}

/// An order name that is none of [`TaskOrder::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task order `{0}`: expected id, longest or latest")]
pub struct UnknownOrder(pub String);

impl std::str::FromStr for TaskOrder {
    type Err = UnknownOrder;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownOrder(s.to_owned()))
    }
}

impl std::fmt::Display for TaskOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a page of tasks in some order ended: the next page starts after
/// it. Written as the task id alone in task order (`41`, as earlier
/// versions did: a JSON number), else as `ORDER:KEY:TASK` (a JSON string),
/// the key being the store's sort key of that task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskCursor {
    /// The order it is a position in.
    pub order: TaskOrder,
    /// The sort key of the last task of the page (its id in task order).
    pub key: i64,
    /// The id of the last task of the page.
    pub task: u32,
}

impl TaskCursor {
    /// The position after task `task` in task order.
    pub fn after_task(task: u32) -> Self {
        Self {
            order: TaskOrder::Id,
            key: i64::from(task),
            task,
        }
    }
}

/// A cursor that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad page cursor `{0}`: expected a task id or ORDER:KEY:TASK as a page's next_after")]
pub struct BadCursor(pub String);

impl std::str::FromStr for TaskCursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCursor(s.to_owned());
        if let Ok(task) = s.parse::<u32>() {
            return Ok(Self::after_task(task));
        }
        let mut parts = s.splitn(3, ':');
        let (Some(order), Some(key), Some(task)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let order: TaskOrder = order.parse().map_err(|_| bad())?;
        let key: i64 = key.parse().map_err(|_| bad())?;
        let task: u32 = task.parse().map_err(|_| bad())?;
        if order == TaskOrder::Id && key != i64::from(task) {
            return Err(bad());
        }
        Ok(Self { order, key, task })
    }
}

impl std::fmt::Display for TaskCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.order {
            TaskOrder::Id => write!(f, "{}", self.task),
            order => write!(f, "{order}:{}:{}", self.key, self.task),
        }
    }
}

impl Serialize for TaskCursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.order {
            TaskOrder::Id => serializer.serialize_u32(self.task),
            _ => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for TaskCursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Task(u32),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Task(task) => Ok(Self::after_task(task)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A page's tasks and, if more follow, where it ended.
pub type TaskRows = (Vec<TaskRow>, Option<TaskCursor>);

/// A cursor given for a page in another order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("page cursor `{cursor}` is a position in order {}, not {order}", cursor.order)]
pub struct CursorOrder {
    /// The cursor.
    pub cursor: TaskCursor,
    /// The order asked for.
    pub order: TaskOrder,
}

impl StateStore {
    /// Up to `limit` tasks of `run` matching `filter`, in `order`, after
    /// `after` (a previous page's cursor), and where the page ended if more
    /// follow. In task order each state asked is read through
    /// `tasks_by_state` from the cursor on and the pages merged, so a page
    /// reads about `limit` rows per state (more only when a name glob passes
    /// few of them over). In another order the matching rows (of the states
    /// asked, through `tasks_by_state`, else the whole run) are sorted by
    /// their key from the cursor on: about 15 ms for 100,000 tasks, and
    /// nothing on the write path. A cursor of another order is refused.
    pub fn task_page(
        &self,
        run: &str,
        filter: &TaskFilter,
        order: TaskOrder,
        after: Option<TaskCursor>,
        limit: usize,
    ) -> Result<Result<TaskRows, CursorOrder>, StateError> {
        if let Some(cursor) = after.filter(|c| c.order != order) {
            return Ok(Err(CursorOrder { cursor, order }));
        }
        let step = match filter.step {
            Some(step) => match self.step_range(run, step)? {
                Some(range) => Some((step, range)),
                None => return Ok(Ok((Vec::new(), None))),
            },
            None => None,
        };
        let states: Vec<Option<TaskState>> = if !filter.states.is_empty() {
            let mut states = filter.states.clone();
            states.sort_by_key(|s| s.as_str());
            states.dedup();
            states.into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        let key = order.key_column();
        let mut rows = Vec::new();
        for state in states {
            let (tail, args) = page_tail(run, filter, step, order, state, after, limit);
            rows.extend(self.keyed_task_query(key, &tail, rusqlite::params_from_iter(args))?);
        }
        rows.sort_by_key(|(key, row)| (*key, row.task));
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = rows.last().filter(|_| more).map(|(key, row)| TaskCursor {
            order,
            key: *key,
            task: row.task,
        });
        Ok(Ok((rows.into_iter().map(|(_, row)| row).collect(), next)))
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

/// The `FROM tasks` tail of the query of one state's part of a page (all
/// states: `None`) and its arguments.
fn page_tail(
    run: &str,
    filter: &TaskFilter,
    step: Option<(u32, (u32, u32))>,
    order: TaskOrder,
    state: Option<TaskState>,
    after: Option<TaskCursor>,
    limit: usize,
) -> (String, Vec<Value>) {
    let key = order.key_column();
    // In task order the state index is named: without statistics SQLite
    // may walk the primary key instead, reading the whole run for a state
    // few tasks are in. In another order the run's rows are read in
    // primary-key order and sorted (no index per order: see schema version
    // 4); the state term is kept off the state index (`+state`), whose
    // row-by-row lookups cost three times a scan for a common state.
    let ordered = order != TaskOrder::Id;
    let mut tail = match state {
        Some(_) if !ordered => "INDEXED BY tasks_by_state ".to_owned(),
        _ => String::new(),
    };
    tail.push_str("WHERE run_id = ?1");
    let mut args = vec![Value::Text(run.to_owned())];
    match (order, after) {
        (TaskOrder::Id, after) => {
            args.push(Value::Integer(after.map_or(-1, |c| i64::from(c.task))));
            tail.push_str(" AND task > ?2");
        }
        (_, Some(after)) => {
            args.push(Value::Integer(after.key));
            args.push(Value::Integer(i64::from(after.task)));
            tail.push_str(&format!(" AND ({key}, task) > (?2, ?3)"));
        }
        (_, None) => {}
    }
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
        let term = if ordered { "+state" } else { "state" };
        tail.push_str(&format!(" AND {term} = ?{}", args.len()));
    }
    if let Some(glob) = &filter.name {
        args.push(Value::Text(crate::sqlite_glob(glob)));
        tail.push_str(&format!(" AND name GLOB ?{}", args.len()));
    }
    args.push(Value::Integer(
        i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    tail.push_str(&format!(" ORDER BY {key}, task LIMIT ?{}", args.len()));
    (tail, args)
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
