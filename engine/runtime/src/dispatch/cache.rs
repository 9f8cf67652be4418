//! Caching: a task's cache key, and reusing a sealed earlier result whose
//! key matches and whose outputs are intact.

use super::Dispatch;
use crate::artefact::{self, CacheKey};
use twinflow_core::TaskId;

impl Dispatch {
    /// The cache key of a task whose dependencies are sealed.
    pub(super) fn cache_key(&self, task: TaskId) -> String {
        let plan = &self.plan;
        let step = plan.step_of(task);
        let mut key = CacheKey::new(&step.name, &plan.task(task).command);
        for (name, value) in plan.task_env(task) {
            if name == "TWINFLOW_RUN_ID" || name.starts_with("TWINFLOW_PARAM_") {
                continue;
            }
            key.field(&name);
            key.field(&value);
        }
        if let Some(c) = &step.container {
            key.field(&c.image);
        }
        for o in &step.outputs {
            key.field(&o.name);
            key.field(&o.path);
        }
        for input in plan.inputs(task) {
            key.field(&input.spec.name);
            for p in input.producers {
                let digest = self.sealed[p.index()]
                    .as_deref()
                    .and_then(|s| s.iter().find(|a| a.output == input.spec.output))
                    .map_or("", |a| a.sha256.as_str());
                key.field(digest);
            }
        }
        key.finish()
    }

    /// The cache key of a task whose producers' results are all known here
    /// (an adopted attempt that ended: it was launched by an earlier
    /// process, so its key was never recorded; without one, a later resume
    /// would not find its result and would run it again).
    pub(super) fn cache_key_if_sealed(&self, task: TaskId) -> Option<String> {
        let sealed = self.plan.inputs(task).all(|input| {
            input
                .producers
                .iter()
                .all(|p| self.sealed[p.index()].is_some())
        });
        sealed.then(|| self.cache_key(task))
    }

    /// Reuses a sealed earlier result with the same cache key, if one is
    /// intact: its outputs are linked into this task's directory. Returns the
    /// run it came from.
    pub(super) fn reuse(&mut self, task: TaskId, attempt: u32, cache_key: &str) -> Option<String> {
        let found = {
            let mut store = crate::lock(&self.store);
            store
                .write(|tx| {
                    let Some((run, t)) = tx.cache_lookup(cache_key)? else {
                        return Ok(None);
                    };
                    let artefacts = tx.artefacts_of(&run, t)?;
                    Ok(Some((run, t, artefacts)))
                })
                .ok()
                .flatten()
        }?;
        let (run, from_task, rows) = found;
        let step = self.plan.step_of(task);
        let mut sealed = Vec::with_capacity(step.outputs.len());
        for output in &step.outputs {
            let s = rows.iter().find(|r| r.output == output.name)?;
            if !artefact::intact(s) {
                return None;
            }
            sealed.push(s.clone());
        }
        let same_place = run == self.run_id && from_task == task.0;
        if !same_place {
            let workdir = self.paths(task, attempt).workdir;
            artefact::fresh_dir(&workdir).ok()?;
            for (s, output) in sealed.iter_mut().zip(&step.outputs) {
                let to = workdir.join(&output.path);
                let linked = artefact::adopt(&s.path, &to).ok()?;
                // A hard link is the file just found intact; a copy is checked.
                let mtime_ns = if linked {
                    artefact::mtime_of(&to).ok()?
                } else {
                    let (size, sha256, mtime_ns) = artefact::digest(&to).ok()?;
                    if size != s.size || sha256 != s.sha256 {
                        return None;
                    }
                    mtime_ns
                };
                s.path = to;
                s.mtime_ns = mtime_ns;
            }
        }
        self.sealed[task.index()] = Some(sealed.into_boxed_slice());
        Some(run)
    }
}
