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
//! packed job one each, and as the cluster's `user_max_jobs` allows
//! ([`crate::user_cap`]: the user's jobs there, over every run of the
//! process). Once an attempt is in Slurm, the runtime stores its
//! real handle ([`AttemptStatus::Submitted`]); a failed `sbatch` fails the
//! attempts it carried ([`AttemptStatus::Error`]).
//!
//! Tasks of several ranks or nodes ([`crate::ranks`]) go out as plain jobs
//! and arrays with their shape in the header, never packed.
//!
//! Handles are `slurm:<job id or array element>:<status file>` and
//! `slurm-pack:<job id>:<status file>`, so a restarted runtime takes its
//! jobs back ([`Executor::reattach`]); a queued attempt is looked up by its
//! job's comment ([`crate::recover`]): found, it is followed and the runtime
//! gets its real handle ([`AttemptStatus::Submitted`], so that cancel and a
//! later restart reach the job); not found, the runtime submits it again.

use crate::cluster::{Cluster, LocalCluster};
use crate::containers::Containers;
use crate::group::{self, Member as GroupMember};
use crate::install::{Installs, Source, Worker};
use crate::monitor::{CancelBy, Member, Monitor, OnEnd};
use crate::parse::{self, JobId, JobRef};
use crate::remote::RemoteCluster;
use crate::script;
use crate::staging::{StageOutSink, Staging};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use twinflow_core::{
    AttemptKey, AttemptStatus, Executor, ExecutorError, ExecutorFactory, ExecutorSpec, Handle, Job,
    SlurmConfig, Update, UpdateSink,
};

mod coupled;
mod launch;
mod outage;
mod units;

#[cfg(test)]
use outage::{OUTAGE_PATIENCE, RETRY_FIRST, RETRY_MAX};
use units::{
    Parsed, Unit, group_members, handle_of, member_files, pack_size, parse_handle, status_file,
    units,
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
        if config.user_max_jobs.is_some() {
            monitor.cap_user_jobs();
        }
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
                containers: Containers::default(),
                container_runtime: spec.container_runtime,
                prologue: spec.prologue.clone(),
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
        Self::with_monitor(config, sink, Arc::new(Monitor::new(cluster, poll)), source)
    }

    /// The same, on a cluster's monitor other executors share.
    #[cfg(test)]
    fn with_monitor(
        config: SlurmConfig,
        sink: Arc<dyn UpdateSink>,
        monitor: Arc<Monitor>,
        source: Source,
    ) -> Self {
        if config.user_max_jobs.is_some() {
            monitor.cap_user_jobs();
        }
        Self {
            inner: Arc::new(Inner {
                name: "test".to_owned(),
                config,
                member_sink: Arc::clone(&sink),
                sink,
                monitor,
                staging: None,
                worker: Worker {
                    source,
                    installs: Arc::default(),
                    cluster: "test".to_owned(),
                },
                owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
                budget: Mutex::default(),
                containers: Containers::default(),
                container_runtime: None,
                prologue: None,
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
    /// The images of the steps that run in one ([`Executor::resolve_image`]).
    containers: Containers,
    /// The executor's `container_runtime`.
    container_runtime: Option<twinflow_core::ContainerRuntime>,
    /// The executor's `prologue:`, run at the top of every job
    /// ([`crate::prologue`]).
    prologue: Option<String>,
}

impl Inner {
    /// The prologue as job scripts run it.
    fn prologue(&self) -> Option<crate::prologue::Prologue<'_>> {
        self.prologue
            .as_deref()
            .map(|text| crate::prologue::Prologue {
                executor: &self.name,
                text,
            })
    }
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

/// Submitted attempts gather in the queue until none has come for this
/// long, ...
const GATHER_QUIET: Duration = Duration::from_millis(100);
/// ... and the runtime says no more are being prepared, or for this long in
/// all; full arrays (`MaxArraySize` tasks) go out meanwhile.
const GATHER_MAX: Duration = Duration::from_secs(10);

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

    /// Splits `jobs` into what goes out now (within `max_jobs` and the
    /// cluster's `user_max_jobs`, [`crate::user_cap`]) and queues the rest;
    /// returns the units to submit, packs run by `worker`.
    async fn admit(
        self: &Arc<Self>,
        jobs: Vec<Job>,
        full_only: bool,
        worker: Option<&Path>,
    ) -> Vec<Unit> {
        let max_array = self.max_array().await.max(1) as usize;
        let mut budget = lock(&self.budget);
        if budget.closed {
            return Vec::new();
        }
        let mut user = self.monitor.user_jobs();
        let mut free = self
            .config
            .max_jobs
            .map_or(u32::MAX, |m| m.max(1).saturating_sub(budget.live))
            .min(user.room(self.config.user_max_jobs));
        let before = free;
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
                        Some(job) if jobs.is_empty() => Unit::Single(Box::new(job)),
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
        user.take(before - free);
        // Held back for the cap: drained again once jobs of this cluster
        // (of any run) end.
        if let Some(cap) = self.config.user_max_jobs
            && !full_only
            && !budget.queue.is_empty()
        {
            let held = budget.queue.len();
            drop(user);
            drop(budget);
            self.monitor
                .wait_for_room(self.owner, cap, held, self.drainer());
        }
        admitted
    }

    /// A callback that drains this executor's queue (while it exists; a
    /// gathering drains it at its end anyway).
    fn drainer(self: &Arc<Self>) -> OnEnd {
        let me = Arc::downgrade(self);
        Arc::new(move || {
            if let Some(me) = me.upgrade()
                && !lock(&me.budget).gathering
            {
                tokio::spawn(me.drain());
            }
        })
    }

    /// `jobs` Slurm jobs of this executor ended or never went out: off the
    /// executor's count and the cluster's. Returns the waiters to wake once
    /// `budget` is unlocked (a waker locks its executor's budget).
    #[must_use]
    fn give_back(&self, budget: &mut Budget, jobs: u32) -> Vec<OnEnd> {
        budget.live = budget.live.saturating_sub(jobs);
        self.monitor.user_jobs().give_back(jobs)
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
        let (more, due) = {
            let mut budget = lock(&self.budget);
            let due = self.give_back(&mut budget, 1);
            let free = self
                .config
                .max_jobs
                .map_or(u32::MAX, |m| m.max(1).saturating_sub(budget.live));
            let batch = self.config.max_jobs.map_or(1, |m| (m / 4).max(1));
            let waiting = u32::try_from(budget.queue.len()).unwrap_or(u32::MAX);
            let more = waiting > 0
                && !budget.closed
                && !budget.gathering
                && (free >= batch || free >= waiting || budget.live == 0);
            (more, due)
        };
        for wake in due {
            wake();
        }
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
                Unit::Single(job) => vec![(**job).clone()],
                Unit::Array(jobs) | Unit::Pack(jobs, _) | Unit::Group(jobs) => jobs.clone(),
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

    /// Every job script runs the executor's prologue first, outside any
    /// container ([`crate::prologue`]).
    fn runs_prologue(&self) -> bool {
        true
    }

    /// Keeps the user's jobs on the cluster under `user_max_jobs` across
    /// every run of this process ([`crate::user_cap`]).
    fn caps_user_jobs(&self) -> bool {
        true
    }

    fn more_coming(&self, pending: usize) {
        lock(&self.inner.budget).coming = pending;
    }

    /// Runs tasks of several ranks and nodes ([`crate::ranks`]); refuses
    /// them in a pack or under a launcher in a container; runs coupling
    /// groups ([`crate::coupled`]); and leaves the rest to
    /// [`twinflow_core::default_shape_refusal`].
    fn shape_refusal(&self, step: &twinflow_core::StepSpec) -> Option<String> {
        crate::coupled::shape_refusal(step)
    }

    /// Resolves the image on the cluster (see [`crate::containers`]); the
    /// jobs of `steps` then run inside it: plain jobs and array elements
    /// one container per task, the members of a pack in one container
    /// (podman, docker) or instance (apptainer, singularity)
    /// ([`crate::pack_container`]).
    async fn resolve_image(
        &self,
        container: &twinflow_core::ContainerSpec,
        steps: &[String],
    ) -> Result<twinflow_core::ResolvedImage, ExecutorError> {
        let host = match self.inner.worker.cluster.as_str() {
            "local" => twinflow_launch::CommandRunner::host(&twinflow_launch::LocalRunner::new())
                .to_owned(),
            remote => remote.to_owned(),
        };
        let found = crate::containers::resolve(
            Arc::clone(self.inner.monitor.cluster()),
            host,
            self.inner.container_runtime,
            container,
            self.inner.config.gpu_vendor,
        )
        .await?;
        let resolved = found.resolved.clone();
        self.inner.containers.set(steps, found);
        Ok(resolved)
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
        // Attempts found by their job's comment: the runtime learns their
        // real handle below, as if their sbatch had just returned.
        let mut found_keys: HashSet<AttemptKey> = HashSet::new();
        if !queued.is_empty() {
            let cluster = self.inner.monitor.cluster();
            for found in crate::recover::find_jobs(cluster.as_ref(), &mut queued).await? {
                found_keys.extend(found.members.iter().map(|(key, _)| *key));
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
            self.inner.monitor.user_jobs().take(1);
            let release = self.inner.releaser(members.len());
            let tracked = members
                .into_iter()
                .map(|(key, status)| {
                    followed.push(key);
                    if found_keys.contains(&key) {
                        self.inner.sink.send(Update {
                            key,
                            status: AttemptStatus::Submitted(handle_of(&job, &status, packed)),
                        });
                    }
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
        self.inner.monitor.user_jobs().forget(self.inner.owner);
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
mod tests_containers;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_packing;
#[cfg(test)]
mod tests_support;
#[cfg(test)]
mod tests_user_cap;
