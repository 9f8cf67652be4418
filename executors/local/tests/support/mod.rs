//! What the local executor's tests against its real supervisor process
//! share: an update sink, an executor whose supervisor is the
//! `twinflow-local-supervisor` binary, and attempt keys.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{AttemptKey, TaskId, Update, UpdateSink};
use twinflow_executor_local::{LocalExecutor, SupervisorBinary};

#[derive(Debug)]
pub(crate) struct Sink(mpsc::UnboundedSender<Update>);

impl UpdateSink for Sink {
    fn send(&self, update: Update) {
        let _ = self.0.send(update);
    }
}

/// Executor `name` with `grace` between SIGTERM and SIGKILL, its tasks
/// under the real supervisor binary; the updates it sends.
pub(crate) fn supervised(
    name: &str,
    grace: Duration,
) -> (LocalExecutor, mpsc::UnboundedReceiver<Update>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let exec =
        LocalExecutor::new(name, Arc::new(Sink(tx)), grace).with_supervisor(SupervisorBinary {
            path: env!("CARGO_BIN_EXE_twinflow-local-supervisor").into(),
            args: vec!["local-supervisor".to_owned()],
        });
    (exec, rx)
}

/// The first attempt of task `task`.
pub(crate) fn key(task: u32) -> AttemptKey {
    AttemptKey {
        task: TaskId(task),
        attempt: 0,
    }
}
