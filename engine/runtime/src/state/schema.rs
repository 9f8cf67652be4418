//! The state database's schema and its versions. `PRAGMA user_version`
//! carries the version; every version a release wrote is migrated forward
//! here, and a database from a newer twinflow is refused, never rewritten.

use rusqlite::Connection;

/// The schema this build writes.
pub(crate) const VERSION: i64 = 1;

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

/// What opening found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Migration {
    /// A new database, created at [`VERSION`].
    Created,
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
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(Migration::Created)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

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
