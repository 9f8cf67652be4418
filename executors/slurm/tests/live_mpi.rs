//! Tasks of several ranks through the Slurm executor on the real local
//! Slurm (`deploy/dev/slurm-up`, which also installs Debian's OpenMPI;
//! `scripts/test` starts it and sets `TWINFLOW_TEST_SLURM=1`): an MPI hello
//! of 4 ranks compiled with `mpicc` under `launcher: mpirun`, 3 ranks under
//! the default `srun` (each `SLURM_PROCID` once, a failing rank's status
//! is the task's), and 2 nodes on the one-node cluster refused by sbatch
//! with the task named in the attempt's error; cancelling ends every rank.
//! Without `TWINFLOW_TEST_SLURM=1` these tests say so and return.
#![expect(clippy::unwrap_used, clippy::panic, reason = "test")]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinflow_core::{AttemptKey, AttemptStatus, Job, Launcher, Resources, TaskId};

mod support;
use support::{Recorder, executor, slurm_available};

/// Task `task` of step `step` running `script` with `tasks` ranks.
fn job(dir: &Path, step: &str, task: u32, script: &str, tasks: u32) -> Job {
    let workdir = dir.join(format!("work-{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("{step}[{task}]"),
        script: script.to_owned(),
        env: Vec::new(),
        workdir,
        stdout: dir.join(format!("{task}.out")),
        stderr: dir.join(format!("{task}.err")),
        resources: Resources {
            cpus: 1,
            tasks,
            memory_bytes: Some(64 << 20),
            time_seconds: Some(120),
            ..Resources::default()
        },
        step: step.to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

/// The sorted lines of a file.
fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

const HELLO: &str = r#"#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int rank, size, sum = 0;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("hello from rank %d of %d, ranks add up to %d\n", rank, size, sum);
  MPI_Finalize();
  return 0;
}
"#;

/// 4 MPI ranks that talk to each other (an allreduce), started by Debian's
/// OpenMPI `mpirun` inside the job's allocation. As root, OpenMPI wants
/// `OMPI_ALLOW_RUN_AS_ROOT` and its confirmation: that is the site's
/// environment (here the task's), not something twinflow adds.
#[tokio::test]
async fn an_mpi_hello_of_four_ranks_runs_under_mpirun() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("hello.c");
    std::fs::write(&source, HELLO).unwrap();
    let binary = dir.path().join("hello");
    let built = Command::new("mpicc")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("mpicc (deploy/dev/slurm-up installs openmpi-bin and libopenmpi-dev)");
    assert!(
        built.status.success(),
        "mpicc: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let mut j = job(dir.path(), "hello", 1, "\"$HELLO\"", 4);
    j.launcher = Some(Launcher::Mpirun);
    j.env = vec![
        ("HELLO".to_owned(), binary.display().to_string()),
        ("OMPI_ALLOW_RUN_AS_ROOT".to_owned(), "1".to_owned()),
        ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM".to_owned(), "1".to_owned()),
    ];
    let recorder = Arc::new(Recorder::default());
    let exec = executor(Arc::clone(&recorder));
    assert!(exec.submit_batch(vec![j.clone()]).await[0].is_ok());
    let status = recorder.final_status(j.key).await;
    assert_eq!(
        status,
        AttemptStatus::Exited(0),
        "{}",
        std::fs::read_to_string(&j.stderr).unwrap_or_default()
    );
    let expected: Vec<String> = (0..4)
        .map(|r| format!("hello from rank {r} of 4, ranks add up to 6"))
        .collect();
    assert_eq!(sorted_lines(&j.stdout), expected);
    exec.shutdown().await;
}

/// 3 ranks under the default launcher (`srun`, no `--mpi`): the script runs
/// once per rank, each `SLURM_PROCID` once; a task one of whose ranks fails
/// ends with that rank's status.
#[tokio::test]
async fn three_ranks_under_srun_each_run_the_script_once() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ok = job(
        dir.path(),
        "ranks",
        1,
        "echo \"rank $SLURM_PROCID of $SLURM_NTASKS in $(basename \"$PWD\")\"",
        3,
    );
    let bad = job(
        dir.path(),
        "ranks",
        2,
        "if [ \"$SLURM_PROCID\" = 1 ]; then exit 3; fi\necho fine",
        3,
    );
    let recorder = Arc::new(Recorder::default());
    let exec = executor(Arc::clone(&recorder));
    let handles = exec.submit_batch(vec![ok.clone(), bad.clone()]).await;
    assert!(handles.iter().all(Result::is_ok));
    assert_eq!(
        recorder.final_status(ok.key).await,
        AttemptStatus::Exited(0)
    );
    assert_eq!(
        sorted_lines(&ok.stdout),
        (0..3)
            .map(|r| format!("rank {r} of 3 in work-1"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        recorder.final_status(bad.key).await,
        AttemptStatus::Exited(3)
    );
    assert_eq!(sorted_lines(&bad.stdout), ["fine", "fine"]);
    exec.shutdown().await;
}

/// Two nodes on the one-node test cluster: sbatch refuses the job, and the
/// attempt's error names the task, its shape and Slurm's reason.
#[tokio::test]
async fn two_nodes_on_a_one_node_cluster_fail_the_attempt_with_slurms_reason() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), "wide", 1, "hostname", 2);
    j.resources.nodes = Some(2);
    let recorder = Arc::new(Recorder::default());
    let exec = executor(Arc::clone(&recorder));
    assert!(exec.submit_batch(vec![j.clone()]).await[0].is_ok());
    let AttemptStatus::Error(message) = recorder.final_status(j.key).await else {
        panic!("not refused: {:?}", recorder.0.lock().unwrap());
    };
    assert!(
        message.contains("wide[1]")
            && message.contains("2 nodes, 2 ranks")
            && message.contains("executor `hpc`")
            && message.contains("Batch job submission failed"),
        "{message}"
    );
    exec.shutdown().await;
}

/// Cancelling a running task of several ranks ends every rank, under
/// `mpirun` and under `srun`: no rank outlives its job.
#[tokio::test]
async fn cancelling_a_task_of_several_ranks_ends_every_rank() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A marker only these ranks' command lines carry.
    let marker = format!("{}", 4000 + std::process::id() % 1000);
    let script = format!("echo started; exec sleep {marker}");
    let mut mpi = job(dir.path(), "long", 1, &script, 2);
    mpi.launcher = Some(Launcher::Mpirun);
    mpi.env = vec![
        ("OMPI_ALLOW_RUN_AS_ROOT".to_owned(), "1".to_owned()),
        ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM".to_owned(), "1".to_owned()),
    ];
    mpi.resources.time_seconds = Some(600);
    let mut srun = job(dir.path(), "long", 2, &script, 2);
    srun.resources.time_seconds = Some(600);
    let recorder = Arc::new(Recorder::default());
    let exec = executor(Arc::clone(&recorder));
    let handles: Vec<twinflow_core::Handle> = exec
        .submit_batch(vec![mpi.clone(), srun.clone()])
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let ranks = || {
        let out = Command::new("pgrep")
            .args(["-f", &format!("^sleep {marker}$")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let start = Instant::now();
    while ranks() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "4 ranks never ran: {:?}",
            recorder.0.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The runtime cancels with the handle Slurm gave (Submitted).
    let submitted = |key: AttemptKey| {
        recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .find_map(|u| match &u.status {
                AttemptStatus::Submitted(h) if u.key == key => Some(h.clone()),
                _ => None,
            })
    };
    for (j, queued) in [&mpi, &srun].into_iter().zip(&handles) {
        let handle = submitted(j.key).unwrap_or_else(|| queued.clone());
        exec.cancel(j.key, &handle).await.unwrap();
    }
    for j in [&mpi, &srun] {
        let status = recorder.final_status(j.key).await;
        assert!(
            !matches!(status, AttemptStatus::Exited(0)),
            "{}: {status:?}",
            j.name
        );
    }
    let start = Instant::now();
    while ranks() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "ranks outlived their cancelled jobs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    exec.shutdown().await;
}
