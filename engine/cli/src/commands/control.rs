//! `twinflow hold|release|kill|rerun|trigger|set RUN SEL…`: operator actions on a live
//! run, carried to the process that runs it, which journals and applies
//! them: the run's own socket when a `twinflow run` in progress serves it,
//! else the daemon (which takes an ended run up again for a rerun). With
//! neither, a rerun of an ended run takes it up in this process
//! ([`super::run::take_up_for_rerun`]); any other action says the run is
//! not live.

use crate::args::{DaemonArgs, StateArgs};
use crate::exit;
use crate::output::Output;
use crate::plumbing::{block_on, failed, state_dir, stored_run, target_for_run};
use crate::term::shown;
use twinflow_daemon::DaemonError;
use twinflow_engine::{ActionKind, ActionReport, Actor, OperatorAction, RunState};

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
    let target = match target_for_run(out, state, daemon, Some(run)) {
        Ok(t) => t,
        Err(code) => return code,
    };
    match block_on(out, target.client.act(run, kind, selectors)) {
        Ok(Ok(report)) => {
            for warning in &report.warnings {
                out.warning(warning);
            }
            print_report(run, &report);
            exit::SUCCESS
        }
        Ok(Err(e @ DaemonError::NotRunning { .. })) => {
            // No daemon, and the run has no live socket of its own.
            let stored = stored_run(state, Some(run));
            match stored {
                Some(info) if kind.is_rerun() && info.state != RunState::Running => {
                    let action = OperatorAction {
                        kind,
                        selectors: selectors.to_vec(),
                        by: Actor::current(),
                    };
                    super::run::take_up_for_rerun(out, &state_dir(state), &info, action)
                }
                _ => {
                    out.error(&format!(
                        "run `{}` is not live: it ended, or the process that ran it was \
                         killed ({e}, and the run serves no socket of its own){}",
                        shown(run),
                        if kind.is_rerun() {
                            ""
                        } else {
                            "; `twinflow rerun` takes an ended run up again"
                        }
                    ));
                    exit::UNREACHABLE
                }
            }
        }
        Ok(Err(e)) => failed(out, &e),
        Err(code) => code,
    }
}

/// What an accepted action did: the tasks on stdout, a line on stderr.
fn print_report(run: &str, report: &ActionReport) {
    let verb = match report.kind {
        ActionKind::Hold => "held",
        ActionKind::Release => "released",
        ActionKind::Kill => "killing",
        ActionKind::Rerun | ActionKind::RerunDownstream => "rerunning",
        ActionKind::Trigger => "triggered",
        ActionKind::SetSucceeded => "set succeeded",
        ActionKind::SetFailed => "set failed",
    };
    eprintln!(
        "{verb} {} task(s) of {} (action {}){}{}",
        report.applied.len(),
        shown(run),
        report.seq,
        match report.skipped {
            0 => String::new(),
            n => format!("; {n} selected task(s) left as they are"),
        },
        if report.taken_up {
            "; the run had ended and is live again"
        } else {
            ""
        }
    );
    for name in &report.applied {
        println!("{}", shown(name));
    }
}
