//! A `twinflow run` in progress without a daemon serves its own socket:
//! `hold`, `release` and `kill` reach it, `status --summary` shows it live
//! and `logs --follow` follows its task; a run killed with SIGKILL leaves a
//! stale socket that is answered "not live" at once; `rerun` of an ended
//! run without a daemon takes it up in the foreground; and a daemon killed
//! with SIGKILL right after taking an ended run up for a rerun leaves the
//! journal to decide: the next daemon applies the rerun once.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

mod common;
mod control_support;

use common::{daemon, text, twinflow, wait_until};
use control_support::{LIMIT, state_of};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `twinflow run FILE` in the background, without a daemon.
fn foreground(state: &Path, file: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["run"])
        .arg(file)
        .arg("--state-dir")
        .arg(state)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("twinflow run")
}

/// `status latest --summary --json`, once it answers.
fn summary(state: &Path) -> Option<serde_json::Value> {
    let o = twinflow(state, &["status", "latest", "--summary", "--json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).ok())
        .flatten()
}

/// The latest attempt of task `name` of the latest run, and the run it
/// reused a result of.
fn attempt(state: &Path, name: &str) -> (u64, serde_json::Value) {
    let o = twinflow(state, &["status", "latest", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status JSON");
    let t = v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name}: {v}"))
        .clone();
    (
        t["attempt"].as_u64().expect("attempt"),
        t["cached_from"].clone(),
    )
}

fn workflow(dir: &Path, name: &str, yaml: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, yaml).expect("write workflow");
    file
}

#[test]
fn a_foreground_run_takes_actions_status_and_log_follows_through_its_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(
        dir.path(),
        "own.yaml",
        "version: 1\nname: own\nsteps:\n  first:\n    run: sleep 1\n  late:\n    after: [first]\n    \
         for_each: { i: [1, 2] }\n    run: 'true'\n  long:\n    run: echo hello-long; sleep 60\n  \
         after-long:\n    after: [long]\n    run: 'true'\n",
    );
    let mut run = foreground(&state, &file);
    wait_until("the run to serve its socket", LIMIT, || {
        summary(&state).is_some_and(|s| s["live"] == true)
    });
    let o = twinflow(&state, &["hold", "latest", "late"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().count(), 2, "{}", text(&o.stdout));
    // `watch` follows the run through its socket to its end.
    let watcher = {
        let state = state.clone();
        std::thread::spawn(move || twinflow(&state, &["watch", "latest"]))
    };
    wait_until("first to end and long to run", LIMIT, || {
        state_of(&state, "latest", "first") == ["succeeded"]
            && state_of(&state, "latest", "long") == ["running"]
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        state_of(&state, "latest", "late").is_empty(),
        "a held task started"
    );
    let s = summary(&state).expect("summary");
    assert_eq!(s["live"], true, "{s}");
    assert_eq!(s["held"].as_array().map(Vec::len), Some(2), "{s}");
    // Follow long's output until it ends (it is killed below).
    let follower = {
        let state = state.clone();
        std::thread::spawn(move || twinflow(&state, &["logs", "latest", "long", "--follow"]))
    };
    std::thread::sleep(Duration::from_millis(500));
    let o = twinflow(&state, &["kill", "latest", "long"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let followed = follower.join().expect("logs --follow");
    assert!(followed.status.success(), "{}", text(&followed.stderr));
    assert!(
        text(&followed.stdout).contains("hello-long"),
        "{}",
        text(&followed.stdout)
    );
    let o = twinflow(&state, &["release", "latest", "late[*]"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let status = run.wait().expect("the run ends");
    assert_eq!(status.code(), Some(1), "a killed task fails the run");
    let watched = watcher.join().expect("watch");
    assert_eq!(watched.status.code(), Some(1), "{}", text(&watched.stderr));
    assert_eq!(
        state_of(&state, "latest", "late"),
        ["succeeded", "succeeded"]
    );
    assert_eq!(state_of(&state, "latest", "after-long"), ["skipped"]);
    // The run ended: its socket is gone, and an action says it is not live.
    let o = twinflow(&state, &["hold", "latest", "late"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("is not live:"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_killed_runs_stale_socket_answers_not_live_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(
        dir.path(),
        "stale.yaml",
        "version: 1\nname: stale\nsteps:\n  wait:\n    run: sleep 15\n",
    );
    let mut run = foreground(&state, &file);
    wait_until("the run to serve its socket", LIMIT, || {
        summary(&state).is_some_and(|s| s["live"] == true)
    });
    let info = summary(&state).expect("summary");
    let run_dir = info["run"]["run_dir"].as_str().expect("run dir").to_owned();
    let record = Path::new(&run_dir).join("control.socket");
    assert!(record.exists(), "the socket's path is recorded");
    run.kill().expect("SIGKILL the run");
    let _ = run.wait();
    let start = Instant::now();
    let o = twinflow(&state, &["hold", "latest", "wait"]);
    assert!(start.elapsed() < Duration::from_secs(10), "it hung");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("is not live:"),
        "{}",
        text(&o.stderr)
    );
    assert!(!record.exists(), "the stale socket's record is removed");
    // Read from the store again, not through a dead socket.
    let s = summary(&state).expect("summary");
    assert_eq!(s["live"], false, "{s}");
}

const CHAIN: &str = "version: 1\nname: chain\nsteps:\n  make:\n    run: echo $RANDOM > ${{ outputs.out }}\n    \
                     outputs: { out: out.txt }\n  use:\n    needs: { x: make.out }\n    \
                     run: cat ${{ inputs.x }} > ${{ outputs.copy }}\n    outputs: { copy: copy.txt }\n  \
                     other:\n    run: 'true'\n";

#[test]
fn rerun_of_an_ended_run_without_a_daemon_takes_it_up_here() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(dir.path(), "chain.yaml", CHAIN);
    let o = twinflow(&state, &["run", file.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (make, _) = attempt(&state, "make");
    let o = twinflow(&state, &["rerun", "latest", "make", "--downstream"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("taking it up here"), "{err}");
    assert!(err.contains("rerunning 1 task(s)"), "{err}");
    assert_eq!(attempt(&state, "make"), (make + 1, serde_json::Value::Null));
    assert_eq!(attempt(&state, "use").0, make + 1, "downstream");
    let s = summary(&state).expect("summary");
    assert_eq!(s["run"]["state"], "succeeded", "{s}");
    assert_eq!(s["action_count"], 1, "{s}");
    // A selector naming nothing: refused before anything is taken up.
    let o = twinflow(&state, &["rerun", "latest", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    // The workflow changed since: refused, as `run --resume` refuses it.
    std::fs::write(&file, CHAIN.replace("'true'", "'true # changed'")).expect("edit");
    let o = twinflow(&state, &["rerun", "latest", "make"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("workflow changed"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_daemon_killed_after_taking_an_ended_run_up_leaves_the_rerun_to_the_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(
        dir.path(),
        "slow.yaml",
        "version: 1\nname: slow\nsteps:\n  slow:\n    run: sleep 2\n  next:\n    after: [slow]\n    run: 'true'\n",
    );
    let mut first = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["watch", "latest"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = twinflow(&state, &["rerun", "latest", "slow", "--downstream"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("live again"),
        "{}",
        text(&o.stderr)
    );
    // The rerun is journalled with the take-up; the daemon dies at once.
    first.kill().expect("SIGKILL the daemon");
    let _ = first.wait();
    let mut second = daemon(&state, None);
    let o = twinflow(&state, &["watch", "latest"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let s = summary(&state).expect("summary");
    assert_eq!(s["action_count"], 1, "applied once: {s}");
    for name in ["slow", "next"] {
        let (n, cached) = attempt(&state, name);
        assert!(n >= 1 && cached.is_null(), "{name} ran again: {n} {cached}");
    }
    let _ = second.kill();
    let _ = second.wait();
}

/// A daemon does not take up a run a `twinflow run` in progress carries:
/// asked directly it refuses a rerun (exit 2); without `--daemon` the
/// action goes to the run's own socket and is applied there.
#[test]
fn a_run_another_process_runs_is_not_taken_up_by_the_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(
        dir.path(),
        "busy.yaml",
        "version: 1\nname: busy\nsteps:\n  quick:\n    run: 'true'\n  long:\n    run: sleep 30\n",
    );
    let mut d = daemon(&state, None);
    let mut run = foreground(&state, &file);
    wait_until("quick to end and long to run", LIMIT, || {
        state_of(&state, "latest", "quick") == ["succeeded"]
            && state_of(&state, "latest", "long") == ["running"]
    });
    let socket = state.join("daemon").join("twinflow.sock");
    let named = format!("unix:{}", socket.display());
    let o = twinflow(&state, &["rerun", "latest", "quick", "--daemon", &named]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("another twinflow process runs it"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(&state, &["rerun", "latest", "quick"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        !text(&o.stderr).contains("live again"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(&state, &["kill", "latest", "long"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(run.wait().expect("the run ends").code(), Some(1));
    assert_eq!(
        attempt(&state, "quick").0,
        1,
        "quick ran again in its own run"
    );
    let _ = d.kill();
    let _ = d.wait();
}
