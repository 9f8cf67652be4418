//! The Slurm executor on a login node: `sbatch --parsable` per attempt, one
//! `squeue` per poll interval for every job it tracks (the interval starts
//! short and doubles while nothing changes), `scancel` to kill (one call for
//! all the jobs cancelled together).
//!
//! A job's outcome comes from the status file its script writes (see
//! [`crate::script`]) when there is one, and from Slurm's state otherwise. A
//! job that `squeue` no longer lists and that left no status file is Lost,
//! and goes to the runtime's retry policy: a run never hangs on it.
//!
//! Handles are `slurm:<job id>:<status file>`, so a restarted runtime can
//! take its jobs back ([`Executor::reattach`]) and follow them.
//!
//! Not yet: SSH submission, job arrays, packing and `max_jobs` batching
//! (the scheduler already limits a run to `max_jobs` jobs in flight), and
//! `sacct`.

use crate::parse::{self, JobId, JobRef, SlurmState};
use crate::script;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::process::Command;
use twinflow_core::{
    AttemptKey, AttemptStatus, Executor, ExecutorError, ExecutorFactory, ExecutorSpec, Handle, Job,
    SlurmConfig, Update, UpdateSink,
};

/// Builds [`SlurmExecutor`]s.
#[derive(Debug, Clone)]
pub struct SlurmFactory {
    /// Time between two `squeue` calls (the executor polls all its jobs at once).
    pub poll_interval: Duration,
}

impl Default for SlurmFactory {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
        }
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
        if config.ssh.is_some() {
            return Err(ExecutorError::new(format!(
                "executor `{}`: submitting over SSH is not built yet; run twinflow on the login node",
                spec.name
            )));
        }
        Ok(Arc::new(SlurmExecutor::new(
            &spec.name,
            config.clone(),
            sink,
            self.poll_interval,
        )))
    }
}

#[derive(Debug)]
struct Tracked {
    key: AttemptKey,
    status_file: PathBuf,
    last: Option<AttemptStatus>,
    cancelled: bool,
    /// Polls in a row in which squeue did not list it.
    missing: u32,
}

type Jobs = Arc<Mutex<HashMap<JobId, Tracked>>>;

fn lock(jobs: &Jobs) -> std::sync::MutexGuard<'_, HashMap<JobId, Tracked>> {
    jobs.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs attempts as Slurm batch jobs; see the module documentation.
#[derive(Debug)]
pub struct SlurmExecutor {
    name: String,
    config: SlurmConfig,
    sink: Arc<dyn UpdateSink>,
    jobs: Jobs,
    poller: Mutex<Option<tokio::task::JoinHandle<()>>>,
    interval: Duration,
    /// Set on every submission, so the poller looks again soon.
    fresh: Arc<std::sync::atomic::AtomicBool>,
    /// Jobs to cancel with the next `scancel` (one call for many).
    to_cancel: Arc<Mutex<Vec<JobId>>>,
}

impl SlurmExecutor {
    /// An executor named `name` for `config`, reporting into `sink`.
    pub fn new(
        name: &str,
        config: SlurmConfig,
        sink: Arc<dyn UpdateSink>,
        interval: Duration,
    ) -> Self {
        Self {
            name: name.to_owned(),
            config,
            sink,
            jobs: Arc::default(),
            poller: Mutex::new(None),
            interval,
            fresh: Arc::default(),
            to_cancel: Arc::default(),
        }
    }

    fn track(&self, id: JobId, key: AttemptKey, status_file: PathBuf) {
        lock(&self.jobs).insert(
            id,
            Tracked {
                key,
                status_file,
                last: None,
                cancelled: false,
                missing: 0,
            },
        );
        let mut poller = self.poller.lock().unwrap_or_else(PoisonError::into_inner);
        if poller
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            let jobs = Arc::clone(&self.jobs);
            let sink = Arc::clone(&self.sink);
            let interval = self.interval;
            let name = self.name.clone();
            let fresh = Arc::clone(&self.fresh);
            *poller = Some(tokio::spawn(poll_loop(name, jobs, sink, interval, fresh)));
        }
        self.fresh.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The handle of a job.
fn handle(id: JobId, status_file: &std::path::Path) -> Handle {
    Handle(format!("slurm:{}:{}", id.0, status_file.display()))
}

fn parse_handle(handle: &Handle) -> Option<(JobId, PathBuf)> {
    let rest = handle.0.strip_prefix("slurm:")?;
    let (id, path) = rest.split_once(':')?;
    Some((JobId(id.parse().ok()?), PathBuf::from(path)))
}

async fn run(command: &str, args: &[String]) -> Result<String, ExecutorError> {
    let out = Command::new(command)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ExecutorError {
            message: format!("failed to run {command}: {e}"),
            transient: true,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ExecutorError {
            message: format!(
                "{command} failed ({}): {}",
                out.status,
                stderr.lines().last().unwrap_or("").trim()
            ),
            transient: false,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[async_trait::async_trait]
impl Executor for SlurmExecutor {
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        let status_file = job.stdout.with_extension("status");
        let script_path = job.stdout.with_extension("sbatch");
        let text = script::render(&job, &self.config, &status_file)?;
        let _ = std::fs::remove_file(&status_file);
        std::fs::write(&script_path, text).map_err(|e| {
            ExecutorError::new(format!(
                "failed to write job script {}: {e}",
                script_path.display()
            ))
        })?;
        let out = run(
            "sbatch",
            &["--parsable".to_owned(), script_path.display().to_string()],
        )
        .await
        .map_err(|e| ExecutorError {
            message: format!("{} (executor `{}`, {})", e.message, self.name, job.name),
            ..e
        })?;
        let id = parse::parse_sbatch_parsable(&out)
            .map_err(|e| ExecutorError::new(format!("sbatch for {}: {e}", job.name)))?;
        self.track(id, job.key, status_file.clone());
        self.sink.send(Update {
            key: job.key,
            status: AttemptStatus::Queued,
        });
        Ok(handle(id, &status_file))
    }

    async fn reattach(
        &self,
        _run: twinflow_core::RunRef<'_>,
        attempts: Vec<(AttemptKey, Handle)>,
    ) -> Result<Vec<AttemptKey>, ExecutorError> {
        let mut followed = Vec::new();
        for (key, h) in attempts {
            if let Some((id, status_file)) = parse_handle(&h) {
                self.track(id, key, status_file);
                followed.push(key);
            }
        }
        Ok(followed)
    }

    async fn cancel(&self, _key: AttemptKey, h: &Handle) -> Result<(), ExecutorError> {
        let Some((id, _)) = parse_handle(h) else {
            return Ok(());
        };
        if let Some(t) = lock(&self.jobs).get_mut(&id) {
            t.cancelled = true;
        }
        // Cancels that arrive together (a cancelled run) go out as one scancel.
        let first = {
            let mut pending = self
                .to_cancel
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pending.push(id);
            pending.len() == 1
        };
        if first {
            let pending = Arc::clone(&self.to_cancel);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let ids: Vec<String> =
                    std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner))
                        .iter()
                        .map(|id| id.0.to_string())
                        .collect();
                if let Err(e) = run("scancel", &ids).await {
                    tracing::warn!("{}", e.message);
                }
            });
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let ids: Vec<String> = lock(&self.jobs).keys().map(|id| id.0.to_string()).collect();
        if !ids.is_empty() {
            let _ = run("scancel", &ids).await;
        }
        if let Some(p) = self
            .poller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            p.abort();
        }
    }
}

/// One `squeue` for every tracked job per interval, until none is left.
/// The next poll interval: back to the shortest after a change (or a new
/// job), doubling while nothing changes, up to `longest`. Long-running jobs
/// cost one `squeue` every `longest`, whatever their number.
fn next_interval(
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

async fn poll_loop(
    name: String,
    jobs: Jobs,
    sink: Arc<dyn UpdateSink>,
    shortest: Duration,
    fresh: Arc<std::sync::atomic::AtomicBool>,
) {
    let longest = (shortest * 15).max(shortest);
    let mut interval = shortest;
    loop {
        tokio::time::sleep(interval).await;
        let mut changed = fresh.swap(false, std::sync::atomic::Ordering::SeqCst);
        let ids: Vec<String> = lock(&jobs).keys().map(|id| id.0.to_string()).collect();
        if ids.is_empty() {
            return;
        }
        let args = [
            "-h",
            "-r",
            "-t",
            "all",
            "-j",
            &ids.join(","),
            "-o",
            "%i|%T|%r",
        ]
        .map(str::to_owned);
        let rows = match run("squeue", &args).await {
            Ok(out) => parse::parse_squeue(&out),
            // An id slurmctld has forgotten makes a one-id squeue fail;
            // a controller outage too: try again next time.
            Err(e) => {
                tracing::warn!("executor `{name}`: {}", e.message);
                Vec::new()
            }
        };
        let mut table = lock(&jobs);
        let mut done = Vec::new();
        for (id, t) in table.iter_mut() {
            let row = rows.iter().find(|r| r.id == JobRef::Job(*id));
            let status = match row {
                Some(r) => {
                    t.missing = 0;
                    outcome(&r.state, t)
                }
                None => {
                    t.missing += 1;
                    // Listed nowhere twice in a row: its status file decides.
                    if t.missing < 2 {
                        continue;
                    }
                    match std::fs::read_to_string(&t.status_file)
                        .ok()
                        .and_then(|s| parse::parse_status_file(&s))
                    {
                        Some(code) => AttemptStatus::Exited(code),
                        None if t.cancelled => AttemptStatus::Cancelled,
                        None => AttemptStatus::Lost,
                    }
                }
            };
            if t.last.as_ref() != Some(&status) {
                changed = true;
                t.last = Some(status.clone());
                if status.is_final() {
                    done.push(*id);
                }
                sink.send(Update { key: t.key, status });
            }
        }
        for id in done {
            table.remove(&id);
        }
        drop(table);
        interval = next_interval(interval, changed, shortest, longest);
    }
}

/// A job's status from its Slurm state and, once it ended, its status file.
fn outcome(state: &SlurmState, t: &Tracked) -> AttemptStatus {
    let mapped = parse::attempt_status(state, None);
    if t.cancelled && mapped.is_final() {
        return AttemptStatus::Cancelled;
    }
    if matches!(state, SlurmState::Completed | SlurmState::Failed)
        && let Some(code) = std::fs::read_to_string(&t.status_file)
            .ok()
            .and_then(|s| parse::parse_status_file(&s))
    {
        return AttemptStatus::Exited(code);
    }
    mapped
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn handles_round_trip_with_paths_holding_colons() {
        let h = handle(JobId(42), std::path::Path::new("/scratch/a:b/0.0.status"));
        assert_eq!(h.0, "slurm:42:/scratch/a:b/0.0.status");
        assert_eq!(
            parse_handle(&h),
            Some((JobId(42), PathBuf::from("/scratch/a:b/0.0.status")))
        );
        assert_eq!(parse_handle(&Handle("pid:1:2".into())), None);
    }
}
