//! The Slurm executor: turns the attempts the runtime hands over into as few
//! Slurm jobs as will do, keeps at most `max_jobs` of them in the queue, and
//! follows them through the factory's shared [`Monitor`].
//!
//! A batch of attempts ([`Executor::submit_batch`]) is grouped by step and
//! resources. A group goes out as
//!
//! - **packed jobs** when its step says `pack: N` (N > 1), or, without
//!   `pack:`, when its tasks have a time limit under a minute (then about
//!   ten minutes of work per job, 2 to 100 tasks): N tasks per job, run one
//!   after another (or side by side, when the allocation has the CPUs) by
//!   `twinflow worker` ([`crate::worker`]). This needs a `twinflow` binary
//!   the cluster runs ([`crate::install`]: the executor's `twinflow:`, the
//!   binary of [`SlurmFactory::with_worker`], or that one uploaded over
//!   SSH); without one there is no packing.
//! - **job arrays** otherwise, when it has more than one task: one element
//!   per task, in chunks of at most the site's `MaxArraySize`
//!   (`scontrol show config`), throttled to the executor's
//!   `array_throttle` elements running at once (`--array=0-K%N`);
//! - a plain job for a task on its own.
//!
//! Submitted attempts wait in the executor's queue (their handle says so:
//! `slurm-queued:...`) until none has come for 100 ms and the runtime is
//! preparing no more ([`Executor::more_coming`]), at most 10 s (full arrays
//! go out meanwhile), so that those that become ready together go out
//! together, and then as `max_jobs` allows: it counts Slurm jobs as
//! Slurm's own limits count them, a plain job, an array element and a
//! packed job one each. Once an attempt is in Slurm, the runtime stores its
//! real handle ([`AttemptStatus::Submitted`]); a failed `sbatch` fails the
//! attempts it carried ([`AttemptStatus::Error`]).
//!
//! Handles are `slurm:<job id or array element>:<status file>` and
//! `slurm-pack:<job id>:<status file>`, so a restarted runtime takes its
//! jobs back ([`Executor::reattach`]); a queued attempt had not reached
//! Slurm, and is not followed (the runtime submits it again).

use crate::cluster::{Cluster, LocalCluster};
use crate::group::{self, Member as GroupMember};
use crate::install::{Installs, Source, Worker};
use crate::monitor::{CancelBy, Member, Monitor, OnEnd};
use crate::parse::{self, JobId, JobRef};
use crate::remote::RemoteCluster;
use crate::script;
use crate::staging::{StageOutSink, Staging};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use twinflow_core::{
    AttemptKey, AttemptStatus, Executor, ExecutorError, ExecutorFactory, ExecutorSpec, Handle, Job,
    SlurmConfig, Update, UpdateSink,
};

/// Builds [`SlurmExecutor`]s; the executors it builds for one cluster share
/// one poller (one `squeue` per interval for all their runs).
#[derive(Debug)]
pub struct SlurmFactory {
    poll_interval: Duration,
    worker: Option<PathBuf>,
    monitors: Mutex<HashMap<String, Arc<Monitor>>>,
    installs: Arc<Installs>,
}

impl Default for SlurmFactory {
    fn default() -> Self {
        Self::new(Duration::from_secs(2))
    }
}

impl SlurmFactory {
    /// A factory whose pollers start at `poll_interval` between two
    /// `squeue` calls (backing off to 15 times that while nothing changes).
    pub fn new(poll_interval: Duration) -> Self {
        Self {
            poll_interval,
            worker: None,
            monitors: Mutex::default(),
            installs: Arc::default(),
        }
    }

    /// Packs tasks with this `twinflow` binary (`twinflow worker`): on the
    /// login node, the cluster's nodes must be able to run it at that path;
    /// over SSH it is uploaded to the cluster once (docs/slurm.md). An
    /// executor's `twinflow:` comes first.
    #[must_use]
    pub fn with_worker(mut self, twinflow: PathBuf) -> Self {
        self.worker = Some(twinflow);
        self
    }

    fn monitor(&self, cluster: &str, make: impl FnOnce() -> Arc<dyn Cluster>) -> Arc<Monitor> {
        let mut monitors = lock(&self.monitors);
        Arc::clone(
            monitors
                .entry(cluster.to_owned())
                .or_insert_with(|| Arc::new(Monitor::new(make(), self.poll_interval))),
        )
    }
}

impl ExecutorFactory for SlurmFactory {
    fn create(
        &self,
        spec: &ExecutorSpec,
        sink: Arc<dyn UpdateSink>,
    ) -> Result<Arc<dyn Executor>, ExecutorError> {
        let twinflow_core::BackendConfig::Slurm(config) = &spec.backend else {
            return Err(ExecutorError::new(format!(
                "executor `{}` is not a Slurm executor",
                spec.name
            )));
        };
        let given = config.twinflow.as_ref().map(PathBuf::from);
        let (monitor, staging, source, cluster) = match &config.ssh {
            // On the login node, a `workdir` is where jobs run: the run
            // directory may be somewhere the compute nodes do not see.
            None => (
                self.monitor("local", || Arc::new(LocalCluster)),
                config.workdir.as_ref().map(|w| {
                    let here: Arc<dyn twinflow_ssh::Remote> =
                        Arc::new(twinflow_ssh::LocalHost::new());
                    Arc::new(Staging::new(here, PathBuf::from(w)))
                }),
                match (given, &self.worker) {
                    (Some(path), _) => Source::Given(path),
                    (None, Some(path)) => Source::Here(path.clone()),
                    (None, None) => Source::None,
                },
                "local".to_owned(),
            ),
            Some(target) => {
                let remote = twinflow_ssh::connect(target, twinflow_ssh::SshOptions::from_env());
                let staging = config
                    .workdir
                    .as_ref()
                    .map(|w| Arc::new(Staging::new(Arc::clone(&remote), PathBuf::from(w))));
                let monitor = self.monitor(&target.to_string(), || {
                    Arc::new(RemoteCluster::new(Arc::clone(&remote)))
                });
                // This binary's path means nothing on a cluster reached over
                // SSH: it is uploaded there, unless the executor names one.
                let source = match (given, &self.worker) {
                    (Some(path), _) => Source::Given(path),
                    (None, Some(local)) => Source::Upload {
                        local: local.clone(),
                        remote,
                    },
                    (None, None) => Source::None,
                };
                (monitor, staging, source, target.to_string())
            }
        };
        let member_sink: Arc<dyn UpdateSink> = match &staging {
            Some(staging) => Arc::new(StageOutSink {
                staging: Arc::clone(staging),
                inner: Arc::clone(&sink),
            }),
            None => Arc::clone(&sink),
        };
        Ok(Arc::new(SlurmExecutor {
            inner: Arc::new(Inner {
                name: spec.name.clone(),
                config: config.clone(),
                sink,
                member_sink,
                monitor,
                staging,
                worker: Worker {
                    source,
                    installs: Arc::clone(&self.installs),
                    cluster,
                },
                owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
                budget: Mutex::default(),
            }),
        }))
    }
}

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

impl SlurmExecutor {
    /// An executor on a cluster of the caller's (tests: a scripted one).
    #[cfg(test)]
    fn with_cluster(
        config: SlurmConfig,
        sink: Arc<dyn UpdateSink>,
        cluster: Arc<dyn Cluster>,
        poll: Duration,
    ) -> Self {
        Self::with_cluster_packing(config, sink, cluster, poll, Source::None)
    }

    /// The same, packing with the binary `source` gives.
    #[cfg(test)]
    fn with_cluster_packing(
        config: SlurmConfig,
        sink: Arc<dyn UpdateSink>,
        cluster: Arc<dyn Cluster>,
        poll: Duration,
        source: Source,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: "test".to_owned(),
                config,
                member_sink: Arc::clone(&sink),
                sink,
                monitor: Arc::new(Monitor::new(cluster, poll)),
                staging: None,
                worker: Worker {
                    source,
                    installs: Arc::default(),
                    cluster: "test".to_owned(),
                },
                owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
                budget: Mutex::default(),
            }),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs attempts as Slurm jobs; see the module documentation.
#[derive(Debug)]
pub struct SlurmExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    config: SlurmConfig,
    sink: Arc<dyn UpdateSink>,
    /// Where tracked tasks report: `sink`, or through stage-out.
    member_sink: Arc<dyn UpdateSink>,
    monitor: Arc<Monitor>,
    staging: Option<Arc<Staging>>,
    worker: Worker,
    owner: u64,
    budget: Mutex<Budget>,
}

#[derive(Debug, Default)]
struct Budget {
    /// Slurm jobs of this executor in the queue or running.
    live: u32,
    /// Attempts waiting for room under `max_jobs`.
    queue: VecDeque<Job>,
    /// Shut down: nothing more goes out.
    closed: bool,
    /// A drain is due at the end of the gathering window.
    gathering: bool,
    /// Attempts the runtime said it is still preparing for this executor.
    coming: usize,
    /// When the last attempt arrived.
    last_arrival: Option<tokio::time::Instant>,
    /// Attempts cancelled while their `sbatch` ran.
    cancelled: std::collections::HashSet<AttemptKey>,
    /// Attempts whose `sbatch` failed for now (controller out of reach).
    uncertain: Vec<Job>,
    /// The wait before looking at them again.
    retry_delay: Duration,
    /// Since when the cluster has been out of reach (`None`: it answers).
    outage_since: Option<tokio::time::Instant>,
}

/// First wait before sending again what a controller outage held back.
const RETRY_FIRST: Duration = Duration::from_secs(5);
/// Longest such wait.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How long submissions wait for a cluster that answered before and is out
/// of reach now (a controller restart, a dropped network) before the
/// attempts held back fail and go to the retry policy. A cluster that never
/// answered is not waited for: a wrong host or port is not an outage.
const OUTAGE_PATIENCE: Duration = Duration::from_secs(600);

/// Submitted attempts gather in the queue until none has come for this
/// long, ...
const GATHER_QUIET: Duration = Duration::from_millis(100);
/// ... and the runtime says no more are being prepared, or for this long in
/// all; full arrays (`MaxArraySize` tasks) go out meanwhile.
const GATHER_MAX: Duration = Duration::from_secs(10);

/// What one `sbatch` carries.
#[derive(Debug)]
enum Unit {
    Single(Job),
    Array(Vec<Job>),
    /// Run by `twinflow worker` from this binary.
    Pack(Vec<Job>, PathBuf),
}

impl Unit {
    /// Slurm jobs it makes.
    fn cost(&self) -> u32 {
        match self {
            Self::Single(_) | Self::Pack(..) => 1,
            Self::Array(jobs) => u32::try_from(jobs.len()).unwrap_or(u32::MAX),
        }
    }

    fn into_jobs(self) -> Vec<Job> {
        match self {
            Self::Single(job) => vec![job],
            Self::Array(jobs) | Self::Pack(jobs, _) => jobs,
        }
    }
}

/// Where an attempt is, from its handle.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// In the executor's queue, not in Slurm's (as far as the runtime
    /// knows: it may have been submitted since, see [`crate::recover`]).
    Queued { status: PathBuf },
    /// A job or array element; `packed` when it shares a packed job.
    Job {
        job: JobRef,
        status: PathBuf,
        packed: bool,
    },
}

fn handle_of(job: &JobRef, status: &Path, packed: bool) -> Handle {
    let kind = if packed { "slurm-pack" } else { "slurm" };
    Handle(format!("{kind}:{job}:{}", status.display()))
}

fn parse_handle(handle: &Handle) -> Option<Parsed> {
    if let Some(status) = handle.0.strip_prefix("slurm-queued:") {
        return Some(Parsed::Queued {
            status: PathBuf::from(status),
        });
    }
    let (packed, rest) = match handle.0.strip_prefix("slurm-pack:") {
        Some(rest) => (true, rest),
        None => (false, handle.0.strip_prefix("slurm:")?),
    };
    let (job, path) = rest.split_once(':')?;
    Some(Parsed::Job {
        job: JobRef::parse(job)?,
        status: PathBuf::from(path),
        packed,
    })
}

/// The files of an attempt, beside its standard output.
fn status_file(job: &Job) -> PathBuf {
    job.stdout.with_extension("status")
}

/// Tasks per packed job for `job` (1: no packing).
fn pack_size(job: &Job, can_pack: bool) -> usize {
    if !can_pack {
        return 1;
    }
    match (job.pack, job.resources.time_seconds) {
        (Some(n), _) => n.max(1) as usize,
        (None, Some(t)) if t < 60 => (600 / t.max(1)).clamp(2, 100) as usize,
        _ => 1,
    }
}

/// Groups `jobs` (in order of first appearance) into submissions; packs
/// run `worker` (none: no packing).
fn units(jobs: Vec<Job>, max_array: usize, worker: Option<&Path>) -> Vec<Unit> {
    let mut groups: Vec<(usize, Vec<Job>)> = Vec::new();
    for job in jobs {
        let size = pack_size(&job, worker.is_some());
        match groups
            .iter_mut()
            .find(|(s, g)| *s == size && g[0].step == job.step && g[0].resources == job.resources)
        {
            Some((_, g)) => g.push(job),
            None => groups.push((size, vec![job])),
        }
    }
    let mut units = Vec::new();
    for (size, jobs) in groups {
        let chunk = if size > 1 { size } else { max_array.max(1) };
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let mut part: Vec<Job> = jobs.by_ref().take(chunk).collect();
            units.push(match part.pop() {
                Some(job) if part.is_empty() => Unit::Single(job),
                Some(job) => {
                    part.push(job);
                    match worker {
                        Some(worker) if size > 1 => Unit::Pack(part, worker.to_path_buf()),
                        _ => Unit::Array(part),
                    }
                }
                None => continue,
            });
        }
    }
    units
}

impl Inner {
    /// The `twinflow` binary for packing `jobs` (`None`: no packing, or no
    /// job of them would be packed); see [`crate::install`].
    async fn packing(&self, jobs: &[Job]) -> Result<Option<PathBuf>, ExecutorError> {
        let Some(first) = jobs.iter().find(|j| pack_size(j, true) > 1) else {
            return Ok(None);
        };
        // The directory that holds the run directories on the cluster.
        let runs = match &self.staging {
            Some(staging) => Some(staging.root().to_path_buf()),
            None => first
                .env
                .iter()
                .find(|(k, _)| k == "TWINFLOW_RUN_DIR")
                .and_then(|(_, dir)| Path::new(dir).parent().map(Path::to_path_buf)),
        };
        let cluster = self.monitor.cluster();
        self.worker.path(cluster.as_ref(), runs.as_deref()).await
    }

    async fn max_array(&self) -> u32 {
        self.monitor.site().await.max_array
    }

    /// Splits `jobs` into what goes out now (within `max_jobs`) and queues
    /// the rest; returns the units to submit, packs run by `worker`.
    async fn admit(&self, jobs: Vec<Job>, full_only: bool, worker: Option<&Path>) -> Vec<Unit> {
        let max_array = self.max_array().await.max(1) as usize;
        let mut budget = lock(&self.budget);
        if budget.closed {
            return Vec::new();
        }
        let mut free = self
            .config
            .max_jobs
            .map_or(u32::MAX, |m| m.max(1).saturating_sub(budget.live));
        let mut admitted = Vec::new();
        for unit in units(jobs, max_array, worker) {
            if full_only && !matches!(&unit, Unit::Array(jobs) if jobs.len() >= max_array) {
                budget.queue.extend(unit.into_jobs());
                continue;
            }
            let cost = unit.cost();
            if cost <= free {
                free -= cost;
                budget.live += cost;
                admitted.push(unit);
                continue;
            }
            match unit {
                // Part of an array fits: send that part now.
                Unit::Array(mut jobs) if free > 0 => {
                    let rest = jobs.split_off(free as usize);
                    budget.live += free;
                    budget.queue.extend(rest);
                    admitted.push(match jobs.pop() {
                        Some(job) if jobs.is_empty() => Unit::Single(job),
                        Some(job) => {
                            jobs.push(job);
                            Unit::Array(jobs)
                        }
                        None => continue,
                    });
                    free = 0;
                }
                other => budget.queue.extend(other.into_jobs()),
            }
        }
        admitted
    }

    /// Waits while attempts keep arriving (see [`GATHER_QUIET`]), sending
    /// out full arrays meanwhile, then drains the queue.
    async fn gather_then_drain(self: Arc<Self>) {
        let start = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(GATHER_QUIET).await;
            let max_array = self.monitor.site_now().max_array as usize;
            let full = {
                let mut budget = lock(&self.budget);
                let quiet = budget.coming == 0
                    && budget
                        .last_arrival
                        .is_none_or(|t| t.elapsed() >= GATHER_QUIET);
                if quiet || start.elapsed() >= GATHER_MAX {
                    budget.gathering = false;
                    break;
                }
                budget.queue.len() >= max_array
            };
            if full {
                Arc::clone(&self).drain_some(true).await;
            }
        }
        self.drain().await;
    }

    /// A Slurm job of this executor ended: room for queued attempts.
    ///
    /// Under `max_jobs`, the queue goes out once a quarter of `max_jobs` is
    /// free (or all of it fits, or nothing runs), so that refills are
    /// arrays rather than one `sbatch` per ended job.
    fn release(self: &Arc<Self>) {
        let more = {
            let mut budget = lock(&self.budget);
            budget.live = budget.live.saturating_sub(1);
            let free = self
                .config
                .max_jobs
                .map_or(u32::MAX, |m| m.max(1).saturating_sub(budget.live));
            let batch = self.config.max_jobs.map_or(1, |m| (m / 4).max(1));
            let waiting = u32::try_from(budget.queue.len()).unwrap_or(u32::MAX);
            waiting > 0
                && !budget.closed
                && !budget.gathering
                && (free >= batch || free >= waiting || budget.live == 0)
        };
        if more {
            let me = Arc::clone(self);
            tokio::spawn(async move { me.drain().await });
        }
    }

    /// Submits what the queue holds and `max_jobs` allows now.
    async fn drain(self: Arc<Self>) {
        self.drain_some(false).await;
    }

    /// Submits what the queue holds and `max_jobs` allows now; with
    /// `full_only`, only arrays of `MaxArraySize` tasks (the rest keeps
    /// gathering).
    async fn drain_some(self: Arc<Self>, full_only: bool) {
        let mut jobs: Vec<Job> = lock(&self.budget).queue.drain(..).collect();
        if jobs.is_empty() {
            return;
        }
        let worker = match self.packing(&jobs).await {
            Ok(worker) => worker,
            Err(e) => {
                // The executor's `twinflow:` does not run there: the tasks
                // it would run fail with why.
                let message = format!("{} (executor `{}`)", e.message, self.name);
                let (refused, rest) = jobs.into_iter().partition(|j| pack_size(j, true) > 1);
                jobs = rest;
                for job in refused {
                    self.sink.send(Update {
                        key: job.key,
                        status: AttemptStatus::Error(message.clone()),
                    });
                }
                None
            }
        };
        let admitted = self.admit(jobs, full_only, worker.as_deref()).await;
        for unit in admitted {
            let copy: Vec<Job> = match &unit {
                Unit::Single(job) => vec![job.clone()],
                Unit::Array(jobs) | Unit::Pack(jobs, _) => jobs.clone(),
            };
            let results = self.launch(unit).await;
            let mut gave_up = None;
            match results.first().map(|(_, r)| r) {
                Some(Err(e)) if e.transient => match self.give_up(e) {
                    // The controller is out of reach: its sbatch may or may
                    // not have gone through. Looked up, then sent again, later.
                    None => {
                        tracing::warn!(
                            "executor `{}`: {}; trying again later",
                            self.name,
                            e.message
                        );
                        self.uncertain(copy);
                        continue;
                    }
                    Some(message) => gave_up = Some(message),
                },
                Some(Ok(_)) => self.answered(),
                _ => {}
            }
            for (key, result) in results {
                let status = match result {
                    Ok(handle) => {
                        // Cancelled (or shut down) while its sbatch ran.
                        let late = {
                            let mut budget = lock(&self.budget);
                            budget.cancelled.remove(&key) || budget.closed
                        };
                        if late && let Err(e) = self.cancel_in_slurm(key, &handle).await {
                            tracing::warn!("executor `{}`: {}", self.name, e.message);
                        }
                        AttemptStatus::Submitted(handle)
                    }
                    Err(e) => AttemptStatus::Error(gave_up.clone().unwrap_or(e.message)),
                };
                self.sink.send(Update { key, status });
            }
        }
    }

    /// After a transient error: `None` to wait for the cluster, or why the
    /// attempts held back fail now (it never answered, or it has been out
    /// of reach for [`OUTAGE_PATIENCE`]).
    fn give_up(&self, e: &ExecutorError) -> Option<String> {
        if !self.monitor.answered() {
            return Some(format!(
                "{} (the cluster never answered executor `{}`: check its host, port and Slurm there)",
                e.message, self.name
            ));
        }
        let mut budget = lock(&self.budget);
        let since = *budget
            .outage_since
            .get_or_insert_with(tokio::time::Instant::now);
        let waited = since.elapsed();
        (waited >= OUTAGE_PATIENCE).then(|| {
            format!(
                "{} (out of reach for {} s: gave up)",
                e.message,
                waited.as_secs()
            )
        })
    }

    /// The cluster answered: an outage is over.
    fn answered(&self) {
        self.monitor.mark_answered();
        let mut budget = lock(&self.budget);
        budget.outage_since = None;
        budget.retry_delay = RETRY_FIRST;
    }

    /// Holds attempts whose `sbatch` failed for now, and tries again after
    /// a backoff (5 s, doubling up to a minute).
    fn uncertain(self: &Arc<Self>, jobs: Vec<Job>) {
        let delay = {
            let mut budget = lock(&self.budget);
            budget.uncertain.extend(jobs);
            let delay = budget.retry_delay.max(RETRY_FIRST);
            budget.retry_delay = (delay * 2).min(RETRY_MAX);
            delay
        };
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.retry_uncertain().await;
        });
    }

    /// Looks the uncertain attempts up in Slurm (by their `--comment`):
    /// those found are followed, the rest go back to the queue.
    async fn retry_uncertain(self: Arc<Self>) {
        let jobs: Vec<Job> = std::mem::take(&mut lock(&self.budget).uncertain);
        if jobs.is_empty() {
            return;
        }
        let mut queued: HashMap<PathBuf, AttemptKey> = HashMap::new();
        for job in &jobs {
            let there = match &self.staging {
                Some(staging) => staging.remote_job(job).map(|j| status_file(&j)),
                None => Ok(status_file(job)),
            };
            if let Ok(path) = there {
                queued.insert(path, job.key);
            }
        }
        let found =
            match crate::recover::find_jobs(self.monitor.cluster().as_ref(), &mut queued).await {
                Ok(found) => found,
                Err(e) => {
                    let message = if e.transient {
                        match self.give_up(&e) {
                            None => {
                                tracing::warn!(
                                    "executor `{}`: {}; trying again later",
                                    self.name,
                                    e.message
                                );
                                self.uncertain(jobs);
                                return;
                            }
                            Some(message) => message,
                        }
                    } else {
                        e.message
                    };
                    for job in jobs {
                        self.sink.send(Update {
                            key: job.key,
                            status: AttemptStatus::Error(message.clone()),
                        });
                    }
                    return;
                }
            };
        self.answered();
        for f in found {
            lock(&self.budget).live += 1;
            let release = self.releaser(f.members.len());
            let mut tracked = Vec::new();
            for (key, status) in f.members {
                let handle = handle_of(&f.job, &status, f.packed);
                self.sink.send(Update {
                    key,
                    status: AttemptStatus::Submitted(handle),
                });
                tracked.push(Member::new(
                    key,
                    status,
                    Arc::clone(&self.member_sink),
                    self.owner,
                    Some(Arc::clone(&release)),
                ));
            }
            let cancelled: Vec<(AttemptKey, Handle)> = {
                let mut budget = lock(&self.budget);
                tracked
                    .iter()
                    .filter(|m| budget.cancelled.remove(&m.key))
                    .map(|m| (m.key, handle_of(&f.job, &m.status_file, f.packed)))
                    .collect()
            };
            self.monitor.track(f.job, tracked, f.packed);
            for (key, handle) in cancelled {
                if let Err(e) = self.cancel_in_slurm(key, &handle).await {
                    tracing::warn!("executor `{}`: {}", self.name, e.message);
                }
            }
        }
        let left: std::collections::HashSet<AttemptKey> = queued.into_values().collect();
        let mut never_sent = Vec::new();
        {
            let mut budget = lock(&self.budget);
            for job in jobs.into_iter().rev() {
                if !left.contains(&job.key) {
                    continue;
                }
                if budget.cancelled.remove(&job.key) {
                    never_sent.push(job.key);
                } else {
                    budget.queue.push_front(job);
                }
            }
        }
        for key in never_sent {
            self.sink.send(Update {
                key,
                status: AttemptStatus::Cancelled,
            });
        }
        self.drain().await;
    }

    /// Cancels an attempt that is in Slurm: `scancel` its job or array
    /// element, or mark it for its pack's worker.
    async fn cancel_in_slurm(&self, key: AttemptKey, h: &Handle) -> Result<(), ExecutorError> {
        let Some(Parsed::Job { job, .. }) = parse_handle(h) else {
            return Ok(());
        };
        let monitor = &self.monitor;
        match monitor.cancel(&job, key) {
            CancelBy::Nothing => {}
            CancelBy::Scancel(id) => monitor.scancel(vec![id]),
            CancelBy::Marker(marker, all) => {
                monitor
                    .cluster()
                    .write_files(vec![(marker, String::new())])
                    .await?;
                if let Some(id) = all {
                    monitor.scancel(vec![id]);
                }
            }
        }
        Ok(())
    }

    /// `sbatch`es one unit; a result per attempt.
    async fn launch(
        self: &Arc<Self>,
        unit: Unit,
    ) -> Vec<(AttemptKey, Result<Handle, ExecutorError>)> {
        let keys: Vec<AttemptKey> = match &unit {
            Unit::Single(job) => vec![job.key],
            Unit::Array(jobs) | Unit::Pack(jobs, _) => jobs.iter().map(|j| j.key).collect(),
        };
        let cost = unit.cost();
        let unit = match &self.staging {
            Some(staging) => self.stage_in(staging, unit).await,
            None => Ok(unit),
        };
        match async { self.try_launch(unit?).await }.await {
            Ok(handles) => keys.into_iter().zip(handles.into_iter().map(Ok)).collect(),
            Err(e) => {
                let mut budget = lock(&self.budget);
                budget.live = budget.live.saturating_sub(cost);
                drop(budget);
                keys.into_iter().map(|k| (k, Err(e.clone()))).collect()
            }
        }
    }

    /// Uploads the unit's working directories; the unit as it runs there.
    async fn stage_in(&self, staging: &Staging, unit: Unit) -> Result<Unit, ExecutorError> {
        let remote = |job: Job| async move {
            let there = staging.remote_job(&job)?;
            staging.stage_in(&job, &there).await?;
            Ok::<Job, ExecutorError>(there)
        };
        Ok(match unit {
            Unit::Single(job) => Unit::Single(remote(job).await?),
            Unit::Array(jobs) => {
                let mut there = Vec::with_capacity(jobs.len());
                for job in jobs {
                    there.push(remote(job).await?);
                }
                Unit::Array(there)
            }
            Unit::Pack(jobs, worker) => {
                let mut there = Vec::with_capacity(jobs.len());
                for job in jobs {
                    there.push(remote(job).await?);
                }
                Unit::Pack(there, worker)
            }
        })
    }

    async fn try_launch(self: &Arc<Self>, unit: Unit) -> Result<Vec<Handle>, ExecutorError> {
        let context = |e: ExecutorError, what: &str| ExecutorError {
            message: format!("{} (executor `{}`, {what})", e.message, self.name),
            ..e
        };
        match unit {
            Unit::Single(job) => {
                let status = status_file(&job);
                let path = job.stdout.with_extension("sbatch");
                let text = script::render(&job, &self.config, &status)?;
                let id = self
                    .sbatch(vec![(path.clone(), text)], &path)
                    .await
                    .map_err(|e| context(e, &job.name))?;
                let jref = JobRef::Job(id);
                let h = handle_of(&jref, &status, false);
                let member = self.member(&job, status, Some(self.releaser(1)));
                self.monitor.track(jref, vec![member], false);
                Ok(vec![h])
            }
            Unit::Array(jobs) => {
                let what = format!("{} tasks of step `{}`", jobs.len(), jobs[0].step);
                let members = group_members(&jobs);
                let first = &jobs[0].stdout;
                let log = first.with_file_name(format!("{}.array-%A_%a.log", jobs[0].step));
                let path = first.with_extension("array.sbatch");
                let mut files = member_files(&members)?;
                files.push((
                    first.with_extension("array.json"),
                    group::pack_manifest(&members),
                ));
                files.push((
                    path.clone(),
                    group::render_array(&members, &self.config, &log, self.config.array_throttle)?,
                ));
                let id = self
                    .sbatch(files, &path)
                    .await
                    .map_err(|e| context(e, &what))?;
                let mut handles = Vec::new();
                for (i, job) in jobs.iter().enumerate() {
                    let jref = JobRef::ArrayTask {
                        array: id,
                        task: u32::try_from(i).unwrap_or(u32::MAX),
                    };
                    let status = status_file(job);
                    handles.push(handle_of(&jref, &status, false));
                    let member = self.member(job, status, Some(self.releaser(1)));
                    self.monitor.track(jref, vec![member], false);
                }
                Ok(handles)
            }
            Unit::Pack(jobs, worker) => {
                let what = format!("a pack of {} tasks of step `{}`", jobs.len(), jobs[0].step);
                let members = group_members(&jobs);
                let first = &jobs[0].stdout;
                let manifest = first.with_extension("pack.json");
                let path = first.with_extension("pack.sbatch");
                let log = first.with_extension("pack.log");
                let mut files = member_files(&members)?;
                files.push((manifest.clone(), group::pack_manifest(&members)));
                files.push((
                    path.clone(),
                    group::render_pack(&members, &self.config, &worker, &manifest, &log)?,
                ));
                let id = self
                    .sbatch(files, &path)
                    .await
                    .map_err(|e| context(e, &what))?;
                let jref = JobRef::Job(id);
                let release = self.releaser(jobs.len());
                let tracked: Vec<Member> = jobs
                    .iter()
                    .map(|j| self.member(j, status_file(j), Some(Arc::clone(&release))))
                    .collect();
                let handles = jobs
                    .iter()
                    .map(|j| handle_of(&jref, &status_file(j), true))
                    .collect();
                self.monitor.track(jref, tracked, true);
                Ok(handles)
            }
        }
    }

    /// Writes `files` and `sbatch --parsable`s `script`.
    async fn sbatch(
        &self,
        files: Vec<(PathBuf, String)>,
        script: &Path,
    ) -> Result<JobId, ExecutorError> {
        let cluster = self.monitor.cluster();
        cluster.write_files(files).await?;
        let out = cluster
            .command(
                "sbatch",
                &["--parsable".to_owned(), script.display().to_string()],
            )
            .await?;
        parse::parse_sbatch_parsable(&out)
            .map_err(|e| ExecutorError::new(format!("sbatch {}: {e}", script.display())))
    }

    fn member(&self, job: &Job, status: PathBuf, on_end: Option<OnEnd>) -> Member {
        self.sink.send(Update {
            key: job.key,
            status: AttemptStatus::Queued,
        });
        Member::new(
            job.key,
            status,
            Arc::clone(&self.member_sink),
            self.owner,
            on_end,
        )
    }

    /// A callback that frees one job of the budget after `tasks` calls.
    fn releaser(self: &Arc<Self>, tasks: usize) -> OnEnd {
        let left = AtomicU32::new(u32::try_from(tasks).unwrap_or(u32::MAX));
        let me = Arc::downgrade(self);
        Arc::new(move || {
            if left.fetch_sub(1, Ordering::SeqCst) == 1
                && let Some(me) = me.upgrade()
            {
                me.release();
            }
        })
    }
}

fn group_members(jobs: &[Job]) -> Vec<GroupMember<'_>> {
    jobs.iter()
        .map(|job| GroupMember {
            job,
            script: job.stdout.with_extension("sh"),
            status: status_file(job),
        })
        .collect()
}

fn member_files(members: &[GroupMember<'_>]) -> Result<Vec<(PathBuf, String)>, ExecutorError> {
    members
        .iter()
        .map(|m| Ok((m.script.clone(), script::render_member(m.job, &m.status)?)))
        .collect()
}

impl SlurmExecutor {
    /// Attempts whose job Slurm no longer knows but whose status file is
    /// there ended while no runtime watched: their ends are reported now.
    async fn ended_while_away(
        &self,
        run: twinflow_core::RunRef<'_>,
        queued: HashMap<PathBuf, AttemptKey>,
    ) -> Vec<AttemptKey> {
        let (paths, keys): (Vec<PathBuf>, Vec<AttemptKey>) = queued.into_iter().unzip();
        let texts = self.inner.monitor.cluster().read_files(paths.clone()).await;
        let mut ended = Vec::new();
        for ((status, key), text) in paths.into_iter().zip(keys).zip(texts) {
            let Some(code) = text.as_deref().and_then(parse::parse_status_file) else {
                continue;
            };
            if let Some(staging) = &self.inner.staging
                && !staging.adopt(run, key, &status)
            {
                continue;
            }
            ended.push(key);
            self.inner.member_sink.send(Update {
                key,
                status: AttemptStatus::Exited(code),
            });
        }
        ended
    }
}

#[async_trait::async_trait]
impl Executor for SlurmExecutor {
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        self.submit_batch(vec![job])
            .await
            .pop()
            .unwrap_or_else(|| Err(ExecutorError::new("the slurm executor is shut down")))
    }

    fn more_coming(&self, pending: usize) {
        lock(&self.inner.budget).coming = pending;
    }

    async fn submit_batch(&self, jobs: Vec<Job>) -> Vec<Result<Handle, ExecutorError>> {
        let handles: Vec<Handle> = jobs
            .iter()
            .map(|j| Handle(format!("slurm-queued:{}", status_file(j).display())))
            .collect();
        let first = {
            let mut budget = lock(&self.inner.budget);
            if budget.closed {
                return handles
                    .iter()
                    .map(|_| Err(ExecutorError::new("the slurm executor is shut down")))
                    .collect();
            }
            budget.queue.extend(jobs);
            budget.last_arrival = Some(tokio::time::Instant::now());
            !std::mem::replace(&mut budget.gathering, true)
        };
        // Attempts that become ready close together go out together, as
        // arrays and packs rather than one job each.
        if first {
            let inner = Arc::clone(&self.inner);
            tokio::spawn(inner.gather_then_drain());
        }
        handles.into_iter().map(Ok).collect()
    }

    async fn reattach(
        &self,
        run: twinflow_core::RunRef<'_>,
        attempts: Vec<(AttemptKey, Handle)>,
    ) -> Result<Vec<AttemptKey>, ExecutorError> {
        let mut jobs: Vec<(JobRef, bool, Vec<(AttemptKey, PathBuf)>)> = Vec::new();
        // Attempts whose job id the runtime never got: status file (on the
        // cluster) -> attempt.
        let mut queued: HashMap<PathBuf, AttemptKey> = HashMap::new();
        for (key, h) in attempts {
            let (job, status, packed) = match parse_handle(&h) {
                Some(Parsed::Job {
                    job,
                    status,
                    packed,
                }) => (job, status, packed),
                Some(Parsed::Queued { status }) => {
                    let there = match &self.inner.staging {
                        Some(staging) => staging.cluster_path(run, &status),
                        None => Some(status),
                    };
                    if let Some(there) = there {
                        queued.insert(there, key);
                    }
                    continue;
                }
                None => continue,
            };
            match jobs.iter_mut().find(|(j, _, _)| *j == job) {
                Some((_, _, members)) => members.push((key, status)),
                None => jobs.push((job, packed, vec![(key, status)])),
            }
        }
        if !queued.is_empty() {
            let cluster = self.inner.monitor.cluster();
            for found in crate::recover::find_jobs(cluster.as_ref(), &mut queued).await? {
                jobs.push((found.job, found.packed, found.members));
            }
        }
        // A staged job whose files cannot be brought back is not worth
        // following: the runtime runs it again.
        if let Some(staging) = &self.inner.staging {
            for (_, _, members) in &mut jobs {
                members.retain(|(key, status)| staging.adopt(run, *key, status));
            }
            jobs.retain(|(_, _, members)| !members.is_empty());
        }
        let mut followed = self.ended_while_away(run, queued).await;
        for (job, packed, members) in jobs {
            lock(&self.inner.budget).live += 1;
            let release = self.inner.releaser(members.len());
            let tracked = members
                .into_iter()
                .map(|(key, status)| {
                    followed.push(key);
                    Member::new(
                        key,
                        status,
                        Arc::clone(&self.inner.member_sink),
                        self.inner.owner,
                        Some(Arc::clone(&release)),
                    )
                })
                .collect();
            self.inner.monitor.track(job, tracked, packed);
        }
        Ok(followed)
    }

    async fn cancel(&self, key: AttemptKey, h: &Handle) -> Result<(), ExecutorError> {
        match parse_handle(h) {
            None => Ok(()),
            Some(Parsed::Queued { .. }) => {
                let removed = {
                    let mut budget = lock(&self.inner.budget);
                    let before = budget.queue.len();
                    budget.queue.retain(|j| j.key != key);
                    before != budget.queue.len()
                };
                if removed {
                    self.inner.sink.send(Update {
                        key,
                        status: AttemptStatus::Cancelled,
                    });
                } else {
                    // Its sbatch is under way: cancelled once it returns.
                    lock(&self.inner.budget).cancelled.insert(key);
                }
                Ok(())
            }
            Some(Parsed::Job { .. }) => self.inner.cancel_in_slurm(key, h).await,
        }
    }

    async fn shutdown(&self) {
        {
            let mut budget = lock(&self.inner.budget);
            budget.closed = true;
            budget.queue.clear();
        }
        let ids = self.inner.monitor.jobs_of(self.inner.owner);
        if !ids.is_empty()
            && let Err(e) = self.inner.monitor.cluster().command("scancel", &ids).await
        {
            tracing::warn!("executor `{}`: {}", self.inner.name, e.message);
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_packing;
