//! Shapes the language takes but an executor does not run are refused at
//! submit, naming the step, the executor and what: a parallel pack
//! (`pack: {tasks, parallel > 1}`), a coupling group (`group:`) on Slurm
//! or bigger than the machine, and a
//! Slurm executor's `user_max_jobs` that its backend does not enforce.
//! Nothing runs and nothing is recorded for a refused run.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use twinflow_core::{
    AttemptKey, Executor, ExecutorError, ExecutorFactory, ExecutorKind, ExecutorSpec, Handle, Job,
    RunRef, UpdateSink,
};
use twinflow_engine::{Engine, EngineError, Outcome, RunOptions};
use twinflow_executor_local::LocalFactory;
use twinflow_workflow::CompileOptions;

/// A Slurm-kind backend that runs its jobs as local processes and
/// overrides nothing of the shape contract; `caps` says whether it
/// enforces `user_max_jobs` (the real Slurm executor does: a backend that
/// does not stands for any that may come).
#[derive(Debug)]
struct AsSlurm {
    local: Arc<dyn Executor>,
    submitted: Arc<AtomicUsize>,
    caps: bool,
}

#[derive(Debug, Clone)]
struct AsSlurmFactory {
    submitted: Arc<AtomicUsize>,
    caps: bool,
}

impl ExecutorFactory for AsSlurmFactory {
    fn create(
        &self,
        spec: &ExecutorSpec,
        sink: Arc<dyn UpdateSink>,
    ) -> Result<Arc<dyn Executor>, ExecutorError> {
        let mut local = spec.clone();
        local.backend = twinflow_core::BackendConfig::Local(twinflow_core::LocalConfig::default());
        Ok(Arc::new(AsSlurm {
            local: LocalFactory::default().create(&local, sink)?,
            submitted: Arc::clone(&self.submitted),
            caps: self.caps,
        }))
    }
}

#[async_trait::async_trait]
impl Executor for AsSlurm {
    async fn submit(&self, job: Job) -> Result<Handle, ExecutorError> {
        self.submitted.fetch_add(1, Ordering::SeqCst);
        self.local.submit(job).await
    }

    async fn reattach(
        &self,
        run: RunRef<'_>,
        attempts: Vec<(AttemptKey, Handle)>,
    ) -> Result<Vec<AttemptKey>, ExecutorError> {
        self.local.reattach(run, attempts).await
    }

    async fn cancel(&self, key: AttemptKey, handle: &Handle) -> Result<(), ExecutorError> {
        self.local.cancel(key, handle).await
    }

    async fn shutdown(&self) {
        self.local.shutdown().await;
    }

    fn caps_user_jobs(&self) -> bool {
        self.caps
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    engine: Engine,
    submitted: Arc<AtomicUsize>,
}

impl Fixture {
    fn new(caps: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let submitted = Arc::new(AtomicUsize::new(0));
        let engine = Engine::builder()
            .state_dir(dir.path().join("state"))
            .executor(
                ExecutorKind::Local,
                LocalFactory {
                    grace: Duration::from_millis(500),
                    ..LocalFactory::default()
                },
            )
            .executor(
                ExecutorKind::Slurm,
                AsSlurmFactory {
                    submitted: Arc::clone(&submitted),
                    caps,
                },
            )
            .build()
            .unwrap();
        Self {
            dir,
            engine,
            submitted,
        }
    }

    fn plan(&self, yaml: &str) -> twinflow_core::Plan {
        let yaml = yaml.replace("$DIR", &self.dir.path().display().to_string());
        let options = CompileOptions {
            run_id: "r1".to_owned(),
            ..CompileOptions::default()
        };
        twinflow_workflow::compile_str("test.yaml", &yaml, &options)
            .unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    /// Submits `yaml`, which must be refused: the error, after checking
    /// that nothing ran or was submitted and no run was recorded.
    async fn refused(&self, yaml: &str) -> EngineError {
        let plan = self.plan(yaml);
        let Err(e) = self.engine.submit(plan, RunOptions::default()).await else {
            panic!("accepted:\n{yaml}");
        };
        assert!(!self.dir.path().join("ran").exists(), "a task ran: {e}");
        assert_eq!(self.submitted.load(Ordering::SeqCst), 0, "{e}");
        let runs = self.engine.read_state(|s| s.runs().unwrap().len());
        assert_eq!(runs, 0, "nothing is recorded for a refused run");
        e
    }
}

const PARALLEL_PACK: &str = "
version: 1
executors: { EXEC }
steps:
  ensemble:
    for_each: { i: [1, 2, 3, 4] }
    pack: { tasks: 4, parallel: 2 }
    run: touch $DIR/ran
";

#[tokio::test]
async fn a_parallel_pack_is_refused_by_every_executor_naming_step_and_executor() {
    for (executors, kind) in [
        ("here: { kind: local }", "local"),
        ("hpc: { kind: slurm }", "slurm"),
    ] {
        let f = Fixture::new(false);
        let e = f.refused(&PARALLEL_PACK.replace("EXEC", executors)).await;
        let name = executors.split(':').next().unwrap_or_default();
        assert!(
            matches!(&e, EngineError::ShapeRefused { step, executor, .. } if step == "ensemble" && executor == name),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "step `ensemble` cannot run as written: executor `{name}` (kind {kind}) does not \
                 run parallel packs (`pack: {{tasks: 4, parallel: 2}}`) yet; the run is refused \
                 rather than run in another shape"
            )
        );
    }
}

#[tokio::test]
async fn a_sequential_pack_is_not_refused() {
    let f = Fixture::new(false);
    let plan = f.plan(
        &PARALLEL_PACK
            .replace("EXEC", "hpc: { kind: slurm }")
            .replace(
                "pack: { tasks: 4, parallel: 2 }",
                "pack: { tasks: 4, parallel: 1 }",
            ),
    );
    let mut handle = f.engine.submit(plan, RunOptions::default()).await.unwrap();
    while handle.next_event().await.is_some() {}
    assert_eq!(handle.wait().await.unwrap().outcome, Outcome::Succeeded);
    assert_eq!(f.submitted.load(Ordering::SeqCst), 4);
}

const GROUP: &str = "
version: 1
executors: { EXEC }
steps:
  forest:
    group: forest-beetle
    run: touch $DIR/ran
  beetle:
    group: forest-beetle
    run: touch $DIR/ran
";

#[tokio::test]
async fn a_coupling_group_is_refused_by_slurm_and_runs_locally() {
    let f = Fixture::new(false);
    let e = f
        .refused(&GROUP.replace("EXEC", "hpc: { kind: slurm }"))
        .await;
    assert!(
        matches!(&e, EngineError::ShapeRefused { step, executor, .. } if step == "forest" && executor == "hpc"),
        "{e:?}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains(
            "does not co-schedule coupling groups yet (`group: forest-beetle`): groups are not run yet"
        ),
        "{shown}"
    );
    let f = Fixture::new(false);
    let plan = f.plan(&GROUP.replace("EXEC", "here: { kind: local }"));
    let mut handle = f.engine.submit(plan, RunOptions::default()).await.unwrap();
    while handle.next_event().await.is_some() {}
    assert_eq!(handle.wait().await.unwrap().outcome, Outcome::Succeeded);
    assert!(f.dir.path().join("ran").exists());
}

#[tokio::test]
async fn a_group_bigger_than_the_machine_is_refused_rather_than_started_in_part() {
    // No `slots` (the compiler cannot tell): the machine's cores decide.
    let f = Fixture::new(false);
    let yaml = GROUP.replace("EXEC", "here: { kind: local }").replace(
        "    group: forest-beetle\n",
        "    group: forest-beetle\n    resources: { cpus: 4096 }\n",
    );
    let e = f.refused(&yaml).await;
    assert!(
        matches!(&e, EngineError::ShapeRefused { step, executor, .. } if step == "forest" && executor == "here"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("the members of group `forest-beetle` need 8192 at once"),
        "{e}"
    );
}

const CAPPED: &str = "
version: 1
executors: { hpc: { kind: slurm, max_jobs: 10, user_max_jobs: 220 } }
steps:
  model:
    run: touch $DIR/ran
";

#[tokio::test]
async fn user_max_jobs_is_refused_where_the_backend_does_not_enforce_it() {
    let f = Fixture::new(false);
    let e = f.refused(CAPPED).await;
    assert!(
        matches!(&e, EngineError::UserMaxJobsNotEnforced { executor, cap: 220, kind: "slurm" } if executor == "hpc"),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with(
            "executor `hpc` sets `user_max_jobs: 220`, which its backend (slurm) does not enforce yet"
        ),
        "{e}"
    );
    // A backend that enforces it runs the workflow.
    let f = Fixture::new(true);
    let plan = f.plan(CAPPED);
    let mut handle = f.engine.submit(plan, RunOptions::default()).await.unwrap();
    while handle.next_event().await.is_some() {}
    assert_eq!(handle.wait().await.unwrap().outcome, Outcome::Succeeded);
    assert!(f.dir.path().join("ran").exists());
}
