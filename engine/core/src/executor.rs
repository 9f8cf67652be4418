//! Executors as a plan names them: a role (`hpc`, `cloud`) bound to a backend
//! kind with that backend's settings, as the workflow language defines them.
//! Data only: the executor crates give them meaning, except the capacity a
//! run gives each executor ([`ExecutorSpec::capacity`]), which the scheduler
//! takes from its config without knowing the backend.

use crate::GpuVendor;
use crate::scheduler::ExecutorCapacity;
use serde::Serialize;
use std::fmt;

/// The backend kinds of language v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Processes on this machine.
    Local,
    /// Jobs on a Slurm cluster, from its login node or over SSH.
    Slurm,
    /// A VM reached over SSH, artefacts through an S3 store.
    Cloud,
    /// External data fetched on the submitting host (the plan's
    /// `sources:`), never named in a workflow file.
    Fetch,
}

impl ExecutorKind {
    /// The spelling used in workflow files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Slurm => "slurm",
            Self::Cloud => "cloud",
            Self::Fetch => "fetch",
        }
    }
}

impl fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Container runtimes a step's image can run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerRuntime {
    /// Apptainer (the HPC default).
    Apptainer,
    /// Singularity, Apptainer's predecessor.
    Singularity,
    /// Podman.
    Podman,
    /// Docker.
    Docker,
}

impl ContainerRuntime {
    /// The spelling used in workflow files, which is also the program's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apptainer => "apptainer",
            Self::Singularity => "singularity",
            Self::Podman => "podman",
            Self::Docker => "docker",
        }
    }
}

impl fmt::Display for ContainerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An image a step runs inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    /// Image reference, e.g. `docker://ghcr.io/biodt/landis:7`.
    pub image: String,
    /// Runtime; `None` means the executor's `container_runtime`.
    pub runtime: Option<ContainerRuntime>,
    /// Extra options passed to the runtime.
    pub options: Vec<String>,
}

impl ContainerSpec {
    /// [`ContainerSpec::image`], parsed.
    pub fn image_ref(&self) -> Result<crate::ImageRef, crate::ImageRefError> {
        crate::ImageRef::parse(&self.image)
    }
}

/// `user@host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshTarget {
    /// Login name; `None` means the current user.
    pub user: Option<String>,
    /// Host name or address.
    pub host: String,
    /// Port; `None` means 22.
    pub port: Option<u16>,
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Location {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Settings of a local executor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LocalConfig {
    /// Concurrent cpu slots; `None` means the machine's cores at run time.
    pub slots: Option<u32>,
    /// The host's GPU device ids this executor hands out, each to one
    /// attempt at a time (`gpus: [0, 1]`); empty: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<u32>,
    /// Whose GPUs `gpus` are: decides the variables and container flags.
    pub gpu_vendor: GpuVendor,
}

/// Settings of a Slurm executor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlurmConfig {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// Submit over SSH to this login node; `None` runs `sbatch` here.
    pub ssh: Option<SshTarget>,
    /// The most jobs of one run queued at once.
    pub max_jobs: Option<u32>,
    /// The most jobs of this user on the cluster at once, across all runs
    /// of one daemon (`user_max_jobs`); applied only by a backend whose
    /// [`crate::Executor::caps_user_jobs`] is true, else the run is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_max_jobs: Option<u32>,
    /// Extra `sbatch` options, passed as given.
    pub sbatch: Vec<String>,
    /// Working directory on the cluster's shared file system.
    pub workdir: Option<String>,
    /// The most elements of one job array that run at once (`--array=0-K%N`).
    pub array_throttle: Option<u32>,
    /// Path of a `twinflow` binary on the cluster, which runs packed jobs
    /// (`twinflow worker`); `None`: the executor finds or uploads one.
    pub twinflow: Option<String>,
    /// Whose GPUs the cluster's nodes have: decides a container's GPU
    /// flags (Apptainer `--nv` or `--rocm`, CDI or `/dev/kfd`+`/dev/dri`
    /// for podman); Slurm itself chooses the devices.
    pub gpu_vendor: GpuVendor,
}

/// Settings of a cloud executor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CloudConfig {
    /// The VM.
    pub ssh: Option<SshTarget>,
    /// Object store for artefacts.
    pub store: Option<S3Location>,
    /// Working directory on the VM.
    pub workdir: Option<String>,
}

/// A backend and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackendConfig {
    /// See [`LocalConfig`].
    Local(LocalConfig),
    /// See [`SlurmConfig`].
    Slurm(SlurmConfig),
    /// See [`CloudConfig`].
    Cloud(CloudConfig),
    /// See [`crate::FetchConfig`]: added by the compiler when the workflow
    /// has `sources:`, as the plan's last executor.
    Fetch(crate::FetchConfig),
}

/// How many sources are fetched at once.
pub const FETCH_SLOTS: u32 = 8;

/// The name of the fetch executor the compiler adds to a plan with sources.
pub const FETCH_EXECUTOR: &str = "sources";

impl ExecutorSpec {
    /// What the scheduler may hand this executor at once, computed once per
    /// run from its settings: a local executor its `slots` (else
    /// `default_slots`, the machine's cores), each task taking its `cpus`;
    /// Slurm no limit here, as it enforces `max_jobs` itself (counting
    /// Slurm jobs, of which a packed one carries many tasks); cloud no
    /// limit.
    pub fn capacity(&self, default_slots: u32) -> ExecutorCapacity {
        match &self.backend {
            BackendConfig::Local(l) => ExecutorCapacity::cores(l.slots.unwrap_or(default_slots)),
            BackendConfig::Slurm(_) | BackendConfig::Cloud(_) => ExecutorCapacity::UNLIMITED,
            // Fetches wait on the network, not on this machine's cores.
            BackendConfig::Fetch(_) => ExecutorCapacity::cores(FETCH_SLOTS),
        }
    }
}

impl BackendConfig {
    /// The kind of this backend.
    pub fn kind(&self) -> ExecutorKind {
        match self {
            Self::Local(_) => ExecutorKind::Local,
            Self::Slurm(_) => ExecutorKind::Slurm,
            Self::Cloud(_) => ExecutorKind::Cloud,
            Self::Fetch(_) => ExecutorKind::Fetch,
        }
    }
}

/// An executor role of a workflow, bound to a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutorSpec {
    /// The role's name in the workflow file.
    pub name: String,
    /// The backend it is bound to.
    #[serde(flatten)]
    pub backend: BackendConfig,
    /// Shell lines run before each task.
    pub prologue: Option<String>,
    /// Environment for every task on this executor.
    pub env: Vec<(String, String)>,
    /// Default runtime for steps with a container.
    pub container_runtime: Option<ContainerRuntime>,
    /// Where the binding came from when not the workflow file: a site file's
    /// path, or `--local`.
    pub bound_by: Option<String>,
}
