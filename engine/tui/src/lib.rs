//! twinflow-tui: the terminal UI of `twinflow tui`, for a login node over
//! SSH. It talks to a daemon only through [`twinflow_daemon::Client`] (its
//! Unix socket, or its TCP listener with the token), never to a state
//! store, so it works from another login node too.
//!
//! - [`model`]: what the screen shows (runs, a run's per-step progress, one
//!   page of its tasks filtered by the daemon, a log, a window);
//! - [`keys`]: keys change the model and name what to ask the daemon;
//! - [`fetch`]: the requests and answers, carried by a worker thread so
//!   keys never wait on the daemon;
//! - [`render`] and `dialogs`: drawing, a pure function of the model;
//! - [`run`]: the terminal loop (refresh every second, restore on exit).

mod app;
mod dialogs;
pub mod fetch;
pub mod keys;
pub mod model;
pub mod render;

pub use app::{TICK, TuiError, run};

#[cfg(test)]
mod tests;
