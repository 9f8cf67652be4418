//! The files the executor and the runner on the VM share, in one attempt's
//! control directory on the VM (`<remote logs>/<instance>.<attempt>.cloud/`):
//!
//! - `task.json`: the [`TaskSpec`], written by the executor before launch;
//! - `store.env`: the store settings forwarded from here (`export K='v'`
//!   lines, mode 0600), read by the launcher and deleted before the runner
//!   starts, so secrets never sit on the VM's disk for longer than that;
//! - `pid`: the runner's pid, which leads the attempt's process group;
//! - `exit.json`: the [`ExitRecord`], written last (to a temporary name,
//!   then renamed), so its presence means the attempt is over and its
//!   outputs are in the store;
//! - `runner.log`: the runner's own messages;
//! - `staged/`: the inputs as fetched from the store (`staged/<rel>`), each
//!   linked from its place in the task directory (`<workdir>/<rel>`), so a
//!   container binds them read-only at the same path;
//! - `container`: for a podman or docker task, the runtime and the
//!   container's name, one a line, written before the container starts:
//!   what the executor's kill stops and removes by name;
//! - `prologue.done`: written once the executor's `prologue:` succeeded,
//!   just before the task starts (its absence after the launch ended means
//!   the prologue failed).

use serde::{Deserialize, Serialize};
use twinflow_core::TaskId;

/// The value of [`TaskSpec::format`]. Version 2 added
/// [`TaskSpec::container`] and [`TaskSpec::prologue`]: a runner of version 1
/// refuses such a spec rather than run the task on the host.
pub const SPEC_FORMAT: &str = "twinflow.cloud-task/v2";

/// The earlier format, still read (it has no container or prologue).
pub const SPEC_FORMAT_V1: &str = "twinflow.cloud-task/v1";

/// What the runner runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// [`SPEC_FORMAT`].
    pub format: String,
    /// `step[key=value]@point`, for messages.
    pub name: String,
    /// `s3://bucket/prefix`.
    pub store: String,
    /// The run's id (the first segment of artefact names).
    pub run: String,
    /// The task's script, run as `/bin/sh -e -c SCRIPT`.
    pub script: String,
    /// Environment added to the runner's own.
    pub env: Vec<(String, String)>,
    /// Variables of the runner's environment kept from the task (the
    /// forwarded store settings).
    pub hidden: Vec<String>,
    /// The task's working directory on the VM.
    pub workdir: String,
    /// Its standard output on the VM.
    pub stdout: String,
    /// Its standard error on the VM.
    pub stderr: String,
    /// Artefacts fetched from the store before the script runs.
    pub inputs: Vec<SpecFile>,
    /// Artefacts sent to the store after it exited with 0.
    pub outputs: Vec<SpecFile>,
    /// How long the runner keeps trying a store that cannot be reached
    /// (beyond the store's own retries of each request), in seconds.
    #[serde(default = "default_patience")]
    pub store_patience_s: u64,
    /// The image the script runs in; `None` runs it on the VM itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<SpecContainer>,
    /// The executor's `prologue:`: shell lines run on the VM (outside any
    /// container) in the task directory before each attempt; the task
    /// starts only if they succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prologue: Option<String>,
    /// Ranks started by `mpirun -np N` on the VM, each running the script
    /// (in the container, if it has one: Apptainer's model); 0: no
    /// `mpirun`, the script runs once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mpirun: u32,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The container of one attempt, as the runner rebuilds it for
/// `twinflow_launch::launch`: every part typed, nothing pasted into a
/// command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecContainer {
    /// `podman`, `docker`, `apptainer` or `singularity`.
    pub runtime: String,
    /// The image as the step names it.
    pub image: String,
    /// Its digest, as resolved on the VM at submit.
    pub digest: String,
    /// What the runtime is given: the image id (podman, docker) or the
    /// SIF's path on the VM (apptainer, singularity).
    pub run_ref: String,
    /// The step's `options:`, one argument each.
    pub options: Vec<String>,
    /// The container's name (podman, docker): `tf-<run>-<task>-<attempt>`.
    pub name: String,
    /// The VM user's uid and gid (`id -u`, `id -g` there).
    pub uid: u32,
    /// See [`SpecContainer::uid`].
    pub gid: u32,
}

/// [`TaskSpec::store_patience_s`] unless set: ten minutes.
pub const DEFAULT_PATIENCE_S: u64 = 600;

fn default_patience() -> u64 {
    DEFAULT_PATIENCE_S
}

/// An artefact and where it sits in the working directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecFile {
    /// Path relative to the working directory.
    pub rel: String,
    /// The task segment of its artefact name ([`artefact_task`]).
    pub task: String,
    /// The output segment: the producer's output name.
    pub output: String,
}

/// How an attempt ended on the VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExitRecord {
    /// The script's exit status, if it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// The signal that killed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Why the runner could not run it or hand its outputs over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The task segment of the artefact names of `task`'s outputs.
pub fn artefact_task(task: TaskId) -> String {
    format!("task-{}", task.0)
}

/// The control directory of an attempt whose standard output is `stdout`
/// (`.../3.0.out` → `.../3.0.cloud`).
pub fn control_dir(stdout: &str) -> String {
    match stdout.strip_suffix(".out") {
        Some(stem) => format!("{stem}.cloud"),
        None => format!("{stdout}.cloud"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_dir_sits_beside_the_logs() {
        assert_eq!(
            control_dir("/r/logs/bird/3.0.out"),
            "/r/logs/bird/3.0.cloud"
        );
        assert_eq!(control_dir("/r/x.log"), "/r/x.log.cloud");
    }

    #[test]
    fn exit_record_round_trips_and_stays_small() {
        let r = ExitRecord {
            status: Some(3),
            ..ExitRecord::default()
        };
        let text = serde_json::to_string(&r).unwrap_or_default();
        assert_eq!(text, r#"{"status":3}"#);
        assert_eq!(serde_json::from_str::<ExitRecord>(&text).ok(), Some(r));
    }
}
