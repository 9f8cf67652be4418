//! `twinflow trigger` and `twinflow set` on a run the daemon carries on the
//! real local Slurm (`deploy/dev/slurm-up`; needs `TWINFLOW_TEST_SLURM=1`,
//! which `scripts/test` sets): a task triggered while its dependency is
//! held runs as a Slurm job with its input missing; the held dependency
//! set failed then fails the run for good, and the triggered task keeps
//! its result.
mod common;
mod control_support;

use common::{daemon, text, twinflow, wait_until};
use control_support::{LIMIT, state_of};

#[test]
fn trigger_and_set_on_slurm() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let log = dir.path().join("log");
    let file = dir.path().join("trig.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: trig-slurm\nexecutors: {{ hpc: {{ kind: slurm, partition: debug }} }}\n\
             steps:\n  first:\n    executor: hpc\n    resources: {{ time: 1m }}\n    run: sleep 2\n  \
             make:\n    executor: hpc\n    after: [first]\n    resources: {{ time: 1m }}\n    \
             run: echo made > out.txt\n    outputs: {{ out: out.txt }}\n  \
             use:\n    executor: hpc\n    needs: {{ x: make.out }}\n    resources: {{ time: 1m }}\n    \
             run: if [ -e '${{{{ inputs.x }}}}' ]; then cat '${{{{ inputs.x }}}}' >> {log}; else echo missing >> {log}; fi\n",
            log = log.display()
        ),
    )
    .expect("write workflow");
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let o = twinflow(&state, &["hold", &run, "make"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["trigger", &run, "use"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("warning: use starts although make did not succeed"),
        "{}",
        text(&o.stderr)
    );
    wait_until("the triggered task to run on Slurm", LIMIT, || {
        state_of(&state, &run, "use") == ["succeeded"]
    });
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "missing\n");
    wait_until("first to end", LIMIT, || {
        state_of(&state, &run, "first") == ["succeeded"]
    });
    // The held `make` is set failed: the triggered `use` keeps its result.
    let o = twinflow(&state, &["set", &run, "make", "--outcome", "failed"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    wait_until("make to be failed", LIMIT, || {
        state_of(&state, &run, "make") == ["failed"]
    });
    assert_eq!(state_of(&state, &run, "use"), ["succeeded"]);
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let _ = d.kill();
    let _ = d.wait();
}
