//! The sources crate against the real devserver, started in-process: the
//! HTTP fetcher and the cache ([`cache_http`]), the fetch executor
//! ([`executor`]).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests and their support stop at the first broken setup"
)]

mod cache_http;
mod devserver;
mod executor;
mod support;
