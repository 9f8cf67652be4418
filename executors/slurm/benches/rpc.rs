//! Slurm politeness benchmark (issue 6), against the local Slurm of
//! `deploy/dev/slurm-up`: a fan-out of N tasks (5,000; `-- --quick`: 1,000)
//! run by twinflow, beside the floor: the same tasks submitted by hand as
//! `sbatch --array` chunks of the site's `MaxArraySize`, whose end is seen
//! without asking Slurm (the tasks' files appear).
//!
//! For each it prints the end-to-end time and the slurmctld RPCs that
//! `sdiag` counts (reset before each; the counters are cluster-wide, so run
//! it on an otherwise idle test cluster): submissions
//! (`REQUEST_SUBMIT_BATCH_JOB`) and status queries (`REQUEST_JOB_INFO*`,
//! one per `squeue`). Targets: submissions at most array chunks + steps;
//! one status query per poll interval, whatever the number of jobs.
//!
//! Run: `deploy/dev/slurm-up && source /tmp/twinflow-slurm/env &&
//! cargo bench -p twinflow-executor-slurm --bench rpc [-- --quick]`
//! (`--tasks N` for another size, `--no-floor` to run twinflow alone).

#![expect(
    clippy::expect_used,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_secs(2);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tasks: usize = args
        .iter()
        .position(|a| a == "--tasks")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if args.iter().any(|a| a == "--quick") {
            1000
        } else {
            5000
        });
    let Some(config) = output("scontrol", &["show", "config"]) else {
        println!("skipped: no Slurm here (deploy/dev/slurm-up; source /tmp/twinflow-slurm/env)");
        return;
    };
    let max_array = twinflow_executor_slurm::parse::parse_max_array_size(&config).unwrap_or(1001);
    let chunks = tasks.div_ceil(max_array as usize);
    let dir = tempfile::tempdir().expect("temp dir");
    println!("slurm politeness: {tasks} tasks, MaxArraySize {max_array} -> {chunks} array chunks");

    let (floor_time, floor_rpcs) = if args.iter().any(|a| a == "--no-floor") {
        (Duration::from_secs(1), BTreeMap::new())
    } else {
        floor(dir.path(), tasks, max_array as usize)
    };
    let (tf_time, tf_rpcs) = twinflow(dir.path(), tasks);

    println!();
    println!("| | floor (sbatch --array by hand) | twinflow |");
    println!("| --- | --- | --- |");
    println!(
        "| end to end | {:.1} s | {:.1} s ({:.2}x the floor) |",
        floor_time.as_secs_f64(),
        tf_time.as_secs_f64(),
        tf_time.as_secs_f64() / floor_time.as_secs_f64()
    );
    let row = |name: &str, key: &[&str]| {
        let count = |r: &BTreeMap<String, u64>| key.iter().filter_map(|k| r.get(*k)).sum::<u64>();
        println!("| {name} | {} | {} |", count(&floor_rpcs), count(&tf_rpcs));
    };
    row(
        "submission RPCs (REQUEST_SUBMIT_BATCH_JOB)",
        &["REQUEST_SUBMIT_BATCH_JOB"],
    );
    row(
        "status RPCs (REQUEST_JOB_INFO, _SINGLE)",
        &["REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE"],
    );
    let submits = tf_rpcs
        .get("REQUEST_SUBMIT_BATCH_JOB")
        .copied()
        .unwrap_or(0);
    let status = ["REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE"]
        .iter()
        .filter_map(|k| tf_rpcs.get(*k))
        .sum::<u64>();
    let intervals = tf_time.as_secs_f64() / POLL.as_secs_f64();
    println!();
    println!(
        "submission RPCs: {submits} (target: at most {} = {chunks} array chunks + 1 step): {}",
        chunks + 1,
        if submits <= chunks as u64 + 1 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "status RPCs: {status} over {:.0} s, {:.2} per {} s poll interval (target: at most 1): {}",
        tf_time.as_secs_f64(),
        status as f64 / intervals,
        POLL.as_secs(),
        if status as f64 <= intervals.ceil() {
            "met"
        } else {
            "MISSED"
        }
    );
    let mut other = String::new();
    for (k, v) in &tf_rpcs {
        if !k.starts_with("REQUEST_SUBMIT") && !k.starts_with("REQUEST_JOB_INFO") {
            let _ = write!(other, "{k} {v}, ");
        }
    }
    println!(
        "twinflow's other RPCs (squeue also loads partitions; jobs report their end): {other}"
    );
}

/// Standard output of a command that succeeded.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sdiag_reset() {
    output("sdiag", &["--reset"]).expect("sdiag --reset (run as root or SlurmUser)");
}

/// `sdiag`'s RPC counts by message type.
fn sdiag_counts() -> BTreeMap<String, u64> {
    let text = output("sdiag", &[]).expect("sdiag");
    text.lines()
        .skip_while(|l| !l.starts_with("Remote Procedure Call statistics by message type"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            let count = l.split("count:").nth(1)?.split_whitespace().next()?;
            Some((name.to_owned(), count.parse().ok()?))
        })
        .collect()
}

/// The sizes of the arrays the run's tasks went out in, from their handles
/// (`slurm:<array>_<index>:...`).
fn print_arrays(state: &Path) {
    let store = twinflow_engine::StateStore::open(state).expect("state store");
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for task in store.tasks("rpc-bench").expect("tasks") {
        let handle = task.handle.unwrap_or_default();
        let job = handle.split(':').nth(1).unwrap_or_default();
        let array = job.split('_').next().unwrap_or_default().to_owned();
        *sizes.entry(array).or_default() += 1;
    }
    let sizes: Vec<String> = sizes.values().map(usize::to_string).collect();
    println!(
        "twinflow's sbatch calls: {} (tasks each: {}); an sbatch that slurmctld \
         turns away for a while (MaxJobCount) retries, each retry one more RPC",
        sizes.len(),
        sizes.join(", ")
    );
}

/// The hand-written floor: `sbatch --array` chunks, end seen from files.
fn floor(dir: &Path, tasks: usize, max_array: usize) -> (Duration, BTreeMap<String, u64>) {
    let done = dir.join("floor");
    std::fs::create_dir_all(&done).expect("floor dir");
    sdiag_reset();
    let start = Instant::now();
    for (c, base) in (0..tasks).step_by(max_array).enumerate() {
        let n = max_array.min(tasks - base);
        let script = dir.join(format!("floor-{c}.sbatch"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n#SBATCH --job-name=floor\n#SBATCH --output=/dev/null\n\
                 #SBATCH --array=0-{}\n#SBATCH --cpus-per-task=1\n#SBATCH --time=5\n\
                 echo ok > {}/$(({base} + SLURM_ARRAY_TASK_ID))\n",
                n - 1,
                done.display()
            ),
        )
        .expect("write floor script");
        output("sbatch", &["--parsable", script.to_str().expect("utf-8")]).expect("sbatch");
    }
    while std::fs::read_dir(&done).map_or(0, Iterator::count) < tasks {
        std::thread::sleep(Duration::from_millis(200));
    }
    let elapsed = start.elapsed();
    (elapsed, sdiag_counts())
}

/// The same fan-out as a twinflow workflow on the engine.
fn twinflow(dir: &Path, tasks: usize) -> (Duration, BTreeMap<String, u64>) {
    let values: Vec<String> = (0..tasks).map(|i| i.to_string()).collect();
    let yaml = format!(
        "version: 1\nname: rpc-bench\nexecutors: {{ hpc: {{ kind: slurm }} }}\n\
         steps:\n  fan:\n    executor: hpc\n    for_each: {{ i: [{}] }}\n\
         \x20   resources: {{ cpus: 1, time: 5m }}\n    run: echo ok > out.txt\n",
        values.join(", ")
    );
    let options = twinflow_workflow::CompileOptions {
        run_id: "rpc-bench".to_owned(),
        max_tasks: tasks + 1,
        ..twinflow_workflow::CompileOptions::default()
    };
    let plan = twinflow_workflow::compile_str("rpc-bench.yaml", &yaml, &options).expect("compile");
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let engine = twinflow_engine::Engine::builder()
            .state_dir(dir.join("state"))
            .executor(
                twinflow_core::ExecutorKind::Slurm,
                twinflow_executor_slurm::SlurmFactory::new(POLL),
            )
            .build()
            .expect("engine");
        sdiag_reset();
        let start = Instant::now();
        let run = engine
            .submit(plan, twinflow_engine::RunOptions::default())
            .await
            .expect("submit");
        let summary = run.wait().await.expect("run");
        let elapsed = start.elapsed();
        assert_eq!(
            summary.outcome,
            twinflow_engine::Outcome::Succeeded,
            "{:?}",
            summary.failures.first()
        );
        let counts = sdiag_counts();
        print_arrays(&dir.join("state"));
        (elapsed, counts)
    })
}
