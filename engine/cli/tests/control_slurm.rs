//! Operator actions on a run the daemon carries on the real local Slurm
//! (`deploy/dev/slurm-up`; `scripts/test` starts it and sets
//! `TWINFLOW_TEST_SLURM=1`): `hold` keeps a task from being submitted
//! while the rest runs, `release` lets it go; `kill` cancels a running
//! job in Slurm (the task fails for good, its dependent is skipped);
//! `rerun --downstream` runs a finished task again as a new Slurm job,
//! with its dependent; `watch RUN SEL…` follows a task there; a rerun of
//! the ended run takes it up again without running the killed task.

mod common;
mod control_support;

use common::{daemon, tasks, text, twinflow, wait_until};
use control_support::state_of;
use std::process::Command;
use std::time::Duration;

/// How long the test waits for Slurm: thrice what the local tests wait.
const LIMIT: Duration = control_support::LIMIT.saturating_mul(3);

/// The Slurm state (`RUNNING`, ...) of `job`, empty once Slurm forgot it.
fn squeue_state(job: &str) -> String {
    Command::new("squeue")
        .args(["-h", "-j", job, "-o", "%T"])
        .output()
        .map(|o| text(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The lines of `<dir>/<name>.runs` (one per start of the task).
fn runs(dir: &std::path::Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{name}.runs")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn hold_release_kill_and_rerun_act_on_real_slurm_jobs() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let here = dir.path().display().to_string();
    let file = dir.path().join("ops.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: ops\nexecutors: {{ hpc: {{ kind: slurm, partition: debug }} }}\n\
             steps:\n  \
               long:\n    executor: hpc\n    resources: {{ cpus: 1, time: 5m }}\n    \
                 run: echo $SLURM_JOB_ID >> {here}/long.runs; sleep 300\n  \
               after_long:\n    executor: hpc\n    after: [long]\n    run: 'true'\n  \
               quick:\n    executor: hpc\n    resources: {{ cpus: 1, time: 5m }}\n    \
                 run: echo $SLURM_JOB_ID >> {here}/quick.runs; echo done > ${{{{ outputs.o }}}}\n    \
                 outputs: {{ o: o.txt }}\n  \
               gated:\n    executor: hpc\n    resources: {{ cpus: 1, time: 5m }}\n    \
                 needs: {{ q: quick.o }}\n    \
                 run: echo $SLURM_JOB_ID >> {here}/gated.runs; cat ${{{{ inputs.q }}}}\n"
        ),
    )
    .expect("write workflow");
    let mut d = daemon(&state, Some(&dir.path().join("daemon.log")));
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let o = twinflow(&state, &["hold", &run, "gated"]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    // `long` runs in Slurm (it keeps the run live); `quick` ran; the held
    // `gated` was never submitted.
    let mut job = String::new();
    wait_until("long's job to run in Slurm", LIMIT, || {
        let Some((_, _, handle)) = tasks(&state, &run)
            .into_iter()
            .find(|(n, s, _)| n == "long" && s == "running")
        else {
            return false;
        };
        job = handle.split(':').nth(1).unwrap_or_default().to_owned();
        !job.is_empty() && squeue_state(&job) == "RUNNING"
    });
    wait_until("quick to succeed", LIMIT, || {
        state_of(&state, &run, "quick") == ["succeeded"]
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        state_of(&state, &run, "gated").is_empty(),
        "a held task started"
    );
    assert_eq!(runs(dir.path(), "gated"), 0);

    // A rerun of `quick` is a new Slurm job; the held `gated` waits for it.
    let o = twinflow(&state, &["rerun", &run, "quick"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["watch", &run, "quick"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let quick_jobs = std::fs::read_to_string(dir.path().join("quick.runs")).expect("quick.runs");
    let quick_jobs: Vec<&str> = quick_jobs.lines().collect();
    assert_eq!(quick_jobs.len(), 2, "{quick_jobs:?}");
    assert_ne!(quick_jobs[0], quick_jobs[1], "the rerun was another job");
    assert!(
        state_of(&state, &run, "gated").is_empty(),
        "a held task started"
    );

    // Released, it runs; `watch` follows it in Slurm to its end. A rerun
    // runs it again.
    let o = twinflow(&state, &["release", &run, "gated"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for time in 1..=2 {
        let o = twinflow(&state, &["watch", &run, "gated"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(
            text(&o.stdout).contains("gated | done"),
            "{}",
            text(&o.stdout)
        );
        assert_eq!(runs(dir.path(), "gated"), time);
        if time == 1 {
            let o = twinflow(&state, &["rerun", &run, "gated"]);
            assert!(o.status.success(), "{}", text(&o.stderr));
        }
    }

    // `kill` cancels long's job in Slurm: it fails for good, its dependent
    // is skipped, and the run ends failed.
    let o = twinflow(&state, &["kill", &run, "long"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    wait_until(
        "long to fail and its dependent to be skipped",
        LIMIT,
        || {
            state_of(&state, &run, "long") == ["failed"]
                && state_of(&state, &run, "after_long") == ["skipped"]
        },
    );
    wait_until("Slurm to end long's job", LIMIT, || {
        !matches!(
            squeue_state(&job).as_str(),
            "RUNNING" | "PENDING" | "COMPLETING"
        )
    });
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(runs(dir.path(), "long"), 1);

    // The run ended; a rerun takes it up again: `gated` is a third Slurm
    // job, while the killed `long` stays failed (a kill is for good) and
    // the run ends failed again.
    let o = twinflow(&state, &["rerun", &run, "gated"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("the run had ended and is live again"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(runs(dir.path(), "gated"), 3);
    assert_eq!(runs(dir.path(), "long"), 1, "a killed task ran again");
    assert_eq!(state_of(&state, &run, "after_long"), ["skipped"]);
    let _ = d.kill();
    let _ = d.wait();
}
