//! The local executor: starts attempts, waits for them, kills them.

use crate::capture::{Draining, Pipe};
use crate::pool::{Permit, SlotPool};
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
    /// Cores shared by every executor this factory builds (the daemon's
    /// runs); `None`: each run keeps only to its own `slots`.
    pub pool: Option<Arc<SlotPool>>,
}

impl Default for LocalFactory {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(5),
            pool: None,
        }
    }
}

impl LocalFactory {
    /// Executors that share `pool` across runs.
    #[must_use]
    pub fn with_pool(mut self, pool: Arc<SlotPool>) -> Self {
        self.pool = Some(pool);
        self
    }
}

impl ExecutorFactory for LocalFactory {
    fn create(
        &self,
        spec: &ExecutorSpec,
        sink: Arc<dyn UpdateSink>,
    ) -> Result<Arc<dyn Executor>, ExecutorError> {
        let mut exec = LocalExecutor::new(&spec.name, sink, self.grace);
        if let Some(pool) = &self.pool {
            exec.pool = Some((Arc::clone(pool), pool.owner()));
        }
        Ok(Arc::new(exec))
    }
}

/// The handle of an attempt waiting for cores of the shared pool (it has
/// no process yet; [`AttemptStatus::Submitted`] gives the real one).
const WAITING: &str = "local-waiting";

/// Runs attempts as detached process groups on this machine; see the crate
/// documentation.
#[derive(Debug)]
pub struct LocalExecutor {
    starter: Arc<Starter>,
    pool: Option<(Arc<SlotPool>, u64)>,
    /// Attempts waiting for the pool, and how to stop their wait.
    waiting: Arc<Mutex<HashMap<AttemptKey, tokio::task::AbortHandle>>>,
}

/// What starting and reaping a process needs; shared with the tasks that
/// start attempts once the pool has room.
#[derive(Debug)]
struct Starter {
    name: String,
    /// This process's environment, under each task's own variables.
    env: spawn::BaseEnv,
    sink: Arc<dyn UpdateSink>,
    grace: Duration,
    running: Table,
}

#[derive(Debug)]
struct Running {
    pid: u32,
    cancelled: bool,
}

type Table = Arc<Mutex<HashMap<AttemptKey, Running>>>;

fn lock<T>(table: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Starter {
    /// Starts `job`'s process (holding `permit` until it ends); with
    /// `announce`, reports its handle first (it was waiting).
    fn start(
        &self,
        job: &Job,
        permit: Option<Permit>,
        announce: bool,
    ) -> Result<Handle, ExecutorError> {
        let key = job.key;
        let failed = |e: std::io::Error| {
            ExecutorError::new(format!(
                "failed to start /bin/sh for {} on executor `{}`: {e}",
                job.name, self.name
            ))
        };
        let (out, err) = (Pipe::new().map_err(failed)?, Pipe::new().map_err(failed)?);
        let pid = spawn::spawn(&self.env, job, &out.task_end, &err.task_end).map_err(failed)?;
        // Our copies of the task's ends close here, so the captures see the
        // end of file when the task's group has gone.
        let logs = [(out, &job.stdout), (err, &job.stderr)]
            .map(|(pipe, path)| pipe.drain_into(path.clone()));
        let handle = process::handle(pid, process::start_time(pid));
        lock(&self.running).insert(
            key,
            Running {
                pid,
                cancelled: false,
            },
        );
        if announce {
            self.sink.send(Update {
                key,
                status: AttemptStatus::Submitted(handle.clone()),
            });
        }
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
            let logs = finish_logs(logs).await;
            drop(permit);
            let cancelled = lock(&table).remove(&key).is_some_and(|r| r.cancelled);
            let status = match (exit, logs) {
                (Err(e), _) => AttemptStatus::Error(format!("failed to wait for pid {pid}: {e}")),
                (Ok(exit), None) => process::status_of(exit, cancelled),
                (Ok(exit), Some(lost)) => match process::status_of(exit, cancelled) {
                    AttemptStatus::Cancelled => AttemptStatus::Cancelled,
                    _ => AttemptStatus::Error(lost),
                },
            };
            sink.send(Update { key, status });
        });
        Ok(handle)
    }
}

/// How long the logs of an ended task may take to reach their end of file:
/// only a process that left the task's group (`setsid`) can hold a pipe open
/// past the group's SIGKILL; its later output is still written, after the
/// task's end has been reported.
const LOG_LINGER: Duration = Duration::from_secs(1);

/// Waits (together at most [`LOG_LINGER`]) for both logs of an ended task;
/// why one is incomplete, if it is.
async fn finish_logs(logs: [std::io::Result<Draining>; 2]) -> Option<String> {
    let deadline = tokio::time::Instant::now() + LOG_LINGER;
    let mut lost = None;
    for log in logs {
        let result = match log {
            Ok(draining) => match tokio::time::timeout_at(deadline, draining).await {
                Ok(Ok(result)) => result.map_err(|e| e.to_string()),
                // Still draining (it goes on) or its task died: nothing to add.
                Ok(Err(_)) | Err(_) => Ok(()),
            },
            Err(e) => Err(format!("failed to capture its output: {e}")),
        };
        if let (Err(e), None) = (result, &lost) {
            lost = Some(e);
        }
    }
    lost
}

impl LocalExecutor {
    /// An executor named `name` (for messages) reporting into `sink`, giving
    /// cancelled tasks `grace` between SIGTERM and SIGKILL.
    pub fn new(name: &str, sink: Arc<dyn UpdateSink>, grace: Duration) -> Self {
        Self {
            starter: Arc::new(Starter {
                name: name.to_owned(),
                env: spawn::BaseEnv::capture(),
                sink,
                grace,
                running: Arc::default(),
            }),
            pool: None,
            waiting: Arc::default(),
        }
    }

    /// How many attempts are running now.
    pub fn running(&self) -> usize {
        lock(&self.starter.running).len()
    }

    fn signal_all(&self, signal: Signal, mark_cancelled: bool) {
        let mut table = lock(&self.starter.running);
        for entry in table.values_mut() {
            entry.cancelled |= mark_cancelled;
            process::signal_group(entry.pid, signal);
        }
    }

    async fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if lock(&self.starter.running).is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops waiting for the pool on behalf of `key`; whether it waited.
    fn stop_waiting(&self, key: AttemptKey) -> bool {
        let Some(wait) = lock(&self.waiting).remove(&key) else {
            return false;
        };
        wait.abort();
        self.starter.sink.send(Update {
            key,
            status: AttemptStatus::Cancelled,
        });
        true
    }
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        let Some((pool, owner)) = &self.pool else {
            return self.starter.start(&job, None, false);
        };
        if let Some(permit) = pool.try_acquire(job.resources.cpus) {
            return self.starter.start(&job, Some(permit), false);
        }
        // The machine is busy with other runs: wait for a turn.
        let key = job.key;
        self.starter.sink.send(Update {
            key,
            status: AttemptStatus::Queued,
        });
        let (pool, owner) = (Arc::clone(pool), *owner);
        let (starter, waiting) = (Arc::clone(&self.starter), Arc::clone(&self.waiting));
        // Held while the wait is recorded, so the task cannot start first.
        let mut table = lock(&self.waiting);
        let wait = tokio::spawn(async move {
            let permit = pool.acquire(owner, job.resources.cpus).await;
            // Under the lock, so that a cancel finds it waiting or running.
            let mut table = lock(&waiting);
            if table.remove(&key).is_none() {
                return;
            }
            if let Err(e) = starter.start(&job, Some(permit), true) {
                starter.sink.send(Update {
                    key,
                    status: AttemptStatus::Error(e.message),
                });
            }
            drop(table);
        });
        table.insert(key, wait.abort_handle());
        Ok(Handle(WAITING.to_owned()))
    }

    fn handles_must_be_durable(&self) -> bool {
        // `reattach` finds a run's tasks by their environment.
        false
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
        if self.stop_waiting(key) {
            return Ok(());
        }
        let pid = {
            let mut table = lock(&self.starter.running);
            let Some(entry) = table.get_mut(&key) else {
                return Ok(());
            };
            entry.cancelled = true;
            entry.pid
        };
        process::signal_group(pid, Signal::SIGTERM);
        let table = Arc::clone(&self.starter.running);
        let grace = self.starter.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if lock(&table).get(&key).is_some_and(|r| r.pid == pid) {
                process::signal_group(pid, Signal::SIGKILL);
            }
        });
        Ok(())
    }

    async fn shutdown(&self) {
        let waiting: Vec<AttemptKey> = lock(&self.waiting).keys().copied().collect();
        for key in waiting {
            self.stop_waiting(key);
        }
        self.signal_all(Signal::SIGTERM, true);
        if !self.wait_empty(self.starter.grace).await {
            self.signal_all(Signal::SIGKILL, true);
            if !self.wait_empty(Duration::from_secs(10)).await {
                tracing::warn!(
                    "{} task(s) of executor `{}` did not die after SIGKILL",
                    self.running(),
                    self.starter.name
                );
            }
        }
    }
}
