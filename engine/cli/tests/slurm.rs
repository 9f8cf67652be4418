//! Packed jobs on the local Slurm, through the `twinflow` binary (its
//! `worker` command runs each pack). Needs `TWINFLOW_TEST_SLURM=1`, which
//! `scripts/test` sets after starting `deploy/dev/slurm-up`.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

#[expect(dead_code, reason = "these tests need no daemon")]
mod common;

use common::twinflow;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn status_json(state: &Path) -> serde_json::Value {
    let status = twinflow(state, &["status", "--json", "--limit", "10000"]);
    serde_json::from_slice(&status.stdout).unwrap_or(serde_json::Value::Null)
}

const PACKS: &str = r#"
version: 1
name: packs
executors: { hpc: { kind: slurm, partition: debug, max_jobs: 2 } }
steps:
  packed:
    executor: hpc
    for_each: { i: [1, 2, 3, 4, 5, 6, 7] }
    pack: 3
    resources: { cpus: 1, time: 2m }
    run: echo "$SLURM_JOB_ID" > ${{ outputs.job }}
    outputs: { job: job.txt }
  quick:
    executor: hpc
    for_each: { i: [1, 2, 3, 4] }
    resources: { time: 30s }
    run: echo "$SLURM_JOB_ID" > ${{ outputs.job }}
    outputs: { job: job.txt }
"#;

#[test]
fn pack_n_and_short_tasks_share_allocations_within_max_jobs() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let file = state.path().join("packs.yaml");
    std::fs::write(&file, PACKS).expect("write workflow");
    let o = twinflow(state.path(), &["run", file.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let status = status_json(state.path());
    let run_dir = status["run"]["run_dir"]
        .as_str()
        .expect("run_dir")
        .to_owned();
    let jobs_of = |step: &str, n: usize| -> BTreeSet<String> {
        (0..n)
            .map(|i| {
                std::fs::read_to_string(format!("{run_dir}/work/{step}/{i}/job.txt"))
                    .expect("job.txt")
                    .trim()
                    .to_owned()
            })
            .collect()
    };
    // pack: 3 over 7 tasks: two packs and one task on its own.
    assert_eq!(jobs_of("packed", 7).len(), 3, "{:?}", jobs_of("packed", 7));
    // 30 s tasks are packed without being asked: 4 tasks, one job.
    assert_eq!(jobs_of("quick", 4).len(), 1, "{:?}", jobs_of("quick", 4));
    // Every task's stored handle names its real job, also for those that
    // waited in twinflow's queue under max_jobs: 2.
    let tasks = status["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 11);
    for t in tasks {
        let handle = t["handle"].as_str().unwrap_or_default();
        assert!(
            handle.starts_with("slurm-pack:") || handle.starts_with("slurm:"),
            "{t}"
        );
    }
}

/// `user@host:port` of the test sshd, when `TWINFLOW_TEST_SSH=1` too.
fn sshd_target() -> Option<String> {
    if std::env::var("TWINFLOW_TEST_SSH").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SSH is not 1 (scripts/test starts deploy/dev/sshd-up)");
        return None;
    }
    let var = |k: &str| std::env::var(k).expect("the sshd env (TWINFLOW_SSHD_*)");
    Some(format!(
        "{}@{}:{}",
        var("TWINFLOW_SSHD_USER"),
        var("TWINFLOW_SSHD_HOST"),
        var("TWINFLOW_SSHD_PORT")
    ))
}

/// Each task's (name, state, handle) in the newest run.
fn tasks(state: &Path) -> Vec<(String, String, String)> {
    common::tasks(state, "latest")
}

#[test]
fn a_staged_run_killed_with_sigkill_takes_its_slurm_jobs_back_on_resume() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let Some(target) = sshd_target() else {
        return;
    };
    let state = tempfile::tempdir().expect("temp dir");
    let scratch = state.path().join("cluster-scratch");
    let file = state.path().join("staged.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
version: 1
name: staged-resume
executors: {{ hpc: {{ kind: slurm, partition: debug, ssh: "{target}", workdir: "{}" }} }}
steps:
  slow:
    executor: hpc
    for_each: {{ i: [1, 2] }}
    resources: {{ time: 2m }}
    run: sleep 4; echo "$SLURM_ARRAY_JOB_ID" > ${{{{ outputs.job }}}}
    outputs: {{ job: job.txt }}
"#,
            scratch.display()
        ),
    )
    .expect("write workflow");
    let mut child = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["run", file.to_str().expect("utf-8")])
        .env("TWINFLOW_STATE_DIR", state.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn twinflow");
    let start = std::time::Instant::now();
    let before = loop {
        let t = tasks(state.path());
        if t.len() == 2
            && t.iter()
                .all(|(_, s, h)| s == "running" && h.starts_with("slurm:"))
        {
            break t;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the jobs never ran: {t:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    child.kill().expect("SIGKILL twinflow");
    let _ = child.wait();

    let o = twinflow(
        state.path(),
        &["run", "--resume", file.to_str().expect("utf-8")],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let after = tasks(state.path());
    for ((name, _, handle), (_, state_after, handle_after)) in before.iter().zip(&after) {
        assert_eq!(state_after, "succeeded", "{name}");
        assert_eq!(handle, handle_after, "{name} was submitted again");
    }
    // The jobs' outputs came back from the cluster's directory.
    let status = status_json(state.path());
    let run_dir = status["run"]["run_dir"]
        .as_str()
        .expect("run_dir")
        .to_owned();
    for (i, (_, _, handle)) in before.iter().enumerate() {
        let job = std::fs::read_to_string(format!("{run_dir}/work/slow/{i}/job.txt"))
            .expect("the output came back");
        let array = handle.split(':').nth(1).and_then(|j| j.split('_').next());
        assert_eq!(Some(job.trim()), array, "ran as the job taken back");
    }
}

/// Runs `file` (`--no-cache`), whose step `packed` has `tasks` tasks that
/// each write their Slurm job id to `job.txt`; the run's directory, its id
/// and the distinct job ids the outputs name.
fn run_packed(state: &Path, file: &Path, tasks: usize) -> (String, String, BTreeSet<String>) {
    let o = twinflow(state, &["run", "--no-cache", file.to_str().expect("utf-8")]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let status = status_json(state);
    let run_dir = status["run"]["run_dir"]
        .as_str()
        .expect("run_dir")
        .to_owned();
    let run_id = status["run"]["id"].as_str().expect("run id").to_owned();
    let jobs = (0..tasks)
        .map(|i| {
            std::fs::read_to_string(format!("{run_dir}/work/packed/{i}/job.txt"))
                .expect("the output came back")
                .trim()
                .to_owned()
        })
        .collect();
    (run_dir, run_id, jobs)
}

/// A packed step over SSH with staging: this `twinflow` goes up to the
/// cluster's workdir once (named by its SHA-256), runs the packs there, and
/// the tasks' outputs come back; a second run finds it there.
#[test]
fn over_ssh_packs_run_the_uploaded_twinflow_and_their_outputs_come_back() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let Some(target) = sshd_target() else {
        return;
    };
    let state = tempfile::tempdir().expect("temp dir");
    let scratch = state.path().join("cluster-scratch");
    let file = state.path().join("packed-ssh.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
version: 1
name: packed-ssh
executors: {{ hpc: {{ kind: slurm, partition: debug, ssh: "{target}", workdir: "{}" }} }}
steps:
  packed:
    executor: hpc
    for_each: {{ i: [1, 2, 3, 4, 5, 6] }}
    pack: 3
    resources: {{ cpus: 1, time: 2m }}
    run: |
      echo "$SLURM_JOB_ID" > ${{{{ outputs.job }}}}
      pwd > where.txt
      echo "task ${{{{ i }}}} on stderr" >&2
    outputs: {{ job: job.txt }}
"#,
            scratch.display()
        ),
    )
    .expect("write workflow");
    // `--no-cache`: the second run must run its tasks again, not take
    // them from the first run's results.
    let run = || {
        // Six tasks, two packed jobs; every output came back from the
        // cluster's directory, where the tasks ran.
        let (run_dir, run_id, jobs) = run_packed(state.path(), &file, 6);
        assert_eq!(jobs.len(), 2, "{jobs:?}");
        let where_ = std::fs::read_to_string(format!("{run_dir}/work/packed/4/where.txt"))
            .expect("where.txt came back");
        assert_eq!(
            where_.trim(),
            scratch
                .join(&run_id)
                .join("work/packed/4")
                .display()
                .to_string()
        );
        let err = std::fs::read_to_string(format!("{run_dir}/logs/packed/4.0.err"))
            .expect("the log came back");
        assert_eq!(err, "task 5 on stderr\n");
        for (name, state, handle) in tasks(state.path()) {
            assert_eq!(state, "succeeded", "{name}");
            assert!(handle.starts_with("slurm-pack:"), "{name}: {handle}");
        }
        run_id
    };
    let first = run();
    // The binary that ran the packs: this one, under its digest.
    let bin = scratch.join(".twinflow/bin");
    let uploaded: Vec<std::path::PathBuf> = std::fs::read_dir(&bin)
        .expect("the binary directory")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(uploaded.len(), 1, "{uploaded:?}");
    let name = uploaded[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_owned();
    let digest = name.strip_prefix("twinflow-").expect("twinflow-<sha256>");
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}"
    );
    let ours = std::fs::read(env!("CARGO_BIN_EXE_twinflow")).expect("read twinflow");
    assert!(
        std::fs::read(&uploaded[0]).expect("read the upload") == ours,
        "the uploaded binary is this twinflow"
    );
    let pack_script = std::fs::read_dir(scratch.join(&first).join("logs/packed"))
        .expect("logs there")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".pack.sbatch"))
        .expect("a pack script");
    let text = std::fs::read_to_string(&pack_script).expect("read the pack script");
    assert!(
        text.contains(&format!("exec {} worker ", uploaded[0].display())),
        "{text}"
    );
    // A second run uses the copy that is there: not uploaded again.
    use std::os::unix::fs::MetadataExt as _;
    let before = std::fs::metadata(&uploaded[0]).expect("stat");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = run();
    assert_ne!(first, second);
    let after = std::fs::metadata(&uploaded[0]).expect("stat");
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    assert_eq!(std::fs::read_dir(&bin).expect("bin").count(), 1);
}

/// The executor's `twinflow:` over SSH: a path that runs there is what packs
/// run (nothing is uploaded); one that does not fails the packed tasks with
/// a message naming it.
#[test]
fn over_ssh_a_given_twinflow_runs_the_packs_and_a_wrong_one_is_a_clear_error() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let Some(target) = sshd_target() else {
        return;
    };
    let state = tempfile::tempdir().expect("temp dir");
    let scratch = state.path().join("cluster-scratch");
    let workflow = |binary: &str| {
        let file = state.path().join("given.yaml");
        std::fs::write(
            &file,
            format!(
                r#"
version: 1
name: given
executors: {{ hpc: {{ kind: slurm, partition: debug, ssh: "{target}", workdir: "{}", twinflow: "{binary}" }} }}
steps:
  packed:
    executor: hpc
    for_each: {{ i: [1, 2, 3, 4] }}
    pack: 2
    resources: {{ cpus: 1, time: 2m }}
    run: echo "$SLURM_JOB_ID" > ${{{{ outputs.job }}}}
    outputs: {{ job: job.txt }}
"#,
                scratch.display()
            ),
        )
        .expect("write workflow");
        file
    };
    let wrong = workflow("/nonexistent/twinflow");
    let o = twinflow(
        state.path(),
        &["run", "--no-cache", wrong.to_str().expect("utf-8")],
    );
    assert_ne!(o.status.code(), Some(0));
    let status = status_json(state.path());
    let failed = status["tasks"].as_array().expect("tasks");
    assert_eq!(failed.len(), 4);
    for t in failed {
        assert_eq!(t["state"], "failed", "{t}");
        let reason = t["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("`twinflow: /nonexistent/twinflow` does not run on the cluster")
                && reason.contains("executor `hpc`"),
            "{reason}"
        );
    }

    let ours = env!("CARGO_BIN_EXE_twinflow");
    let given = workflow(ours);
    let (_, run_id, jobs) = run_packed(state.path(), &given, 4);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let script = std::fs::read_to_string(scratch.join(&run_id).join("logs/packed/0.0.pack.sbatch"))
        .expect("the first pack's script");
    assert!(script.contains(&format!("exec {ours} worker ")), "{script}");
    assert!(
        !scratch.join(".twinflow").exists(),
        "nothing uploaded when the executor names a binary"
    );
}
