//! twinflow-engine runs a compiled [`twinflow_core::Plan`]: a dispatch loop
//! turns the core scheduler's actions into executor calls, records every
//! change in a SQLite state store, seals outputs (size + SHA-256), stages
//! inputs for consumers, and reuses sealed results whose command and inputs
//! did not change (caching, and resuming an interrupted run).
//!
//! It knows no YAML and no particular backend: executors come from
//! [`twinflow_core::ExecutorFactory`]s registered per executor kind.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use twinflow_core::ExecutorKind;
//! use twinflow_engine::{Engine, Outcome, RunEvent, RunOptions};
//!
//! let state = tempfile::tempdir()?;
//! let engine = Engine::builder()
//!     .state_dir(state.path())
//!     .executor(ExecutorKind::Local, twinflow_executor_local::LocalFactory::default())
//!     .build()?;
//!
//! let yaml = "
//! version: 1
//! name: hello
//! executors: { here: { kind: local } }
//! steps:
//!   greet:
//!     executor: here
//!     for_each: { who: [world, twins] }
//!     run: echo hello ${{ who }} > ${{ outputs.text }}
//!     outputs: { text: hello.txt }
//!   join:
//!     executor: here
//!     needs: { texts: greet.text }
//!     run: cat ${{ inputs.texts }} > ${{ outputs.all }}
//!     outputs: { all: all.txt }
//! ";
//! let options = twinflow_workflow::CompileOptions {
//!     run_id: twinflow_engine::new_run_id("hello"),
//!     ..Default::default()
//! };
//! let plan = twinflow_workflow::compile_str("hello.yaml", yaml, &options).map_err(|e| e.to_string())?;
//!
//! let mut run = engine.submit(plan, RunOptions::default()).await?;
//! let mut succeeded = 0;
//! while let Some(event) = run.next_event().await {
//!     if let RunEvent::TaskSucceeded { .. } = event {
//!         succeeded += 1;
//!     }
//! }
//! let summary = run.wait().await?;
//! assert_eq!(summary.outcome, Outcome::Succeeded);
//! assert_eq!(succeeded, 3);
//! let all = std::fs::read_to_string(summary.run_dir.join("work/join/0/all.txt"))?;
//! assert_eq!(all, "hello world\nhello twins\n");
//! # Ok(())
//! # }
//! ```

mod artefact;
mod control;
mod digest;
mod dispatch;
mod engine;
mod event;
mod hooks;
mod host;
mod journal;
mod layout;
mod selection;
mod settings;
mod state;

pub use control::{
    ActionKind, ActionRecord, ActionReport, Actor, ControlError, OperatorAction, select_tasks,
};
pub use engine::{
    Canceller, Controller, Engine, EngineBuilder, EngineError, RunHandle, RunOptions,
    default_state_dir, new_run_id, new_run_id_for_file,
};
pub use event::{EVENTS_FORMAT, Outcome, RunEvent, RunSummary, StepSize};
pub use hooks::payload::HOOK_EVENT_FORMAT;
pub use layout::{TaskPaths, run_dir, task_paths};
pub use selection::{LiveState, SelectedTask, Selection, is_glob, sqlite_glob};
pub use settings::RunSettings;
pub use state::{
    ArtefactRow, BadCursor, CursorOrder, DB_FILE, RunArtefact, RunImage, RunInfo, RunState,
    StateError, StateStore, StepCounts, TaskCursor, TaskFilter, TaskOrder, TaskRecord, TaskRow,
    TaskRows, TaskState, UnknownOrder, UnknownState,
};
pub use twinflow_core::{WebhookError, WebhookSender};

/// The digest the store keeps of a run's plan ([`RunInfo::plan_digest`]):
/// equal for a plan compiled again from an unchanged workflow with the
/// run's settings and id.
pub fn plan_digest(plan: &twinflow_core::Plan) -> String {
    digest::plan_digest(plan)
}

/// Locks a mutex, taking over the data of a holder that panicked.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
