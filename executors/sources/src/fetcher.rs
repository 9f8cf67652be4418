//! The scheme contract: a [`Fetcher`] gets one source instance's content
//! into a staging path the cache gives it, revalidating when the cache
//! already holds a copy. Verification (digest, `sha256`, `format`) and
//! publishing are the cache's.

use crate::SourceError;
use std::path::Path;
use twinflow_core::SourceSpec;

/// One source instance to fetch.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The source, as compiled.
    pub spec: &'a SourceSpec,
    /// This instance's URL, every `${{ }}` substituted.
    pub url: &'a str,
}

/// What lets an upstream say "not modified" (HTTP `ETag` and
/// `Last-Modified`, an S3 object's ETag, a STAC item's `updated`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    /// An opaque version tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// An HTTP date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// What a fetch brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// New content now sits at the staging path: a file, or a directory
    /// when `directory`.
    Content {
        /// Whether it is a directory.
        directory: bool,
        /// For the next revalidation.
        validators: Validators,
        /// The URL the content came from in the end (after redirects, a
        /// GBIF download's archive link), credentials scrubbed: the
        /// provenance `contentUrl`.
        content_url: String,
        /// How to cite it (a GBIF download's DOI), if the upstream says.
        citation: Option<String>,
    },
    /// The upstream still has what the cache holds (the `known`
    /// validators matched).
    NotModified,
}

/// Gets one scheme's content.
#[async_trait::async_trait]
pub trait Fetcher: Send + Sync + std::fmt::Debug {
    /// Fetches `request` into `staging`: create a file or a directory
    /// there. `staging` is `content` in a directory of its own that the
    /// fetcher may keep side files in (resume state, [`leave_digest`]);
    /// the cache removes it once the fetch is published or refused. It may
    /// hold a file an earlier, interrupted call left there (resume it, as
    /// HTTP does with `Range`, or overwrite it); a leftover directory is
    /// removed by the cache first. `known` are the validators of the copy
    /// the cache holds, if any: answer [`Fetched::NotModified`] when the
    /// upstream confirms it unchanged.
    async fn fetch(
        &self,
        request: Request<'_>,
        staging: &Path,
        known: Option<&Validators>,
    ) -> Result<Fetched, SourceError>;
}

/// Leaves the SHA-256 (lowercase hex) and size of the file a fetcher has
/// just written at `staging`, hashed while streaming, so that the cache
/// does not read it again; the cache uses it only when the file still has
/// that size. Optional: without it the cache hashes the file.
pub fn leave_digest(staging: &Path, sha256: &str, size: u64) -> std::io::Result<()> {
    std::fs::write(digest_hint_path(staging), format!("{sha256} {size}"))
}

/// The digest [`leave_digest`] left for `staging`, if its size still holds.
pub(crate) fn digest_left(staging: &Path, size: u64) -> Option<String> {
    let text = std::fs::read_to_string(digest_hint_path(staging)).ok()?;
    let (sha, n) = text.trim().split_once(' ')?;
    (n.parse::<u64>().ok()? == size && sha.len() == 64).then(|| sha.to_owned())
}

fn digest_hint_path(staging: &Path) -> std::path::PathBuf {
    let mut name = staging.as_os_str().to_owned();
    name.push(".sha256");
    std::path::PathBuf::from(name)
}
