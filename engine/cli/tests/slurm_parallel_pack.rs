//! A parallel pack (`pack: {tasks: 12, parallel: 4}`) on the local Slurm,
//! through the `twinflow` binary (its `worker` command runs the pack, each
//! task an `srun --exact` step). Needs `TWINFLOW_TEST_SLURM=1`, which
//! `scripts/test` sets after starting `deploy/dev/slurm-up`.
#[expect(dead_code, reason = "these tests need no daemon")]
mod common;

use common::twinflow;
use std::collections::BTreeSet;
use std::time::Instant;

const PARALLEL: &str = r#"
version: 1
name: ppack
executors: { hpc: { kind: slurm, partition: debug } }
steps:
  member:
    executor: hpc
    for_each: { i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }
    pack: { tasks: 12, parallel: 4 }
    resources: { cpus: 1, memory: 64MiB, time: 1m }
    run: |
      s=$(date +%s.%N); sleep 1; e=$(date +%s.%N)
      echo "$s $e $SLURM_JOB_ID $SLURM_STEP_ID" > ${{ outputs.t }}
    outputs: { t: t }
"#;

#[test]
fn a_parallel_pack_runs_its_tasks_four_at_a_time_in_one_job() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let file = state.path().join("ppack.yaml");
    std::fs::write(&file, PARALLEL).expect("write workflow");
    let t0 = Instant::now();
    let o = twinflow(state.path(), &["run", file.to_str().expect("utf-8")]);
    let wall = t0.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let status = twinflow(state.path(), &["status", "--json", "--limit", "10000"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status --json");
    let run_dir = status["run"]["run_dir"].as_str().expect("run_dir");
    let mut spans = Vec::new();
    let mut jobs = BTreeSet::new();
    let mut steps = BTreeSet::new();
    for i in 0..12 {
        let text = std::fs::read_to_string(format!("{run_dir}/work/member/{i}/t"))
            .expect("every task wrote its output");
        let w: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(w.len(), 4, "{text}");
        let span: (f64, f64) = (w[0].parse().expect("start"), w[1].parse().expect("end"));
        spans.push(span);
        jobs.insert(w[2].to_owned());
        steps.insert(w[3].to_owned());
    }
    assert_eq!(jobs.len(), 1, "one allocation: {jobs:?}");
    assert_eq!(steps.len(), 12, "one srun step per task: {steps:?}");
    // The most tasks running at once, seen at each task's start.
    let most = spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .expect("spans");
    assert!(
        (2..=4).contains(&most),
        "at most 4 at a time, and side by side: {most} ({spans:?})"
    );
    let first = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let last = spans.iter().map(|s| s.1).fold(0.0, f64::max);
    // Twelve one-second tasks four at a time: about three seconds of
    // tasks, far from the twelve one after another would take.
    assert!(last - first < 9.0, "tasks took {:.1} s", last - first);
    eprintln!(
        "parallel pack: tasks {:.1} s (first start to last end), run {:.1} s, at most {most} at once",
        last - first,
        wall.as_secs_f64()
    );
    let tasks = status["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 12);
    for t in tasks {
        let handle = t["handle"].as_str().unwrap_or_default();
        assert!(handle.starts_with("slurm-pack:"), "{t}");
    }
}
