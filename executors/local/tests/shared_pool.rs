//! Executors of one factory sharing a pool of cores (the daemon's runs):
//! an attempt that finds the cores busy waits its turn, starts when they
//! free up, and can be cancelled while it waits, against real processes.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{
    AttemptKey, AttemptStatus, BackendConfig, Executor, ExecutorFactory as _, ExecutorSpec, Job,
    LocalConfig, Resources, TaskId, Update, UpdateSink,
};
use twinflow_executor_local::{LocalFactory, SlotPool};

#[derive(Debug)]
struct Sink(mpsc::UnboundedSender<Update>);

impl UpdateSink for Sink {
    fn send(&self, update: Update) {
        let _ = self.0.send(update);
    }
}

fn spec() -> ExecutorSpec {
    ExecutorSpec {
        name: "here".to_owned(),
        backend: BackendConfig::Local(LocalConfig::default()),
        prologue: None,
        env: Vec::new(),
        container_runtime: None,
        bound_by: None,
    }
}

/// Two executors (two runs) of one factory with a pool of one core.
fn two_runs() -> [(Arc<dyn Executor>, mpsc::UnboundedReceiver<Update>); 2] {
    let factory = LocalFactory::default().with_pool(SlotPool::new(1));
    [(); 2].map(|()| {
        let (tx, rx) = mpsc::unbounded_channel();
        (factory.create(&spec(), Arc::new(Sink(tx))).unwrap(), rx)
    })
}

fn job(dir: &std::path::Path, task: u32, script: &str) -> Job {
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("t{task}"),
        script: script.to_owned(),
        env: Vec::new(),
        workdir: dir.to_owned(),
        stdout: dir.join(format!("{task}.out")),
        stderr: dir.join(format!("{task}.err")),
        resources: Resources::default(),
        step: "local".to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

/// Updates until (and with) the first final one.
async fn until_final(rx: &mut mpsc::UnboundedReceiver<Update>) -> Vec<AttemptStatus> {
    let mut seen = Vec::new();
    loop {
        let update = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        let last = update.status.is_final();
        seen.push(update.status);
        if last {
            return seen;
        }
    }
}

fn started_at(dir: &std::path::Path, name: &str) -> f64 {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_second_run_waits_for_the_shared_core_then_starts_with_its_real_handle() {
    let dir = tempfile::tempdir().unwrap();
    let [(first, mut rx1), (second, mut rx2)] = two_runs();
    let stamp = |f: &str| format!("date +%s.%N > {f}; sleep 0.5; date +%s.%N > {f}.end");
    let h1 = first.submit(job(dir.path(), 0, &stamp("a"))).await.unwrap();
    assert_eq!(h1.0, "local-starting", "a core was free");
    let h2 = second
        .submit(job(dir.path(), 1, &stamp("b")))
        .await
        .unwrap();
    assert_eq!(h2.0, "local-waiting", "no core left for the second run");
    let seen = until_final(&mut rx1).await;
    assert!(
        matches!(&seen[0], AttemptStatus::Submitted(h) if h.0.starts_with("pid:")),
        "{seen:?}"
    );
    assert_eq!(
        seen[1..],
        [AttemptStatus::Running, AttemptStatus::Exited(0)]
    );
    let seen = until_final(&mut rx2).await;
    assert_eq!(seen[0], AttemptStatus::Queued, "{seen:?}");
    assert!(
        matches!(&seen[1], AttemptStatus::Submitted(h) if h.0.starts_with("pid:")),
        "{seen:?}"
    );
    assert_eq!(
        seen[2..],
        [AttemptStatus::Running, AttemptStatus::Exited(0)]
    );
    // One core: the second began after the first ended.
    assert!(started_at(dir.path(), "b") >= started_at(dir.path(), "a.end"));
}

#[tokio::test]
async fn an_attempt_cancelled_while_it_waits_never_runs_and_frees_its_turn() {
    let dir = tempfile::tempdir().unwrap();
    let [(first, mut rx1), (second, mut rx2)] = two_runs();
    first.submit(job(dir.path(), 0, "sleep 0.5")).await.unwrap();
    let h = second
        .submit(job(dir.path(), 1, "touch ran"))
        .await
        .unwrap();
    second
        .cancel(
            AttemptKey {
                task: TaskId(1),
                attempt: 0,
            },
            &h,
        )
        .await
        .unwrap();
    assert_eq!(
        until_final(&mut rx2).await,
        [AttemptStatus::Queued, AttemptStatus::Cancelled]
    );
    assert_eq!(
        until_final(&mut rx1).await.last(),
        Some(&AttemptStatus::Exited(0))
    );
    // The core is free again: the next attempt starts at once.
    let h = second.submit(job(dir.path(), 2, "true")).await.unwrap();
    assert_eq!(h.0, "local-starting", "{h}");
    let seen = until_final(&mut rx2).await;
    assert!(
        matches!(&seen[0], AttemptStatus::Submitted(h) if h.0.starts_with("pid:")),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&AttemptStatus::Exited(0)));
    assert!(
        !dir.path().join("ran").exists(),
        "the cancelled attempt ran"
    );
}
