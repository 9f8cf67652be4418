//! Who may use the daemon: on the Unix socket, only its own user (the
//! peer's uid, `SO_PEERCRED`); on the optional TCP listener, whoever sends
//! the token (`Authorization: Bearer <token>`) of the access file, since
//! TCP carries no uid.

use crate::access::Access;
use crate::routes::error;
use crate::tls::TlsListener;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use tokio::net::{TcpListener, UnixListener};

/// Who is on the other end of a Unix connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    uid: Option<u32>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, UnixListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, UnixListener>) -> Self {
        Self {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

/// Refuses every user but the daemon's own (403).
pub(crate) async fn only_owner(
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    let me = nix::unistd::geteuid().as_raw();
    if peer.uid != Some(me) {
        tracing::warn!("refused a connection from uid {:?}", peer.uid);
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "permission denied: the daemon belongs to another user (it serves only uid {me}, not {})",
                peer.uid
                    .map_or_else(|| "an unknown user".to_owned(), |u| u.to_string())
            ),
        );
    }
    next.run(req).await
}

/// Who is on the other end of a TCP connection, with or without TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remote(SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for Remote
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// The credentials of an `Authorization` header of the `Bearer` scheme,
/// whose name is case-insensitive (RFC 7235 section 2.1: `bearer`,
/// `BEARER`); spaces between scheme and token are allowed.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(credentials.trim_start())
}

/// Refuses a TCP request without the token accepted now (401), comparing
/// in constant time.
pub(crate) async fn bearer(
    State(access): State<Access>,
    ConnectInfo(Remote(from)): ConnectInfo<Remote>,
    req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials);
    let why = match given {
        Some(given) if access.accepts(given.trim().as_bytes()) => {
            return next.run(req).await;
        }
        Some(_) => "a wrong token",
        None => "no token",
    };
    tracing::warn!("refused a tcp request from {from}: {why}");
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        format!(
            "this twinflow daemon's tcp listener needs `Authorization: Bearer <token>` with the token of its access file (`<state dir>/daemon/token`; a rotated token replaces the old one); the request had {why}"
        ),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::bearer_credentials;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer abc", "bearer abc", "BEARER  abc", "BeArEr abc"] {
            assert_eq!(bearer_credentials(header), Some("abc"), "{header}");
        }
        assert_eq!(bearer_credentials("Basic abc"), None);
        assert_eq!(bearer_credentials("Bearerabc"), None);
        assert_eq!(bearer_credentials("Bearer"), None);
    }
}
