//! The one error type of the crate.

use std::io;

/// Why a remote operation failed. Every message is a lowercase fragment
/// naming the host, the command or the path; [`SshError::is_transient`] says
/// whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host name did not resolve (not transient: usually a typo).
    #[error("cannot resolve the host of {target}: {reason}")]
    Resolve {
        /// `user@host:port`.
        target: String,
        /// Why.
        reason: String,
    },
    /// The TCP connection or the SSH handshake failed (transient).
    #[error("failed to connect to {target}: {reason}")]
    Connect {
        /// `user@host:port`.
        target: String,
        /// Why, e.g. `connection refused`.
        reason: String,
    },
    /// The server speaks SSH, but not in a way this client accepts, e.g. no
    /// common key-exchange algorithm (not transient).
    #[error("ssh handshake with {target} failed: {reason}")]
    Handshake {
        /// `user@host:port`.
        target: String,
        /// Why.
        reason: String,
    },
    /// No known_hosts file has a key for the host (not transient; keys
    /// are never accepted blindly).
    #[error("host key of {host} is not in {files} (check its fingerprint, then add it: {hint})")]
    HostKeyUnknown {
        /// `host:port`, or `host` for port 22.
        host: String,
        /// The known_hosts files looked in.
        files: String,
        /// A command that would add the key.
        hint: String,
    },
    /// A known_hosts file has a different key for the host (not transient).
    #[error(
        "host key of {host} does not match {files}: possible man-in-the-middle \
         (if the host was reinstalled, remove the old key with `ssh-keygen -R '{pattern}'`)"
    )]
    HostKeyMismatch {
        /// `host:port`, or `host` for port 22.
        host: String,
        /// The known_hosts files looked in.
        files: String,
        /// The known_hosts pattern of the host (`[host]:port` or `host`).
        pattern: String,
    },
    /// The server refused every key tried (not transient).
    #[error("authentication as {target} failed: tried {tried}")]
    Auth {
        /// `user@host:port`.
        target: String,
        /// What was tried, e.g. `ssh-agent (2 keys), /root/.ssh/id_ed25519 (rejected)`.
        tried: String,
    },
    /// The connection dropped or broke during an operation (transient; the
    /// next call connects again).
    #[error("connection to {target} lost during {during}: {reason}")]
    Disconnected {
        /// `user@host:port`.
        target: String,
        /// The operation, e.g. ``exec `squeue` ``.
        during: String,
        /// Why.
        reason: String,
    },
    /// A blocking step got no answer in time (transient; the next call
    /// connects again).
    #[error("{target} did not answer within {seconds} s during {during}")]
    Timeout {
        /// `user@host:port`.
        target: String,
        /// The operation.
        during: String,
        /// The limit.
        seconds: u64,
    },
    /// The remote side refused an operation, e.g. a permission denied on a
    /// path or a failing remote `tar` (not transient).
    #[error("{during} on {target} failed: {reason}")]
    Remote {
        /// `user@host:port` or `localhost`.
        target: String,
        /// The operation, e.g. `write /scratch/x`.
        during: String,
        /// Why.
        reason: String,
    },
    /// A download met a symbolic link (the downloaded path itself or an
    /// entry below it, through linked directories too) whose target,
    /// resolved, is outside the directory the download must stay in, or
    /// does not exist. Nothing was copied (not transient).
    #[error(
        "download from {target} refused: link {link} leads to {to}{}",
        link_refusal(.to, .resolved.as_deref(), .root)
    )]
    LinkOutside {
        /// `user@host:port` or `localhost`.
        target: String,
        /// The link, as a path on the remote side (`<root>/out/o.txt`).
        link: String,
        /// Its target as written.
        to: String,
        /// Its target resolved, or `None` if it does not exist (or loops).
        resolved: Option<String>,
        /// The directory every link must stay in, as the caller named it.
        root: String,
    },
    /// A local file or process operation failed (not transient).
    #[error("{during} failed: {reason}")]
    Local {
        /// The operation with its path, e.g. `reading /tmp/in/a.csv`.
        during: String,
        /// Why.
        reason: String,
    },
}

impl SshError {
    /// Whether trying again later can help: the network dropped, a
    /// connection was refused or timed out. Not for host keys,
    /// authentication, name resolution or refused file operations.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Disconnected { .. } | Self::Timeout { .. }
        )
    }

    pub(crate) fn local(during: impl Into<String>, err: &io::Error) -> Self {
        Self::Local {
            during: during.into(),
            reason: io_reason(err),
        }
    }
}

/// The end of a [`SshError::LinkOutside`] message, after `leads to TO`:
/// ` (RESOLVED), outside ROOT` or `, which does not exist`.
fn link_refusal(to: &str, resolved: Option<&str>, root: &str) -> String {
    match resolved {
        None => ", which does not exist".to_owned(),
        Some(r) if r == to => format!(", outside {root}"),
        Some(r) => format!(" ({r}), outside {root}"),
    }
}

/// An I/O error as a lowercase fragment: `connection refused` rather than
/// `Connection refused (os error 111)`.
pub(crate) fn io_reason(err: &io::Error) -> String {
    use io::ErrorKind as K;
    match err.kind() {
        K::NotFound
        | K::PermissionDenied
        | K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NotConnected
        | K::AddrNotAvailable
        | K::BrokenPipe
        | K::AlreadyExists
        | K::TimedOut
        | K::UnexpectedEof
        | K::IsADirectory
        | K::NotADirectory
        | K::DirectoryNotEmpty
        | K::ReadOnlyFilesystem
        | K::StorageFull => err.kind().to_string(),
        _ => lowercase_first(&err.to_string()),
    }
}

/// `Unable to open` → `unable to open` (keeps `SFTP` and other acronyms).
pub(crate) fn lowercase_first(s: &str) -> String {
    let s = s.trim().trim_end_matches('.');
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => {
            a.to_lowercase().chain(s[a.len_utf8()..].chars()).collect()
        }
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_fragments() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&e), "connection refused");
        assert_eq!(
            io_reason(&io::Error::other("Unable to send FXP_OPEN")),
            "unable to send FXP_OPEN"
        );
        assert_eq!(lowercase_first("SFTP failure."), "SFTP failure");
    }

    #[test]
    fn transient_or_not() {
        let connect = SshError::Connect {
            target: "root@127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert!(connect.is_transient());
        assert_eq!(
            connect.to_string(),
            "failed to connect to root@127.0.0.1:1: connection refused"
        );
        let auth = SshError::Auth {
            target: "root@h".into(),
            tried: "ssh-agent (no keys), /root/.ssh/id_ed25519 (rejected)".into(),
        };
        assert!(!auth.is_transient());
    }

    #[test]
    fn link_refusals_name_the_link_its_target_and_the_root() {
        let e = |to: &str, resolved: Option<&str>| {
            SshError::LinkOutside {
                target: "root@h:2322".into(),
                link: "/w/t/out.txt".into(),
                to: to.into(),
                resolved: resolved.map(Into::into),
                root: "/w/t".into(),
            }
            .to_string()
        };
        assert_eq!(
            e("/etc/passwd", Some("/etc/passwd")),
            "download from root@h:2322 refused: link /w/t/out.txt leads to /etc/passwd, outside /w/t"
        );
        assert_eq!(
            e("../../etc/passwd", Some("/etc/passwd")),
            "download from root@h:2322 refused: link /w/t/out.txt leads to ../../etc/passwd (/etc/passwd), outside /w/t"
        );
        assert_eq!(
            e("gone", None),
            "download from root@h:2322 refused: link /w/t/out.txt leads to gone, which does not exist"
        );
    }
}
