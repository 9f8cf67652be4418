//! What the live tests of the Slurm executor on the real local Slurm
//! (`deploy/dev/slurm-up`) share: the gate, an update recorder that waits
//! for an attempt's end, and a Slurm executor on partition `debug`.
#![expect(clippy::unwrap_used, reason = "test support")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use twinflow_core::{
    AttemptKey, AttemptStatus, ExecutorFactory as _, SlurmConfig, Update, UpdateSink,
};

/// Whether `scripts/test` started the local Slurm (`TWINFLOW_TEST_SLURM=1`);
/// says so when it did not.
pub(crate) fn slurm_available() -> bool {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts deploy/dev/slurm-up and sets it)"
    );
    false
}

/// Records every update it is sent.
#[derive(Debug, Default)]
pub(crate) struct Recorder(pub(crate) Mutex<Vec<Update>>);

impl UpdateSink for Recorder {
    fn send(&self, update: Update) {
        self.0.lock().unwrap().push(update);
    }
}

impl Recorder {
    /// The final status of `key`, waiting up to 90 s for it.
    pub(crate) async fn final_status(&self, key: AttemptKey) -> AttemptStatus {
        let start = Instant::now();
        loop {
            let last = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|u| u.key == key && u.status.is_final())
                .map(|u| u.status.clone())
                .next_back();
            if let Some(status) = last {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{key:?} never ended: {:?}",
                self.0.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(crate) fn executor(sink: Arc<Recorder>) -> Arc<dyn twinflow_core::Executor> {
    let spec = twinflow_core::ExecutorSpec {
        name: "hpc".to_owned(),
        backend: twinflow_core::BackendConfig::Slurm(SlurmConfig {
            partition: Some("debug".to_owned()),
            ..SlurmConfig::default()
        }),
        prologue: None,
        env: Vec::new(),
        container_runtime: None,
        bound_by: None,
    };
    twinflow_executor_slurm::SlurmFactory::new(Duration::from_millis(300))
        .create(&spec, sink)
        .unwrap()
}
