//! Coupling-group instances in the dispatch loop: an instance's members
//! arrive in one launch batch (the scheduler's rule); here the instance is
//! served from the cache only if every member is, its shared directory
//! (`TWINFLOW_GROUP_DIR`) is made empty before its members start, each
//! member's job gets the `TWINFLOW_GROUP_*` variables and its `Job::group`,
//! and a member stopped because another failed is recorded as such.

use super::Dispatch;
use crate::artefact;
use std::collections::HashMap;
use std::path::PathBuf;
use twinflow_core::{JobGroup, TaskId, group_dir, group_env, job_group};

impl Dispatch {
    /// The shared directory of `task`'s group instance for scheduler
    /// attempt `attempt` (named by the leader's recorded attempt).
    fn group_dir_of(&self, task: TaskId, attempt: u32) -> Option<PathBuf> {
        let instance = self.scheduler.group_instance(task)?;
        let leader = *instance.members.first()?;
        let recorded = self.key(leader, attempt).attempt;
        Some(group_dir(&self.run_dir, &self.plan, instance, recorded))
    }

    /// The `TWINFLOW_GROUP_*` variables of a member's job (none for a task
    /// outside groups).
    pub(super) fn group_vars(&self, task: TaskId, attempt: u32) -> Vec<(String, String)> {
        let (Some(instance), Some(dir)) = (
            self.scheduler.group_instance(task),
            self.group_dir_of(task, attempt),
        ) else {
            return Vec::new();
        };
        group_env(&self.plan, instance, task, &dir)
    }

    /// What a member's job says of its instance (`Job::group`; none for a
    /// task outside groups).
    pub(super) fn job_group(&self, task: TaskId, attempt: u32) -> Option<JobGroup> {
        let instance = self.scheduler.group_instance(task)?;
        let dir = self.group_dir_of(task, attempt)?;
        Some(job_group(&self.plan, instance, task, &dir))
    }

    /// Before a launch batch: each group instance in it whose members all
    /// have an intact cached result is served from the cache (as
    /// `precached`), else none of its members is, and its directory is
    /// made empty. Returns the members that cannot start, with the reason.
    pub(super) fn launch_groups(&mut self, launches: &[(TaskId, u32)]) -> HashMap<u32, String> {
        let mut failed = HashMap::new();
        for &(task, attempt) in launches {
            let Some(instance) = self.scheduler.group_instance(task) else {
                continue;
            };
            if instance.members.first() != Some(&task) {
                continue;
            }
            let members = instance.members.clone();
            if self.cache && self.reuse_instance(&members, attempt) {
                continue;
            }
            let Some(dir) = self.group_dir_of(task, attempt) else {
                continue;
            };
            if let Err(e) = artefact::fresh_dir(&dir) {
                let why = format!("failed to create group directory {}: {e}", dir.display());
                for m in members {
                    failed.insert(m.0, why.clone());
                }
            }
        }
        failed
    }

    /// Serves every member of an instance from the cache, or none: true
    /// when all were (each then waits in `precached`).
    fn reuse_instance(&mut self, members: &[TaskId], attempt: u32) -> bool {
        let mut found = Vec::with_capacity(members.len());
        for &m in members {
            let key = self.cache_key(m);
            match self.find_cached(m, &key) {
                Some(hit) => found.push((m, key, hit)),
                None => return false,
            }
        }
        let mut served = Vec::with_capacity(found.len());
        for (m, key, hit) in found {
            let recorded = self.key(m, attempt).attempt;
            match self.adopt_cached(m, recorded, hit) {
                Some(from) => served.push((m, from, key)),
                None => return false,
            }
        }
        for (m, from, key) in served {
            self.precached.insert(m.0, (from, key));
        }
        true
    }

    /// Why a member that did not succeed (or ended while another failed)
    /// is retried or given up, when it has no reason of its own.
    pub(super) fn group_reason(&self, task: TaskId) -> Option<String> {
        let failed = self.scheduler.group_failure(task)?;
        (failed != task).then(|| {
            format!(
                "its group instance did not succeed: {} failed",
                self.plan.task_name(failed)
            )
        })
    }
}
