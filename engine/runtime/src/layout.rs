//! Where a run keeps its files. Every path is built from names the compiler
//! validated (step names) and numbers, never from parameter values, so
//! nothing escapes the run directory:
//!
//! ```text
//! <state dir>/runs/<run id>/work/<step>/<instance>/          task working directory
//! <state dir>/runs/<run id>/logs/<step>/<instance>.<attempt>.out|.err
//! ```

use std::path::{Path, PathBuf};

/// The files of one task attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPaths {
    /// Its working directory (outputs are written here).
    pub workdir: PathBuf,
    /// Its standard output.
    pub stdout: PathBuf,
    /// Its standard error.
    pub stderr: PathBuf,
}

/// The run directory of run `run_id` in state directory `state_dir`.
pub fn run_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join("runs").join(run_id)
}

/// The files of attempt `attempt` of the `instance`-th task of `step`.
pub fn task_paths(run_dir: &Path, step: &str, instance: u32, attempt: u32) -> TaskPaths {
    let logs = run_dir.join("logs").join(step);
    TaskPaths {
        workdir: run_dir.join("work").join(step).join(instance.to_string()),
        stdout: logs.join(format!("{instance}.{attempt}.out")),
        stderr: logs.join(format!("{instance}.{attempt}.err")),
    }
}
