//! twinflow-store: artefacts in an S3 object store, for hand-off between
//! executors on different sites (issue 8). Built on the `object_store` crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), twinflow_store::StoreError> {
//! use twinflow_store::{ArtefactName, Store};
//! let store = Store::open("s3://twinflow-test/runs")?;          // AWS_* variables or profile
//! let name = ArtefactName::new("run-1", "forest.0", "cover")?;
//! let manifest = store.put_output(&name, "out/cover.nc".as_ref()).await?;  // data, then manifest
//! // ... on another site:
//! let manifest = store.manifest(&name).await?;
//! store.get_output(&manifest, "inputs/cover.nc".as_ref()).await?;         // verified, then renamed
//! # Ok(()) }
//! ```
//!
//! # Layout under `s3://bucket/prefix`
//! - `blobs/sha256/<hex>`: file contents, content-addressed. Identical
//!   content is stored once: an upload is skipped when a blob of that digest
//!   and size is there already.
//! - `manifests/<run>/<task>/<output>.json`: one [`Manifest`] per output
//!   (a file or a directory tree), listing each file's relative path, size,
//!   sha256 and blob key. It is written only after every blob it names is
//!   complete, so a manifest that exists always points at complete data.
//!
//! # Operations ([`Store`])
//! - [`Store::open`] / [`Store::open_with`]: parse and check the address
//!   ([`Location::parse`]), build the client. No request is sent.
//! - [`Store::put_file`]: one file to a blob ([`Blob`]). Files up to
//!   [`StoreOptions::multipart_threshold`] (64 MiB) are read once, hashed and
//!   sent in one PUT. Larger files are hashed in a first pass (the key
//!   depends on the digest), then sent as a multipart upload of
//!   [`StoreOptions::part_size`] parts (16 MiB, at most
//!   [`StoreOptions::parts_in_flight`] = 4 at once) while being hashed again;
//!   if the file changed in between the upload is aborted
//!   ([`StoreError::Changed`]).
//! - [`Store::put_output`]: a file or directory, then its manifest.
//! - [`Store::manifest`]: read and check a manifest (untrusted input:
//!   relative paths only, consistent sizes and digests, blob keys of this
//!   store); [`Store::check_output`]: every blob is there with its size.
//! - [`Store::get_output`] / [`Store::get_blob`]: download into a temporary
//!   file next to the destination, hashing while writing; renamed into place
//!   (after an fsync, [`StoreOptions::sync_downloads`]) only if size and
//!   sha256 match. A mismatch is [`StoreError::DigestMismatch`] naming the
//!   object and both digests, and nothing is left at the destination.
//!
//! # Credentials and endpoint
//! `AmazonS3Builder::from_env()`: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` (any S3-compatible server,
//! path-style requests), `AWS_ALLOW_HTTP=true` for a plain-http endpoint.
//! Without `AWS_ACCESS_KEY_ID` the profile `AWS_PROFILE` (default `default`)
//! of `~/.aws/credentials` and `~/.aws/config` is read (keys, `region`,
//! `endpoint_url`); failing that, `object_store`'s own chain (web identity,
//! container and instance metadata credentials). The secret key and session
//! token never appear in a message, a log line or `Debug` output.
//!
//! # Failures
//! Every request is retried on transient failures (connection refused or
//! dropped, timeouts, 5xx, 429) with exponential backoff, bounded by
//! [`RetrySettings`]; permanent ones (403, 404, a missing bucket, 400) are
//! not. Errors are [`StoreError`]s whose text is a lowercase fragment naming
//! the object (`s3://bucket/key`) and the endpoint, or the local path;
//! [`StoreError::is_transient`] tells whether trying later may help.
//!
//! Used by the cloud executor (`twinflow-executor-cloud`) to hand artefacts
//! to and from its VMs. Not built: deleting old runs, parallel ranged
//! downloads.
//!
//! Tests run against a real S3 server (`deploy/dev/s3-up`, Ceph RGW, started
//! by `scripts/test`, which sets `TWINFLOW_TEST_S3=1`).

mod config;
mod digest;
mod download;
mod error;
mod location;
mod manifest;
mod store;
mod upload;

pub use config::{Credentials, RetrySettings, StoreOptions};
pub use digest::{Digest, Hasher};
pub use error::{RemoteKind, StoreError};
pub use location::{ArtefactName, Location};
pub use manifest::{FileEntry, Kind, MANIFEST_FORMAT, Manifest};
pub use store::Store;
pub use upload::Blob;
