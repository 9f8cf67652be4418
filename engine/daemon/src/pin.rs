//! The certificate pin of a TCP client: the SHA-256 [`Fingerprint`] of the
//! daemon's self-signed certificate, and the rustls verifier that accepts
//! exactly the certificate with that fingerprint (names, dates and issuers
//! do not matter; the handshake's signatures are still checked with the
//! crypto provider, so only the holder of the certificate's key passes).

use crate::DaemonError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The SHA-256 fingerprint of a certificate (of its DER bytes), written as
/// `openssl x509 -fingerprint -sha256` writes it: 32 upper-case hex pairs
/// joined by colons.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a certificate's DER bytes.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = DaemonError;

    /// 64 hex digits in either case, colons between pairs allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            DaemonError::Tls(format!(
                "`{s}` is not a sha-256 fingerprint (64 hex digits, colons allowed)"
            ))
        };
        let hex: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }
}

/// Accepts the one certificate whose fingerprint is `pin`; remembers the
/// fingerprint it was shown, for the error message.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Fingerprint,
    seen: Mutex<Option<Fingerprint>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of(end_entity);
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(seen);
        }
        if seen == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The host part of `host:port` (`[v6]:port` too), as a TLS server name;
/// `127.0.0.1` when it is none (the pin, not the name, is checked).
fn server_name(addr: &str) -> ServerName<'static> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_owned()).unwrap_or_else(|_| {
        ServerName::IpAddress(std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST).into())
    })
}

/// A TLS connection over `tcp` to the daemon at `addr`, accepting only the
/// certificate pinned by `pin`. A certificate with another fingerprint is
/// refused naming both.
pub(crate) async fn connect(
    tcp: TcpStream,
    addr: &str,
    pin: Fingerprint,
) -> Result<TlsStream<TcpStream>, DaemonError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PinnedVerifier {
        pin,
        seen: Mutex::new(None),
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DaemonError::Tls(format!("cannot set up tls to {addr}: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match connector.connect(server_name(addr), tcp).await {
        Ok(stream) => Ok(stream),
        Err(e) => {
            let seen = verifier.seen.lock().ok().and_then(|s| *s);
            Err(DaemonError::Tls(match seen {
                Some(seen) if seen != pin => format!(
                    "the daemon at tcp://{addr} shows a certificate with sha-256 fingerprint {seen}, \
                     but the access file pins {pin}: refused (a daemon that made a new certificate \
                     writes a new access file: use that one)"
                ),
                _ => format!(
                    "no tls with the daemon at tcp://{addr}: {e} (a daemon started with \
                     --listen-plain-http says `plain-http` in its access file)"
                ),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_written_as_openssl_writes_it_and_read_back() {
        let fp = Fingerprint::of(b"a certificate");
        let shown = fp.to_string();
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert!(shown.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()));
        assert_eq!(shown.to_uppercase(), shown);
        assert_eq!(shown.parse::<Fingerprint>().unwrap(), fp);
        let bare = shown.replace(':', "").to_lowercase();
        assert_eq!(bare.parse::<Fingerprint>().unwrap(), fp);
        for bad in ["", "AB:CD", &format!("{bare}00"), &bare.replace('a', "g")] {
            let e = bad.parse::<Fingerprint>().unwrap_err().to_string();
            assert!(e.contains("not a sha-256 fingerprint"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_server_name_is_the_host_of_the_address() {
        assert_eq!(
            format!("{:?}", server_name("login2.example.org:7788")),
            format!("{:?}", ServerName::try_from("login2.example.org").unwrap())
        );
        assert!(matches!(
            server_name("127.0.0.1:1"),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(server_name("[::1]:1"), ServerName::IpAddress(_)));
        assert!(matches!(
            server_name("bad host!:1"),
            ServerName::IpAddress(_)
        ));
    }
}
