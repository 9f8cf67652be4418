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
    /// Fetches `request` into `staging` (which does not exist yet: create
    /// a file or a directory there). `known` are the validators of the copy
    /// the cache holds, if any: answer [`Fetched::NotModified`] when the
    /// upstream confirms it unchanged. A partial download may be left at
    /// `staging` for a later call to resume (HTTP Range) or to remove.
    async fn fetch(
        &self,
        request: Request<'_>,
        staging: &Path,
        known: Option<&Validators>,
    ) -> Result<Fetched, SourceError>;
}
