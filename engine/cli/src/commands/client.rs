//! Reaching a daemon from the command line: which one (`--daemon`,
//! `$TWINFLOW_DAEMON`, else the socket of the state directory), its token
//! for TCP, and the exit code of a failed call.

use super::inspect::state_dir;
use crate::args::{DaemonArgs, StateArgs};
use crate::exit;
use crate::output::Output;
use std::path::PathBuf;
use twinflow_daemon::{Client, DaemonError, DaemonPaths, read_token_file};

/// The daemon a command talks to.
pub(crate) struct Target {
    pub(crate) client: Client,
    /// Named with `--daemon` or `$TWINFLOW_DAEMON`: then it must answer
    /// (no falling back to the state store).
    pub(crate) explicit: bool,
    /// What messages name as where runs are: the state directory, or the
    /// daemon's address.
    pub(crate) place: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The daemon of `--daemon URL` (else `$TWINFLOW_DAEMON`), else of the state
/// directory's socket. A bad URL exits 2; an unusable token file 3.
pub(crate) fn target(out: &Output, state: &StateArgs, args: &DaemonArgs) -> Result<Target, u8> {
    let dir = state_dir(state);
    let Some(url) = args.daemon.clone().or_else(|| env("TWINFLOW_DAEMON")) else {
        return Ok(Target {
            client: Client::for_state_dir(&dir),
            explicit: false,
            place: dir.display().to_string(),
        });
    };
    if let Some(addr) = url.strip_prefix("tcp://") {
        let addr = addr.trim_end_matches('/');
        if addr
            .rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            out.error(&format!("--daemon {url}: expected tcp://HOST:PORT"));
            return Err(exit::INVALID);
        }
        let token_file = args
            .token_file
            .clone()
            .or_else(|| env("TWINFLOW_TOKEN_FILE").map(PathBuf::from))
            .unwrap_or_else(|| DaemonPaths::new(&dir).token);
        let token = read_token_file(&token_file).map_err(|e| failed(out, &e))?;
        return Ok(Target {
            client: Client::tcp(addr, token),
            explicit: true,
            place: format!("tcp://{addr}"),
        });
    }
    if let Some(socket) = url.strip_prefix("unix:").filter(|s| !s.is_empty()) {
        return Ok(Target {
            client: Client::new(socket),
            explicit: true,
            place: socket.to_owned(),
        });
    }
    out.error(&format!(
        "--daemon {url}: expected tcp://HOST:PORT or unix:SOCKET"
    ));
    Err(exit::INVALID)
}

/// The exit code of a client error, after reporting it: 3 when the daemon
/// cannot be used (none answers, the token or the user is refused, the
/// exchange broke), 2 when it refused the request itself.
pub(crate) fn failed(out: &Output, e: &DaemonError) -> u8 {
    out.error(&e.to_string());
    match e {
        DaemonError::Refused { status, .. } if *status == 401 || *status == 403 => {
            exit::UNREACHABLE
        }
        DaemonError::Refused { status, .. } if *status < 500 => exit::INVALID,
        DaemonError::NotFound(_) => exit::INVALID,
        _ => exit::UNREACHABLE,
    }
}

/// A current-thread runtime for client calls.
pub(crate) fn runtime(out: &Output) -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            out.error(&format!("failed to start the async runtime: {e}"));
            exit::UNREACHABLE
        })
}

/// Runs one client call to its end.
pub(crate) fn block_on<T>(out: &Output, f: impl std::future::Future<Output = T>) -> Result<T, u8> {
    runtime(out).map(|rt| rt.block_on(f))
}
