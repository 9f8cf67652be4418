//! `twinflow logs RUN TASK --follow`, with and without a daemon: the
//! task's output is printed as it is written, and the command ends when
//! the attempt ends, with every line.
mod common;

use common::{daemon, tasks, text, twinflow, wait_until};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SLOW: &str = "version: 1\nname: slow\nsteps:\n  talk:\n    run: for i in 1 2 3 4; do echo line$i; echo err$i >&2; sleep 0.4; done\n";

fn running(state: &Path, run: &str) -> bool {
    tasks(state, run)
        .iter()
        .any(|(n, s, _)| n == "talk" && s == "running")
}

/// Follows `talk` of `run` to its end; its stdout, stderr and how long it took.
fn follow(state: &Path, run: &str) -> (String, String, Duration) {
    let started = Instant::now();
    let o = twinflow(state, &["logs", run, "talk", "--follow"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    (text(&o.stdout), text(&o.stderr), started.elapsed())
}

fn check(out: &str, err: &str, took: Duration) {
    assert_eq!(out, "line1\nline2\nline3\nline4\n", "every line, in order");
    assert_eq!(err, "err1\nerr2\nerr3\nerr4\n");
    assert!(
        took >= Duration::from_millis(400),
        "it returned before the task ended: {took:?}"
    );
}

#[test]
fn logs_follow_a_task_of_a_run_in_this_process_to_its_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("slow.yaml");
    std::fs::write(&file, SLOW).expect("write workflow");
    let mut run = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["run", file.to_str().expect("utf-8"), "--state-dir"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("twinflow run");
    wait_until("the task to run", Duration::from_secs(60), || {
        running(&state, "latest")
    });
    let (out, err, took) = follow(&state, "latest");
    check(&out, &err, took);
    assert!(run.wait().expect("run ends").success());
}

#[test]
fn logs_follow_a_task_of_a_run_the_daemon_carries_to_its_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("slow.yaml");
    std::fs::write(&file, SLOW).expect("write workflow");
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    wait_until("the task to run", Duration::from_secs(60), || {
        running(&state, &run)
    });
    let (out, err, took) = follow(&state, &run);
    check(&out, &err, took);
    // A finished task's log is printed whole and the command returns.
    let (out, _, _) = follow(&state, &run);
    assert_eq!(out, "line1\nline2\nline3\nline4\n");
    let _ = d.kill();
    let _ = d.wait();
}
