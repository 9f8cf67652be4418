//! The daemon's lifecycle: the lock, the Unix socket (and the TCP listener
//! when asked for), taking up interrupted runs, serving until told to stop.

use crate::auth::{self, Peer, Token};
use crate::routes::{self, App};
use crate::runs::Runs;
use crate::{DaemonError, DaemonPaths, lock, resume, token};
use axum::middleware;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Notify, watch};
use twinflow_engine::Engine;

/// How long requests in progress may go on once the daemon is told to stop.
/// `watch` streams last as long as their run: they are cut after this (their
/// clients say the daemon stopped), or a watcher would keep it alive.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// How the daemon listens.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Also listen on this TCP address (none by default). Every request
    /// there must carry the token of `<state dir>/daemon/token` (made, mode
    /// 0600, when missing; refused when others may read it). There is no
    /// TLS: bind to loopback, or reach it through an SSH tunnel.
    pub listen: Option<SocketAddr>,
}

impl ServeOptions {
    /// Also listen on `addr` (TCP, with the token).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }
}

/// The warning a TCP listener on `addr` deserves: one reachable beyond this
/// machine (not loopback) sends the token without TLS. The daemon logs it;
/// `twinflow daemon start` also prints it on the terminal.
pub fn listen_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "listening on {addr}, beyond this machine: the token travels without TLS \
             (bind to 127.0.0.1 and use an SSH tunnel instead)"
        )
    })
}

/// Runs the daemon of `engine`'s state directory on its Unix socket only:
/// [`serve_with`] with the default [`ServeOptions`].
pub async fn serve(
    engine: Engine,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    serve_with(engine, ServeOptions::default(), shutdown).await
}

/// Runs the daemon of `engine`'s state directory until `shutdown` resolves
/// or a client asks it to stop (`POST /v1/shutdown`). It first takes up the
/// runs a dead daemon left. Runs it carries when it stops are left as they
/// are (Slurm jobs go on) and taken up by the next daemon.
pub async fn serve_with(
    engine: Engine,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let paths = DaemonPaths::new(engine.state_dir());
    paths.prepare()?;
    let state_dir = engine.state_dir().display().to_string();
    let _lock = lock::acquire(&paths, &state_dir)?;
    // The token first: a token file that cannot be used stops the daemon
    // before anything listens.
    let tcp = match options.listen {
        Some(addr) => {
            let token = token::ensure(&paths.token)?;
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| DaemonError::Setup(format!("cannot listen on tcp {addr}: {e}")))?;
            let bound = listener
                .local_addr()
                .map_err(|e| DaemonError::Setup(format!("cannot listen on tcp {addr}: {e}")))?;
            if let Some(warning) = listen_warning(bound) {
                tracing::warn!("{warning}");
            }
            Some((listener, bound, Token(token.into())))
        }
        None => None,
    };
    // A socket file left by a dead daemon (we hold the lock, so it is dead).
    let _ = std::fs::remove_file(&paths.socket);
    let unix = UnixListener::bind(&paths.socket).map_err(|e| DaemonError::io(&paths.socket, &e))?;
    std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| DaemonError::io(&paths.socket, &e))?;
    let app = App {
        engine: engine.clone(),
        runs: Runs::default(),
        stop: Arc::new(Notify::new()),
        listen: tcp.as_ref().map(|(_, bound, _)| bound.to_string()),
    };
    resume::take_up_interrupted(&engine, &app.runs).await;
    tracing::info!(
        "twinflow daemon {} listening on {}{}",
        std::process::id(),
        paths.socket.display(),
        app.listen
            .as_ref()
            .map(|a| format!(" and tcp {a} (token in {})", paths.token.display()))
            .unwrap_or_default()
    );
    let (stopping, stopped) = watch::channel(false);
    let stop = Arc::clone(&app.stop);
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => {}
            () = stop.notified() => {}
        }
        let _ = stopping.send(true);
    });
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let on_socket = axum::serve(
        unix,
        routes::router()
            .layer(middleware::from_fn(auth::only_owner))
            .with_state(app.clone())
            .into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(until_stopped(stopped.clone()));
    let on_tcp = async {
        let Some((listener, bound, token)) = tcp else {
            return Ok(());
        };
        axum::serve(
            listener,
            routes::router()
                .layer(middleware::from_fn_with_state(token, auth::bearer))
                .with_state(app.clone())
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(until_stopped(stopped.clone()))
        .await
        .map_err(|e| DaemonError::Setup(format!("tcp {bound}: {e}")))
    };
    let serving = async { tokio::join!(on_socket.into_future(), on_tcp) };
    let grace_over = async {
        until_stopped(stopped.clone()).await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    let (on_socket, on_tcp) = tokio::select! {
        results = serving => results,
        () = grace_over => {
            tracing::info!("stopping with requests still open (watchers are cut off)");
            (Ok(()), Ok(()))
        }
    };
    let _ = std::fs::remove_file(&paths.socket);
    on_socket.map_err(|e| DaemonError::io(&paths.socket, &e))?;
    on_tcp
}
