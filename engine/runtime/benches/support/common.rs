//! What the benchmarks share: the fan-out workflow, the shell floor
//! (`xargs -P`), their directories and the figures they print. Included by path from the
//! benchmarks of several crates (`#[path = ...] mod floor;`); each uses all
//! of it.

use std::io::Write;
use std::process::{Command, Stdio};

/// A workflow named `name`: 1 setup task, `n` no-op tasks after it, 1
/// gather task after them, all on one local executor.
pub(crate) fn fan_out_yaml(name: &str, n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        "version: 1
name: {name}
executors: {{ here: {{ kind: local }} }}
steps:
  setup:
    executor: here
    run: 'true'
  noop:
    executor: here
    after: [setup]
    for_each: {{ i: [{}] }}
    run: 'true'
  gather:
    executor: here
    after: [noop]
    run: 'true'
",
        values.join(",")
    )
}

/// A fresh directory under `$TWINFLOW_BENCH_ROOT` (default: the system's
/// temporary directory), for both the floor and twinflow.
pub(crate) fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("TWINFLOW_BENCH_ROOT") {
        Some(root) => tempfile::tempdir_in(root),
        None => tempfile::tempdir(),
    }
    .expect("temp dir")
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident memory (`VmHWM`) in KiB of process `pid` (`"self"`: this
/// one); 0 if it cannot be read.
pub(crate) fn peak_rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) process `pid` (`"self"`: this one) has used
/// itself, not counting its children (`/proc/PID/stat` fields 14 and 15).
pub(crate) fn own_cpu_seconds(pid: &str) -> f64 {
    stat_cpu_seconds(pid, 14)
}

/// The sum of fields `first` and `first + 1` (clock ticks) of
/// `/proc/PID/stat`, in seconds; 0 if it cannot be read.
fn stat_cpu_seconds(pid: &str, first: usize) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit(')').next()?.to_owned();
            let f: Vec<&str> = after.split_whitespace().collect();
            // After the command, field 3 is f[0].
            let at = first - 3;
            Some(f.get(at)?.parse::<u64>().ok()? + f.get(at + 1)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    ticks as f64 / 100.0
}

/// Runs each command with `sh -c` through `xargs -P cores`, one per line.
pub(crate) fn xargs(commands: &[String], cores: usize) {
    let mut child = Command::new("xargs")
        .args(["-P", &cores.to_string(), "-d", "\n", "-n", "1", "sh", "-c"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run xargs");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for c in commands {
            let _ = writeln!(stdin, "{c}");
        }
    }
    let status = child.wait().expect("wait for xargs");
    assert!(status.success(), "the floor's commands failed");
}

/// CPU seconds (user + system) of this process's children that have ended
/// and been waited for, and of theirs (`/proc/self/stat` fields 16 and 17).
pub(crate) fn children_cpu_seconds() -> f64 {
    stat_cpu_seconds("self", 16)
}
