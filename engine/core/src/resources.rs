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
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpus: 1,
            memory_bytes: None,
            time_seconds: None,
            gpus: 0,
        }
    }
}
