//! What the prologue and node-fault tests share: a job of step `s` under a
//! run directory, a busybox container for it, and pack members of jobs.

use crate::containers::StepContainer;
use crate::group::Member;
use std::path::Path;
use twinflow_core::{
    AttemptKey, ContainerRuntime, ContainerSpec, ImageRef, Job, ResolvedImage, Resources, TaskId,
};
use twinflow_launch::HostUser;

/// Task `task` of step `s` under `run`, running `script` (nothing is
/// created).
pub(crate) fn job(run: &Path, task: u32, script: &str) -> Job {
    let logs = run.join("logs/s");
    let workdir = run.join(format!("work/s/{task}"));
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("s[i={task}]"),
        script: script.to_owned(),
        env: vec![("TWINFLOW_RUN_ID".to_owned(), "r1".to_owned())],
        workdir,
        stdout: logs.join(format!("{task}.0.out")),
        stderr: logs.join(format!("{task}.0.err")),
        resources: Resources::default(),
        step: "s".to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

/// `localhost/twinflow-busybox:1` under podman, resolved to a made-up id.
pub(crate) fn busybox() -> StepContainer {
    let image = "localhost/twinflow-busybox:1";
    StepContainer {
        spec: ContainerSpec {
            image: image.to_owned(),
            runtime: Some(ContainerRuntime::Podman),
            options: Vec::new(),
        },
        resolved: ResolvedImage {
            image: ImageRef::parse(image).unwrap(),
            runtime: ContainerRuntime::Podman,
            digest: format!("sha256:{}", "ab".repeat(32)),
            run_ref: "ab".repeat(32),
        },
        gpu_vendor: twinflow_core::GpuVendor::Nvidia,
        user: HostUser { uid: 0, gid: 0 },
    }
}

/// The pack members of `jobs`, their scripts and statuses beside their logs.
pub(crate) fn members(jobs: &[Job]) -> Vec<Member<'_>> {
    jobs.iter()
        .map(|job| Member {
            job,
            script: job.stdout.with_extension("sh"),
            status: job.stdout.with_extension("status"),
        })
        .collect()
}
