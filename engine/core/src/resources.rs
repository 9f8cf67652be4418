//! What a task asks of its executor: cpus, memory, wall time, gpus.

use serde::Serialize;

/// Resources of one task, in plain units (bytes, seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resources {
    /// CPU cores; counts against a local executor's slots.
    pub cpus: u32,
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
            memory_bytes: None,
            time_seconds: None,
            gpus: 0,
            gpu_type: None,
        }
    }
}
