//! The HTTP fetcher and the cache against the real devserver: revalidation,
//! resume, retries, refusals, locking, hits and re-fetches.

use super::support::*;
use twinflow_sources::{Cache, Policy, Request, Resolution, SourceError};

fn ready(r: Resolution) -> (twinflow_sources::Entry, bool) {
    match r {
        Resolution::Ready { entry, fetched } => (entry, fetched),
        other => panic!("not ready: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_revalidates_with_the_etag_and_gets_no_body() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), data(50_000)).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/a.bin");
    let mut spec = spec("a", &url);
    spec.refresh_seconds = Some(0);
    let cache = Cache::new(dir.path().join("cache"));
    let f = fetcher();
    let req = Request {
        spec: &spec,
        url: &url,
    };
    let (first, fetched) = ready(cache.resolve(req, &f, &Policy::Current).await.unwrap());
    assert!(fetched);
    assert_eq!(first.sha256, sha256_hex(&data(50_000)));
    assert!(first.validators.etag.is_some());
    let (second, fetched) = ready(cache.resolve(req, &f, &Policy::Current).await.unwrap());
    assert!(!fetched, "a 304 is not a download");
    assert_eq!(second.sha256, first.sha256);
    let s = stats(&base, "a.bin").await;
    assert_eq!(status_count(&s, 304), 1);
    assert_eq!(s["conditional"], 1);
    assert_eq!(s["body_bytes"], 50_000, "the body went once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_body_is_resumed_with_range_and_never_published_partial() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(3 << 20);
    std::fs::write(dir.path().join("big.bin"), &bytes).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/big.bin?truncate=1500000");
    let spec = spec("big", &url);
    let cache = Cache::new(dir.path().join("cache"));
    let req = Request {
        spec: &spec,
        url: &url,
    };
    let (entry, _) = ready(
        cache
            .resolve(req, &fetcher(), &Policy::Current)
            .await
            .unwrap(),
    );
    assert_eq!(entry.sha256, sha256_hex(&bytes));
    let published = std::fs::read(cache.content_path(&entry)).unwrap();
    assert_eq!(published, bytes);
    let s = stats(&base, "big.bin").await;
    assert_eq!(status_count(&s, 200), 1, "one full download started: {s}");
    assert!(status_count(&s, 206) >= 1, "resumed with a 206: {s}");
    let ranges = s["ranges"].as_array().unwrap();
    assert!(!ranges.is_empty());
    assert!(
        ranges
            .iter()
            .all(|r| r.as_str().unwrap().starts_with("bytes="))
    );
    assert!(s["body_bytes"].as_u64().unwrap() < 2 * bytes.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.bin"), data(1000)).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/r.bin?fail=2&retry_after=0");
    let spec = spec("r", &url);
    let cache = Cache::new(dir.path().join("cache"));
    let req = Request {
        spec: &spec,
        url: &url,
    };
    let (entry, _) = ready(
        cache
            .resolve(req, &fetcher(), &Policy::Current)
            .await
            .unwrap(),
    );
    assert_eq!(entry.size, 1000);
    let s = stats(&base, "r.bin").await;
    assert_eq!(status_count(&s, 503), 2);
    assert_eq!(status_count(&s, 200), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_5xx_gives_up_as_transient() {
    let dir = tempfile::tempdir().unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/x?status=500");
    let spec = spec("x", &url);
    let cache = Cache::new(dir.path().join("cache"));
    let req = Request {
        spec: &spec,
        url: &url,
    };
    let err = cache
        .resolve(req, &fetcher(), &Policy::Current)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Transient { .. }), "{err}");
    assert!(err.to_string().contains("gave up after 4 tries"), "{err}");
    assert_eq!(status_count(&stats(&base, "x").await, 500), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_absent_and_forbidden_fails() {
    let dir = tempfile::tempdir().unwrap();
    let base = server(dir.path()).await;
    let cache = Cache::new(dir.path().join("cache"));
    let url = format!("{base}/files/missing.csv");
    let s = spec("m", &url);
    let err = cache
        .resolve(
            Request {
                spec: &s,
                url: &url,
            },
            &fetcher(),
            &Policy::Current,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Absent { .. }), "{err}");
    assert!(err.to_string().contains("source `m`"), "{err}");
    let url = format!("http://ann:hunter2@{}/files/f?status=403", &base[7..]);
    let s = spec("f", &url);
    let err = cache
        .resolve(
            Request {
                spec: &s,
                url: &url,
            },
            &fetcher(),
            &Policy::Current,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Failed { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("403") && msg.contains("access refused"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "credentials leaked: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sha256_mismatch_is_refused_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.bin"), data(4000)).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/p.bin");
    let mut s = spec("p", &url);
    let wrong = "0".repeat(64);
    s.sha256 = Some(wrong.clone());
    let cache = Cache::new(dir.path().join("cache"));
    let err = cache
        .resolve(
            Request {
                spec: &s,
                url: &url,
            },
            &fetcher(),
            &Policy::Current,
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("expected {wrong}")), "{msg}");
    assert!(msg.contains(&sha256_hex(&data(4000))), "{msg}");
    for sub in ["blobs", "index", "staging"] {
        assert_eq!(count_files(&dir.path().join("cache").join(sub)), 0, "{sub}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.bin"), data(4000)).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/m.bin");
    let mut s = spec("m", &url);
    s.options.max_size = Some(1000);
    let cache = Cache::new(dir.path().join("cache"));
    let err = cache
        .resolve(
            Request {
                spec: &s,
                url: &url,
            },
            &fetcher(),
            &Policy::Current,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("over `max_size` 1000"), "{err}");
    assert_eq!(count_files(&dir.path().join("cache").join("blobs")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_resolves_download_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.bin"), data(200_000)).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/c.bin?slow=5");
    let s = spec("c", &url);
    let cache = Cache::new(dir.path().join("cache"));
    let other = Cache::new(dir.path().join("cache"));
    let (f1, f2) = (fetcher(), fetcher());
    let req = Request {
        spec: &s,
        url: &url,
    };
    let (a, b) = tokio::join!(
        cache.resolve(req, &f1, &Policy::Current),
        other.resolve(req, &f2, &Policy::Current)
    );
    let (a, b) = (ready(a.unwrap()).0, ready(b.unwrap()).0);
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(stats(&base, "c.bin").await["gets"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_uses_no_network_and_a_changed_blob_is_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("h.bin"), data(10_000)).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/h.bin");
    let mut s = spec("h", &url);
    let cache = Cache::new(dir.path().join("cache"));
    let f = fetcher();
    let req = Request {
        spec: &s,
        url: &url,
    };
    let (entry, _) = ready(cache.resolve(req, &f, &Policy::Current).await.unwrap());
    // refresh: never -> a hit.
    let (_, fetched) = ready(cache.resolve(req, &f, &Policy::Current).await.unwrap());
    assert!(!fetched);
    // Pinned and present, even with a refresh due -> a hit.
    s.sha256 = Some(entry.sha256.clone());
    s.refresh_seconds = Some(0);
    let req = Request {
        spec: &s,
        url: &url,
    };
    let (_, fetched) = ready(cache.resolve(req, &f, &Policy::Current).await.unwrap());
    assert!(!fetched);
    assert_eq!(
        stats(&base, "h.bin").await["requests"],
        1,
        "hits asked nothing"
    );
    // The blob changed in place: fetched again.
    std::fs::write(cache.content_path(&entry), b"tampered").unwrap();
    let (again, fetched) = ready(cache.resolve(req, &f, &Policy::Current).await.unwrap());
    assert!(fetched);
    assert_eq!(
        std::fs::read(cache.content_path(&again)).unwrap(),
        data(10_000)
    );
    assert_eq!(stats(&base, "h.bin").await["gets"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_change_reports_not_yet_until_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.bin");
    std::fs::write(&path, data(1000)).unwrap();
    let base = server(dir.path()).await;
    let url = format!("{base}/files/w.bin");
    let mut s = spec("w", &url);
    s.refresh_seconds = Some(3600);
    let cache = Cache::new(dir.path().join("cache"));
    let f = fetcher();
    let req = Request {
        spec: &s,
        url: &url,
    };
    let (entry, _) = ready(cache.resolve(req, &f, &Policy::Current).await.unwrap());
    let policy = Policy::WaitForChange {
        since: entry.sha256.clone(),
    };
    let r = cache.resolve(req, &f, &policy).await.unwrap();
    assert!(matches!(r, Resolution::NotYet(_)), "{r:?}");
    std::fs::write(&path, data(2000)).unwrap();
    let (new, fetched) = ready(cache.resolve(req, &f, &policy).await.unwrap());
    assert!(fetched);
    assert_eq!(new.sha256, sha256_hex(&data(2000)));
}
