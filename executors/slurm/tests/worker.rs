//! `twinflow worker`'s pack runner on real processes (no Slurm needed): the
//! tasks' own scripts, as the executor renders them, run in order, each
//! records its start and its exit status, and cancel markers skip or kill.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use std::time::{Duration, Instant};
use twinflow_core::{AttemptKey, Job, Resources, TaskId};
use twinflow_executor_slurm::worker::run_pack;

mod pack_files;
use pack_files::{status, write_pack};

fn job(dir: &Path, task: u32, script: &str) -> Job {
    let workdir = dir.join(format!("work/{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("t[{task}]"),
        script: script.to_owned(),
        env: vec![("N".to_owned(), task.to_string())],
        workdir,
        stdout: dir.join(format!("logs/{task}.0.out")),
        stderr: dir.join(format!("logs/{task}.0.err")),
        resources: Resources::default(),
        step: "t".to_owned(),
        pack: Some(twinflow_core::PackSpec::sequential(3)),
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

fn started(job: &Job) -> bool {
    job.stdout.with_extension("status.started").exists()
}

#[test]
fn a_pack_runs_its_tasks_in_order_and_each_records_its_own_status() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("order.txt");
    let script = format!(
        "echo \"$N\" >> {}; echo out-$N; exit $((N % 2 * 3))",
        log.display()
    );
    let jobs: Vec<Job> = (0..3).map(|t| job(dir.path(), t, &script)).collect();
    let manifest = write_pack(dir.path(), &jobs);
    // One CPU per task and one allocated: one after another.
    run_pack(&manifest, 1).unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "0\n1\n2\n");
    assert_eq!(
        jobs.iter().map(status).collect::<Vec<_>>(),
        [Some(0), Some(3), Some(0)]
    );
    assert!(jobs.iter().all(started));
    assert_eq!(
        std::fs::read_to_string(&jobs[1].stdout).unwrap(),
        "out-1\n",
        "each task writes its own log"
    );
}

#[test]
fn cancel_markers_skip_a_task_not_started_and_kill_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = vec![
        job(dir.path(), 0, "sleep 30"),
        job(dir.path(), 1, "echo never"),
        job(dir.path(), 2, "true"),
    ];
    let manifest = write_pack(dir.path(), &jobs);
    let marker = |j: &Job| j.stdout.with_extension("status.cancel");
    std::fs::write(marker(&jobs[1]), "").unwrap();
    let first = jobs[0].clone();
    let canceller = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !started(&first) {
            assert!(Instant::now() < deadline, "the first task never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::write(marker(&first), "").unwrap();
    });
    let t0 = Instant::now();
    run_pack(&manifest, 1).unwrap();
    canceller.join().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the sleeping task was killed, not waited for: {:?}",
        t0.elapsed()
    );
    assert!(!started(&jobs[1]), "the cancelled task never started");
    assert_eq!(status(&jobs[1]), None);
    assert_eq!(status(&jobs[2]), Some(0), "the rest of the pack still ran");
}

#[test]
fn tasks_run_side_by_side_when_the_allocation_has_the_cpus() {
    let dir = tempfile::tempdir().unwrap();
    // Each task waits until all three have started: only passes side by side.
    let flags = dir.path().join("flags");
    std::fs::create_dir_all(&flags).unwrap();
    let script = format!(
        "touch {f}/$N; for i in $(seq 100); do [ $(ls {f} | wc -l) -ge 3 ] && exit 0; sleep 0.05; done; exit 1",
        f = flags.display()
    );
    let jobs: Vec<Job> = (0..3).map(|t| job(dir.path(), t, &script)).collect();
    let manifest = write_pack(dir.path(), &jobs);
    run_pack(&manifest, 3).unwrap();
    assert_eq!(
        jobs.iter().map(status).collect::<Vec<_>>(),
        [Some(0), Some(0), Some(0)]
    );
}

#[test]
fn a_bad_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pack.json");
    let err = run_pack(&path, 1).unwrap_err();
    assert!(err.starts_with("failed to read pack manifest"), "{err}");
    std::fs::write(
        &path,
        r#"{"format":"twinflow.pack/v9","cpus_per_task":1,"tasks":[]}"#,
    )
    .unwrap();
    let err = run_pack(&path, 1).unwrap_err();
    assert!(err.contains("twinflow.pack/v1"), "{err}");
}
