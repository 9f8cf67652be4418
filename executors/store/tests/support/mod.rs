//! Helpers of the store's live tests: the S3 server of `deploy/dev/s3-up`
//! from the environment, a prefix of its own for each test, a raw
//! `object_store` client to look at (and damage) what the store holds, and
//! test data.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::io::Write;
use std::path::Path;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use twinflow_store::{ArtefactName, Digest, Store};

pub(crate) const MIB: usize = 1 << 20;

/// The test's own prefix in the bucket, and a raw client for checks.
pub(crate) struct Env {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) raw: AmazonS3,
    pub(crate) endpoint: String,
}

pub(crate) fn env(test: &str) -> Option<Env> {
    if std::env::var("TWINFLOW_TEST_S3").as_deref() != Ok("1") {
        eprintln!(
            "skipped: TWINFLOW_TEST_S3 is not 1 (scripts/test starts deploy/dev/s3-up and sets it)"
        );
        return None;
    }
    let bucket = std::env::var("TWINFLOW_S3_BUCKET").expect(
        "TWINFLOW_S3_BUCKET is not set: source $TWINFLOW_S3_DIR/env (deploy/dev/s3-up writes it)",
    );
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL is not set");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let prefix = format!("test-{test}-{}-{nanos}", std::process::id());
    let raw = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .build()
        .expect("raw client");
    Some(Env {
        bucket,
        prefix,
        raw,
        endpoint,
    })
}

impl Env {
    pub(crate) fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    pub(crate) fn store(&self) -> Store {
        Store::open(&self.url()).expect("open store")
    }

    /// Every key under `<prefix>/<sub>`, sorted.
    pub(crate) async fn keys(&self, sub: &str) -> Vec<String> {
        let p = Key::from(format!("{}/{sub}", self.prefix));
        let mut keys: Vec<String> = self
            .raw
            .list(Some(&p))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list");
        keys.sort();
        keys
    }

    pub(crate) async fn cleanup(&self) {
        let p = Key::from(self.prefix.as_str());
        let keys: Vec<Key> = self
            .raw
            .list(Some(&p))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .expect("list");
        for k in keys {
            self.raw.delete(&k).await.expect("delete");
        }
    }
}

pub(crate) fn name(output: &str) -> ArtefactName {
    ArtefactName::new("run-1", "forest.0", output).expect("name")
}

/// `len` bytes of deterministic noise (xorshift), different for each `seed`.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `len` bytes to `path`: 1 MiB of noise, repeated with each
/// repetition's number in its first 8 bytes (so no two MiB are alike).
/// Returns their digest.
pub(crate) fn write_noise(path: &Path, len: usize, seed: u64) -> Digest {
    let mut f = std::fs::File::create(path).expect("create");
    let mut h = twinflow_store::Hasher::new();
    let mut block = noise(MIB, seed);
    let (mut left, mut i) = (len, 0u64);
    while left > 0 {
        let n = left.min(MIB);
        block[..8].copy_from_slice(&i.to_le_bytes());
        h.update(&block[..n]);
        f.write_all(&block[..n]).expect("write");
        left -= n;
        i += 1;
    }
    h.finish()
}

/// Names in `dir`, sorted (to see that no partial download is left).
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
