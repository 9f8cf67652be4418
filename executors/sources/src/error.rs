//! What can go wrong with a source, as messages that name the source and
//! its URL (credentials scrubbed).

/// A source could not be fetched or verified.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The upstream has no such content (HTTP 404/410, no S3 object, a STAC
    /// search without items, a GBIF download not ready): a data trigger
    /// waits on this one; everything else fails.
    #[error("source `{source_name}` ({url}): {reason}")]
    Absent {
        /// The source's name.
        source_name: String,
        /// Its URL, credentials scrubbed.
        url: String,
        /// What the upstream said.
        reason: String,
    },
    /// A fault that may pass (a reset connection, HTTP 5xx or 429); the
    /// fetcher has already retried it with backoff.
    #[error("source `{source_name}` ({url}): {reason}")]
    Transient {
        /// The source's name.
        source_name: String,
        /// Its URL, credentials scrubbed.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Anything else: refused access, a checksum mismatch, a truncated or
    /// corrupt body, content not of its `format`, a missing credential.
    #[error("source `{source_name}` ({url}): {reason}")]
    Failed {
        /// The source's name.
        source_name: String,
        /// Its URL, credentials scrubbed.
        url: String,
        /// What went wrong.
        reason: String,
    },
}
