//! The local executor with its resident supervisor process: whatever a task
//! leaves behind dies with it (even processes that left its group: `setsid`,
//! a double fork, `nohup`), and attempts outlive the executor and are taken
//! back, ended or running, by a new one from the supervisor's records.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{AttemptStatus, Executor, Job, Resources, RunRef, Update};
use twinflow_executor_local::LocalExecutor;

mod support;
use support::{key, supervised};
mod procs;
use procs::sleeps_with;

fn executor() -> (LocalExecutor, mpsc::UnboundedReceiver<Update>) {
    supervised("here", Duration::from_millis(300))
}

fn job(run_dir: &Path, task: u32, script: &str) -> Job {
    let workdir = run_dir.join(format!("work{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    Job {
        key: key(task),
        name: format!("t{task}"),
        script: script.to_owned(),
        env: vec![
            ("TWINFLOW_RUN_ID".into(), "sup-run".into()),
            ("TWINFLOW_RUN_DIR".into(), run_dir.display().to_string()),
        ],
        stdout: workdir.join("out"),
        stderr: workdir.join("err"),
        workdir,
        resources: Resources::default(),
        step: "local".to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

async fn final_status(rx: &mut mpsc::UnboundedReceiver<Update>, task: u32) -> AttemptStatus {
    loop {
        let update = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        if update.key == key(task) && update.status.is_final() {
            return update.status;
        }
    }
}

/// Waits until no live process carries `word`; the survivors if some do.
async fn gone(word: &str) -> Vec<String> {
    for _ in 0..100 {
        let left = sleeps_with(word);
        if left.is_empty() {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sleeps_with(word)
}

/// A script that leaves three escapees behind, each a `sleep` with an
/// argument unique to `tag`, then (with `wait`) waits.
fn escaping(tag: &str, then: &str) -> String {
    format!(
        "setsid sleep 1000.{tag}1 > /dev/null 2>&1 & \
         (sleep 1000.{tag}2 > /dev/null 2>&1 &) ; \
         nohup sleep 1000.{tag}3 > /dev/null 2>&1 & \
         sleep 0.3; {then}"
    )
}

#[tokio::test]
async fn setsid_double_fork_and_nohup_children_die_with_their_task() {
    let (exec, mut rx) = executor();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("{}", std::process::id() % 100_000);

    // The task ends on its own.
    let ended = format!("{tag}01");
    exec.submit(job(dir.path(), 1, &escaping(&ended, "true")))
        .await
        .unwrap();
    assert_eq!(final_status(&mut rx, 1).await, AttemptStatus::Exited(0));
    assert_eq!(gone(&format!("1000.{ended}")).await, Vec::<String>::new());

    // It is cancelled (a timeout is the same request), ignoring SIGTERM.
    let cancelled = format!("{tag}02");
    let script = escaping(&cancelled, "trap '' TERM; sleep 60 & wait");
    let handle = exec.submit(job(dir.path(), 2, &script)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sleeps_with(&format!("1000.{cancelled}")).len(), 3);
    exec.cancel(key(2), &handle).await.unwrap();
    assert_eq!(final_status(&mut rx, 2).await, AttemptStatus::Cancelled);
    assert_eq!(
        gone(&format!("1000.{cancelled}")).await,
        Vec::<String>::new()
    );

    // The executor shuts down (the end of a run, Ctrl-C).
    let shut = format!("{tag}03");
    exec.submit(job(dir.path(), 3, &escaping(&shut, "sleep 60")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    exec.shutdown().await;
    assert_eq!(gone(&format!("1000.{shut}")).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_new_executor_takes_back_ended_and_running_attempts_from_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, mut rx) = executor();
    // Each appends to a shared file when it ends; 1 ends at once, 2 later.
    let count = dir.path().join("count");
    let quick = format!("echo one >> {}", count.display());
    let slow = format!("sleep 1; echo two >> {}", count.display());
    exec.submit(job(dir.path(), 1, &quick)).await.unwrap();
    exec.submit(job(dir.path(), 2, &slow)).await.unwrap();
    assert_eq!(final_status(&mut rx, 1).await, AttemptStatus::Exited(0));
    // The executor vanishes without a goodbye (its process was killed): the
    // supervisor keeps task 2 running.
    drop(exec);
    drop(rx);

    let (exec, mut rx) = executor();
    let run = RunRef {
        id: "sup-run",
        dir: dir.path(),
    };
    let mut followed = exec.reattach(run, Vec::new()).await.unwrap();
    followed.sort();
    assert_eq!(followed, [key(1), key(2)]);
    assert_eq!(final_status(&mut rx, 1).await, AttemptStatus::Exited(0));
    assert_eq!(final_status(&mut rx, 2).await, AttemptStatus::Exited(0));
    let text = std::fs::read_to_string(&count).unwrap();
    assert_eq!(text, "one\ntwo\n", "each ran once and to its end");
    exec.shutdown().await;
}
