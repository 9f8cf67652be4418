//! twinflow-report exports a run that the state store recorded:
//!
//! - [`write_provenance`]: a Workflow Run RO-Crate conforming to the
//!   Provenance Run Crate profile 0.5 (a directory, or a `.zip`): the workflow
//!   file and its parameters, every step (`HowToStep`) and its tool or model
//!   crate, every task as a `CreateAction` with its command, executor,
//!   handle, container image, times and exit status, and every artefact with
//!   its size and SHA-256, linked from the task that wrote it to the tasks
//!   that read it;
//! - [`write_report`]: one self-contained HTML file (inline CSS, JS and SVG)
//!   with the step graph, a timeline of tasks per executor, per-step counts
//!   and durations, failures with the tails of their logs, and artefacts.
//!
//! Both read a [`RunRecord`]: the run's rows and the plan it ran.

mod html;
mod model;
mod operator;
mod provenance;
mod record;
mod sink;
mod source_entity;
mod verify;

pub use html::{ReportOptions, ReportSummary, write_report};
pub use provenance::{CrateOptions, CrateSummary, write_provenance};
pub use record::{RunRecord, rfc3339, tail};

use std::path::PathBuf;

/// An export failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The state store could not be read.
    #[error(transparent)]
    State(#[from] twinflow_engine::StateError),
    /// No such run.
    #[error("no run `{0}` in the state store")]
    NoSuchRun(String),
    /// The workflow compiled now is not the one the run ran.
    #[error(
        "the workflow of run {run} ({file}) changed since the run: its plan digest differs, \
         so the run's commands and files cannot be told; restore the file as it was"
    )]
    PlanChanged {
        /// The run.
        run: String,
        /// Its workflow file.
        file: String,
    },
    /// Sealed artefacts the crate would copy changed since the run.
    #[error(
        "{} sealed file(s) changed since the run (not the sealed size and SHA-256): {}; \
         restore them, or export with --allow-altered to record them as altered and leave them out",
        files.len(),
        files.join(", ")
    )]
    Altered {
        /// Each file: its path, task and output.
        files: Vec<String>,
    },
    /// The run was not started from a workflow file.
    #[error("run {0} was not started from a workflow file, which a provenance crate must hold")]
    NoWorkflowFile(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The zip archive could not be written.
    #[error("{path}: {source}")]
    Zip {
        /// The archive.
        path: PathBuf,
        /// Why.
        source: zip::result::ZipError,
    },
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
