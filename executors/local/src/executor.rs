//! The local executor: hands attempts to its supervisor, follows their
//! ends, kills them, and takes back those of an earlier process.

mod adopt;
mod containers;
mod shape;

use crate::link::{Link, SupervisorBinary};
use crate::pool::{Permit, SlotPool};
use crate::process;
use crate::wire::{Exit, Launch, Reply, Request};
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
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
        let mut exec = LocalExecutor::new(&spec.name, sink, self.grace)
            .with_prologue(spec.prologue.clone())
            .with_container_runtime(spec.container_runtime);
        if let twinflow_core::BackendConfig::Local(local) = &spec.backend {
            exec = exec.with_gpus(local.gpus.clone(), local.gpu_vendor);
        }
        if let Some(binary) = &self.supervisor {
            exec = exec.with_supervisor(binary.clone());
        }
        if let Some(pool) = &self.pool {
            exec.pool = Some((Arc::clone(pool), pool.owner()));
        } else if let twinflow_core::BackendConfig::Local(local) = &spec.backend
            && let Some(slots) = local.slots
        {
            // The runtime hands over more attempts than the cores (see
            // `Executor::holds_ahead`): the supervisor keeps to them.
            exec = exec.with_slots(slots);
        }
        Ok(Arc::new(exec))
    }
}

/// The handle of an attempt waiting for cores of the shared pool (it has
/// no process yet; [`AttemptStatus::Submitted`] gives the real one).
const WAITING: &str = "local-waiting";

/// The handle `submit` returns: the attempt is with its supervisor, which
/// starts it while the runtime goes on; [`AttemptStatus::Submitted`] gives
/// its `pid:START` handle once it runs.
const STARTING: &str = "local-starting";

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
    /// The cores its supervisor's tasks may take together (0: no limit).
    slots: AtomicU32,
    /// Its prologue, GPUs and containers.
    pub(crate) settings: Mutex<containers::Settings>,
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
    /// The job's name, for a failure to start.
    name: String,
    /// Its cores.
    cost: u32,
    /// Its GPUs.
    gpus: u32,
    /// Held in the supervisor behind cores or GPUs when it was sent.
    queued: bool,
    permit: Option<Permit>,
    /// Cancelled before its supervisor started it (the signal follows the
    /// start request down the same pipe).
    cancelled: bool,
}

#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) pid: u32,
    /// The job's name, for a shell that fails its exec after its start
    /// was reported (empty when adopted).
    name: String,
    cost: u32,
    gpus: u32,
    pub(crate) cancelled: bool,
    _permit: Option<Permit>,
    /// Started by an earlier process's supervisor: signalled directly.
    pub(crate) adopted: bool,
    /// The podman or docker container of an adopted attempt, stopped by
    /// name when it is signalled: (program, name).
    pub(crate) container: Option<(String, String)>,
    /// The GPU devices of an adopted attempt (its supervisor hands out
    /// those of the others).
    devices: Vec<u32>,
}

impl Running {
    /// An earlier supervisor's attempt, holding `cost` cores and the GPU
    /// `devices` (as its record says) until it ends.
    pub(crate) fn adopted(pid: u32, cost: u32, devices: Vec<u32>) -> Self {
        Self {
            pid,
            name: String::new(),
            cost,
            gpus: u32::try_from(devices.len()).unwrap_or(u32::MAX),
            cancelled: false,
            _permit: None,
            adopted: true,
            container: None,
            devices,
        }
    }

    /// What a new supervisor must not hand out while it runs, if adopted.
    fn hold(&self, key: AttemptKey) -> Option<Request> {
        self.adopted.then(|| Request::Hold {
            key: (key.task.0, key.attempt),
            cost: self.cost,
            devices: self.devices.clone(),
        })
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
        Exit::NotStarted(why) => AttemptStatus::Error(format!("failed to start /bin/sh: {why}")),
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
        // Attempts of an earlier supervisor still running: their cores and
        // GPUs are not the new one's to hand out (released as each ends,
        // see `adopt::watch`; under the link's lock, so a release follows).
        let holds: Vec<Request> = lock(&self.table)
            .running
            .iter()
            .filter_map(|(key, r)| r.hold(*key))
            .collect();
        if !holds.is_empty() {
            started
                .send(&holds)
                .map_err(|e| format!("failed to reach its supervisor: {e}"))?;
        }
        *link = Some(Arc::clone(&started));
        Ok(started)
    }

    fn on_reply(&self, reply: Reply) {
        match reply {
            Reply::Started { key, pid, start } => {
                let key = key_of(key);
                {
                    let mut table = lock(&self.table);
                    let Some(starting) = table.starting.remove(&key) else {
                        return;
                    };
                    table.running.insert(
                        key,
                        Running {
                            pid,
                            name: starting.name,
                            cost: starting.cost,
                            gpus: starting.gpus,
                            cancelled: starting.cancelled,
                            _permit: starting.permit,
                            adopted: false,
                            container: None,
                            devices: Vec::new(),
                        },
                    );
                }
                self.sink.send(Update {
                    key,
                    status: AttemptStatus::Submitted(process::handle(pid, Some(start))),
                });
                self.sink.send(Update {
                    key,
                    status: AttemptStatus::Running,
                });
            }
            Reply::Failed { key, message } => {
                let key = key_of(key);
                let Some(starting) = lock(&self.table).starting.remove(&key) else {
                    return;
                };
                let status = if starting.cancelled {
                    AttemptStatus::Cancelled
                } else {
                    AttemptStatus::Error(self.failed(&starting.name, &message).message)
                };
                self.sink.send(Update { key, status });
            }
            Reply::Exited { key, exit, log } => {
                let key = key_of(key);
                let Some(running) = lock(&self.table).running.remove(&key) else {
                    return;
                };
                let status = match exit {
                    Exit::NotStarted(why) if !running.cancelled => {
                        AttemptStatus::Error(self.failed(&running.name, &why).message)
                    }
                    exit => status_of(exit, log, running.cancelled),
                };
                self.sink.send(Update { key, status });
            }
        }
    }

    /// The supervisor ended: what it had in hand is lost.
    fn on_gone(&self) {
        let pid = lock(&self.link).take().map_or(0, |l| l.pid);
        let mut table = lock(&self.table);
        for (key, starting) in table.starting.drain() {
            let why = format!("its supervisor (pid {pid}) ended");
            self.sink.send(Update {
                key,
                status: AttemptStatus::Error(self.failed(&starting.name, &why).message),
            });
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

    /// Hands jobs to the supervisor in one write and returns without
    /// waiting for it to start them: each one's start (its `pid:START`
    /// handle, then `Running`) or failure to start reaches the sink. An
    /// error here (the supervisor cannot be started or reached) means none
    /// of them was handed over.
    fn send(self: &Arc<Self>, jobs: Vec<(Job, Option<Permit>)>) -> Result<(), String> {
        let Some(first) = jobs.first() else {
            return Ok(());
        };
        let link = self.link(&first.0)?;
        let mut keys = Vec::with_capacity(jobs.len());
        let mut requests = Vec::with_capacity(jobs.len());
        // Under the table's lock until written, so that a cancel finds the
        // attempt only once its start request is in the pipe, ahead of the
        // signal.
        let mut table = lock(&self.table);
        let slots = self.slots.load(Ordering::Relaxed);
        let mut in_use: u32 = table.starting.values().map(|s| s.cost).sum::<u32>()
            + table.running.values().map(|r| r.cost).sum::<u32>();
        let mut gpus_in_use: u32 = table.starting.values().map(|s| s.gpus).sum::<u32>()
            + table.running.values().map(|r| r.gpus).sum::<u32>();
        let gpus_have = u32::try_from(lock(&self.settings).gpus.len()).unwrap_or(u32::MAX);
        // The supervisor starts attempts in order: behind a held one, all are.
        let mut blocked = table.starting.values().any(|s| s.queued);
        let mut queued = Vec::new();
        for (job, permit) in jobs {
            keys.push(job.key);
            let cost = shape::slots_of(&job.resources).clamp(1, slots.max(1));
            let gpus = job.resources.gpus;
            // Beyond the cores or GPUs: it waits in the supervisor (its
            // timeout clock stopped) until one of these ends.
            blocked |= (slots > 0 && in_use > 0 && in_use + cost > slots)
                || (gpus > 0 && gpus_in_use + gpus > gpus_have);
            if blocked {
                queued.push(job.key);
            }
            in_use += cost;
            gpus_in_use += gpus;
            let extra = containers::extra(self, &job);
            table.starting.insert(
                job.key,
                Starting {
                    name: job.name,
                    cost,
                    gpus,
                    queued: blocked,
                    permit,
                    cancelled: false,
                },
            );
            requests.push(Request::Spawn(Launch {
                key: (job.key.task.0, job.key.attempt),
                cost,
                slots,
                script: job.script,
                env: job.env,
                workdir: job.workdir,
                stdout: job.stdout,
                stderr: job.stderr,
                extra,
            }));
        }
        if let Err(e) = link.send(&requests) {
            for key in keys {
                table.starting.remove(&key);
            }
            return Err(format!("failed to reach its supervisor: {e}"));
        }
        drop(table);
        for key in queued {
            self.sink.send(Update {
                key,
                status: AttemptStatus::Queued,
            });
        }
        Ok(())
    }

    fn failed(&self, name: &str, why: &str) -> ExecutorError {
        ExecutorError::new(format!(
            "failed to start /bin/sh for {name} on executor `{}`: {why}",
            self.name
        ))
    }

    /// Sends `signal` to an attempt: through the supervisor (which also
    /// signals its orphans), or straight to its group if it was adopted.
    pub(crate) fn signal(&self, key: AttemptKey, signal: Signal) {
        // The pid, unless its supervisor has not started it yet.
        let (pid, adopted, container) = {
            let table = lock(&self.table);
            match table.running.get(&key) {
                Some(r) => (Some(r.pid), r.adopted, r.container.clone()),
                None if table.starting.contains_key(&key) => (None, false, None),
                None => return,
            }
        };
        if let Some((runtime, name)) = container {
            tokio::spawn(async move { crate::attempt::stop(&runtime, &name, signal).await });
        }
        let link = lock(&self.link).clone();
        match (link, pid) {
            (Some(link), _) if !adopted => {
                let request = Request::Signal {
                    key: (key.task.0, key.attempt),
                    signal: signal as i32,
                };
                if let (Err(_), Some(pid)) = (link.send(&[request]), pid) {
                    process::signal_group(pid, signal);
                }
            }
            (_, Some(pid)) => process::signal_group(pid, signal),
            (_, None) => {}
        }
    }

    /// Whether `key` is with the supervisor or running.
    fn holds(&self, key: AttemptKey) -> bool {
        let table = lock(&self.table);
        table.running.contains_key(&key) || table.starting.contains_key(&key)
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
                slots: AtomicU32::new(0),
                settings: Mutex::default(),
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
            slots: AtomicU32::new(self.inner.slots.load(Ordering::Relaxed)),
            settings: Mutex::new(lock(&self.inner.settings).clone()),
        });
        Self { inner, ..self }
    }

    /// The same, running `prologue` (shell lines) on the host before each
    /// task, in the shell that then starts it (outside its container).
    #[must_use]
    pub fn with_prologue(self, prologue: Option<String>) -> Self {
        lock(&self.inner.settings).prologue = prologue;
        self
    }

    /// The same, handing out the host's GPU devices `ids` of `vendor`: an
    /// attempt asking for N gets N of them, never shared with another
    /// running attempt (one that finds too few free waits in the
    /// supervisor; one asking for more than there are is refused).
    #[must_use]
    pub fn with_gpus(self, ids: Vec<u32>, vendor: twinflow_core::GpuVendor) -> Self {
        {
            let mut settings = lock(&self.inner.settings);
            settings.gpus = ids;
            settings.gpu_vendor = vendor;
        }
        self
    }

    /// The same, with `runtime` for steps whose `container:` names none.
    #[must_use]
    pub fn with_container_runtime(self, runtime: Option<twinflow_core::ContainerRuntime>) -> Self {
        lock(&self.inner.settings).container_runtime = runtime;
        self
    }

    /// The same, taking at most `slots` cores at once however many
    /// attempts it is handed: those beyond wait in its supervisor
    /// (`Queued`) and start there the moment enough of the others end.
    #[must_use]
    pub fn with_slots(self, slots: u32) -> Self {
        self.inner.slots.store(slots, Ordering::Relaxed);
        self
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
            for entry in table.starting.values_mut() {
                entry.cancelled |= mark_cancelled;
            }
            table
                .running
                .keys()
                .chain(table.starting.keys())
                .copied()
                .collect()
        };
        for key in keys {
            self.inner.signal(key, signal);
        }
    }

    async fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.running() == 0 && lock(&self.inner.table).starting.is_empty() {
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
        let stopped = {
            let mut table = lock(&self.waiting);
            let Some(wait) = table.remove(&key) else {
                return false;
            };
            wait.abort();
            // The members of a group instance wait as one: none starts alone.
            let mut stopped = vec![key];
            table.retain(|other, w| {
                let same = w.id() == wait.id();
                if same {
                    stopped.push(*other);
                }
                !same
            });
            stopped
        };
        for key in stopped {
            self.inner.sink.send(Update {
                key,
                status: AttemptStatus::Cancelled,
            });
        }
        true
    }

    /// Waits for the pool's cores on behalf of `jobs` (one task, or the
    /// members of one group instance, which wait for all their cores at
    /// once), then starts them together.
    fn wait_for_pool(&self, jobs: Vec<Job>, pool: &Arc<SlotPool>, owner: u64) -> Vec<Handle> {
        for job in &jobs {
            self.inner.sink.send(Update {
                key: job.key,
                status: AttemptStatus::Queued,
            });
        }
        let keys: Vec<AttemptKey> = jobs.iter().map(|j| j.key).collect();
        let (pool, inner, waiting) = (
            Arc::clone(pool),
            Arc::clone(&self.inner),
            Arc::clone(&self.waiting),
        );
        // Held while the wait is recorded, so the task cannot start first.
        let mut table = lock(&self.waiting);
        let wait = tokio::spawn(async move {
            let sizes: Vec<u32> = jobs.iter().map(|j| shape::slots_of(&j.resources)).collect();
            let permit = pool.acquire(owner, sizes.iter().sum()).await;
            // Under the lock, so that a cancel finds it waiting or starting.
            let mut table = lock(&waiting);
            let mut gone = false;
            for job in &jobs {
                gone |= table.remove(&job.key).is_none();
            }
            if gone {
                return;
            }
            let names: Vec<(AttemptKey, String)> =
                jobs.iter().map(|j| (j.key, j.name.clone())).collect();
            let permits = permit.split(&sizes);
            let batch = jobs
                .into_iter()
                .zip(permits.into_iter().map(Some))
                .collect();
            if let Err(why) = inner.send(batch) {
                for (key, name) in names {
                    inner.sink.send(Update {
                        key,
                        status: AttemptStatus::Error(inner.failed(&name, &why).message),
                    });
                }
            }
        });
        for &key in &keys {
            table.insert(key, wait.abort_handle());
        }
        keys.iter().map(|_| Handle(WAITING.to_owned())).collect()
    }
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    /// Returns once the supervisor has the job (handle `local-starting`),
    /// not once it runs: its `pid:START` handle and `Running` follow as
    /// updates, as does a failure to start it (a missing working
    /// directory), so the runtime goes on while the process starts.
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        let mut results = self.submit_batch(vec![job]).await;
        results
            .pop()
            .unwrap_or_else(|| Err(ExecutorError::new("the attempt was not sent")))
    }

    async fn submit_batch(&self, jobs: Vec<Job>) -> Vec<Result<Handle, ExecutorError>> {
        // Those that can start now go to the supervisor in one write.
        let mut now = Vec::with_capacity(jobs.len());
        let mut results = Vec::with_capacity(jobs.len());
        let mut checked = Vec::with_capacity(jobs.len());
        for job in jobs {
            let check = self
                .check_shape(&job)
                .and_then(|()| containers::check_gpus(&self.inner, &job));
            match check {
                Err(e) => results.push(Err(e)),
                Ok(()) => {
                    results.push(Ok(Handle(STARTING.to_owned())));
                    checked.push((results.len() - 1, job));
                }
            }
        }
        let mut checked = checked.into_iter().peekable();
        while let Some((i, job)) = checked.next() {
            let Some((pool, owner)) = &self.pool else {
                now.push((i, job, None));
                continue;
            };
            // The members of a group instance come one after another in
            // the batch; they take the pool's cores together or wait together.
            let group = job.group.clone();
            let mut unit = vec![(i, job)];
            if let Some(group) = group {
                while let Some(next) = checked
                    .next_if(|(_, j)| j.group.as_ref().is_some_and(|g| g.same_instance(&group)))
                {
                    unit.push(next);
                }
            }
            let sizes: Vec<u32> = unit
                .iter()
                .map(|(_, j)| shape::slots_of(&j.resources))
                .collect();
            match pool.try_acquire(sizes.iter().sum()) {
                Some(permit) => {
                    for ((i, job), permit) in unit.into_iter().zip(permit.split(&sizes)) {
                        now.push((i, job, Some(permit)));
                    }
                }
                None => {
                    // The machine is busy with other runs: wait for a turn.
                    let (at, unit): (Vec<usize>, Vec<Job>) = unit.into_iter().unzip();
                    let handles = self.wait_for_pool(unit, pool, *owner);
                    for (i, handle) in at.into_iter().zip(handles) {
                        results[i] = Ok(handle);
                    }
                }
            }
        }
        let names: Vec<(usize, String)> =
            now.iter().map(|(i, j, _)| (*i, j.name.clone())).collect();
        let sent = self.inner.send(
            now.into_iter()
                .map(|(_, job, permit)| (job, permit))
                .collect(),
        );
        if let Err(why) = sent {
            for (i, name) in names {
                results[i] = Err(self.inner.failed(&name, &why));
            }
        }
        results
    }

    fn holds_ahead(&self) -> u32 {
        // Its supervisor keeps to `slots` and starts the next held attempt
        // as one ends; with a shared pool the pool decides instead.
        match self.pool {
            None => self.inner.slots.load(Ordering::Relaxed),
            Some(_) => 0,
        }
    }

    fn shape_refusal(&self, step: &twinflow_core::StepSpec) -> Option<String> {
        let runtime = lock(&self.inner.settings).container_runtime;
        shape::step_refusal(step, self.shape_context(runtime))
    }

    fn runs_prologue(&self) -> bool {
        // The supervisor runs it in the shell that then starts the task.
        true
    }

    async fn resolve_image(
        &self,
        container: &twinflow_core::ContainerSpec,
        steps: &[String],
    ) -> Result<twinflow_core::ResolvedImage, ExecutorError> {
        containers::resolve(&self.inner, container, steps).await
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
        {
            let mut table = lock(&self.inner.table);
            if let Some(entry) = table.running.get_mut(&key) {
                entry.cancelled = true;
            } else if let Some(entry) = table.starting.get_mut(&key) {
                entry.cancelled = true;
            } else {
                return Ok(());
            }
        }
        self.inner.signal(key, Signal::SIGTERM);
        let inner = Arc::clone(&self.inner);
        let grace = self.inner.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // Keys are never reused: still held means the same attempt.
            if inner.holds(key) {
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
