//! Naming runs and `status` at scale, from the command line: a run is named
//! the same way (id, unique prefix, `latest`) by `status`, `watch` and
//! `cancel`, with a daemon and without; and `status` answers a summary and
//! filtered pages of a run's tasks, the same through the daemon.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail with a message"
)]

mod common;

use common::{daemon, tasks, text, twinflow, wait_until};
use std::path::Path;
use std::time::Duration;

/// 120 tasks in one step, of which 5 fail, and 3 in another.
const WIDE: &str = r#"
version: 1
name: wide
steps:
  sim:
    for_each: { i: [LIST] }
    run: test ${{ i }} -le 115
  post:
    for_each: { j: [1, 2, 3] }
    run: "true"
"#;

fn write_wide(dir: &Path) -> String {
    let list: Vec<String> = (1..=120).map(|i| i.to_string()).collect();
    let path = dir.join("wide.yaml");
    std::fs::write(&path, WIDE.replace("LIST", &list.join(", "))).expect("write workflow");
    path.to_str().expect("utf-8").to_owned()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)))
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// The status commands, the same through the daemon and from the store.
fn check_status(state: &Path, run: &str) {
    // The summary: counts and the first failures, not 123 tasks.
    let o = twinflow(state, &["status", "latest", "--summary", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v = json(&o);
    assert_eq!(v["run"]["id"], run);
    assert_eq!(v["failed"], 5);
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(5));
    assert_eq!(v["steps"][0]["failed"], 5);
    assert!(v.get("tasks").is_none(), "{v}");

    // `--json` holds 100 tasks unless told, and says where to go on.
    assert_eq!(
        tasks(state, run).len(),
        123,
        "with --limit 10000: every task"
    );
    let v = json(&twinflow(state, &["status", run, "--json"]));
    assert_eq!(v["tasks"].as_array().map(Vec::len), Some(100));
    let next = v["next_after"].as_u64().expect("more follow");
    let after = next.to_string();
    let rest = json(&twinflow(
        state,
        &["status", run, "--json", "--after", &after],
    ));
    assert_eq!(rest["tasks"].as_array().map(Vec::len), Some(23));
    assert!(rest["next_after"].is_null(), "{rest}");

    // Filters: state (repeatable), step, name glob, limit.
    let v = json(&twinflow(
        state,
        &["status", run, "--json", "--state", "failed"],
    ));
    assert_eq!(
        names(&v),
        (116..=120)
            .map(|i| format!("sim[i={i}]"))
            .collect::<Vec<_>>()
    );
    let v = json(&twinflow(
        state,
        &[
            "status",
            run,
            "--json",
            "--state",
            "failed",
            "--state",
            "succeeded",
            "--step",
            "post",
        ],
    ));
    assert_eq!(names(&v), ["post[j=1]", "post[j=2]", "post[j=3]"]);
    let v = json(&twinflow(
        state,
        &[
            "status",
            run,
            "--json",
            "--name",
            "sim[i=11?]",
            "--limit",
            "3",
        ],
    ));
    assert_eq!(names(&v), ["sim[i=110]", "sim[i=111]", "sim[i=112]"]);
    assert!(v["next_after"].is_u64(), "{v}");

    // Text: every task asked for, and an unknown step or state is refused.
    let o = twinflow(state, &["status", run, "--step", "sim"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let listed = text(&o.stdout);
    let listed = listed.split("\ntasks:\n").nth(1).expect("a task list");
    assert_eq!(listed.lines().count(), 120, "{listed}");
    let o = twinflow(state, &["status", run, "--step", "nosuch"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("has no step `nosuch` (its steps: sim, post)"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(state, &["status", run, "--state", "sleepy"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn status_answers_a_summary_and_filtered_pages_with_and_without_a_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = write_wide(dir.path());
    let o = twinflow(&state, &["run", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v = json(&twinflow(&state, &["runs", "--json"]));
    let run = v[0]["id"].as_str().expect("an id").to_owned();
    check_status(&state, &run);
    let mut d = daemon(&state, None);
    check_status(&state, &run);
    let _ = twinflow(&state, &["daemon", "stop"]);
    let _ = d.wait();
}

#[test]
fn watch_and_cancel_name_runs_as_status_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = write_wide(dir.path());
    // Without a daemon: a name that names no run is said to be wrong (2).
    for command in [["watch", "nosuch"], ["cancel", "nosuch"]] {
        let o = twinflow(&state, &command);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("no run `nosuch`"),
            "{}",
            text(&o.stderr)
        );
    }
    let o = twinflow(&state, &["run", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let finished = json(&twinflow(&state, &["runs", "--json"]))[0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    // An existing run without a daemon: the daemon is what is missing (3).
    let o = twinflow(&state, &["watch", "latest"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("run {finished} is failed")),
        "{}",
        text(&o.stderr)
    );

    let mut d = daemon(&state, None);
    // `latest` names a run that ended before this daemon started: watching
    // it tells how it ended, with its exit code.
    let o = twinflow(&state, &["watch", "latest"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("run {finished} FAILED"))
            && text(&o.stderr).contains("5 failed"),
        "{}",
        text(&o.stderr)
    );
    for command in [["watch", "nosuch"], ["cancel", "nosuch"]] {
        let o = twinflow(&state, &command);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("no run `nosuch`"),
            "{}",
            text(&o.stderr)
        );
    }
    let o = twinflow(&state, &["cancel", "latest"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("is not running in this daemon (it is failed)"),
        "{}",
        text(&o.stderr)
    );

    // A live run, cancelled by a unique prefix, and watched as `latest`.
    let slow = dir.path().join("slow.yaml");
    std::fs::write(
        &slow,
        "version: 1\nname: slow\nsteps:\n  s:\n    run: sleep 60\n",
    )
    .expect("write workflow");
    let o = twinflow(&state, &["submit", slow.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let live = text(&o.stdout).trim().to_owned();
    wait_until("the task to run", Duration::from_secs(60), || {
        let v = json(&twinflow(
            &state,
            &["status", "latest", "--summary", "--json"],
        ));
        v["steps"][0]["running"] == 1 && v["live"] == true
    });
    let o = twinflow(&state, &["cancel", &live[..live.len() - 2]]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("cancelling {live}")),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(&state, &["watch", "latest"]);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("run {live} cancelled")),
        "{}",
        text(&o.stderr)
    );
    let _ = twinflow(&state, &["daemon", "stop"]);
    let _ = d.wait();
}

/// Naps of different lengths, for `status --order`.
const NAPS: &str = r#"
version: 1
name: naps
steps:
  nap:
    for_each: { t: ["0.4", "0", "0.9", "0.2"] }
    run: sleep ${{ t }}
"#;

/// `status --order longest`, a page at a time, the same through the
/// daemon and from the store.
fn check_order(state: &Path, run: &str) {
    let naps = |v: &serde_json::Value| -> Vec<String> {
        names(v)
            .into_iter()
            .map(|n| {
                n.trim_start_matches("nap[t=")
                    .trim_end_matches(']')
                    .to_owned()
            })
            .collect()
    };
    let v = json(&twinflow(
        state,
        &["status", run, "--json", "--order", "longest"],
    ));
    // Longest first, by the time `status` shows (from the hand-over to
    // the executor to the end: a nap may wait for a slot).
    let seconds: Vec<f64> = v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["seconds"].as_f64().expect("seconds"))
        .collect();
    assert_eq!(seconds.len(), 4, "{v}");
    assert!(seconds.windows(2).all(|w| w[0] >= w[1]), "{v}");
    assert_eq!(naps(&v)[0], "0.9", "{v}");
    assert!(v["next_after"].is_null(), "{v}");
    let all = naps(&v);
    let first = json(&twinflow(
        state,
        &[
            "status", run, "--json", "--order", "longest", "--limit", "2",
        ],
    ));
    assert_eq!(naps(&first), all[..2], "{first}");
    let cursor = first["next_after"].as_str().expect("a cursor").to_owned();
    assert!(cursor.starts_with("longest:"), "{cursor}");
    let rest = json(&twinflow(
        state,
        &[
            "status", run, "--json", "--order", "longest", "--after", &cursor,
        ],
    ));
    assert_eq!(naps(&rest), all[2..], "{rest}");
    // The text says how to go on, with the order.
    let o = twinflow(
        state,
        &["status", run, "--order", "longest", "--limit", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("(more follow: add --order longest --after longest:"),
        "{}",
        text(&o.stdout)
    );
    // A cursor of another order, or an unknown order, is refused.
    let o = twinflow(state, &["status", run, "--after", &cursor]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("is a position in order longest, not id: give --order longest"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(state, &["status", run, "--order", "shortest"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("unknown task order `shortest`: expected id, longest or latest"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn status_orders_tasks_longest_first_with_and_without_a_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("naps.yaml");
    std::fs::write(&file, NAPS).expect("write workflow");
    let o = twinflow(&state, &["run", file.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v = json(&twinflow(&state, &["runs", "--json"]));
    let run = v[0]["id"].as_str().expect("an id").to_owned();
    check_order(&state, &run);
    let mut d = daemon(&state, None);
    check_order(&state, &run);
    let _ = twinflow(&state, &["daemon", "stop"]);
    let _ = d.wait();
}
