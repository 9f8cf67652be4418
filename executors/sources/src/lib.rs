//! twinflow-sources owns external data: a workflow's `sources:`
//! ([`twinflow_core::SourceSpec`]) fetched on the submitting host into a
//! content-addressed cache shared by all runs of a state directory, verified
//! before any run sees it, and the fetch executor that runs the plan's
//! source tasks by materialising a cache entry into the task's directory.
//!
//! One [`Fetcher`] per scheme (`https`, `s3`, `stac`, `gbif`) gets content
//! into a staging path; the cache decides when to ask, verifies what came
//! back and publishes it; the executor waits when a step asked it to.

mod error;
mod fetcher;
pub mod formats;
pub mod gbif;
mod remote;
pub mod s3;
pub mod stac;

pub use error::SourceError;
pub use fetcher::{Fetched, Fetcher, Request, Validators};
pub use formats::check_format;
pub use gbif::GbifFetcher;
pub use s3::S3Fetcher;
pub use stac::StacFetcher;
