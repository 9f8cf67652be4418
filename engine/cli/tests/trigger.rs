//! `twinflow trigger` and `twinflow set` on runs a daemon carries, with the
//! local executor: a task triggered while its dependency is held runs with
//! its input missing, and the command warns; a task set succeeded after
//! its output was written by hand passes it on to its dependent, also
//! across a `kill -9` of the daemon right after the action; set failed
//! skips the dependents; set succeeded with an output missing is refused
//! (exit 2).
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

mod common;
mod control_support;

use common::{daemon, text, twinflow, wait_until};
use control_support::{LIMIT, state_of};
use std::path::Path;

/// `first` takes a second (so that `make` can be held before it starts);
/// `make` runs `make_run` and declares `out.txt`; `use` appends what it
/// was given (or `missing`) to `log`; `tail` keeps the run live while held.
fn workflow(dir: &Path, make_run: &str) -> std::path::PathBuf {
    let log = dir.join("log");
    let file = dir.join("trigger.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: trig\nsteps:\n  first:\n    run: sleep 1\n  make:\n    after: [first]\n    \
             run: {make_run}\n    outputs: {{ out: out.txt }}\n  use:\n    needs: {{ x: make.out }}\n    \
             run: if [ -e '${{{{ inputs.x }}}}' ]; then cat '${{{{ inputs.x }}}}' >> {log}; else echo missing >> {log}; fi\n  \
             tail:\n    after: [first]\n    run: 'true'\n",
            log = log.display()
        ),
    )
    .expect("write workflow");
    file
}

fn submit(state: &Path, file: &Path) -> String {
    let o = twinflow(state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout).trim().to_owned()
}

/// Runs `args` until it succeeds (the daemon just started takes its runs
/// up first).
fn until_ok(state: &Path, args: &[&str]) {
    wait_until("the daemon to take the action", LIMIT, || {
        twinflow(state, args).status.success()
    });
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
}

#[test]
fn a_task_triggered_while_its_dependency_is_held_runs_with_its_input_missing_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(dir.path(), "echo made > out.txt");
    let mut d = daemon(&state, None);
    let run = submit(&state, &file);
    let o = twinflow(&state, &["hold", &run, "make"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["trigger", &run, "use"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let said = text(&o.stderr);
    assert!(
        said.contains("warning: use starts although make did not succeed"),
        "{said}"
    );
    assert!(said.contains("triggered 1 task(s)"), "{said}");
    wait_until("the triggered task to succeed", LIMIT, || {
        state_of(&state, &run, "use") == ["succeeded"]
    });
    assert_eq!(log(dir.path()), "missing\n");
    // Started: it is not triggered again (exit 2).
    let o = twinflow(&state, &["trigger", &run, "use"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = twinflow(&state, &["status", &run]);
    let shown = text(&o.stdout);
    assert!(shown.contains(": trigger use (1 task(s))"), "{shown}");
    let o = twinflow(&state, &["release", &run, "make"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(log(dir.path()), "missing\n", "not run again");
    let _ = d.kill();
    let _ = d.wait();
}

#[test]
fn set_succeeded_after_repairing_the_output_by_hand_holds_across_a_daemon_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(dir.path(), "exit 3");
    let mut first = daemon(&state, None);
    let run = submit(&state, &file);
    let o = twinflow(&state, &["hold", &run, "tail", "use"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    wait_until("make to fail", LIMIT, || {
        state_of(&state, &run, "make") == ["failed"]
    });
    // The output is not there: refused, naming where it is expected.
    let o = twinflow(&state, &["set", &run, "make", "--outcome", "succeeded"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let out = state.join(format!("runs/{run}/work/make/0/out.txt"));
    assert!(
        text(&o.stderr).contains(&out.display().to_string()),
        "{}",
        text(&o.stderr)
    );
    // A selector naming nothing: exit 2 too.
    let o = twinflow(&state, &["set", &run, "nope", "--outcome", "failed"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    std::fs::write(&out, "by hand\n").expect("repair the output");
    let o = twinflow(&state, &["set", &run, "make", "--outcome", "succeeded"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("set succeeded 1 task(s)"),
        "{}",
        text(&o.stderr)
    );
    // The daemon dies right after the action; the next one takes the run
    // up with `make` succeeded and its output sealed.
    first.kill().expect("SIGKILL the daemon");
    let _ = first.wait();
    let mut second = daemon(&state, None);
    until_ok(&state, &["release", &run, "tail", "use"]);
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(state_of(&state, &run, "make"), ["succeeded"]);
    assert_eq!(
        log(dir.path()),
        "by hand\n",
        "use consumed the repaired output"
    );
    let o = twinflow(&state, &["status", &run]);
    let shown = text(&o.stdout);
    assert!(
        shown.contains(": set-succeeded make (1 task(s))"),
        "{shown}"
    );
    let _ = second.kill();
    let _ = second.wait();
}

#[test]
fn set_failed_skips_the_dependents_and_holds_across_a_daemon_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(dir.path(), "echo made > out.txt");
    let mut first = daemon(&state, None);
    let run = submit(&state, &file);
    let o = twinflow(&state, &["hold", &run, "make", "tail"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["set", &run, "make", "--outcome", "failed"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    first.kill().expect("SIGKILL the daemon");
    let _ = first.wait();
    let mut second = daemon(&state, None);
    until_ok(&state, &["release", &run, "tail"]);
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(state_of(&state, &run, "make"), ["failed"], "not run again");
    assert_eq!(state_of(&state, &run, "use"), ["skipped"]);
    assert_eq!(log(dir.path()), "");
    let _ = second.kill();
    let _ = second.wait();
}
