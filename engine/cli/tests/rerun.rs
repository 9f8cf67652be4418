//! `twinflow rerun` on runs a daemon carries, with the local executor: a
//! finished task runs again (not from the cache) with its dependents, and
//! they see its new output; a waiting task is refused (exit 2); a finished
//! run is taken up again and ends anew.

mod common;
mod control_support;

use common::{daemon, text, twinflow, wait_until};
use control_support::{LIMIT, state_of};

#[test]
fn a_rerun_runs_a_finished_task_and_its_dependents_again_on_a_live_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("rerun.yaml");
    let counter = dir.path().join("counter");
    let log = dir.path().join("log");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: rerun\nsteps:\n  make:\n    run: n=$(( $(cat {c} 2>/dev/null || echo 0) + 1 )); \
             echo $n > {c}; echo $n > out.txt\n    outputs: {{ out: out.txt }}\n  use:\n    \
             needs: {{ x: make.out }}\n    run: cat ${{{{ inputs.x }}}} >> {l}\n  gate:\n    run: sleep 1\n  \
             tail:\n    after: [gate]\n    run: 'true'\n",
            c = counter.display(),
            l = log.display()
        ),
    )
    .expect("write workflow");
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let o = twinflow(&state, &["hold", &run, "tail"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    wait_until("make and use to finish", LIMIT, || {
        state_of(&state, &run, "use") == ["succeeded"]
    });
    // A task that has not finished is not rerun.
    let o = twinflow(&state, &["rerun", &run, "tail"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("none is finished"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(&state, &["rerun", &run, "make", "--downstream"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "make");
    assert!(
        text(&o.stderr).starts_with("rerunning 1 task(s)"),
        "{}",
        text(&o.stderr)
    );
    wait_until("the rerun to reach use", LIMIT, || {
        std::fs::read_to_string(&log).unwrap_or_default() == "1\n2\n"
    });
    let o = twinflow(&state, &["release", &run, "tail"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(state_of(&state, &run, "make"), ["succeeded"]);
    let o = twinflow(&state, &["status", &run]);
    assert!(
        text(&o.stdout).contains("rerun-downstream make"),
        "{}",
        text(&o.stdout)
    );
    // The run is over: a rerun takes it up again, and it ends anew.
    let o = twinflow(&state, &["rerun", &run, "make"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("live again"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let _ = d.kill();
    let _ = d.wait();
}
