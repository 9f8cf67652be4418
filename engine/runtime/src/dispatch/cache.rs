//! Caching: a task's cache key (with the digest of its step's code, made
//! once per run), and reusing a sealed earlier result whose key matches and
//! whose outputs are intact.

use super::Dispatch;
use crate::artefact::{self, CacheKey};
use std::path::Path;
use std::sync::OnceLock;
use twinflow_core::{StepSpec, TaskId};

/// The digest of each step's code (`code` files and `model:` crate), made
/// when its first task needs a key: a step of 10,000 tasks reads its script
/// once per run, not once per task.
#[derive(Debug)]
pub(super) struct CodeDigests(Box<[OnceLock<String>]>);

impl CodeDigests {
    pub(super) fn new(steps: usize) -> Self {
        Self((0..steps).map(|_| OnceLock::new()).collect())
    }

    fn of(&self, index: usize, step: &StepSpec) -> &str {
        match self.0.get(index) {
            Some(cell) => cell.get_or_init(|| code_digest(step)),
            None => "",
        }
    }
}

/// One digest over the paths and contents of a step's code: each file, each
/// directory as its tree (symbolic links by their target text, not
/// followed), and the model crate's directory. What cannot be read counts
/// as its error, so that a key never matches one made while it could.
fn code_digest(step: &StepSpec) -> String {
    let mut key = CacheKey::new(&step.name, "code");
    for path in step.code.iter().chain(&step.model) {
        key.field(&path.display().to_string());
        if let Err(e) = tree(&mut key, path, Path::new("")) {
            key.field(&format!("unreadable: {e}"));
        }
    }
    key.finish()
}

fn tree(key: &mut CacheKey, root: &Path, rel: &Path) -> std::io::Result<()> {
    // `root.join("")` would end in `/`, which a file does not match.
    let (path, meta) = if rel.as_os_str().is_empty() {
        (root.to_path_buf(), std::fs::metadata(root)?)
    } else {
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path)?;
        (path, meta)
    };
    key.field(&rel.display().to_string());
    if meta.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            tree(key, root, &rel.join(name))?;
        }
    } else if meta.file_type().is_symlink() {
        key.field(&std::fs::read_link(&path)?.display().to_string());
    } else {
        key.field(&artefact::file_sha256(&path)?);
    }
    Ok(())
}

/// A cached result: the run and task that sealed it, and its artefacts.
pub(super) type Cached = (String, u32, Vec<artefact::Sealed>);

impl Dispatch {
    /// The cache key of a task whose dependencies are sealed.
    pub(super) fn cache_key(&self, task: TaskId) -> String {
        let plan = &self.plan;
        let step = plan.step_of(task);
        let mut key = CacheKey::new(&step.name, &plan.task(task).command);
        key.field(self.code.of(plan.task(task).step.index(), step));
        for (name, value) in plan.task_env(task) {
            if name == "TWINFLOW_RUN_ID" || name.starts_with("TWINFLOW_PARAM_") {
                continue;
            }
            key.field(&name);
            key.field(&value);
        }
        if let Some(c) = &step.container {
            key.field(&c.image);
            // The digest the executor resolved (a re-tagged image re-runs).
            let digest = self.images.get(plan.task(task).step.index());
            key.field(digest.and_then(Option::as_deref).unwrap_or(""));
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
        let found = self.find_cached(task, cache_key)?;
        self.adopt_cached(task, attempt, found)
    }

    /// An intact sealed earlier result with this cache key (its run, task
    /// and artefacts), touching nothing of this run. A source task has
    /// none: it always asks the source cache, which decides by its
    /// `refresh` whether the upstream is asked again (a hit there costs a
    /// lookup and a hard link); its consumers' keys hold its digest.
    pub(super) fn find_cached(&self, task: TaskId, cache_key: &str) -> Option<Cached> {
        if self.plan.executor_of(task).backend.kind() == twinflow_core::ExecutorKind::Fetch {
            return None;
        }
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
            if !artefact::intact(s, &output.path) {
                return None;
            }
            sealed.push(s.clone());
        }
        Some((run, from_task, sealed))
    }

    /// Takes a result [`Self::find_cached`] found as this attempt's: its
    /// outputs are linked into the task's directory. Returns the run it
    /// came from.
    pub(super) fn adopt_cached(
        &mut self,
        task: TaskId,
        attempt: u32,
        (run, from_task, mut sealed): Cached,
    ) -> Option<String> {
        let step = self.plan.step_of(task);
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
                    let (size, sha256, mtime_ns) = artefact::digest(&to, &output.path).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn step(code: Vec<std::path::PathBuf>) -> StepSpec {
        StepSpec {
            name: "s".into(),
            description: None,
            executor: twinflow_core::ExecutorId(0),
            for_each: Vec::new(),
            cycling: false,
            inputs: Vec::new(),
            after: Vec::new(),
            outputs: Vec::new(),
            resources: twinflow_core::Resources::default(),
            retries: 0,
            timeout_seconds: None,
            pack: None,
            group: None,
            launcher: None,
            env: Vec::new(),
            container: None,
            model: None,
            code,
            hooks: Vec::new(),
            tasks: 0..10_000,
        }
    }

    #[test]
    fn a_steps_code_is_read_once_per_run_and_covers_contents_and_trees() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("a.py");
        std::fs::write(&script, "1").unwrap();
        let s = step(vec![script.clone()]);
        let digests = CodeDigests::new(1);
        let first = digests.of(0, &s).to_owned();
        std::fs::write(&script, "2").unwrap();
        assert_eq!(digests.of(0, &s), first, "read once per run");
        assert_ne!(code_digest(&s), first, "a new run sees the change");

        let lib = dir.path().join("lib");
        std::fs::create_dir_all(lib.join("deep")).unwrap();
        std::fs::write(lib.join("deep/m.py"), "x").unwrap();
        let s = step(vec![lib.clone()]);
        let before = code_digest(&s);
        std::fs::write(lib.join("deep/m.py"), "y").unwrap();
        assert_ne!(code_digest(&s), before, "a file deep in a directory counts");
        std::os::unix::fs::symlink("/usr/share", lib.join("share")).unwrap();
        let linked = code_digest(&s);
        std::fs::remove_file(lib.join("share")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", lib.join("share")).unwrap();
        assert_ne!(code_digest(&s), linked, "a link counts by its target text");
    }
}
