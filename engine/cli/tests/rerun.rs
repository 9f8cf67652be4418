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
    let block = dir.path().join("block");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: rerun\nsteps:\n  make:\n    run: while [ -e {b} ]; do sleep 0.1; done; n=$(( $(cat {c} 2>/dev/null || echo 0) + 1 )); \
             echo $n > {c}; echo $n > out.txt\n    outputs: {{ out: out.txt }}\n  use:\n    \
             needs: {{ x: make.out }}\n    run: cat ${{{{ inputs.x }}}} >> {l}\n  gate:\n    run: sleep 1\n  \
             tail:\n    after: [gate]\n    run: 'true'\n",
            c = counter.display(),
            l = log.display(),
            b = block.display()
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
    // `make` is kept from ending while the rerun is looked at.
    std::fs::write(&block, "").expect("block make");
    let o = twinflow(&state, &["rerun", &run, "make", "--downstream"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "make");
    assert!(
        text(&o.stderr).starts_with("rerunning 1 task(s)"),
        "{}",
        text(&o.stderr)
    );
    // Its dependent went back to waiting: status says so (not its old
    // `succeeded`), counted and listed as waiting.
    wait_until("use to be recorded as waiting", LIMIT, || {
        state_of(&state, &run, "use") == ["waiting"]
    });
    let o = twinflow(&state, &["status", &run, "--state", "waiting", "--json"]);
    let page: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(page["tasks"][0]["name"], "use", "{page}");
    let o = twinflow(&state, &["status", &run, "--summary", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let use_step = summary["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == "use"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (use_step["waiting"].as_u64(), use_step["succeeded"].as_u64()),
        (Some(1), Some(0)),
        "{summary}"
    );
    std::fs::remove_file(&block).expect("unblock make");
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
