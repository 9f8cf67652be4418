//! Shared pieces of the sources tests: a devserver over a temp dir, specs,
//! a fast-retrying HTTP fetcher, the server's per-path counters.

#![expect(
    clippy::unwrap_used,
    reason = "test support stops at the first broken setup"
)]

use std::path::Path;
use std::time::Duration;
use twinflow_core::{SourceFormat, SourceOptions, SourceScheme, SourceSpec};
use twinflow_sources::{HttpFetcher, Retry};

/// A devserver serving `root`, its base URL.
pub(crate) async fn server(root: &Path) -> String {
    let running = twinflow_devserver::start(
        twinflow_devserver::Config {
            root: root.to_path_buf(),
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    running.base_url()
}

pub(crate) fn spec(name: &str, url: &str) -> SourceSpec {
    SourceSpec {
        name: name.into(),
        url: url.into(),
        scheme: SourceScheme::Http,
        sha256: None,
        refresh_seconds: None,
        format: SourceFormat::Any,
        directory: false,
        file_name: "data.bin".into(),
        options: SourceOptions::default(),
        wait: None,
    }
}

pub(crate) fn fetcher() -> HttpFetcher {
    HttpFetcher::new(Retry {
        attempts: 4,
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    })
    .unwrap()
}

/// `/files/_stats/<path>` of the server at `base`.
pub(crate) async fn stats(base: &str, path: &str) -> serde_json::Value {
    let text = reqwest::get(format!("{base}/files/_stats/{path}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

pub(crate) fn status_count(stats: &serde_json::Value, code: u16) -> u64 {
    stats["statuses"][code.to_string()].as_u64().unwrap_or(0)
}

/// Deterministic bytes.
pub(crate) fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Files under `dir` (recursively), for "nothing published" checks.
pub(crate) fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}
