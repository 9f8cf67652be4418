//! The fetch executor end to end: a job in a temp dir gets its output and
//! source.json; data triggers wait and time out; cancel stops a download.

use super::support::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{
    AttemptKey, AttemptStatus, BackendConfig, ExecutorFactory, ExecutorSpec, FetchConfig, Handle,
    Job, JobOutput, Resources, SourceScheme, SourceSpec, TaskId, Update, UpdateSink, WaitSpec,
};
use twinflow_sources::{FetchFactory, Fetchers};

#[derive(Debug)]
struct Sink(mpsc::UnboundedSender<Update>);
impl UpdateSink for Sink {
    fn send(&self, update: Update) {
        let _ = self.0.send(update);
    }
}

/// A fetch executor of `sources` over the cache of `sv`.
fn executor(
    sv: &Served,
    sources: Vec<SourceSpec>,
) -> (
    Arc<dyn twinflow_core::Executor>,
    mpsc::UnboundedReceiver<Update>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let factory = FetchFactory {
        cache_root: sv.cache.root().to_path_buf(),
        fetchers: Fetchers::builtin().with(SourceScheme::Http, Arc::new(fetcher())),
    };
    let spec = ExecutorSpec {
        name: "sources".into(),
        backend: BackendConfig::Fetch(FetchConfig { sources }),
        prologue: None,
        env: Vec::new(),
        container_runtime: None,
        bound_by: None,
    };
    (factory.create(&spec, Arc::new(Sink(tx))).unwrap(), rx)
}

fn job(dir: &Path, task: u32, source: &SourceSpec, url: &str) -> Job {
    let workdir = dir.join(format!("task{task}"));
    std::fs::create_dir_all(workdir.join("out")).unwrap();
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: source.step_name(),
        script: url.to_owned(),
        env: Vec::new(),
        stdout: workdir.join("stdout"),
        stderr: workdir.join("stderr"),
        workdir,
        resources: Resources::default(),
        step: source.step_name(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: vec![JobOutput {
            name: source.name.clone(),
            rel: format!("out/{}", source.file_name),
        }],
        group: None,
    }
}

async fn final_status(rx: &mut mpsc::UnboundedReceiver<Update>) -> AttemptStatus {
    let mut seen = statuses(rx).await;
    seen.pop().unwrap()
}

/// Every status reported, up to and with the final one.
async fn statuses(rx: &mut mpsc::UnboundedReceiver<Update>) -> Vec<AttemptStatus> {
    let mut seen = Vec::new();
    loop {
        let u = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap()
            .unwrap();
        let last = u.status.is_final();
        seen.push(u.status);
        if last {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_gets_its_output_and_provenance() {
    let sv = Served::new(&[("occ.csv", b"id,name\n1,wren\n")]).await;
    let url = sv.url("occ.csv");
    let s = spec("occ", &url);
    let (ex, mut rx) = executor(&sv, vec![s.clone()]);
    let j = job(sv.dir.path(), 1, &s, &url);
    let workdir = j.workdir.clone();
    ex.submit(j).await.unwrap();
    assert_eq!(final_status(&mut rx).await, AttemptStatus::Exited(0));
    assert_eq!(
        std::fs::read(workdir.join("out/data.bin")).unwrap(),
        b"id,name\n1,wren\n"
    );
    let prov: twinflow_core::SourceRecord = serde_json::from_slice(
        &std::fs::read(workdir.join(twinflow_core::SOURCE_RECORD_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(prov.format, twinflow_core::SourceRecord::FORMAT);
    assert_eq!(prov.content_url, url);
    assert_eq!(prov.sha256, sha256_hex(b"id,name\n1,wren\n"));
    assert_eq!(prov.size, 15);
    assert!(!prov.directory);
    assert!(prov.retrieved_at.ends_with('Z'));
    let log = std::fs::read_to_string(workdir.join("stderr")).unwrap();
    assert!(log.contains("fetching source `occ`"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbuilt_scheme_and_an_absent_file_are_errors() {
    let sv = Served::new(&[]).await;
    let url = sv.url("none.csv");
    let s = spec("none", &url);
    let mut s3 = spec("bucket", "s3://b/k");
    s3.scheme = SourceScheme::S3;
    let (ex, mut rx) = executor(&sv, vec![s.clone(), s3.clone()]);
    ex.submit(job(sv.dir.path(), 1, &s, &url)).await.unwrap();
    match final_status(&mut rx).await {
        AttemptStatus::Error(m) => assert!(m.contains("not found (HTTP 404"), "{m}"),
        other => panic!("{other:?}"),
    }
    if twinflow_sources::fetcher_for(SourceScheme::S3).is_none() {
        ex.submit(job(sv.dir.path(), 2, &s3, "s3://b/k"))
            .await
            .unwrap();
        match final_status(&mut rx).await {
            AttemptStatus::Error(m) => assert!(m.contains("not built"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_trigger_waits_for_the_file_to_appear() {
    let sv = Served::new(&[]).await;
    let url = sv.url("late.csv");
    let mut s = spec("late", &url);
    s.wait = Some(WaitSpec {
        interval_seconds: 1,
        timeout_seconds: Some(20),
    });
    let (ex, mut rx) = executor(&sv, vec![s.clone()]);
    let j = job(sv.dir.path(), 1, &s, &url);
    let stderr = j.stderr.clone();
    ex.submit(j).await.unwrap();
    let root = sv.dir.path().to_path_buf();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        std::fs::write(root.join("late.csv"), b"a\n1\n").unwrap();
    });
    let seen = statuses(&mut rx).await;
    let awaiting = seen
        .iter()
        .position(|s| matches!(s, AttemptStatus::AwaitingData(what) if what.contains("not found") && what.contains("gives up after 20 s")))
        .unwrap_or_else(|| panic!("no awaiting status: {seen:?}"));
    assert_eq!(
        &seen[awaiting + 1..].last(),
        &Some(&AttemptStatus::Exited(0)),
        "{seen:?}"
    );
    assert!(
        seen[awaiting..].contains(&AttemptStatus::Running),
        "running again once the file is there: {seen:?}"
    );
    let log = std::fs::read_to_string(stderr).unwrap();
    assert!(log.contains("check 1: not found"), "{log}");
    assert!(sv.stats("late.csv").await["requests"].as_u64().unwrap() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_trigger_times_out_naming_what_it_waited_for() {
    let sv = Served::new(&[]).await;
    let url = sv.url("never.csv");
    let mut s = spec("never", &url);
    s.wait = Some(WaitSpec {
        interval_seconds: 1,
        timeout_seconds: Some(2),
    });
    let (ex, mut rx) = executor(&sv, vec![s.clone()]);
    ex.submit(job(sv.dir.path(), 1, &s, &url)).await.unwrap();
    match final_status(&mut rx).await {
        AttemptStatus::Error(m) => assert!(
            m.starts_with(&format!("waited 2 s for source `never` ({url}): not found")),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_slow_download() {
    let sv = Served::new(&[("slow.bin", &data(1 << 20))]).await;
    let url = sv.url("slow.bin?slow=50");
    let s = spec("slow", &url);
    let (ex, mut rx) = executor(&sv, vec![s.clone()]);
    let j = job(sv.dir.path(), 1, &s, &url);
    let (key, workdir) = (j.key, j.workdir.clone());
    let handle: Handle = ex.submit(j).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    ex.cancel(key, &handle).await.unwrap();
    assert_eq!(final_status(&mut rx).await, AttemptStatus::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!workdir.join("out/data.bin").exists());
    assert_eq!(sv.cache_files("blobs"), 0);
}
