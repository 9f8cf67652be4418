//! `gbif:` against the devserver's GBIF download API.

use crate::support::{devserver, fetch, spec, validators};
use std::time::Duration;
use twinflow_core::{SourceFormat, SourceScheme, SourceSpec};
use twinflow_sources::gbif::GbifCredentials;
use twinflow_sources::{Fetched, GbifFetcher, SourceError, Validators};

const READY: &str = "0001234-250116100000001";
const FAILED: &str = "0001235-250116100000002";
const RUNNING: &str = "0001236-250116100000003";
const CORRUPT: &str = "0001237-250116100000004";
const NO_META: &str = "0001238-250116100000005";
const PASSWORD: &str = "gbif-test-only-password-7f3a";

fn gbif_spec(base: &str, url: &str) -> SourceSpec {
    let mut s = spec("occ", url, SourceScheme::Gbif, true);
    s.format = SourceFormat::Dwca;
    s.options.endpoint = Some(format!("{base}/gbif/v1"));
    s
}

fn fetcher(password: Option<&str>) -> GbifFetcher {
    GbifFetcher::with_credentials(password.map(|p| GbifCredentials {
        user: "twinflow-test".into(),
        password: p.into(),
        email: Some("twin@example.org".into()),
    }))
    .with_polling(Duration::from_millis(10), Duration::from_millis(50))
}

fn reason(r: Result<Fetched, SourceError>) -> SourceError {
    match r {
        Ok(f) => panic!("expected an error, got {f:?}"),
        Err(e) => e,
    }
}

async fn requests(base: &str) -> serde_json::Value {
    let text = reqwest::get(format!("{base}/gbif/v1/_devserver/requests"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

#[tokio::test]
async fn download_by_key_is_unpacked_checked_and_cited() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = gbif_spec(&base, &format!("gbif:download/{READY}"));
    let (dir, got) = fetch(&fetcher(None), &s, &tmp, None).await;
    let got = got.expect("fetched");
    let Fetched::Content {
        directory,
        citation,
        content_url,
        ..
    } = &got
    else {
        panic!("content expected")
    };
    assert!(directory);
    assert_eq!(
        citation.as_deref(),
        Some(
            "GBIF.org (16 January 2025) GBIF Occurrence Download https://doi.org/10.15468/dl.tfcwr1"
        )
    );
    assert!(content_url.ends_with(&format!("/occurrence/download/request/{READY}.zip")));
    for f in [
        "meta.xml",
        "occurrence.txt",
        "eml.xml",
        "citations.txt",
        "rights.txt",
    ] {
        assert!(dir.join(f).is_file(), "{f} unpacked");
    }
    let cite = std::fs::read_to_string(dir.join("citation.txt")).expect("citation.txt");
    assert!(cite.contains("https://doi.org/10.15468/dl.tfcwr1") && cite.contains(READY));
    let names: Vec<_> = std::fs::read_dir(&dir).expect("dir").flatten().collect();
    assert_eq!(names.len(), 6, "the archive itself is not left: {names:?}");
    twinflow_sources::check_format(&s, &dir).expect("a Darwin Core Archive");
    assert_eq!(validators(&got).etag.as_deref(), Some(READY));

    let tmp2 = tempfile::tempdir().expect("tmp");
    let (_, again) = fetch(&fetcher(None), &s, &tmp2, Some(&validators(&got))).await;
    assert_eq!(again.expect("revalidated"), Fetched::NotModified);
}

#[tokio::test]
async fn download_by_doi() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = gbif_spec(&base, "gbif:doi/10.15468/dl.tfcwr1");
    let (dir, got) = fetch(&fetcher(None), &s, &tmp, None).await;
    assert_eq!(
        validators(&got.expect("fetched")).etag.as_deref(),
        Some(READY)
    );
    assert!(dir.join("occurrence.txt").is_file());
}

#[tokio::test]
async fn query_files_a_request_polls_and_a_cached_copy_files_none() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = gbif_spec(
        &base,
        "gbif:occurrence?taxonKey=9000001&country=IR&country=TM",
    );
    let (dir, got) = fetch(&fetcher(Some(PASSWORD)), &s, &tmp, None).await;
    let got = got.expect("fetched");
    assert!(dir.join("meta.xml").is_file());
    let r = requests(&base).await;
    assert_eq!(r["count"], 1);
    let body = &r["last"];
    assert_eq!(body["creator"], "twinflow-test");
    assert_eq!(body["format"], "DWCA");
    assert_eq!(body["notificationAddresses"][0], "twin@example.org");
    assert_eq!(body["predicate"]["predicates"][0]["key"], "TAXON_KEY");
    assert_eq!(body["predicate"]["predicates"][1]["type"], "in");
    let key = validators(&got).etag.expect("the download key is kept");

    // The cached copy's key is re-checked: no new request.
    let tmp2 = tempfile::tempdir().expect("tmp");
    let (_, again) = fetch(&fetcher(Some(PASSWORD)), &s, &tmp2, Some(&validators(&got))).await;
    assert_eq!(again.expect("revalidated"), Fetched::NotModified);
    assert_eq!(requests(&base).await["count"], 1, "no second POST");

    // With `refresh`, a re-check is a new download.
    let mut refreshing = s.clone();
    refreshing.refresh_seconds = Some(3600);
    let tmp3 = tempfile::tempdir().expect("tmp");
    let (_, fresh) = fetch(
        &fetcher(Some(PASSWORD)),
        &refreshing,
        &tmp3,
        Some(&validators(&got)),
    )
    .await;
    assert_ne!(validators(&fresh.expect("fetched")).etag, Some(key));
    assert_eq!(requests(&base).await["count"], 2);
}

#[tokio::test]
async fn query_without_credentials_names_the_variables() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = gbif_spec(&base, "gbif:occurrence?taxonKey=9000001");
    let e = reason(fetch(&fetcher(None), &s, &tmp, None).await.1);
    let text = e.to_string();
    assert!(matches!(e, SourceError::Failed { .. }), "{text}");
    assert!(
        text.contains("GBIF_USER") && text.contains("GBIF_PWD") && text.contains("`occ`"),
        "{text}"
    );
    assert_eq!(requests(&base).await["count"], 0);
}

#[tokio::test]
async fn wrong_password_fails_and_never_shows_it() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = gbif_spec(&base, "gbif:occurrence?taxonKey=9000001");
    let secret = "wrong-but-secret-password-123";
    let e = reason(fetch(&fetcher(Some(secret)), &s, &tmp, None).await.1);
    let text = format!("{e} {e:?}");
    assert!(matches!(e, SourceError::Failed { .. }), "{text}");
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains(secret), "{text}");
}

#[tokio::test]
async fn failed_download_fails_and_a_running_one_is_absent() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let e = reason(
        fetch(
            &fetcher(None),
            &gbif_spec(&base, &format!("gbif:download/{FAILED}")),
            &tmp,
            None,
        )
        .await
        .1,
    );
    assert!(matches!(e, SourceError::Failed { .. }), "{e}");
    assert!(
        e.to_string().contains("FAILED") && e.to_string().contains(FAILED),
        "{e}"
    );

    let e = reason(
        fetch(
            &fetcher(None),
            &gbif_spec(&base, &format!("gbif:download/{RUNNING}")),
            &tmp,
            None,
        )
        .await
        .1,
    );
    assert!(matches!(e, SourceError::Absent { .. }), "{e}");
    assert!(e.to_string().contains("RUNNING"), "{e}");

    let e = reason(
        fetch(
            &fetcher(None),
            &gbif_spec(&base, "gbif:download/0000000-000000000000000"),
            &tmp,
            None,
        )
        .await
        .1,
    );
    assert!(matches!(e, SourceError::Absent { .. }), "{e}");
}

#[tokio::test]
async fn still_running_past_the_prepare_timeout_fails() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = gbif_spec(&base, "gbif:occurrence?taxonKey=9000001");
    s.options.prepare_timeout_seconds = Some(1);
    // A cached copy names the download that never finishes: it is polled.
    let known = Validators {
        etag: Some(RUNNING.into()),
        last_modified: None,
    };
    let started = std::time::Instant::now();
    let e = reason(
        fetch(&fetcher(Some(PASSWORD)), &s, &tmp, Some(&known))
            .await
            .1,
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    let text = e.to_string();
    assert!(matches!(e, SourceError::Failed { .. }), "{text}");
    assert!(
        text.contains("still RUNNING") && text.contains("prepare_timeout_seconds"),
        "{text}"
    );
}

#[tokio::test]
async fn corrupt_zip_and_missing_meta_fail_clearly() {
    let base = devserver().await;
    for (key, want) in [(CORRUPT, "not a readable zip"), (NO_META, "no meta.xml")] {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = gbif_spec(&base, &format!("gbif:download/{key}"));
        let e = reason(fetch(&fetcher(None), &s, &tmp, None).await.1);
        let text = e.to_string();
        assert!(matches!(e, SourceError::Failed { .. }), "{text}");
        assert!(text.contains(want) && text.contains(key), "{text}");
    }
}
