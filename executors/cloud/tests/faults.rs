//! Faults against the real services (see `support`): the store unreachable
//! while the runner uploads (retried with backoff, the task not done until
//! its output is there; failed, never done, when it stays away), a
//! corrupted object in the store (detected on the VM, never used), and the
//! SSH connection dropped in the middle of a task (connected again, the
//! task found and finished).
#![expect(clippy::expect_used, reason = "tests fail with a message")]

mod support;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use support::{env, final_update, output, read, running, submit};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use twinflow_core::AttemptStatus;
use twinflow_executor_cloud::forwarded_env;
use twinflow_store::ArtefactName;

const LIMIT: Duration = Duration::from_secs(90);

/// A TCP proxy to the store on a fixed port that can be taken down (the
/// port closed: connections refused) and brought up again.
struct Switch {
    port: u16,
    upstream: SocketAddr,
    task: Option<JoinHandle<()>>,
    served: Arc<AtomicU32>,
}

impl Switch {
    async fn down_at_first(upstream: SocketAddr) -> Switch {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        Switch {
            port,
            upstream,
            task: None,
            served: Arc::default(),
        }
    }

    async fn up(&mut self) {
        let l = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the proxy's port again");
        let (upstream, served) = (self.upstream, Arc::clone(&self.served));
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = l.accept().await {
                served.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn upstream() -> SocketAddr {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("AWS_ENDPOINT_URL is http://ADDR:PORT")
}

/// This process's store settings, the endpoint replaced by `endpoint`.
fn forward_to(endpoint: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = forwarded_env()
        .into_iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
        .collect();
    f.push(("AWS_ENDPOINT_URL".into(), endpoint.to_owned()));
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_unreachable_during_upload_is_retried_and_the_task_done_only_after() {
    let Some(env) = env("s3-down") else { return };
    let mut switch = Switch::down_at_first(upstream()).await;
    let (ex, mut rx) = env.executor_with(forward_to(&switch.endpoint()));
    let mut job = env.job(1, "echo richness > out.txt");
    job.outputs = vec![output("out", "out.txt")];
    let workdir = job.workdir.clone();
    submit(&ex, job).await;
    // The script has long finished; the upload is being retried, beyond
    // the store's own retries of each request (about 4 s here).
    tokio::time::sleep(Duration::from_secs(8)).await;
    while let Ok(u) = rx.try_recv() {
        assert!(
            !u.status.is_final(),
            "ended while the store was down: {u:?}"
        );
    }
    let name = ArtefactName::new(&env.run_id, "task-1", "out").expect("name");
    assert!(
        env.store().manifest(&name).await.is_err(),
        "no manifest yet"
    );
    assert!(!workdir.join("out.txt").exists());

    switch.up().await;
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Exited(0), "{u:?}");
    assert!(
        switch.served.load(Ordering::SeqCst) > 0,
        "the upload went through the proxy"
    );
    env.store()
        .manifest(&name)
        .await
        .expect("manifest after the store came back");
    assert_eq!(read(&workdir.join("out.txt")).trim(), "richness");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_gone_for_good_fails_the_task_and_never_marks_it_done() {
    let Some(env) = env("s3-gone") else { return };
    let switch = Switch::down_at_first(upstream()).await;
    let mut settings = env.settings(forward_to(&switch.endpoint()));
    settings.store_patience = Duration::from_secs(8);
    let (ex, mut rx) = env.executor_from(settings);
    let mut job = env.job(2, "echo x > out.txt");
    job.outputs = vec![output("out", "out.txt")];
    submit(&ex, job).await;
    let u = final_update(&mut rx, LIMIT).await;
    match &u.status {
        AttemptStatus::Error(e) => {
            assert!(e.contains("output `out`"), "{e}");
            assert!(e.contains(&switch.endpoint()), "names the endpoint: {e}");
            assert!(!e.contains("Secret"), "{e}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let name = ArtefactName::new(&env.run_id, "task-2", "out").expect("name");
    assert!(env.store().manifest(&name).await.is_err());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_object_in_the_store_is_detected_on_the_vm_and_never_used() {
    let Some(env) = env("corrupt") else { return };
    // The producer's output is in the store already; then its blob is
    // damaged, keeping its size, so only the digest can tell.
    let mut job = env.job(3, "touch ran.txt; cat inputs/stands.csv");
    let input = env.input(9, "stands", "stands.csv", "pine,spruce,birch\n");
    let name = ArtefactName::new(&env.run_id, "task-9", "stands").expect("name");
    let m = env
        .store()
        .put_output(&name, &input.source)
        .await
        .expect("put");
    let raw = AmazonS3Builder::from_env()
        .with_bucket_name(std::env::var("TWINFLOW_S3_BUCKET").expect("bucket"))
        .build()
        .expect("raw client");
    raw.put(
        &Key::from(m.files[0].blob.as_str()),
        PutPayload::from(b"pine,spruce,BIRCH\n".to_vec()),
    )
    .await
    .expect("damage the blob");
    job.inputs = vec![input];

    let (ex, mut rx) = env.executor();
    submit(&ex, job).await;
    let u = final_update(&mut rx, LIMIT).await;
    match &u.status {
        AttemptStatus::Error(e) => {
            assert!(e.contains("input inputs/stands.csv"), "{e}");
            assert!(e.contains("sha256"), "{e}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let wd = format!("{}/{}/work/bird/3", env.root, env.run_id);
    let left = env.vm(&format!("ls -AR {wd}")).await;
    assert!(!left.contains("ran.txt"), "the task never ran: {left}");
    assert!(
        !left.contains("stands.csv"),
        "the bad file is not left: {left}"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_ssh_connection_mid_task_is_reconnected_and_the_task_found() {
    let Some(env) = env("ssh-drop") else { return };
    let (ex, mut rx) = env.executor();
    let mut job = env.job(4, "sleep 4; echo survived > out.txt");
    job.outputs = vec![output("out", "out.txt")];
    let workdir = job.workdir.clone();
    submit(&ex, job).await;
    running(&mut rx, LIMIT).await;
    let before = env.ssh.connections();
    // Kill the server side of this connection only (its session process,
    // never the listener), from inside it, a moment after the command
    // returns.
    let listener = std::fs::read_to_string(format!(
        "{}/sshd.pid",
        std::env::var("TWINFLOW_SSHD_DIR").expect("TWINFLOW_SSHD_DIR")
    ))
    .expect("sshd.pid");
    let killed = env
        .vm(&format!(
            "if [ \"$PPID\" != {} ]; then echo $PPID; \
             (sleep 0.3; kill -KILL $PPID) </dev/null >/dev/null 2>&1 & fi",
            listener.trim()
        ))
        .await;
    assert!(
        !killed.trim().is_empty(),
        "the session process is not the listener"
    );
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Exited(0), "{u:?}");
    assert_eq!(read(&workdir.join("out.txt")).trim(), "survived");
    assert!(
        env.ssh.connections() > before,
        "connected again: {} connections, {before} before the drop",
        env.ssh.connections()
    );
    env.cleanup().await;
}
