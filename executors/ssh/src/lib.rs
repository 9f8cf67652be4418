//! twinflow-ssh: run commands and move files on a host, here or over SSH,
//! behind one trait, so that the Slurm executor (and later the cloud one)
//! works the same on a login node and from a laptop.
//!
//! - [`Remote`] is the trait: [`exec`](Remote::exec) a `sh` command line,
//!   [`read`](Remote::read) / [`write`](Remote::write) a whole file,
//!   [`upload`](Remote::upload) / [`download`](Remote::download) a file or
//!   a directory tree; [`download_within`](Remote::download_within) follows
//!   no symbolic link out of a given directory.
//! - [`LocalHost`] runs on this machine (`/bin/sh -c`, the file system):
//!   for an executor that runs on the login node itself.
//! - [`Ssh2Remote`] (the default of [`connect`]) speaks SSH in process
//!   through libssh2 (the `ssh2` crate): one connection per remote, opened
//!   on first use and shared by every call (each command a channel on it,
//!   files through SFTP), opened again once if it dropped. Host keys are
//!   checked against known_hosts files and unknown keys are never accepted;
//!   it logs in with the keys of ssh-agent, then with identity files. It
//!   does not read `~/.ssh/config`.
//! - [`SystemSsh`] (`TWINFLOW_SSH_CLIENT=openssh`) runs the OpenSSH client
//!   `ssh` for each call, multiplexed over one master connection
//!   (`ControlMaster=auto`, `ControlPersist=60`), with `BatchMode=yes` and
//!   `StrictHostKeyChecking=yes`. It reads `~/.ssh/config`, so it is the
//!   choice for hosts reached through `ProxyJump`, certificates or a
//!   hardware key.
//!
//! Both SSH clients take [`SshOptions`], usually [`SshOptions::from_env`]:
//! `TWINFLOW_SSH_IDENTITY` (colon-separated private keys, else
//! `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`), `TWINFLOW_SSH_KNOWN_HOSTS`
//! (colon-separated known_hosts files, else `~/.ssh/known_hosts` and
//! `/etc/ssh/ssh_known_hosts`).
//!
//! Commands are handed to the login shell of the remote user as they are
//! (the caller quotes words with [`twinflow_core::shell_quote`]); relative
//! remote paths are relative to the login directory, `~` is not expanded.
//! Errors are [`SshError`]s that name the target, command or path and say
//! whether retrying can help ([`SshError::is_transient`]).
//!
//! Tests run against a real sshd (`deploy/dev/sshd-up`, started by
//! `scripts/test`, which sets `TWINFLOW_TEST_SSH=1`).

mod error;
mod local;
mod openssh;
mod options;
mod ssh2;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::ssh2::Ssh2Remote;
pub use error::SshError;
pub use local::LocalHost;
pub use openssh::SystemSsh;
pub use options::SshOptions;
pub use twinflow_core::SshTarget;

/// What a command left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit code; -1 if the command was killed by a signal or the code is unknown.
    pub status: i32,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A host to run commands on and move files to and from.
#[async_trait::async_trait]
pub trait Remote: Send + Sync + std::fmt::Debug {
    /// Runs a POSIX sh command line (the caller quotes words) with optional
    /// stdin (without, the command reads end-of-file); returns exit status,
    /// stdout, stderr. A non-zero exit is an `Ok`, not an error.
    async fn exec(&self, command: &str, stdin: Option<Vec<u8>>) -> Result<Output, SshError>;

    /// Reads a whole file; `Ok(None)` if it does not exist.
    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SshError>;

    /// Writes a whole file with permission bits `mode` (e.g. `0o644`),
    /// creating its parent directories. The data goes to a temporary file
    /// beside it first, renamed over the path, so a reader never sees half
    /// a file.
    async fn write(&self, path: &str, data: &[u8], mode: u32) -> Result<(), SshError>;

    /// Copies a local file or directory tree to the remote path (parents
    /// created, symlinks followed, permission bits kept). Files already
    /// there are replaced; others are left alone.
    async fn upload(&self, local: &Path, remote: &str) -> Result<(), SshError>;

    /// Copies a remote file or directory tree to the local path (parents
    /// created, permission bits kept): [`download_within`](Remote::download_within)
    /// the tree itself, so a symbolic link below `remote` is copied as its
    /// target only if that stays inside `remote` (which may itself be a
    /// link: it is resolved first).
    async fn download(&self, remote: &str, local: &Path) -> Result<(), SshError> {
        self.download_within(remote, local, remote).await
    }

    /// Copies a remote file or directory tree to the local path (parents
    /// created, permission bits kept), where every symbolic link met (`remote`
    /// itself, each entry below it, through linked directories too) must
    /// lead, fully resolved, to a path inside the directory `root` (`remote`
    /// or a directory above it, itself resolved). Such a link is copied as
    /// its target (the file's bytes, a directory's tree). A link that leads
    /// outside `root`, or to nothing, fails the call with
    /// [`SshError::LinkOutside`] naming the link and its target, before
    /// anything is copied: a remote file outside `root` never arrives here.
    /// The remote tree must not change meanwhile.
    async fn download_within(&self, remote: &str, local: &Path, root: &str)
    -> Result<(), SshError>;

    /// `root@127.0.0.1:2322` or `localhost`, for messages.
    fn describe(&self) -> String;
}

/// The remote for a target: [`Ssh2Remote`], or [`SystemSsh`] when
/// `TWINFLOW_SSH_CLIENT=openssh`. Nothing is opened until the first call.
pub fn connect(target: &SshTarget, options: SshOptions) -> Arc<dyn Remote> {
    match std::env::var("TWINFLOW_SSH_CLIENT").as_deref() {
        Ok("openssh") => Arc::new(SystemSsh::new(target, options)),
        Ok("" | "libssh2" | "ssh2") | Err(_) => Arc::new(Ssh2Remote::new(target, options)),
        Ok(other) => {
            tracing::warn!(
                "TWINFLOW_SSH_CLIENT={other} is not `openssh` or `libssh2`; using libssh2"
            );
            Arc::new(Ssh2Remote::new(target, options))
        }
    }
}

/// The SHA-256 of a local file, in hex: the name under which executors
/// upload a binary to a remote host, so that a copy already there is found
/// by its content.
pub fn file_sha256(path: &Path) -> Result<String, String> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `user@host:port` (the port only when not 22; IPv6 in brackets).
pub(crate) fn target_label(user: &str, host: &str, port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == 22 {
        format!("{user}@{host}")
    } else {
        format!("{user}@{host}:{port}")
    }
}

/// A command for messages: ``exec `squeue -h …` `` (at most 60 characters).
pub(crate) fn exec_label(command: &str) -> String {
    let one_line = command.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = one_line.chars().take(60).collect();
    if short.len() < one_line.len() {
        format!("exec `{short}…`")
    } else {
        format!("exec `{short}`")
    }
}

/// A fresh name beside `path` for writing before a rename:
/// `dir/.name.twinflow-<pid>-<n>.tmp`.
pub(crate) fn tmp_sibling(path: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), path),
    };
    format!("{dir}.{name}.twinflow-{pid}-{n}.tmp")
}

/// The directory part of a remote path, if it has one to create.
pub(crate) fn parent_dir(path: &str) -> Option<&str> {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some(("", _)) | None => None,
        Some((dir, _)) => Some(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(
            target_label("root", "127.0.0.1", 2322),
            "root@127.0.0.1:2322"
        );
        assert_eq!(target_label("u", "login.hpc", 22), "u@login.hpc");
        assert_eq!(target_label("u", "::1", 2322), "u@[::1]:2322");
        assert_eq!(exec_label("squeue  -h\n -o x"), "exec `squeue -h -o x`");
        assert!(exec_label(&"x".repeat(100)).ends_with("…`"));
    }

    #[test]
    fn tmp_names_stay_in_the_directory() {
        let t = tmp_sibling("/a/b/c.txt");
        assert!(t.starts_with("/a/b/.c.txt.twinflow-"), "{t}");
        assert_ne!(t, tmp_sibling("/a/b/c.txt"));
        assert!(tmp_sibling("c.txt").starts_with(".c.txt.twinflow-"));
        assert_eq!(parent_dir("/a/b/c"), Some("/a/b"));
        assert_eq!(parent_dir("/c"), None);
        assert_eq!(parent_dir("c"), None);
        assert_eq!(parent_dir("a/c/"), Some("a"));
    }
}
