//! twinflow-executor-cloud: tasks of `kind: cloud` executors run on a VM
//! reached over SSH (`ssh: user@host[:port]`, through [`twinflow_ssh`], the
//! layer the Slurm executor uses), with their artefacts handed over
//! through an S3 store (`store: s3://bucket/prefix`, [`twinflow_store`]).
//!
//! How an attempt runs (see [`executor`] for the executor's side, the
//! runner's in [`runner`], the files they share in [`spec`]):
//!
//! 1. The VM is set up once per executor: its working directory (`workdir:`,
//!    default `twinflow` under the login directory) is created, and the
//!    runner (this very `twinflow` binary, `twinflow cloud-task`) is
//!    uploaded under `<workdir>/.twinflow/bin/`, named by its sha256.
//! 2. The attempt's inputs are put in the store (content-addressed blobs,
//!    then a manifest per artefact; content already there is not sent).
//! 3. Its control directory `<workdir>/<run>/logs/<step>/<i>.<attempt>.cloud/`
//!    receives `task.json`, and the runner starts detached (`setsid`): it
//!    leads the attempt's own session and process group, and outlives the
//!    SSH connection that started it.
//! 4. The runner fetches the inputs (each verified against its sha256),
//!    runs the executor's `prologue:` and then the script in
//!    `<workdir>/<run>/work/<step>/<i>/`, on the VM or inside the step's
//!    image (`containers.rs` resolves it on the VM at submit, `task.rs` runs
//!    it through `twinflow_launch::launch`), sends the outputs to the
//!    store, and writes `exit.json` last.
//! 5. The executor checks all its attempts with one command per round. A
//!    dropped connection loses nothing: the next round connects again and
//!    finds each attempt running or finished by its files. When one has
//!    finished with 0, its outputs are checked in the store and fetched
//!    here, verified, before the exit is reported: a task is done only once
//!    its outputs are verified in the store.
//! 6. A restarted twinflow (`--resume`, a restarted daemon) takes its
//!    attempts back from their handles (`cloud:<vm>|<control directory>`);
//!    attempts of the run it has no handle for are ended and run again.
//!
//! Store credentials: the `AWS_*` variables set here (key id, secret,
//! session token, region, endpoint, `AWS_ALLOW_HTTP`) are handed to the
//! runner on the launcher's standard input, into a 0600 file that the
//! launcher deletes before the runner starts; they never appear on a
//! command line, in `task.json` or in the task's environment. Without them
//! the runner uses the VM's own configuration (its profile or instance
//! credentials).

mod containers;
pub mod executor;
mod handoff;
mod install;
mod kill;
mod poll;
pub mod runner;
mod shape;
pub mod spec;
mod task;

pub use executor::{CloudExecutor, CloudSettings};
pub use install::RunnerBinary;

use std::sync::Arc;
use std::time::Duration;
use twinflow_core::{
    BackendConfig, Executor, ExecutorError, ExecutorFactory, ExecutorSpec, UpdateSink,
};
use twinflow_ssh::SshError;

/// The store settings handed from here to the runner on the VM.
pub const FORWARDED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
];

/// The [`FORWARDED`] variables this process has.
pub fn forwarded_env() -> Vec<(String, String)> {
    FORWARDED
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| ((*k).to_owned(), v))
        })
        .collect()
}

pub(crate) fn remote_error(e: &SshError) -> ExecutorError {
    ExecutorError {
        message: e.to_string(),
        transient: e.is_transient(),
    }
}

/// Builds [`CloudExecutor`]s for `kind: cloud` executors.
#[derive(Debug, Clone, Default)]
pub struct CloudFactory {
    runner: Option<RunnerBinary>,
    poll: Option<Duration>,
}

impl CloudFactory {
    /// The runner to install on VMs: `path ARGS... <control directory>`.
    pub fn with_runner(mut self, runner: RunnerBinary) -> Self {
        self.runner = Some(runner);
        self
    }

    /// Pause between status rounds (default 1 s).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = Some(poll);
        self
    }
}

impl ExecutorFactory for CloudFactory {
    fn create(
        &self,
        spec: &ExecutorSpec,
        sink: Arc<dyn UpdateSink>,
    ) -> Result<Arc<dyn Executor>, ExecutorError> {
        let BackendConfig::Cloud(config) = &spec.backend else {
            return Err(ExecutorError::new(format!(
                "executor `{}` is not a cloud executor",
                spec.name
            )));
        };
        let (Some(target), Some(store)) = (&config.ssh, &config.store) else {
            return Err(ExecutorError::new(format!(
                "executor `{}`: a cloud executor needs `ssh` and `store`",
                spec.name
            )));
        };
        let location = twinflow_store::Location::from_core(store)
            .map_err(|e| ExecutorError::new(format!("executor `{}`: {e}", spec.name)))?;
        let store = twinflow_store::Store::at(location, twinflow_store::StoreOptions::default())
            .map_err(|e| ExecutorError::new(format!("executor `{}`: {e}", spec.name)))?;
        let remote = twinflow_ssh::connect(target, twinflow_ssh::SshOptions::from_env());
        let settings = CloudSettings {
            name: spec.name.clone(),
            workdir: config
                .workdir
                .clone()
                .unwrap_or_else(|| "twinflow".to_owned()),
            runner: self.runner.clone(),
            forward: forwarded_env(),
            poll: self.poll.unwrap_or(Duration::from_secs(1)),
            store_patience: Duration::from_secs(spec::DEFAULT_PATIENCE_S),
            prologue: spec.prologue.clone(),
            container_runtime: spec.container_runtime,
        };
        Ok(Arc::new(CloudExecutor::new(settings, remote, store, sink)))
    }
}
