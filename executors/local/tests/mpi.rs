//! MPI ranks on the local executor with the real Open MPI `mpirun`
//! (Debian's `openmpi-bin`, installed by `scripts/setup`), through the real
//! supervisor process; run when `TWINFLOW_TEST_MPI=1` (set by
//! `scripts/test`), and then failing, not skipping, if `mpirun` is
//! missing. Each rank runs the script; ranks take `tasks x cpus` slots (two
//! 2-rank tasks on 4 slots run together, a third waits, 5 ranks are
//! refused at submit); `launcher: none` runs the script once holding all
//! its slots; cancel (what a timeout does) leaves no rank behind, even
//! ranks that ignore SIGTERM.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{AttemptStatus, Executor, Job, Launcher, Resources, Update};
use twinflow_executor_local::LocalExecutor;

mod support;
use support::{key, supervised};
mod procs;
use procs::sleeps_with;

fn enabled() -> bool {
    if std::env::var("TWINFLOW_TEST_MPI").as_deref() != Ok("1") {
        eprintln!("skipped: needs TWINFLOW_TEST_MPI=1 and Open MPI (scripts/setup installs it)");
        return false;
    }
    let found = std::process::Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "TWINFLOW_TEST_MPI=1 but mpirun is not on PATH: run scripts/setup (openmpi-bin)"
    );
    true
}

fn executor(slots: u32) -> (LocalExecutor, mpsc::UnboundedReceiver<Update>) {
    let (exec, rx) = supervised("mpibox", Duration::from_millis(500));
    (exec.with_slots(slots), rx)
}

fn job(run_dir: &Path, task: u32, ranks: u32, launcher: Option<Launcher>, script: &str) -> Job {
    let workdir = run_dir.join(format!("work{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    Job {
        key: key(task),
        name: format!("t{task}"),
        script: script.to_owned(),
        env: vec![
            ("TWINFLOW_RUN_ID".into(), "mpi-run".into()),
            ("TWINFLOW_RUN_DIR".into(), run_dir.display().to_string()),
        ],
        stdout: workdir.join("out"),
        stderr: workdir.join("err"),
        workdir,
        resources: Resources {
            tasks: ranks,
            ..Resources::default()
        },
        step: "s".to_owned(),
        pack: None,
        launcher,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

/// The next `n` final statuses, by task; whether each was queued first.
async fn finals(
    rx: &mut mpsc::UnboundedReceiver<Update>,
    n: usize,
) -> (Vec<(u32, AttemptStatus)>, Vec<u32>) {
    let mut out = Vec::new();
    let mut queued = Vec::new();
    while out.len() < n {
        let update = tokio::time::timeout(Duration::from_secs(90), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        if update.status == AttemptStatus::Queued {
            queued.push(update.key.task.0);
        }
        if update.status.is_final() {
            out.push((update.key.task.0, update.status));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    queued.sort_unstable();
    (out, queued)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn four_ranks_each_run_the_script_and_know_their_rank() {
    if !enabled() {
        return;
    }
    let (exec, mut rx) = executor(4);
    let dir = tempfile::tempdir().unwrap();
    let script = "echo \"$OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE\" \
                  > rank.$OMPI_COMM_WORLD_RANK";
    exec.submit(job(dir.path(), 1, 4, None, script))
        .await
        .unwrap();
    let (ended, _) = finals(&mut rx, 1).await;
    let err = std::fs::read_to_string(dir.path().join("work1/err")).unwrap_or_default();
    assert_eq!(ended, [(1, AttemptStatus::Exited(0))], "stderr: {err}");
    for rank in 0..4 {
        assert_eq!(
            read(dir.path(), &format!("work1/rank.{rank}")),
            format!("{rank} of 4")
        );
    }
    // A rank that fails fails the attempt.
    exec.submit(job(
        dir.path(),
        2,
        2,
        Some(Launcher::Mpirun),
        "test \"$OMPI_COMM_WORLD_RANK\" = 0 || exit 3",
    ))
    .await
    .unwrap();
    let (ended, _) = finals(&mut rx, 1).await;
    assert!(
        matches!(ended[0].1, AttemptStatus::Exited(c) if c != 0),
        "{ended:?}"
    );
    exec.shutdown().await;
}

/// Nanoseconds since the epoch, as `date +%s%N` writes them.
const STAMP: &str = "date +%s%N";

#[tokio::test]
async fn ranks_take_their_slots_two_pairs_run_together_a_third_waits_and_five_are_refused() {
    if !enabled() {
        return;
    }
    let (exec, mut rx) = executor(4);
    let dir = tempfile::tempdir().unwrap();
    // Rank 0 stamps the start and the end of each task.
    let script = format!(
        "if [ \"$OMPI_COMM_WORLD_RANK\" = 0 ]; then {STAMP} > start; fi; sleep 2; \
         if [ \"$OMPI_COMM_WORLD_RANK\" = 0 ]; then {STAMP} > end; fi"
    );
    let too_big = exec
        .submit(job(dir.path(), 9, 5, None, "true"))
        .await
        .unwrap_err();
    assert_eq!(
        too_big.message,
        "t9 cannot run as written: executor `mpibox` has 4 slot(s), and the task needs 5 \
         (5 ranks x 1 cpus); it is refused rather than held for ever"
    );
    let srun = exec
        .submit(job(dir.path(), 8, 2, Some(Launcher::Srun), "true"))
        .await
        .unwrap_err();
    assert!(srun.message.contains("`launcher: srun`"), "{srun}");
    let jobs = (1..=3)
        .map(|t| job(dir.path(), t, 2, None, &script))
        .collect();
    for r in exec.submit_batch(jobs).await {
        r.unwrap();
    }
    let (ended, queued) = finals(&mut rx, 3).await;
    assert!(
        ended.iter().all(|(_, s)| *s == AttemptStatus::Exited(0)),
        "{ended:?}"
    );
    assert_eq!(queued, [3], "only the third waits for slots");
    let stamp =
        |t: u32, f: &str| -> u128 { read(dir.path(), &format!("work{t}/{f}")).parse().unwrap() };
    let (s1, e1, s2, e2, s3) = (
        stamp(1, "start"),
        stamp(1, "end"),
        stamp(2, "start"),
        stamp(2, "end"),
        stamp(3, "start"),
    );
    assert!(s1 < e2 && s2 < e1, "the two pairs overlapped");
    assert!(
        s3 >= e1.min(e2),
        "the third started only once a pair had ended ({s3} < {})",
        e1.min(e2)
    );
    exec.shutdown().await;
}

#[tokio::test]
async fn launcher_none_runs_the_script_once_holding_all_its_slots() {
    if !enabled() {
        return;
    }
    let (exec, mut rx) = executor(4);
    let dir = tempfile::tempdir().unwrap();
    let mut whole = job(
        dir.path(),
        1,
        2,
        Some(Launcher::None),
        &format!("echo \"${{OMPI_COMM_WORLD_SIZE-none}}\" >> runs; sleep 1; {STAMP} > end"),
    );
    whole.resources.cpus = 2;
    exec.submit(whole).await.unwrap();
    exec.submit(job(dir.path(), 2, 1, None, &format!("{STAMP} > start")))
        .await
        .unwrap();
    let (ended, queued) = finals(&mut rx, 2).await;
    assert_eq!(
        ended,
        [(1, AttemptStatus::Exited(0)), (2, AttemptStatus::Exited(0))]
    );
    assert_eq!(
        read(dir.path(), "work1/runs"),
        "none",
        "once, without mpirun"
    );
    assert_eq!(queued, [2], "2 ranks x 2 cpus fill the 4 slots");
    let end: u128 = read(dir.path(), "work1/end").parse().unwrap();
    let start: u128 = read(dir.path(), "work2/start").parse().unwrap();
    assert!(start >= end, "{start} < {end}");
    exec.shutdown().await;
}

/// Waits until `n` live `sleep` processes hold `word`; those seen last.
async fn wait_for(word: &str, n: usize) -> Vec<String> {
    for _ in 0..300 {
        let seen = sleeps_with(word);
        if seen.len() == n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sleeps_with(word)
}

#[tokio::test]
async fn cancel_and_timeout_kill_every_rank_even_those_ignoring_sigterm() {
    if !enabled() {
        return;
    }
    let (exec, mut rx) = executor(4);
    let dir = tempfile::tempdir().unwrap();
    let tag = std::process::id() % 100_000;
    for (task, trap) in [(1, ""), (2, "trap '' TERM; ")] {
        let word = format!("1000.{tag}{task}");
        let script = format!("{trap}sleep {word} & wait");
        let handle = exec
            .submit(job(dir.path(), task, 3, None, &script))
            .await
            .unwrap();
        assert_eq!(wait_for(&word, 3).await.len(), 3, "every rank runs");
        exec.cancel(key(task), &handle).await.unwrap();
        let (ended, _) = finals(&mut rx, 1).await;
        assert_eq!(ended, [(task, AttemptStatus::Cancelled)]);
        assert_eq!(
            wait_for(&word, 0).await,
            Vec::<String>::new(),
            "no rank left"
        );
    }
    exec.shutdown().await;
}
