//! The daemon's lifecycle: the lock, the Unix socket (and the TCP listener
//! when asked for), taking up interrupted runs, serving until told to stop.

use crate::auth::{self, Peer};
use crate::routes::{self, App};
use crate::runs::Runs;
use crate::{DaemonError, DaemonPaths, access, lock, resume, tcp};
use axum::middleware;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use tokio::net::UnixListener;
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
    /// Also listen on this TCP address (none by default), speaking HTTPS
    /// with the daemon's self-signed certificate (`<state dir>/daemon/
    /// tls-cert.pem`, made on the first start and kept). Every request there
    /// must carry the token of the access file `<state dir>/daemon/token`
    /// (made, mode 0600, when missing; refused when others may read it),
    /// which also holds the certificate's fingerprint for clients to pin.
    pub listen: Option<SocketAddr>,
    /// Speak plain HTTP on [`ServeOptions::listen`] instead of HTTPS: the
    /// token and everything else travel in clear (a warning is logged).
    pub plain_http: bool,
}

impl ServeOptions {
    /// Also listen on `addr` (HTTPS over TCP, with the token).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Plain HTTP instead of HTTPS on the TCP listener.
    pub fn plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }
}

/// The warning a TCP listener on `addr` deserves: one speaking plain HTTP
/// sends the token and everything else in clear. The daemon logs it;
/// `twinflow daemon start` also prints it on the terminal. An HTTPS
/// listener deserves none.
pub fn listen_warning(addr: SocketAddr, plain_http: bool) -> Option<String> {
    plain_http.then(|| {
        let beyond = if addr.ip().is_loopback() {
            ""
        } else {
            ", beyond this machine"
        };
        format!(
            "listening on {addr}{beyond} with plain http (--listen-plain-http): the token and \
             everything else travel without tls (drop --listen-plain-http for https)"
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
    // The TCP listener before the socket: an access file that cannot be
    // used stops the daemon before anything listens.
    let tcp = match options.listen {
        Some(addr) => Some(tcp::open(&paths, addr, options.plain_http).await?),
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
        listen: tcp.as_ref().map(|tcp| tcp.bound.to_string()),
    };
    resume::take_up_interrupted(&engine, &app.runs).await;
    tracing::info!(
        "twinflow daemon {} listening on {}{}",
        std::process::id(),
        paths.socket.display(),
        app.listen
            .as_ref()
            .map(|a| format!(" and tcp {a} (access file {})", paths.token.display()))
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
            .merge(access::socket_routes(
                tcp.as_ref().map(|tcp| tcp.access.clone()),
            ))
            .layer(middleware::from_fn(auth::only_owner))
            .with_state(app.clone())
            .into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(until_stopped(stopped.clone()));
    let on_tcp = async {
        let Some(tcp) = tcp else {
            return Ok(());
        };
        tcp::serve(tcp, app.clone(), until_stopped(stopped.clone())).await
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
