//! An executor's `user_max_jobs`: the user's Slurm jobs on one cluster, for
//! every run of this process (the daemon, or one `twinflow run`), kept
//! under a cap, beside each executor's own `max_jobs`.
//!
//! The count ([`UserJobs`], one per cluster: it lives in the cluster's
//! [`crate::monitor::Monitor`], which every executor of one
//! [`crate::SlurmFactory`] on that login node or SSH target shares) is
//!
//! - the jobs twinflow submitted there (or took back after a restart) and
//!   that have not ended, whatever the executor, run or cap, counted as
//!   Slurm's limits count them: a plain job and a packed job one each, a
//!   job array one per element (`MaxSubmitJobs` counts array elements);
//! - plus the user's other jobs the last poll showed pending or running
//!   (`squeue --me`, once a cap is set on that cluster: [`count_others`]),
//!   since the site's limit counts those too. Until the first poll has
//!   counted them, a capped executor sends nothing: the poller starts for
//!   it, and its attempts go out after one poll interval.
//!
//! An executor with `user_max_jobs: N` sends out a job only while that
//! count stays at most `N`; the rest wait in its queue (their attempts are
//! Queued) and go out as jobs end ([`UserJobs::give_back`]) or the poll
//! sees the user's other jobs end ([`UserJobs::seen`]). Executors on one
//! cluster that set different caps each keep the shared count under their
//! own.

use crate::monitor::OnEnd;
use crate::parse::{JobRef, SlurmState, attempt_status};
use std::collections::HashMap;

/// The user's jobs on one cluster and the executors waiting for room; see
/// the module documentation.
#[derive(Default)]
pub(crate) struct UserJobs {
    /// Jobs twinflow submitted here and that have not ended.
    ours: u32,
    /// The user's live jobs the last poll showed that twinflow does not
    /// follow; `None` before the first poll, when a capped executor sends
    /// nothing (the user may hold the whole cap already).
    others: Option<u32>,
    /// Executors holding attempts back for their cap, by owner.
    waiting: HashMap<u64, Waiter>,
}

impl std::fmt::Debug for UserJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserJobs")
            .field("ours", &self.ours)
            .field("others", &self.others)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

/// An executor that holds attempts back for its cap.
struct Waiter {
    cap: u32,
    /// How many attempts it holds.
    held: u32,
    /// Drains its queue.
    wake: OnEnd,
}

impl UserJobs {
    /// How many more jobs fit under `cap` (`None`: no cap, no limit).
    pub(crate) fn room(&self, cap: Option<u32>) -> u32 {
        match (cap, self.others) {
            (None, _) => u32::MAX,
            (Some(_), None) => 0,
            (Some(cap), Some(others)) => cap.saturating_sub(self.ours.saturating_add(others)),
        }
    }

    /// `jobs` more of twinflow's jobs are (about to be) in Slurm.
    pub(crate) fn take(&mut self, jobs: u32) {
        self.ours = self.ours.saturating_add(jobs);
    }

    /// `jobs` of twinflow's jobs ended (or their `sbatch` failed); returns
    /// the waiters to wake.
    #[must_use]
    pub(crate) fn give_back(&mut self, jobs: u32) -> Vec<OnEnd> {
        self.ours = self.ours.saturating_sub(jobs);
        self.due()
    }

    /// A poll counted `others` live jobs of the user that twinflow does not
    /// follow; returns the waiters to wake.
    #[must_use]
    pub(crate) fn seen(&mut self, others: u32) -> Vec<OnEnd> {
        self.others = Some(others);
        self.due()
    }

    /// Executor `owner` holds `held` attempts back for `cap`; `wake`
    /// drains its queue once there is room (see [`Self::due`]).
    pub(crate) fn wait(&mut self, owner: u64, cap: u32, held: usize, wake: OnEnd) {
        let held = u32::try_from(held).unwrap_or(u32::MAX);
        self.waiting.insert(owner, Waiter { cap, held, wake });
    }

    /// Executor `owner` holds nothing back any more (shut down).
    pub(crate) fn forget(&mut self, owner: u64) {
        self.waiting.remove(&owner);
    }

    /// Whether an executor waits for room: the poll goes on for it even
    /// with no job of twinflow's to follow.
    pub(crate) fn has_waiters(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The waiters to wake now, taken off the list (a drain that still
    /// holds attempts back waits again). As for `max_jobs`, a waiter wakes
    /// once a quarter of its cap is free, or all it holds fits, or there is
    /// room and no job of twinflow's is left to end and make more: refills
    /// go out as arrays rather than one `sbatch` per ended job.
    fn due(&mut self) -> Vec<OnEnd> {
        let Some(others) = self.others else {
            return Vec::new();
        };
        let used = self.ours.saturating_add(others);
        let ours = self.ours;
        let mut woken = Vec::new();
        self.waiting.retain(|_, w| {
            let room = w.cap.saturating_sub(used);
            let batch = (w.cap / 4).max(1);
            let wake = room > 0 && (room >= batch || room >= w.held || ours == 0);
            if wake {
                woken.push(std::sync::Arc::clone(&w.wake));
            }
            !wake
        });
        woken
    }
}

/// The user's live jobs in what `squeue --me -h -r -t all -o '%i|%T|%r'`
/// printed that `ours` does not claim: one per job, array element and
/// heterogeneous job component, the elements of a folded pending array
/// (`426_[4-9%2]`) one each; ended jobs (which `-t all` lists until
/// slurmctld forgets them) do not count.
pub(crate) fn count_others(stdout: &str, ours: impl Fn(&JobRef) -> bool) -> u32 {
    let mut count = 0u32;
    for line in stdout.lines() {
        let mut fields = line.trim().splitn(3, '|');
        let (Some(id), Some(state)) = (fields.next(), fields.next()) else {
            continue;
        };
        if attempt_status(&SlurmState::parse(state), None).is_final() {
            continue;
        }
        let id = id.trim();
        let jobs = match JobRef::parse(id) {
            Some(job) if ours(&job) => 0,
            Some(JobRef::ArrayPending { tasks, .. }) => indices(&tasks),
            Some(_) => 1,
            // A heterogeneous job's component (`12+0`) is a job of its own.
            None if het_component(id) => 1,
            None => 0,
        };
        count = count.saturating_add(jobs);
    }
    count
}

/// `12+0`: digits, `+`, digits.
fn het_component(id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    id.split_once('+')
        .is_some_and(|(a, b)| digits(a) && digits(b))
}

/// How many indices an array expression names: `4-9%2` is 6, `1,3,5-7` is
/// 5, `0-10:5` is 3; a part it cannot read counts one.
fn indices(expr: &str) -> u32 {
    let expr = expr.split_once('%').map_or(expr, |(e, _)| e);
    expr.split(',')
        .map(|part| {
            let (range, step) = part.split_once(':').unwrap_or((part, "1"));
            let step: u32 = step.parse().unwrap_or(1).max(1);
            match range.split_once('-') {
                Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                    (Ok(a), Ok(b)) if b >= a => (b - a) / step + 1,
                    _ => 1,
                },
                None => 1,
            }
        })
        .fold(0u32, u32::saturating_add)
}

#[cfg(test)]
#[path = "user_cap_tests.rs"]
mod tests;
