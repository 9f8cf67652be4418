//! twinflow-launch owns launch wrapping: how one attempt of a task is
//! started, on the host or inside a container image, and how an image is
//! found on the host that runs it.
//!
//! [`launch`] is one pure function from a [`LaunchSpec`] (the task's
//! `/bin/sh -e -c SCRIPT`, its task directory, the sources of its staged
//! inputs, its environment, its GPUs and, optionally, a
//! [`ContainerLaunch`]: runtime, image, options, name, network, user) to a
//! [`Launch`]: an argument vector (never a shell string), the environment
//! of the launching process and its working directory, or, for batch
//! scripts, [`Launch::script_lines`] with every word quoted by
//! [`twinflow_core::shell_quote`]. The local, Slurm (jobs, arrays, the
//! pack worker) and cloud executors are meant to call it instead of each
//! building their own command line; the Slurm executor does (its job
//! scripts, for steps in a container) and so does the local one (its
//! supervisor spawns the argument vector), the cloud one not yet (see
//! docs/containers.md).
//!
//! Inside a container the task sees its task directory at the same path
//! (read-write, the working directory) and the files its staged inputs
//! point to at theirs (read-only), its environment and GPU variables, and
//! exits with the script's own status. The runtime specifics are in
//! `podman.rs` (podman, docker) and `apptainer.rs` (apptainer,
//! singularity); [`container_name`] names a podman container per attempt.
//!
//! [`start_shared`], [`exec_shared`], [`kill_shared_task`] and
//! [`stop_shared`] run several tasks in one podman/docker container (a
//! packed Slurm job's members), each with its own directory, environment,
//! output and exit status; [`start_instance`], [`exec_instance`] and
//! [`stop_instance`] do the same with one Apptainer/Singularity instance.
//!
//! [`resolve`] is the only part that does I/O: an [`ImageResolver`] per
//! runtime finds and fetches an image once and returns its digest and the
//! pinned form the launch names, running argument vectors through a
//! [`CommandRunner`] (this machine, or a cluster over SSH).
//!
//! The crate depends on `twinflow-core` alone, so every executor crate can
//! use it without reaching the runtime.

mod apptainer;
mod by_step;
mod error;
mod instance;
mod parts;
mod podman;
pub mod resolve;
mod shared;
mod spec;
mod wrap;

pub use by_step::ByStep;
pub use error::{LaunchError, ResolveError};
pub use instance::{InstanceTask, exec_instance, start_instance, stop_instance};
pub use parts::Launch;
pub use resolve::{
    ApptainerResolver, CommandOutput, CommandRunner, ImageResolver, LocalRunner, PodmanResolver,
    ResolvedImage,
};
pub use shared::{
    SharedSpec, SharedTask, exec_shared, kill_shared_task, start_shared, stop_shared,
};
pub use spec::{
    ContainerLaunch, GpuBinding, GpuDevices, HostUser, LaunchSpec, Network, container_name,
};
pub use twinflow_core::GpuVendor;
pub use wrap::launch;
