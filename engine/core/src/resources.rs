//! What a task asks of its executor: cpus, memory, wall time, gpus.

use serde::Serialize;

/// Resources of one task, in plain units (bytes, seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resources {
    /// CPU cores of each rank (each of `tasks`); `cpus x tasks` count
    /// against a local executor's slots.
    pub cpus: u32,
    /// Ranks (`resources.tasks`): processes of one task started together by
    /// its launcher (MPI ranks); 1, the default, is one process.
    #[serde(skip_serializing_if = "is_one")]
    pub tasks: u32,
    /// Nodes the task spans (`resources.nodes`); `None`: as many as its
    /// ranks need (the backend decides; 1 on a local executor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u32>,
    /// Ranks on each node (`resources.tasks_per_node`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_per_node: Option<u32>,
    /// Whole nodes, shared with no other job (`resources.exclusive`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exclusive: bool,
    /// Memory in bytes, if the step asked for a bound.
    pub memory_bytes: Option<u64>,
    /// Wall-time limit in seconds, if the step asked for one.
    pub time_seconds: Option<u64>,
    /// GPUs (Slurm `--gres=gpu:N`).
    pub gpus: u32,
    /// The GPU type the step asks for (`resources.gpus: {count, type}`),
    /// e.g. `a100` (Slurm `--gres=gpu:a100:N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
}

/// GPU vendors, by what selects their devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuVendor {
    /// `CUDA_VISIBLE_DEVICES`; Apptainer `--nv`; CDI `nvidia.com/gpu=N`.
    #[default]
    Nvidia,
    /// `ROCR_VISIBLE_DEVICES` and `HIP_VISIBLE_DEVICES`; Apptainer `--rocm`;
    /// `/dev/kfd` and `/dev/dri` for podman and docker.
    Amd,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpus: 1,
            tasks: 1,
            nodes: None,
            tasks_per_node: None,
            exclusive: false,
            memory_bytes: None,
            time_seconds: None,
            gpus: 0,
            gpu_type: None,
        }
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// What starts a task's ranks (step `launcher:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    /// `srun` (a Slurm job step per task).
    Srun,
    /// `mpirun` (OpenMPI or MPICH).
    Mpirun,
    /// None: the command runs once with the whole allocation and starts its
    /// ranks itself.
    None,
}

impl Launcher {
    /// The spelling used in workflow files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Srun => "srun",
            Self::Mpirun => "mpirun",
            Self::None => "none",
        }
    }
}

impl Resources {
    /// Whether the task is more than one process on one node: several
    /// ranks, several nodes, a per-node layout or whole nodes.
    pub fn is_parallel(&self) -> bool {
        self.tasks > 1
            || self.nodes.is_some_and(|n| n > 1)
            || self.tasks_per_node.is_some()
            || self.exclusive
    }
}
