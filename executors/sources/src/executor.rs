//! The fetch executor: runs the plan's source tasks (step `sources.NAME`,
//! command = the instance's URL) in this process, on the submitting host.
//! Each attempt resolves its instance through the [`Cache`], hard-links
//! the entry to the task's one output, writes `source.json` (provenance)
//! beside it and exits 0; a failure is an [`AttemptStatus::Error`] naming
//! the source and URL. Progress and retries go to the task's stderr.
//!
//! A source with `wait` (a data trigger) is checked every
//! `interval_seconds` while absent (and, with `refresh`, while unchanged
//! from what the cache held when the wait began) until `timeout_seconds`.
//!
//! Attempts live in this process only: [`Executor::reattach`] follows
//! none, so the runtime runs lost ones again (the cache resumes their
//! partial downloads).

use crate::cache::{Cache, Entry, Policy, Resolution};
use crate::progress::{LogFn, with_log};
use crate::registry::Fetchers;
use crate::scrub::scrub_url;
use crate::{Fetcher, Request, SourceError};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use twinflow_core::{
    AttemptKey, AttemptStatus, BackendConfig, Executor, ExecutorError, ExecutorFactory,
    ExecutorSpec, FetchConfig, Handle, Job, RunRef, SOURCE_RECORD_FILE, SourceRecord, SourceSpec,
    Update, UpdateSink,
};

/// Builds [`FetchExecutor`]s over one cache.
#[derive(Debug, Clone)]
pub struct FetchFactory {
    /// The cache's root (`<state_dir>/sources`).
    pub cache_root: PathBuf,
    /// The fetchers by scheme.
    pub fetchers: Fetchers,
}

impl FetchFactory {
    /// A factory with the built-in fetchers.
    pub fn new(cache_root: impl Into<PathBuf>) -> Self {
        Self {
            cache_root: cache_root.into(),
            fetchers: Fetchers::builtin(),
        }
    }
}

impl ExecutorFactory for FetchFactory {
    fn create(
        &self,
        spec: &ExecutorSpec,
        sink: Arc<dyn UpdateSink>,
    ) -> Result<Arc<dyn Executor>, ExecutorError> {
        let BackendConfig::Fetch(config) = &spec.backend else {
            return Err(ExecutorError::new(format!(
                "executor `{}` is not a fetch executor",
                spec.name
            )));
        };
        Ok(Arc::new(FetchExecutor {
            config: config.clone(),
            cache: Cache::new(&self.cache_root),
            fetchers: self.fetchers.clone(),
            sink,
            running: Arc::new(Mutex::new(HashMap::new())),
        }))
    }
}

type Running = Arc<Mutex<HashMap<AttemptKey, JoinHandle<()>>>>;

/// Fetches sources in this process (see the module docs).
#[derive(Debug)]
pub struct FetchExecutor {
    config: FetchConfig,
    cache: Cache,
    fetchers: Fetchers,
    sink: Arc<dyn UpdateSink>,
    running: Running,
}

#[async_trait::async_trait]
impl Executor for FetchExecutor {
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        let Some(spec) = self.config.source_of_step(&job.step).cloned() else {
            return Err(ExecutorError::new(format!(
                "no source for step `{}` in the fetch executor",
                job.step
            )));
        };
        let key = job.key;
        let handle = Handle(format!("fetch:{}:{}", key.task.0, key.attempt));
        let fetcher = self.fetchers.get(spec.scheme).cloned();
        let (cache, sink, running) = (self.cache.clone(), self.sink.clone(), self.running.clone());
        self.sink.send(Update {
            key,
            status: AttemptStatus::Running,
        });
        let mut map = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let task = tokio::spawn(async move {
            let awaiting = {
                let sink = sink.clone();
                move |status: AttemptStatus| sink.send(Update { key, status })
            };
            let status = run(&job, &spec, &cache, fetcher.as_deref(), &awaiting).await;
            // Cancelled meanwhile: cancel() took the entry and reported.
            let mine = running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key)
                .is_some();
            if mine {
                sink.send(Update { key, status });
            }
        });
        map.insert(key, task);
        Ok(handle)
    }

    fn handles_must_be_durable(&self) -> bool {
        false
    }

    async fn reattach(
        &self,
        _run: RunRef<'_>,
        _attempts: Vec<(AttemptKey, Handle)>,
    ) -> Result<Vec<AttemptKey>, ExecutorError> {
        // A fetch of an earlier process died with it; nothing is left to
        // end. The runtime runs it again and the cache resumes it.
        Ok(Vec::new())
    }

    async fn cancel(&self, key: AttemptKey, _handle: &Handle) -> Result<(), ExecutorError> {
        let task = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
            self.sink.send(Update {
                key,
                status: AttemptStatus::Cancelled,
            });
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let tasks: Vec<_> = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, t)| t)
            .collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// One attempt, start to end.
async fn run(
    job: &Job,
    spec: &SourceSpec,
    cache: &Cache,
    fetcher: Option<&dyn Fetcher>,
    report: &(dyn Fn(AttemptStatus) + Send + Sync),
) -> AttemptStatus {
    let log = stderr_log(job);
    let url = job.script.trim();
    let shown = scrub_url(url);
    let Some(fetcher) = fetcher else {
        return AttemptStatus::Error(format!(
            "source `{}` ({shown}): the `{}` scheme's fetcher is not built",
            spec.name, spec.scheme
        ));
    };
    let Some(output) = job.outputs.first() else {
        return AttemptStatus::Error(format!("source `{}`: the task has no output", spec.name));
    };
    log(&format!("fetching source `{}` from {shown}", spec.name));
    let started = Instant::now();
    let entry = match with_log(
        log.clone(),
        wait_and_resolve(spec, url, cache, fetcher, &log, report),
    )
    .await
    {
        Ok(entry) => entry,
        Err(message) => {
            log(&message);
            return AttemptStatus::Error(message);
        }
    };
    let target = job.workdir.join(&output.rel);
    if let Err(e) = cache.materialise(&entry, &target) {
        let message = format!("source `{}` ({shown}): {e}", spec.name);
        log(&message);
        return AttemptStatus::Error(message);
    }
    let record = SourceRecord {
        format: SourceRecord::FORMAT,
        url: shown.clone(),
        content_url: entry.content_url.clone(),
        sha256: entry.sha256.clone(),
        size: entry.size,
        retrieved_at: entry.retrieved_at.clone(),
        directory: entry.directory,
        citation: entry.citation.clone(),
    };
    let path = job.workdir.join(SOURCE_RECORD_FILE);
    let written = serde_json::to_vec_pretty(&record)
        .map_err(|e| e.to_string())
        .and_then(|text| std::fs::write(&path, text).map_err(|e| e.to_string()));
    if let Err(e) = written {
        return AttemptStatus::Error(format!("failed to write {}: {e}", path.display()));
    }
    log(&format!(
        "source `{}`: {} bytes, sha256 {}, ready in {:.2} s",
        spec.name,
        entry.size,
        entry.sha256,
        started.elapsed().as_secs_f64()
    ));
    AttemptStatus::Exited(0)
}

/// Resolves the instance, waiting while it is absent (or unchanged) when
/// the source is a data trigger — reported as
/// [`AttemptStatus::AwaitingData`] at each check, and as `Running` again
/// once the data is there; `Err` is the attempt's message.
async fn wait_and_resolve(
    spec: &SourceSpec,
    url: &str,
    cache: &Cache,
    fetcher: &dyn Fetcher,
    log: &LogFn,
    report: &(dyn Fn(AttemptStatus) + Send + Sync),
) -> Result<Entry, String> {
    let request = Request { spec, url };
    let shown = scrub_url(url);
    let policy = match (spec.wait, spec.refresh_seconds) {
        (Some(_), Some(_)) => {
            cache
                .peek(&request)
                .map_or(Policy::Current, |e| Policy::WaitForChange {
                    since: e.sha256,
                })
        }
        _ => Policy::Current,
    };
    let started = Instant::now();
    let mut checks = 0u64;
    loop {
        checks += 1;
        let reason = match cache.resolve(request, fetcher, &policy).await {
            Ok(Resolution::Ready { entry, fetched }) => {
                if !fetched {
                    log(&format!("source `{}`: from the cache", spec.name));
                }
                if checks > 1 {
                    report(AttemptStatus::Running);
                }
                return Ok(entry);
            }
            Ok(Resolution::NotYet(reason)) => reason,
            Err(SourceError::Absent { reason, .. }) if spec.wait.is_some() => reason,
            Err(e) => return Err(e.to_string()),
        };
        let Some(wait) = spec.wait else {
            return Err(format!("source `{}` ({shown}): {reason}", spec.name));
        };
        let elapsed = started.elapsed();
        let interval = Duration::from_secs(wait.interval_seconds.max(1));
        let next = match wait.timeout_seconds.map(Duration::from_secs) {
            Some(timeout) if elapsed >= timeout => {
                return Err(format!(
                    "waited {} s for source `{}` ({shown}): {reason}",
                    timeout.as_secs(),
                    spec.name
                ));
            }
            Some(timeout) => interval.min(timeout - elapsed),
            None => interval,
        };
        let line = format!(
            "source `{}`: check {checks}: {reason}; next check in {:.0} s",
            spec.name,
            next.as_secs_f64()
        );
        log(&line);
        report(AttemptStatus::AwaitingData(format!(
            "{shown}: {reason} (check {checks}; next in {:.0} s{})",
            next.as_secs_f64(),
            wait.timeout_seconds
                .map(|t| format!(", gives up after {t} s"))
                .unwrap_or_default()
        )));
        tokio::time::sleep(next).await;
    }
}

/// Lines to the job's stderr file (created now), time-stamped.
fn stderr_log(job: &Job) -> LogFn {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&job.stderr)
        .map_err(|e| tracing::warn!("failed to open {}: {e}", job.stderr.display()))
        .ok();
    let file = Arc::new(Mutex::new(file));
    Arc::new(move |line: &str| {
        if let Some(f) = file.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            let _ = writeln!(f, "{} {line}", jiff::Timestamp::now());
        }
    })
}
