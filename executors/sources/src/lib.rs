//! twinflow-sources owns external data: a workflow's `sources:`
//! ([`twinflow_core::SourceSpec`]) fetched on the submitting host into a
//! content-addressed cache shared by all runs of a state directory, verified
//! before any run sees it, and the fetch executor that runs the plan's
//! source tasks by materialising a cache entry into the task's directory.
//!
//! One [`Fetcher`] per scheme (`https`, `s3`, `stac`, `gbif`) gets content
//! into a staging path; the cache decides when to ask, verifies what came
//! back and publishes it; the executor waits when a step asked it to.
//! [`HttpWebhooks`] posts the webhooks of event hooks (`on:`) for the engine.

pub mod cache;
mod error;
pub mod executor;
mod fetcher;
pub mod formats;
pub mod gbif;
pub mod http;
mod lock;
pub mod progress;
pub mod registry;
mod remote;
mod retry;
pub mod s3;
mod scrub;
pub mod stac;
mod stac_file;
mod tree;
mod webhook;

pub use cache::{Cache, Entry, Policy, Resolution};
pub use error::SourceError;
pub use executor::{FetchExecutor, FetchFactory};
pub use fetcher::{Fetched, Fetcher, Request, Validators, leave_digest};
pub use formats::check_format;
pub use gbif::GbifFetcher;
pub use http::{HttpFetcher, Retry};
pub use registry::{Fetchers, fetcher_for};
pub use s3::S3Fetcher;
pub use scrub::scrub_url;
pub use stac::StacFetcher;
pub use webhook::HttpWebhooks;
