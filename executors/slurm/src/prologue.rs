//! The executor's `prologue:` in job scripts: run once at the top of every
//! Slurm job (a plain job, an array element, a packed job), in the batch
//! shell itself, outside any container, before the task (or the pack's
//! worker and its shared container) starts.
//!
//! The batch script, after its `#SBATCH` header:
//!
//! ```text
//! unset TWINFLOW_PROLOGUE_FAILED
//! tf_main() {
//! trap - EXIT TERM INT HUP
//! set +e
//! …what the job runs (the task, the array's `case`, the pack's worker)…
//! }
//! trap 'TWINFLOW_PROLOGUE_FAILED=$?; export TWINFLOW_PROLOGUE_FAILED; tf_main' EXIT
//! trap 'trap - EXIT; exit 143' TERM INT HUP
//! set -e
//! …the prologue, as written…
//! set +e
//! tf_main
//! ```
//!
//! - The prologue runs in the batch shell, so what it `export`s (and what
//!   `module load` sets) reaches the tasks: a plain job's task directly,
//!   array elements and pack members through `exec` and the worker, which
//!   pass the environment on. A task's own variables are exported after it
//!   and win.
//! - `set -e`: the first command that fails (as `set -e` counts failures)
//!   ends the prologue, as does an `exit` or a syntax error in it. The
//!   `EXIT` trap then records its status in `TWINFLOW_PROLOGUE_FAILED` and
//!   goes on to what the job runs, so that every task of the job fails on
//!   its own terms: its script (`check`) writes
//!   `twinflow: the prologue of executor `NAME` failed with status N on host
//!   H; the task did not run` to the task's standard error and records N
//!   (1 if the prologue exited with 0) as its exit status, which becomes the
//!   attempt's error. No task runs without its prologue.
//! - `scancel` or a time limit during the prologue ends the job (143)
//!   without running anything.
//! - Its output goes to the job's standard output: a plain job's task log,
//!   an array's or pack's submission log.

use crate::script_error::ScriptError;
use std::fmt::Write as _;
use twinflow_core::shell_quote;

/// An executor's prologue, as its job scripts run it.
#[derive(Debug, Clone, Copy)]
pub struct Prologue<'a> {
    /// The executor's name, for the message of a failed prologue.
    pub executor: &'a str,
    /// The shell lines, as written.
    pub text: &'a str,
}

/// Writes what comes before what the job runs (see the module
/// documentation).
pub(crate) fn open(out: &mut String) {
    out.push_str("unset TWINFLOW_PROLOGUE_FAILED\n");
    out.push_str("tf_main() {\n");
    out.push_str("trap - EXIT TERM INT HUP\n");
    out.push_str("set +e\n");
}

/// Writes the prologue after what the job runs, [`open`] being before it.
pub(crate) fn close(out: &mut String, p: &Prologue<'_>) -> Result<(), ScriptError> {
    if p.text.contains('\0') || p.text.contains("\r\n") {
        return Err(ScriptError::new(format!(
            "the prologue of executor `{}` holds a nul byte or a dos line break (\\r\\n), \
             which a batch script cannot carry: {:?}",
            p.executor, p.text
        )));
    }
    out.push_str("}\n");
    out.push_str(
        "trap 'TWINFLOW_PROLOGUE_FAILED=$?; export TWINFLOW_PROLOGUE_FAILED; tf_main' EXIT\n",
    );
    out.push_str("trap 'trap - EXIT; exit 143' TERM INT HUP\n");
    out.push_str("set -e\n");
    out.push_str(p.text);
    if !p.text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("set +e\n");
    out.push_str("tf_main\n");
    Ok(())
}

/// The lines of a task's script that, when its job's prologue failed,
/// say so on the task's standard error and leave its status in `$?`,
/// around `run` (the lines that run the task, leaving its status in `$?`).
pub(crate) fn check(p: &Prologue<'_>, run: Vec<String>) -> Vec<String> {
    let mut lines = vec![
        "if [ -n \"${TWINFLOW_PROLOGUE_FAILED-}\" ]; then".to_owned(),
        format!(
            "printf 'twinflow: the prologue of executor `%s` failed with status %s on host %s; \
             the task did not run\\n' {} \"$TWINFLOW_PROLOGUE_FAILED\" \"$(uname -n)\" >&2",
            shell_quote(p.executor)
        ),
        "if [ \"$TWINFLOW_PROLOGUE_FAILED\" = 0 ]; then (exit 1); else (exit \"$TWINFLOW_PROLOGUE_FAILED\"); fi"
            .to_owned(),
        "else".to_owned(),
    ];
    lines.extend(run);
    lines.push("fi".to_owned());
    lines
}

/// `text` with every line of `lines` appended.
pub(crate) fn push_lines(out: &mut String, lines: &[String]) {
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
#[path = "prologue_tests.rs"]
mod tests;
