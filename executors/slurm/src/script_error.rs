//! [`ScriptError`]: why a job cannot be written as a batch script, shared by
//! the script writer, the grouping of arrays and packs, and the container
//! lines.

use std::fmt;
use twinflow_core::ExecutorError;

/// A job that cannot be written as a batch script; the message is lowercase
/// and carries the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    message: String,
}

impl ScriptError {
    pub(crate) fn new(message: String) -> Self {
        Self { message }
    }

    /// What is wrong, e.g. "the partition `a#b` cannot go on an #SBATCH line: ...".
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScriptError {}

impl From<ScriptError> for ExecutorError {
    fn from(e: ScriptError) -> Self {
        ExecutorError::new(e.message)
    }
}
