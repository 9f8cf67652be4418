//! The state store: one SQLite file per state directory holding every run,
//! its tasks' states and handles, sealed artefacts and the cache index.
//!
//! The process running workflows writes; `twinflow runs`/`status`/`logs`
//! read, also while a run is going. On a local file system the database is
//! in WAL mode, so readers never wait for the writer. On network and
//! parallel file systems (NFS, Lustre, GPFS, BeeGFS, CIFS), where WAL's
//! shared memory is unsafe, it is opened with `locking_mode=EXCLUSIVE`:
//! then only one twinflow process at a time may use the state directory.
//! `TWINFLOW_STATE_LOCKING=exclusive` forces that mode on any file system
//! (for one the detection misses, and for tests of the daemon's clients).

mod actions;
mod page;
mod query;
mod record;
mod schema;
mod states;
pub(crate) mod write;

pub(crate) use actions::ActionRow;
pub use page::{BadCursor, CursorOrder, TaskCursor, TaskFilter, TaskOrder, TaskRows, UnknownOrder};
pub use query::{ArtefactRow, RunInfo, StepCounts, TaskRow};
pub use record::{RunArtefact, RunImage, TaskRecord};
pub use states::{RunState, TaskState, UnknownState};
pub(crate) use write::{NewRun, Tx};

use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// Milliseconds since the Unix epoch, for the state store.
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The database file inside a state directory.
pub const DB_FILE: &str = "state.sqlite";

/// A state store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory or file could not be created or opened.
    #[error("failed to open state database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The directory could not be created.
    #[error("failed to create state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The directory is writable by other users, who could then rewrite
    /// its runs, results and cache.
    #[error(
        "state directory {path} is writable by other users (mode {mode:04o}); \
         make it private with `chmod 700 {path}`, or use another --state-dir"
    )]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Written by a newer twinflow.
    #[error(
        "state database {path} has schema version {found}, newer than this twinflow's {supported}; \
         use a newer twinflow or another --state-dir"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        supported: i64,
    },
    /// Another process holds the database exclusively.
    #[error(
        "state database {path} is in use by another twinflow process; wait for it or use another --state-dir"
    )]
    Busy {
        /// The database file.
        path: PathBuf,
    },
    /// A query failed.
    #[error("state database {path}: {source}")]
    Sql {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
}

/// One state directory's database.
#[derive(Debug)]
pub struct StateStore {
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
    exclusive: bool,
    /// Tells the background checkpointer that a commit happened.
    checkpointer: Option<std::sync::mpsc::SyncSender<()>>,
}

/// WAL pages after which a commit checkpoints inline: a safety net, since
/// the background checkpointer keeps the WAL short. (SQLite's default of
/// 1,000 made every 200th commit of a busy run wait for two fsyncs.)
const AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// How long the background checkpointer gathers commits before it
/// checkpoints them.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl StateStore {
    /// Opens (creating it if needed) the database of state directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        create_private_dir(dir)?;
        let path = dir.join(DB_FILE);
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        let exclusive = exclusive_forced() || is_network_fs(dir);
        let setup = || -> rusqlite::Result<()> {
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            if exclusive {
                conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
            }
            let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)?;
            Ok(())
        };
        setup().map_err(|e| busy_or(e, &path, open_err))?;
        match schema::migrate(&mut conn).map_err(|e| busy_or(e, &path, open_err))? {
            schema::Migration::TooNew(found) => {
                return Err(StateError::TooNew {
                    path,
                    found,
                    supported: schema::VERSION,
                });
            }
            schema::Migration::Created
            | schema::Migration::Migrated(_)
            | schema::Migration::Current => {}
        }
        Ok(Self {
            conn,
            path,
            dir: dir.to_owned(),
            exclusive,
            checkpointer: None,
        })
    }

    /// Checkpoints the WAL from a thread of its own, on a connection of its
    /// own, half a second after commits, so that a writer's commits do not
    /// wait for a checkpoint's fsyncs (one writer commits once per launched
    /// task). Not on network file systems, where the store is exclusive to
    /// its connection: commits checkpoint inline there.
    pub fn checkpoint_in_background(&mut self) {
        if self.exclusive || self.checkpointer.is_some() {
            return;
        }
        let conn = match Connection::open(&self.path) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("{}: no background checkpoints: {e}", self.path.display());
                return;
            }
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let path = self.path.clone();
        let spawned = std::thread::Builder::new()
            .name("twinflow-checkpoint".to_owned())
            .spawn(move || {
                let _ = conn.busy_timeout(std::time::Duration::from_secs(10));
                while rx.recv().is_ok() {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    while rx.try_recv().is_ok() {}
                    let done: rusqlite::Result<(i64, i64, i64)> =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        });
                    if let Err(e) = done {
                        tracing::debug!("{}: checkpoint: {e}", path.display());
                    }
                }
            });
        match spawned {
            Ok(_) => self.checkpointer = Some(tx),
            Err(e) => tracing::warn!("{}: no background checkpoints: {e}", self.path.display()),
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema version this build writes.
    pub fn schema_version() -> i64 {
        schema::VERSION
    }

    fn sql(&self, source: rusqlite::Error) -> StateError {
        busy_or(source, &self.path, |source| StateError::Sql {
            path: self.path.clone(),
            source,
        })
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let result = (|| {
            let tx = Tx::new(self.conn.transaction()?);
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        if let (Ok(_), Some(checkpointer)) = (&result, &self.checkpointer) {
            // Full: a checkpoint is already due.
            let _ = checkpointer.try_send(());
        }
        result.map_err(|e| self.sql(e))
    }
}

fn busy_or(
    e: rusqlite::Error,
    path: &Path,
    otherwise: impl FnOnce(rusqlite::Error) -> StateError,
) -> StateError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StateError::Busy {
                path: path.to_owned(),
            }
        }
        _ => otherwise(e),
    }
}

/// Creates the state directory (mode 0700), or checks that an existing one
/// is not writable by group or others: a database and run directories that
/// other users may replace would make sealed results and the cache
/// worthless.
fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir_err = |source| StateError::Dir {
        path: dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(dir_err)?;
    let mode = std::fs::metadata(dir)
        .map_err(dir_err)?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StateError::Unsafe {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Whether `TWINFLOW_STATE_LOCKING=exclusive` asks for exclusive locking
/// whatever the file system.
fn exclusive_forced() -> bool {
    std::env::var_os("TWINFLOW_STATE_LOCKING").is_some_and(|v| v == "exclusive")
}

/// Whether `dir` is on a file system where SQLite's WAL shared memory must
/// not be used.
fn is_network_fs(dir: &Path) -> bool {
    use nix::sys::statfs::{FsType, NFS_SUPER_MAGIC, SMB_SUPER_MAGIC, statfs};
    const LUSTRE: FsType = FsType(0x0BD0_0BD0);
    const GPFS: FsType = FsType(0x4750_4653);
    const BEEGFS: FsType = FsType(0x1983_0326);
    const CIFS: FsType = FsType(0xFF53_4D42);
    let Ok(fs) = statfs(dir) else { return false };
    [NFS_SUPER_MAGIC, SMB_SUPER_MAGIC, LUSTRE, GPFS, BEEGFS, CIFS].contains(&fs.filesystem_type())
}

#[cfg(test)]
impl StateStore {
    /// Every row `sql` selects, each as its columns' values joined by `|`
    /// (for tests comparing what two ways of writing left).
    pub(crate) fn dump(&self, sql: &str) -> Vec<String> {
        let mut stmt = self.conn.prepare(sql).unwrap();
        let columns = stmt.column_count();
        stmt.query_map([], |r| {
            Ok((0..columns)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_directory_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        for mode in [0o777, 0o770, 0o1777] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = StateStore::open(&dir).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "state directory {0} is writable by other users (mode {mode:04o}); \
                     make it private with `chmod 700 {0}`, or use another --state-dir",
                    dir.display()
                )
            );
            assert!(!dir.join(DB_FILE).exists(), "nothing was written in it");
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        StateStore::open(&dir).unwrap();
        // A new one is created private.
        let new = parent.path().join("new/state");
        StateStore::open(&new).unwrap();
        let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn commits_are_checkpointed_in_the_background_not_inline() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        let db = dir.path().join(DB_FILE);
        let size = || std::fs::metadata(&db).map_or(0, |m| m.len());
        let detail = "x".repeat(3000);
        let commits = |store: &mut StateStore| {
            for i in 0..200 {
                store
                    .write(|tx| tx.event("r", Some(i), None, "queued", Some(&detail), 0))
                    .unwrap();
            }
        };
        // Without the checkpointer, 200 commits stay in the WAL (far below
        // the inline threshold): the database file does not grow.
        let before = size();
        commits(&mut store);
        std::thread::sleep(CHECKPOINT_EVERY * 3);
        assert_eq!(size(), before, "checkpointed inline");
        // With it, they reach the database file shortly after.
        store.checkpoint_in_background();
        commits(&mut store);
        let start = std::time::Instant::now();
        while size() < before + 2 * 200 * 3000 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "never checkpointed: {} bytes",
                size()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
