//! `twinflow worker` running a parallel pack (`pack: {tasks, parallel}`) on
//! real processes (`launcher: none`, no Slurm needed): K tasks at a time,
//! the next started as one ends, and no task started whose time limit no
//! longer fits in what is left of the allocation.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use std::time::{Duration, Instant};
use twinflow_core::{AttemptKey, Job, Launcher, PackSpec, Resources, TaskId};
use twinflow_executor_slurm::worker::{parse_time_left, run_pack_with};

mod pack_files;
use pack_files::{status, write_pack};

fn job(dir: &Path, task: u32, script: &str, pack: PackSpec, time: u64) -> Job {
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
        resources: Resources {
            time_seconds: Some(time),
            ..Resources::default()
        },
        step: "t".to_owned(),
        pack: Some(pack),
        launcher: Some(Launcher::None),
        group: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    }
}

fn not_run(job: &Job) -> Option<String> {
    std::fs::read_to_string(job.stdout.with_extension("status.notrun")).ok()
}

/// Outside a Slurm job: no `SLURM_JOB_ID`, the pack's limit counts from
/// the worker's start.
fn no_slurm(_: &str) -> Option<String> {
    None
}

#[test]
fn k_tasks_run_at_a_time_and_the_next_starts_as_one_ends() {
    let dir = tempfile::tempdir().unwrap();
    let spans = dir.path().join("spans");
    std::fs::create_dir_all(&spans).unwrap();
    let script = format!(
        "a=$(date +%s.%N); sleep 0.4; echo \"$a $(date +%s.%N)\" > {}/$N",
        spans.display()
    );
    let pack = PackSpec {
        tasks: 9,
        parallel: 3,
    };
    let jobs: Vec<Job> = (0..9)
        .map(|t| job(dir.path(), t, &script, pack, 60))
        .collect();
    let manifest = write_pack(dir.path(), &jobs);
    let t0 = Instant::now();
    // One CPU in the allocation: `parallel` decides, not the CPUs.
    run_pack_with(&manifest, 1, no_slurm).unwrap();
    let wall = t0.elapsed();
    assert!(jobs.iter().all(|j| status(j) == Some(0)));
    let spans: Vec<(f64, f64)> = (0..9)
        .map(|t| {
            let text = std::fs::read_to_string(spans.join(t.to_string())).unwrap();
            let (a, b) = text.trim().split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    // The most tasks running at any task's start.
    let most = spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap();
    assert_eq!(most, 3, "{spans:?}");
    // Nine tasks of 0.4 s three at a time: three waves, not nine.
    assert!(wall < Duration::from_secs_f64(9.0 * 0.4), "{wall:?}");
}

#[test]
fn a_task_whose_time_no_longer_fits_is_not_started_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let pack = PackSpec {
        tasks: 4,
        parallel: 2,
    };
    // Time limits of 2 s: the pack gets 4 s (two waves). The first two
    // tasks overrun theirs (2.5 s): then 1.5 s are left, which no task of
    // 2 s fits in.
    let jobs: Vec<Job> = (0..4)
        .map(|t| {
            let script = if t < 2 { "sleep 2.5" } else { "true" };
            job(dir.path(), t, script, pack, 2)
        })
        .collect();
    let manifest = write_pack(dir.path(), &jobs);
    let t0 = Instant::now();
    run_pack_with(&manifest, 1, no_slurm).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(status(&jobs[0]), Some(0));
    assert_eq!(status(&jobs[1]), Some(0));
    for j in &jobs[2..] {
        assert_eq!(status(j), None, "{} did not run", j.name);
        assert!(!j.stdout.with_extension("status.started").exists());
        let why = not_run(j).unwrap();
        assert!(
            why.starts_with("not started: its pack's allocation had 1 s left")
                && why.contains("time limit is 2 s"),
            "{why}"
        );
    }
    assert_eq!(not_run(&jobs[0]), None);
}

#[test]
fn squeues_time_left_reads_in_seconds() {
    assert_eq!(parse_time_left("45\n"), Some(45));
    assert_eq!(parse_time_left("3:00"), Some(180));
    assert_eq!(parse_time_left("1:02:03"), Some(3723));
    assert_eq!(parse_time_left("2-01:00:00"), Some(2 * 86_400 + 3600));
    for bad in ["UNLIMITED", "NOT_SET", "INVALID", "", "1:2:3:4", "-5"] {
        assert_eq!(parse_time_left(bad), None, "{bad}");
    }
}
