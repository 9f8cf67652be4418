//! Parsers of what `sbatch --parsable`, `squeue` and `sacct` print, and of the
//! status file a job's script writes; pure functions on text.
//!
//! The commands they expect, with what Slurm 22.05.8 printed for them on a
//! test cluster (the tests use those lines verbatim):
//!
//! * Submitting: `sbatch --parsable SCRIPT` prints `426`, or `426;cluster`
//!   when a cluster is named: [`parse_sbatch_parsable`].
//! * Polling, many jobs at once: `squeue -h -r -t all -j ID,ID,... -o '%i|%T|%r'`
//!   prints one `JOBID|STATE|REASON` line per job, e.g. `2|PENDING|Priority`,
//!   `417|CANCELLED|None`: [`parse_squeue`]. `-h` drops the header, `-t all`
//!   keeps finished jobs (until slurmctld purges them, `MinJobAge` after the
//!   end), `-r` prints one line per array task (`426_7`); without it pending
//!   tasks are folded into one line (`426_[4-9%4]`), which is parsed too.
//!   `%T` is the long state name; the compact codes (`PD`, `CA`, ...) of the
//!   default output parse as well. squeue has no exit code: a finished job's
//!   code comes from its status file or sacct. With a list of ids of which
//!   none is known, squeue prints `slurm_load_jobs error: Invalid job id
//!   specified` on stderr and exits 1; with at least one known id it prints
//!   the known ones and exits 0.
//! * After slurmctld has purged a job: `sacct -X -n -P -j ID,ID,... -o
//!   JobID,State,ExitCode` prints `446|FAILED|3:0`, `448|CANCELLED by 0|0:0`:
//!   [`parse_sacct`]. A new job shows up in sacct only 0.3-1 s after the
//!   submit, so a missing line is not a lost job.
//! * The status file the batch script writes (see [`crate::script`]): the
//!   exit status and a newline: [`parse_status_file`].
//!
//! Lines that do not fit the format (a header, an error message, a job step
//! such as `445.batch`, a heterogeneous job component `12+0`) are skipped.
//! What a [`SlurmState`] means for twinflow is [`attempt_status`]; its
//! table is in that function's documentation.

mod state;

pub use state::{SlurmState, attempt_status};

use std::fmt;

/// A Slurm job id, as `sbatch --parsable` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u32);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The `JobID` column of squeue (`%i`) or sacct.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobRef {
    /// A plain job: `426`.
    Job(JobId),
    /// One task of an array job: `426_7`.
    ArrayTask {
        /// The array job's id.
        array: JobId,
        /// The task's index.
        task: u32,
    },
    /// Pending tasks of an array job, folded into one line: `426_[4-9%4]`.
    ArrayPending {
        /// The array job's id.
        array: JobId,
        /// The index expression between the brackets: `4-9%4`.
        tasks: String,
    },
}

impl JobRef {
    /// `426`, `426_7` or `426_[4-9%4]`; `None` for anything else, including
    /// steps (`426.batch`) and heterogeneous job components (`426+0`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let Some((array, task)) = text.split_once('_') else {
            return Some(Self::Job(job_id(text)?));
        };
        let array = job_id(array)?;
        if let Some(tasks) = task.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let ok = !tasks.is_empty()
                && tasks
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"-,%:".contains(&b));
            return ok.then(|| Self::ArrayPending {
                array,
                tasks: tasks.to_owned(),
            });
        }
        Some(Self::ArrayTask {
            array,
            task: number(task)?,
        })
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Job(id) => write!(f, "{id}"),
            Self::ArrayTask { array, task } => write!(f, "{array}_{task}"),
            Self::ArrayPending { array, tasks } => write!(f, "{array}_[{tasks}]"),
        }
    }
}

/// Digits only (no sign, no spaces), fitting a `u32`.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn job_id(text: &str) -> Option<JobId> {
    number(text).map(JobId)
}

/// Slurm printed something the parser did not expect; the message is
/// lowercase and quotes the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    message: String,
}

impl ParseError {
    /// What was expected and what came instead.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// The job id in what `sbatch --parsable` printed: `426` or `426;cluster`,
/// on the last non-empty line (a site's wrapper may print a banner first).
pub fn parse_sbatch_parsable(stdout: &str) -> Result<JobId, ParseError> {
    let line = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    let id = line.split_once(';').map_or(line, |(id, _cluster)| id);
    job_id(id).ok_or_else(|| ParseError {
        message: format!("sbatch --parsable printed {stdout:?}, not a job id"),
    })
}

/// One line of `squeue -h -r -t all -o '%i|%T|%r'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqueueRow {
    /// `%i`: the job, array task or folded pending array tasks.
    pub id: JobRef,
    /// `%T`: its state.
    pub state: SlurmState,
    /// `%r`: why it is in that state: `None`, `Priority`, `Resources`,
    /// `Dependency`, `DependencyNeverSatisfied`, `JobHeldUser`, ...
    pub reason: String,
}

/// The rows of `squeue -h -r -t all -o '%i|%T|%r'` (see the module
/// documentation); lines that do not fit are skipped.
pub fn parse_squeue(stdout: &str) -> Vec<SqueueRow> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().splitn(3, '|');
            let id = JobRef::parse(fields.next()?.trim())?;
            let state = SlurmState::parse(fields.next()?);
            let reason = fields.next()?.trim().to_owned();
            Some(SqueueRow { id, state, reason })
        })
        .collect()
}

/// One line of `sacct -X -n -P -o JobID,State,ExitCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SacctRow {
    /// `JobID`: the job or array task.
    pub id: JobRef,
    /// `State`, its first word (`CANCELLED by 0` is [`SlurmState::Cancelled`]).
    pub state: SlurmState,
    /// `ExitCode` `code:signal`, e.g. `3:0` is `(3, 0)`; `None` when empty.
    pub exit: Option<(i32, i32)>,
}

/// The rows of `sacct -X -n -P -o JobID,State,ExitCode` (see the module
/// documentation); step lines (ids with a dot) and lines that do not fit are
/// skipped.
pub fn parse_sacct(stdout: &str) -> Vec<SacctRow> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split('|');
            let id = fields.next()?.trim();
            if id.contains('.') {
                return None;
            }
            let id = JobRef::parse(id)?;
            let state = SlurmState::parse(fields.next()?);
            let exit = exit_code(fields.next()?);
            Some(SacctRow { id, state, exit })
        })
        .collect()
}

/// `code:signal` as Slurm prints `ExitCode` (sacct, `scontrol show job`).
pub(crate) fn exit_code(text: &str) -> Option<(i32, i32)> {
    let (code, signal) = text.trim().split_once(':')?;
    Some((
        i32::try_from(number(code)?).ok()?,
        i32::try_from(number(signal)?).ok()?,
    ))
}

/// The exit status in a status file written by the batch script: one number
/// from 0 to 255 and a newline. `None` for anything else (empty, garbage),
/// which the caller treats as no status file.
pub fn parse_status_file(text: &str) -> Option<i32> {
    let code = i32::try_from(number(text.trim())?).ok()?;
    (0..=255).contains(&code).then_some(code)
}

/// `MaxArraySize` from what `scontrol show config` prints
/// (`MaxArraySize           = 1001`): array indices run from 0 to one less.
pub fn parse_max_array_size(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == "MaxArraySize").then(|| number(value.trim()))?
    })
}

/// Whether `scontrol show config` says jobs are recorded in slurmdbd
/// (`AccountingStorageType = accounting_storage/slurmdbd`), so `sacct`
/// answers.
pub fn parse_accounting_enabled(text: &str) -> bool {
    text.lines().any(|line| {
        line.split_once('=').is_some_and(|(name, value)| {
            name.trim() == "AccountingStorageType" && value.trim() == "accounting_storage/slurmdbd"
        })
    })
}

#[cfg(test)]
mod tests;
