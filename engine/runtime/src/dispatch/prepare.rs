//! Preparing a task before it runs: emptying its working directory, staging
//! its inputs as links, creating its output directories and the directory
//! of its log files (the files themselves are the executor's to create: the
//! local one creates each on its first byte, so a silent task has none).
//!
//! When the scheduler announces a task as ready (it waits for capacity),
//! the dispatcher hands this work to a preparer thread, a bounded window
//! ahead, so that when capacity frees up only the process start remains on
//! the dispatch loop: creating files and directories costs a file system
//! round trip each (an allocation on ext4, a metadata server on Lustre).
//! A task launched before it was prepared is prepared inline.

use super::{Dispatch, Msg};
use crate::artefact;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use twinflow_core::{AttemptKey, Job, JobInput, JobOutput, TaskId};

/// How many tasks are prepared ahead of their launch at most.
pub(super) const WINDOW: usize = 64;

/// The file system work of one attempt.
#[derive(Debug)]
pub(crate) struct Prep {
    pub key: AttemptKey,
    pub workdir: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// (path relative to the working directory, absolute target, what the
    /// target is: "output `O` of TASK", for the message when it is gone)
    pub links: Vec<(String, PathBuf, String)>,
    /// Parent directories of outputs, relative to the working directory.
    pub dirs: Vec<PathBuf>,
}

/// Where an attempt's preparation is.
#[derive(Debug)]
pub(super) enum PrepState {
    /// Handed to the preparer thread.
    Pending(u32),
    /// Done.
    Done(u32),
    /// Failed, with a reason for the user.
    Failed(u32, String),
}

/// Carries out a preparation.
pub(crate) fn run(p: &Prep) -> Result<(), String> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        format!("failed to {what} {}: {e}", path.display())
    };
    artefact::fresh_dir(&p.workdir).map_err(|e| io("create working directory", &p.workdir, e))?;
    if let Some(logs) = p.stdout.parent() {
        std::fs::create_dir_all(logs).map_err(|e| io("create log directory", logs, e))?;
    }
    // A log left by an earlier use of this attempt's name (a run directory
    // reused by hand) would pass for this attempt's if it stayed silent.
    for log in [&p.stdout, &p.stderr] {
        match std::fs::remove_file(log) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("remove the stale log", log, e));
            }
            _ => {}
        }
    }
    for (rel, target, what) in &p.links {
        artefact::link_input(&p.workdir, rel, target).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && std::fs::metadata(target).is_err() {
                format!(
                    "failed to stage input {rel}: the sealed {what} is gone ({} no longer exists)",
                    target.display()
                )
            } else {
                io("stage input at", &p.workdir.join(rel), e)
            }
        })?;
    }
    for dir in &p.dirs {
        let dir = p.workdir.join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
    }
    Ok(())
}

/// The preparer thread: runs preparations in order and reports each.
#[derive(Debug)]
pub(super) struct Preparer {
    tx: std::sync::mpsc::Sender<Prep>,
}

impl Preparer {
    pub(super) fn start(reply: mpsc::UnboundedSender<Msg>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Prep>();
        std::thread::Builder::new()
            .name("twinflow-prepare".to_owned())
            .spawn(move || {
                while let Ok(prep) = rx.recv() {
                    let result = run(&prep);
                    if reply
                        .send(Msg::Prepared {
                            key: prep.key,
                            result,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .map_or_else(
                |e| {
                    tracing::warn!("no preparer thread ({e}); tasks are prepared inline");
                    let (dead, _) = std::sync::mpsc::channel();
                    Self { tx: dead }
                },
                |_| Self { tx },
            )
    }

    /// Hands over a preparation; false when the thread is gone.
    pub(super) fn send(&self, prep: Prep) -> bool {
        self.tx.send(prep).is_ok()
    }
}

impl Dispatch {
    /// The inputs of `task`, each at its path in the working directory and
    /// linked to its producer's sealed output. A triggered task (see
    /// `trigger.rs`) starts with those that exist: a missing one is left
    /// out (its queued state names it).
    fn staged_inputs(&self, task: TaskId) -> Result<Vec<JobInput>, String> {
        let plan = &self.plan;
        let triggered = self.scheduler.is_triggered(task);
        let mut staged = Vec::new();
        for input in plan.inputs(task) {
            let rels = plan.input_paths(&input);
            for (rel, producer) in rels.into_iter().zip(input.producers) {
                let found = self.sealed[producer.index()]
                    .as_deref()
                    .and_then(|s| s.iter().find(|a| a.output == input.spec.output));
                if found.is_none() && triggered {
                    continue;
                }
                let source = found.map(|a| a.path.clone()).ok_or_else(|| {
                    format!(
                        "input `{}`: {} has no sealed output `{}`",
                        input.spec.name,
                        plan.task_name(*producer),
                        input.spec.output
                    )
                })?;
                staged.push(JobInput {
                    rel,
                    producer: *producer,
                    output: input.spec.output.clone(),
                    source,
                });
            }
        }
        Ok(staged)
    }

    /// What preparing this attempt involves.
    pub(super) fn prep_spec(&self, task: TaskId, key: AttemptKey) -> Result<Prep, String> {
        let step = self.plan.step_of(task);
        let paths = self.paths(task, key.attempt);
        let links = self
            .staged_inputs(task)?
            .into_iter()
            .map(|i| {
                let what = format!(
                    "output `{}` of {}",
                    i.output,
                    self.plan.task_name(i.producer)
                );
                (i.rel, i.source, what)
            })
            .collect();
        let dirs = step
            .outputs
            .iter()
            .filter_map(|o| Path::new(&o.path).parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .collect();
        Ok(Prep {
            key,
            workdir: paths.workdir,
            stdout: paths.stdout,
            stderr: paths.stderr,
            links,
            dirs,
        })
    }

    /// The job of a prepared attempt (whose inputs were found when it was
    /// prepared).
    pub(super) fn job(&self, task: TaskId, key: AttemptKey) -> Job {
        let plan = &self.plan;
        let step = plan.step_of(task);
        let paths = self.paths(task, key.attempt);
        let mut env = plan.task_env(task);
        env.push((
            "TWINFLOW_RUN_DIR".to_owned(),
            self.run_dir.display().to_string(),
        ));
        let mut group = None;
        if self.grouped
            && let Some(attempt) = self.attempt_of(key)
        {
            env.extend(self.group_vars(task, attempt));
            group = self.job_group(task, attempt);
        }
        Job {
            key,
            name: plan.task_name(task),
            script: plan.task(task).command.to_string(),
            env,
            workdir: paths.workdir,
            stdout: paths.stdout,
            stderr: paths.stderr,
            resources: step.resources.clone(),
            step: step.name.clone(),
            pack: step.pack,
            launcher: step.launcher,
            inputs: self.staged_inputs(task).unwrap_or_default(),
            outputs: step
                .outputs
                .iter()
                .map(|o| JobOutput {
                    name: o.name.clone(),
                    rel: o.path.clone(),
                })
                .collect(),
            group,
        }
    }

    /// Prepares an attempt on the loop's thread and builds its job.
    pub(super) fn prepare(&mut self, task: TaskId, key: AttemptKey) -> Result<Job, String> {
        run(&self.prep_spec(task, key)?)?;
        Ok(self.job(task, key))
    }

    /// The scheduler says `task` waits for capacity: look it up in the
    /// cache, else queue its preparation.
    pub(super) fn on_ready(&mut self, task: TaskId, attempt: u32) {
        if self.grouped && self.scheduler.group_instance(task).is_some() {
            // Cached and prepared with its whole instance, when it launches.
            return;
        }
        let key = self.key(task, attempt);
        let cache_key = self.cache_key(task);
        if self.cache
            && !self.rerun.contains(&task.0)
            && let Some(from) = self.reuse(task, key.attempt, &cache_key)
        {
            self.precached.insert(task.0, (from, cache_key));
            return;
        }
        self.keys.insert(task.0, cache_key);
        self.backlog.push_back((task, attempt));
        self.fill_window();
    }

    /// Hands queued preparations to the preparer while the window has room.
    pub(super) fn fill_window(&mut self) {
        while self.preparing < WINDOW {
            let Some((task, attempt)) = self.backlog.pop_front() else {
                return;
            };
            let still_ready = self.scheduler.task_state(task)
                == twinflow_core::scheduler::TaskState::Ready
                && self.scheduler.attempt(task) == attempt;
            if !still_ready {
                continue;
            }
            let key = self.key(task, attempt);
            match self.prep_spec(task, key) {
                Ok(prep) => {
                    if !self.preparer.send(prep) {
                        return;
                    }
                    self.preparing += 1;
                    self.prep.insert(task.0, PrepState::Pending(attempt));
                }
                Err(reason) => {
                    self.prep.insert(task.0, PrepState::Failed(attempt, reason));
                }
            }
        }
    }

    /// A preparation finished: launch the attempt if it is already due.
    pub(super) fn on_prepared(&mut self, key: AttemptKey, result: Result<(), String>) {
        self.preparing = self.preparing.saturating_sub(1);
        let t = key.task.0;
        let Some(attempt) = self.attempt_of(key) else {
            return;
        };
        if matches!(self.prep.get(&t), Some(PrepState::Pending(a)) if *a == attempt) {
            if self.waiting_launch.remove(&t).is_some() {
                self.prep.remove(&t);
                match result {
                    Ok(()) => self.due.push(self.job(key.task, key)),
                    Err(reason) => {
                        let outcome = self.failed(t, reason);
                        self.finished(key.task, attempt, outcome);
                    }
                }
            } else {
                let state = match result {
                    Ok(()) => PrepState::Done(attempt),
                    Err(reason) => PrepState::Failed(attempt, reason),
                };
                self.prep.insert(t, state);
            }
        }
        self.fill_window();
    }
}
