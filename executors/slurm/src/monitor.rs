//! Following Slurm jobs: one `squeue` per poll interval for every job of
//! every run that the executors of one [`crate::SlurmFactory`] submitted to
//! one cluster, whatever their number.
//!
//! The interval starts short and doubles while nothing changes, up to 15
//! times the shortest; a new job or a change brings it back. A job's tasks
//! (one, or many in a packed job) are decided from the job's state and their
//! own files, all read in one call per poll:
//!
//! - a job that ended: each task's status file gives its exit status; a task
//!   without one gets the job's state (a time limit, a node failure, ...);
//! - a packed job that runs: a task's `.started` marker makes it Running and
//!   its status file ends it, while the job goes on with the others; a
//!   `.notrun` marker (the worker did not start it: no time left in the
//!   allocation, see [`crate::worker`]) fails it with the marker's reason;
//!   a task that had not started when its pack ended is Lost (it never
//!   ran: the job's state is not its own); both go to the retry policy;
//! - a job `squeue` no longer lists (slurmctld forgets finished jobs
//!   `MinJobAge` after the end) twice in a row: the status file decides,
//!   and a task without one is Lost and goes to the retry policy, so a run
//!   never hangs on it.
//!
//! Cancels that come together (a cancelled run) go out as one `scancel`.
//!
//! Once an executor on the cluster sets `user_max_jobs`, the poll asks for
//! all the user's jobs instead (`squeue --me`, Slurm 20.11 or newer): the
//! same answer gives the tracked jobs' states and the count of the user's
//! other jobs ([`crate::user_cap`]), and the poll goes on while an executor
//! waits for room under its cap.

use crate::cluster::Cluster;
use crate::parse::{self, JobId, JobRef, SlurmState};
use crate::user_cap::{self, UserJobs};
use crate::worker::marker;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use twinflow_core::{AttemptKey, AttemptStatus, Update, UpdateSink};

/// Called once when a task leaves the monitor (its attempt ended).
pub(crate) type OnEnd = Arc<dyn Fn() + Send + Sync>;

/// One task of a tracked job.
pub(crate) struct Member {
    pub(crate) key: AttemptKey,
    pub(crate) status_file: PathBuf,
    pub(crate) sink: Arc<dyn UpdateSink>,
    /// Which executor submitted it.
    pub(crate) owner: u64,
    pub(crate) on_end: Option<OnEnd>,
    last: Option<AttemptStatus>,
    cancelled: bool,
}

impl Member {
    pub(crate) fn new(
        key: AttemptKey,
        status_file: PathBuf,
        sink: Arc<dyn UpdateSink>,
        owner: u64,
        on_end: Option<OnEnd>,
    ) -> Self {
        Self {
            key,
            status_file,
            sink,
            owner,
            on_end,
            last: None,
            cancelled: false,
        }
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("key", &self.key)
            .field("status_file", &self.status_file)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Entry {
    members: Vec<Member>,
    packed: bool,
    /// Polls in a row in which squeue did not list it.
    missing: u32,
}

/// What cancelling one task takes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CancelBy {
    /// `scancel` this job (or array element).
    Scancel(String),
    /// Write this marker for the pack's worker; `scancel` too, when given
    /// (every task of the pack that is left is cancelled).
    Marker(PathBuf, Option<String>),
    /// Not tracked (already ended).
    Nothing,
}

/// What the cluster's configuration says (`scontrol show config`, asked
/// once per cluster).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site {
    /// `MaxArraySize`: array indices run from 0 to one less.
    pub(crate) max_array: u32,
    /// Whether `sacct` answers (slurmdbd records jobs).
    pub(crate) accounting: bool,
}

/// What is assumed of a cluster that cannot be asked: Slurm's defaults.
const DEFAULT_SITE: Site = Site {
    max_array: 1001,
    accounting: false,
};

/// The jobs of one cluster and their poller; see the module documentation.
#[derive(Debug)]
pub(crate) struct Monitor {
    cluster: Arc<dyn Cluster>,
    site: tokio::sync::OnceCell<Site>,
    shortest: Duration,
    table: Mutex<HashMap<JobRef, Entry>>,
    poller: Mutex<Option<tokio::task::JoinHandle<()>>>,
    fresh: AtomicBool,
    to_cancel: Mutex<Vec<String>>,
    /// The cluster has answered a command at least once.
    answered: AtomicBool,
    /// The user's jobs here, for `user_max_jobs` ([`crate::user_cap`]).
    user: Mutex<UserJobs>,
    /// An executor here sets `user_max_jobs`: polls ask `squeue --me`.
    capped: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Monitor {
    pub(crate) fn new(cluster: Arc<dyn Cluster>, shortest: Duration) -> Self {
        Self {
            cluster,
            site: tokio::sync::OnceCell::new(),
            shortest,
            table: Mutex::default(),
            poller: Mutex::default(),
            fresh: AtomicBool::default(),
            to_cancel: Mutex::default(),
            answered: AtomicBool::default(),
            user: Mutex::default(),
            capped: AtomicBool::default(),
        }
    }

    /// An executor here sets `user_max_jobs`: from now on polls count the
    /// user's other jobs.
    pub(crate) fn cap_user_jobs(&self) {
        self.capped.store(true, Ordering::SeqCst);
    }

    /// The user's jobs here ([`crate::user_cap`]).
    pub(crate) fn user_jobs(&self) -> MutexGuard<'_, UserJobs> {
        lock(&self.user)
    }

    /// Executor `owner` holds `held` attempts back for its `cap`: `wake`
    /// drains its queue once there is room; polls go on meanwhile.
    pub(crate) fn wait_for_room(self: &Arc<Self>, owner: u64, cap: u32, held: usize, wake: OnEnd) {
        lock(&self.user).wait(owner, cap, held, wake);
        self.ensure_poller();
    }

    pub(crate) fn cluster(&self) -> &Arc<dyn Cluster> {
        &self.cluster
    }

    /// Whether the cluster has ever answered: a host that never did is more
    /// likely misconfigured (a wrong host, no Slurm there) than down.
    pub(crate) fn answered(&self) -> bool {
        self.answered.load(Ordering::SeqCst)
    }

    /// Records that the cluster answered a command.
    pub(crate) fn mark_answered(&self) {
        self.answered.store(true, Ordering::SeqCst);
    }

    /// The cluster's configuration, asked on first use.
    pub(crate) async fn site(&self) -> Site {
        *self
            .site
            .get_or_init(|| async {
                let args = ["show".to_owned(), "config".to_owned()];
                match self.cluster.command("scontrol", &args).await {
                    Ok(text) => {
                        self.mark_answered();
                        Site {
                            max_array: parse::parse_max_array_size(&text)
                                .unwrap_or(DEFAULT_SITE.max_array),
                            accounting: parse::parse_accounting_enabled(&text),
                        }
                    }
                    Err(e) => {
                        if !e.transient {
                            // It ran there and said no: the host answered.
                            self.mark_answered();
                        }
                        tracing::warn!("{}; assuming Slurm's defaults", e.message);
                        DEFAULT_SITE
                    }
                }
            })
            .await
    }

    /// The configuration if it was asked already, else Slurm's defaults.
    pub(crate) fn site_now(&self) -> Site {
        self.site.get().copied().unwrap_or(DEFAULT_SITE)
    }

    /// Follows `job`, which carries `members` (several: a packed job).
    pub(crate) fn track(self: &Arc<Self>, job: JobRef, members: Vec<Member>, packed: bool) {
        lock(&self.table).insert(
            job,
            Entry {
                members,
                packed,
                missing: 0,
            },
        );
        self.fresh.store(true, Ordering::SeqCst);
        self.ensure_poller();
    }

    /// Starts the poller unless it runs.
    fn ensure_poller(self: &Arc<Self>) {
        let mut poller = lock(&self.poller);
        if poller
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            *poller = Some(tokio::spawn(Arc::clone(self).poll_loop()));
        }
    }

    /// Marks a task cancelled and says how to kill it.
    pub(crate) fn cancel(&self, job: &JobRef, key: AttemptKey) -> CancelBy {
        let mut table = lock(&self.table);
        let Some(entry) = table.get_mut(job) else {
            return CancelBy::Nothing;
        };
        let Some(member) = entry.members.iter_mut().find(|m| m.key == key) else {
            return CancelBy::Nothing;
        };
        member.cancelled = true;
        if !entry.packed {
            return CancelBy::Scancel(job.to_string());
        }
        let status = member.status_file.clone();
        let all = entry.members.iter().all(|m| m.cancelled);
        CancelBy::Marker(marker(&status, ".cancel"), all.then(|| job.to_string()))
    }

    /// `scancel`s these jobs with the next batch (one call for many).
    pub(crate) fn scancel(self: &Arc<Self>, jobs: Vec<String>) {
        let first = {
            let mut pending = lock(&self.to_cancel);
            let was_empty = pending.is_empty();
            pending.extend(jobs);
            was_empty
        };
        if first {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let ids = std::mem::take(&mut *lock(&me.to_cancel));
                if let Err(e) = me.cluster.command("scancel", &ids).await {
                    tracing::warn!("{}", e.message);
                }
            });
        }
    }

    /// The jobs that still hold tasks of executor `owner`.
    pub(crate) fn jobs_of(&self, owner: u64) -> Vec<String> {
        lock(&self.table)
            .iter()
            .filter(|(_, e)| e.members.iter().any(|m| m.owner == owner))
            .map(|(j, _)| j.to_string())
            .collect()
    }

    async fn poll_loop(self: Arc<Self>) {
        let longest = self.shortest * 15;
        let mut interval = self.shortest;
        loop {
            tokio::time::sleep(interval).await;
            let mut changed = self.fresh.swap(false, Ordering::SeqCst);
            let ids: BTreeSet<u32> = lock(&self.table).keys().map(base_id).collect();
            if ids.is_empty() && !lock(&self.user).has_waiters() {
                return;
            }
            changed |= self.poll(&ids).await;
            interval = next_interval(interval, changed, self.shortest, longest);
        }
    }

    /// One round: one squeue, one read of the files that matter. Whether
    /// anything changed.
    async fn poll(&self, ids: &BTreeSet<u32>) -> bool {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        let capped = self.capped.load(Ordering::SeqCst);
        let (which, whom) = if capped {
            ("--me", String::new())
        } else {
            ("-j", list.join(","))
        };
        let mut args = vec!["-h", "-r", "-t", "all", which];
        if !capped {
            args.push(&whom);
        }
        args.extend(["-o", "%i|%T|%r"]);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let states: HashMap<JobRef, SlurmState> = match self.cluster.command("squeue", &args).await
        {
            Ok(out) => {
                self.mark_answered();
                if capped {
                    let others = {
                        let table = lock(&self.table);
                        user_cap::count_others(&out, |job| table.contains_key(job))
                    };
                    let due = lock(&self.user).seen(others);
                    for wake in due {
                        wake();
                    }
                }
                parse::parse_squeue(&out)
                    .into_iter()
                    .map(|r| (r.id, r.state))
                    .collect()
            }
            // With only ids slurmctld has forgotten, squeue fails saying so:
            // none of them is listed.
            Err(e) if e.message.contains("Invalid job id") => {
                self.mark_answered();
                HashMap::new()
            }
            // A controller outage (or a dropped SSH link) says nothing about
            // the jobs: skip this round, and ask less often until it is back.
            Err(e) => {
                tracing::warn!("{}; asking again later", e.message);
                return false;
            }
        };
        let mut states = with_folded_arrays(&lock(&self.table), states);
        let wanted = self.files_to_read(&states);
        let exits = self.ask_accounting(&mut states).await;
        let texts = self.cluster.read_files(wanted.clone()).await;
        let files: HashMap<PathBuf, String> = wanted
            .into_iter()
            .zip(texts)
            .filter_map(|(p, t)| Some((p, t?)))
            .collect();
        let (changed, ended) = self.decide(&states, &exits, &files);
        for on_end in ended {
            on_end();
        }
        changed
    }

    /// With accounting, asks `sacct` (one call) about the jobs squeue has
    /// not listed twice in a row: their states join `states`, and their
    /// exit codes are returned. A job sacct knows is not lost.
    async fn ask_accounting(
        &self,
        states: &mut HashMap<JobRef, SlurmState>,
    ) -> HashMap<JobRef, (i32, i32)> {
        let gone: Vec<String> = lock(&self.table)
            .iter()
            .filter(|(job, entry)| entry.missing >= 2 && !states.contains_key(job))
            .map(|(job, _)| job.to_string())
            .collect();
        if gone.is_empty() || !self.site().await.accounting {
            return HashMap::new();
        }
        let args = [
            "-X",
            "-n",
            "-P",
            "-j",
            &gone.join(","),
            "-o",
            "JobID,State,ExitCode",
        ]
        .map(str::to_owned);
        let rows = match self.cluster.command("sacct", &args).await {
            Ok(out) => parse::parse_sacct(&out),
            Err(e) => {
                tracing::warn!("{}", e.message);
                Vec::new()
            }
        };
        let mut exits = HashMap::new();
        for row in rows {
            if let Some(exit) = row.exit {
                exits.insert(row.id.clone(), exit);
            }
            states.insert(row.id, row.state);
        }
        exits
    }

    /// Status files (and `.started` markers) worth reading this round.
    fn files_to_read(&self, states: &HashMap<JobRef, SlurmState>) -> Vec<PathBuf> {
        let mut table = lock(&self.table);
        let mut wanted = Vec::new();
        for (job, entry) in table.iter_mut() {
            let read = match states.get(job) {
                None => {
                    entry.missing += 1;
                    entry.missing >= 2
                }
                Some(state) => {
                    entry.missing = 0;
                    let mapped = parse::attempt_status(state, None);
                    mapped.is_final() || (entry.packed && mapped == AttemptStatus::Running)
                }
            };
            if read {
                for m in &entry.members {
                    wanted.push(m.status_file.clone());
                    if entry.packed {
                        wanted.push(marker(&m.status_file, ".started"));
                        wanted.push(marker(&m.status_file, ".notrun"));
                    }
                }
            }
        }
        wanted
    }

    /// Sends what changed; returns whether anything did and the callbacks
    /// of the tasks that ended.
    fn decide(
        &self,
        states: &HashMap<JobRef, SlurmState>,
        exits: &HashMap<JobRef, (i32, i32)>,
        files: &HashMap<PathBuf, String>,
    ) -> (bool, Vec<OnEnd>) {
        let mut changed = false;
        let mut ended = Vec::new();
        let mut table = lock(&self.table);
        table.retain(|job, entry| {
            let state = states.get(job);
            if state.is_none() && entry.missing < 2 {
                return true;
            }
            let packed = entry.packed;
            let exit = exits.get(job).copied();
            entry.members.retain_mut(|m| {
                let status = member_status(state, exit, packed, m, files);
                if m.last.as_ref() == Some(&status) {
                    return true;
                }
                changed = true;
                m.last = Some(status.clone());
                let done = status.is_final();
                m.sink.send(Update { key: m.key, status });
                if done && let Some(f) = m.on_end.take() {
                    ended.push(f);
                }
                !done
            });
            !entry.members.is_empty()
        });
        (changed, ended)
    }
}

/// Adds the state of array elements squeue shows folded into their array
/// job's record: when every pending element of an array ended before any
/// started (all cancelled, a deadline), Slurm keeps one record, `426`,
/// instead of `426_0`, `426_1`, ...
fn with_folded_arrays(
    table: &HashMap<JobRef, Entry>,
    mut states: HashMap<JobRef, SlurmState>,
) -> HashMap<JobRef, SlurmState> {
    for job in table.keys() {
        if let JobRef::ArrayTask { array, .. } = job
            && !states.contains_key(job)
            && let Some(state) = states.get(&JobRef::Job(*array)).cloned()
        {
            states.insert(job.clone(), state);
        }
    }
    states
}

/// The id to give squeue for a tracked job (an array's for its elements).
fn base_id(job: &JobRef) -> u32 {
    match job {
        JobRef::Job(JobId(id))
        | JobRef::ArrayTask {
            array: JobId(id), ..
        }
        | JobRef::ArrayPending {
            array: JobId(id), ..
        } => *id,
    }
}

/// One task's status from its job's state (`None`: no longer listed), the
/// exit code accounting recorded, and its files.
fn member_status(
    state: Option<&SlurmState>,
    exit: Option<(i32, i32)>,
    packed: bool,
    m: &Member,
    files: &HashMap<PathBuf, String>,
) -> AttemptStatus {
    let code = files
        .get(&m.status_file)
        .and_then(|t| parse::parse_status_file(t));
    let ended = |otherwise: AttemptStatus| match code {
        _ if m.cancelled => AttemptStatus::Cancelled,
        Some(code) => AttemptStatus::Exited(code),
        None => otherwise,
    };
    let started = packed && files.contains_key(&marker(&m.status_file, ".started"));
    // A task its pack's worker did not start, and why.
    let not_run = match files.get(&marker(&m.status_file, ".notrun")) {
        Some(why) if packed && !started && code.is_none() && !m.cancelled => {
            return AttemptStatus::Error(why.trim().to_owned());
        }
        _ => packed && !started,
    };
    let Some(state) = state else {
        return ended(AttemptStatus::Lost);
    };
    let mapped = parse::attempt_status(state, exit);
    if mapped.is_final() {
        // The pack ended before its worker started it: it never ran, it
        // did not share the job's fate.
        return ended(if not_run { AttemptStatus::Lost } else { mapped });
    }
    if packed && mapped == AttemptStatus::Running {
        return match code {
            Some(_) => ended(mapped),
            // The worker skips a cancelled task it has not started.
            None if m.cancelled && !started => AttemptStatus::Cancelled,
            None if started => AttemptStatus::Running,
            None => AttemptStatus::Queued,
        };
    }
    mapped
}

/// The next poll interval: back to the shortest after a change (or a new
/// job), doubling while nothing changes, up to `longest`. Long-running jobs
/// cost one `squeue` every `longest`, whatever their number.
pub(crate) fn next_interval(
    current: Duration,
    changed: bool,
    shortest: Duration,
    longest: Duration,
) -> Duration {
    if changed {
        shortest
    } else {
        (current * 2).clamp(shortest, longest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinflow_core::TaskId;

    #[derive(Debug)]
    struct Nowhere;
    impl UpdateSink for Nowhere {
        fn send(&self, _: Update) {}
    }

    fn member(cancelled: bool) -> Member {
        let mut m = Member::new(
            AttemptKey {
                task: TaskId(1),
                attempt: 0,
            },
            PathBuf::from("/run/logs/s/0.0.status"),
            Arc::new(Nowhere),
            1,
            None,
        );
        m.cancelled = cancelled;
        m
    }

    fn files(entries: &[(&str, &str)]) -> HashMap<PathBuf, String> {
        entries
            .iter()
            .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
            .collect()
    }

    const STATUS: &str = "/run/logs/s/0.0.status";
    const STARTED: &str = "/run/logs/s/0.0.status.started";

    #[test]
    fn a_forgotten_job_is_decided_by_its_status_file_else_lost() {
        let m = member(false);
        assert_eq!(
            member_status(None, None, false, &m, &files(&[])),
            AttemptStatus::Lost
        );
        assert_eq!(
            member_status(None, None, false, &m, &files(&[(STATUS, "3\n")])),
            AttemptStatus::Exited(3)
        );
        assert_eq!(
            member_status(None, None, false, &member(true), &files(&[])),
            AttemptStatus::Cancelled
        );
    }

    #[test]
    fn a_job_only_accounting_remembers_ends_as_accounting_says() {
        let m = member(false);
        let failed = SlurmState::Failed;
        assert_eq!(
            member_status(Some(&failed), Some((3, 0)), false, &m, &files(&[])),
            AttemptStatus::Exited(3)
        );
        assert_eq!(
            member_status(
                Some(&SlurmState::NodeFail),
                Some((0, 0)),
                false,
                &m,
                &files(&[])
            ),
            AttemptStatus::Error("node failure (Slurm NODE_FAIL)".to_owned())
        );
    }

    #[test]
    fn an_ended_job_prefers_the_status_file_to_slurms_word() {
        let m = member(false);
        let failed = SlurmState::Failed;
        assert_eq!(
            member_status(Some(&failed), None, false, &m, &files(&[(STATUS, "7\n")])),
            AttemptStatus::Exited(7)
        );
        let timeout = SlurmState::Timeout;
        assert_eq!(
            member_status(Some(&timeout), None, false, &m, &files(&[])),
            AttemptStatus::Error("timed out (Slurm TIMEOUT)".to_owned())
        );
        assert_eq!(
            member_status(Some(&SlurmState::Pending), None, false, &m, &files(&[])),
            AttemptStatus::Queued
        );
    }

    #[test]
    fn a_task_its_pack_did_not_start_fails_with_the_reason_or_is_lost() {
        const NOTRUN: &str = "/run/logs/s/0.0.status.notrun";
        let why =
            "not started: its pack's allocation had 3 s left, and the task's time limit is 40 s";
        let m = member(false);
        for state in [SlurmState::Running, SlurmState::Completed] {
            assert_eq!(
                member_status(Some(&state), None, true, &m, &files(&[(NOTRUN, why)])),
                AttemptStatus::Error(why.to_owned()),
                "{state}"
            );
        }
        // Cancelled meanwhile: cancelled.
        assert_eq!(
            member_status(
                Some(&SlurmState::Completed),
                None,
                true,
                &member(true),
                &files(&[(NOTRUN, why)])
            ),
            AttemptStatus::Cancelled
        );
        // A pack that ended (well or not) before its worker came to a task:
        // the task never ran, and goes to the retry policy.
        for state in [SlurmState::Completed, SlurmState::Timeout] {
            assert_eq!(
                member_status(Some(&state), Some((0, 0)), true, &m, &files(&[])),
                AttemptStatus::Lost,
                "{state}"
            );
        }
        // One it started shares the job's fate, as before.
        assert_eq!(
            member_status(
                Some(&SlurmState::Timeout),
                None,
                true,
                &m,
                &files(&[(STARTED, "")])
            ),
            AttemptStatus::Error("timed out (Slurm TIMEOUT)".to_owned())
        );
    }

    #[test]
    fn a_task_of_a_running_pack_runs_when_it_started_and_ends_with_its_file() {
        let running = SlurmState::Running;
        let m = member(false);
        assert_eq!(
            member_status(Some(&running), None, true, &m, &files(&[])),
            AttemptStatus::Queued
        );
        assert_eq!(
            member_status(Some(&running), None, true, &m, &files(&[(STARTED, "")])),
            AttemptStatus::Running
        );
        assert_eq!(
            member_status(
                Some(&running),
                None,
                true,
                &m,
                &files(&[(STARTED, ""), (STATUS, "0\n")])
            ),
            AttemptStatus::Exited(0)
        );
        // Cancelled before it started: the worker will skip it.
        assert_eq!(
            member_status(Some(&running), None, true, &member(true), &files(&[])),
            AttemptStatus::Cancelled
        );
        // A plain job's Running comes from Slurm alone.
        assert_eq!(
            member_status(Some(&running), None, false, &m, &files(&[])),
            AttemptStatus::Running
        );
    }

    #[test]
    fn array_elements_folded_into_their_array_record_get_its_state() {
        let element = JobRef::ArrayTask {
            array: JobId(7),
            task: 1,
        };
        let mut table = HashMap::new();
        table.insert(
            element.clone(),
            Entry {
                members: vec![member(false)],
                packed: false,
                missing: 0,
            },
        );
        let states = HashMap::from([(JobRef::Job(JobId(7)), SlurmState::Cancelled)]);
        let states = with_folded_arrays(&table, states);
        assert_eq!(states.get(&element), Some(&SlurmState::Cancelled));
    }

    /// A cluster whose controller is down: every command fails.
    #[derive(Debug)]
    struct ControllerDown;

    #[async_trait::async_trait]
    impl Cluster for ControllerDown {
        async fn command(
            &self,
            program: &str,
            _: &[String],
        ) -> Result<String, twinflow_core::ExecutorError> {
            Err(crate::cluster::failed(
                program,
                "exit status: 1",
                b"squeue: error: slurm_receive_msg: Socket timed out on send/recv operation",
            ))
        }
        async fn write_files(
            &self,
            _: Vec<(PathBuf, String)>,
        ) -> Result<(), twinflow_core::ExecutorError> {
            Ok(())
        }
        async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
            vec![None; paths.len()]
        }
    }

    #[tokio::test]
    async fn a_controller_outage_loses_no_job() {
        let monitor = Monitor::new(Arc::new(ControllerDown), Duration::from_secs(1));
        let recorder = Arc::new(Recorder::default());
        let mut m = member(false);
        m.sink = Arc::clone(&recorder) as Arc<dyn UpdateSink>;
        let job = JobRef::Job(JobId(5));
        lock(&monitor.table).insert(
            job.clone(),
            Entry {
                members: vec![m],
                packed: false,
                missing: 0,
            },
        );
        let ids = BTreeSet::from([5]);
        for _ in 0..5 {
            assert!(!monitor.poll(&ids).await, "nothing changed");
        }
        assert!(lock(&recorder.0).is_empty(), "{:?}", lock(&recorder.0));
        assert_eq!(lock(&monitor.table).get(&job).map(|e| e.missing), Some(0));
    }

    /// Records what it is sent.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<AttemptStatus>>);
    impl UpdateSink for Recorder {
        fn send(&self, update: Update) {
            lock(&self.0).push(update.status);
        }
    }

    /// Against the local Slurm with accounting (`scripts/test` starts it
    /// with `TWINFLOW_SLURM_ACCOUNTING=1`): a job that ended without a
    /// status file and that squeue no longer lists ends as sacct says.
    #[tokio::test]
    async fn sacct_decides_a_job_squeue_forgot() {
        if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1")
            || std::env::var("TWINFLOW_SLURM_ACCOUNTING").as_deref() != Ok("1")
        {
            eprintln!("skipped: needs TWINFLOW_TEST_SLURM=1 and TWINFLOW_SLURM_ACCOUNTING=1");
            return;
        }
        let cluster: Arc<dyn Cluster> = Arc::new(crate::cluster::LocalCluster);
        let args = ["--parsable", "--output=/dev/null", "--wrap", "exit 3"].map(str::to_owned);
        let out = cluster.command("sbatch", &args).await;
        let id = parse::parse_sbatch_parsable(&out.unwrap_or_default()).unwrap_or(JobId(0));
        assert_ne!(id, JobId(0), "sbatch gave no job id");
        let monitor = Monitor::new(cluster, Duration::from_secs(1));
        assert!(monitor.site().await.accounting);
        let job = JobRef::Job(id);
        let recorder = Arc::new(Recorder::default());
        let mut m = member(false);
        m.status_file = PathBuf::from("/nonexistent/twinflow/0.0.status");
        m.sink = Arc::clone(&recorder) as Arc<dyn UpdateSink>;
        lock(&monitor.table).insert(
            job.clone(),
            Entry {
                members: vec![m],
                packed: false,
                // As if squeue had not listed it twice.
                missing: 2,
            },
        );
        // sacct knows a job about a second after it ends.
        let start = std::time::Instant::now();
        loop {
            let mut states = HashMap::new();
            let exits = monitor.ask_accounting(&mut states).await;
            if states
                .get(&job)
                .is_some_and(|s| parse::attempt_status(s, None).is_final())
            {
                assert_eq!(exits.get(&job), Some(&(3, 0)));
                monitor.decide(&states, &exits, &HashMap::new());
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "sacct never reported job {id} as ended: {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(*lock(&recorder.0), [AttemptStatus::Exited(3)]);
    }

    #[test]
    fn the_poll_interval_backs_off_while_nothing_changes() {
        let (short, long) = (Duration::from_secs(1), Duration::from_secs(15));
        let mut i = short;
        let mut seen = Vec::new();
        for _ in 0..6 {
            i = next_interval(i, false, short, long);
            seen.push(i.as_secs());
        }
        assert_eq!(seen, [2, 4, 8, 15, 15, 15]);
        assert_eq!(next_interval(i, true, short, long), short);
    }
}
