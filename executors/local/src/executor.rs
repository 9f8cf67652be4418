//! The local executor: starts attempts, waits for them, kills them.

use crate::{process, spawn};
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use twinflow_core::{
    AttemptKey, AttemptStatus, Executor, ExecutorError, ExecutorFactory, ExecutorSpec, Handle, Job,
    Update, UpdateSink,
};

/// Builds [`LocalExecutor`]s.
#[derive(Debug, Clone)]
pub struct LocalFactory {
    /// How long a cancelled task gets between SIGTERM and SIGKILL.
    pub grace: Duration,
}

impl Default for LocalFactory {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(5),
        }
    }
}

impl ExecutorFactory for LocalFactory {
    fn create(
        &self,
        spec: &ExecutorSpec,
        sink: Arc<dyn UpdateSink>,
    ) -> Result<Arc<dyn Executor>, ExecutorError> {
        Ok(Arc::new(LocalExecutor::new(&spec.name, sink, self.grace)))
    }
}

/// Runs attempts as detached process groups on this machine; see the crate
/// documentation.
#[derive(Debug)]
pub struct LocalExecutor {
    name: String,
    sink: Arc<dyn UpdateSink>,
    grace: Duration,
    running: Arc<Mutex<HashMap<AttemptKey, Running>>>,
}

#[derive(Debug)]
struct Running {
    pid: u32,
    cancelled: bool,
}

type Table = Arc<Mutex<HashMap<AttemptKey, Running>>>;

fn lock(table: &Table) -> std::sync::MutexGuard<'_, HashMap<AttemptKey, Running>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LocalExecutor {
    /// An executor named `name` (for messages) reporting into `sink`, giving
    /// cancelled tasks `grace` between SIGTERM and SIGKILL.
    pub fn new(name: &str, sink: Arc<dyn UpdateSink>, grace: Duration) -> Self {
        Self {
            name: name.to_owned(),
            sink,
            grace,
            running: Arc::default(),
        }
    }

    /// How many attempts are running now.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    fn signal_all(&self, signal: Signal, mark_cancelled: bool) {
        let mut table = lock(&self.running);
        for entry in table.values_mut() {
            entry.cancelled |= mark_cancelled;
            process::signal_group(entry.pid, signal);
        }
    }

    async fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if lock(&self.running).is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        let key = job.key;
        let pid = spawn::spawn(&job).map_err(|e| {
            ExecutorError::new(format!(
                "failed to start /bin/sh for {} on executor `{}`: {e}",
                job.name, self.name
            ))
        })?;
        let handle = process::handle(pid, process::start_time(pid));
        lock(&self.running).insert(
            key,
            Running {
                pid,
                cancelled: false,
            },
        );
        self.sink.send(Update {
            key,
            status: AttemptStatus::Running,
        });
        let sink = Arc::clone(&self.sink);
        let table = Arc::clone(&self.running);
        tokio::spawn(async move {
            let exit = spawn::wait(pid).await;
            // Whatever the script left behind in its group goes with it.
            process::signal_group(pid, Signal::SIGKILL);
            let cancelled = lock(&table).remove(&key).is_some_and(|r| r.cancelled);
            let status = match exit {
                Ok(exit) => process::status_of(exit, cancelled),
                Err(e) => AttemptStatus::Error(format!("failed to wait for pid {pid}: {e}")),
            };
            sink.send(Update { key, status });
        });
        Ok(handle)
    }

    async fn reattach(
        &self,
        run: twinflow_core::RunRef<'_>,
        attempts: Vec<(AttemptKey, Handle)>,
    ) -> Result<Vec<AttemptKey>, ExecutorError> {
        for (_, handle) in attempts {
            let Some((pid, start)) = process::parse_handle(&handle) else {
                continue;
            };
            // Ours if the pid still names the process we started, or names
            // nothing (then only its group, which no one else can own, may be
            // left). A reused pid is left alone.
            match process::start_time(pid) {
                Some(now) if now != start => {}
                _ => process::signal_group(pid, Signal::SIGKILL),
            }
        }
        // Tasks of the run whose handle never reached the journal: every task
        // leads its own session and carries the run's id and directory in its
        // environment.
        for pid in process::session_leaders_of_run(run.id, run.dir) {
            process::signal_group(pid, Signal::SIGKILL);
        }
        Ok(Vec::new())
    }

    async fn cancel(&self, key: AttemptKey, _handle: &Handle) -> Result<(), ExecutorError> {
        let pid = {
            let mut table = lock(&self.running);
            let Some(entry) = table.get_mut(&key) else {
                return Ok(());
            };
            entry.cancelled = true;
            entry.pid
        };
        process::signal_group(pid, Signal::SIGTERM);
        let table = Arc::clone(&self.running);
        let grace = self.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if lock(&table).get(&key).is_some_and(|r| r.pid == pid) {
                process::signal_group(pid, Signal::SIGKILL);
            }
        });
        Ok(())
    }

    async fn shutdown(&self) {
        self.signal_all(Signal::SIGTERM, true);
        if !self.wait_empty(self.grace).await {
            self.signal_all(Signal::SIGKILL, true);
            if !self.wait_empty(Duration::from_secs(10)).await {
                tracing::warn!(
                    "{} task(s) of executor `{}` did not die after SIGKILL",
                    self.running(),
                    self.name
                );
            }
        }
    }
}
