//! [`StoreError`]: what went wrong, naming the object (`s3://bucket/key`), the
//! endpoint or the local path, and whether retrying later can help
//! ([`StoreError::is_transient`]). Turns `object_store` errors into these,
//! with the credentials scrubbed from every message.

use std::error::Error as _;
use std::io;
use std::path::PathBuf;

use object_store::client::{HttpError, HttpErrorKind};

use crate::digest::Digest;

/// What kind of remote failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// Connection refused or dropped, a timeout, a 5xx, 429 or 408 answer: the
    /// store's retries with backoff were used up; trying again later may work.
    Transient,
    /// 404: no such object or bucket.
    NotFound,
    /// 401 or 403: the credentials are wrong or lack the permission.
    Denied,
    /// Anything else (e.g. 400): retrying will not help.
    Other,
}

/// An error of the artefact store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store address is not `s3://bucket[/prefix]`.
    #[error("invalid store address `{url}`: {reason}")]
    Address { url: String, reason: String },
    /// A run, task or output name cannot be a key segment.
    #[error("invalid artefact {what} `{value}`: {reason}")]
    Name {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// The S3 client could not be set up (bad endpoint, settings).
    #[error("failed to set up the s3 client for {location} at {endpoint}: {message}")]
    Config {
        location: String,
        endpoint: String,
        message: String,
    },
    /// A request to the store failed (after its retries, if transient).
    #[error("failed to {action} {url} at {endpoint}: {message}")]
    Remote {
        action: &'static str,
        /// `s3://bucket/key`.
        url: String,
        endpoint: String,
        kind: RemoteKind,
        message: String,
    },
    /// A local file could not be read or written.
    #[error("failed to {action} {}: {source}", path.display())]
    Local {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Downloaded bytes do not have the expected digest.
    #[error("digest mismatch for {url}: expected sha256 {expected}, got sha256 {actual}")]
    DigestMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    /// An object does not have the expected size.
    #[error("size mismatch for {url}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },
    /// A local file changed between hashing and uploading it.
    #[error(
        "{} changed while it was uploaded (sha256 {before} when hashed, {after} as uploaded): \
         the upload was aborted", path.display()
    )]
    Changed {
        path: PathBuf,
        before: Digest,
        after: Digest,
    },
    /// A manifest is not valid JSON of the expected shape, or is inconsistent.
    #[error("invalid manifest {url}: {reason}")]
    Manifest { url: String, reason: String },
    /// A local path is of a kind that cannot be stored (symlink, socket, ...).
    #[error("cannot store {}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
}

impl StoreError {
    /// True if retrying the operation later may succeed (see [`RemoteKind::Transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Remote {
                kind: RemoteKind::Transient,
                ..
            }
        )
    }

    /// The kind of a remote failure, `None` for the other errors.
    pub fn remote_kind(&self) -> Option<RemoteKind> {
        match self {
            StoreError::Remote { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub(crate) fn local(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Local {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Strings that must never appear in a message (secret key, session token).
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

impl Secrets {
    pub(crate) fn new(values: impl IntoIterator<Item = String>) -> Secrets {
        // short values would redact ordinary words; real secrets are long
        Secrets(values.into_iter().filter(|v| v.len() >= 8).collect())
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
        out
    }
}

/// Context for turning an `object_store` error into a [`StoreError::Remote`].
#[derive(Debug, Clone)]
pub(crate) struct Remote<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) secrets: &'a Secrets,
}

impl Remote<'_> {
    pub(crate) fn error(
        &self,
        action: &'static str,
        url: String,
        err: &object_store::Error,
    ) -> StoreError {
        let (kind, message) = describe(err);
        StoreError::Remote {
            action,
            url,
            endpoint: self.endpoint.to_owned(),
            kind,
            message: self.secrets.scrub(&message),
        }
    }
}

/// Classifies an `object_store` error and says it in a short lowercase
/// fragment, followed by the client's own account (which names the request
/// and the number of retries).
pub(crate) fn describe(err: &object_store::Error) -> (RemoteKind, String) {
    use object_store::Error as E;
    let detail = chain(err);
    let status = find_status(&detail);
    let (kind, summary) = match err {
        E::NotFound { .. } => (RemoteKind::NotFound, "not found (404)".to_owned()),
        E::PermissionDenied { .. } => (RemoteKind::Denied, "access denied (403)".to_owned()),
        E::Unauthenticated { .. } => (RemoteKind::Denied, "not authenticated (401)".to_owned()),
        _ => match (http_kind(err), status) {
            (_, Some(s)) if s >= 500 || s == 429 || s == 408 => {
                (RemoteKind::Transient, format!("server error (http {s})"))
            }
            (_, Some(s)) => (RemoteKind::Other, format!("request refused (http {s})")),
            (Some(k), None) => match k {
                HttpErrorKind::Connect => (RemoteKind::Transient, "cannot connect".to_owned()),
                HttpErrorKind::Timeout => (RemoteKind::Transient, "timed out".to_owned()),
                HttpErrorKind::Request | HttpErrorKind::Interrupted => {
                    (RemoteKind::Transient, "connection lost".to_owned())
                }
                _ => (RemoteKind::Other, "bad response".to_owned()),
            },
            (None, None) => (RemoteKind::Other, "request failed".to_owned()),
        },
    };
    let code = s3_code(&detail)
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    (kind, format!("{summary}{code}; {detail}"))
}

/// The error and its sources, joined with `: ` (repeats removed).
fn chain(err: &object_store::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    let text = parts.join(": ").replace('\n', " ");
    match text.strip_prefix("Generic S3 error: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

fn http_kind(err: &object_store::Error) -> Option<HttpErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        cur = e.source();
    }
    None
}

/// The HTTP status in object_store's text "... status code: 503 Service Unavailable ...".
fn find_status(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// The S3 error code of an XML error body: `<Code>NoSuchBucket</Code>`.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    (!code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_secrets() {
        let s = Secrets::new(["sekrit-value-123".to_owned(), "short".to_owned()]);
        assert_eq!(
            s.scrub("key sekrit-value-123 and sekrit-value-123, short"),
            "key <redacted> and <redacted>, short"
        );
        assert_eq!(format!("{s:?}"), "Secrets(1 redacted)");
    }

    #[test]
    fn status_and_code_from_text() {
        let t = "Error performing PUT http://h/b/k in 2ms - Server returned non-2xx status code: \
                 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>";
        assert_eq!(find_status(t), Some(503));
        assert_eq!(s3_code(t), Some("SlowDown"));
        assert_eq!(find_status("no status here"), None);
        assert_eq!(s3_code("<Code>a b</Code>"), None);
    }

    #[test]
    fn classifies_object_store_errors() {
        let nf = object_store::Error::NotFound {
            path: "b/k".into(),
            source: "gone".into(),
        };
        let (k, m) = describe(&nf);
        assert_eq!(k, RemoteKind::NotFound);
        assert!(m.starts_with("not found (404); "), "{m}");
        let generic = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 500 Internal Server Error: ".into(),
        };
        assert_eq!(describe(&generic).0, RemoteKind::Transient);
        let bad = object_store::Error::Generic {
            store: "S3",
            source:
                "Server returned non-2xx status code: 400 Bad Request: <Code>InvalidArgument</Code>"
                    .into(),
        };
        let (k, m) = describe(&bad);
        assert_eq!(k, RemoteKind::Other);
        assert!(
            m.starts_with("request refused (http 400) InvalidArgument; "),
            "{m}"
        );
        let e = Remote {
            endpoint: "http://127.0.0.1:1",
            secrets: &Secrets::default(),
        }
        .error("download", "s3://b/k".into(), &nf);
        assert!(!e.is_transient());
        assert!(
            e.to_string()
                .starts_with("failed to download s3://b/k at http://127.0.0.1:1: not found (404)"),
            "{e}"
        );
    }
}
