//! twinflow as a library: the one dependency of a Rust program that compiles
//! and runs workflows. It re-exports what such a program needs from the
//! crates twinflow is made of, so that it depends on `twinflow` alone:
//!
//! ```toml
//! [dependencies]
//! twinflow = { version = "0.1", default-features = false, features = ["local"] }
//! ```
//!
//! - compiling: [`compile_file`], [`compile_str`], [`CompileOptions`] (a
//!   [`CompileError`] holds every [`Diagnostic`]); the result is a [`Plan`];
//! - running: [`Engine`] (built with [`Engine::builder`]: a state directory
//!   and an executor factory per [`ExecutorKind`]), [`RunOptions`], the
//!   [`RunHandle`] whose [`RunEvent`]s stream while it runs, and the
//!   [`RunSummary`] it ends with;
//! - reading a state directory: [`StateStore`], [`RunInfo`], [`RunState`],
//!   [`TaskState`], [`RunSettings`];
//! - executors, by cargo feature: `local` ([`LocalFactory`]), `slurm`
//!   ([`SlurmFactory`]; its packed jobs run `twinflow worker`, so give it a
//!   `twinflow` binary with `SlurmFactory::with_worker`), `cloud`
//!   ([`CloudFactory`]; its runner on the VM is `twinflow cloud-task`, given
//!   with `CloudFactory::with_runner`), `sources` ([`FetchFactory`]: the
//!   fetch executor of a workflow's `sources:`, over a cache directory,
//!   conventionally `<state dir>/sources`);
//! - `daemon`: the daemon's [`Client`], to submit to and watch a running
//!   daemon instead of running in this process.
//!
//! The crates themselves are re-exported too ([`twinflow_core`],
//! [`twinflow_workflow`], [`twinflow_engine`], and per feature the executor
//! and daemon crates) for what this list leaves out. The default feature,
//! `cli`, builds the `twinflow` command and turns on every executor and the
//! daemon; a library leaves it out (`default-features = false`).
//!
//! `examples/run_workflow.rs` compiles a two-step workflow and runs it with
//! the local executor in a temporary state directory, printing its events:
//! `cargo run -p twinflow --example run_workflow`.

pub use twinflow_core;
pub use twinflow_engine;
pub use twinflow_workflow;

pub use twinflow_core::{ExecutorFactory, ExecutorKind, Plan, TaskId};
pub use twinflow_engine::{
    Canceller, Engine, EngineBuilder, EngineError, Outcome, RunEvent, RunHandle, RunInfo,
    RunOptions, RunSettings, RunState, RunSummary, StateError, StateStore, TaskState,
    default_state_dir, new_run_id, new_run_id_for_file,
};
pub use twinflow_workflow::{
    CompileError, CompileOptions, Diagnostic, SiteSource, compile_file, compile_str,
    parse_param_arg,
};

#[cfg(feature = "local")]
pub use twinflow_executor_local::{self, LocalFactory, SlotPool};

#[cfg(feature = "slurm")]
pub use twinflow_executor_slurm::{self, SlurmFactory};

#[cfg(feature = "cloud")]
pub use twinflow_executor_cloud::{self, CloudFactory, RunnerBinary};

#[cfg(feature = "sources")]
pub use twinflow_sources::{self, FetchFactory};

#[cfg(feature = "daemon")]
pub use twinflow_daemon::{self, Client, DaemonError};
