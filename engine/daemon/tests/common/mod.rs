//! What the daemon's test binaries share: a real daemon booted in-process
//! in its own state directory, and a look at which TCP ports this process
//! listens on.

use std::path::{Path, PathBuf};
use std::time::Duration;
use twinflow_daemon::api::SubmitRequest;
use twinflow_daemon::{Client, DaemonError, DaemonPaths, ServeOptions};

/// A daemon on its own thread and runtime; stops when dropped.
pub(crate) struct Daemon {
    pub(crate) dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), DaemonError>>>,
}

pub(crate) fn engine(state: &Path) -> twinflow_engine::Engine {
    twinflow_engine::Engine::builder()
        .state_dir(state)
        .executor(
            twinflow_core::ExecutorKind::Local,
            twinflow_executor_local::LocalFactory::default(),
        )
        .build()
        .expect("engine")
}

impl Daemon {
    /// A daemon served with `options`; returns once its socket accepts.
    pub(crate) fn start_with(options: ServeOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = dir.path().join("state");
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(twinflow_daemon::serve_with(
                engine(&state),
                options,
                async {
                    let _ = stopped.await;
                },
            ))
        });
        let daemon = Self {
            dir,
            stop: Some(stop),
            thread: Some(thread),
        };
        daemon.wait_for_socket();
        daemon
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub(crate) fn client(&self) -> Client {
        Client::for_state_dir(&self.state())
    }

    fn wait_for_socket(&self) {
        let socket = DaemonPaths::new(&self.state()).socket;
        // Not only the file: between its bind and its listen, a socket
        // exists but refuses connections.
        for _ in 0..200 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon never made {}", socket.display());
    }

    pub(crate) fn workflow(&self, name: &str, yaml: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).expect("write workflow");
        path.display().to_string()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn request(file: String) -> SubmitRequest {
    SubmitRequest {
        file,
        params: Vec::new(),
        site: None,
        local: false,
        no_cache: false,
        fail_fast: false,
    }
}

/// Follows a run's events to its end; the last one.
pub(crate) async fn wait_for_end(client: &Client, run: &str) -> serde_json::Value {
    let mut events = client.events(run).await.expect("events");
    let mut last = serde_json::Value::Null;
    while let Some(event) = events.next().await.expect("an event") {
        last = event;
    }
    last
}

/// The TCP ports this process listens on: its socket fds (`/proc/self/fd`)
/// looked up among the namespace's listening sockets (`/proc/net/tcp*`,
/// state `0A`).
pub(crate) fn tcp_ports_listened_on() -> Vec<u16> {
    let mine: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9))
            else {
                continue;
            };
            if *state == "0A" && mine.contains(*inode) {
                let port = local.rsplit(':').next().expect("a port");
                ports.push(u16::from_str_radix(port, 16).expect("a hex port"));
            }
        }
    }
    ports.sort_unstable();
    ports
}
