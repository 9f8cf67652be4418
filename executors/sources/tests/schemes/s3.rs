//! `s3://` against the Ceph RGW of deploy/dev/s3-up (when
//! `TWINFLOW_TEST_S3=1`; otherwise these tests say so and return), and the
//! missing-credentials error, which needs no server.

use crate::support::{fetch, spec, validators};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use twinflow_core::{SourceScheme, SourceSpec};
use twinflow_sources::{Fetched, S3Fetcher, SourceError};

struct Live {
    bucket: String,
    prefix: String,
    raw: object_store::aws::AmazonS3,
}

fn live(test: &str) -> Option<Live> {
    if std::env::var("TWINFLOW_TEST_S3").as_deref() != Ok("1") {
        eprintln!(
            "skipped: TWINFLOW_TEST_S3 is not 1 (scripts/test starts deploy/dev/s3-up and sets it)"
        );
        return None;
    }
    let bucket = std::env::var("TWINFLOW_S3_BUCKET")
        .expect("TWINFLOW_S3_BUCKET (source $TWINFLOW_S3_DIR/env)");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let raw = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .build()
        .expect("raw client");
    Some(Live {
        bucket,
        prefix: format!("sources-{test}-{}-{nanos}", std::process::id()),
        raw,
    })
}

impl Live {
    async fn put(&self, rel: &str, data: &str) {
        self.raw
            .put(
                &Key::from(format!("{}/{rel}", self.prefix)),
                PutPayload::from(data.as_bytes().to_vec()),
            )
            .await
            .expect("put");
    }

    fn spec(&self, rel: &str, directory: bool) -> SourceSpec {
        spec(
            "lumi",
            &format!("s3://{}/{}/{rel}", self.bucket, self.prefix),
            SourceScheme::S3,
            directory,
        )
    }
}

#[tokio::test]
async fn object_fetched_then_not_modified_then_changed() {
    let Some(l) = live("object") else { return };
    l.put("data/tas.csv", "month,tas\n1,270.5\n").await;
    let s = l.spec("data/tas.csv", false);
    let tmp = tempfile::tempdir().expect("tmp");
    let (file, got) = fetch(&S3Fetcher::from_env(), &s, &tmp, None).await;
    let got = got.expect("fetched");
    assert_eq!(
        std::fs::read_to_string(&file).expect("file"),
        "month,tas\n1,270.5\n"
    );
    let v = validators(&got);
    assert!(v.etag.is_some());

    let tmp2 = tempfile::tempdir().expect("tmp");
    let (_, again) = fetch(&S3Fetcher::from_env(), &s, &tmp2, Some(&v)).await;
    assert_eq!(again.expect("revalidated"), Fetched::NotModified);

    l.put("data/tas.csv", "month,tas\n1,271.0\n").await;
    let tmp3 = tempfile::tempdir().expect("tmp");
    let (file, changed) = fetch(&S3Fetcher::from_env(), &s, &tmp3, Some(&v)).await;
    assert_ne!(validators(&changed.expect("fetched")), v);
    assert_eq!(
        std::fs::read_to_string(&file).expect("file"),
        "month,tas\n1,271.0\n"
    );

    let mut small = s.clone();
    small.options.max_size = Some(4);
    let tmp4 = tempfile::tempdir().expect("tmp");
    let e = fetch(&S3Fetcher::from_env(), &small, &tmp4, None)
        .await
        .1
        .expect_err("too big");
    assert!(e.to_string().contains("max_size"), "{e}");
}

#[tokio::test]
async fn prefix_is_a_directory_with_relative_paths() {
    let Some(l) = live("prefix") else { return };
    l.put("run/a.txt", "a").await;
    l.put("run/sub/b.txt", "bb").await;
    let s = l.spec("run/", true);
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, got) = fetch(&S3Fetcher::from_env(), &s, &tmp, None).await;
    let got = got.expect("fetched");
    assert_eq!(std::fs::read_to_string(dir.join("a.txt")).expect("a"), "a");
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/b.txt")).expect("b"),
        "bb"
    );

    let tmp2 = tempfile::tempdir().expect("tmp");
    let (_, again) = fetch(&S3Fetcher::from_env(), &s, &tmp2, Some(&validators(&got))).await;
    assert_eq!(again.expect("revalidated"), Fetched::NotModified);

    l.put("run/c.txt", "c").await;
    let tmp3 = tempfile::tempdir().expect("tmp");
    let (dir, changed) = fetch(&S3Fetcher::from_env(), &s, &tmp3, Some(&validators(&got))).await;
    assert!(matches!(
        changed.expect("fetched"),
        Fetched::Content {
            directory: true,
            ..
        }
    ));
    assert!(dir.join("c.txt").is_file());

    let empty = l.spec("nothing-here/", true);
    let e = fetch(&S3Fetcher::from_env(), &empty, &tmp3, None)
        .await
        .1
        .expect_err("empty");
    assert!(matches!(e, SourceError::Absent { .. }), "{e}");
}

#[tokio::test]
async fn missing_key_is_absent() {
    let Some(l) = live("missing") else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let s = l.spec("no/such/key.nc", false);
    let e = fetch(&S3Fetcher::from_env(), &s, &tmp, None)
        .await
        .1
        .expect_err("absent");
    assert!(matches!(e, SourceError::Absent { .. }), "{e}");
    assert!(
        e.to_string().contains("`lumi`") && e.to_string().contains("s3://"),
        "{e}"
    );
}

#[tokio::test]
async fn bad_credentials_fail_without_showing_the_secret() {
    let Some(l) = live("badcreds") else { return };
    l.put("x.txt", "x").await;
    let secret = "definitely-not-the-secret-key-42";
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_") && k != "AWS_SECRET_ACCESS_KEY")
        .chain([("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned())])
        .collect();
    let tmp = tempfile::tempdir().expect("tmp");
    let s = l.spec("x.txt", false);
    let e = fetch(&S3Fetcher::with_env(env), &s, &tmp, None)
        .await
        .1
        .expect_err("denied");
    let text = format!("{e} {e:?}");
    assert!(matches!(e, SourceError::Failed { .. }), "{text}");
    assert!(!text.contains(secret), "{text}");
}

#[tokio::test]
async fn profile_keys_are_read_from_the_credentials_file() {
    let Some(l) = live("profile") else { return };
    l.put("p.txt", "p").await;
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join(".aws")).expect("mkdir");
    let id = std::env::var("AWS_ACCESS_KEY_ID").expect("key id");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("secret");
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!("[ceph]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    )
    .expect("write");
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_") && !k.contains("KEY"))
        .chain([("HOME".to_owned(), home.path().display().to_string())])
        .collect();
    let mut s = l.spec("p.txt", false);
    s.options.profile = Some("ceph".into());
    let tmp = tempfile::tempdir().expect("tmp");
    let (file, got) = fetch(&S3Fetcher::with_env(env.clone()), &s, &tmp, None).await;
    got.expect("fetched with the profile's keys");
    assert_eq!(std::fs::read_to_string(file).expect("file"), "p");

    s.options.profile = Some("nope".into());
    let e = fetch(&S3Fetcher::with_env(env), &s, &tmp, None)
        .await
        .1
        .expect_err("no profile");
    assert!(e.to_string().contains("no S3 profile `nope`"), "{e}");
}

#[tokio::test]
async fn missing_credentials_name_the_variables() {
    let s = spec("lumi", "s3://bucket/key.nc", SourceScheme::S3, false);
    let tmp = tempfile::tempdir().expect("tmp");
    let fetcher = S3Fetcher::with_env([("HOME".to_owned(), "/nonexistent".to_owned())]);
    let e = fetch(&fetcher, &s, &tmp, None)
        .await
        .1
        .expect_err("no credentials");
    let text = e.to_string();
    assert!(matches!(e, SourceError::Failed { .. }), "{text}");
    assert!(
        text.contains("AWS_ACCESS_KEY_ID")
            && text.contains("AWS_SECRET_ACCESS_KEY")
            && text.contains("`lumi`"),
        "{text}"
    );
}
