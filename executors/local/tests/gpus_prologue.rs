//! The local executor's GPU devices and prologue, through its real
//! supervisor process: each attempt gets its own devices (fake ids: no GPU
//! is needed to hand out numbers), never one a running attempt holds, also
//! for attempts held in the supervisor; more than the executor has is
//! refused at submit; the prologue runs on the host before the task in the
//! shell that then runs it, and a failing one fails the attempt with a
//! message in its stderr log. A container runtime missing here is refused
//! at resolution.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{AttemptStatus, Executor, GpuVendor, Job, Resources, Update};
use twinflow_executor_local::LocalExecutor;

mod support;
use support::{key, supervised};

fn executor() -> (LocalExecutor, mpsc::UnboundedReceiver<Update>) {
    supervised("gpubox", Duration::from_millis(300))
}

fn job(run_dir: &Path, task: u32, gpus: u32, script: &str) -> Job {
    let workdir = run_dir.join(format!("work{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    Job {
        key: key(task),
        name: format!("t{task}"),
        script: script.to_owned(),
        env: vec![
            ("TWINFLOW_RUN_ID".into(), "gpu-run".into()),
            ("TWINFLOW_RUN_DIR".into(), run_dir.display().to_string()),
        ],
        stdout: workdir.join("out"),
        stderr: workdir.join("err"),
        workdir,
        resources: Resources {
            gpus,
            ..Resources::default()
        },
        step: "s".to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

async fn finals(rx: &mut mpsc::UnboundedReceiver<Update>, n: usize) -> Vec<(u32, AttemptStatus)> {
    let mut out = Vec::new();
    while out.len() < n {
        let update = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        if update.status.is_final() {
            out.push((update.key.task.0, update.status));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

/// Nanoseconds since the epoch, as `date +%s%N` writes them.
const STAMP: &str = "date +%s%N";

#[tokio::test]
async fn each_attempt_gets_its_own_devices_never_shared_with_an_overlapping_one() {
    let (exec, mut rx) = executor();
    let exec = exec
        .with_slots(8)
        .with_gpus(vec![10, 11, 12], GpuVendor::Nvidia);
    let dir = tempfile::tempdir().unwrap();
    // Eight attempts, 1 or 2 GPUs each, on 3 devices: most wait in the
    // supervisor for devices, none for cores.
    let script = format!(
        "{STAMP} > start; echo \"$CUDA_VISIBLE_DEVICES\" > devices; sleep 0.3; {STAMP} > end"
    );
    let jobs: Vec<Job> = (1..=8)
        .map(|t| job(dir.path(), t, 1 + t % 2, &script))
        .collect();
    for r in exec.submit_batch(jobs).await {
        r.unwrap();
    }
    let ended = finals(&mut rx, 8).await;
    assert!(
        ended.iter().all(|(_, s)| *s == AttemptStatus::Exited(0)),
        "{ended:?}"
    );
    let read = |t: u32, f: &str| {
        std::fs::read_to_string(dir.path().join(format!("work{t}/{f}")))
            .unwrap()
            .trim()
            .to_owned()
    };
    let seen: Vec<(u32, Vec<u32>, u128, u128)> = (1..=8)
        .map(|t| {
            let devices = read(t, "devices")
                .split(',')
                .map(|d| d.parse().unwrap())
                .collect();
            (
                t,
                devices,
                read(t, "start").parse().unwrap(),
                read(t, "end").parse().unwrap(),
            )
        })
        .collect();
    for (t, devices, _, _) in &seen {
        assert_eq!(devices.len() as u32, 1 + t % 2, "task {t}: {devices:?}");
        assert!(
            devices.iter().all(|d| [10, 11, 12].contains(d)),
            "{devices:?}"
        );
    }
    let mut overlapped = 0;
    for a in &seen {
        for b in &seen {
            if a.0 < b.0 && a.2 < b.3 && b.2 < a.3 {
                overlapped += 1;
                let shared: Vec<&u32> = a.1.iter().filter(|d| b.1.contains(d)).collect();
                assert!(
                    shared.is_empty(),
                    "tasks {} and {} overlap on {shared:?}",
                    a.0,
                    b.0
                );
            }
        }
    }
    assert!(overlapped > 0, "some ran together: {seen:?}");
    exec.shutdown().await;
}

#[tokio::test]
async fn amd_devices_are_rocr_and_hip_and_too_many_gpus_are_refused_at_submit() {
    let (exec, mut rx) = executor();
    let exec = exec.with_gpus(vec![3, 5], GpuVendor::Amd);
    let dir = tempfile::tempdir().unwrap();
    let e = exec
        .submit(job(dir.path(), 1, 3, "true"))
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "t1 asks for 3 GPU(s), but executor `gpubox` has 2 (its `gpus: [3, 5]`); it is refused \
         rather than run without them"
    );
    exec.submit(job(
        dir.path(),
        2,
        2,
        "echo \"$ROCR_VISIBLE_DEVICES $HIP_VISIBLE_DEVICES ${CUDA_VISIBLE_DEVICES-unset}\" > seen",
    ))
    .await
    .unwrap();
    assert_eq!(finals(&mut rx, 1).await, [(2, AttemptStatus::Exited(0))]);
    let seen = std::fs::read_to_string(dir.path().join("work2/seen")).unwrap();
    assert_eq!(seen, "3,5 3,5 unset\n");
    // An executor without GPUs refuses a task that asks for one.
    let (bare, _rx) = executor();
    let e = bare
        .submit(job(dir.path(), 3, 1, "true"))
        .await
        .unwrap_err();
    assert!(e.message.contains("has 0"), "{e}");
    exec.shutdown().await;
}

#[tokio::test]
async fn the_prologue_runs_before_the_task_in_its_shell_and_a_failing_one_fails_it() {
    let (exec, mut rx) = executor();
    let exec = exec.with_prologue(Some(
        "export FROM_PROLOGUE=\"loaded $TWINFLOW_RUN_ID\"\necho prologue-ran >&2".to_owned(),
    ));
    let dir = tempfile::tempdir().unwrap();
    exec.submit(job(
        dir.path(),
        1,
        0,
        "echo \"$FROM_PROLOGUE\" > seen; exit 4",
    ))
    .await
    .unwrap();
    assert_eq!(finals(&mut rx, 1).await, [(1, AttemptStatus::Exited(4))]);
    let seen = std::fs::read_to_string(dir.path().join("work1/seen")).unwrap();
    assert_eq!(
        seen, "loaded gpu-run\n",
        "the task's exit status is its own"
    );
    exec.shutdown().await;

    let (exec, mut rx) = executor();
    let exec = exec.with_prologue(Some("false\necho not-reached >&2".to_owned()));
    exec.submit(job(dir.path(), 2, 0, "touch ran"))
        .await
        .unwrap();
    let ended = finals(&mut rx, 1).await;
    assert_eq!(ended, [(2, AttemptStatus::Exited(1))]);
    assert!(
        !dir.path().join("work2/ran").exists(),
        "the task did not run"
    );
    let err = std::fs::read_to_string(dir.path().join("work2/err")).unwrap();
    assert_eq!(
        err,
        "twinflow: the executor prologue failed (status 1); the task did not run\n"
    );
    exec.shutdown().await;
}

#[tokio::test]
async fn a_container_runtime_missing_here_is_refused_naming_image_runtime_and_host() {
    if std::process::Command::new("apptainer")
        .arg("--version")
        .output()
        .is_ok()
    {
        eprintln!("skipped: apptainer is installed here");
        return;
    }
    let (exec, _rx) = executor();
    let spec = twinflow_core::ContainerSpec {
        image: "docker://ghcr.io/example/model:1".to_owned(),
        runtime: Some(twinflow_core::ContainerRuntime::Apptainer),
        options: Vec::new(),
    };
    let e = exec
        .resolve_image(&spec, &["s".to_owned()])
        .await
        .unwrap_err();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        e.message,
        format!(
            "cannot run it: failed to resolve image `docker://ghcr.io/example/model:1` with \
             apptainer on host `{}`: apptainer is not installed (not on PATH)",
            host.trim()
        )
    );
    // Without a runtime on the step or the executor: refused, naming both.
    let spec = twinflow_core::ContainerSpec {
        runtime: None,
        ..spec
    };
    let e = exec
        .resolve_image(&spec, &["s".to_owned()])
        .await
        .unwrap_err();
    assert!(e.message.starts_with("names no container runtime"), "{e}");
}

#[tokio::test]
async fn a_resumed_executor_never_hands_out_the_devices_of_an_attempt_it_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let (exec, mut rx) = executor();
    let exec = exec.with_gpus(vec![10], GpuVendor::Nvidia);
    let first = format!("echo \"$CUDA_VISIBLE_DEVICES\" > devices; sleep 1.5; {STAMP} > end");
    exec.submit(job(dir.path(), 1, 1, &first)).await.unwrap();
    loop {
        let update = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("task 1 starts in time")
            .expect("the sink is open");
        if update.status == AttemptStatus::Running {
            break;
        }
    }
    // The executor vanishes (twinflow killed): its supervisor keeps task 1,
    // and device 10, to its end.
    drop(exec);
    drop(rx);

    let (exec, mut rx) = executor();
    let exec = exec.with_gpus(vec![10], GpuVendor::Nvidia);
    let run = twinflow_core::RunRef {
        id: "gpu-run",
        dir: dir.path(),
    };
    assert_eq!(exec.reattach(run, Vec::new()).await.unwrap(), [key(1)]);
    let second = format!("{STAMP} > start; echo \"$CUDA_VISIBLE_DEVICES\" > devices");
    exec.submit(job(dir.path(), 2, 1, &second)).await.unwrap();
    let ended = finals(&mut rx, 2).await;
    assert_eq!(
        ended,
        [(1, AttemptStatus::Exited(0)), (2, AttemptStatus::Exited(0))]
    );
    let read = |f: &str| {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("work1/devices"), "10");
    assert_eq!(read("work2/devices"), "10");
    let end1: u128 = read("work1/end").parse().unwrap();
    let start2: u128 = read("work2/start").parse().unwrap();
    assert!(
        start2 >= end1,
        "task 2 got device 10 while the adopted task 1 still held it ({start2} < {end1})"
    );
    exec.shutdown().await;
}
