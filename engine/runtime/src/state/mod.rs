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

mod query;
mod schema;
pub(crate) mod write;

pub use query::{ArtefactRow, RunInfo, RunState, StepCounts, TaskRow};
pub(crate) use write::{NewRun, Tx};

use rusqlite::Connection;
use std::path::{Path, PathBuf};

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
}

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
            schema::Migration::Created | schema::Migration::Current => {}
        }
        Ok(Self {
            conn,
            path,
            dir: dir.to_owned(),
        })
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

fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::Dir {
            path: dir.to_owned(),
            source,
        })
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
