//! Slurm's job states, by long name and compact code, and what each means for
//! a twinflow attempt.

use std::fmt;
use twinflow_core::AttemptStatus;

/// A Slurm job state (`squeue` `%T`/`%t`, sacct `State`, scontrol
/// `JobState`), with the compact code squeue prints by default.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SlurmState {
    /// `PENDING` (`PD`): waiting for resources or a dependency.
    Pending,
    /// `CONFIGURING` (`CF`): allocated, nodes are being readied (booted).
    Configuring,
    /// `RUNNING` (`R`).
    Running,
    /// `COMPLETING` (`CG`): the script has ended, nodes are cleaned up.
    Completing,
    /// `COMPLETED` (`CD`): every process ended with exit code 0.
    Completed,
    /// `FAILED` (`F`): non-zero exit code or other failure.
    Failed,
    /// `CANCELLED` (`CA`): cancelled by a user or administrator.
    Cancelled,
    /// `TIMEOUT` (`TO`): reached its time limit.
    Timeout,
    /// `NODE_FAIL` (`NF`): one of its nodes failed.
    NodeFail,
    /// `PREEMPTED` (`PR`): preempted by another job.
    Preempted,
    /// `OUT_OF_MEMORY` (`OOM`): went over its memory limit.
    OutOfMemory,
    /// `BOOT_FAIL` (`BF`): a node failed to boot.
    BootFail,
    /// `DEADLINE` (`DL`): reached its deadline before it could run.
    Deadline,
    /// `SUSPENDED` (`S`): running, with its CPUs taken away for now.
    Suspended,
    /// `REQUEUED` (`RQ`): going back to pending.
    Requeued,
    /// `REQUEUE_HOLD` (`RH`): requeued and held.
    RequeueHold,
    /// `REQUEUE_FED` (`RF`): being requeued by a federation.
    RequeueFed,
    /// `RESIZING` (`RS`): changing size.
    Resizing,
    /// `REVOKED` (`RV`): a federation sibling that ran on another cluster.
    Revoked,
    /// `SIGNALING` (`SI`): being signalled.
    Signaling,
    /// `SPECIAL_EXIT` (`SE`): requeued and held in a special state, set by a
    /// site's epilog for particular exit values.
    SpecialExit,
    /// `STAGE_OUT` (`SO`): staging out data (burst buffer) after running.
    StageOut,
    /// `STOPPED` (`ST`): stopped by SIGSTOP, still holding its resources.
    Stopped,
    /// `RESV_DEL_HOLD` (`RD`): held because its reservation was deleted.
    ResvDelHold,
    /// Anything else, as printed.
    Other(String),
}

impl SlurmState {
    /// Every state but [`SlurmState::Other`].
    pub(crate) const KNOWN: [Self; 24] = [
        Self::Pending,
        Self::Configuring,
        Self::Running,
        Self::Completing,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Timeout,
        Self::NodeFail,
        Self::Preempted,
        Self::OutOfMemory,
        Self::BootFail,
        Self::Deadline,
        Self::Suspended,
        Self::Requeued,
        Self::RequeueHold,
        Self::RequeueFed,
        Self::Resizing,
        Self::Revoked,
        Self::Signaling,
        Self::SpecialExit,
        Self::StageOut,
        Self::Stopped,
        Self::ResvDelHold,
    ];

    /// A state from its long name or compact code, e.g. `PENDING` or `PD`.
    /// Only the first word counts (sacct prints `CANCELLED by 0`); anything
    /// unknown is [`SlurmState::Other`] with the text as printed (trimmed).
    pub fn parse(text: &str) -> Self {
        let word = text.split_whitespace().next().unwrap_or("");
        Self::KNOWN
            .into_iter()
            .find(|s| {
                s.names()
                    .is_some_and(|(long, code)| word == long || word == code)
            })
            .unwrap_or_else(|| Self::Other(text.trim().to_owned()))
    }

    /// The long name and compact code; `None` for [`SlurmState::Other`].
    fn names(&self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Self::Pending => ("PENDING", "PD"),
            Self::Configuring => ("CONFIGURING", "CF"),
            Self::Running => ("RUNNING", "R"),
            Self::Completing => ("COMPLETING", "CG"),
            Self::Completed => ("COMPLETED", "CD"),
            Self::Failed => ("FAILED", "F"),
            Self::Cancelled => ("CANCELLED", "CA"),
            Self::Timeout => ("TIMEOUT", "TO"),
            Self::NodeFail => ("NODE_FAIL", "NF"),
            Self::Preempted => ("PREEMPTED", "PR"),
            Self::OutOfMemory => ("OUT_OF_MEMORY", "OOM"),
            Self::BootFail => ("BOOT_FAIL", "BF"),
            Self::Deadline => ("DEADLINE", "DL"),
            Self::Suspended => ("SUSPENDED", "S"),
            Self::Requeued => ("REQUEUED", "RQ"),
            Self::RequeueHold => ("REQUEUE_HOLD", "RH"),
            Self::RequeueFed => ("REQUEUE_FED", "RF"),
            Self::Resizing => ("RESIZING", "RS"),
            Self::Revoked => ("REVOKED", "RV"),
            Self::Signaling => ("SIGNALING", "SI"),
            Self::SpecialExit => ("SPECIAL_EXIT", "SE"),
            Self::StageOut => ("STAGE_OUT", "SO"),
            Self::Stopped => ("STOPPED", "ST"),
            Self::ResvDelHold => ("RESV_DEL_HOLD", "RD"),
            Self::Other(_) => return None,
        })
    }

    /// The long name (`PENDING`), or the text of [`SlurmState::Other`].
    pub fn name(&self) -> &str {
        match self {
            Self::Other(raw) => raw,
            known => known.names().map_or("", |(long, _)| long),
        }
    }

    /// The compact code (`PD`); `None` for [`SlurmState::Other`].
    pub fn code(&self) -> Option<&'static str> {
        self.names().map(|(_, code)| code)
    }
}

impl fmt::Display for SlurmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a Slurm state, with the job's `ExitCode` (`code:signal`) when known,
/// means for the attempt:
///
/// | Slurm state | status |
/// | --- | --- |
/// | `PENDING`, `CONFIGURING`, `REQUEUED`, `REQUEUE_FED`, `REQUEUE_HOLD`, `RESV_DEL_HOLD`, `SPECIAL_EXIT` | `Queued` (the last three are held until someone releases or cancels them) |
/// | `RUNNING`, `COMPLETING`, `SUSPENDED`, `STOPPED`, `RESIZING`, `SIGNALING`, `STAGE_OUT` | `Running` (not over yet; `COMPLETING` comes before `TIMEOUT` too) |
/// | `COMPLETED` | `Exited(code)`, `Exited(0)` without an exit code |
/// | `FAILED` with a non-zero code | `Exited(code)` |
/// | `FAILED` with code 0 and signal 1-31 | `Signalled("killed by SIGKILL (Slurm FAILED)")` |
/// | `FAILED` otherwise (no exit code, `0:0`, or a number that is no signal, e.g. `0:53` for an `--output` directory that does not exist) | `Error("failed with exit code 0:53 (Slurm FAILED)")` |
/// | `CANCELLED` | `Cancelled` |
/// | `TIMEOUT` | `Error("timed out (Slurm TIMEOUT)")` |
/// | `NODE_FAIL` | `Error("node failure (Slurm NODE_FAIL)")` |
/// | `BOOT_FAIL` | `Error("node boot failure (Slurm BOOT_FAIL)")` |
/// | `PREEMPTED` | `Error("preempted (Slurm PREEMPTED)")` |
/// | `OUT_OF_MEMORY` | `Error("out of memory (Slurm OUT_OF_MEMORY)")` |
/// | `DEADLINE` | `Error("missed its deadline (Slurm DEADLINE)")` |
/// | `REVOKED` | `Error("revoked by its federation (Slurm REVOKED)")` |
/// | anything else | `Error("unknown Slurm state RAW")` |
///
/// The `Error`s go to the engine's retry policy. A status file written by the
/// job itself (see [`crate::script`]) is better evidence of how the task's
/// script ended than `COMPLETED`/`FAILED`.
pub fn attempt_status(state: &SlurmState, exit: Option<(i32, i32)>) -> AttemptStatus {
    use AttemptStatus::{Cancelled, Error, Exited, Queued, Running, Signalled};
    use SlurmState as S;
    let error = |what: &str| Error(format!("{what} (Slurm {state})"));
    match state {
        S::Pending
        | S::Configuring
        | S::Requeued
        | S::RequeueFed
        | S::RequeueHold
        | S::ResvDelHold
        | S::SpecialExit => Queued,
        S::Running
        | S::Completing
        | S::Suspended
        | S::Stopped
        | S::Resizing
        | S::Signaling
        | S::StageOut => Running,
        S::Completed => Exited(exit.map_or(0, |(code, _)| code)),
        S::Failed => match exit {
            Some((code, _)) if code != 0 => Exited(code),
            Some((code, signal)) => match signal_name(signal) {
                Some(name) => Signalled(format!("killed by {name} (Slurm FAILED)")),
                None => error(&format!("failed with exit code {code}:{signal}")),
            },
            None => error("failed without an exit code"),
        },
        S::Cancelled => Cancelled,
        S::Timeout => error("timed out"),
        S::NodeFail => error("node failure"),
        S::BootFail => error("node boot failure"),
        S::Preempted => error("preempted"),
        S::OutOfMemory => error("out of memory"),
        S::Deadline => error("missed its deadline"),
        S::Revoked => error("revoked by its federation"),
        S::Other(raw) => Error(format!("unknown Slurm state {raw}")),
    }
}

/// The name of standard Linux signal `n` (1-31).
fn signal_name(n: i32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let index = usize::try_from(n.checked_sub(1)?).ok()?;
    NAMES.get(index).copied()
}

#[cfg(test)]
mod tests;
