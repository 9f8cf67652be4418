//! The runner on the VM: this machine's runner binary (the `twinflow`
//! binary itself, whose `cloud-task` command is the runner), uploaded once
//! to `<workdir>/.twinflow/bin/<file name>-<sha256 of the binary>`. The name
//! is the content's digest, so a copy already there is used as it is: it
//! goes up once per VM and build, whatever the number of runs. It is used
//! only once it runs there (`--version`); a VM of another system or
//! architecture than this binary fails the executor's tasks with that
//! command's error, which names both.

use crate::remote_error;
use std::path::PathBuf;
use std::sync::Arc;
use twinflow_core::{ExecutorError, shell_quote};
use twinflow_ssh::Remote;

/// How the executor starts the runner: a program here, and the words that
/// come before the control directory (`["cloud-task"]` for `twinflow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerBinary {
    /// The binary on this machine, uploaded to the VM.
    pub path: PathBuf,
    /// Arguments before the control directory.
    pub args: Vec<String>,
}

/// Puts `binary` on the VM under `root` (unless it is there) and checks
/// that it runs; returns its path there.
pub(crate) async fn install(
    remote: &Arc<dyn Remote>,
    binary: &RunnerBinary,
    root: &str,
) -> Result<String, ExecutorError> {
    let local = binary.path.clone();
    let digest = tokio::task::spawn_blocking(move || twinflow_ssh::file_sha256(&local))
        .await
        .map_err(|e| ExecutorError::new(format!("failed to hash the runner: {e}")))?
        .map_err(ExecutorError::new)?;
    let stem = binary
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("twinflow");
    let target = format!("{root}/.twinflow/bin/{stem}-{digest}");
    let there = remote
        .exec(&format!("test -x {}", shell_quote(&target)), None)
        .await
        .map_err(|e| remote_error(&e))?;
    if !there.success() {
        tracing::info!(runner = %target, vm = %remote.describe(), "uploading the runner");
        remote
            .upload(&binary.path, &target)
            .await
            .map_err(|e| remote_error(&e))?;
    }
    let check = remote
        .exec(&format!("{} --version", shell_quote(&target)), None)
        .await
        .map_err(|e| remote_error(&e))?;
    if !check.success() {
        let uname = remote
            .exec("uname -sm", None)
            .await
            .map(|o| o.stdout_lossy().trim().to_owned())
            .unwrap_or_default();
        return Err(ExecutorError::new(format!(
            "the runner {target} does not run on {} ({uname}; it was built for {} {}): {}",
            remote.describe(),
            std::env::consts::OS,
            std::env::consts::ARCH,
            check.stderr_lossy().trim()
        )));
    }
    Ok(target)
}
