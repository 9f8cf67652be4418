//! The daemon's and the client's errors.

use std::path::Path;

/// What went wrong; messages are lowercase fragments naming the path, run
/// or socket.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds the state directory.
    #[error("a twinflow daemon (pid {pid}) already runs for {state_dir}")]
    AlreadyRunning {
        /// Its pid.
        pid: u32,
        /// The state directory.
        state_dir: String,
    },
    /// No daemon answers at the socket.
    #[error(
        "no twinflow daemon answers at {socket}: {reason} (start one with `twinflow daemon start`)"
    )]
    NotRunning {
        /// The socket.
        socket: String,
        /// Why.
        reason: String,
    },
    /// The daemon's socket may not be used by this user: its directory or
    /// socket is another user's (mode 0700/0600).
    #[error(
        "permission denied: the daemon belongs to another user (cannot connect to {socket}: {reason})"
    )]
    PermissionDenied {
        /// The socket.
        socket: String,
        /// Why.
        reason: String,
    },
    /// The daemon could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The daemon refused a request, with its words.
    #[error("{message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// A read route did not find what was asked for (a 404 that says what).
    #[error("{0}")]
    NotFound(crate::api::NotFound),
    /// The TCP token file cannot be used (missing, unreadable, readable by
    /// others, not a token).
    #[error("{0}")]
    Token(String),
    /// The TLS of the TCP listener failed: no handshake, or a certificate
    /// other than the pinned one (the message names both fingerprints).
    #[error("{0}")]
    Tls(String),
    /// The exchange with the daemon broke.
    #[error("talking to the twinflow daemon failed: {0}")]
    Protocol(String),
}

impl DaemonError {
    pub(crate) fn io(path: &Path, e: &std::io::Error) -> Self {
        Self::Setup(format!("{}: {e}", path.display()))
    }
}
