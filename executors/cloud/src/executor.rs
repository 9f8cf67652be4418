//! [`CloudExecutor`]: attempts on a VM over SSH.
//!
//! Submitting an attempt: set up the VM once (its working directory made
//! absolute, the runner installed), put the inputs in the store, write
//! `task.json` to the attempt's control directory, then launch the runner
//! detached (`setsid`, its own session and process group, stdin from
//! `/dev/null`) with the store settings on the launcher's stdin. The
//! handle, `cloud:<vm>|<control directory>`, is all a later process needs
//! to find the attempt again.
//!
//! A step with a `container:` has its image resolved on the VM once, at
//! submit (`containers.rs`); its attempts' `task.json` carry the
//! container and the runner runs them inside it. The executor's
//! `prologue:` goes in every `task.json`; the runner runs it before the
//! task, outside the container.
//!
//! A coupling group's members (`Job::group`) share a directory on the VM:
//! the group directory the runtime made under the run directory here,
//! mapped under the run's directory there
//! (`<workdir>/<run>/groups/<group>/<index>/<attempt>`), which
//! `TWINFLOW_GROUP_DIR` names in each member's environment. A batch empties
//! each instance's directory once, then launches its members concurrently;
//! the VM keeps no slots, so they all start at once. Each member is an
//! attempt of its own (its handle, poll, cancel), so when one fails the
//! runtime cancels the others one by one.
//!
//! One poll loop per executor checks every attempt it follows with one
//! command a round ([`crate::poll`]). A failed round (the connection
//! dropped, the VM rebooting) loses nothing: the remote keeps running, the
//! SSH layer connects again on the next call, and the loop tries again with
//! growing pauses; attempts are only ever decided by what the VM's files
//! say.

use crate::containers::Containers;
use crate::handoff::Handoff;
use crate::install::{RunnerBinary, install};
use crate::poll::{self, Seen};
use crate::remote_error;
use crate::spec::{ExitRecord, SPEC_FORMAT, SpecFile, TaskSpec, artefact_task, control_dir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OnceCell};
use twinflow_core::{
    AttemptKey, AttemptStatus, ExecutorError, Handle, Job, RunRef, Update, UpdateSink, shell_quote,
};
use twinflow_ssh::Remote;

/// How long an attempt may show no pid after its launch before it counts
/// as lost (the launcher failed before starting the runner).
const START_GRACE: Duration = Duration::from_secs(60);
/// The longest pause between status rounds after failed ones.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the executor is set up with.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    /// The executor's name in the workflow, for messages.
    pub name: String,
    /// Where the runs' directories go on the VM (relative: to the login
    /// directory).
    pub workdir: String,
    /// The runner to install on the VM.
    pub runner: Option<RunnerBinary>,
    /// Store settings handed to the runner (`AWS_*` variables), through
    /// its launcher's stdin, never on a command line.
    pub forward: Vec<(String, String)>,
    /// Pause between status rounds.
    pub poll: Duration,
    /// How long the runner keeps trying a store out of reach.
    pub store_patience: Duration,
    /// The executor's `prologue:`, run on the VM before each task.
    pub prologue: Option<String>,
    /// The executor's `container_runtime:`, for steps whose `container:`
    /// names none.
    pub container_runtime: Option<twinflow_core::ContainerRuntime>,
}

/// An attempt the executor follows.
#[derive(Debug)]
struct Active {
    ctl: String,
    /// Local working directory and logs.
    workdir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    /// Remote logs.
    remote_logs: [String; 2],
    run: String,
    outputs: Vec<SpecFile>,
    since: Instant,
    running: bool,
    cancelled: bool,
    /// Being finished (outputs fetched); not checked again.
    finishing: bool,
}

/// Tasks on a VM over SSH, artefacts through a store.
#[derive(Debug, Clone)]
pub struct CloudExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: CloudSettings,
    remote: Arc<dyn Remote>,
    handoff: Handoff,
    sink: Arc<dyn UpdateSink>,
    /// (absolute working directory on the VM, runner path there)
    setup: OnceCell<(String, String)>,
    /// The images of the steps that run in one.
    containers: Containers,
    active: Mutex<HashMap<AttemptKey, Active>>,
    wake: Notify,
    poller: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn env<'a>(job: &'a Job, name: &str) -> Option<&'a str> {
    job.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `path` as seen on the VM: its place under the local run directory
/// `local_run`, under `remote_run`.
fn remap(path: &Path, local_run: &Path, remote_run: &str) -> Result<String, ExecutorError> {
    let rel = path.strip_prefix(local_run).map_err(|_| {
        ExecutorError::new(format!(
            "{} is outside the run directory {}",
            path.display(),
            local_run.display()
        ))
    })?;
    let rel = rel
        .to_str()
        .ok_or_else(|| ExecutorError::new(format!("{} is not valid UTF-8", path.display())))?;
    Ok(format!("{remote_run}/{rel}"))
}

/// Where the group directory of member `job` is on the VM (`None` for a
/// task outside groups): the runtime's, under the run's directory there.
fn remote_group_dir(
    job: &Job,
    local_run: &Path,
    remote_run: &str,
) -> Result<Option<String>, ExecutorError> {
    job.group
        .as_ref()
        .map(|g| remap(&g.dir, local_run, remote_run))
        .transpose()
}

/// The task's environment on the VM: `TWINFLOW_RUN_DIR` and
/// `TWINFLOW_GROUP_DIR` name the directories there.
fn remote_env(
    env: &[(String, String)],
    remote_run: &str,
    group_dir: Option<&str>,
) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    for (k, v) in &mut env {
        if k == "TWINFLOW_RUN_DIR" {
            v.clear();
            v.push_str(remote_run);
        }
        if k == "TWINFLOW_GROUP_DIR"
            && let Some(dir) = group_dir
        {
            v.clear();
            v.push_str(dir);
        }
    }
    env
}

/// The `export K='v'` lines of the forwarded settings.
fn env_file(forward: &[(String, String)]) -> Result<String, ExecutorError> {
    let mut text = String::new();
    for (k, v) in forward {
        if !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || v.contains('\n') {
            return Err(ExecutorError::new(format!(
                "store setting {k} cannot be forwarded (a name of letters, digits and `_`, a value of one line)"
            )));
        }
        text.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    Ok(text)
}

/// Parses `cloud:<vm>|<control directory>`.
fn parse_handle(handle: &Handle) -> Option<&str> {
    let rest = handle.0.strip_prefix("cloud:")?;
    let (_, ctl) = rest.split_once('|')?;
    (!ctl.is_empty()).then_some(ctl)
}

impl CloudExecutor {
    /// An executor on the VM behind `remote`, with artefacts in `store`.
    pub fn new(
        settings: CloudSettings,
        remote: Arc<dyn Remote>,
        store: twinflow_store::Store,
        sink: Arc<dyn UpdateSink>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                remote,
                handoff: Handoff::new(store),
                sink,
                setup: OnceCell::new(),
                containers: Containers::default(),
                active: Mutex::default(),
                wake: Notify::new(),
                poller: Mutex::new(None),
            }),
        }
    }
}

impl Inner {
    fn err(&self, message: impl std::fmt::Display) -> ExecutorError {
        ExecutorError::new(format!(
            "executor `{}` ({}): {message}",
            self.settings.name,
            self.remote.describe()
        ))
    }

    /// The VM's absolute working directory and runner, set up on first use.
    async fn setup(&self) -> Result<&(String, String), ExecutorError> {
        self.setup
            .get_or_try_init(|| async {
                let dir = shell_quote(&self.settings.workdir);
                let out = self
                    .remote
                    .exec(&format!("mkdir -p -- {dir} && cd -- {dir} && pwd -P"), None)
                    .await
                    .map_err(|e| remote_error(&e))?;
                if !out.success() {
                    return Err(self.err(format!(
                        "failed to create {}: {}",
                        self.settings.workdir,
                        out.stderr_lossy().trim()
                    )));
                }
                let root = out.stdout_lossy().trim().to_owned();
                let Some(binary) = &self.settings.runner else {
                    return Err(self.err("no runner binary to install on the VM"));
                };
                let runner = install(&self.remote, binary, &root).await?;
                Ok((root, runner))
            })
            .await
    }

    fn runner_args(&self) -> String {
        self.settings
            .runner
            .iter()
            .flat_map(|r| r.args.iter())
            .map(|a| format!(" {}", shell_quote(a)))
            .collect()
    }

    async fn submit(self: &Arc<Self>, job: Job) -> Result<Handle, ExecutorError> {
        let (root, runner) = self.setup().await?.clone();
        let (Some(local_run), Some(run)) =
            (env(&job, "TWINFLOW_RUN_DIR"), env(&job, "TWINFLOW_RUN_ID"))
        else {
            return Err(self.err(format!("{}: no TWINFLOW_RUN_DIR/TWINFLOW_RUN_ID", job.name)));
        };
        let local_run = PathBuf::from(local_run);
        let run = run.to_owned();
        let remote_run = format!("{root}/{run}");
        let inputs = self.handoff.send_inputs(&run, &job.inputs).await?;
        let outputs: Vec<SpecFile> = job
            .outputs
            .iter()
            .map(|o| SpecFile {
                rel: o.rel.clone(),
                task: artefact_task(job.key.task),
                output: o.name.clone(),
            })
            .collect();
        let stdout = remap(&job.stdout, &local_run, &remote_run)?;
        let stderr = remap(&job.stderr, &local_run, &remote_run)?;
        let ctl = control_dir(&stdout);
        let group_dir = remote_group_dir(&job, &local_run, &remote_run)?;
        let env = remote_env(&job.env, &remote_run, group_dir.as_deref());
        let spec = TaskSpec {
            format: SPEC_FORMAT.to_owned(),
            name: job.name.clone(),
            store: self.handoff.store().location().to_string(),
            run: run.clone(),
            script: job.script.clone(),
            env,
            hidden: self
                .settings
                .forward
                .iter()
                .map(|(k, _)| k.clone())
                .collect(),
            workdir: remap(&job.workdir, &local_run, &remote_run)?,
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            inputs,
            outputs: outputs.clone(),
            store_patience_s: self.settings.store_patience.as_secs(),
            container: None,
            prologue: None,
            mpirun: crate::shape::ranks_under_mpirun(&job.resources, job.launcher),
        };
        let spec = TaskSpec {
            container: self.containers.of(&job.step).map(|c| c.for_job(&job, &run)),
            prologue: self.settings.prologue.clone(),
            ..spec
        };
        let text = serde_json::to_vec_pretty(&spec).map_err(|e| self.err(e))?;
        // A retry reuses the directory: clear what an earlier launch left.
        // A member's group directory exists before it starts.
        let mut prepare = format!("rm -rf -- {}", shell_quote(&ctl));
        if let Some(dir) = &group_dir {
            prepare.push_str(&format!(" && mkdir -p -- {}", shell_quote(dir)));
        }
        self.exec_ok(&prepare, None).await?;
        self.remote
            .write(&format!("{ctl}/task.json"), &text, 0o600)
            .await
            .map_err(|e| remote_error(&e))?;
        let launch = format!(
            "c={ctl}; umask 077; cat > \"$c/store.env\"; cd \"$c\" || exit 1; \
             setsid sh -c '. ./store.env; rm -f ./store.env; echo $$ > pid.tmp && mv pid.tmp pid; \
             exec \"$@\"' runner {runner}{args} \"$c\" </dev/null >>\"$c/runner.log\" 2>&1 &",
            ctl = shell_quote(&ctl),
            runner = shell_quote(&runner),
            args = self.runner_args(),
        );
        let secrets = env_file(&self.settings.forward)?;
        self.exec_ok(&launch, Some(secrets.into_bytes())).await?;
        lock(&self.active).insert(
            job.key,
            Active {
                ctl: ctl.clone(),
                workdir: job.workdir.clone(),
                stdout: job.stdout.clone(),
                stderr: job.stderr.clone(),
                remote_logs: [stdout, stderr],
                run,
                outputs,
                since: Instant::now(),
                running: false,
                cancelled: false,
                finishing: false,
            },
        );
        self.ensure_poller();
        Ok(Handle(format!("cloud:{}|{ctl}", self.remote.describe())))
    }

    /// Empties the VM's directory of the group instance of `job` (a
    /// member's first job in a batch), before any member starts.
    async fn fresh_group_dir(&self, job: &Job) -> Result<(), ExecutorError> {
        let (root, _) = self.setup().await?.clone();
        let (Some(local_run), Some(run)) =
            (env(job, "TWINFLOW_RUN_DIR"), env(job, "TWINFLOW_RUN_ID"))
        else {
            return Err(self.err(format!("{}: no TWINFLOW_RUN_DIR/TWINFLOW_RUN_ID", job.name)));
        };
        let remote_run = format!("{root}/{run}");
        if let Some(dir) = remote_group_dir(job, Path::new(local_run), &remote_run)? {
            let dir = shell_quote(&dir);
            self.exec_ok(&format!("rm -rf -- {dir} && mkdir -p -- {dir}"), None)
                .await?;
        }
        Ok(())
    }

    /// Submits the members of one group instance: their directory made
    /// empty first, then all launched at once.
    async fn submit_members(
        self: &Arc<Self>,
        members: Vec<Job>,
    ) -> Vec<Result<Handle, ExecutorError>> {
        if let Some(first) = members.first()
            && let Err(e) = self.fresh_group_dir(first).await
        {
            return members.iter().map(|_| Err(e.clone())).collect();
        }
        let launches: Vec<_> = members
            .into_iter()
            .map(|job| {
                let me = Arc::clone(self);
                tokio::spawn(async move { me.submit(job).await })
            })
            .collect();
        let mut results = Vec::with_capacity(launches.len());
        for launch in launches {
            results.push(launch.await.unwrap_or_else(|e| {
                Err(self.err(format!("a member's submit did not finish: {e}")))
            }));
        }
        results
    }

    /// Runs `command`; a non-zero exit is an error naming it.
    async fn exec_ok(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<String, ExecutorError> {
        let out = self
            .remote
            .exec(command, stdin)
            .await
            .map_err(|e| remote_error(&e))?;
        if !out.success() {
            return Err(self.err(format!(
                "`{}` exited with {}: {}",
                command.lines().next().unwrap_or(""),
                out.status,
                out.stderr_lossy().trim()
            )));
        }
        Ok(out.stdout_lossy())
    }

    fn ensure_poller(self: &Arc<Self>) {
        let mut poller = lock(&self.poller);
        if poller
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            let me = Arc::clone(self);
            *poller = Some(tokio::spawn(async move { me.poll_loop().await }));
        }
        drop(poller);
        self.wake.notify_one();
    }

    async fn poll_loop(self: Arc<Self>) {
        let mut pause = self.settings.poll;
        loop {
            let round: Vec<(AttemptKey, String)> = lock(&self.active)
                .iter()
                .filter(|(_, a)| !a.finishing)
                .map(|(k, a)| (*k, a.ctl.clone()))
                .collect();
            if lock(&self.active).is_empty() {
                // Decided under the poller's lock, which `ensure_poller`
                // takes after adding an attempt: either that attempt is
                // seen here, or this loop is marked gone and a new one
                // starts.
                let mut poller = lock(&self.poller);
                if lock(&self.active).is_empty() {
                    *poller = None;
                    return;
                }
            }
            if !round.is_empty() {
                let dirs: Vec<&str> = round.iter().map(|(_, c)| c.as_str()).collect();
                match self.remote.exec(&poll::script(&dirs), None).await {
                    Ok(out) => {
                        pause = self.settings.poll;
                        for (i, seen) in poll::parse(&out.stdout_lossy()) {
                            if let Some((key, _)) = round.get(i) {
                                self.on_seen(*key, seen);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(
                            "executor `{}`: status check failed, trying again in {pause:?}: {e}",
                            self.settings.name
                        );
                        pause = (pause * 2).min(MAX_BACKOFF);
                    }
                }
            }
            let _ = tokio::time::timeout(pause, self.wake.notified()).await;
        }
    }

    fn on_seen(self: &Arc<Self>, key: AttemptKey, seen: Seen) {
        let mut active = lock(&self.active);
        let Some(a) = active.get_mut(&key) else {
            return;
        };
        match seen {
            Seen::Running if !a.running => {
                a.running = true;
                drop(active);
                self.sink.send(Update {
                    key,
                    status: AttemptStatus::Running,
                });
            }
            Seen::Running => {}
            Seen::Starting if a.since.elapsed() < START_GRACE => {}
            Seen::Starting | Seen::Lost => {
                let status = if a.cancelled {
                    AttemptStatus::Cancelled
                } else {
                    AttemptStatus::Lost
                };
                active.remove(&key);
                drop(active);
                self.sink.send(Update { key, status });
            }
            Seen::Ended(record) => {
                a.finishing = true;
                drop(active);
                let me = Arc::clone(self);
                tokio::spawn(async move { me.finish(key, record).await });
            }
        }
    }

    /// Brings back logs (and, after success, the outputs) of an attempt
    /// that ended, then reports its end.
    async fn finish(self: Arc<Self>, key: AttemptKey, record: ExitRecord) {
        let Some(a) = lock(&self.active).remove(&key) else {
            return;
        };
        for (remote, local) in a.remote_logs.iter().zip([&a.stdout, &a.stderr]) {
            // A runner that failed before the script ran wrote no logs.
            if let Ok(Some(data)) = self.remote.read(remote).await
                && let Err(e) = std::fs::write(local, data)
            {
                tracing::warn!("failed to write {}: {e}", local.display());
            }
        }
        let status = if a.cancelled {
            AttemptStatus::Cancelled
        } else if let Some(error) = record.error {
            AttemptStatus::Error(error)
        } else if let Some(signal) = record.signal {
            AttemptStatus::Signalled(signal)
        } else {
            match record.status {
                Some(0) => match self
                    .handoff
                    .fetch_outputs(&a.run, &a.outputs, &a.workdir)
                    .await
                {
                    Ok(()) => AttemptStatus::Exited(0),
                    Err(e) => AttemptStatus::Error(format!(
                        "outputs not verified in the store: {}",
                        e.message
                    )),
                },
                Some(code) => AttemptStatus::Exited(code),
                None => AttemptStatus::Error("the runner left no exit status".into()),
            }
        };
        self.sink.send(Update { key, status });
        self.wake.notify_one();
    }

    /// Ends the attempt in `ctl` (`kill.rs`): SIGTERM to the
    /// runner's process group and its container, SIGKILL and the
    /// container's removal after `grace` seconds; marks it cancelled there.
    async fn kill(&self, ctl: &str, grace: u32) -> Result<(), ExecutorError> {
        self.exec_ok(&crate::kill::script(ctl, grace), None)
            .await
            .map(|_| ())
    }

    /// Follows the attempt of `ctl` again, from its `task.json` on the VM;
    /// false if there is none.
    async fn adopt(
        self: &Arc<Self>,
        run: RunRef<'_>,
        key: AttemptKey,
        ctl: &str,
        root: &str,
    ) -> Result<bool, ExecutorError> {
        let Some(text) = self
            .remote
            .read(&format!("{ctl}/task.json"))
            .await
            .map_err(|e| remote_error(&e))?
        else {
            return Ok(false);
        };
        let spec: TaskSpec =
            serde_json::from_slice(&text).map_err(|e| self.err(format!("{ctl}/task.json: {e}")))?;
        let remote_run = format!("{root}/{}", run.id);
        let local = |p: &str| -> Option<PathBuf> {
            Some(
                run.dir
                    .join(p.strip_prefix(&remote_run)?.trim_start_matches('/')),
            )
        };
        let (Some(workdir), Some(stdout), Some(stderr)) = (
            local(&spec.workdir),
            local(&spec.stdout),
            local(&spec.stderr),
        ) else {
            return Ok(false);
        };
        lock(&self.active).insert(
            key,
            Active {
                ctl: ctl.to_owned(),
                workdir,
                stdout,
                stderr,
                remote_logs: [spec.stdout, spec.stderr],
                run: run.id.to_owned(),
                outputs: spec.outputs,
                since: Instant::now(),
                running: false,
                cancelled: false,
                finishing: false,
            },
        );
        Ok(true)
    }
}

#[async_trait::async_trait]
impl twinflow_core::Executor for CloudExecutor {
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        self.inner.submit(job).await
    }

    /// One by one, except a coupling group instance's members (consecutive
    /// in the batch): their directory is emptied on the VM, then they are
    /// launched concurrently.
    async fn submit_batch(&self, jobs: Vec<Job>) -> Vec<Result<Handle, ExecutorError>> {
        let mut results = Vec::with_capacity(jobs.len());
        let mut jobs = jobs.into_iter().peekable();
        while let Some(job) = jobs.next() {
            let Some(group) = job.group.clone() else {
                results.push(self.inner.submit(job).await);
                continue;
            };
            let mut members = vec![job];
            while let Some(next) =
                jobs.next_if(|j| j.group.as_ref().is_some_and(|g| g.same_instance(&group)))
            {
                members.push(next);
            }
            results.extend(self.inner.submit_members(members).await);
        }
        results
    }

    /// Resolves the image on the VM (see `containers.rs`); the
    /// attempts of `steps` then run inside it, one container each.
    async fn resolve_image(
        &self,
        container: &twinflow_core::ContainerSpec,
        steps: &[String],
    ) -> Result<twinflow_core::ResolvedImage, ExecutorError> {
        let inner = &self.inner;
        let (root, _) = inner.setup().await?.clone();
        let found = crate::containers::resolve(
            Arc::clone(&inner.remote),
            &root,
            inner.settings.container_runtime,
            container,
        )
        .await?;
        let resolved = found.resolved.clone();
        inner.containers.set(steps, found);
        Ok(resolved)
    }

    /// Ranks run under `mpirun` on the VM; see `shape.rs`.
    fn shape_refusal(&self, step: &twinflow_core::StepSpec) -> Option<String> {
        crate::shape::step_refusal(step, self.inner.settings.container_runtime)
    }

    /// The runner runs the prologue on the VM before each task.
    fn runs_prologue(&self) -> bool {
        true
    }

    async fn reattach(
        &self,
        run: RunRef<'_>,
        attempts: Vec<(AttemptKey, Handle)>,
    ) -> Result<Vec<AttemptKey>, ExecutorError> {
        let inner = &self.inner;
        let (root, _) = inner.setup().await?.clone();
        let mut followed = Vec::new();
        let mut known = Vec::new();
        for (key, handle) in &attempts {
            let Some(ctl) = parse_handle(handle) else {
                continue;
            };
            known.push(ctl.to_owned());
            if inner.adopt(run, *key, ctl, &root).await? {
                followed.push(*key);
            }
        }
        // Attempts of the run whose handle never reached the state store:
        // still running there, unknown here. They are ended; the runtime
        // runs them again.
        let logs = format!("{root}/{}/logs", run.id);
        let list = inner
            .exec_ok(
                &format!(
                    "for d in {}/*/*.cloud; do [ -d \"$d\" ] && [ ! -f \"$d/exit.json\" ] && echo \"$d\"; done; true",
                    shell_quote(&logs)
                ),
                None,
            )
            .await?;
        for ctl in list.lines().filter(|l| !known.iter().any(|k| k == l)) {
            tracing::info!("ending unrecorded attempt {ctl}");
            inner.kill(ctl, 0).await?;
        }
        if !followed.is_empty() {
            inner.ensure_poller();
        }
        Ok(followed)
    }

    async fn cancel(&self, key: AttemptKey, handle: &Handle) -> Result<(), ExecutorError> {
        let ctl = {
            let mut active = lock(&self.inner.active);
            match active.get_mut(&key) {
                Some(a) => {
                    a.cancelled = true;
                    a.ctl.clone()
                }
                None => match parse_handle(handle) {
                    Some(ctl) => ctl.to_owned(),
                    None => return Ok(()),
                },
            }
        };
        self.inner.kill(&ctl, 5).await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    async fn shutdown(&self) {
        let dirs: Vec<String> = lock(&self.inner.active)
            .values_mut()
            .map(|a| {
                a.cancelled = true;
                a.ctl.clone()
            })
            .collect();
        for ctl in dirs {
            if let Err(e) = self.inner.kill(&ctl, 0).await {
                tracing::warn!("{}", e.message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_name_the_vm_and_the_control_directory() {
        let h = Handle("cloud:root@127.0.0.1:2322|/r/run/logs/bird/0.0.cloud".into());
        assert_eq!(parse_handle(&h), Some("/r/run/logs/bird/0.0.cloud"));
        assert_eq!(parse_handle(&Handle("slurm:1:/x".into())), None);
        assert_eq!(parse_handle(&Handle("cloud:vm|".into())), None);
    }

    #[test]
    fn paths_move_from_the_run_directory_here_to_the_one_there() {
        let p = remap(
            Path::new("/s/runs/r1/work/bird/3"),
            Path::new("/s/runs/r1"),
            "/vm/tf/r1",
        );
        assert_eq!(p.ok().as_deref(), Some("/vm/tf/r1/work/bird/3"));
        assert!(remap(Path::new("/etc/x"), Path::new("/s/runs/r1"), "/vm").is_err());
    }

    #[test]
    fn a_members_group_directory_and_its_variable_move_to_the_vm() {
        let local_run = Path::new("/s/runs/r1");
        let mut job = Job {
            key: AttemptKey {
                task: twinflow_core::TaskId(3),
                attempt: 0,
            },
            name: "forest[0]".into(),
            script: "true".into(),
            env: vec![
                ("TWINFLOW_RUN_DIR".into(), "/s/runs/r1".into()),
                (
                    "TWINFLOW_GROUP_DIR".into(),
                    "/s/runs/r1/groups/fb/0/1".into(),
                ),
                ("TWINFLOW_GROUP_MEMBER".into(), "forest".into()),
            ],
            workdir: local_run.join("work/forest/0"),
            stdout: local_run.join("logs/forest/0.1.out"),
            stderr: local_run.join("logs/forest/0.1.err"),
            resources: twinflow_core::Resources::default(),
            step: "forest".into(),
            pack: None,
            launcher: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            group: None,
        };
        assert_eq!(
            remote_group_dir(&job, local_run, "/vm/tf/r1").ok(),
            Some(None),
            "no group, no directory"
        );
        job.group = Some(twinflow_core::JobGroup {
            name: "fb".into(),
            dir: local_run.join("groups/fb/0/1"),
            members: vec!["forest".into(), "beetle".into()],
            member: "forest".into(),
        });
        let dir = remote_group_dir(&job, local_run, "/vm/tf/r1")
            .ok()
            .flatten();
        assert_eq!(dir.as_deref(), Some("/vm/tf/r1/groups/fb/0/1"));
        let env = remote_env(&job.env, "/vm/tf/r1", dir.as_deref());
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(var("TWINFLOW_GROUP_DIR"), Some("/vm/tf/r1/groups/fb/0/1"));
        assert_eq!(var("TWINFLOW_RUN_DIR"), Some("/vm/tf/r1"));
        assert_eq!(var("TWINFLOW_GROUP_MEMBER"), Some("forest"));
        // A group directory outside the run's cannot be placed on the VM.
        if let Some(g) = &mut job.group {
            g.dir = "/elsewhere/fb".into();
        }
        assert!(remote_group_dir(&job, local_run, "/vm/tf/r1").is_err());
    }

    #[test]
    fn secrets_are_quoted_and_one_line() {
        let text = env_file(&[("AWS_SECRET_ACCESS_KEY".into(), "a'b c".into())]);
        assert_eq!(
            text.ok().as_deref(),
            Some("export AWS_SECRET_ACCESS_KEY='a'\\''b c'\n")
        );
        assert!(env_file(&[("A".into(), "x\ny".into())]).is_err());
        assert!(env_file(&[("A;rm".into(), "x".into())]).is_err());
    }
}
