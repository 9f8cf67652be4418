//! Operator actions from the command line on runs a daemon carries, with
//! the local executor: `hold` keeps a step's tasks from starting while the
//! rest finishes, also across a `kill -9` of the daemon; `release` lets the
//! run complete; `kill` stops a long task, whose dependents are skipped;
//! an unknown selector exits 2; two actions sent at once are both applied,
//! in order.

mod common;
mod control_support;

use common::{daemon, text, twinflow, wait_until};
use control_support::{LIMIT, state_of};
use std::time::Duration;

#[test]
fn a_held_step_waits_across_a_daemon_sigkill_until_released() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("hold.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: hold\nsteps:\n  first:\n    run: sleep 1\n  late:\n    after: [first]\n    \
         for_each: { i: [1, 2] }\n    run: 'true'\n  spare:\n    after: [first]\n    run: 'true'\n  \
         other:\n    run: 'true'\n",
    )
    .expect("write workflow");
    let mut first = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    // Two operators at once: both actions are applied, one after the other.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| twinflow(&state, &["hold", &run, "late"]));
        let b = s.spawn(|| twinflow(&state, &["hold", &run, "spare"]));
        (a.join().expect("hold"), b.join().expect("hold"))
    });
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert!(b.status.success(), "{}", text(&b.stderr));
    assert_eq!(text(&a.stdout).lines().count(), 2, "{}", text(&a.stdout));
    // An unknown selector: exit 2, naming it.
    let o = twinflow(&state, &["hold", &run, "nope*"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("`nope*`"), "{}", text(&o.stderr));
    wait_until("the tasks not held to finish", LIMIT, || {
        state_of(&state, &run, "first") == ["succeeded"]
            && state_of(&state, &run, "other") == ["succeeded"]
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        state_of(&state, &run, "late").is_empty(),
        "a held task started"
    );
    let o = twinflow(&state, &["status", &run]);
    let shown = text(&o.stdout);
    assert!(shown.contains("held tasks (3;"), "{shown}");
    assert!(shown.contains("operator actions:"), "{shown}");
    assert!(shown.contains(": hold late (2 task(s))"), "{shown}");

    // The daemon dies; the next one takes the run up, still held.
    first.kill().expect("SIGKILL the daemon");
    let _ = first.wait();
    let mut second = daemon(&state, None);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        state_of(&state, &run, "late").is_empty(),
        "held lost on restart"
    );
    assert!(
        state_of(&state, &run, "spare").is_empty(),
        "held lost on restart"
    );
    let o = twinflow(&state, &["release", &run, "late[*]", "spare"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(state_of(&state, &run, "late"), ["succeeded", "succeeded"]);
    // The run is over: nothing takes actions any more.
    let o = twinflow(&state, &["hold", &run, "late"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not running"),
        "{}",
        text(&o.stderr)
    );
    // The actions are in the provenance crate (who, when, on which tasks)
    // and in the report.
    let crate_dir = dir.path().join("crate");
    let o = twinflow(
        &state,
        &[
            "provenance",
            &run,
            "--out",
            crate_dir.to_str().expect("utf-8"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let meta = std::fs::read(crate_dir.join("ro-crate-metadata.json")).expect("crate");
    let meta: serde_json::Value = serde_json::from_slice(&meta).expect("crate JSON");
    let actions: Vec<&serde_json::Value> = meta["@graph"]
        .as_array()
        .expect("graph")
        .iter()
        .filter(|e| e["@type"] == "UpdateAction")
        .collect();
    let names: Vec<&str> = actions.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["hold", "hold", "release"], "{actions:?}");
    let release = actions[2];
    assert_eq!(
        release["object"].as_array().map(Vec::len),
        Some(3),
        "{release}"
    );
    assert!(release["startTime"].is_string() && release["agent"]["@id"].is_string());
    let page = dir.path().join("report.html");
    let o = twinflow(
        &state,
        &["report", &run, "--out", page.to_str().expect("utf-8")],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(&page).expect("report");
    assert!(html.contains("Operator actions <span class=\"count\">3</span>"));
    let _ = second.kill();
    let _ = second.wait();
}

#[test]
fn a_killed_task_fails_and_its_dependents_are_skipped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("kill.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: kill\nsteps:\n  long:\n    retries: 2\n    run: sleep 60\n  \
         after:\n    after: [long]\n    run: 'true'\n  quick:\n    run: 'true'\n",
    )
    .expect("write workflow");
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    wait_until("the long task to run", LIMIT, || {
        state_of(&state, &run, "long") == ["running"]
    });
    let o = twinflow(&state, &["kill", &run, "long"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(state_of(&state, &run, "long"), ["failed"]);
    assert_eq!(state_of(&state, &run, "after"), ["skipped"]);
    assert_eq!(state_of(&state, &run, "quick"), ["succeeded"]);
    let _ = d.kill();
    let _ = d.wait();
}

#[test]
fn without_a_daemon_an_action_says_the_run_is_not_live() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let o = twinflow(&state, &["hold", "some-run", "a"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("run `some-run` is not live:"),
        "{}",
        text(&o.stderr)
    );
}

/// A kill is for good: a resume does not run the killed task again. And a
/// kill is about the attempt it stopped: the task run again by a `rerun`
/// is not killed again when a later resume adopts its new attempt (the
/// process running it was SIGKILLed).
#[test]
fn a_kill_is_not_replayed_on_a_later_attempt_of_the_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("again.yaml");
    let gate = dir.path().join("gate");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: again\nsteps:\n  long:\n    run: while [ ! -e {} ]; do sleep 0.1; done\n",
            gate.display()
        ),
    )
    .expect("write workflow");
    let file = file.to_str().expect("utf-8");
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", file]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    wait_until("the long task to run", LIMIT, || {
        state_of(&state, &run, "long") == ["running"]
    });
    let o = twinflow(&state, &["kill", &run, "long"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let _ = twinflow(&state, &["daemon", "stop"]);
    let _ = d.wait();

    // A resume does not run a killed task again (a kill is for good).
    let resume = format!("--resume={run}");
    let o = twinflow(&state, &["run", &resume, file]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(state_of(&state, &run, "long"), ["failed"]);

    // A rerun does: without a daemon it takes the run up in the foreground,
    // and is SIGKILLed while the task runs: its supervisor keeps the
    // attempt going.
    let mut again = std::process::Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["rerun", &run, "long", "--state-dir"])
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("twinflow run --resume");
    wait_until("the second attempt to run", LIMIT, || {
        state_of(&state, &run, "long") == ["running"]
    });
    again.kill().expect("SIGKILL the run");
    let _ = again.wait();

    // The next resume adopts that attempt; the old kill does not touch it.
    std::fs::write(&gate, "").expect("open the gate");
    let o = twinflow(&state, &["run", &resume, file]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(state_of(&state, &run, "long"), ["succeeded"]);
}

/// A run whose only unfinished task is held stalls: nothing runs, nothing
/// is ready. Its `stalled` hook fires once with the event, and releasing
/// the task ends the stall and the run.
#[test]
fn a_run_stalled_by_a_hold_fires_its_stalled_hook_until_released() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("stall.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: stall\non:\n  stalled: { run: 'cat >> stalled.jsonl; echo >> stalled.jsonl' }\n\
         steps:\n  first:\n    run: sleep 1\n  second:\n    after: [first]\n    run: 'true'\n",
    )
    .expect("write workflow");
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let o = twinflow(&state, &["hold", &run, "second"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let status = twinflow(&state, &["status", &run, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
    let run_dir = std::path::PathBuf::from(v["run"]["run_dir"].as_str().expect("run_dir"));
    let fired = run_dir.join("stalled.jsonl");
    wait_until("the stalled hook", LIMIT, || fired.exists());
    // Once per stall, however long it lasts.
    std::thread::sleep(Duration::from_millis(1500));
    let text_of = std::fs::read_to_string(&fired).expect("stalled.jsonl");
    let events: Vec<serde_json::Value> = text_of
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("event JSON"))
        .collect();
    assert_eq!(events.len(), 1, "{text_of}");
    assert_eq!(state_of(&state, &run, "first"), ["succeeded"]);
    let o = twinflow(&state, &["release", &run, "second"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let _ = d.kill();
    let _ = d.wait();
}
