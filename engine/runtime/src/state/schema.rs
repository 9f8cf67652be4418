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

/// Version 2: the journal of operator actions (hold, release, kill), one
/// row per action in the order they were accepted: who, when, what (the
/// kind as `ActionKind::as_str`, the selectors and the task numbers it
/// applied to and their names, as JSON arrays). A run's held tasks follow from it.
const V2: &str = "
CREATE TABLE actions (
    seq       INTEGER PRIMARY KEY,
    run_id    TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    user      TEXT NOT NULL,
    uid       INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    selectors TEXT NOT NULL,
    tasks     TEXT NOT NULL,
    names     TEXT NOT NULL
);
CREATE INDEX actions_by_run ON actions (run_id, seq);
";

/// What opening found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Migration {
    /// A new database, created at [`VERSION`], or an older one brought to it.
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
    if version < 2 {
        tx.execute_batch(V2)?;
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
    fn a_version_1_database_is_migrated_and_keeps_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::state::DB_FILE);
        {
            // As the previous version wrote it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(V1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO runs VALUES ('r1', 'w', NULL, '/d', 'x', 1, 'succeeded', 1, 2, 'h', 1, 1, '{}')",
                [],
            )
            .unwrap();
        }
        let store = crate::state::StateStore::open(dir.path()).unwrap();
        assert_eq!(store.run("r1").unwrap().unwrap().workflow, "w");
        assert!(store.actions("r1").unwrap().is_empty());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), VERSION);
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
