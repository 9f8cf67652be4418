//! The fixture the engine's end-to-end tests share: a temporary directory
//! with a state directory and an engine whose local executor kills with a
//! short grace period, and running a plan to its end.

use std::path::PathBuf;
use std::time::Duration;
use twinflow_core::ExecutorKind;
use twinflow_engine::{Engine, RunEvent, RunOptions, RunSummary};
use twinflow_executor_local::LocalFactory;

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) engine: Engine,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::builder()
            .state_dir(dir.path().join("state"))
            .executor(
                ExecutorKind::Local,
                LocalFactory {
                    grace: Duration::from_millis(500),
                    ..LocalFactory::default()
                },
            )
            .build()
            .unwrap();
        Self { dir, engine }
    }

    /// A path in the fixture's directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `plan` to its end: its summary and every event on the way.
    pub(crate) async fn run_all(
        &self,
        plan: twinflow_core::Plan,
        options: RunOptions,
    ) -> (RunSummary, Vec<RunEvent>) {
        let mut handle = self.engine.submit(plan, options).await.unwrap();
        let mut events = Vec::new();
        while let Some(e) = handle.next_event().await {
            events.push(e);
        }
        (handle.wait().await.unwrap(), events)
    }
}
