//! The Slurm executor refuses at submit what the language takes but it
//! does not run: a parallel pack of GPU tasks and GPUs in a coupling group, through the
//! `twinflow` binary and before any Slurm command runs (a Slurm command on
//! `PATH` records that it was called); it takes `user_max_jobs`, which it
//! enforces. Needs no cluster.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use std::process::Command;

/// `twinflow run FILE` with `PATH` starting with a directory whose Slurm
/// commands record each call in `calls` and fail; its exit code and stderr.
fn run_refused(dir: &Path, yaml: &str) -> (Option<i32>, String) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    for tool in ["sbatch", "squeue", "scontrol", "sacct", "scancel", "srun"] {
        let path = bin.join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho {tool} >> '{}'\nexit 1\n",
                dir.join("calls").display()
            ),
        )
        .expect("write tool");
        let mut perm = std::fs::metadata(&path).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&path, perm).expect("chmod");
    }
    let file = dir.join("w.yaml");
    std::fs::write(&file, yaml).expect("write workflow");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .arg("run")
        .arg(&file)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twinflow");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    assert!(
        !calls.contains("sbatch") && !calls.contains("srun"),
        "a job was submitted: {calls}\n{err}"
    );
    (o.status.code(), err)
}

#[test]
fn the_slurm_executor_refuses_a_gpu_parallel_pack_and_gpus_in_a_group_at_submit() {
    let cases = [
        (
            "executors: { hpc: { kind: slurm, partition: debug } }
steps:
  ensemble:
    for_each: { i: [1, 2, 3] }
    pack: { tasks: 3, parallel: 3 }
    resources: { gpus: 1 }
    run: echo ${{ i }}
",
            "step `ensemble` cannot run as written: executor `hpc` (kind slurm) does not run \
             parallel packs (`pack: {tasks: 3, parallel: 3}`) of tasks that ask for GPUs yet",
        ),
        (
            "executors: { hpc: { kind: slurm, partition: debug } }
steps:
  forest: { group: coupled, resources: { gpus: 1 }, run: echo forest }
  beetle: { group: coupled, run: echo beetle }
",
            "step `forest` cannot run as written: executor `hpc` (kind slurm) does not give \
             gpus to a coupling group's members yet (`group: coupled`, `gpus: 1`)",
        ),
    ];
    for (body, expected) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let (code, err) = run_refused(dir.path(), &format!("version: 1\n{body}"));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
}

#[test]
fn plan_shows_each_tasks_ranks_launcher_pack_and_group() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("w.yaml");
    std::fs::write(
        &file,
        "version: 1
executors: { hpc: { kind: slurm } }
steps:
  forest: { group: coupled, resources: { cpus: 2, tasks: 8, nodes: 2, exclusive: true }, launcher: srun, run: f }
  beetle: { group: coupled, run: b }
  ensemble: { pack: { tasks: 21, parallel: 7 }, run: e }
",
    )
    .expect("write workflow");
    let o = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .arg("plan")
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twinflow");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for line in [
        "  executor: hpc (slurm)  cpus=2 tasks=8 nodes=2 exclusive\n  shape: launcher=srun group=coupled\n",
        "  shape: group=coupled\n",
        "  shape: pack=21 parallel=7\n",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
}

/// `user_max_jobs` on Slurm is taken, not refused: the executor counts the
/// user's jobs first (`squeue --me`, which answers with none here), then
/// submits; the fake `sbatch` fails, so the run fails for that reason.
#[test]
fn the_slurm_executor_takes_user_max_jobs_and_polls_before_it_submits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let calls = dir.path().join("calls");
    for (tool, then) in [
        ("squeue", "exit 0"),
        ("scontrol", "exit 1"),
        ("sacct", "exit 1"),
        ("scancel", "exit 0"),
        (
            "sbatch",
            "echo 'sbatch: error: no submissions here' >&2; exit 1",
        ),
    ] {
        let path = bin.join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\n{then}\n",
                calls.display()
            ),
        )
        .expect("write tool");
        let mut perm = std::fs::metadata(&path).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&path, perm).expect("chmod");
    }
    let file = dir.path().join("w.yaml");
    std::fs::write(
        &file,
        "version: 1
executors: { hpc: { kind: slurm, partition: debug, user_max_jobs: 220 } }
steps:
  model: { run: echo model }
",
    )
    .expect("write workflow");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .arg("run")
        .arg(&file)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twinflow");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(!err.contains("does not enforce"), "{err}");
    assert_ne!(o.status.code(), Some(2), "{err}");
    let squeue = calls.find("squeue -h -r -t all --me");
    let sbatch = calls.find("sbatch");
    assert!(
        matches!((squeue, sbatch), (Some(q), Some(s)) if q < s),
        "the user's jobs were counted before the submit:\n{calls}\n{err}"
    );
}
