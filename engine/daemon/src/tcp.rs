//! The optional TCP listener: HTTPS with the daemon's certificate
//! ([`crate::tls`]), or plain HTTP when asked for by name
//! (`--listen-plain-http`, with a warning); every request carries the
//! token of the access file ([`crate::access`]), which is written when the
//! listener opens.

use crate::access::{self, Access, AccessFile};
use crate::auth::{self, Remote};
use crate::routes::{self, App};
use crate::server::listen_warning;
use crate::tls::{self, TlsListener};
use crate::{DaemonError, DaemonPaths};
use axum::middleware;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// An open TCP listener, not yet serving.
pub(crate) struct Tcp {
    listener: Listener,
    /// Where it listens.
    pub(crate) bound: SocketAddr,
    /// Its access file and token (rotated through the Unix socket).
    pub(crate) access: Access,
}

enum Listener {
    Tls(TlsListener),
    Plain(TcpListener),
}

/// Where a client on another machine reaches `bound`: this machine's host
/// name for the unspecified address (`0.0.0.0`, `::`).
fn reachable(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified()
        && let Ok(host) = nix::unistd::gethostname()
        && let Some(host) = host.to_str()
        && !host.is_empty()
    {
        return format!("{host}:{}", bound.port());
    }
    bound.to_string()
}

/// Opens the listener on `addr`. The access file's token is read first (a
/// file that cannot be used stops the daemon before anything listens),
/// then the certificate made or read, the port bound, and the access file
/// written with the address and the certificate's fingerprint (or
/// `plain-http yes`).
pub(crate) async fn open(
    paths: &DaemonPaths,
    addr: SocketAddr,
    plain_http: bool,
) -> Result<Tcp, DaemonError> {
    let token = Access::token_of(&paths.token)?;
    let identity = if plain_http {
        None
    } else {
        Some(tls::identity(paths, addr)?)
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| DaemonError::Setup(format!("cannot listen on tcp {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| DaemonError::Setup(format!("cannot listen on tcp {addr}: {e}")))?;
    let access = Access::write(
        &paths.token,
        AccessFile {
            token,
            address: Some(reachable(bound)),
            tls_sha256: identity.as_ref().map(|i| i.fingerprint),
            plain_http,
        },
    )?;
    if let Some(warning) = listen_warning(bound, plain_http) {
        tracing::warn!("{warning}");
    }
    let listener = match identity {
        Some(identity) => {
            tracing::info!(
                "https on tcp {bound}: certificate sha-256 {} (access file {})",
                identity.fingerprint,
                paths.token.display()
            );
            Listener::Tls(TlsListener::new(listener, identity.config)?)
        }
        None => Listener::Plain(listener),
    };
    Ok(Tcp {
        listener,
        bound,
        access,
    })
}

/// Serves `app` on the listener until `stopped` resolves.
pub(crate) async fn serve(
    tcp: Tcp,
    app: App,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let Tcp {
        listener,
        bound,
        access,
    } = tcp;
    let service = routes::router()
        .merge(access::tcp_routes())
        .layer(middleware::from_fn_with_state(access, auth::bearer))
        .with_state(app)
        .into_make_service_with_connect_info::<Remote>();
    match listener {
        Listener::Tls(listener) => {
            axum::serve(listener, service)
                .with_graceful_shutdown(stopped)
                .await
        }
        Listener::Plain(listener) => {
            axum::serve(listener, service)
                .with_graceful_shutdown(stopped)
                .await
        }
    }
    .map_err(|e| DaemonError::Setup(format!("tcp {bound}: {e}")))
}
