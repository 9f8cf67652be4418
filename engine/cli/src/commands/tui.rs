//! `twinflow tui [RUN]`: the terminal UI (crate `twinflow-tui`) over the
//! daemon a client command talks to (its socket, or `--daemon tcp://...`
//! with the token).

use crate::args::{DaemonArgs, StateArgs};
use crate::exit;
use crate::output::Output;
use crate::plumbing::{block_on, failed, target};
use std::io::IsTerminal as _;

/// Runs the TUI until `q`: exit 0; 3 when no daemon answers (said before
/// the screen is taken), 2 when stdout is not a terminal.
pub(crate) fn tui(out: &Output, state: &StateArgs, daemon: &DaemonArgs, run: Option<&str>) -> u8 {
    let client = match target(out, state, daemon) {
        Ok(t) => t.client,
        Err(code) => return code,
    };
    match block_on(out, client.ping()) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return failed(out, &e),
        Err(code) => return code,
    }
    if !std::io::stdout().is_terminal() {
        out.error("twinflow tui needs a terminal: its standard output is not one");
        return exit::INVALID;
    }
    match twinflow_tui::run(client, run.map(str::to_owned)) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            out.error(&e.to_string());
            exit::UNREACHABLE
        }
    }
}
