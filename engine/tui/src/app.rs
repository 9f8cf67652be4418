//! The terminal loop: reads keys without waiting on the daemon, applies
//! the worker's answers, refreshes the run on a timer and redraws when
//! something changed. The terminal is set up and restored by ratatui
//! (also on a panic: its hook restores it first).

use crate::fetch::{Update, Worker};
use crate::keys::on_key;
use crate::model::Model;
use crate::render::render;
use crossterm::event::{self, Event};
use std::time::{Duration, Instant};
use twinflow_daemon::Client;

/// How often the run on screen is fetched again.
pub const TICK: Duration = Duration::from_secs(1);

/// The longest a key waits to be read.
const POLL: Duration = Duration::from_millis(100);

/// Why the TUI stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// The terminal could not be put in raw mode, or drawn on.
    #[error("terminal i/o failed: {0}")]
    Terminal(#[from] std::io::Error),
    /// The thread that talks to the daemon could not start.
    #[error("failed to start the daemon client thread: {0}")]
    Worker(std::io::Error),
}

/// Runs the TUI on this terminal until `q`: the runs of the daemon
/// `client` talks to, or run `run` (id, unique prefix or `latest`).
pub fn run(client: Client, run: Option<String>) -> Result<(), TuiError> {
    let worker = Worker::start(client).map_err(TuiError::Worker)?;
    let mut terminal = ratatui::try_init().inspect_err(|_| ratatui::restore())?;
    let result = event_loop(&mut terminal, &worker, Model::new(run));
    ratatui::try_restore()?;
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    worker: &Worker,
    mut model: Model,
) -> Result<(), TuiError> {
    worker.send(crate::fetch::Request::Runs);
    if let Some(request) = model.refresh() {
        worker.send(request);
    }
    let mut last_refresh = Instant::now();
    let mut dirty = true;
    loop {
        if dirty {
            terminal.draw(|frame| render(&model, frame))?;
            dirty = false;
        }
        if model.quit {
            return Ok(());
        }
        if event::poll(POLL)? {
            match event::read()? {
                Event::Key(key) => {
                    model.message = None;
                    for request in on_key(&mut model, key) {
                        worker.send(request);
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        } else if let Some(request) = model.follow() {
            // No key for a while: follow the highlighted task's log (not
            // one per row passed while moving).
            worker.send(request);
            dirty = true;
        }
        while let Ok(update) = worker.updates.try_recv() {
            let acted = matches!(update, Update::Acted { .. });
            model.apply(update);
            dirty = true;
            if acted && let Some(request) = model.refresh() {
                worker.send(request);
            }
        }
        if last_refresh.elapsed() >= TICK {
            last_refresh = Instant::now();
            if model.in_flight == 0
                && let Some(request) = model.refresh()
            {
                worker.send(request);
            }
        }
    }
}
