//! The state database's schema and its versions. `PRAGMA user_version`
//! carries the version; every version a release wrote is migrated forward
//! here, and a database from a newer twinflow is refused, never rewritten.

use rusqlite::Connection;

/// The schema this build writes.
pub(crate) const VERSION: i64 = 4;

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

/// Version 3: for `status` at scale (a summary and filtered pages of a
/// run's tasks, `twinflow_daemon::query`). `tasks_by_state` finds a run's
/// tasks in one state in task order (pages filtered by state, the first
/// failures). `task_counts` holds how many of a run's tasks each step has in
/// each state (`cached`: of them, how many reused a result), kept by
/// triggers on `tasks` in the writer's own transactions, so the per-step
/// counts are read from a few rows whatever the run's size. An older
/// database gains them when it is opened, its counts computed once.
const V3: &str = "
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (run_id, state, task);
CREATE TABLE task_counts (
    run_id TEXT NOT NULL,
    step   INTEGER NOT NULL,
    state  TEXT NOT NULL,
    cached INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (run_id, step, state, cached)
) WITHOUT ROWID;
INSERT INTO task_counts (run_id, step, state, cached, n)
    SELECT run_id, step, state, cached_from IS NOT NULL, COUNT(*) FROM tasks
    GROUP BY run_id, step, state, cached_from IS NOT NULL;
CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (run_id, step, state, cached, n)
        VALUES (NEW.run_id, NEW.step, NEW.state, NEW.cached_from IS NOT NULL, 1)
        ON CONFLICT (run_id, step, state, cached) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER task_counts_update AFTER UPDATE OF run_id, step, state, cached_from ON tasks
WHEN OLD.run_id IS NOT NEW.run_id OR OLD.step IS NOT NEW.step OR OLD.state IS NOT NEW.state
    OR (OLD.cached_from IS NULL) IS NOT (NEW.cached_from IS NULL)
BEGIN
    UPDATE task_counts SET n = n - 1
        WHERE run_id = OLD.run_id AND step = OLD.step AND state = OLD.state
          AND cached = (OLD.cached_from IS NOT NULL);
    INSERT INTO task_counts (run_id, step, state, cached, n)
        VALUES (NEW.run_id, NEW.step, NEW.state, NEW.cached_from IS NOT NULL, 1)
        ON CONFLICT (run_id, step, state, cached) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1
        WHERE run_id = OLD.run_id AND step = OLD.step AND state = OLD.state
          AND cached = (OLD.cached_from IS NOT NULL);
END;
";

/// Version 4: for pages of a run's tasks in an order other than the task
/// id (`TaskOrder`, `status --order`). Two virtual columns hold each task's
/// sort key, computed from its times when a page is read (nothing is stored
/// and nothing is indexed: an index per order made every task write about
/// 80 us dearer in the dispatch benchmark, so an ordered page sorts the
/// run's rows, or one state's through `tasks_by_state`; see `state::page`).
///
/// `longest_key`, ascending: tasks started and not ended (`finished_ms`
/// missing, or older than `started_ms`: a new attempt is in flight) first,
/// the earliest started first (the longest running so far); then ended
/// tasks, the longest (`finished_ms - started_ms`) first; then tasks never
/// started (1). `latest_key`: the most recently started first, then tasks
/// never started (1). The clamps keep the groups apart whatever the clock.
const V4: &str = "
ALTER TABLE tasks ADD COLUMN longest_key INTEGER GENERATED ALWAYS AS (
    CASE WHEN started_ms IS NULL THEN 1
         WHEN finished_ms IS NULL OR finished_ms < started_ms
             THEN MIN(MAX(started_ms, 0), 4000000000000000) - 9000000000000000
         ELSE MAX(started_ms - finished_ms, -4000000000000000) END
) VIRTUAL;
ALTER TABLE tasks ADD COLUMN latest_key INTEGER GENERATED ALWAYS AS (
    CASE WHEN started_ms IS NULL THEN 1
         ELSE -MIN(MAX(started_ms, 0), 4000000000000000) END
) VIRTUAL;
";

/// What opening found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Migration {
    /// A new database, created at [`VERSION`], or an older one brought to it.
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
    if version < 3 {
        tx.execute_batch(V3)?;
    }
    if version < 4 {
        tx.execute_batch(V4)?;
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

    fn counts(conn: &Connection) -> Vec<(String, bool, i64)> {
        let mut stmt = conn
            .prepare(
                "SELECT state, cached, n FROM task_counts WHERE run_id = 'r' AND n > 0
                 ORDER BY state, cached",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_version_1_database_gains_the_status_index_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO tasks (run_id, task, name, step, state, attempt, executor, cached_from)
             VALUES ('r', 0, 'a', 0, 'failed', 1, 0, NULL),
                    ('r', 1, 'b', 0, 'succeeded', 1, 0, 'old'),
                    ('r', 2, 'c', 0, 'succeeded', 1, 0, NULL)",
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
        let s = |t: &str| t.to_owned();
        assert_eq!(
            counts(&conn),
            [
                (s("failed"), false, 1),
                (s("succeeded"), false, 1),
                (s("succeeded"), true, 1)
            ]
        );
        // The triggers keep them: a rerun (as the writer's upsert does it),
        // a new task, a result reused.
        conn.execute_batch(
            "INSERT INTO tasks (run_id, task, name, step, state, attempt, executor)
             VALUES ('r', 0, 'a', 0, 'queued', 2, 0)
             ON CONFLICT (run_id, task) DO UPDATE SET state = excluded.state;
             INSERT INTO tasks (run_id, task, name, step, state, attempt, executor)
             VALUES ('r', 3, 'd', 0, 'succeeded', 1, 0);
             UPDATE tasks SET cached_from = 'old' WHERE task = 3;
             UPDATE tasks SET handle = 'pid:1' WHERE task = 2;",
        )
        .unwrap();
        assert_eq!(
            counts(&conn),
            [
                (s("queued"), false, 1),
                (s("succeeded"), false, 1),
                (s("succeeded"), true, 2)
            ]
        );
        assert_eq!(migrate(&mut conn).unwrap(), Migration::Current);
    }

    #[test]
    fn a_version_3_database_gains_the_order_keys_of_its_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        conn.execute_batch(&format!("{V1}{V2}{V3}")).unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO tasks (run_id, task, name, step, state, attempt, executor,
                                started_ms, finished_ms)
             VALUES ('r', 0, 'a', 0, 'succeeded', 1, 0, 1000, 1500),
                    ('r', 1, 'b', 0, 'running', 1, 0, 2000, NULL),
                    ('r', 2, 'c', 0, 'skipped', 1, 0, NULL, 3000)",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migration::Migrated(3));
        let keys: Vec<(i64, i64)> = conn
            .prepare("SELECT longest_key, latest_key FROM tasks ORDER BY task")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            keys,
            [(-500, -1000), (2000 - 9_000_000_000_000_000, -2000), (1, 1)]
        );
    }

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
