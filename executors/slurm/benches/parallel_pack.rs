//! Parallel pack benchmark (issue 19): N one-core tasks of 0.5 s (default
//! 1,000) as one parallel pack (`pack: {tasks: N, parallel: K}`, K = the
//! partition node's advertised CPUs) against a plain job array of the same
//! tasks, on the real local Slurm (`deploy/dev/slurm-up`).
//!
//! Both are rendered with the executor's own functions (member scripts,
//! manifest, pack script, array script), written and `sbatch`ed as the
//! executor does; the pack runs under `<this binary> worker MANIFEST`,
//! which calls the same `worker::run_pack` as `twinflow worker`, each task
//! an `srun --exact` step. For each it prints what the controller counted
//! (`sdiag` before and after: jobs submitted and started, batch-submit and
//! step-create RPCs; on a shared machine other users' jobs count too), the
//! makespan (first file written, before `sbatch`, to the last task's status
//! file, polled every 50 ms: no Slurm queries), and the ratio of the
//! makespan to the ideal (total work / advertised cores). It asserts no
//! times.
//!
//! Run: `deploy/dev/slurm-up && source /tmp/twinflow-slurm/env && cargo
//! bench -p twinflow-executor-slurm --bench parallel_pack` (`-- --tasks N`,
//! `-- --seconds S` per task).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use twinflow_core::{AttemptKey, Job, PackSpec, Resources, SlurmConfig, TaskId};
use twinflow_executor_slurm::group::{Member, pack_manifest, render_array, render_pack};
use twinflow_executor_slurm::script::render_member;

#[path = "support/sbatch_bench.rs"]
mod sbatch_bench;
use sbatch_bench::{sbatch, serve_as_worker, succeeds, wait_for};

/// Each task's time limit: the pack asks for ceil(N/K) of them (1,000
/// tasks on 16 CPUs: 63 x 30 s, within the debug partition's hour).
const TASK_SECONDS: u64 = 30;
/// How long one way may take before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(900);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // This binary is also the pack's worker, as `twinflow worker` is.
    if serve_as_worker(&args) {
        return;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let n = value("--tasks").map_or(1000, |v| v as usize).max(2);
    let seconds = value("--seconds").unwrap_or(0.5);
    if !succeeds("scontrol", &["show", "config"]) {
        println!("skipped: no Slurm here (deploy/dev/slurm-up; source /tmp/twinflow-slurm/env)");
        return;
    }
    let cores = advertised_cores();
    let ideal = n as f64 * seconds / f64::from(cores);
    println!(
        "parallel pack benchmark: {n} one-core tasks of {seconds} s, {cores} advertised cores, \
         ideal {ideal:.1} s (total work / cores)"
    );
    let root = tempfile::tempdir().expect("temp dir");
    let tag = format!("ppb{}", std::process::id());
    println!(
        "{:<28} {:>9} {:>9} {:>12} {:>12} {:>10} {:>8}",
        "", "submitted", "started", "submit RPCs", "step RPCs", "makespan", "/ ideal"
    );
    for way in ["parallel pack", "job array"] {
        let before = sdiag();
        let wall = run(
            root.path(),
            &format!("{tag}-{}", &way[..3]),
            way,
            n,
            seconds,
            cores,
        );
        let after = sdiag();
        let d = |i: usize| after[i].saturating_sub(before[i]);
        println!(
            "{:<28} {:>9} {:>9} {:>12} {:>12} {:>9.1}s {:>7.2}x",
            format!("{way} ({n} tasks)"),
            d(0),
            d(1),
            d(2),
            d(3),
            wall,
            wall / ideal
        );
    }
}

/// Runs the tasks `way`; the makespan in seconds.
fn run(root: &Path, run_id: &str, way: &str, n: usize, seconds: f64, cores: u32) -> f64 {
    let run = root.join(run_id);
    let pack = (way == "parallel pack").then_some(PackSpec {
        tasks: u32::try_from(n).expect("task count"),
        parallel: cores,
    });
    let jobs: Vec<Job> = (0..n).map(|i| job(&run, i, seconds, pack)).collect();
    let members: Vec<Member<'_>> = jobs
        .iter()
        .map(|job| Member {
            job,
            script: job.stdout.with_extension("sh"),
            status: job.stdout.with_extension("status"),
        })
        .collect();
    let config = SlurmConfig::default();
    let start = Instant::now();
    for m in &members {
        let text = render_member(m.job, &m.status).expect("member script");
        std::fs::write(&m.script, text).expect("write member script");
    }
    let first = &jobs[0].stdout;
    let script = match pack {
        Some(_) => {
            let manifest = first.with_extension("pack.json");
            std::fs::write(&manifest, pack_manifest(&members)).expect("write manifest");
            let worker = std::env::current_exe().expect("this binary");
            let log = first.with_extension("pack.log");
            render_pack(&members, &config, &worker, &manifest, &log).expect("pack script")
        }
        None => {
            let log = run.join("logs/task/array-%A_%a.log");
            render_array(&members, &config, &log, None).expect("array script")
        }
    };
    let path = first.with_extension("sbatch");
    std::fs::write(&path, script).expect("write script");
    let id = sbatch(&path);
    let statuses: Vec<PathBuf> = members.iter().map(|m| m.status.clone()).collect();
    wait_for(
        &statuses.iter().collect::<Vec<_>>(),
        std::slice::from_ref(&id),
        start,
        LIMIT,
    );
    let secs = start.elapsed().as_secs_f64();
    for (i, s) in statuses.iter().enumerate() {
        let code = std::fs::read_to_string(s).unwrap_or_default();
        assert_eq!(code.trim(), "0", "{way}: task {i} ended with {code:?}");
    }
    secs
}

/// Task `i`: one core, `sleep SECONDS`.
fn job(run: &Path, i: usize, seconds: f64, pack: Option<PackSpec>) -> Job {
    let logs = run.join("logs/task");
    let workdir = run.join(format!("work/task/{i}"));
    std::fs::create_dir_all(&workdir).expect("task directory");
    std::fs::create_dir_all(&logs).expect("log directory");
    Job {
        key: AttemptKey {
            task: TaskId(u32::try_from(i).expect("task id")),
            attempt: 0,
        },
        name: format!("task[i={i}]"),
        script: format!("sleep {seconds}"),
        env: Vec::new(),
        workdir,
        stdout: logs.join(format!("{i}.0.out")),
        stderr: logs.join(format!("{i}.0.err")),
        resources: Resources {
            cpus: 1,
            time_seconds: Some(TASK_SECONDS),
            ..Resources::default()
        },
        step: "task".to_owned(),
        pack,
        launcher: None,
        group: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    }
}

/// The CPUs Slurm advertises for the default partition's first node.
fn advertised_cores() -> u32 {
    let out = Command::new("sinfo")
        .args(["-h", "-o", "%c"])
        .output()
        .expect("run sinfo");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().trim_end_matches('+').parse().ok())
        .expect("sinfo prints the node's CPUs")
}

/// `sdiag` counters: jobs submitted, jobs started, batch-submit RPCs,
/// step-create RPCs.
fn sdiag() -> [u64; 4] {
    let out = Command::new("sdiag").output().expect("run sdiag");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|rest| {
                rest.trim_start_matches([':', ' ', '\t'])
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    };
    // RPC lines: `REQUEST_SUBMIT_BATCH_JOB ( 4003) count:2 ave_time:...`.
    let rpc = |name: &str| {
        text.lines()
            .find(|l| l.trim().starts_with(&format!("{name} ")))
            .and_then(|l| l.split("count:").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    [
        field("Jobs submitted"),
        field("Jobs started"),
        rpc("REQUEST_SUBMIT_BATCH_JOB"),
        rpc("REQUEST_JOB_STEP_CREATE"),
    ]
}
