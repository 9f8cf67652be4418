//! `kill -9` of the daemon while a coupling group runs on the real local
//! Slurm (`deploy/dev/slurm-up`; `scripts/test` starts it and sets
//! `TWINFLOW_TEST_SLURM=1`): the next daemon takes the group's jobs back,
//! the run succeeds, every group instance went to `sbatch` exactly once
//! (counted by an `sbatch` wrapper first on the daemon's `PATH`), every
//! member ran exactly once, and each member's output names its partner.

#![expect(clippy::expect_used, clippy::panic, reason = "test")]

#[expect(dead_code, reason = "this test starts its daemon with its own PATH")]
mod common;

use common::{tasks, text, twinflow, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the test waits for anything.
const LIMIT: Duration = Duration::from_secs(120);

/// The real `sbatch` on `PATH`.
fn real_sbatch() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("sbatch"))
        .find(|p| p.is_file())
        .expect("sbatch on PATH (deploy/dev/slurm-up installs it)")
}

/// A directory whose `sbatch` appends its arguments to `<dir>/sbatch.calls`
/// and runs the real one; while `<dir>/hold` exists it then appends the
/// job id to `<dir>/sbatch.held` and keeps it from the daemon for 30 s (a
/// daemon killed meanwhile never learns the id).
fn sbatch_wrapper(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let wrapper = bin.join("sbatch");
    let d = dir.display();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             echo \"$*\" >> '{d}/sbatch.calls'\n\
             out=$('{}' \"$@\") || exit $?\n\
             if [ -e '{d}/hold' ]; then echo \"$out\" >> '{d}/sbatch.held'; sleep 30; fi\n\
             printf '%s\\n' \"$out\"\n",
            real_sbatch().display()
        ),
    )
    .expect("write the sbatch wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the sbatch wrapper");
    bin
}

/// `twinflow daemon run` in the foreground with `bin` first on its `PATH`,
/// once it answers; its log goes to `log`.
fn daemon(state: &Path, bin: &Path, log: &Path) -> Child {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let child = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["daemon", "run", "--state-dir"])
        .arg(state)
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("daemon log"),
        ))
        .spawn()
        .expect("spawn the daemon");
    wait_until("the daemon to answer", LIMIT, || {
        twinflow(state, &["daemon", "status"]).status.success()
    });
    child
}

/// The Slurm state (`RUNNING`, ...) of `job`, empty once Slurm forgot it.
fn squeue_state(job: &str) -> String {
    Command::new("squeue")
        .args(["-h", "-j", job, "-o", "%T"])
        .output()
        .map(|o| text(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A group member that meets its partner in the group directory (both must
/// run at once), runs on for a while, and names its partner in its output;
/// every start is appended to `<here>/<me>-<i>.runs`.
fn member(here: &str, me: &str, other: &str) -> String {
    format!(
        r#"
  {me}:
    executor: hpc
    group: pair
    for_each: {{ i: [1, 2] }}
    resources: {{ cpus: 1, time: 5m }}
    run: |
      echo "$SLURM_JOB_ID" >> {here}/{me}-${{{{ i }}}}.runs
      echo "{me} ${{{{ i }}}}" > "$TWINFLOW_GROUP_DIR/{me}.ready"
      until [ -e "$TWINFLOW_GROUP_DIR/{other}.ready" ]; do sleep 0.2; done
      sleep 12
      echo "{me} ${{{{ i }}}} met $(cat "$TWINFLOW_GROUP_DIR/{other}.ready")" > ${{{{ outputs.o }}}}
    outputs: {{ o: o.txt }}
"#
    )
}

/// Runs two instances of a two-member group through a daemon, kills it
/// with SIGKILL (once both group jobs run, or with `held` once Slurm took a
/// group job whose id the daemon never got), starts another, and checks
/// that the run succeeds with one `sbatch` per instance, each member run
/// once in its instance's job, and the members' outputs.
fn kill_the_daemon_of_a_group(held: bool) {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let here = dir.path().display().to_string();
    let bin = sbatch_wrapper(dir.path());
    if held {
        std::fs::write(dir.path().join("hold"), "").expect("hold");
    }
    let log = dir.path().join("daemon.log");
    let file = dir.path().join("pair.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: daemon-group\nexecutors: {{ hpc: {{ kind: slurm, partition: debug }} }}\nsteps:{}{}",
            member(&here, "a", "b"),
            member(&here, "b", "a")
        ),
    )
    .expect("write workflow");

    let mut first = daemon(&state, &bin, &log);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let mut before = Vec::new();
    if held {
        let held = dir.path().join("sbatch.held");
        wait_until("Slurm to take a group job", LIMIT, || held.exists());
        before = tasks(&state, &run);
        assert!(
            before.iter().all(|(_, _, h)| !h.starts_with("slurm-pack:")),
            "the daemon got a job id: {before:?}"
        );
    } else {
        wait_until("both group jobs to run in Slurm", LIMIT, || {
            before = tasks(&state, &run);
            let running: Vec<&String> = before
                .iter()
                .filter(|(_, s, h)| s == "running" && h.starts_with("slurm-pack:"))
                .map(|(_, _, h)| h)
                .collect();
            running.len() == 4
                && running
                    .iter()
                    .all(|h| squeue_state(h.split(':').nth(1).unwrap_or_default()) == "RUNNING")
        });
    }
    first.kill().expect("SIGKILL the daemon");
    let _ = first.wait();
    if held {
        std::fs::remove_file(dir.path().join("hold")).expect("unhold");
    } else {
        // The jobs outlive the daemon.
        for (name, _, handle) in &before {
            let job = handle.split(':').nth(1).unwrap_or_default();
            assert_eq!(squeue_state(job), "RUNNING", "{name}'s job {job}");
        }
    }

    let mut second = daemon(&state, &bin, &log);
    let o = twinflow(&state, &["watch", &run]);
    let daemon_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\ndaemon log:\n{daemon_log}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stderr).contains(": 4 tasks, 4 ran"),
        "{}",
        text(&o.stderr)
    );
    let after = tasks(&state, &run);
    for (name, _, handle) in &before {
        let now = after.iter().find(|(n, _, _)| n == name).expect("the task");
        assert_eq!(now.1, "succeeded", "{name}");
        if !held {
            assert_eq!(&now.2, handle, "{name} was submitted again");
        }
    }
    // Exactly one sbatch per group instance, over both daemons.
    let calls =
        std::fs::read_to_string(dir.path().join("sbatch.calls")).expect("the sbatch wrapper ran");
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 2, "sbatch calls:\n{calls}");
    assert!(
        lines.iter().all(|l| l.contains("group.sbatch")) && lines[0] != lines[1],
        "sbatch calls:\n{calls}"
    );
    // Each member started once, in the job its handle names, which its
    // partner shared.
    let status = twinflow(&state, &["status", &run, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let run_dir = PathBuf::from(v["run"]["run_dir"].as_str().expect("run dir"));
    let mut jobs = Vec::new();
    for i in ["1", "2"] {
        let runs = |me: &str| {
            let path = dir.path().join(format!("{me}-{i}.runs"));
            let ran = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(ran.lines().count(), 1, "{me}[i={i}] started again: {ran}");
            let name = format!("{me}[i={i}]");
            let (_, _, handle) = after.iter().find(|(n, _, _)| *n == name).expect("the task");
            assert_eq!(
                handle.split(':').nth(1),
                Some(ran.trim()),
                "{name} ran in another job than its handle names"
            );
            ran
        };
        let (a, b) = (runs("a"), runs("b"));
        assert_eq!(a, b, "i={i}: the members ran in different jobs");
        jobs.push(a);
    }
    assert_ne!(jobs[0], jobs[1], "the two instances are two jobs");
    for (index, i) in ["1", "2"].iter().enumerate() {
        for (me, other) in [("a", "b"), ("b", "a")] {
            let path = run_dir.join(format!("work/{me}/{index}/o.txt"));
            let out = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                out.trim(),
                format!("{me} {i} met {other} {i}"),
                "{me}[i={i}]"
            );
        }
    }
    let _ = second.kill();
    let _ = second.wait();
}

#[test]
fn a_daemon_killed_while_a_group_runs_on_slurm_takes_it_back_and_submits_nothing_twice() {
    kill_the_daemon_of_a_group(false);
}

/// The daemon dies after `sbatch` took a group job but before it learnt the
/// id (its handle is still `slurm-queued:`): the next daemon finds the job
/// by its `twinflow:group:` comment and `.group.json` manifest.
#[test]
fn a_daemon_killed_before_it_learnt_a_group_job_id_finds_the_job_and_submits_nothing_twice() {
    kill_the_daemon_of_a_group(true);
}
