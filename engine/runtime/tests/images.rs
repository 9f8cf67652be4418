//! Container images at submit, with a test backend that resolves images
//! (its digest set by the test) and runs the jobs as local processes: each
//! (executor, image) pair is resolved once before anything runs, the digest
//! is recorded for exports and enters the cache key (a re-tagged image runs
//! the tasks again), and a backend that cannot resolve refuses the run.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::sync::{Arc, Mutex};
use twinflow_core::{ContainerRuntime, ContainerSpec, ExecutorKind, ResolvedImage};
use twinflow_engine::{Engine, RunImage, RunOptions};
use twinflow_executor_local::LocalFactory;
use twinflow_workflow::CompileOptions;

/// What the backends of one test saw and what they answer.
#[derive(Debug, Default)]
struct Images {
    /// The digest every image resolves to; `None`: resolution fails.
    digest: Mutex<Option<String>>,
    /// (image, steps) of each call, in order.
    calls: Mutex<Vec<(String, Vec<String>)>>,
}

#[derive(Debug, Clone)]
struct ImagingFactory(Arc<Images>);

#[derive(Debug)]
struct Imaging {
    local: Arc<dyn twinflow_core::Executor>,
    images: Arc<Images>,
}

impl twinflow_core::ExecutorFactory for ImagingFactory {
    fn create(
        &self,
        spec: &twinflow_core::ExecutorSpec,
        sink: Arc<dyn twinflow_core::UpdateSink>,
    ) -> Result<Arc<dyn twinflow_core::Executor>, twinflow_core::ExecutorError> {
        Ok(Arc::new(Imaging {
            local: LocalFactory::default().create(spec, sink)?,
            images: Arc::clone(&self.0),
        }))
    }
}

#[async_trait::async_trait]
impl twinflow_core::Executor for Imaging {
    async fn submit(
        &self,
        job: twinflow_core::Job,
    ) -> Result<twinflow_core::Handle, twinflow_core::ExecutorError> {
        self.local.submit(job).await
    }

    async fn resolve_image(
        &self,
        container: &ContainerSpec,
        steps: &[String],
    ) -> Result<ResolvedImage, twinflow_core::ExecutorError> {
        self.images
            .calls
            .lock()
            .unwrap()
            .push((container.image.clone(), steps.to_vec()));
        let digest = self.images.digest.lock().unwrap().clone();
        let digest = digest.ok_or_else(|| {
            twinflow_core::ExecutorError::new(format!(
                "failed to resolve image `{}` with podman on host `node1`: no such image",
                container.image
            ))
        })?;
        Ok(ResolvedImage {
            image: container.image_ref().unwrap(),
            runtime: ContainerRuntime::Podman,
            run_ref: digest.clone(),
            digest,
        })
    }

    async fn reattach(
        &self,
        run: twinflow_core::RunRef<'_>,
        attempts: Vec<(twinflow_core::AttemptKey, twinflow_core::Handle)>,
    ) -> Result<Vec<twinflow_core::AttemptKey>, twinflow_core::ExecutorError> {
        self.local.reattach(run, attempts).await
    }

    async fn cancel(
        &self,
        key: twinflow_core::AttemptKey,
        handle: &twinflow_core::Handle,
    ) -> Result<(), twinflow_core::ExecutorError> {
        self.local.cancel(key, handle).await
    }

    async fn shutdown(&self) {
        self.local.shutdown().await;
    }
}

const YAML: &str = "
version: 1
name: boxed
executors: { cluster: { kind: local, container_runtime: podman } }
steps:
  a:
    executor: cluster
    container: localhost/twinflow-busybox:1
    run: echo a >> $DIR/ran && echo a > ${{ outputs.o }}
    outputs: { o: o.txt }
  b:
    executor: cluster
    container: localhost/twinflow-busybox:1
    run: echo b >> $DIR/ran && echo b > ${{ outputs.o }}
    outputs: { o: o.txt }
  c:
    executor: cluster
    container: localhost/other:2
    run: echo c >> $DIR/ran && echo c > ${{ outputs.o }}
    outputs: { o: o.txt }
";

struct Setup {
    dir: tempfile::TempDir,
    images: Arc<Images>,
    engine: Engine,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let images = Arc::new(Images::default());
        let engine = Engine::builder()
            .state_dir(dir.path().join("state"))
            .executor(ExecutorKind::Local, ImagingFactory(Arc::clone(&images)))
            .build()
            .unwrap();
        Self {
            dir,
            images,
            engine,
        }
    }

    fn plan(&self, run_id: &str) -> twinflow_core::Plan {
        let yaml = YAML.replace("$DIR", &self.dir.path().display().to_string());
        let options = CompileOptions {
            run_id: run_id.to_owned(),
            ..CompileOptions::default()
        };
        twinflow_workflow::compile_str("test.yaml", &yaml, &options)
            .unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    fn set_digest(&self, digest: Option<&str>) {
        *self.images.digest.lock().unwrap() = digest.map(str::to_owned);
    }

    async fn run(&self, run_id: &str) -> twinflow_engine::RunSummary {
        let mut handle = self
            .engine
            .submit(self.plan(run_id), RunOptions::default())
            .await
            .unwrap();
        while handle.next_event().await.is_some() {}
        handle.wait().await.unwrap()
    }

    fn ran(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ran")).unwrap_or_default()
    }
}

#[tokio::test]
async fn each_image_is_resolved_once_per_executor_and_its_digest_is_recorded() {
    let s = Setup::new();
    s.set_digest(Some("sha256:1111"));
    let summary = s.run("r1").await;
    assert_eq!((summary.ran, summary.cached), (3, 0));
    let calls = s.images.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            (
                "localhost/twinflow-busybox:1".to_owned(),
                vec!["a".to_owned(), "b".to_owned()]
            ),
            ("localhost/other:2".to_owned(), vec!["c".to_owned()]),
        ]
    );
    let images = s.engine.read_state(|st| st.run_images("r1").unwrap());
    let image = |step: &str, image: &str| RunImage {
        step: step.to_owned(),
        image: image.to_owned(),
        runtime: "podman".to_owned(),
        digest: "sha256:1111".to_owned(),
    };
    assert_eq!(
        images,
        [
            image("a", "localhost/twinflow-busybox:1"),
            image("b", "localhost/twinflow-busybox:1"),
            image("c", "localhost/other:2"),
        ]
    );
}

#[tokio::test]
async fn a_changed_image_digest_runs_the_tasks_again_an_unchanged_one_reuses_them() {
    let s = Setup::new();
    s.set_digest(Some("sha256:1111"));
    assert_eq!(s.run("r1").await.ran, 3);
    let again = s.run("r2").await;
    assert_eq!((again.ran, again.cached), (0, 3), "same digest: cached");
    s.set_digest(Some("sha256:2222"));
    let retagged = s.run("r3").await;
    assert_eq!((retagged.ran, retagged.cached), (3, 0), "re-tagged: re-run");
    assert_eq!(s.ran().lines().count(), 6);
}

#[tokio::test]
async fn an_image_the_executor_cannot_resolve_refuses_the_run_before_anything_runs() {
    let s = Setup::new();
    s.set_digest(None);
    let Err(e) = s.engine.submit(s.plan("r1"), RunOptions::default()).await else {
        panic!("an unresolvable image was accepted");
    };
    assert_eq!(
        e.to_string(),
        "step `a`, `b` runs in container `localhost/twinflow-busybox:1`, which is refused \
         rather than run on the host: executor `cluster` (kind local) failed to resolve image \
         `localhost/twinflow-busybox:1` with podman on host `node1`: no such image"
    );
    assert_eq!(s.ran(), "");
    let runs = s.engine.read_state(|st| st.runs().unwrap().len());
    assert_eq!(runs, 0, "nothing is recorded for a refused run");
}
