//! The store against a real S3 server on this machine (Ceph RGW, started by
//! `deploy/dev/s3-up`; `scripts/test` starts it, sources its env file and
//! sets `TWINFLOW_TEST_S3=1`): round trips, identical content stored once,
//! multipart uploads, refused input. Each test works under its own prefix
//! of the bucket `$TWINFLOW_S3_BUCKET` and deletes what it wrote; what the
//! store holds is checked with `object_store` directly. Without
//! `TWINFLOW_TEST_S3=1` these tests say so and return. Faults are in
//! `faults.rs`.
#![expect(clippy::expect_used, reason = "tests fail with a message")]

mod support;

use std::path::{Path, PathBuf};

use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use support::{MIB, env, name, names, noise, write_noise};
use twinflow_store::{Digest, Kind, RemoteKind};

fn digest_of_file(path: &Path) -> Digest {
    let mut f = std::fs::File::open(path).expect("open");
    let mut h = twinflow_store::Hasher::new();
    let mut buf = vec![0u8; MIB];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finish()
}

/// Files under `dir` (relative path, content), sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("rel")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_round_trip() {
    let Some(env) = env("file") else { return };
    let store = env.store();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("cover.nc");
    let data = noise(3 * MIB + 17, 1);
    std::fs::write(&src, &data).expect("write");

    let m = store
        .put_output(&name("cover"), &src)
        .await
        .expect("put_output");
    assert_eq!(m.kind, Kind::File);
    assert_eq!((m.size, m.sha256), (data.len() as u64, Digest::of(&data)));
    assert_eq!(m.files[0].path, "cover.nc");
    let blob = format!("{}/blobs/sha256/{}", env.prefix, Digest::of(&data));
    let manifest = format!("{}/manifests/run-1/forest.0/cover.json", env.prefix);
    assert_eq!(m.files[0].blob, blob);
    assert_eq!(env.keys("").await, [blob.clone(), manifest.clone()]);
    assert_eq!(
        env.raw
            .head(&Key::from(blob.as_str()))
            .await
            .expect("head")
            .size,
        data.len() as u64
    );

    // another site reads the manifest and fetches the file
    let other = env.store();
    let read = other.manifest(&name("cover")).await.expect("manifest");
    assert_eq!(read, m);
    other.check_output(&read).await.expect("check_output");
    let dest = tmp.path().join("inputs/cover/cover.nc");
    other.get_output(&read, &dest).await.expect("get_output");
    assert_eq!(std::fs::read(&dest).expect("read"), data);
    assert_eq!(names(dest.parent().expect("parent")), ["cover.nc"]);
    // get_blob by digest and size, replacing an existing file
    std::fs::write(&dest, b"old").expect("write");
    let n = other
        .get_blob(&m.sha256, Some(m.size), &dest)
        .await
        .expect("get_blob");
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&dest).expect("read"), data);

    let missing = other
        .manifest(&name("nope"))
        .await
        .expect_err("no manifest");
    assert_eq!(
        missing.remote_kind(),
        Some(RemoteKind::NotFound),
        "{missing}"
    );
    assert!(
        missing.to_string().starts_with(&format!(
            "failed to read manifest s3://{}/{}/manifests/run-1/forest.0/nope.json at {}: not found (404)",
            env.bucket, env.prefix, env.endpoint
        )),
        "{missing}"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_round_trip() {
    let Some(env) = env("dir") else { return };
    let store = env.store();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("maps");
    std::fs::create_dir_all(src.join("year/2026")).expect("mkdir");
    std::fs::write(src.join("index.json"), b"{\"tiles\": 2}\n").expect("write");
    std::fs::write(src.join("year/2026/a.bin"), noise(MIB, 2)).expect("write");
    std::fs::write(src.join("year/2026/b.bin"), noise(MIB, 3)).expect("write");
    std::fs::write(src.join("year/copy-of-a.bin"), noise(MIB, 2)).expect("write");
    std::fs::write(src.join("empty.txt"), b"").expect("write");

    let m = store
        .put_output(&name("maps"), &src)
        .await
        .expect("put_output");
    assert_eq!(m.kind, Kind::Dir);
    let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "empty.txt",
            "index.json",
            "year/2026/a.bin",
            "year/2026/b.bin",
            "year/copy-of-a.bin"
        ]
    );
    assert_eq!(m.size, 13 + 3 * MIB as u64);
    // a.bin and its copy share one blob: 4 distinct contents
    assert_eq!(env.keys("blobs").await.len(), 4);
    assert_eq!(env.keys("manifests").await.len(), 1);

    let read = store.manifest(&name("maps")).await.expect("manifest");
    assert_eq!(read, m);
    let dest = tmp.path().join("staged/maps");
    store.get_output(&read, &dest).await.expect("get_output");
    assert_eq!(tree(&dest), tree(&src));
    assert_eq!(names(&tmp.path().join("staged")), ["maps"]);
    // a directory output is not merged into an existing directory
    let again = store
        .get_output(&read, &dest)
        .await
        .expect_err("dest exists");
    assert!(
        again.to_string().contains("the destination exists"),
        "{again}"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_content_is_stored_once() {
    let Some(env) = env("dedup") else { return };
    let store = env.store();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = noise(2 * MIB, 4);
    let (a, b) = (tmp.path().join("a.dat"), tmp.path().join("b.dat"));
    std::fs::write(&a, &data).expect("write");
    std::fs::write(&b, &data).expect("write");

    let first = store.put_file(&a).await.expect("put a");
    assert!(first.uploaded);
    let second = store.put_file(&b).await.expect("put b");
    assert!(!second.uploaded, "the second copy must not be uploaded");
    assert_eq!(second.key, first.key);
    store.put_output(&name("a"), &a).await.expect("output a");
    store.put_output(&name("b"), &b).await.expect("output b");
    assert_eq!(env.keys("blobs").await, vec![first.key.clone()]);
    assert_eq!(env.keys("manifests").await.len(), 2);

    // a blob of the wrong size is damaged: it is uploaded again
    env.raw
        .put(
            &Key::from(first.key.as_str()),
            PutPayload::from(vec![0u8; 10]),
        )
        .await
        .expect("damage");
    let third = store.put_file(&a).await.expect("put a again");
    assert!(third.uploaded, "a blob of the wrong size must be replaced");
    assert_eq!(
        env.raw
            .head(&Key::from(first.key.as_str()))
            .await
            .expect("head")
            .size,
        data.len() as u64
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_goes_up_in_parts() {
    let Some(env) = env("multipart") else { return };
    let store = env.store();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("big.bin");
    let size = 200 * MIB;
    let digest = write_noise(&src, size, 5);

    let blob = store.put_file(&src).await.expect("put_file");
    assert_eq!((blob.digest, blob.size), (digest, size as u64));
    // 200 MiB in 16 MiB parts: 13 parts
    assert_eq!(blob.parts, 13);
    let meta = env
        .raw
        .head(&Key::from(blob.key.as_str()))
        .await
        .expect("head");
    assert_eq!(meta.size, size as u64);
    let etag = meta.e_tag.expect("etag");
    assert!(
        etag.trim_matches('"').ends_with("-13"),
        "the ETag of a 13-part upload ends with -13: {etag}"
    );

    let dest = tmp.path().join("copy.bin");
    store
        .get_blob(&digest, Some(size as u64), &dest)
        .await
        .expect("get_blob");
    assert_eq!(std::fs::metadata(&dest).expect("stat").len(), size as u64);
    assert_eq!(digest_of_file(&dest), digest);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_request() {
    let Some(env) = env("input") else { return };
    let store = env.store();
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing: PathBuf = tmp.path().join("missing.txt");
    let e = store
        .put_output(&name("m"), &missing)
        .await
        .expect_err("missing");
    assert!(
        e.to_string()
            .starts_with(&format!("failed to read {}: ", missing.display())),
        "{e}"
    );
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).expect("mkdir");
    std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).expect("symlink");
    let e = store
        .put_output(&name("d"), &dir)
        .await
        .expect_err("symlink");
    assert!(
        e.to_string().contains("symbolic links are not stored"),
        "{e}"
    );
    assert!(env.keys("").await.is_empty());
    env.cleanup().await;
}
