//! `user_max_jobs` on a real Slurm (the one `deploy/dev/slurm-up` starts;
//! `scripts/test` sets `TWINFLOW_TEST_SLURM=1`): two runs of one engine
//! share the cap, and `squeue` never shows more of their jobs than it.
//! Without `TWINFLOW_TEST_SLURM=1` the test says so and returns.
//!
//! The cap counts every job of the user, so other jobs of the same user on
//! the test cluster (other tests) only make these wait longer.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn slurm_available() -> bool {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts deploy/dev/slurm-up and sets it)"
    );
    false
}

/// A run of five slow tasks of step `STEP` under `user_max_jobs: 3`.
const CAPPED: &str = r"
version: 1
name: NAME
executors: { hpc: { kind: slurm, partition: debug, user_max_jobs: 3 } }
steps:
  STEP:
    executor: hpc
    for_each: { i: [1, 2, 3, 4, 5] }
    resources: { cpus: 1, memory: 32MiB, time: 5m }
    run: sleep 3 && echo ${{ i }} > ${{ outputs.n }}
    outputs: { n: n.txt }
";

/// How many jobs of these steps (job names `tf-STEP`) squeue shows pending
/// or running, array elements one each.
fn ours_in_squeue(steps: &[&str]) -> usize {
    let names: Vec<String> = steps.iter().map(|s| format!("tf-{s}")).collect();
    let out = Command::new("squeue")
        .args(["--me", "-h", "-r", "-t", "PD,R,CG,CF,S", "-n"])
        .arg(names.join(","))
        .args(["-o", "%i"])
        .output()
        .expect("run squeue");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[tokio::test]
async fn two_runs_of_one_engine_share_user_max_jobs() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = twinflow_engine::Engine::builder()
        .state_dir(dir.path().join("state"))
        .executor(
            twinflow_core::ExecutorKind::Slurm,
            twinflow_executor_slurm::SlurmFactory::new(Duration::from_millis(300)),
        )
        .build()
        .unwrap();
    let steps = ["ucapone", "ucaptwo"];
    // Sample squeue while the runs go.
    let done = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, most) = (Arc::clone(&done), Arc::clone(&most));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                most.fetch_max(ours_in_squeue(&steps), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };
    let mut runs = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let yaml = CAPPED
            .replace("NAME", &format!("capped-{n}"))
            .replace("STEP", step);
        let options = twinflow_workflow::CompileOptions {
            run_id: format!("capped-{n}"),
            ..twinflow_workflow::CompileOptions::default()
        };
        let plan = twinflow_workflow::compile_str("live.yaml", &yaml, &options).unwrap();
        runs.push(
            engine
                .submit(plan, twinflow_engine::RunOptions::default())
                .await
                .expect("a run with user_max_jobs is accepted on Slurm"),
        );
    }
    let mut summaries = Vec::new();
    for run in runs {
        summaries.push(
            tokio::time::timeout(Duration::from_secs(300), run.wait())
                .await
                .expect("the run ends")
                .unwrap(),
        );
    }
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    for (summary, step) in summaries.iter().zip(steps) {
        assert_eq!(
            summary.outcome,
            twinflow_engine::Outcome::Succeeded,
            "{summary:?}"
        );
        for i in 0..5 {
            let n = std::fs::read_to_string(summary.run_dir.join(format!("work/{step}/{i}/n.txt")))
                .unwrap();
            assert_eq!(n.trim(), (i + 1).to_string());
        }
    }
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&most),
        "user_max_jobs 3 over two runs, yet squeue showed {most} of their jobs"
    );
}
