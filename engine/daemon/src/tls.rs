//! The TLS side of the TCP listener: the daemon's self-signed certificate
//! and key (`<state dir>/daemon/tls-cert.pem`, `tls-key.pem` mode 0600),
//! made on the first start and kept across restarts so clients keep their
//! pin, and [`TlsListener`], which hands `axum::serve` connections whose
//! handshake is done (each handshake on a task of its own, with a time
//! limit, so a silent client holds up nobody).

use crate::pin::Fingerprint;
use crate::{DaemonError, DaemonPaths};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// How long a client may take over its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The listener's TLS setup and its certificate's fingerprint.
pub(crate) struct Identity {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) fingerprint: Fingerprint,
}

/// The names a new certificate is made for: `localhost`, the loopback
/// addresses, this machine's host name, and `listen`'s address unless it
/// is the unspecified one.
fn names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = nix::unistd::gethostname()
        && let Some(host) = host.to_str()
        && !host.is_empty()
    {
        names.push(host.to_owned());
    }
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    names.dedup();
    names
}

/// The daemon's certificate and key, made (for `listen`'s names) when
/// either file is missing; a key file others may read is refused.
pub(crate) fn identity(paths: &DaemonPaths, listen: SocketAddr) -> Result<Identity, DaemonError> {
    if !(paths.tls_cert.exists() && paths.tls_key.exists()) {
        create(paths, listen)?;
    }
    check_private(&paths.tls_key)?;
    let unusable = |path: &Path, e: &dyn std::fmt::Display| {
        DaemonError::Setup(format!(
            "the daemon's tls certificate or key {} cannot be used: {e} \
             (remove {} and {} for a new pair; clients then need the new access file)",
            path.display(),
            paths.tls_cert.display(),
            paths.tls_key.display()
        ))
    };
    let cert = CertificateDer::from_pem_file(&paths.tls_cert)
        .map_err(|e| unusable(&paths.tls_cert, &e))?;
    let key =
        PrivateKeyDer::from_pem_file(&paths.tls_key).map_err(|e| unusable(&paths.tls_key, &e))?;
    let fingerprint = Fingerprint::of(&cert);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DaemonError::Setup(format!("cannot set up tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| unusable(&paths.tls_cert, &e))?;
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
    })
}

/// Refuses a key file anyone but its owner may read, or another user's.
fn check_private(path: &Path) -> Result<(), DaemonError> {
    let meta = std::fs::metadata(path).map_err(|e| DaemonError::io(path, &e))?;
    let mode = meta.mode() & 0o777;
    let me = nix::unistd::geteuid().as_raw();
    if mode & 0o077 != 0 || meta.uid() != me {
        return Err(DaemonError::Setup(format!(
            "the daemon's tls key {} has mode {mode:04o} and owner uid {} (uid {me} and 0600 expected): \
             it is not used (remove it and its certificate for a new pair)",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// A new key and self-signed certificate: each written to a new file
/// renamed into place, the key first (a certificate is never there without
/// its key).
fn create(paths: &DaemonPaths, listen: SocketAddr) -> Result<(), DaemonError> {
    let failed =
        |e: rcgen::Error| DaemonError::Setup(format!("cannot make a tls certificate: {e}"));
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let names = names(listen);
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "twinflow daemon");
    let cert = params.self_signed(&key).map_err(failed)?;
    write_new(&paths.tls_key, &key.serialize_pem(), 0o600)?;
    write_new(&paths.tls_cert, &cert.pem(), 0o644)?;
    tracing::info!(
        "made the tls certificate {} (for {}; clients pin its fingerprint)",
        paths.tls_cert.display(),
        names.join(", ")
    );
    Ok(())
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), DaemonError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}", std::process::id()));
    let new = path.with_file_name(name);
    let _ = std::fs::remove_file(&new);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&new)
        .map_err(|e| DaemonError::io(&new, &e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| DaemonError::io(&new, &e))?;
    std::fs::rename(&new, path).map_err(|e| DaemonError::io(path, &e))
}

/// TCP connections after their TLS handshake, for `axum::serve`.
pub(crate) struct TlsListener {
    done: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `listener`, shaking hands with `config`.
    pub(crate) fn new(
        listener: TcpListener,
        config: Arc<ServerConfig>,
    ) -> Result<Self, DaemonError> {
        let local = listener
            .local_addr()
            .map_err(|e| DaemonError::Setup(format!("tcp listener: {e}")))?;
        let (tx, done) = mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let accepting = tokio::spawn(async move {
            loop {
                let (tcp, from) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: not busy-looping.
                        tracing::warn!("tcp {local}: cannot accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, from)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!("refused a tcp connection from {from}: no tls ({e})");
                        }
                        Err(_) => tracing::warn!(
                            "refused a tcp connection from {from}: no tls handshake within {} s",
                            HANDSHAKE_LIMIT.as_secs()
                        ),
                    }
                });
            }
        });
        Ok(Self {
            done,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Closes the port with the server.
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.done.recv().await {
            Some(connection) => connection,
            // The accepting task ended (it never does but when aborted).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let paths = DaemonPaths::new(dir.path());
        std::fs::create_dir_all(&paths.dir).unwrap();
        let listen: SocketAddr = "127.0.0.1:7788".parse().unwrap();
        let first = identity(&paths, listen).unwrap().fingerprint;
        let mode = std::fs::metadata(&paths.tls_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(identity(&paths, listen).unwrap().fingerprint, first);
        // A key others may read is refused.
        std::fs::set_permissions(&paths.tls_key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = identity(&paths, listen).err().unwrap().to_string();
        assert!(e.contains("mode 0644"), "{e}");
        // Without its certificate, a new pair.
        std::fs::set_permissions(&paths.tls_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::remove_file(&paths.tls_cert).unwrap();
        assert_ne!(identity(&paths, listen).unwrap().fingerprint, first);
    }

    #[test]
    fn the_names_are_localhost_the_host_and_a_specific_address() {
        let names = names("10.1.2.3:7788".parse().unwrap());
        for name in ["localhost", "127.0.0.1", "::1", "10.1.2.3"] {
            assert!(names.iter().any(|n| n == name), "{names:?}");
        }
        let names = super::names("0.0.0.0:7788".parse().unwrap());
        assert!(!names.iter().any(|n| n == "0.0.0.0"), "{names:?}");
    }
}
