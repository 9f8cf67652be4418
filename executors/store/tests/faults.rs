//! Faults against the real S3 server of `deploy/dev/s3-up` (see `live.rs`):
//! a corrupted object is detected and never used; an unreachable store is
//! retried, then a clear transient error; a store lost in the middle of an
//! upload leaves no blob and no manifest; permanent failures (no bucket, a
//! wrong key) are not retried and show no secret. Without
//! `TWINFLOW_TEST_S3=1` these tests say so and return.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail with a message"
)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use support::{Env, MIB, env, name, names, noise, write_noise};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use twinflow_store::{
    Credentials, Digest, RemoteKind, RetrySettings, Store, StoreError, StoreOptions,
};

fn store_with(env: &Env, opts: StoreOptions) -> Store {
    Store::open_with(&env.url(), opts).expect("open store")
}

async fn exists(env: &Env, key: &str) -> bool {
    match env.raw.head(&Key::from(key)).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => panic!("head {key}: {e}"),
    }
}

/// The real store's address, for the proxy.
fn upstream(env: &Env) -> SocketAddr {
    env.endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("AWS_ENDPOINT_URL is http://ADDR:PORT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_object_is_detected_and_never_used() {
    let Some(env) = env("corrupt") else { return };
    let store = env.store();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("cover.nc");
    let data = noise(MIB, 6);
    std::fs::write(&src, &data).expect("write");
    let m = store
        .put_output(&name("cover"), &src)
        .await
        .expect("put_output");
    let key = m.files[0].blob.clone();

    // other bytes of the same size: only the digest can tell
    let mut bad = data.clone();
    bad[1000] ^= 0xff;
    env.raw
        .put(&Key::from(key.as_str()), PutPayload::from(bad.clone()))
        .await
        .expect("overwrite");
    let staged = tmp.path().join("staged");
    let dest = staged.join("cover.nc");
    let e = store.get_output(&m, &dest).await.expect_err("corrupt");
    match &e {
        StoreError::DigestMismatch {
            url,
            expected,
            actual,
        } => {
            assert_eq!(url, &format!("s3://{}/{key}", env.bucket));
            assert_eq!(*expected, Digest::of(&data));
            assert_eq!(*actual, Digest::of(&bad));
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    assert_eq!(
        e.to_string(),
        format!(
            "digest mismatch for s3://{}/{key}: expected sha256 {}, got sha256 {}",
            env.bucket,
            Digest::of(&data),
            Digest::of(&bad)
        )
    );
    assert!(
        !dest.exists(),
        "the bad file must not be at the destination"
    );
    assert!(
        names(&staged).is_empty(),
        "no partial file left: {:?}",
        names(&staged)
    );
    // an existing file at the destination is left as it was
    std::fs::write(&dest, b"previous").expect("write");
    store
        .get_output(&m, &dest)
        .await
        .expect_err("still corrupt");
    assert_eq!(std::fs::read(&dest).expect("read"), b"previous");
    assert_eq!(names(&staged), ["cover.nc"]);

    // a shorter object: a size mismatch, before any byte is written
    env.raw
        .put(
            &Key::from(key.as_str()),
            PutPayload::from(data[..100].to_vec()),
        )
        .await
        .expect("truncate");
    let dest2 = staged.join("second.nc");
    let e = store.get_output(&m, &dest2).await.expect_err("short");
    assert!(
        matches!(e, StoreError::SizeMismatch { expected, actual: 100, .. } if expected == data.len() as u64),
        "{e}"
    );
    assert!(!dest2.exists());

    // a directory output with one bad file is not staged at all
    let dir = tmp.path().join("maps");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("good.txt"), b"good").expect("write");
    std::fs::write(dir.join("victim.txt"), b"victim").expect("write");
    let dm = store
        .put_output(&name("maps"), &dir)
        .await
        .expect("put dir");
    let victim = &dm
        .files
        .iter()
        .find(|f| f.path == "victim.txt")
        .expect("victim")
        .blob;
    env.raw
        .put(
            &Key::from(victim.as_str()),
            PutPayload::from(b"VICTIM".to_vec()),
        )
        .await
        .expect("overwrite");
    let ddest = staged.join("maps");
    let e = store
        .get_output(&dm, &ddest)
        .await
        .expect_err("corrupt dir");
    assert!(matches!(e, StoreError::DigestMismatch { .. }), "{e}");
    assert!(!ddest.exists());
    assert_eq!(names(&staged), ["cover.nc"], "no partial directory left");
    env.cleanup().await;
}

/// Fast retries, so that the fault tests stay short.
fn quick_retries(max_retries: usize) -> RetrySettings {
    RetrySettings {
        max_retries,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        timeout: Duration::from_secs(20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_store_is_retried_then_fails_clearly() {
    let Some(env) = env("unreachable") else {
        return;
    };
    // a port that was just free and is closed now: connection refused
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let store = store_with(
        &env,
        StoreOptions {
            endpoint: Some(endpoint.clone()),
            retry: quick_retries(3),
            ..StoreOptions::default()
        },
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("out.txt");
    std::fs::write(&src, b"forest output\n").expect("write");

    let t0 = Instant::now();
    let e = store
        .put_output(&name("out"), &src)
        .await
        .expect_err("unreachable");
    let took = t0.elapsed();
    assert!(e.is_transient(), "{e}");
    let text = e.to_string();
    let blob = format!(
        "s3://{}/{}/blobs/sha256/{}",
        env.bucket,
        env.prefix,
        Digest::of(b"forest output\n")
    );
    assert!(
        text.starts_with(&format!(
            "failed to check blob {blob} at {endpoint}: cannot connect"
        )),
        "{text}"
    );
    assert!(text.contains("after 3 retries"), "{text}");
    // three backoffs of at least 100 ms each, and bounded
    assert!(took >= Duration::from_millis(300), "no retries? {took:?}");
    assert!(took < Duration::from_secs(15), "not bounded: {took:?}");
    // nothing reached the real store
    assert!(env.keys("").await.is_empty());
    env.cleanup().await;
}

/// A TCP proxy to the real store that cuts every connection, and stops
/// accepting new ones, once `limit` bytes went from the client to the store:
/// the store becomes unreachable in the middle of an upload.
async fn cutting_proxy(upstream: SocketAddr, limit: u64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sent = Arc::new(AtomicU64::new(0));
    let (cut_tx, cut_rx) = tokio::sync::watch::channel(false);
    let cut_tx = Arc::new(cut_tx);
    let mut accept_cut = cut_rx.clone();
    tokio::spawn(async move {
        loop {
            let (client, _) = tokio::select! {
                _ = accept_cut.wait_for(|c| *c) => break, // drops the listener
                acc = listener.accept() => match acc { Ok(a) => a, Err(_) => break },
            };
            let (sent, cut_tx, mut cut_rx) = (sent.clone(), cut_tx.clone(), cut_rx.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > limit {
                            let _ = cut_tx.send(true);
                            return;
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                tokio::select! {
                    _ = async { tokio::join!(up, down) } => {}
                    _ = cut_rx.wait_for(|c| *c) => {}
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_lost_during_upload_writes_no_manifest() {
    let Some(env) = env("cut") else { return };
    let port = cutting_proxy(upstream(&env), 12 * MIB as u64).await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let store = store_with(
        &env,
        StoreOptions {
            endpoint: Some(endpoint.clone()),
            retry: quick_retries(2),
            multipart_threshold: 8 * MIB as u64,
            part_size: 5 * MIB,
            parts_in_flight: 2,
            ..StoreOptions::default()
        },
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("big.bin");
    let digest = write_noise(&src, 40 * MIB, 7);

    let t0 = Instant::now();
    let e = store.put_output(&name("big"), &src).await.expect_err("cut");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert!(e.is_transient(), "{e}");
    let blob = format!("{}/blobs/sha256/{digest}", env.prefix);
    assert!(
        e.to_string().starts_with(&format!(
            "failed to upload a part of s3://{}/{blob} at {endpoint}: ",
            env.bucket
        )),
        "{e}"
    );
    // the real store has neither the blob (the upload was never completed)
    // nor a manifest
    assert!(!exists(&env, &blob).await, "incomplete blob visible");
    assert!(
        !exists(
            &env,
            &format!("{}/manifests/run-1/forest.0/big.json", env.prefix)
        )
        .await,
        "manifest written although the data upload failed"
    );
    assert!(env.keys("manifests").await.is_empty());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_are_not_retried() {
    let Some(env) = env("permanent") else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("out.txt");
    std::fs::write(&src, b"x").expect("write");
    // a retry would wait at least 2 s
    let slow = RetrySettings {
        max_retries: 5,
        initial_backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(2),
        timeout: Duration::from_secs(60),
    };

    // no such bucket
    let store = Store::open_with(
        "s3://twinflow-no-such-bucket/p",
        StoreOptions {
            retry: slow.clone(),
            ..StoreOptions::default()
        },
    )
    .expect("open");
    let t0 = Instant::now();
    let e = store
        .put_output(&name("out"), &src)
        .await
        .expect_err("no bucket");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "retried: {:?}",
        t0.elapsed()
    );
    assert!(!e.is_transient(), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "failed to upload blob s3://twinflow-no-such-bucket/p/blobs/sha256/{} at {}: not found (404) NoSuchBucket",
            Digest::of(b"x"),
            env.endpoint
        )),
        "{e}"
    );

    // a wrong secret key: 403, and the secret is in no message
    let secret = "wrong-secret-key-0123456789abcdefghijklm".to_owned();
    let store = store_with(
        &env,
        StoreOptions {
            retry: slow,
            credentials: Some(Credentials {
                access_key_id: std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID"),
                secret_access_key: secret.clone(),
                session_token: None,
            }),
            ..StoreOptions::default()
        },
    );
    assert!(!format!("{store:?}").contains(&secret));
    let t0 = Instant::now();
    let e = store
        .put_output(&name("out"), &src)
        .await
        .expect_err("denied");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "retried: {:?}",
        t0.elapsed()
    );
    assert_eq!(e.remote_kind(), Some(RemoteKind::Denied), "{e}");
    assert!(e.to_string().contains("access denied (403)"), "{e}");
    assert!(!e.to_string().contains(&secret), "{e}");
    assert!(!format!("{e:?}").contains(&secret), "{e:?}");
    assert!(env.keys("").await.is_empty());
    env.cleanup().await;
}
