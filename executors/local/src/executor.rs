//! The local executor: hands attempts to its supervisor, follows their
//! ends, kills them, and takes back those of an earlier process.

use crate::link::{Link, SupervisorBinary};
use crate::pool::{Permit, SlotPool};
use crate::wire::{Exit, Launch, Reply, Request};
use crate::{adopt, process};
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use twinflow_core::{
    AttemptKey, AttemptStatus, Executor, ExecutorError, ExecutorFactory, ExecutorSpec, Handle, Job,
    TaskId, Update, UpdateSink,
};

/// Builds [`LocalExecutor`]s.
#[derive(Debug, Clone)]
pub struct LocalFactory {
    /// How long a cancelled task gets between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Cores shared by every executor this factory builds (the daemon's
    /// runs); `None`: each run keeps only to its own `slots`.
    pub pool: Option<Arc<SlotPool>>,
    /// The supervisor program; `None`: the supervisor runs inside this
    /// process (see the crate documentation for what that gives up).
    pub supervisor: Option<SupervisorBinary>,
}

impl Default for LocalFactory {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(5),
            pool: None,
            supervisor: None,
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

    /// Executors whose supervisor is `binary`, a process of its own.
    #[must_use]
    pub fn with_supervisor(mut self, binary: SupervisorBinary) -> Self {
        self.supervisor = Some(binary);
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
        if let Some(binary) = &self.supervisor {
            exec = exec.with_supervisor(binary.clone());
        }
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
    inner: Arc<Inner>,
    pool: Option<(Arc<SlotPool>, u64)>,
    /// Attempts waiting for the pool, and how to stop their wait.
    waiting: Arc<Mutex<HashMap<AttemptKey, tokio::task::AbortHandle>>>,
}

/// What the executor and the tasks that start waiting attempts share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) name: String,
    pub(crate) sink: Arc<dyn UpdateSink>,
    grace: Duration,
    binary: Option<SupervisorBinary>,
    link: Mutex<Option<Arc<Link>>>,
    pub(crate) table: Mutex<Table>,
}

/// Attempts handed to the supervisor, by key.
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// Sent, not yet started.
    starting: HashMap<AttemptKey, Starting>,
    /// Started (or adopted), not yet ended.
    pub(crate) running: HashMap<AttemptKey, Running>,
}

#[derive(Debug)]
struct Starting {
    reply: oneshot::Sender<Result<Handle, String>>,
    permit: Option<Permit>,
    announce: bool,
}

#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) pid: u32,
    pub(crate) cancelled: bool,
    _permit: Option<Permit>,
    /// Started by an earlier process's supervisor: signalled directly.
    pub(crate) adopted: bool,
}

impl Running {
    pub(crate) fn adopted(pid: u32) -> Self {
        Self {
            pid,
            cancelled: false,
            _permit: None,
            adopted: true,
        }
    }
}

pub(crate) fn lock<T>(table: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What an ended attempt's exit means for the runtime.
pub(crate) fn status_of(exit: Exit, log: Option<String>, cancelled: bool) -> AttemptStatus {
    if cancelled {
        return AttemptStatus::Cancelled;
    }
    if let Some(lost) = log {
        return AttemptStatus::Error(lost);
    }
    match exit {
        Exit::Code(code) => AttemptStatus::Exited(code),
        Exit::Signal(signal) => AttemptStatus::Signalled(format!(
            "killed by {}",
            Signal::try_from(signal)
                .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
        )),
        Exit::WaitFailed(why) => AttemptStatus::Error(why),
    }
}

fn key_of(key: (u32, u32)) -> AttemptKey {
    AttemptKey {
        task: TaskId(key.0),
        attempt: key.1,
    }
}

impl Inner {
    /// The supervisor, started on first use (its records go under the run
    /// directory `job` names, in `local/<executor>/`).
    fn link(self: &Arc<Self>, job: &Job) -> Result<Arc<Link>, String> {
        let mut link = lock(&self.link);
        if let Some(link) = &*link {
            return Ok(Arc::clone(link));
        }
        let records = job
            .env
            .iter()
            .find(|(k, _)| k == "TWINFLOW_RUN_DIR")
            .map(|(_, dir)| adopt::records_dir(std::path::Path::new(dir), &self.name));
        // Weak: an executor dropped without `shutdown` closes the
        // supervisor's pipe, as a killed process would.
        let (on_reply, on_gone) = (Arc::downgrade(self), Arc::downgrade(self));
        let started = Arc::new(
            Link::start(
                self.binary.as_ref(),
                records,
                move |reply| {
                    if let Some(inner) = on_reply.upgrade() {
                        inner.on_reply(reply);
                    }
                },
                move || {
                    if let Some(inner) = on_gone.upgrade() {
                        inner.on_gone();
                    }
                },
            )
            .map_err(|e| format!("failed to start its supervisor: {e}"))?,
        );
        *link = Some(Arc::clone(&started));
        Ok(started)
    }

    fn on_reply(&self, reply: Reply) {
        match reply {
            Reply::Started { key, pid, start } => {
                let key = key_of(key);
                let handle = process::handle(pid, Some(start));
                let Some(starting) = lock(&self.table).starting.remove(&key) else {
                    return;
                };
                lock(&self.table).running.insert(
                    key,
                    Running {
                        pid,
                        cancelled: false,
                        _permit: starting.permit,
                        adopted: false,
                    },
                );
                if starting.announce {
                    self.sink.send(Update {
                        key,
                        status: AttemptStatus::Submitted(handle.clone()),
                    });
                }
                self.sink.send(Update {
                    key,
                    status: AttemptStatus::Running,
                });
                let _ = starting.reply.send(Ok(handle));
            }
            Reply::Failed { key, message } => {
                if let Some(starting) = lock(&self.table).starting.remove(&key_of(key)) {
                    let _ = starting.reply.send(Err(message));
                }
            }
            Reply::Exited { key, exit, log } => {
                let key = key_of(key);
                let Some(running) = lock(&self.table).running.remove(&key) else {
                    return;
                };
                let status = status_of(exit, log, running.cancelled);
                self.sink.send(Update { key, status });
            }
        }
    }

    /// The supervisor ended: what it had in hand is lost.
    fn on_gone(&self) {
        let pid = lock(&self.link).take().map_or(0, |l| l.pid);
        let mut table = lock(&self.table);
        for (_, starting) in table.starting.drain() {
            let _ = starting
                .reply
                .send(Err(format!("its supervisor (pid {pid}) ended")));
        }
        let gone: Vec<AttemptKey> = table
            .running
            .iter()
            .filter(|(_, r)| !r.adopted)
            .map(|(k, _)| *k)
            .collect();
        for key in gone {
            table.running.remove(&key);
            self.sink.send(Update {
                key,
                status: AttemptStatus::Error(format!(
                    "its supervisor (pid {pid}) ended before it did"
                )),
            });
        }
    }

    /// Hands jobs to the supervisor in one write; a receiver of each one's
    /// handle (or why it did not start).
    fn send(
        self: &Arc<Self>,
        jobs: Vec<(Job, Option<Permit>, bool)>,
    ) -> Vec<(String, oneshot::Receiver<Result<Handle, String>>)> {
        let mut out = Vec::with_capacity(jobs.len());
        let Some(first) = jobs.first() else {
            return out;
        };
        let link = self.link(&first.0);
        let mut requests = Vec::with_capacity(jobs.len());
        {
            let mut table = lock(&self.table);
            for (job, permit, announce) in jobs {
                let (tx, rx) = oneshot::channel();
                out.push((job.name.clone(), rx));
                if let Err(e) = &link {
                    let _ = tx.send(Err(e.clone()));
                    continue;
                }
                table.starting.insert(
                    job.key,
                    Starting {
                        reply: tx,
                        permit,
                        announce,
                    },
                );
                requests.push(Request::Spawn(Launch {
                    key: (job.key.task.0, job.key.attempt),
                    script: job.script,
                    env: job.env,
                    workdir: job.workdir,
                    stdout: job.stdout,
                    stderr: job.stderr,
                }));
            }
        }
        if let Ok(link) = &link
            && let Err(e) = link.send(&requests)
        {
            let mut table = lock(&self.table);
            for r in &requests {
                if let Request::Spawn(l) = r
                    && let Some(starting) = table.starting.remove(&key_of(l.key))
                {
                    let _ = starting
                        .reply
                        .send(Err(format!("failed to reach its supervisor: {e}")));
                }
            }
        }
        out
    }

    fn failed(&self, name: &str, why: &str) -> ExecutorError {
        ExecutorError::new(format!(
            "failed to start /bin/sh for {name} on executor `{}`: {why}",
            self.name
        ))
    }

    async fn started(
        &self,
        (name, rx): (String, oneshot::Receiver<Result<Handle, String>>),
    ) -> Result<Handle, ExecutorError> {
        match rx.await {
            Ok(Ok(handle)) => Ok(handle),
            Ok(Err(why)) => Err(self.failed(&name, &why)),
            Err(_) => Err(self.failed(&name, "its supervisor gave no answer")),
        }
    }

    /// Starts one job (holding `permit` until it ends); with `announce`,
    /// reports its handle first (it was waiting).
    async fn start(
        self: &Arc<Self>,
        job: Job,
        permit: Option<Permit>,
        announce: bool,
    ) -> Result<Handle, ExecutorError> {
        let mut sent = self.send(vec![(job, permit, announce)]);
        match sent.pop() {
            Some(one) => self.started(one).await,
            None => Err(ExecutorError::new("nothing was sent")),
        }
    }

    /// Sends `signal` to an attempt: through the supervisor (which also
    /// signals its orphans), or straight to its group if it was adopted.
    pub(crate) fn signal(&self, key: AttemptKey, signal: Signal) {
        let Some((pid, adopted)) = lock(&self.table)
            .running
            .get(&key)
            .map(|r| (r.pid, r.adopted))
        else {
            return;
        };
        let link = lock(&self.link).clone();
        match link {
            Some(link) if !adopted => {
                let request = Request::Signal {
                    key: (key.task.0, key.attempt),
                    signal: signal as i32,
                };
                if link.send(&[request]).is_err() {
                    process::signal_group(pid, signal);
                }
            }
            _ => process::signal_group(pid, signal),
        }
    }
}

impl LocalExecutor {
    /// An executor named `name` (for messages) reporting into `sink`, giving
    /// cancelled tasks `grace` between SIGTERM and SIGKILL, with its
    /// supervisor inside this process (see [`LocalExecutor::with_supervisor`]).
    pub fn new(name: &str, sink: Arc<dyn UpdateSink>, grace: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                sink,
                grace,
                binary: None,
                link: Mutex::new(None),
                table: Mutex::default(),
            }),
            pool: None,
            waiting: Arc::default(),
        }
    }

    /// The same, with `binary` as its supervisor process.
    #[must_use]
    pub fn with_supervisor(self, binary: SupervisorBinary) -> Self {
        let inner = Arc::new(Inner {
            name: self.inner.name.clone(),
            sink: Arc::clone(&self.inner.sink),
            grace: self.inner.grace,
            binary: Some(binary),
            link: Mutex::new(None),
            table: Mutex::default(),
        });
        Self { inner, ..self }
    }

    /// How many attempts are running now.
    pub fn running(&self) -> usize {
        lock(&self.inner.table).running.len()
    }

    fn signal_all(&self, signal: Signal, mark_cancelled: bool) {
        let keys: Vec<AttemptKey> = {
            let mut table = lock(&self.inner.table);
            for entry in table.running.values_mut() {
                entry.cancelled |= mark_cancelled;
            }
            table.running.keys().copied().collect()
        };
        for key in keys {
            self.inner.signal(key, signal);
        }
    }

    async fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if lock(&self.inner.table).running.is_empty() {
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
        self.inner.sink.send(Update {
            key,
            status: AttemptStatus::Cancelled,
        });
        true
    }

    /// Waits for the pool's cores on behalf of `job`, then starts it.
    fn wait_for_pool(&self, job: Job, pool: &Arc<SlotPool>, owner: u64) -> Handle {
        let key = job.key;
        self.inner.sink.send(Update {
            key,
            status: AttemptStatus::Queued,
        });
        let (pool, inner, waiting) = (
            Arc::clone(pool),
            Arc::clone(&self.inner),
            Arc::clone(&self.waiting),
        );
        // Held while the wait is recorded, so the task cannot start first.
        let mut table = lock(&self.waiting);
        let wait = tokio::spawn(async move {
            let permit = pool.acquire(owner, job.resources.cpus).await;
            // Under the lock, so that a cancel finds it waiting or starting.
            let sent = {
                let mut table = lock(&waiting);
                if table.remove(&key).is_none() {
                    return;
                }
                let sent = inner.send(vec![(job, Some(permit), true)]);
                drop(table);
                sent
            };
            for one in sent {
                if let Err(e) = inner.started(one).await {
                    inner.sink.send(Update {
                        key,
                        status: AttemptStatus::Error(e.message),
                    });
                }
            }
        });
        table.insert(key, wait.abort_handle());
        Handle(WAITING.to_owned())
    }
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        let Some((pool, owner)) = &self.pool else {
            return self.inner.start(job, None, false).await;
        };
        if let Some(permit) = pool.try_acquire(job.resources.cpus) {
            return self.inner.start(job, Some(permit), false).await;
        }
        // The machine is busy with other runs: wait for a turn.
        Ok(self.wait_for_pool(job, pool, *owner))
    }

    async fn submit_batch(&self, jobs: Vec<Job>) -> Vec<Result<Handle, ExecutorError>> {
        // Those that can start now go to the supervisor in one write; their
        // handles are awaited after.
        let mut now = Vec::new();
        let mut results: Vec<Option<Result<Handle, ExecutorError>>> = Vec::new();
        for job in jobs {
            match &self.pool {
                None => now.push((results.len(), job, None)),
                Some((pool, owner)) => match pool.try_acquire(job.resources.cpus) {
                    Some(permit) => now.push((results.len(), job, Some(permit))),
                    None => {
                        results.push(Some(Ok(self.wait_for_pool(job, pool, *owner))));
                        continue;
                    }
                },
            }
            results.push(None);
        }
        let slots: Vec<usize> = now.iter().map(|(i, _, _)| *i).collect();
        let sent = self.inner.send(
            now.into_iter()
                .map(|(_, job, permit)| (job, permit, false))
                .collect(),
        );
        for (slot, one) in slots.into_iter().zip(sent) {
            results[slot] = Some(self.inner.started(one).await);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ExecutorError::new("the attempt was not sent"))))
            .collect()
    }

    fn handles_must_be_durable(&self) -> bool {
        // `reattach` finds a run's tasks by their supervisor's records and
        // their environment.
        false
    }

    async fn reattach(
        &self,
        run: twinflow_core::RunRef<'_>,
        attempts: Vec<(AttemptKey, Handle)>,
    ) -> Result<Vec<AttemptKey>, ExecutorError> {
        Ok(adopt::reattach(&self.inner, run, attempts))
    }

    async fn cancel(&self, key: AttemptKey, _handle: &Handle) -> Result<(), ExecutorError> {
        if self.stop_waiting(key) {
            return Ok(());
        }
        let pid = {
            let mut table = lock(&self.inner.table);
            let Some(entry) = table.running.get_mut(&key) else {
                return Ok(());
            };
            entry.cancelled = true;
            entry.pid
        };
        self.inner.signal(key, Signal::SIGTERM);
        let inner = Arc::clone(&self.inner);
        let grace = self.inner.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let still = lock(&inner.table)
                .running
                .get(&key)
                .is_some_and(|r| r.pid == pid);
            if still {
                inner.signal(key, Signal::SIGKILL);
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
        if !self.wait_empty(self.inner.grace).await {
            self.signal_all(Signal::SIGKILL, true);
            if !self.wait_empty(Duration::from_secs(10)).await {
                tracing::warn!(
                    "{} task(s) of executor `{}` did not die after SIGKILL",
                    self.running(),
                    self.inner.name
                );
            }
        }
        // Done with the supervisor: it exits once its tasks are gone.
        let link = lock(&self.inner.link).take();
        if let Some(link) = link {
            let _ = link.send(&[Request::Goodbye]);
        }
    }
}
