//! Riding out a cluster that is out of reach: attempts whose `sbatch` may
//! or may not have gone through are held, looked up by their `--comment`
//! and sent again with a backoff, for [`OUTAGE_PATIENCE`]; a cluster that
//! never answered is not waited for.

use super::*;

/// First wait before sending again what a controller outage held back.
pub(super) const RETRY_FIRST: Duration = Duration::from_secs(5);
/// Longest such wait.
pub(super) const RETRY_MAX: Duration = Duration::from_secs(60);
/// How long submissions wait for a cluster that answered before and is out
/// of reach now (a controller restart, a dropped network) before the
/// attempts held back fail and go to the retry policy. A cluster that never
/// answered is not waited for: a wrong host or port is not an outage.
pub(super) const OUTAGE_PATIENCE: Duration = Duration::from_secs(600);

impl Inner {
    /// After a transient error: `None` to wait for the cluster, or why the
    /// attempts held back fail now (it never answered, or it has been out
    /// of reach for [`OUTAGE_PATIENCE`]).
    pub(super) fn give_up(&self, e: &ExecutorError) -> Option<String> {
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
    pub(super) fn answered(&self) {
        self.monitor.mark_answered();
        let mut budget = lock(&self.budget);
        budget.outage_since = None;
        budget.retry_delay = RETRY_FIRST;
    }

    /// Holds attempts whose `sbatch` failed for now, and tries again after
    /// a backoff (5 s, doubling up to a minute).
    pub(super) fn uncertain(self: &Arc<Self>, jobs: Vec<Job>) {
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
    pub(super) async fn retry_uncertain(self: Arc<Self>) {
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
            self.monitor.user_jobs().take(1);
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
}
