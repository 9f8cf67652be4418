//! twinflow-daemon: the login-node daemon and its client.
//!
//! One daemon per user and state directory carries every run submitted to
//! it: `twinflow submit` hands a workflow over and returns, the user logs
//! out, and the daemon goes on. It listens on a Unix socket in a 0700
//! directory (`<state dir>/daemon/twinflow.sock`) and answers only its own
//! user (the peer's uid is checked on every connection); a lock file holds
//! its pid so two daemons never share a state directory. When it starts it
//! takes up the runs a dead daemon left (`--resume` semantics: jobs still in
//! Slurm are re-attached, finished tasks are not run again).
//!
//! No TCP listener unless asked for ([`ServeOptions::listen`]); one that is
//! enabled speaks HTTPS with a self-signed certificate the daemon makes,
//! and answers only requests carrying the token of its 0600 access file
//! (`<state dir>/daemon/token`, [`AccessFile`]), which also holds the
//! certificate's SHA-256 fingerprint: [`Client::from_access_file`] pins it.
//! Plain HTTP only when asked for by name ([`ServeOptions::plain_http`]).
//! The token is rotated without a restart through the socket
//! (`POST /v1/token/rotate`, [`Client::rotate_token`]).
//!
//! - [`serve`] (and [`serve_with`], with a TCP listener) runs the daemon
//!   until its shutdown future resolves or a client asks it to stop: a
//!   library function, so tests boot a real daemon in-process;
//! - [`Client`] talks to it, over the socket or TCP (the CLI uses it);
//! - [`RunSocket`] serves the same routes for one `twinflow run` in
//!   progress, without a daemon, on a socket of its own;
//! - [`api`] holds the JSON the two exchange;
//! - [`query`] computes the read routes' answers from a state store, for
//!   the daemon and for clients that find no daemon to ask.
//!
//! The protocol is HTTP/1.1 with JSON bodies (`axum` on the server, `hyper`
//! on the client): `GET /v1/ping`, `GET|POST /v1/runs`, `GET /v1/runs/{id}`,
//! `POST /v1/runs/{id}/cancel`, `GET /v1/runs/{id}/events` (the
//! `twinflow.events/v1` stream, one JSON object a line, with a
//! [`api::PROGRESS_EVENT`] line of the counts so far after `run-started`),
//! `GET /v1/runs/{id}/logs/{task}` (where the logs are; with
//! `?stream=stdout|stderr[&attempt=N]` the file's bytes), `POST /v1/shutdown`.

mod access;
pub mod api;
mod auth;
mod client;
mod coalesce;
mod error;
pub mod follow;
mod lock;
mod paths;
mod pin;
pub mod query;
mod resume;
mod routes;
mod run_socket;
mod runs;
mod server;
mod tcp;
mod tls;
mod token;

pub use access::AccessFile;
pub use client::{Client, EventStream, LogReader};
pub use error::DaemonError;
pub use lock::running_pid;
pub use paths::DaemonPaths;
pub use pin::Fingerprint;
pub use run_socket::{RunSocket, live_run_socket, run_socket_record};
pub use server::{ServeOptions, listen_warning, serve, serve_with};
pub use token::read_token_file;
