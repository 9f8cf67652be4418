//! What [`crate::launch`] is given: a task's script, working directory,
//! staged inputs, environment, GPUs and, when it runs in an image, the
//! container to run it in.

use crate::resolve::ResolvedImage;
use std::path::{Path, PathBuf};
use twinflow_core::{ContainerRuntime, GpuVendor, ImageRef, TaskId};

/// One attempt of one task, as the executor is about to start it.
#[derive(Debug, Clone, Copy)]
pub struct LaunchSpec<'a> {
    /// The task's script, run as `/bin/sh -e -c SCRIPT` (inside the image,
    /// the image's `/bin/sh`).
    pub script: &'a str,
    /// The task directory: the working directory, bound read-write at the
    /// same path. Absolute.
    pub workdir: &'a Path,
    /// The files and directories the staged inputs point to
    /// ([`twinflow_core::JobInput::source`]): bound read-only at the same
    /// paths so that a symbolic link in `workdir/inputs/` resolves inside
    /// the container too. Absolute; those under `workdir` (or under another
    /// of them) need no bind of their own and get none.
    pub inputs: &'a [PathBuf],
    /// The task's environment: the step's `env` and the `TWINFLOW_*`
    /// variables ([`twinflow_core::Job::env`]), in order.
    pub env: &'a [(String, String)],
    /// The devices this attempt holds, if any.
    pub gpus: Option<&'a GpuBinding>,
    /// The image to run in; `None` runs on the host.
    pub container: Option<&'a ContainerLaunch<'a>>,
}

/// GPUs given to one attempt, never shared between attempts that run at
/// once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuBinding {
    /// Whose devices: decides the variables and the runtime flags.
    pub vendor: GpuVendor,
    /// Which devices.
    pub devices: GpuDevices,
}

/// Which devices an attempt holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuDevices {
    /// Host device indices the executor hands out, e.g. `[2, 3]` (a local
    /// executor counts them like slots): the launch sets the vendor's
    /// variables to them (inside podman and docker, which see only these
    /// devices through CDI, to `0..n`).
    Ids(Vec<u32>),
    /// The devices the batch system allocated to the job the attempt runs
    /// in, known only when the job runs: the batch system (Slurm) sets the
    /// vendor's variables (`CUDA_VISIBLE_DEVICES`, `ROCR_VISIBLE_DEVICES`)
    /// in the job, and a packed job's worker narrows them to each task's
    /// share. The launch sets no values of its own: on the host and under
    /// Apptainer the variables are inherited; podman and docker get every
    /// device of the vendor (`nvidia.com/gpu=all`, `/dev/kfd` and
    /// `/dev/dri`) and the variables passed in by name (`--env=NAME`), so
    /// the job's variables pick its devices inside, as under Apptainer.
    Allocated,
}

impl From<Vec<u32>> for GpuDevices {
    fn from(ids: Vec<u32>) -> Self {
        Self::Ids(ids)
    }
}

/// The container one attempt runs in.
#[derive(Debug, Clone, Copy)]
pub struct ContainerLaunch<'a> {
    /// The runtime (the step's `runtime`, else the executor's
    /// `container_runtime`).
    pub runtime: ContainerRuntime,
    /// The image as the step names it.
    pub image: &'a ImageRef,
    /// What resolution found for it on the host that runs the attempt; the
    /// launch then names that exact image (see [`ResolvedImage::run_ref`]).
    /// `None` names `image` as written (the runtime may pull it).
    pub resolved: Option<&'a ResolvedImage>,
    /// The step's `options:`, passed to the runtime before the image, one
    /// argument each.
    pub options: &'a [String],
    /// The container's name for podman and docker: [`container_name`], by
    /// which cancel and timeout stop it. Ignored by Apptainer.
    pub name: &'a str,
    /// The network of a podman or docker container.
    pub network: &'a Network,
    /// Who runs the executor: decides the user inside podman and docker.
    pub user: HostUser,
}

/// The network a container joins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// The host's network, as a process on the host (the default, and what
    /// Apptainer does anyway: MPI, license servers and the cluster's file
    /// systems work as outside).
    #[default]
    Host,
    /// No network but loopback.
    None,
    /// A named network of the runtime (podman/docker `--network=NAME`,
    /// Apptainer `--net --network=NAME`).
    Named(String),
}

/// The user the executor runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostUser {
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
}

/// The name of the container of one attempt: `tf-<run>-<task>-<attempt>`,
/// unique per attempt and derived from nothing else, so that cancel, a
/// timeout or a restarted executor can `podman kill` / `podman rm -f` it by
/// name without having stored anything. Characters podman does not allow in
/// names (anything but ASCII letters, digits, `_`, `.`, `-`) become `-`, and
/// then an FNV-1a hash of the run id is appended so that two run ids that
/// differ only there still get different names.
pub fn container_name(run_id: &str, task: TaskId, attempt: u32) -> String {
    let clean: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean == run_id {
        format!("tf-{run_id}-{task}-{attempt}")
    } else {
        format!("tf-{clean}-{:08x}-{task}-{attempt}", fnv1a(run_id))
    }
}

fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_per_attempt_and_valid_for_podman() {
        let a = container_name("forest-bird-20261125-090035-6fce", TaskId(12), 0);
        assert_eq!(a, "tf-forest-bird-20261125-090035-6fce-12-0");
        assert_ne!(
            a,
            container_name("forest-bird-20261125-090035-6fce", TaskId(12), 1)
        );
        let odd = container_name("a b/ü", TaskId(1), 2);
        assert!(odd.starts_with("tf-a-b--"), "{odd}");
        assert!(odd.ends_with("-1-2"), "{odd}");
        assert!(
            odd.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
            "{odd}"
        );
        assert_ne!(odd, container_name("a b/ä", TaskId(1), 2));
    }
}
