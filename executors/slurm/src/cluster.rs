//! How the executor reaches the cluster: Slurm's commands and the few small
//! files it writes (job scripts) and reads (status files, markers).
//!
//! [`LocalCluster`] is the login node the executor runs on. Reading many
//! files is one call, so that a remote cluster can answer it in one round
//! trip.

use std::path::PathBuf;
use tokio::process::Command;
use twinflow_core::ExecutorError;

/// Commands and files on the cluster.
#[async_trait::async_trait]
pub(crate) trait Cluster: Send + Sync + std::fmt::Debug {
    /// Runs a Slurm command (`sbatch`, `squeue`, `scancel`, `scontrol`) with
    /// these arguments and returns its standard output. A command that
    /// cannot be started for now (no process slot, a dropped connection) is
    /// a transient error; one that is missing or fails is not.
    async fn command(&self, program: &str, args: &[String]) -> Result<String, ExecutorError>;

    /// Writes small files, creating their parent directories.
    async fn write_files(&self, files: Vec<(PathBuf, String)>) -> Result<(), ExecutorError>;

    /// Reads small files; `None` for each that is missing or unreadable.
    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>>;

    /// Runs any command (`argv[0]` looked up in `PATH`) to its end and
    /// returns how it ended and what it printed, for image resolution
    /// ([`crate::containers`]). `Err` only when it could not be started
    /// (`NotFound`: no such program). The default (test clusters) runs
    /// nothing.
    async fn output(&self, argv: Vec<String>) -> std::io::Result<twinflow_launch::CommandOutput> {
        let _ = argv;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this cluster runs no commands but slurm's",
        ))
    }
}

/// This machine: the executor runs on the login node.
#[derive(Debug, Default)]
pub(crate) struct LocalCluster;

#[async_trait::async_trait]
impl Cluster for LocalCluster {
    async fn command(&self, program: &str, args: &[String]) -> Result<String, ExecutorError> {
        let out = Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| ExecutorError {
                message: format!("failed to run {program}: {e}"),
                transient: !matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ),
            })?;
        if !out.status.success() {
            return Err(failed(program, &out.status.to_string(), &out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn write_files(&self, files: Vec<(PathBuf, String)>) -> Result<(), ExecutorError> {
        tokio::task::spawn_blocking(move || {
            for (path, text) in files {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        ExecutorError::new(format!("failed to create {}: {e}", parent.display()))
                    })?;
                }
                std::fs::write(&path, text).map_err(|e| {
                    ExecutorError::new(format!("failed to write {}: {e}", path.display()))
                })?;
            }
            Ok(())
        })
        .await
        .map_err(|e| ExecutorError::new(format!("failed to write job files: {e}")))?
    }

    async fn output(&self, argv: Vec<String>) -> std::io::Result<twinflow_launch::CommandOutput> {
        let Some((program, args)) = argv.split_first() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty command",
            ));
        };
        let out = Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await?;
        Ok(twinflow_launch::CommandOutput {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
        let n = paths.len();
        tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .map(|p| std::fs::read_to_string(p).ok())
                .collect()
        })
        .await
        .unwrap_or_else(|_| vec![None; n])
    }
}

/// What Slurm's commands say when the controller cannot be reached or is
/// too busy for now (trying again later may work).
const TRANSIENT: [&str; 6] = [
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Resource temporarily unavailable",
    "Zero Bytes were transmitted or received",
    "Slurm backup controller in standby mode",
];

/// The error of a Slurm command that ran and failed: its last line of
/// standard error; transient when it says the controller is out of reach.
pub(crate) fn failed(program: &str, status: &str, stderr: &[u8]) -> ExecutorError {
    let stderr = String::from_utf8_lossy(stderr);
    ExecutorError {
        message: format!(
            "{program} failed ({status}): {}",
            stderr.lines().last().unwrap_or("").trim()
        ),
        transient: TRANSIENT.iter().any(|t| stderr.contains(t)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unreachable_controller_is_transient_a_refused_job_is_not() {
        let down = super::failed(
            "sbatch",
            "exit status: 1",
            b"sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n",
        );
        assert!(down.transient, "{down}");
        let refused = super::failed(
            "sbatch",
            "exit status: 1",
            b"sbatch: error: Batch job submission failed: Invalid partition name specified\n",
        );
        assert!(!refused.transient, "{refused}");
        assert!(
            refused
                .message
                .ends_with("Invalid partition name specified")
        );
    }
}
