//! The HTTP fetcher and the cache against the real devserver: revalidation,
//! resume, retries, refusals, locking, hits and re-fetches.

use super::support::*;
use twinflow_sources::{Cache, Policy, Request, Resolution, SourceError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_revalidates_with_the_etag_and_gets_no_body() {
    let sv = Served::new(&[("a.bin", &data(50_000))]).await;
    let mut spec = spec("a", &sv.url("a.bin"));
    spec.refresh_seconds = Some(0);
    let (first, fetched) = sv.ready(&spec).await;
    assert!(fetched);
    assert_eq!(first.sha256, sha256_hex(&data(50_000)));
    assert!(first.validators.etag.is_some());
    let (second, fetched) = sv.ready(&spec).await;
    assert!(!fetched, "a 304 is not a download");
    assert_eq!(second.sha256, first.sha256);
    let s = sv.stats("a.bin").await;
    assert_eq!(status_count(&s, 304), 1);
    assert_eq!(s["conditional"], 1);
    assert_eq!(s["body_bytes"], 50_000, "the body went once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_body_is_resumed_with_range_and_never_published_partial() {
    let bytes = data(3 << 20);
    let sv = Served::new(&[("big.bin", &bytes)]).await;
    let spec = spec("big", &sv.url("big.bin?truncate=1500000"));
    let (entry, _) = sv.ready(&spec).await;
    assert_eq!(entry.sha256, sha256_hex(&bytes));
    let published = std::fs::read(sv.cache.content_path(&entry)).unwrap();
    assert_eq!(published, bytes);
    let s = sv.stats("big.bin").await;
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
    let sv = Served::new(&[("r.bin", &data(1000))]).await;
    let spec = spec("r", &sv.url("r.bin?fail=2&retry_after=0"));
    let (entry, _) = sv.ready(&spec).await;
    assert_eq!(entry.size, 1000);
    let s = sv.stats("r.bin").await;
    assert_eq!(status_count(&s, 503), 2);
    assert_eq!(status_count(&s, 200), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_5xx_gives_up_as_transient() {
    let sv = Served::new(&[]).await;
    let spec = spec("x", &sv.url("x?status=500"));
    let err = sv.resolve(&spec, &Policy::Current).await.unwrap_err();
    assert!(matches!(err, SourceError::Transient { .. }), "{err}");
    assert!(err.to_string().contains("gave up after 4 tries"), "{err}");
    assert_eq!(status_count(&sv.stats("x").await, 500), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_absent_and_forbidden_fails() {
    let sv = Served::new(&[]).await;
    let s = spec("m", &sv.url("missing.csv"));
    let err = sv.resolve(&s, &Policy::Current).await.unwrap_err();
    assert!(matches!(err, SourceError::Absent { .. }), "{err}");
    assert!(err.to_string().contains("source `m`"), "{err}");
    let url = format!("http://ann:hunter2@{}/files/f?status=403", &sv.base[7..]);
    let s = spec("f", &url);
    let err = sv.resolve(&s, &Policy::Current).await.unwrap_err();
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
    let sv = Served::new(&[("p.bin", &data(4000))]).await;
    let mut s = spec("p", &sv.url("p.bin"));
    let wrong = "0".repeat(64);
    s.sha256 = Some(wrong.clone());
    let err = sv.resolve(&s, &Policy::Current).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("expected {wrong}")), "{msg}");
    assert!(msg.contains(&sha256_hex(&data(4000))), "{msg}");
    for sub in ["blobs", "index", "staging"] {
        assert_eq!(sv.cache_files(sub), 0, "{sub}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_is_refused() {
    let sv = Served::new(&[("m.bin", &data(4000))]).await;
    let mut s = spec("m", &sv.url("m.bin"));
    s.options.max_size = Some(1000);
    let err = sv.resolve(&s, &Policy::Current).await.unwrap_err();
    assert!(err.to_string().contains("over `max_size` 1000"), "{err}");
    assert_eq!(sv.cache_files("blobs"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_resolves_download_once() {
    let sv = Served::new(&[("c.bin", &data(200_000))]).await;
    let url = sv.url("c.bin?slow=5");
    let s = spec("c", &url);
    // A second cache over the same folder, with its own client.
    let other = Cache::new(sv.dir.path().join("cache"));
    let f2 = fetcher();
    let req = Request {
        spec: &s,
        url: &url,
    };
    let (a, b) = tokio::join!(
        sv.resolve(&s, &Policy::Current),
        other.resolve(req, &f2, &Policy::Current)
    );
    let (a, b) = (ready(a.unwrap()).0, ready(b.unwrap()).0);
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(sv.stats("c.bin").await["gets"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_uses_no_network_and_a_changed_blob_is_fetched_again() {
    let sv = Served::new(&[("h.bin", &data(10_000))]).await;
    let mut s = spec("h", &sv.url("h.bin"));
    let (entry, _) = sv.ready(&s).await;
    // refresh: never -> a hit.
    let (_, fetched) = sv.ready(&s).await;
    assert!(!fetched);
    // Pinned and present, even with a refresh due -> a hit.
    s.sha256 = Some(entry.sha256.clone());
    s.refresh_seconds = Some(0);
    let (_, fetched) = sv.ready(&s).await;
    assert!(!fetched);
    assert_eq!(sv.stats("h.bin").await["requests"], 1, "hits asked nothing");
    // The blob changed in place: fetched again.
    std::fs::write(sv.cache.content_path(&entry), b"tampered").unwrap();
    let (again, fetched) = sv.ready(&s).await;
    assert!(fetched);
    assert_eq!(
        std::fs::read(sv.cache.content_path(&again)).unwrap(),
        data(10_000)
    );
    assert_eq!(sv.stats("h.bin").await["gets"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_change_reports_not_yet_until_the_file_changes() {
    let sv = Served::new(&[("w.bin", &data(1000))]).await;
    let mut s = spec("w", &sv.url("w.bin"));
    s.refresh_seconds = Some(3600);
    let (entry, _) = sv.ready(&s).await;
    let policy = Policy::WaitForChange {
        since: entry.sha256.clone(),
    };
    let r = sv.resolve(&s, &policy).await.unwrap();
    assert!(matches!(r, Resolution::NotYet(_)), "{r:?}");
    std::fs::write(sv.dir.path().join("w.bin"), data(2000)).unwrap();
    let (new, fetched) = ready(sv.resolve(&s, &policy).await.unwrap());
    assert!(fetched);
    assert_eq!(new.sha256, sha256_hex(&data(2000)));
}
