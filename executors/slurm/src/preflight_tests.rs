//! Faults on the node, run in a real `/bin/sh` against stand-ins: no
//! runtime on `PATH`, a missing bind source, and a pack whose shared
//! container does not start each fail the task (never run it on the host)
//! with a message naming the image, the runtime and the host.

use crate::group::render_pack_with;
use crate::pack_container::PackContainer;
use crate::script::{Wrapping, render_in, render_member_with};
use crate::script_tests_support::{busybox, members};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinflow_core::{Job, JobInput, SlurmConfig, TaskId};

/// Task `task`, which touches `ran`, its directories created.
fn job(run: &Path, task: u32) -> Job {
    let job = crate::script_tests_support::job(run, task, "touch ran");
    std::fs::create_dir_all(&job.workdir).unwrap();
    std::fs::create_dir_all(job.stdout.parent().unwrap()).unwrap();
    job
}

/// A directory for `PATH` holding what the scripts need besides the
/// runtime (`mv`, `uname`, `cat`, `mkdir`, `rm`), and `podman` when given.
fn bin(root: &Path, podman: Option<&str>) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["mv", "uname", "cat", "mkdir", "rm"] {
        let found = ["/bin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    if let Some(text) = podman {
        let p = bin.join("podman");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

fn sh(script: &Path, bin: &Path) -> Option<i32> {
    std::process::Command::new("/bin/sh")
        .arg(script)
        .env("PATH", bin)
        .output()
        .unwrap()
        .status
        .code()
}

fn host() -> String {
    let out = std::process::Command::new("uname")
        .arg("-n")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn no_runtime_on_path_or_a_missing_bind_source_fails_the_task_with_image_runtime_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let c = busybox();
    let prefix = format!(
        "twinflow: cannot run image `localhost/twinflow-busybox:1` with podman on host {}: ",
        host()
    );

    // No podman on PATH.
    let j = job(root, 0);
    let status = j.stdout.with_extension("status");
    let script = root.join("0.sbatch");
    std::fs::write(
        &script,
        render_in(&j, &SlurmConfig::default(), &status, Some(&c)).unwrap(),
    )
    .unwrap();
    let code = sh(&script, &bin(&root.join("a"), None));
    assert_eq!(code, Some(127));
    assert_eq!(std::fs::read_to_string(&status).unwrap(), "127\n");
    // A plain job's stderr is Slurm's `--error`: here the script's own.
    let out = std::process::Command::new("/bin/sh")
        .arg(&script)
        .env("PATH", root.join("a/bin"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("{prefix}podman is not on PATH\n")
    );

    // A bind source that is not there; podman would be.
    let mut j = job(root, 1);
    let missing = root.join("work/prep/0/a.nc");
    j.inputs.push(JobInput {
        rel: "inputs/a.nc".to_owned(),
        producer: TaskId(9),
        output: "a".to_owned(),
        source: missing.clone(),
    });
    let status = j.stdout.with_extension("status");
    let script = root.join("1.sbatch");
    std::fs::write(
        &script,
        render_in(&j, &SlurmConfig::default(), &status, Some(&c)).unwrap(),
    )
    .unwrap();
    let bin = bin(&root.join("b"), Some("#!/bin/sh\ntouch \"$0.ran\"\n"));
    let out = std::process::Command::new("/bin/sh")
        .arg(&script)
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{prefix}the bind source {} does not exist\n",
            missing.display()
        )
    );
    assert!(!bin.join("podman.ran").exists(), "podman was run");
    assert!(!j.workdir.join("ran").exists(), "the task ran");
}

#[test]
fn a_shared_container_that_does_not_start_fails_every_member_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let jobs: Vec<Job> = (0..2).map(|i| job(root, i)).collect();
    let members = members(&jobs);
    let shared = PackContainer::new(&jobs[0], Arc::new(busybox()));
    let how = Wrapping {
        shared: Some(&shared),
        ..Wrapping::default()
    };
    for m in &members {
        std::fs::write(
            &m.script,
            render_member_with(m.job, &m.status, &how).unwrap(),
        )
        .unwrap();
    }
    // A stand-in worker that runs the members in order.
    let worker = root.join("worker");
    let runs: Vec<String> = members
        .iter()
        .map(|m| format!("/bin/sh {}", m.script.display()))
        .collect();
    std::fs::write(&worker, format!("#!/bin/sh\n{}\nexit 0\n", runs.join("\n"))).unwrap();
    std::fs::set_permissions(&worker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let first = &jobs[0].stdout;
    let pack = root.join("pack.sbatch");
    std::fs::write(
        &pack,
        render_pack_with(
            &members,
            &SlurmConfig::default(),
            &worker,
            &first.with_extension("pack.json"),
            &first.with_extension("pack.log"),
            &how,
        )
        .unwrap(),
    )
    .unwrap();
    // podman whose `run` fails as it does for an image missing on the node.
    let bin = bin(
        root,
        Some(
            "#!/bin/sh\ncase \"$1\" in\n  run) echo 'Error: abab: image not known' >&2; exit 125 ;;\n  \
             exec) touch \"$0.exec\"; exit 0 ;;\nesac\n",
        ),
    );
    assert_eq!(sh(&pack, &bin), Some(0), "the worker's status");
    for m in &members {
        assert_eq!(std::fs::read_to_string(&m.status).unwrap(), "125\n");
        assert_eq!(
            std::fs::read_to_string(&m.job.stderr).unwrap(),
            format!(
                "twinflow: cannot run image `localhost/twinflow-busybox:1` with podman on host \
                 {}: Error: abab: image not known\n",
                host()
            )
        );
    }
    assert!(!bin.join("podman.exec").exists(), "a member was run");
}
