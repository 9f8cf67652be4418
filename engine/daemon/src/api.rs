//! The JSON the daemon and its clients exchange (`/v1/...`).

use serde::{Deserialize, Serialize};

/// `POST /v1/runs`: run a workflow file, as `twinflow run` would.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The workflow file, absolute (the daemon's working directory is not
    /// the client's).
    pub file: String,
    /// `key=value` parameter overrides.
    #[serde(default)]
    pub params: Vec<String>,
    /// A site file, absolute.
    #[serde(default)]
    pub site: Option<String>,
    /// Bind every executor to a local one.
    #[serde(default)]
    pub local: bool,
    /// Run every task again instead of reusing cached results.
    #[serde(default)]
    pub no_cache: bool,
    /// Stop at the first task that fails for good.
    #[serde(default)]
    pub fail_fast: bool,
}

/// The answer to a submission.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Submitted {
    /// The new run's id.
    pub run_id: String,
    /// Where its files are.
    pub run_dir: String,
}

/// `GET /v1/ping`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ping {
    /// The daemon's pid.
    pub pid: u32,
    /// Its version.
    pub version: String,
    /// Its state directory.
    pub state_dir: String,
    /// Runs it carries now.
    pub live_runs: Vec<String>,
}

/// An error answer: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong, a lowercase fragment.
    pub error: String,
}
