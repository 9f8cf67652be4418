//! The access file of the TCP listener (`<state dir>/daemon/token`, mode
//! 0600): everything a client on another login node needs to reach the
//! daemon, and the token the daemon accepts now. Its first line is the
//! bearer token alone (what the file held before TLS, so `head -n1` still
//! gives it); `key value` lines follow:
//!
//! ```text
//! 3f9c…(64 hex digits)
//! # twinflow daemon access file: keep it to yourself (mode 0600)
//! address login1.example.org:7788
//! tls-sha256 4A:0B:…:9E
//! ```
//!
//! `tls-sha256` pins the daemon's certificate; a daemon started with
//! `--listen-plain-http` writes `plain-http yes` instead, and only then does
//! a client speak plain HTTP. A file with the token alone (written before
//! TLS) still gives its token, but a client refuses to connect with it.
//! Unknown keys are passed over. A file anyone but its owner may read (or
//! that another user owns) is refused, as ssh refuses such a private key.
//!
//! The daemon writes it (atomically: a new file renamed over the old) when
//! it starts listening, keeping the token, and when the token is rotated
//! (`POST /v1/token/rotate`, on the Unix socket only): from then on only the
//! new token is accepted. [`Client::from_access_file`] and
//! [`Client::tcp_with_access_file`] build a client from it.

use crate::pin::Fingerprint;
use crate::routes::error;
use crate::{Client, DaemonError, token};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The shortest token a file may hold.
const MIN_TOKEN_LEN: usize = 32;

/// What an access file says.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessFile {
    /// The bearer token.
    pub token: String,
    /// Where the daemon listens (`host:port`), if the file says.
    pub address: Option<String>,
    /// The fingerprint of the daemon's certificate: the listener speaks
    /// HTTPS with it.
    pub tls_sha256: Option<Fingerprint>,
    /// The listener speaks plain HTTP (`--listen-plain-http`).
    pub plain_http: bool,
}

impl std::fmt::Debug for AccessFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("AccessFile")
            .field("address", &self.address)
            .field("tls_sha256", &self.tls_sha256)
            .field("plain_http", &self.plain_http)
            .finish_non_exhaustive()
    }
}

fn unreadable(path: &Path, e: &std::io::Error) -> DaemonError {
    DaemonError::Token(format!(
        "cannot read the access file {}: {e}",
        path.display()
    ))
}

impl AccessFile {
    /// Reads the access (token) file `path`, refusing a file its owner does
    /// not keep to themselves (mode bits for group or others) or that
    /// another user owns.
    pub fn read(path: &Path) -> Result<Self, DaemonError> {
        let mut file = std::fs::File::open(path).map_err(|e| unreadable(path, &e))?;
        let meta = file.metadata().map_err(|e| unreadable(path, &e))?;
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(DaemonError::Token(format!(
                "the token file {} has mode {mode:04o}: others may read it, so it is not used \
                 (`chmod 600 {}` if it is still secret; else remove it and restart the daemon for a new one)",
                path.display(),
                path.display()
            )));
        }
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            return Err(DaemonError::Token(format!(
                "the token file {} belongs to uid {}, not to uid {me}",
                path.display(),
                meta.uid()
            )));
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| unreadable(path, &e))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, DaemonError> {
        let mut lines = text.lines().map(str::trim);
        let token = lines.next().unwrap_or_default();
        if token.len() < MIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DaemonError::Token(format!(
                "the token file {} does not hold a token (at least {MIN_TOKEN_LEN} printable characters on its first line); \
                 remove it and restart the daemon for a new one",
                path.display()
            )));
        }
        let mut access = Self {
            token: token.to_owned(),
            address: None,
            tls_sha256: None,
            plain_http: false,
        };
        for line in lines.filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let value = value.trim();
            match key {
                "address" => access.address = Some(value.to_owned()),
                "tls-sha256" => {
                    access.tls_sha256 = Some(value.parse().map_err(|e| {
                        DaemonError::Token(format!("the access file {}: {e}", path.display()))
                    })?);
                }
                "plain-http" => access.plain_http = value == "yes",
                _ => {}
            }
        }
        if access.plain_http && access.tls_sha256.is_some() {
            return Err(DaemonError::Token(format!(
                "the access file {} says both `plain-http yes` and `tls-sha256`: restart the daemon to rewrite it",
                path.display()
            )));
        }
        Ok(access)
    }

    fn render(&self) -> String {
        let mut text = format!(
            "{}\n# twinflow daemon access file: keep it to yourself (mode 0600)\n",
            self.token
        );
        if let Some(address) = &self.address {
            text.push_str(&format!("address {address}\n"));
        }
        if let Some(fp) = &self.tls_sha256 {
            text.push_str(&format!("tls-sha256 {fp}\n"));
        }
        if self.plain_http {
            text.push_str("plain-http yes\n");
        }
        text
    }

    /// Writes the file atomically: a new 0600 file beside `path`, renamed
    /// over it.
    fn write(&self, path: &Path) -> Result<(), DaemonError> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".new-{}", std::process::id()));
        let new = path.with_file_name(name);
        let _ = std::fs::remove_file(&new);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&new)
            .map_err(|e| DaemonError::io(&new, &e))?;
        file.write_all(self.render().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| DaemonError::io(&new, &e))?;
        std::fs::rename(&new, path).map_err(|e| {
            let _ = std::fs::remove_file(&new);
            DaemonError::io(path, &e)
        })
    }
}

/// The TCP constructors of [`Client`] that read an access file.
impl Client {
    /// A client of a daemon's TCP listener (`twinflow daemon start --listen
    /// ADDR`) as its access file `path` (`<state dir>/daemon/token`, mode
    /// 0600) describes it: at its `address`, with its token, over HTTPS
    /// pinned to its `tls-sha256` fingerprint, or over plain HTTP when it
    /// says `plain-http yes` (and only then).
    pub fn from_access_file(path: &Path) -> Result<Self, DaemonError> {
        let access = AccessFile::read(path)?;
        let addr = access.address.clone().ok_or_else(|| {
            DaemonError::Token(format!(
                "the access file {} does not say where the daemon listens (no `address` line; \
                 restart the daemon to rewrite it, or name the address: `--daemon tcp://HOST:PORT`)",
                path.display()
            ))
        })?;
        Self::tcp_with_access_file(addr, path)
    }

    /// A client of the daemon's TCP listener at `addr` (`host:port`, e.g.
    /// the local end of an SSH tunnel) with the token and the pin (or
    /// `plain-http`) of its access file `path`.
    pub fn tcp_with_access_file(addr: impl Into<String>, path: &Path) -> Result<Self, DaemonError> {
        let access = AccessFile::read(path)?;
        let addr = addr.into();
        match access.tls_sha256 {
            Some(pin) => Ok(Self::tcp_pinned(addr, access.token, pin)),
            None if access.plain_http => Ok(Self::tcp_plain(addr, access.token)),
            None => Err(DaemonError::Token(format!(
                "the access file {} pins no certificate (no `tls-sha256` line, and no `plain-http yes`): \
                 it was written by a twinflow daemon without tls; restart the daemon to rewrite it",
                path.display()
            ))),
        }
    }
}

/// The access file of a running listener and the token it accepts now.
#[derive(Clone)]
pub(crate) struct Access {
    path: Arc<PathBuf>,
    file: Arc<RwLock<AccessFile>>,
}

impl Access {
    /// The token of the access file `path` (a new random one when the file
    /// is missing); an unusable file is refused. Nothing is written yet.
    pub(crate) fn token_of(path: &Path) -> Result<String, DaemonError> {
        if path.symlink_metadata().is_ok() {
            return AccessFile::read(path).map(|a| a.token);
        }
        token::random_hex()
    }

    /// Writes `file` to `path` and serves its token.
    pub(crate) fn write(path: &Path, file: AccessFile) -> Result<Self, DaemonError> {
        file.write(path)?;
        Ok(Self {
            path: Arc::new(path.to_path_buf()),
            file: Arc::new(RwLock::new(file)),
        })
    }

    /// Whether `given` is the token accepted now (in constant time).
    pub(crate) fn accepts(&self, given: &[u8]) -> bool {
        self.file
            .read()
            .is_ok_and(|file| token::matches(given, file.token.as_bytes()))
    }

    /// A new token, written to the access file before it is accepted; the
    /// old one is refused from then on.
    fn rotate(&self) -> Result<(), DaemonError> {
        let mut file = self
            .file
            .write()
            .map_err(|_| DaemonError::Setup("the token's lock is poisoned".to_owned()))?;
        let mut next = file.clone();
        next.token = token::random_hex()?;
        next.write(&self.path)?;
        *file = next;
        Ok(())
    }
}

/// `POST /v1/token/rotate` on the Unix socket (its peer check covers it):
/// a new token for the TCP listener, if there is one.
pub(crate) fn socket_routes<S: Clone + Send + Sync + 'static>(access: Option<Access>) -> Router<S> {
    Router::new()
        .route("/v1/token/rotate", post(rotate))
        .with_state(access)
}

/// `POST /v1/token/rotate` over TCP: refused.
pub(crate) fn tcp_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(
        "/v1/token/rotate",
        post(|| async {
            error(
                StatusCode::FORBIDDEN,
                "the token is rotated through the daemon's unix socket \
                 (`twinflow daemon rotate-token` on its login node), not over tcp",
            )
        }),
    )
}

async fn rotate(State(access): State<Option<Access>>) -> Response {
    let Some(access) = access else {
        return error(
            StatusCode::CONFLICT,
            "this daemon has no tcp listener, so no token to rotate (start it with --listen)",
        );
    };
    match tokio::task::spawn_blocking(move || access.rotate().map(|()| access)).await {
        Ok(Ok(access)) => {
            tracing::info!(
                "rotated the tcp token: the old one is refused from now on (new one in {})",
                access.path.display()
            );
            axum::Json(crate::api::TokenRotated {
                access_file: access.path.display().to_string(),
            })
            .into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the token was not rotated: {e}"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the token was not rotated: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("token");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    #[test]
    fn an_access_file_is_written_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let token = Access::token_of(&path).unwrap();
        assert_eq!(token.len(), 64);
        let written = AccessFile {
            token: token.clone(),
            address: Some("login1:7788".to_owned()),
            tls_sha256: Some(Fingerprint::of(b"cert")),
            plain_http: false,
        };
        let access = Access::write(&path, written.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(AccessFile::read(&path).unwrap(), written);
        assert_eq!(
            Access::token_of(&path).unwrap(),
            token,
            "kept across restarts"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(token.as_str()), "{text}");
        assert!(access.accepts(token.as_bytes()));
        access.rotate().unwrap();
        assert!(!access.accepts(token.as_bytes()));
        let rotated = AccessFile::read(&path).unwrap();
        assert_ne!(rotated.token, token);
        assert!(access.accepts(rotated.token.as_bytes()));
        assert_eq!(rotated.tls_sha256, written.tls_sha256);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!format!("{rotated:?}").contains(&rotated.token));
    }

    #[test]
    fn a_file_with_the_token_alone_still_gives_it() {
        let dir = tempfile::tempdir().unwrap();
        let token = "0123456789abcdef0123456789abcdef";
        let read = AccessFile::read(&file(dir.path(), &format!("{token}\n"))).unwrap();
        assert_eq!(read.token, token);
        assert_eq!(
            (read.address, read.tls_sha256, read.plain_http),
            (None, None, false)
        );
        let plain = format!("{token}\n# a comment\naddress h:1\nplain-http yes\nfuture-key x\n");
        let read = AccessFile::read(&file(dir.path(), &plain)).unwrap();
        assert!(read.plain_http);
        assert_eq!(read.address.as_deref(), Some("h:1"));
    }

    #[test]
    fn a_readable_short_or_contradictory_access_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "0123456789abcdef0123456789abcdef\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = Access::token_of(&path).unwrap_err().to_string();
        assert!(
            err.contains("mode 0640") && err.contains("chmod 600"),
            "{err}"
        );
        let err = AccessFile::read(&file(dir.path(), "abc\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not hold a token"), "{err}");
        let both = format!(
            "0123456789abcdef0123456789abcdef\ntls-sha256 {}\nplain-http yes\n",
            Fingerprint::of(b"x")
        );
        let err = AccessFile::read(&file(dir.path(), &both))
            .unwrap_err()
            .to_string();
        assert!(err.contains("says both"), "{err}");
        let bad = "0123456789abcdef0123456789abcdef\ntls-sha256 12:34\n";
        let err = AccessFile::read(&file(dir.path(), bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a sha-256 fingerprint"), "{err}");
        let err = AccessFile::read(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the access file"), "{err}");
    }
}
