//! Helpers of the cloud executor's live tests: the sshd of
//! `deploy/dev/sshd-up` stands in for the VM (it is this machine, so a test
//! may also look at the VM's files through SSH), the S3 server of
//! `deploy/dev/s3-up` is the store, each test under its own prefix and
//! remote directory. Without `TWINFLOW_TEST_SSH=1` and `TWINFLOW_TEST_S3=1`
//! the tests say so and return.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{
    AttemptKey, AttemptStatus, Executor, Job, JobInput, JobOutput, Resources, SshTarget, TaskId,
    Update, UpdateSink,
};
use twinflow_executor_cloud::{CloudExecutor, CloudSettings, RunnerBinary, forwarded_env};
use twinflow_ssh::{Remote, Ssh2Remote, SshOptions};
use twinflow_store::Store;

/// Updates into a channel.
#[derive(Debug)]
pub(crate) struct Sink(pub(crate) mpsc::UnboundedSender<Update>);

impl UpdateSink for Sink {
    fn send(&self, update: Update) {
        let _ = self.0.send(update);
    }
}

/// One test's VM, store and local run directory.
pub(crate) struct Env {
    pub(crate) ssh: Arc<Ssh2Remote>,
    pub(crate) remote: Arc<dyn Remote>,
    pub(crate) store_url: String,
    pub(crate) root: String,
    pub(crate) run_id: String,
    pub(crate) local: tempfile::TempDir,
}

fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

pub(crate) fn env(test: &str) -> Option<Env> {
    for var in ["TWINFLOW_TEST_SSH", "TWINFLOW_TEST_S3"] {
        if std::env::var(var).as_deref() != Ok("1") {
            eprintln!(
                "skipped: {var} is not 1 (scripts/test starts deploy/dev/sshd-up and s3-up and sets it)"
            );
            return None;
        }
    }
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let target = SshTarget {
        user: Some(var("TWINFLOW_SSHD_USER")),
        host: var("TWINFLOW_SSHD_HOST"),
        port: Some(var("TWINFLOW_SSHD_PORT").parse().expect("port")),
    };
    let ssh = Arc::new(Ssh2Remote::new(&target, SshOptions::from_env()));
    let name = unique(test);
    Some(Env {
        remote: Arc::clone(&ssh) as Arc<dyn Remote>,
        ssh,
        store_url: format!("{}/cloud-tests/{name}", var("TWINFLOW_S3_URL")),
        root: format!("/tmp/twinflow-cloud-tests/{name}"),
        run_id: "run-1".to_owned(),
        local: tempfile::tempdir().expect("tempdir"),
    })
}

impl Env {
    pub(crate) fn run_dir(&self) -> PathBuf {
        self.local.path().join("runs").join(&self.run_id)
    }

    pub(crate) fn store(&self) -> Store {
        Store::open(&self.store_url).expect("open store")
    }

    pub(crate) fn settings(&self, forward: Vec<(String, String)>) -> CloudSettings {
        CloudSettings {
            name: "cloud".to_owned(),
            workdir: self.root.clone(),
            runner: Some(RunnerBinary {
                path: PathBuf::from(env!("CARGO_BIN_EXE_twinflow-cloud-runner")),
                args: vec!["cloud-task".to_owned()],
            }),
            forward,
            poll: Duration::from_millis(200),
            store_patience: Duration::from_secs(60),
            prologue: None,
            container_runtime: None,
        }
    }

    /// An executor forwarding this process's store settings.
    pub(crate) fn executor(&self) -> (CloudExecutor, mpsc::UnboundedReceiver<Update>) {
        self.executor_with(forwarded_env())
    }

    pub(crate) fn executor_with(
        &self,
        forward: Vec<(String, String)>,
    ) -> (CloudExecutor, mpsc::UnboundedReceiver<Update>) {
        self.executor_from(self.settings(forward))
    }

    pub(crate) fn executor_from(
        &self,
        settings: CloudSettings,
    ) -> (CloudExecutor, mpsc::UnboundedReceiver<Update>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let ex = CloudExecutor::new(
            settings,
            Arc::clone(&self.remote),
            self.store(),
            Arc::new(Sink(tx)),
        );
        (ex, rx)
    }

    /// A job of step `bird`, instance `task`, with the local directories
    /// the runtime would have made.
    pub(crate) fn job(&self, task: u32, script: &str) -> Job {
        let run = self.run_dir();
        let workdir = run.join("work/bird").join(task.to_string());
        let logs = run.join("logs/bird");
        std::fs::create_dir_all(&workdir).expect("workdir");
        std::fs::create_dir_all(&logs).expect("logs");
        Job {
            key: AttemptKey {
                task: TaskId(task),
                attempt: 0,
            },
            name: format!("bird[{task}]"),
            script: script.to_owned(),
            env: vec![
                ("TWINFLOW_RUN_ID".into(), self.run_id.clone()),
                ("TWINFLOW_RUN_DIR".into(), run.display().to_string()),
            ],
            workdir,
            stdout: logs.join(format!("{task}.0.out")),
            stderr: logs.join(format!("{task}.0.err")),
            resources: Resources::default(),
            step: "bird".into(),
            pack: None,
            launcher: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            group: None,
        }
    }

    /// A sealed output of producer task `producer` here, as an input.
    pub(crate) fn input(&self, producer: u32, output: &str, file: &str, data: &str) -> JobInput {
        let dir = self
            .run_dir()
            .join("work/forest")
            .join(producer.to_string());
        std::fs::create_dir_all(&dir).expect("producer dir");
        let source = dir.join(file);
        std::fs::write(&source, data).expect("write input");
        JobInput {
            rel: twinflow_core::input_paths(output, file, false, 1).remove(0),
            producer: TaskId(producer),
            output: output.to_owned(),
            source,
        }
    }

    /// Runs a command on the VM and returns its stdout.
    pub(crate) async fn vm(&self, command: &str) -> String {
        let out = self
            .remote
            .exec(command, None)
            .await
            .expect("exec on the VM");
        out.stdout_lossy()
    }

    pub(crate) async fn cleanup(&self) {
        let _ = self
            .remote
            .exec(&format!("rm -rf '{}'", self.root), None)
            .await;
    }
}

pub(crate) fn output(name: &str, rel: &str) -> JobOutput {
    JobOutput {
        name: name.to_owned(),
        rel: rel.to_owned(),
    }
}

/// The next final update, skipping `Running`; fails after `limit`.
pub(crate) async fn final_update(
    rx: &mut mpsc::UnboundedReceiver<Update>,
    limit: Duration,
) -> Update {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let u = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("no final update in time")
            .expect("sink closed");
        if u.status.is_final() {
            return u;
        }
    }
}

/// Waits for `Running` of `key`.
pub(crate) async fn running(rx: &mut mpsc::UnboundedReceiver<Update>, limit: Duration) {
    let u = tokio::time::timeout(limit, rx.recv())
        .await
        .expect("not running in time")
        .expect("sink closed");
    assert_eq!(u.status, AttemptStatus::Running, "{u:?}");
}

pub(crate) async fn submit(ex: &CloudExecutor, job: Job) -> twinflow_core::Handle {
    ex.submit(job).await.expect("submit")
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
