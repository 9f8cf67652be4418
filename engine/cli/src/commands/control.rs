//! `twinflow hold|release|kill|rerun|trigger|set RUN SEL…`: operator actions on a live run,
//! carried to the daemon that runs it (which journals and applies them).

use crate::args::{DaemonArgs, StateArgs};
use crate::exit;
use crate::output::Output;
use crate::plumbing::{block_on, failed, target};
use crate::term::shown;
use twinflow_daemon::DaemonError;
use twinflow_engine::ActionKind;

/// Sends `kind` on `selectors` to run `run`; exit 2 for a selector that
/// matches nothing or an action that applies to no selected task.
pub(crate) fn act(
    out: &Output,
    state: &StateArgs,
    daemon: &DaemonArgs,
    run: &str,
    kind: ActionKind,
    selectors: &[String],
) -> u8 {
    let client = match target(out, state, daemon) {
        Ok(t) => t.client,
        Err(code) => return code,
    };
    match block_on(out, client.act(run, kind, selectors)) {
        Ok(Ok(report)) => {
            let verb = match kind {
                ActionKind::Hold => "held",
                ActionKind::Release => "released",
                ActionKind::Kill => "killing",
                ActionKind::Rerun | ActionKind::RerunDownstream => "rerunning",
                ActionKind::Trigger => "triggered",
                ActionKind::SetSucceeded => "set succeeded",
                ActionKind::SetFailed => "set failed",
            };
            for warning in &report.warnings {
                out.warning(warning);
            }
            eprintln!(
                "{verb} {} task(s) of {} (action {}){}",
                report.applied.len(),
                shown(run),
                report.seq,
                match report.skipped {
                    0 => String::new(),
                    n => format!("; {n} selected task(s) left as they are"),
                }
            );
            for name in &report.applied {
                println!("{}", shown(name));
            }
            exit::SUCCESS
        }
        Ok(Err(e @ DaemonError::NotRunning { .. })) => {
            out.error(&format!(
                "run `{}` is not live in a daemon ({e}); operator actions reach runs the \
                 daemon carries (`twinflow submit`); a `twinflow run` in progress does not \
                 take them",
                shown(run)
            ));
            exit::UNREACHABLE
        }
        Ok(Err(DaemonError::Refused {
            status: 404,
            message,
        })) if kind.is_rerun() => {
            // A finished run is not taken up again by a rerun (not built).
            out.error(&format!(
                "{message}; rerunning tasks of a finished run is not supported: \
                 `twinflow run --resume={} FILE` runs a failed or cancelled run's \
                 unfinished tasks again, and a new run with `--no-cache` runs every task",
                shown(run)
            ));
            exit::INVALID
        }
        Ok(Err(e)) => failed(out, &e),
        Err(code) => code,
    }
}
