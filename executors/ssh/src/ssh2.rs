//! [`Ssh2Remote`]: SSH in process through libssh2, one connection per remote.

use crate::error::{io_reason, lowercase_first};
use crate::options::{
    current_user, files_label, host_key_algorithms, host_pattern, known_key_types, tilde,
};
use crate::{Output, Remote, SshError, SshOptions, SshTarget, exec_label, target_label};
use ::ssh2::{CheckResult, ErrorCode, KnownHostFileKind, MethodType, Session, Sftp};
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod files;
use files::{download, put, read_file, upload};

/// libssh2 codes meaning the connection itself is gone.
const LOST: &[i32] = &[
    -1,  // SOCKET_NONE
    -2,  // BANNER_RECV
    -3,  // BANNER_SEND
    -7,  // SOCKET_SEND
    -13, // SOCKET_DISCONNECT
    -30, // SOCKET_TIMEOUT
    -43, // SOCKET_RECV
    -45, // BAD_SOCKET
];
const TIMEOUT: i32 = -9;
const SFTP_NO_SUCH_FILE: i32 = 2;
const SFTP_NO_SUCH_PATH: i32 = 10;
/// SFTP "no connection" and "connection lost".
const SFTP_LOST: &[i32] = &[6, 7];
const CHUNK: usize = 256 * 1024;

/// SSH through libssh2: ONE connection per value (clones share it), opened
/// on the first call and used by every call after, one at a time (each
/// command a channel, files through one SFTP session). A connection the
/// server closed is seen before a call (a peek at the socket) and opened
/// anew. One that turns out dead during a call is opened once more, and the
/// call repeated on it if that is safe: a file operation, or a command that
/// could not have started; a command that may have run is never repeated
/// but fails as [`SshError::Disconnected`].
///
/// Limits: each blocking step waits at most [`SshOptions::timeout`] (libssh2
/// counts whole seconds, so up to a few more), after which the call fails as
/// [`SshError::Timeout`] and the connection is opened anew; a command that
/// is silent for longer fails that way, so long work belongs in the
/// background (`sbatch`, `nohup`). `exec` writes all of stdin before it
/// reads any output, so a command that prints more than about 2 MiB (the
/// channel window) before it has read all of a large stdin stalls until the
/// timeout. A call whose future is dropped still runs to its end on its
/// thread, and the next call waits for it.
#[derive(Clone)]
pub struct Ssh2Remote {
    inner: Arc<Inner>,
}

struct Inner {
    host: String,
    port: u16,
    user: String,
    label: String,
    options: SshOptions,
    conn: Mutex<Option<Conn>>,
    connections: AtomicU64,
}

struct Conn {
    session: Session,
    sftp: Option<Sftp>,
    /// The session's socket, to see whether the server hung up.
    tcp: TcpStream,
}

impl fmt::Debug for Ssh2Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ssh2Remote")
            .field("target", &self.inner.label)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl Ssh2Remote {
    /// A remote for the target; nothing is opened until the first call.
    /// Without `user@`, the local user name.
    pub fn new(target: &SshTarget, options: SshOptions) -> Self {
        let user = target.user.clone().unwrap_or_else(current_user);
        let port = target.port.unwrap_or(22);
        Self {
            inner: Arc::new(Inner {
                label: target_label(&user, &target.host, port),
                host: target.host.clone(),
                port,
                user,
                options,
                conn: Mutex::new(None),
                connections: AtomicU64::new(0),
            }),
        }
    }

    /// How many connections were opened so far (1 after any number of calls
    /// on a healthy connection).
    pub fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Opens the connection now if it is not open (it is opened by the first
    /// call anyway): to fail early on a wrong host key or login.
    pub async fn check(&self) -> Result<(), SshError> {
        self.run("connect".to_owned(), true, |_| Ok(())).await
    }

    /// Runs `op` on the connection in a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        during: String,
        retry_safe: bool,
        op: impl FnMut(&mut Conn) -> Result<T, Fail> + Send + 'static,
    ) -> Result<T, SshError> {
        let inner = self.inner.clone();
        let label = during.clone();
        tokio::task::spawn_blocking(move || inner.run_blocking(&during, retry_safe, op))
            .await
            .map_err(|e| SshError::Local {
                during: format!("{label} on {}", self.inner.label),
                reason: format!("worker task failed: {e}"),
            })?
    }
}

#[async_trait::async_trait]
impl Remote for Ssh2Remote {
    async fn exec(&self, command: &str, stdin: Option<Vec<u8>>) -> Result<Output, SshError> {
        let command = command.to_owned();
        let during = exec_label(&command);
        self.run(during, false, move |conn| {
            exec(&conn.session, &command, stdin.as_deref())
        })
        .await
    }

    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SshError> {
        let path = path.to_owned();
        self.run(format!("read {path}"), true, move |conn| {
            read_file(conn.sftp()?, &path)
        })
        .await
    }

    async fn write(&self, path: &str, data: &[u8], mode: u32) -> Result<(), SshError> {
        let (path, data) = (path.to_owned(), data.to_vec());
        self.run(format!("write {path}"), true, move |conn| {
            put(conn.sftp()?, Path::new(&path), mode, &mut data.as_slice())
        })
        .await
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<(), SshError> {
        let (from, to) = (local.to_owned(), PathBuf::from(remote));
        self.run(
            format!("upload {} to {remote}", from.display()),
            true,
            move |conn| upload(conn.sftp()?, &from, &to, &mut Vec::new()),
        )
        .await
    }

    async fn download_within(
        &self,
        remote: &str,
        local: &Path,
        root: &str,
    ) -> Result<(), SshError> {
        let (from, to, root) = (PathBuf::from(remote), local.to_owned(), PathBuf::from(root));
        self.run(
            format!("download {remote} to {}", to.display()),
            true,
            move |conn| download(conn.sftp()?, &from, &to, &root),
        )
        .await
    }

    fn describe(&self) -> String {
        self.inner.label.clone()
    }
}

impl Conn {
    /// Whether the server has not closed the connection: a non-blocking
    /// peek sees no end-of-file. (It cannot see a silent network; a
    /// timeout does.)
    fn open(&self) -> bool {
        // libssh2 made the socket non-blocking in the handshake (it waits
        // with poll and its own timeout) and must find it so: never make it
        // blocking again, or a read blocks forever
        if self.tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        match self.tcp.peek(&mut byte) {
            Ok(n) => n > 0,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }

    fn sftp(&mut self) -> Result<&Sftp, Fail> {
        if self.sftp.is_none() {
            let sftp = self
                .session
                .sftp()
                .map_err(|e| Fail::ssh("open sftp", e, false))?;
            self.sftp = Some(sftp);
        }
        self.sftp
            .as_ref()
            .ok_or_else(|| Fail::ssh("open sftp", ::ssh2::Error::unknown(), false))
    }
}

/// How an operation on an open connection failed.
enum Fail {
    /// libssh2 said no; `started`: a command may have run.
    Ssh {
        during: String,
        err: ::ssh2::Error,
        started: bool,
    },
    /// A channel stream failed (its libssh2 code is lost in `io::Error`).
    Stream { during: String, err: io::Error },
    /// The remote side refused, in words of ours.
    Refused { during: String, reason: String },
    /// A download met a link out of its root ([`SshError::LinkOutside`]).
    Link {
        link: String,
        to: String,
        resolved: Option<String>,
        root: String,
    },
    /// A finished error (local file trouble).
    Done(SshError),
}

#[derive(PartialEq, Eq)]
enum Class {
    /// The connection is fine; the operation failed.
    Kept,
    /// The connection is gone.
    Lost,
    /// No answer in time: the connection is in an unknown state.
    TimedOut,
}

impl Fail {
    fn ssh(during: impl Into<String>, err: ::ssh2::Error, started: bool) -> Self {
        Self::Ssh {
            during: during.into(),
            err,
            started,
        }
    }

    fn stream(during: impl Into<String>, err: io::Error) -> Self {
        Self::Stream {
            during: during.into(),
            err,
        }
    }

    fn class(&self) -> Class {
        match self {
            Self::Ssh { err, .. } => match err.code() {
                ErrorCode::Session(TIMEOUT) => Class::TimedOut,
                ErrorCode::Session(c) if LOST.contains(&c) => Class::Lost,
                ErrorCode::SFTP(c) if SFTP_LOST.contains(&c) => Class::Lost,
                _ => Class::Kept,
            },
            Self::Stream { err, .. } if err.kind() == io::ErrorKind::TimedOut => Class::TimedOut,
            Self::Stream { .. } => Class::Lost,
            Self::Refused { .. } | Self::Link { .. } | Self::Done(_) => Class::Kept,
        }
    }

    /// Whether repeating the operation on a new connection is safe.
    fn may_repeat(&self, retry_safe: bool) -> bool {
        retry_safe || matches!(self, Self::Ssh { started: false, .. })
    }

    /// A libssh2 code that does not tell whether the connection is fine
    /// (`sftp_init` reports any failure as a channel failure).
    fn ambiguous(&self) -> bool {
        matches!(self, Self::Ssh { err, .. } if matches!(err.code(), ErrorCode::Session(_)))
    }

    fn into_error(self, class: Class, inner: &Inner) -> SshError {
        let target = inner.label.clone();
        match self {
            Self::Done(e) => e,
            Self::Link {
                link,
                to,
                resolved,
                root,
            } => SshError::LinkOutside {
                target,
                link,
                to,
                resolved,
                root,
            },
            Self::Refused { during, reason } => SshError::Remote {
                target,
                during,
                reason,
            },
            Self::Ssh { during, .. } | Self::Stream { during, .. } if class == Class::TimedOut => {
                SshError::Timeout {
                    target,
                    during,
                    seconds: inner.options.timeout.as_secs(),
                }
            }
            Self::Ssh { during, err, .. } if class == Class::Lost => SshError::Disconnected {
                target,
                during,
                reason: ssh_reason(&err),
            },
            Self::Stream { during, err } => SshError::Disconnected {
                target,
                during,
                reason: io_reason(&err),
            },
            Self::Ssh { during, err, .. } => SshError::Remote {
                target,
                during,
                reason: ssh_reason(&err),
            },
        }
    }
}

/// A libssh2 error as a fragment: SFTP codes by name, others by message.
fn ssh_reason(err: &::ssh2::Error) -> String {
    match err.code() {
        ErrorCode::SFTP(code) => match code {
            SFTP_NO_SUCH_FILE | SFTP_NO_SUCH_PATH => "no such file or directory".to_owned(),
            3 => "permission denied".to_owned(),
            4 => "failure (e.g. not a regular file, or the target exists)".to_owned(),
            11 => "already exists".to_owned(),
            12 => "read-only file system".to_owned(),
            14 => "no space left on device".to_owned(),
            15 => "quota exceeded".to_owned(),
            18 => "directory not empty".to_owned(),
            19 => "not a directory".to_owned(),
            c => format!("sftp error {c}"),
        },
        ErrorCode::Session(_) => lowercase_first(err.message()),
    }
}

fn is_missing(err: &::ssh2::Error) -> bool {
    matches!(
        err.code(),
        ErrorCode::SFTP(SFTP_NO_SUCH_FILE | SFTP_NO_SUCH_PATH)
    )
}

impl Inner {
    fn run_blocking<T>(
        &self,
        during: &str,
        retry_safe: bool,
        mut op: impl FnMut(&mut Conn) -> Result<T, Fail>,
    ) -> Result<T, SshError> {
        let mut slot = match self.conn.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // a panic mid-operation: the connection's state is unknown
                let mut guard = poisoned.into_inner();
                *guard = None;
                self.conn.clear_poison();
                guard
            }
        };
        let (mut conn, reused) = match slot.take() {
            Some(conn) if conn.open() => (conn, true),
            Some(_) => {
                tracing::debug!(target = %self.label, "the server closed the connection; connecting again");
                (self.connect()?, false)
            }
            None => (self.connect()?, false),
        };
        let fail = match op(&mut conn) {
            Ok(value) => {
                *slot = Some(conn);
                return Ok(value);
            }
            Err(fail) => fail,
        };
        let mut class = fail.class();
        if class == Class::Kept && fail.ambiguous() {
            if conn.open() {
                // the connection is fine; an SFTP channel may not be
                conn.sftp = None;
            } else {
                class = Class::Lost;
            }
        }
        match class {
            Class::Kept => {
                *slot = Some(conn);
                Err(fail.into_error(class, self))
            }
            Class::Lost if reused && fail.may_repeat(retry_safe) => {
                drop(conn);
                tracing::debug!(target = %self.label, during, "connection lost; connecting again");
                let mut conn = self.connect()?;
                match op(&mut conn) {
                    Ok(value) => {
                        *slot = Some(conn);
                        Ok(value)
                    }
                    Err(fail) => {
                        let class = fail.class();
                        if class == Class::Kept {
                            *slot = Some(conn);
                        }
                        Err(fail.into_error(class, self))
                    }
                }
            }
            Class::Lost | Class::TimedOut => Err(fail.into_error(class, self)),
        }
    }

    fn connect(&self) -> Result<Conn, SshError> {
        let start = Instant::now();
        let tcp = self.tcp()?;
        let probe = tcp.try_clone().map_err(|e| SshError::Connect {
            target: self.label.clone(),
            reason: io_reason(&e),
        })?;
        let mut session = Session::new().map_err(|e| SshError::Local {
            during: format!("starting an ssh session for {}", self.label),
            reason: ssh_reason(&e),
        })?;
        session.set_timeout(u32::try_from(self.options.timeout.as_millis()).unwrap_or(u32::MAX));
        self.prefer_known_host_key_types(&session);
        session.set_tcp_stream(tcp);
        session.handshake().map_err(|e| {
            let reason = ssh_reason(&e);
            let target = self.label.clone();
            match e.code() {
                ErrorCode::Session(c) if LOST.contains(&c) || c == TIMEOUT => {
                    SshError::Connect { target, reason }
                }
                _ => SshError::Handshake { target, reason },
            }
        })?;
        self.check_host_key(&session)?;
        self.authenticate(&session)?;
        let n = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(target = %self.label, connection = n, elapsed = ?start.elapsed(), "ssh connected");
        Ok(Conn {
            session,
            sftp: None,
            tcp: probe,
        })
    }

    fn tcp(&self) -> Result<TcpStream, SshError> {
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| SshError::Resolve {
                target: self.label.clone(),
                reason: io_reason(&e),
            })?
            .collect();
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, self.options.connect_timeout) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            }
        }
        let reason = match last {
            Some(e) if e.kind() == io::ErrorKind::TimedOut => {
                format!("timed out after {:?}", self.options.connect_timeout)
            }
            Some(e) => io_reason(&e),
            None => {
                return Err(SshError::Resolve {
                    target: self.label.clone(),
                    reason: "no address".to_owned(),
                });
            }
        };
        Err(SshError::Connect {
            target: self.label.clone(),
            reason,
        })
    }

    /// Like OpenSSH, asks first for the host key types known_hosts holds for
    /// this host, so a known key is compared rather than another type found
    /// unknown.
    fn prefer_known_host_key_types(&self, session: &Session) {
        let pattern = host_pattern(&self.host, self.port);
        let mut types = Vec::new();
        for file in &self.options.known_hosts {
            if let Ok(text) = fs::read_to_string(file) {
                types.extend(known_key_types(&text, &pattern));
            }
        }
        let preferred = host_key_algorithms(&types);
        if preferred.is_empty() {
            return;
        }
        let Ok(supported) = session.supported_algs(MethodType::HostKey) else {
            return;
        };
        let mut order: Vec<&str> = preferred
            .into_iter()
            .filter(|a| supported.contains(a))
            .collect();
        let rest: Vec<&str> = supported
            .iter()
            .copied()
            .filter(|a| !order.contains(a))
            .collect();
        order.extend(rest);
        if let Err(e) = session.method_pref(MethodType::HostKey, &order.join(",")) {
            tracing::debug!("host key preference {order:?} refused: {e}");
        }
    }

    fn check_host_key(&self, session: &Session) -> Result<(), SshError> {
        let host = match self.port {
            22 => self.host.clone(),
            p => format!("{}:{p}", self.host),
        };
        let Some((key, _)) = session.host_key() else {
            return Err(SshError::Handshake {
                target: self.label.clone(),
                reason: "the server sent no host key".to_owned(),
            });
        };
        let mut known = session.known_hosts().map_err(|e| SshError::Local {
            during: "reading known_hosts".to_owned(),
            reason: ssh_reason(&e),
        })?;
        for file in &self.options.known_hosts {
            let Ok(text) = fs::read_to_string(file) else {
                continue;
            };
            // line by line: libssh2 stops a whole file at a line it cannot
            // parse (a key type it does not know, a marker)
            for line in text.lines() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') && !line.starts_with('@') {
                    let _ = known.read_str(line, KnownHostFileKind::OpenSSH);
                }
            }
        }
        let files = files_label(&self.options.known_hosts);
        let pattern = host_pattern(&self.host, self.port);
        match known.check_port(&self.host, self.port, key) {
            CheckResult::Match => Ok(()),
            CheckResult::NotFound => {
                let into = self
                    .options
                    .known_hosts
                    .first()
                    .map_or_else(|| "~/.ssh/known_hosts".to_owned(), |f| tilde(f));
                let port = if self.port == 22 {
                    String::new()
                } else {
                    format!("-p {} ", self.port)
                };
                Err(SshError::HostKeyUnknown {
                    host,
                    files,
                    hint: format!("ssh-keyscan {port}{} >> {into}", self.host),
                })
            }
            CheckResult::Mismatch => Err(SshError::HostKeyMismatch {
                host,
                files,
                pattern,
            }),
            CheckResult::Failure => Err(SshError::Handshake {
                target: self.label.clone(),
                reason: "could not check the host key against known_hosts".to_owned(),
            }),
        }
    }

    fn authenticate(&self, session: &Session) -> Result<(), SshError> {
        let user = &self.user;
        let lost = |e: ::ssh2::Error| SshError::Connect {
            target: self.label.clone(),
            reason: format!("during login: {}", ssh_reason(&e)),
        };
        let methods = session.auth_methods(user).map_err(lost)?.to_owned();
        if session.authenticated() {
            return Ok(());
        }
        if !methods.split(',').any(|m| m == "publickey") {
            return Err(SshError::Auth {
                target: self.label.clone(),
                tried: format!("nothing: the server accepts only {methods}, not keys"),
            });
        }
        let mut tried = Vec::new();
        let agent_sock = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty());
        if self.options.use_agent && agent_sock.is_some() {
            match try_agent(session, user) {
                Ok(None) => return Ok(()),
                Ok(Some(0)) => tried.push("ssh-agent (no keys)".to_owned()),
                Ok(Some(n)) => tried.push(format!("ssh-agent ({n} keys, rejected)")),
                Err(e) if is_lost(&e) => return Err(lost(e)),
                Err(e) => tried.push(format!("ssh-agent (unusable: {})", ssh_reason(&e))),
            }
        }
        for id in &self.options.identities {
            let shown = tilde(id);
            if !id.is_file() {
                tried.push(format!("{shown} (missing)"));
                continue;
            }
            match session.userauth_pubkey_file(user, None, id, None) {
                Ok(()) if session.authenticated() => return Ok(()),
                Ok(()) => tried.push(format!("{shown} (rejected)")),
                Err(e) if is_lost(&e) => return Err(lost(e)),
                Err(e) => match e.code() {
                    ErrorCode::Session(-18 | -19) => tried.push(format!("{shown} (rejected)")),
                    ErrorCode::Session(-16) => tried.push(format!(
                        "{shown} (unreadable: {}; passphrase-protected keys need ssh-agent)",
                        ssh_reason(&e)
                    )),
                    _ => tried.push(format!("{shown} ({})", ssh_reason(&e))),
                },
            }
        }
        let tried = if tried.is_empty() {
            "nothing: no ssh-agent (SSH_AUTH_SOCK is not set) and no identity file \
             (set TWINFLOW_SSH_IDENTITY, or create ~/.ssh/id_ed25519)"
                .to_owned()
        } else {
            tried.join(", ")
        };
        Err(SshError::Auth {
            target: self.label.clone(),
            tried,
        })
    }
}

fn is_lost(err: &::ssh2::Error) -> bool {
    matches!(err.code(), ErrorCode::Session(c) if LOST.contains(&c) || c == TIMEOUT)
}

/// Logs in with the agent's keys: `None` when in, else how many it had.
fn try_agent(session: &Session, user: &str) -> Result<Option<usize>, ::ssh2::Error> {
    let mut agent = session.agent()?;
    agent.connect()?;
    agent.list_identities()?;
    let keys = agent.identities()?;
    for key in &keys {
        match agent.userauth(user, key) {
            Ok(()) if session.authenticated() => return Ok(None),
            Err(e) if is_lost(&e) => return Err(e),
            _ => {}
        }
    }
    let _ = agent.disconnect();
    Ok(Some(keys.len()))
}

fn exec(session: &Session, command: &str, stdin: Option<&[u8]>) -> Result<Output, Fail> {
    let during = exec_label(command);
    let mut channel = session
        .channel_session()
        .map_err(|e| Fail::ssh(&during, e, false))?;
    channel
        .exec(command)
        .map_err(|e| Fail::ssh(&during, e, true))?;
    if let Some(data) = stdin {
        // a command that exits without reading all of it closes the channel:
        // not an error of ours; a dropped connection shows in the reads below
        let _ = channel.write_all(data);
    }
    let _ = channel.send_eof();
    let mut stdout = Vec::new();
    channel
        .read_to_end(&mut stdout)
        .map_err(|e| Fail::stream(&during, e))?;
    let mut stderr = Vec::new();
    channel
        .stderr()
        .read_to_end(&mut stderr)
        .map_err(|e| Fail::stream(&during, e))?;
    channel
        .wait_close()
        .map_err(|e| Fail::ssh(&during, e, true))?;
    let killed = channel
        .exit_signal()
        .map(|s| s.exit_signal.is_some())
        .unwrap_or(false);
    let status = if killed {
        -1
    } else {
        channel.exit_status().unwrap_or(-1)
    };
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}
