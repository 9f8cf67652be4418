//! Where a daemon's files are: `<state dir>/daemon/` (mode 0700) holds the
//! socket, the lock file with the pid, the log, and the access file (token
//! and certificate fingerprint), certificate and key of the optional TCP
//! listener.

use crate::DaemonError;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The files of the daemon of one state directory.
#[derive(Debug, Clone)]
pub struct DaemonPaths {
    /// `<state dir>/daemon`.
    pub dir: PathBuf,
    /// The Unix socket.
    pub socket: PathBuf,
    /// The lock file (holds the pid).
    pub lock: PathBuf,
    /// Where `twinflow daemon start` sends the daemon's output.
    pub log: PathBuf,
    /// The access file of the TCP listener (mode 0600), when one is
    /// enabled: its token on the first line, then where it listens and the
    /// fingerprint of its certificate (see [`crate::AccessFile`]).
    pub token: PathBuf,
    /// The TCP listener's self-signed certificate (PEM), made on its first
    /// start and kept, so clients keep their pin.
    pub tls_cert: PathBuf,
    /// The certificate's private key (PEM, mode 0600).
    pub tls_key: PathBuf,
}

/// The longest path a Unix socket address holds (`sun_path`, with its NUL).
const SOCKET_PATH_MAX: usize = 107;

impl DaemonPaths {
    /// The paths for `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        let dir = state_dir.join("daemon");
        Self {
            socket: dir.join("twinflow.sock"),
            lock: dir.join("daemon.lock"),
            log: dir.join("daemon.log"),
            token: dir.join("token"),
            tls_cert: dir.join("tls-cert.pem"),
            tls_key: dir.join("tls-key.pem"),
            dir,
        }
    }

    /// Creates the directory (0700, also when it existed with other bits)
    /// and checks the socket path fits a socket address.
    pub(crate) fn prepare(&self) -> Result<(), DaemonError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| DaemonError::io(&self.dir, &e))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| DaemonError::io(&self.dir, &e))?;
        let len = self.socket.as_os_str().len();
        if len > SOCKET_PATH_MAX {
            return Err(DaemonError::Setup(format!(
                "the socket path {} is {len} bytes, more than a unix socket takes ({SOCKET_PATH_MAX}); use a shorter --state-dir",
                self.socket.display()
            )));
        }
        Ok(())
    }
}
