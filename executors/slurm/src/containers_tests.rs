//! The job scripts of tasks in containers: snapshots of a plain job
//! (podman) and an array or pack member (apptainer), and the podman trap
//! run in a real `/bin/sh` against a stand-in `podman` that ignores
//! SIGTERM, as a task can.

use super::*;
use crate::script::{render_in, render_member_in};
use std::path::Path;
use twinflow_core::{AttemptKey, ImageRef, JobInput, Resources, SlurmConfig, TaskId};

fn job(run: &str) -> Job {
    let logs = Path::new(run).join("logs/simulate");
    Job {
        key: AttemptKey {
            task: TaskId(3),
            attempt: 1,
        },
        name: "simulate[i=3]".to_owned(),
        script: "echo \"it's $TWINFLOW_TASK\" > out.txt\nexit 3".to_owned(),
        env: vec![
            ("TWINFLOW_RUN_ID".to_owned(), "boxed-1".to_owned()),
            ("TWINFLOW_RUN_DIR".to_owned(), run.to_owned()),
            ("TWINFLOW_TASK".to_owned(), "simulate[i=3]".to_owned()),
        ],
        workdir: Path::new(run).join("work/simulate/3"),
        stdout: logs.join("3.1.out"),
        stderr: logs.join("3.1.err"),
        resources: Resources::default(),
        step: "simulate".to_owned(),
        pack: None,
        launcher: None,
        inputs: vec![JobInput {
            rel: "inputs/forcing.nc".to_owned(),
            producer: TaskId(0),
            output: "forcing".to_owned(),
            source: Path::new(run).join("work/prepare/0/forcing.nc"),
        }],
        outputs: Vec::new(),
        group: None,
    }
}

fn container(image: &str, runtime: ContainerRuntime, run_ref: &str, uid: u32) -> StepContainer {
    StepContainer {
        spec: ContainerSpec {
            image: image.to_owned(),
            runtime: Some(runtime),
            options: vec!["--cap-drop=ALL".to_owned()],
        },
        resolved: ResolvedImage {
            image: ImageRef::parse(image).unwrap(),
            runtime,
            digest: format!("sha256:{}", "ab".repeat(32)),
            run_ref: run_ref.to_owned(),
        },
        user: HostUser { uid, gid: uid },
        gpu_vendor: twinflow_core::GpuVendor::Nvidia,
    }
}

#[test]
fn a_plain_job_runs_its_task_in_podman_and_removes_the_container_when_killed() {
    let run = "/scratch/runs/boxed-1";
    let c = container(
        "localhost/twinflow-busybox:1",
        ContainerRuntime::Podman,
        &"cd".repeat(32),
        0,
    );
    let job = job(run);
    let status = Path::new(run).join("logs/simulate/3.1.status");
    let script = render_in(&job, &SlurmConfig::default(), &status, Some(&c)).unwrap();
    insta::assert_snapshot!(script);
    assert!(
        script.contains("'--env=TWINFLOW_TASK=simulate[i=3]'"),
        "the environment goes inside as --env"
    );
}

#[test]
fn an_array_member_runs_its_task_under_apptainer_with_its_env_inside() {
    let run = "/scratch/runs/boxed-1";
    let c = container(
        "docker://ghcr.io/biodt/landis:7",
        ContainerRuntime::Apptainer,
        "/home/u/.cache/twinflow/images/sif-sha256-ab.sif",
        1000,
    );
    let job = job(run);
    let status = Path::new(run).join("logs/simulate/3.1.status");
    let script = render_member_in(&job, &status, Some(&c)).unwrap();
    insta::assert_snapshot!(script);
    assert!(
        !script.contains("trap"),
        "apptainer's processes are the job's"
    );
}

/// The podman lines with a stand-in `podman` on PATH: `run` records its
/// arguments and waits ignoring SIGTERM (as a container whose task ignores
/// it outlives its `podman run` client); `rm` records its own. SIGTERM to
/// the script (what `scancel` sends) must remove the container by name and
/// end the script with 143 without writing a status file; left alone, the
/// script passes `run`'s exit status through.
#[test]
fn the_trap_removes_the_container_on_sigterm_and_the_status_passes_through_otherwise() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("podman");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$1\" in\n  run) trap '' TERM; \
             if [ -e {root}/hang ]; then sleep 30 & wait; sleep 30; fi; exit 3 ;;\nesac\n",
            log = root.join("calls").display(),
            root = root.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = root.join("run");
    let job = job(run.to_str().unwrap());
    std::fs::create_dir_all(&job.workdir).unwrap();
    // The bind sources exist (else the checks before the launch fail it).
    let source = &job.inputs[0].source;
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    std::fs::write(source, "").unwrap();
    let c = container(
        "localhost/twinflow-busybox:1",
        ContainerRuntime::Podman,
        "cdcd",
        0,
    );
    let status = root.join("3.1.status");
    let script = root.join("job.sh");
    std::fs::write(
        &script,
        render_in(&job, &SlurmConfig::default(), &status, Some(&c)).unwrap(),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let sh = |hang: bool| {
        if hang {
            std::fs::write(root.join("hang"), "").unwrap();
        }
        std::process::Command::new("/bin/sh")
            .arg(&script)
            .env("PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };

    // Left alone: the exit status of `podman run` is the job's and the status file's.
    let out = sh(false).wait().unwrap();
    assert_eq!(out.code(), Some(3));
    assert_eq!(std::fs::read_to_string(&status).unwrap(), "3\n");
    std::fs::remove_file(&status).unwrap();

    // SIGTERM while the container ignores it.
    let mut child = sh(true);
    let calls = root.join("calls");
    for _ in 0..100 {
        // The second `podman run` (the script's text holds newlines).
        let n = std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .matches("run --rm")
            .count();
        if n >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let ended = child.wait().unwrap();
    // The stand-in `podman run` that ignored SIGTERM (a real one goes with
    // its container).
    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    assert_eq!(ended.code(), Some(143));
    assert!(!status.exists(), "a killed job leaves its fate to slurm");
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert!(
        calls.lines().any(|l| l == "rm -f --time=0 tf-boxed-1-3-1"),
        "{calls}"
    );
}
