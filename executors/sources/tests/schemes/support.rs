//! Helpers of the scheme tests: a source spec, the devserver started
//! in-process over the repository's fixtures, and a fetch into a fresh
//! staging path.

use std::path::PathBuf;
use twinflow_core::{SourceScheme, SourceSpec};
use twinflow_sources::{Fetched, Fetcher, Request, SourceError, Validators};

pub(crate) fn spec(name: &str, url: &str, scheme: SourceScheme, directory: bool) -> SourceSpec {
    SourceSpec::new(name, url, scheme, directory)
}

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/devserver/fixtures")
}

/// The devserver over the fixtures; its base URL.
pub(crate) async fn devserver() -> String {
    let running = twinflow_devserver::start(
        twinflow_devserver::Config { root: fixtures() },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("devserver starts");
    running.base_url()
}

/// Fetches `spec` into `<tmp>/staging`.
pub(crate) async fn fetch(
    fetcher: &dyn Fetcher,
    spec: &SourceSpec,
    tmp: &tempfile::TempDir,
    known: Option<&Validators>,
) -> (PathBuf, Result<Fetched, SourceError>) {
    let staging = tmp.path().join("staging");
    let got = fetcher
        .fetch(
            Request {
                spec,
                url: &spec.url,
            },
            &staging,
            known,
        )
        .await;
    (staging, got)
}

pub(crate) fn validators(f: &Fetched) -> Validators {
    match f {
        Fetched::Content { validators, .. } => validators.clone(),
        Fetched::NotModified => panic!("expected content, got NotModified"),
    }
}
