//! Dispatch benchmark: the engine with the local executor against the shell
//! floor, the same `sh -c` processes launched by `xargs -P <cores>` in
//! dependency order (each wave waits for the previous one).
//!
//! - W1: 1 setup task, N no-op tasks after it, 1 gather task after them.
//! - W2: 50 scenarios x 10 years x 3 steps (climate -> forest -> bird; forest
//!   also reads the previous year's forest); every task writes a small file
//!   and reads its inputs.
//!
//! Each measurement runs in a fresh child process (this binary with
//! `--child`), so the resident-memory figure is the engine's own peak.
//! Targets (issue 5): at most 1.3x the floor on W1 (2,000) and W2, under
//! 50 MB peak resident memory for W1 with 10,000 tasks.
//!
//! Beside the ratio it prints the engine process's own CPU time per task
//! (user + system, without the tasks themselves): on a machine whose cores
//! the tasks keep busy, that is what the engine takes from them. The local
//! executor's supervisor (this binary with `local-supervisor`, as `twinflow
//! local-supervisor` under the CLI) starts and reaps the tasks in a process
//! of its own, whose CPU time is not in that figure.
//!
//! Run: `cargo bench -p twinflow-engine --bench dispatch` (`-- --quick` for
//! one repetition instead of the median of three, `-- --reps N` for N,
//! `-- --only w2` for the workloads whose kind or name contains `w2`; each
//! repetition's figures go to standard error).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "support/common.rs"]
mod common;
#[path = "support/local_run.rs"]
mod local_run;
use common::{bench_dir, median, xargs};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // This binary is also the local executor's supervisor, as `twinflow` is.
    if local_run::serve_as_supervisor(&args) {
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], args[i + 2].parse().unwrap_or(2000));
        return;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let reps = match value("--reps").and_then(|n| n.parse().ok()) {
        Some(n) => n,
        None if args.iter().any(|a| a == "--quick") => 1,
        None => 3,
    };
    let only = value("--only");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let root = std::env::var("TWINFLOW_BENCH_ROOT")
        .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    println!(
        "dispatch benchmark: {cores} cores, files under {root}, median of {reps} (times in seconds)"
    );
    println!(
        "{:<24} {:>7} {:>9} {:>10} {:>7} {:>8} {:>12} {:>14}",
        "workload", "tasks", "floor", "twinflow", "ratio", "target", "peak RSS", "own CPU/task"
    );
    // Directories are removed only at the end: on ext4 without a journal,
    // creating files next to recently deleted ones is several times slower,
    // which would charge one measurement for the clean-up of the previous.
    let mut keep = Vec::new();
    for (name, kind, n, target) in [
        ("W1 fan-out 2,000", "w1", 2000, Some(1.3)),
        ("W2 50x10x3 coupled", "w2", 50, Some(1.3)),
        ("W1 fan-out 10,000", "w1", 10_000, None),
    ] {
        if only.is_some_and(|o| !kind.contains(o.as_str()) && !name.contains(o.as_str())) {
            continue;
        }
        let mut floors = Vec::new();
        let mut ours = Vec::new();
        let mut rss = 0;
        let mut tasks = 0;
        let mut cpus = Vec::new();
        for _ in 0..reps {
            let before = children_cpu_seconds();
            floors.push(floor(kind, n, cores, &mut keep));
            let between = children_cpu_seconds();
            let dir = bench_dir();
            let (secs, kb, t, cpu) = measure_child(kind, n, dir.path());
            let after = children_cpu_seconds();
            keep.push(dir);
            let floor = floors.last().copied().unwrap_or(f64::NAN);
            // The CPU time of everything each side ran (tasks included),
            // which other work on the machine disturbs less than wall time.
            eprintln!(
                "  {name}: floor {floor:.3} s, twinflow {secs:.3} s, {:.2}x, {:.0} us CPU/task; \
                 all CPU: floor {:.2} s, twinflow {:.2} s, {:.2}x",
                secs / floor,
                cpu * 1e6 / t.max(1) as f64,
                between - before,
                after - between,
                (after - between) / (between - before)
            );
            ours.push(secs);
            cpus.push(cpu);
            rss = rss.max(kb);
            tasks = t;
        }
        let (floor, ours) = (median(&mut floors), median(&mut ours));
        let ratio = ours / floor;
        let target = match target {
            Some(t) => format!("{}{t:.1}x", if ratio <= t { "<=" } else { "MISSED " }),
            None => format!("{}50 MB", if rss < 50 * 1024 { "<" } else { "MISSED " }),
        };
        println!(
            "{name:<24} {tasks:>7} {floor:>9.3} {ours:>10.3} {ratio:>6.2}x {target:>8} {:>9.1} MB {:>11.0} us",
            rss as f64 / 1024.0,
            median(&mut cpus) * 1e6 / tasks.max(1) as f64
        );
    }
}

/// CPU seconds (user + system) of this process's children that have ended
/// and been waited for, and of theirs (`/proc/self/stat` fields 16 and 17).
fn children_cpu_seconds() -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit(')').next()?.to_owned();
            let f: Vec<&str> = after.split_whitespace().collect();
            Some(f.get(13)?.parse::<u64>().ok()? + f.get(14)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    ticks as f64 / 100.0
}

/// Runs one workload in a child process: (seconds, peak RSS in KiB, tasks).
fn measure_child(kind: &str, n: usize, dir: &Path) -> (f64, u64, usize, f64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args(["--child", kind, &n.to_string()])
        .env("TWINFLOW_BENCH_DIR", dir)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    let secs = fields
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let kb = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let tasks = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let cpu = fields
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    (secs, kb, tasks, cpu)
}

fn workflow(kind: &str, n: usize) -> String {
    match kind {
        "w1" => common::fan_out_yaml("w1", n),
        _ => {
            let scenarios: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
            format!(
                "version: 1
name: w2
cycle: {{ start: 2020-01-01, stop: 2029-01-01, step: P1Y }}
executors: {{ here: {{ kind: local }} }}
steps:
  climate:
    executor: here
    for_each: {{ scenario: [{s}] }}
    cycling: true
    run: echo climate > ${{{{ outputs.c }}}}
    outputs: {{ c: c.txt }}
  forest:
    executor: here
    for_each: {{ scenario: [{s}] }}
    cycling: true
    needs: {{ c: climate.c, prev: forest.f@-1 }}
    run: cat ${{{{ inputs.c }}}} > ${{{{ outputs.f }}}}; [ -z ${{{{ inputs.prev }}}} ] || cat ${{{{ inputs.prev }}}} >> ${{{{ outputs.f }}}}
    outputs: {{ f: f.txt }}
  bird:
    executor: here
    for_each: {{ scenario: [{s}] }}
    cycling: true
    needs: {{ f: forest.f }}
    run: cat ${{{{ inputs.f }}}} > ${{{{ outputs.b }}}}
    outputs: {{ b: b.txt }}
",
                s = scenarios.join(",")
            )
        }
    }
}

/// In the child: compile, run with the engine, print seconds, peak RSS and tasks.
fn child(kind: &str, n: usize) {
    let dir = std::env::var_os("TWINFLOW_BENCH_DIR").map_or_else(
        || std::env::temp_dir().join(format!("twinflow-bench-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let options = twinflow_workflow::CompileOptions {
        run_id: "bench".to_owned(),
        ..twinflow_workflow::CompileOptions::default()
    };
    let plan = twinflow_workflow::compile_str("bench.yaml", &workflow(kind, n), &options)
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let tasks = plan.task_count();
    let secs = local_run::run(plan, &dir);
    let cpu = common::own_cpu_seconds("self");
    local_run::reap_children();
    println!("{secs} {} {tasks} {cpu}", common::peak_rss_kb("self"));
}

/// The floor: the same commands through `xargs -P cores`, wave by wave.
fn floor(kind: &str, n: usize, cores: usize, keep: &mut Vec<tempfile::TempDir>) -> f64 {
    let dir = bench_dir();
    let waves: Vec<Vec<String>> = match kind {
        "w1" => vec![
            vec!["true".to_owned()],
            vec!["true".to_owned(); n],
            vec!["true".to_owned()],
        ],
        _ => w2_waves(dir.path(), n),
    };
    let start = Instant::now();
    for wave in &waves {
        xargs(wave, cores);
    }
    let secs = start.elapsed().as_secs_f64();
    keep.push(dir);
    secs
}

/// W2's commands in dependency order: all climate tasks, then for each year
/// that year's forests with the previous year's birds, then the last birds.
fn w2_waves(dir: &Path, n: usize) -> Vec<Vec<String>> {
    let years = 10;
    let d = |step: &str, s: usize, y: usize| {
        let p = dir.join(format!("{step}-{s}-{y}"));
        std::fs::create_dir_all(&p).expect("floor dir");
        p.display().to_string()
    };
    let mut waves = vec![Vec::new()];
    for s in 0..n {
        for y in 0..years {
            waves[0].push(format!("cd {} && echo climate > c.txt", d("c", s, y)));
        }
    }
    let forest = |s: usize, y: usize| {
        let prev = if y == 0 {
            "''".to_owned()
        } else {
            format!("{}/f.txt", d("f", s, y - 1))
        };
        format!(
            "cd {} && cat {}/c.txt > f.txt; [ -z {prev} ] || cat {prev} >> f.txt",
            d("f", s, y),
            d("c", s, y)
        )
    };
    let bird =
        |s: usize, y: usize| format!("cd {} && cat {}/f.txt > b.txt", d("b", s, y), d("f", s, y));
    for y in 0..years {
        let mut wave = Vec::new();
        for s in 0..n {
            wave.push(forest(s, y));
            if y > 0 {
                wave.push(bird(s, y - 1));
            }
        }
        waves.push(wave);
    }
    waves.push((0..n).map(|s| bird(s, years - 1)).collect());
    waves
}
