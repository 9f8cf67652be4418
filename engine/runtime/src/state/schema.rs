//! The state database's schema and its versions. `PRAGMA user_version`
//! carries the version; every version a release wrote is migrated forward
//! here, and a database from a newer twinflow is refused, never rewritten.

use rusqlite::Connection;

/// The schema this build writes.
pub(crate) const VERSION: i64 = 2;

/// Version 1. `events` is the append-only record; `runs`, `steps`, `tasks`,
/// `artefacts` and `cache` are derived from it in the same transactions so
/// that queries stay cheap.
const V1: &str = "
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    workflow    TEXT NOT NULL,
    file        TEXT,
    run_dir     TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    task_count  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    pid_start   INTEGER NOT NULL,
    args        TEXT NOT NULL
);
CREATE TABLE steps (
    run_id     TEXT NOT NULL,
    step       INTEGER NOT NULL,
    name       TEXT NOT NULL,
    first_task INTEGER NOT NULL,
    task_count INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE tasks (
    run_id      TEXT NOT NULL,
    task        INTEGER NOT NULL,
    name        TEXT NOT NULL,
    step        INTEGER NOT NULL,
    state       TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    executor    INTEGER NOT NULL,
    handle      TEXT,
    started_ms  INTEGER,
    finished_ms INTEGER,
    reason      TEXT,
    cache_key   TEXT,
    cached_from TEXT,
    PRIMARY KEY (run_id, task)
) WITHOUT ROWID;
CREATE INDEX tasks_by_name ON tasks (run_id, name);
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    task    INTEGER,
    attempt INTEGER,
    kind    TEXT NOT NULL,
    detail  TEXT
);
CREATE TABLE artefacts (
    run_id   TEXT NOT NULL,
    task     INTEGER NOT NULL,
    output   TEXT NOT NULL,
    path     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    sha256   TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (run_id, task, output)
) WITHOUT ROWID;
CREATE TABLE cache (
    key    TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    task   INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 2: indexes for `status` at scale (a summary and filtered pages of
/// a run's tasks, `twinflow_daemon::query`). `tasks_by_state` finds a run's
/// tasks in one state in task order (pages filtered by state, the first
/// failures); `tasks_by_step_state` holds every column the per-step counts
/// read, so they are counted from the index alone. Tables are unchanged: a
/// version-1 database gains the indexes when it is opened.
const V2: &str = "
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (run_id, state, task);
CREATE INDEX IF NOT EXISTS tasks_by_step_state ON tasks (run_id, step, state, cached_from);
";

/// What opening found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Migration {
    /// A new database, created at [`VERSION`].
    Created,
    /// Brought forward from this older version.
    Migrated(i64),
    /// Already at [`VERSION`].
    Current,
    /// Written by a newer twinflow.
    TooNew(i64),
}

/// Brings the database to [`VERSION`], in one transaction. Two processes
/// opening a new database at once are serialised by the write lock, and the
/// second finds it already migrated.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<Migration> {
    let version = user_version(conn)?;
    if version > VERSION {
        return Ok(Migration::TooNew(version));
    }
    if version == VERSION {
        return Ok(Migration::Current);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version = user_version(&tx)?;
    if version > VERSION {
        return Ok(Migration::TooNew(version));
    }
    if version == VERSION {
        return Ok(Migration::Current);
    }
    if version < 1 {
        tx.execute_batch(V1)?;
    }
    if version < 2 {
        tx.execute_batch(V2)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(if version < 1 {
        Migration::Created
    } else {
        Migration::Migrated(version)
    })
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_gains_the_status_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO tasks (run_id, task, name, step, state, attempt, executor)
             VALUES ('r', 0, 'a', 0, 'failed', 1, 0)",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migration::Migrated(1));
        assert_eq!(user_version(&conn).unwrap(), VERSION);
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT task FROM tasks
                 WHERE run_id = 'r' AND state = 'failed' AND task > -1 ORDER BY task LIMIT 5",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("tasks_by_state"), "{plan}");
        assert_eq!(migrate(&mut conn).unwrap(), Migration::Current);
    }

    #[test]
    fn concurrent_first_opens_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut conn = Connection::open(&path).unwrap();
                    conn.busy_timeout(std::time::Duration::from_secs(10))
                        .unwrap();
                    migrate(&mut conn).unwrap()
                })
            })
            .collect();
        let results: Vec<Migration> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|m| **m == Migration::Created).count(),
            1,
            "{results:?}"
        );
    }
}
