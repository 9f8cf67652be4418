//! The errors of launch wrapping and of image resolution: lowercase
//! fragments that name what was refused (a path, a variable, an option) or,
//! for resolution, the image, the runtime and the host.

use std::fmt;
use twinflow_core::ExecutorError;

/// A task that cannot be launched as asked: "the bind source `/a:b` holds
/// `:`, which podman's --volume cannot carry".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchError {
    message: String,
}

impl LaunchError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LaunchError {}

impl From<LaunchError> for ExecutorError {
    fn from(e: LaunchError) -> Self {
        ExecutorError::new(e.message)
    }
}

/// An image that could not be resolved on a host: "failed to resolve image
/// `docker://x:1` with podman on host `login1`: …". Never a reason to run
/// the task on the host instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    /// The image as the step names it.
    pub image: String,
    /// The runtime (`podman`, `apptainer`, …).
    pub runtime: String,
    /// The host that was asked.
    pub host: String,
    /// What went wrong, with the command that failed and its stderr.
    pub reason: String,
    /// Whether trying again later may work (a pull that failed on the
    /// network); a missing image, a missing runtime or a bad file are not.
    pub transient: bool,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failed to resolve image `{}` with {} on host `{}`: {}",
            self.image, self.runtime, self.host, self.reason
        )
    }
}

impl std::error::Error for ResolveError {}

impl From<ResolveError> for ExecutorError {
    fn from(e: ResolveError) -> Self {
        ExecutorError {
            message: e.to_string(),
            transient: e.transient,
        }
    }
}
