//! Shared pieces of the sources tests: a devserver over a temp dir, specs,
//! a fast-retrying HTTP fetcher, the server's per-path counters, and
//! [`Served`]: all of these with a cache, as the cache tests set up.

#![expect(
    clippy::unwrap_used,
    reason = "test support stops at the first broken setup"
)]

use std::path::Path;
use std::time::Duration;
use twinflow_core::{SourceScheme, SourceSpec};
use twinflow_sources::{
    Cache, Entry, HttpFetcher, Policy, Request, Resolution, Retry, SourceError,
};

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
    let mut spec = SourceSpec::new(name, url, SourceScheme::Http, false);
    spec.file_name = "data.bin".into();
    spec
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

/// A devserver over a fresh temp dir holding some files, a cache at
/// `<dir>/cache` and a fast-retrying fetcher: what each cache test starts
/// from.
pub(crate) struct Served {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) base: String,
    pub(crate) cache: Cache,
    pub(crate) fetcher: HttpFetcher,
}

impl Served {
    /// Serves `files` (name, content) from a fresh temp dir.
    pub(crate) async fn new(files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let base = server(dir.path()).await;
        let cache = Cache::new(dir.path().join("cache"));
        Self {
            dir,
            base,
            cache,
            fetcher: fetcher(),
        }
    }

    /// The URL of `/files/<rel>` (`rel` may carry a query).
    pub(crate) fn url(&self, rel: &str) -> String {
        format!("{}/files/{rel}", self.base)
    }

    /// Resolves `spec` at its own URL under `policy`.
    pub(crate) async fn resolve(
        &self,
        spec: &SourceSpec,
        policy: &Policy,
    ) -> Result<Resolution, SourceError> {
        let req = Request {
            spec,
            url: &spec.url,
        };
        self.cache.resolve(req, &self.fetcher, policy).await
    }

    /// Resolves `spec` for its current content, which must be ready: the
    /// entry and whether it was fetched.
    pub(crate) async fn ready(&self, spec: &SourceSpec) -> (Entry, bool) {
        ready(self.resolve(spec, &Policy::Current).await.unwrap())
    }

    /// The server's counters of `/files/<path>`.
    pub(crate) async fn stats(&self, path: &str) -> serde_json::Value {
        stats(&self.base, path).await
    }

    /// Files under the cache's `sub` folder (`blobs`, `index`, `staging`).
    pub(crate) fn cache_files(&self, sub: &str) -> usize {
        count_files(&self.dir.path().join("cache").join(sub))
    }
}

/// The entry of a ready resolution and whether it was fetched.
pub(crate) fn ready(r: Resolution) -> (Entry, bool) {
    match r {
        Resolution::Ready { entry, fetched } => (entry, fetched),
        other => panic!("not ready: {other:?}"),
    }
}
