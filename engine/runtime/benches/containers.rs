//! Container benchmark: what running a task inside a podman container costs
//! on the local executor, against the same task on the host and against
//! the physical floor, the same `podman run` commands launched by
//! `xargs -P <cores>` without twinflow.
//!
//! N independent tasks (default 40) each write one small file:
//!
//! - `host floor`: `sh -c` through `xargs -P cores`;
//! - `twinflow host`: the tasks on the local executor (slots = cores);
//! - `podman floor`: `podman run --rm --init --network=host -v DIR:DIR -w DIR
//!   IMAGE sh -c ...` through `xargs -P cores`: what a hand-written script
//!   pays for a container per task;
//! - `twinflow podman`: the tasks with `container:` on the local executor
//!   (resolved once at submit, then one `podman run` per task, named, with
//!   the task directory bound).
//!
//! It prints each wall time, the per-task cost of the container start
//! (twinflow podman minus twinflow host, times cores over N: what one task
//! waits longer) and the ratio of twinflow podman to the podman floor.
//! Needs podman and `localhost/twinflow-busybox:1` (`deploy/dev/podman-up`);
//! without them it says so and measures nothing.
//!
//! Run: `cargo bench -p twinflow-engine --bench containers` (`-- --tasks N`,
//! `-- --reps R`, `-- --quick` for one repetition).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "support/common.rs"]
#[expect(
    dead_code,
    reason = "the fan-out workflow and the figures of processes are the dispatch benchmark's"
)]
mod common;
#[path = "support/local_run.rs"]
mod local_run;
use common::{bench_dir, median, xargs};

const IMAGE: &str = "localhost/twinflow-busybox:1";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // This binary is also the local executor's supervisor, as `twinflow` is.
    if local_run::serve_as_supervisor(&args) {
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(args[i + 1] == "podman", args[i + 2].parse().unwrap_or(40));
        return;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let n = value("--tasks").unwrap_or(40);
    let reps = match value("--reps") {
        Some(r) => r.max(1),
        None if args.iter().any(|a| a == "--quick") => 1,
        None => 3,
    };
    let present = Command::new("podman")
        .args(["image", "exists", IMAGE])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        println!(
            "container benchmark: skipped, podman or {IMAGE} is missing (run deploy/dev/podman-up)"
        );
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("container benchmark: {n} tasks, {cores} cores, median of {reps} (times in seconds)");
    let mut keep = Vec::new();
    let (mut host_floor, mut host, mut podman_floor, mut podman) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        host_floor.push(floor(n, cores, false, &mut keep));
        host.push(measure_child(false, n, &mut keep));
        podman_floor.push(floor(n, cores, true, &mut keep));
        podman.push(measure_child(true, n, &mut keep));
        eprintln!(
            "  rep {rep}: host floor {:.3}, twinflow host {:.3}, podman floor {:.3}, twinflow podman {:.3}",
            host_floor[rep], host[rep], podman_floor[rep], podman[rep]
        );
    }
    let (host_floor, host) = (median(&mut host_floor), median(&mut host));
    let (podman_floor, podman) = (median(&mut podman_floor), median(&mut podman));
    let per_task = |secs: f64| secs * cores as f64 / n as f64 * 1e3;
    println!("{:<18} {:>9} {:>14}", "", "wall", "per task slot");
    for (name, secs) in [
        ("host floor", host_floor),
        ("twinflow host", host),
        ("podman floor", podman_floor),
        ("twinflow podman", podman),
    ] {
        println!("{name:<18} {secs:>9.3} {:>11.1} ms", per_task(secs));
    }
    println!(
        "container start per task: {:.1} ms (twinflow podman - twinflow host); \
         twinflow podman / podman floor: {:.2}x",
        per_task(podman - host),
        podman / podman_floor
    );
}

/// Runs the workload in a child process; its wall seconds.
fn measure_child(podman: bool, n: usize, keep: &mut Vec<tempfile::TempDir>) -> f64 {
    let dir = bench_dir();
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args([
            "--child",
            if podman { "podman" } else { "host" },
            &n.to_string(),
        ])
        .env("TWINFLOW_BENCH_DIR", dir.path())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    keep.push(dir);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN)
}

fn workflow(podman: bool, n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let (runtime, container) = if podman {
        (
            ", container_runtime: podman",
            format!("\n    container: {IMAGE}"),
        )
    } else {
        ("", String::new())
    };
    format!(
        "version: 1
name: containers
executors: {{ here: {{ kind: local{runtime} }} }}
steps:
  task:
    executor: here{container}
    for_each: {{ i: [{}] }}
    run: echo ${{{{ i }}}} > ${{{{ outputs.o }}}}
    outputs: {{ o: o.txt }}
",
        values.join(",")
    )
}

/// In the child: compile, run with the engine, print the wall seconds.
fn child(podman: bool, n: usize) {
    let dir = std::env::var_os("TWINFLOW_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .expect("TWINFLOW_BENCH_DIR");
    let options = twinflow_workflow::CompileOptions {
        run_id: "bench".to_owned(),
        ..twinflow_workflow::CompileOptions::default()
    };
    let plan = twinflow_workflow::compile_str("bench.yaml", &workflow(podman, n), &options)
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let secs = local_run::run(plan, &dir);
    local_run::reap_children();
    println!("{secs}");
}

/// The floor: the same `n` writes through `xargs -P cores`, on the host or
/// each in its own `podman run`.
fn floor(n: usize, cores: usize, podman: bool, keep: &mut Vec<tempfile::TempDir>) -> f64 {
    let dir = bench_dir();
    let commands: Vec<String> = (0..n)
        .map(|i| {
            let d = dir.path().join(i.to_string());
            std::fs::create_dir_all(&d).expect("floor dir");
            let d = d.display();
            if podman {
                format!(
                    "podman run --rm --init --network=host --volume {d}:{d} --workdir {d} \
                     {IMAGE} /bin/sh -e -c 'echo {i} > o.txt'"
                )
            } else {
                format!("cd {d} && echo {i} > o.txt")
            }
        })
        .collect();
    let start = Instant::now();
    xargs(&commands, cores);
    let secs = start.elapsed().as_secs_f64();
    keep.push(dir);
    secs
}
