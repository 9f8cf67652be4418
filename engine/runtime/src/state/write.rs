//! Writes, always inside one transaction ([`Tx`]): every change appends an
//! event and updates the derived tables with it.

use super::{RunState, TaskState};
use crate::artefact::Sealed;
use rusqlite::{OptionalExtension, Transaction, params};

/// A transaction of the state store.
#[derive(Debug)]
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
}

/// A run as it is first recorded.
#[derive(Debug)]
pub(crate) struct NewRun<'a> {
    pub id: &'a str,
    pub workflow: &'a str,
    pub file: Option<&'a str>,
    pub run_dir: &'a str,
    pub plan_digest: &'a str,
    pub task_count: u64,
    pub now_ms: i64,
    pub host: &'a str,
    pub pid: u32,
    pub pid_start: u64,
    pub args: &'a str,
    /// (name, first task, task count) per step.
    pub steps: Vec<(&'a str, u32, u32)>,
}

/// A task's row as a batch of changes from the start of its attempt left it
/// ([`Tx::attempt_row`]).
#[derive(Debug)]
pub(crate) struct AttemptRow<'a> {
    pub task: u32,
    pub name: &'a str,
    pub step: u32,
    pub executor: u32,
    pub changes: AttemptChanges<'a>,
}

/// What one batch of changes leaves in an attempt's row (see
/// `journal::collapse`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptChanges<'a> {
    pub attempt: u32,
    pub state: TaskState,
    pub reason: Option<&'a str>,
    pub handle: Option<&'a str>,
    pub started_ms: i64,
    /// When the attempt ended, if it did in the batch.
    pub finished_ms: Option<i64>,
    /// Its cache key and the run its result was reused from.
    pub cache: Option<(&'a str, Option<&'a str>)>,
}

/// An artefact as it is sealed.
#[derive(Debug, Clone)]
pub(crate) struct SealedRow<'a> {
    pub output: &'a str,
    pub path: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    pub mtime_ns: i64,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(tx: Transaction<'a>) -> Self {
        Self { tx }
    }

    /// The transaction, for the writes of sibling modules.
    pub(super) fn raw(&self) -> &Transaction<'a> {
        &self.tx
    }

    pub(crate) fn commit(self) -> rusqlite::Result<()> {
        self.tx.commit()
    }

    pub(crate) fn create_run(&self, run: &NewRun<'_>) -> rusqlite::Result<()> {
        self.tx.execute(
            "INSERT INTO runs (id, workflow, file, run_dir, plan_digest, task_count, state,
                               created_ms, updated_ms, host, pid, pid_start, args)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?7, ?8, ?9, ?10, ?11)",
            params![
                run.id,
                run.workflow,
                run.file,
                run.run_dir,
                run.plan_digest,
                run.task_count as i64,
                run.now_ms,
                run.host,
                run.pid,
                run.pid_start as i64,
                run.args
            ],
        )?;
        let mut step = self.tx.prepare_cached(
            "INSERT INTO steps (run_id, step, name, first_task, task_count) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (i, (name, first, count)) in run.steps.iter().enumerate() {
            step.execute(params![run.id, i as i64, name, first, count])?;
        }
        self.event(run.id, None, None, "run-created", None, run.now_ms)
    }

    /// A run is taken up again by this process.
    pub(crate) fn resume_run(
        &self,
        run: &str,
        pid: u32,
        pid_start: u64,
        host: &str,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.tx.execute(
            "UPDATE runs SET state = 'running', pid = ?2, pid_start = ?3, host = ?4, updated_ms = ?5
             WHERE id = ?1",
            params![run, pid, pid_start as i64, host, now_ms],
        )?;
        self.event(run, None, None, "run-resumed", None, now_ms)
    }

    /// Attempts a dead process left in flight are over, except those their
    /// backend still follows (`followed`: task ids), which keep their state
    /// and handle.
    pub(crate) fn mark_lost(
        &self,
        run: &str,
        followed: &[u32],
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let followed = format!(
            "[{}]",
            followed
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        self.tx.execute(
            "UPDATE tasks SET state = 'lost', finished_ms = ?2, reason = 'the twinflow process running it ended'
             WHERE run_id = ?1 AND state IN ('queued', 'running', 'awaiting')
               AND task NOT IN (SELECT value FROM json_each(?3))",
            params![run, now_ms, followed],
        )?;
        Ok(())
    }

    pub(crate) fn finish_run(
        &self,
        run: &str,
        state: RunState,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.tx.execute(
            "UPDATE runs SET state = ?2, updated_ms = ?3 WHERE id = ?1",
            params![run, state, now_ms],
        )?;
        self.event(
            run,
            None,
            None,
            "run-finished",
            Some(state.as_str()),
            now_ms,
        )
    }

    pub(crate) fn event(
        &self,
        run: &str,
        task: Option<u32>,
        attempt: Option<u32>,
        kind: &str,
        detail: Option<&str>,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO events (run_id, at_ms, task, attempt, kind, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![run, now_ms, task, attempt, kind, detail])?;
        Ok(())
    }

    /// Upserts a task's row with a new state, appending the matching event.
    #[expect(clippy::too_many_arguments, reason = "one column each")]
    pub(crate) fn task_state(
        &self,
        run: &str,
        task: u32,
        name: &str,
        step: u32,
        executor: u32,
        attempt: u32,
        state: TaskState,
        reason: Option<&str>,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let starting = state == TaskState::Queued;
        let ending = state.ends_attempt();
        self.tx
            .prepare_cached(
                "INSERT INTO tasks (run_id, task, name, step, state, attempt, executor,
                                    started_ms, finished_ms, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                         CASE WHEN ?8 THEN ?10 END, CASE WHEN ?9 THEN ?10 END, ?11)
                 ON CONFLICT (run_id, task) DO UPDATE SET
                    state = excluded.state,
                    attempt = excluded.attempt,
                    handle = CASE WHEN ?8 THEN NULL ELSE handle END,
                    cached_from = CASE WHEN ?8 THEN NULL ELSE cached_from END,
                    started_ms = CASE WHEN ?8 THEN ?10
                                      WHEN excluded.attempt <> attempt THEN NULL
                                      ELSE started_ms END,
                    finished_ms = CASE WHEN ?9 THEN ?10 ELSE finished_ms END,
                    reason = excluded.reason",
            )?
            .execute(params![
                run, task, name, step, state, attempt, executor, starting, ending, now_ms, reason
            ])?;
        self.event(
            run,
            Some(task),
            Some(attempt),
            state.as_str(),
            reason,
            now_ms,
        )
    }

    pub(crate) fn task_handle(
        &self,
        run: &str,
        task: u32,
        attempt: u32,
        handle: &str,
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("UPDATE tasks SET handle = ?3 WHERE run_id = ?1 AND task = ?2")?
            .execute(params![run, task, handle])?;
        self.event(
            run,
            Some(task),
            Some(attempt),
            "submitted",
            Some(handle),
            now_ms,
        )
    }

    pub(crate) fn task_running(&self, run: &str, task: u32) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE tasks SET state = 'running', reason = NULL
                 WHERE run_id = ?1 AND task = ?2 AND state IN ('queued', 'awaiting')",
            )?
            .execute(params![run, task])?;
        Ok(())
    }

    /// Puts a task's record back to `waiting` (an operator's rerun reset
    /// it), keeping its latest attempt's number and times; a task without
    /// a record keeps none.
    pub(crate) fn task_waiting(&self, run: &str, task: u32, reason: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE tasks SET state = 'waiting', reason = ?3 WHERE run_id = ?1 AND task = ?2",
            )?
            .execute(params![run, task, reason])?;
        Ok(())
    }

    /// Writes a task's row as one batch of changes left it, from the start
    /// of its attempt (see `journal::collapse`): the same row the changes
    /// one by one would leave, in one statement. Its events are written
    /// apart, one per change ([`Tx::event`]).
    pub(crate) fn attempt_row(&self, run: &str, row: &AttemptRow<'_>) -> rusqlite::Result<()> {
        let c = &row.changes;
        let (cache_key, cached_from) = match c.cache {
            Some((key, from)) => (Some(key), from),
            None => (None, None),
        };
        self.tx
            .prepare_cached(
                "INSERT INTO tasks (run_id, task, name, step, state, attempt, executor, handle,
                                    started_ms, finished_ms, reason, cache_key, cached_from)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (run_id, task) DO UPDATE SET
                    state = excluded.state,
                    attempt = excluded.attempt,
                    handle = excluded.handle,
                    started_ms = excluded.started_ms,
                    finished_ms = COALESCE(excluded.finished_ms, finished_ms),
                    reason = excluded.reason,
                    cache_key = COALESCE(excluded.cache_key, cache_key),
                    cached_from = excluded.cached_from",
            )?
            .execute(params![
                run,
                row.task,
                row.name,
                row.step,
                c.state,
                c.attempt,
                row.executor,
                c.handle,
                c.started_ms,
                c.finished_ms,
                c.reason,
                cache_key,
                cached_from
            ])?;
        if let Some(key) = cache_key {
            self.cache_entry(run, row.task, key)?;
        }
        Ok(())
    }

    fn cache_entry(&self, run: &str, task: u32, key: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO cache (key, run_id, task) VALUES (?1, ?2, ?3)")?
            .execute(params![key, run, task])?;
        Ok(())
    }

    /// Records the cache key of a task and, for a cached result, where it came from.
    pub(crate) fn task_cache(
        &self,
        run: &str,
        task: u32,
        key: &str,
        cached_from: Option<&str>,
    ) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE tasks SET cache_key = ?3, cached_from = ?4 WHERE run_id = ?1 AND task = ?2",
            )?
            .execute(params![run, task, key, cached_from])?;
        self.cache_entry(run, task, key)
    }

    pub(crate) fn artefact(
        &self,
        run: &str,
        task: u32,
        row: &SealedRow<'_>,
    ) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO artefacts (run_id, task, output, path, size, sha256, mtime_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                run,
                task,
                row.output,
                row.path,
                row.size as i64,
                row.sha256,
                row.mtime_ns
            ])?;
        Ok(())
    }

    /// The run and task that sealed a result under `key`, if any.
    pub(crate) fn cache_lookup(&self, key: &str) -> rusqlite::Result<Option<(String, u32)>> {
        self.tx
            .prepare_cached("SELECT run_id, task FROM cache WHERE key = ?1")?
            .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }

    /// The artefacts a task sealed.
    pub(crate) fn artefacts_of(&self, run: &str, task: u32) -> rusqlite::Result<Vec<Sealed>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT output, path, size, sha256, mtime_ns FROM artefacts WHERE run_id = ?1 AND task = ?2",
        )?;
        let rows = stmt.query_map(params![run, task], |r| {
            Ok(Sealed {
                output: r.get(0)?,
                path: std::path::PathBuf::from(r.get::<_, String>(1)?),
                size: r.get::<_, i64>(2)? as u64,
                sha256: r.get(3)?,
                mtime_ns: r.get(4)?,
            })
        })?;
        rows.collect()
    }

    /// Attempts recorded as in flight: (task, attempt, executor, handle).
    pub(crate) fn in_flight(&self, run: &str) -> rusqlite::Result<Vec<(u32, u32, u32, String)>> {
        let mut stmt = self.tx.prepare(
            "SELECT task, attempt, executor, handle FROM tasks
             WHERE run_id = ?1 AND state IN ('queued', 'running', 'awaiting') AND handle IS NOT NULL",
        )?;
        let rows = stmt.query_map(params![run], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect()
    }

    /// Attempts recorded as queued or running, with or without a handle.
    pub(crate) fn open_attempts(&self, run: &str) -> rusqlite::Result<Vec<(u32, u32)>> {
        let mut stmt = self.tx.prepare(
            "SELECT task, attempt FROM tasks
             WHERE run_id = ?1 AND state IN ('queued', 'running', 'awaiting')",
        )?;
        let rows = stmt.query_map(params![run], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    /// The next attempt number of every task that already has one.
    pub(crate) fn next_attempts(&self, run: &str) -> rusqlite::Result<Vec<(u32, u32)>> {
        let mut stmt = self
            .tx
            .prepare("SELECT task, attempt + 1 FROM tasks WHERE run_id = ?1")?;
        let rows = stmt.query_map(params![run], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }
}
