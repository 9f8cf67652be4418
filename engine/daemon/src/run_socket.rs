//! A run's own socket: a `twinflow run` in progress, without a daemon,
//! serves the daemon's routes for its one run (reads, operator actions,
//! cancel, events, logs) on a Unix socket of its own while it is live, with
//! the daemon's peer check (only its user). The socket is
//! `<run dir>/control.sock`, or, when that path is too long for a socket
//! address, `<runtime dir>/twinflow-<uid>/<hash>.sock`; either way its
//! path is written to `<run dir>/control.socket`, where clients look
//! ([`live_run_socket`]). A socket left by a run that was killed refuses
//! connections: it is taken for not live and its files are removed.

use crate::DaemonError;
use crate::auth::{self, Peer};
use crate::routes::{self, App};
use crate::runs::{Feed, Runs};
use axum::middleware;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::sync::Notify;
use twinflow_engine::{Engine, RunEvent, RunHandle};

/// The longest path a Unix socket address holds (`sun_path`, with its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// How long requests in progress may go on once the run ended.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The file in a run's directory that names its live socket.
pub fn run_socket_record(run_dir: &Path) -> PathBuf {
    run_dir.join("control.socket")
}

/// The socket of the run whose files are in `run_dir`, if a process serves
/// it now. A socket whose process died (connection refused) is not live:
/// its files are removed. Never waits: a connect on a Unix socket answers
/// at once.
pub fn live_run_socket(run_dir: &Path) -> Option<PathBuf> {
    let record = run_socket_record(run_dir);
    let path = PathBuf::from(std::fs::read_to_string(&record).ok()?.trim_end());
    match std::os::unix::net::UnixStream::connect(&path) {
        Ok(_) => Some(path),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&record);
            None
        }
        // Not ours to judge (permission denied): let the client say why.
        Err(_) => Some(path),
    }
}

/// Where the socket of the run in `run_dir` goes: in the run directory
/// when the path fits a socket address, else under the user's runtime
/// directory (`$XDG_RUNTIME_DIR`, else the temporary directory) in a 0700
/// `twinflow-<uid>` directory, named by a hash of the run directory.
fn socket_path(run_dir: &Path) -> Result<PathBuf, DaemonError> {
    let inside = run_dir.join("control.sock");
    if inside.as_os_str().len() <= SOCKET_PATH_MAX {
        return Ok(inside);
    }
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("twinflow-{}", nix::unistd::getuid().as_raw()));
    std::fs::create_dir_all(&dir).map_err(|e| DaemonError::io(&dir, &e))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| DaemonError::io(&dir, &e))?;
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    let hash = run_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let path = dir.join(format!("{hash:016x}.sock"));
    if path.as_os_str().len() > SOCKET_PATH_MAX {
        return Err(DaemonError::Setup(format!(
            "no socket path short enough for run directory {} (tried {})",
            run_dir.display(),
            path.display()
        )));
    }
    Ok(path)
}

/// The socket a run in progress serves for itself; [`RunSocket::close`] it
/// when the run has ended.
pub struct RunSocket {
    path: PathBuf,
    record: PathBuf,
    feed: Feed,
    stop: Arc<Notify>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RunSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSocket")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RunSocket {
    /// Serves run `run` of `engine` on its own socket, on the current tokio
    /// runtime, until [`RunSocket::close`]. A socket file already there is
    /// one a dead process left (the run is ours now): it is replaced.
    pub fn serve(engine: &Engine, run: &RunHandle) -> Result<Self, DaemonError> {
        let path = socket_path(run.run_dir())?;
        let record = run_socket_record(run.run_dir());
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| DaemonError::io(&path, &e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| DaemonError::io(&path, &e))?;
        std::fs::write(&record, format!("{}\n", path.display()))
            .map_err(|e| DaemonError::io(&record, &e))?;
        let runs = Runs::for_one_run();
        let feed = runs.register(run);
        let app = App {
            engine: engine.clone(),
            runs,
            stop: Arc::new(Notify::new()),
            listen: None,
        };
        let stop = Arc::new(Notify::new());
        let stopped = Arc::clone(&stop);
        let service = routes::run_router()
            .layer(middleware::from_fn(auth::only_owner))
            .with_state(app)
            .into_make_service_with_connect_info::<Peer>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(async move { stopped.notified().await })
                .await;
            if let Err(e) = served {
                tracing::warn!("the run's socket stopped: {e}");
            }
        });
        Ok(Self {
            path,
            record,
            feed,
            stop,
            server,
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one of the run's events to those who watch it.
    pub fn event(&mut self, event: &RunEvent) {
        self.feed.send(event);
    }

    /// The run has ended: its watchers get its last event, the socket
    /// stops (requests in progress get a moment) and its files go.
    pub async fn close(self) {
        let Self {
            path,
            record,
            feed,
            stop,
            mut server,
        } = self;
        let _ = std::fs::remove_file(&record);
        let _ = std::fs::remove_file(&path);
        // Its watchers' streams end once no sender of its events is left.
        feed.remove();
        drop(feed);
        stop.notify_one();
        if tokio::time::timeout(CLOSE_GRACE, &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_path_too_long_for_sun_path_falls_back_to_a_short_one() {
        let short = Path::new("/tmp/s/runs/r-1");
        assert_eq!(
            socket_path(short).ok(),
            Some(short.join("control.sock")),
            "inside the run directory when it fits"
        );
        let long = PathBuf::from(format!("/tmp/{}/runs/r-1", "d".repeat(120)));
        let path = socket_path(&long).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            path.as_os_str().len() <= SOCKET_PATH_MAX,
            "{}",
            path.display()
        );
        assert!(path.extension().is_some_and(|e| e == "sock"));
        assert_eq!(socket_path(&long).ok(), Some(path.clone()), "stable");
        let other = socket_path(&long.with_file_name("r-2")).ok();
        assert_ne!(other, Some(path), "one per run");
    }

    #[test]
    fn a_run_without_a_live_socket_is_not_live_and_its_stale_files_go() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(live_run_socket(dir.path()), None, "no record");
        let socket = dir.path().join("control.sock");
        // A socket whose listener is gone refuses connections.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap_or_else(|e| panic!("{e}")));
        let record = run_socket_record(dir.path());
        std::fs::write(&record, format!("{}\n", socket.display()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(live_run_socket(dir.path()), None, "stale");
        assert!(!record.exists() && !socket.exists(), "stale files removed");
    }
}
