//! Reads for `twinflow runs`, `status` and `logs`, and for resuming. The
//! rows also deserialize: the daemon sends them to its clients as they are.

use super::{RunState, StateError, StateStore, TaskState};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// A run as the store knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Its id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow file, when it came from one.
    pub file: Option<String>,
    /// Where its tasks' directories are.
    pub run_dir: String,
    /// Its state.
    pub state: RunState,
    /// Number of tasks.
    pub task_count: u64,
    /// When it was created (milliseconds since the Unix epoch).
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// Digest of its plan, to tell whether a workflow changed.
    pub plan_digest: String,
    /// What the front end stored to run it again: [`crate::RunSettings`]
    /// as JSON ([`RunInfo::settings`] reads it).
    pub args: String,
    /// Host and pid of the process that runs or ran it.
    pub host: String,
    /// Its pid.
    pub pid: u32,
    pid_start: u64,
}

impl RunInfo {
    /// The settings it was started with. Text that is not settings (a
    /// hand-edited database) reads as none, as it always did.
    pub fn settings(&self) -> crate::RunSettings {
        crate::RunSettings::parse(&self.args).unwrap_or_default()
    }
}

/// Counts of one step's tasks by state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepCounts {
    /// The step.
    pub step: String,
    /// All its tasks.
    pub total: u64,
    /// Not launched yet.
    pub waiting: u64,
    /// Queued in their backend.
    pub queued: u64,
    /// Running.
    pub running: u64,
    /// Started, and waiting for external data (source tasks of a data
    /// trigger).
    #[serde(default)]
    pub awaiting: u64,
    /// Succeeded (cached ones included).
    pub succeeded: u64,
    /// Of those, taken from the cache.
    pub cached: u64,
    /// Failed for good.
    pub failed: u64,
    /// Skipped because a dependency failed.
    pub skipped: u64,
    /// Cancelled, or in flight when their process ended.
    pub cancelled: u64,
    /// Waiting to be retried.
    pub retrying: u64,
}

/// A task as the store knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRow {
    /// Its id in the plan.
    pub task: u32,
    /// Its name.
    pub name: String,
    /// Its step's index.
    pub step: u32,
    /// Its state.
    pub state: TaskState,
    /// Its latest attempt.
    pub attempt: u32,
    /// Its backend handle.
    pub handle: Option<String>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// The run whose result it reused.
    pub cached_from: Option<String>,
    /// Seconds from its latest launch to its end.
    pub seconds: Option<f64>,
}

/// A sealed artefact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtefactRow {
    /// The output's name.
    pub output: String,
    /// Its absolute path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

impl StateStore {
    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunInfo>, StateError> {
        self.run_query("ORDER BY created_ms DESC, id DESC", params![])
    }

    /// One run by id, or by a unique prefix of its id.
    pub fn run(&self, id: &str) -> Result<Option<RunInfo>, StateError> {
        if let Some(run) = self
            .run_query("WHERE id = ?1", params![id])?
            .into_iter()
            .next()
        {
            return Ok(Some(run));
        }
        let like = format!("{}%", id.replace(['%', '_', '\\'], ""));
        let mut found =
            self.run_query("WHERE id LIKE ?1 ORDER BY created_ms DESC", params![like])?;
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    /// The newest run of a workflow file.
    pub fn latest_run_of_file(&self, file: &str) -> Result<Option<RunInfo>, StateError> {
        Ok(self
            .run_query(
                "WHERE file = ?1 ORDER BY created_ms DESC, id DESC LIMIT 1",
                params![file],
            )?
            .pop())
    }

    /// Every row of a query, mapped.
    pub(super) fn rows<T>(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StateError> {
        let run = || -> rusqlite::Result<Vec<T>> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map(args, map)?;
            rows.collect()
        };
        run().map_err(|e| self.sql(e))
    }

    fn run_query(
        &self,
        tail: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<RunInfo>, StateError> {
        let sql = format!(
            "SELECT id, workflow, file, run_dir, state, task_count, created_ms, updated_ms,
                    plan_digest, args, host, pid, pid_start FROM runs {tail}"
        );
        let mut runs = self.rows(&sql, args, |r| {
            Ok(RunInfo {
                id: r.get(0)?,
                workflow: r.get(1)?,
                file: r.get(2)?,
                run_dir: r.get(3)?,
                state: r.get(4)?,
                task_count: r.get::<_, i64>(5)? as u64,
                created_ms: r.get(6)?,
                updated_ms: r.get(7)?,
                plan_digest: r.get(8)?,
                args: r.get(9)?,
                host: r.get(10)?,
                pid: r.get(11)?,
                pid_start: r.get::<_, i64>(12)? as u64,
            })
        })?;
        for r in &mut runs {
            if r.state == RunState::Running && !crate::host::is_alive(&r.host, r.pid, r.pid_start) {
                r.state = RunState::Interrupted;
            }
        }
        Ok(runs)
    }

    /// Per-step counts of a run's tasks, in step order.
    pub fn step_counts(&self, run: &str) -> Result<Vec<StepCounts>, StateError> {
        let mut steps = self.rows(
            "SELECT name, task_count FROM steps WHERE run_id = ?1 ORDER BY step",
            params![run],
            |r| {
                Ok(StepCounts {
                    step: r.get(0)?,
                    total: r.get::<_, i64>(1)? as u64,
                    ..StepCounts::default()
                })
            },
        )?;
        // Kept by triggers on `tasks` (schema version 2): a few rows a
        // step, whatever the run's size.
        let counts = self.rows(
            "SELECT step, state, cached, n FROM task_counts WHERE run_id = ?1 AND n > 0",
            params![run],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    r.get::<_, TaskState>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, i64>(3)? as u64,
                ))
            },
        )?;
        for (step, state, cached, n) in counts {
            let Some(s) = steps.get_mut(step) else {
                continue;
            };
            match state {
                TaskState::Queued => s.queued += n,
                TaskState::Running => s.running += n,
                TaskState::Awaiting => s.awaiting += n,
                TaskState::Succeeded => {
                    s.succeeded += n;
                    if cached {
                        s.cached += n;
                    }
                }
                TaskState::Failed => s.failed += n,
                TaskState::Skipped => s.skipped += n,
                TaskState::Retrying => s.retrying += n,
                TaskState::Cancelled | TaskState::Lost => s.cancelled += n,
                // Reset by an operator: counted with the tasks not
                // launched yet (`total` less every other state).
                TaskState::Waiting => {}
            }
        }
        for s in &mut steps {
            let known = s.queued
                + s.running
                + s.awaiting
                + s.succeeded
                + s.failed
                + s.skipped
                + s.cancelled
                + s.retrying;
            s.waiting = s.total.saturating_sub(known);
        }
        Ok(steps)
    }

    /// A run's tasks that have a record (launched at least once, or skipped), by id.
    pub fn tasks(&self, run: &str) -> Result<Vec<TaskRow>, StateError> {
        self.task_query("WHERE run_id = ?1 ORDER BY task", params![run])
    }

    /// One task of a run by name.
    pub fn task(&self, run: &str, name: &str) -> Result<Option<TaskRow>, StateError> {
        Ok(self
            .task_query("WHERE run_id = ?1 AND name = ?2", params![run, name])?
            .pop())
    }

    /// Whether attempt `attempt` of task `task` (by id) of `run` was handed
    /// to an executor: the latest attempt once it was queued, or an earlier
    /// one (earlier numbers are taken by launches, except that of a task
    /// skipped in one run and started in a resumed one). Executors create log
    /// files only when there is output, so a missing log of a started
    /// attempt means it wrote nothing.
    pub fn attempt_started(&self, run: &str, task: u32, attempt: u32) -> Result<bool, StateError> {
        let rows = self.rows(
            "SELECT attempt, started_ms IS NOT NULL FROM tasks WHERE run_id = ?1 AND task = ?2",
            params![run, task],
            |r| Ok((r.get::<_, u32>(0)?, r.get::<_, bool>(1)?)),
        )?;
        Ok(rows
            .first()
            .is_some_and(|&(latest, queued)| attempt < latest || (attempt == latest && queued)))
    }

    pub(super) fn task_query(
        &self,
        tail: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<TaskRow>, StateError> {
        Ok(self
            .keyed_task_query("0", tail, args)?
            .into_iter()
            .map(|(_, row)| row)
            .collect())
    }

    /// Task rows, each with the value of the integer expression `key`
    /// (the sort key of a page, [`super::TaskOrder::key_column`]).
    pub(super) fn keyed_task_query(
        &self,
        key: &str,
        tail: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<(i64, TaskRow)>, StateError> {
        let sql = format!(
            "SELECT task, name, step, state, attempt, handle, reason, cached_from,
                    (finished_ms - started_ms) / 1000.0, {key} FROM tasks {tail}"
        );
        self.rows(&sql, args, |r| {
            Ok((
                r.get(9)?,
                TaskRow {
                    task: r.get(0)?,
                    name: r.get(1)?,
                    step: r.get(2)?,
                    state: r.get(3)?,
                    attempt: r.get(4)?,
                    handle: r.get(5)?,
                    reason: r.get(6)?,
                    cached_from: r.get(7)?,
                    seconds: r.get(8)?,
                },
            ))
        })
    }

    /// The artefacts a task sealed.
    pub fn artefacts(&self, run: &str, task: u32) -> Result<Vec<ArtefactRow>, StateError> {
        self.rows(
            "SELECT output, path, size, sha256 FROM artefacts
             WHERE run_id = ?1 AND task = ?2 ORDER BY output",
            params![run, task],
            |r| {
                Ok(ArtefactRow {
                    output: r.get(0)?,
                    path: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    sha256: r.get(3)?,
                })
            },
        )
    }

    /// The name and first task id of step `step` of a run.
    pub fn step_of(&self, run: &str, step: u32) -> Result<Option<(String, u32)>, StateError> {
        self.conn
            .query_row(
                "SELECT name, first_task FROM steps WHERE run_id = ?1 AND step = ?2",
                params![run, step],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}
