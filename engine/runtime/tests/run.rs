//! The engine running real workflows with the local executor: failure
//! policy, artefact hand-off, caching, timeouts, cancellation, retries and
//! resuming, each observed through events, files and processes.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use twinflow_core::ExecutorKind;
use twinflow_engine::{Engine, EngineError, Outcome, RunEvent, RunOptions, RunSummary};
use twinflow_executor_local::LocalFactory;
use twinflow_workflow::CompileOptions;

mod common;
use common::Fixture;

impl Fixture {
    fn plan(&self, yaml: &str, params: &[(&str, &str)], run_id: &str) -> twinflow_core::Plan {
        let yaml = yaml.replace("$DIR", &self.dir.path().display().to_string());
        let mut options = CompileOptions {
            run_id: run_id.to_owned(),
            ..CompileOptions::default()
        };
        for (k, v) in params {
            options
                .params
                .push(twinflow_workflow::parse_param_arg(&format!("{k}={v}")).unwrap());
        }
        twinflow_workflow::compile_str("test.yaml", &yaml, &options)
            .unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    async fn run(
        &self,
        plan: twinflow_core::Plan,
        options: RunOptions,
    ) -> (RunSummary, Vec<RunEvent>) {
        self.run_all(plan, options).await
    }
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only a process still running counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

async fn wait_for_file(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn a_failure_skips_its_dependents_while_independent_branches_go_on() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: branches
executors: { here: { kind: local } }
steps:
  bad:
    executor: here
    run: echo 'the model diverged' >&2; exit 3
    outputs: { out: out.txt }
  after-bad:
    executor: here
    needs: { x: bad.out }
    run: cat ${{ inputs.x }}
  good:
    executor: here
    run: echo fine > ${{ outputs.out }}
    outputs: { out: out.txt }
",
        &[],
        "r1",
    );
    let (summary, events) = f.run(plan, RunOptions::default()).await;
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!((summary.ran, summary.failed, summary.skipped), (1, 1, 1));
    let (name, reason) = &summary.failures[0];
    assert_eq!(name, "bad");
    assert_eq!(reason, "exited with status 3: the model diverged");
    assert!(
        events.iter().any(|e| matches!(e,
        RunEvent::TaskSkipped { name, because: Some(b), .. } if name == "after-bad" && b == "bad"))
    );
}

#[tokio::test]
async fn a_missing_output_fails_the_task_naming_it() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: missing
executors: { here: { kind: local } }
steps:
  forgetful:
    executor: here
    run: echo written > a.csv
    outputs: { a: a.csv, stands: out/stands.csv }
",
        &[],
        "r1",
    );
    let (summary, _) = f.run(plan, RunOptions::default()).await;
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!(
        summary.failures[0].1,
        "output `stands` (out/stands.csv) was not written"
    );
}

#[tokio::test]
async fn a_step_in_a_container_is_refused_not_run_on_the_host() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: boxed
executors: { here: { kind: local, container_runtime: podman } }
steps:
  plain:
    executor: here
    run: touch $DIR/plain-ran
  boxed:
    executor: here
    container: localhost/twinflow-no-such-image:0
    run: touch $DIR/boxed-ran
",
        &[],
        "r1",
    );
    let Err(e) = f.engine.submit(plan, RunOptions::default()).await else {
        panic!("a step in a container was accepted");
    };
    // Without podman: "podman is not installed"; with it: "no such image in
    // the local store". Either way the run is refused before anything runs.
    let shown = e.to_string();
    assert!(
        shown.starts_with(
            "step `boxed` runs in container `localhost/twinflow-no-such-image:0`, which is \
             refused rather than run on the host: executor `here` (kind local)"
        ) && shown.contains("podman"),
        "{shown}"
    );
    assert!(!f.path("plain-ran").exists() && !f.path("boxed-ran").exists());
    let runs = f.engine.read_state(|s| s.runs().unwrap().len());
    assert_eq!(runs, 0, "nothing is recorded for a refused run");
}

#[tokio::test]
async fn an_executor_prologue_runs_on_the_host_before_each_task() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: prologue
executors:
  here: { kind: local, prologue: 'export LOADED=\"python $TWINFLOW_RUN_ID\"' }
  broken: { kind: local, prologue: 'false' }
steps:
  a:
    executor: here
    run: echo \"$LOADED\" > $DIR/a-ran
  b:
    executor: broken
    run: touch $DIR/b-ran
",
        &[],
        "r1",
    );
    let (summary, _) = f.run(plan, RunOptions::default()).await;
    assert_eq!(
        std::fs::read_to_string(f.path("a-ran")).unwrap(),
        "python r1\n",
        "the prologue ran in the task's shell"
    );
    assert!(
        !f.path("b-ran").exists(),
        "a failing prologue stops its task"
    );
    assert_eq!(summary.failed, 1, "{summary:?}");
}

#[tokio::test]
async fn cycling_state_and_gathers_arrive_where_the_commands_expect_them() {
    let f = Fixture::new();
    let plan = f.plan(
        r#"
version: 1
name: handoff
cycle: { start: 2020-01-01, stop: 2040-01-01, step: P10Y }
executors: { here: { kind: local } }
steps:
  grow:
    executor: here
    for_each: { stand: [a, b] }
    cycling: true
    needs: { prev: grow.state@-1 }
    run: |
      if [ -z ${{ inputs.prev }} ]; then n=0; else n=$(cat ${{ inputs.prev }}); fi
      echo $((n + 1)) > ${{ outputs.state }}
    outputs: { state: state.txt }
  total:
    executor: here
    needs: { all: grow.state }
    run: cat ${{ inputs.all }} | tr '\n' ' ' > ${{ outputs.sum }}; ls -d inputs/all/* > listing
    outputs: { sum: sum.txt }
"#,
        &[],
        "r1",
    );
    let (summary, _) = f.run(plan, RunOptions::default()).await;
    assert_eq!(
        summary.outcome,
        Outcome::Succeeded,
        "{:?}",
        summary.failures
    );
    let work = summary.run_dir.join("work/total/0");
    // Instances in plan order: stand a at 2020, 2030, 2040, then stand b.
    assert_eq!(
        std::fs::read_to_string(work.join("sum.txt")).unwrap(),
        "1 2 3 1 2 3 "
    );
    // Staged as a hard link to the producer's sealed file: the very bytes,
    // without a new inode.
    use std::os::unix::fs::MetadataExt;
    let staged = std::fs::symlink_metadata(work.join("inputs/all/0.txt")).unwrap();
    let sealed = std::fs::metadata(summary.run_dir.join("work/grow/0/state.txt")).unwrap();
    assert!(staged.is_file());
    assert_eq!((staged.dev(), staged.ino()), (sealed.dev(), sealed.ino()));
}

const CACHED: &str = r#"
version: 1
name: cached
params: { scale: 2 }
executors: { here: { kind: local } }
steps:
  gen:
    executor: here
    for_each: { i: [1, 2, 3] }
    run: echo gen >> $DIR/executions; echo ${{ i }} > ${{ outputs.n }}
    outputs: { n: n.txt }
  scale:
    executor: here
    for_each: { i: [1, 2, 3] }
    needs: { n: gen.n }
    run: echo scale >> $DIR/executions; echo $(( $(cat ${{ inputs.n }}) * ${{ params.scale }} )) > ${{ outputs.m }}
    outputs: { m: m.txt }
"#;

fn executions(f: &Fixture) -> (usize, usize) {
    let text = std::fs::read_to_string(f.path("executions")).unwrap_or_default();
    let gen_runs = text.lines().filter(|l| *l == "gen").count();
    (gen_runs, text.lines().count() - gen_runs)
}

#[tokio::test]
async fn unchanged_tasks_come_from_the_cache_and_a_parameter_reruns_only_what_it_affects() {
    let f = Fixture::new();
    let (first, _) = f
        .run(f.plan(CACHED, &[], "r1"), RunOptions::default())
        .await;
    assert_eq!((first.ran, first.cached), (6, 0));
    assert_eq!(executions(&f), (3, 3));

    let (second, events) = f
        .run(f.plan(CACHED, &[], "r2"), RunOptions::default())
        .await;
    assert_eq!((second.ran, second.cached), (0, 6));
    assert_eq!(executions(&f), (3, 3), "nothing ran again");
    assert!(events.iter().any(|e| matches!(e,
        RunEvent::TaskSucceeded { cached_from: Some(r), .. } if r == "r1")));
    // The store says where each reused result came from.
    let store = twinflow_engine::StateStore::open(&f.path("state")).unwrap();
    let counts = store.step_counts("r2").unwrap();
    assert_eq!((counts[0].succeeded, counts[0].cached), (3, 3));
    let row = store.task("r2", "scale[i=2]").unwrap().unwrap();
    assert_eq!(row.cached_from.as_deref(), Some("r1"));
    drop(store);
    // The reused outputs are in the new run's own directory.
    let m = second.run_dir.join("work/scale/2/m.txt");
    assert_eq!(std::fs::read_to_string(m).unwrap(), "6\n");

    let (third, _) = f
        .run(
            f.plan(CACHED, &[("scale", "5")], "r3"),
            RunOptions::default(),
        )
        .await;
    assert_eq!(
        (third.ran, third.cached),
        (3, 3),
        "only `scale` depends on the parameter"
    );
    assert_eq!(executions(&f), (3, 6));
    let m = third.run_dir.join("work/scale/2/m.txt");
    assert_eq!(std::fs::read_to_string(m).unwrap(), "15\n");

    // A sealed output changed behind twinflow's back is not reused.
    std::fs::write(first.run_dir.join("work/gen/0/n.txt"), "tampered\n").unwrap();
    std::fs::write(second.run_dir.join("work/gen/0/n.txt"), "tampered\n").unwrap();
    let (fourth, _) = f
        .run(
            f.plan(CACHED, &[], "r4"),
            RunOptions {
                cache: true,
                ..RunOptions::default()
            },
        )
        .await;
    assert_eq!(fourth.outcome, Outcome::Succeeded);
    assert!(fourth.ran >= 1, "the tampered result ran again: {fourth:?}");

    let (fifth, _) = f
        .run(
            f.plan(CACHED, &[], "r5"),
            RunOptions {
                cache: false,
                ..RunOptions::default()
            },
        )
        .await;
    assert_eq!(
        (fifth.ran, fifth.cached),
        (6, 0),
        "--no-cache runs everything"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_tree() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: slow
executors: { here: { kind: local } }
steps:
  hang:
    executor: here
    timeout: 3s
    run: sleep 60 & echo $! > $DIR/child.pid; sleep 60
",
        &[],
        "r1",
    );
    let started = std::time::Instant::now();
    let (summary, _) = f.run(plan, RunOptions::default()).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!(summary.failures[0].1, "timed out after 3 s and was killed");
    let child: u32 = std::fs::read_to_string(f.path("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!alive(child), "the background child {child} survived");
}

#[tokio::test]
async fn cancelling_kills_running_tasks_and_leaves_no_orphans() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: cancel
executors: { here: { kind: local, slots: 2 } }
steps:
  long:
    executor: here
    run: trap '' TERM; sleep 60 & echo $! > $DIR/child.pid; wait
  later:
    executor: here
    after: [long]
    run: 'true'
",
        &[],
        "r1",
    );
    let mut handle = f.engine.submit(plan, RunOptions::default()).await.unwrap();
    let child: u32 = wait_for_file(&f.path("child.pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(alive(child));
    handle.cancel();
    let mut events = Vec::new();
    while let Some(e) = handle.next_event().await {
        events.push(e);
    }
    let summary = handle.wait().await.unwrap();
    assert_eq!(summary.outcome, Outcome::Cancelled);
    assert_eq!(summary.cancelled, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !alive(child),
        "a task that ignores SIGTERM is killed after the grace period"
    );
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_backoff() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: flaky
executors: { here: { kind: local } }
steps:
  flaky:
    executor: here
    retries: 2
    run: echo try >&2; if [ -f $DIR/tried ]; then echo ok > out; else touch $DIR/tried; exit 1; fi
    outputs: { out: out }
",
        &[],
        "r1",
    );
    let (summary, events) = f.run(plan, RunOptions::default()).await;
    assert_eq!(summary.outcome, Outcome::Succeeded);
    let retry = events.iter().find_map(|e| match e {
        RunEvent::TaskFailed {
            retry_in, attempt, ..
        } => Some((*attempt, *retry_in)),
        _ => None,
    });
    assert_eq!(retry.map(|r| r.0), Some(0));
    assert!(retry.and_then(|r| r.1).is_some_and(|d| d > 0.5 && d <= 1.0));
    // Each attempt keeps its own logs.
    assert!(summary.run_dir.join("logs/flaky/0.0.err").exists());
    assert!(summary.run_dir.join("logs/flaky/0.1.err").exists());
}

const RESUMABLE: &str = "
version: 1
name: resumable
executors: { here: { kind: local } }
steps:
  first:
    executor: here
    for_each: { i: [1, 2] }
    run: echo first >> $DIR/executions; echo ${{ i }} > ${{ outputs.v }}
    outputs: { v: v }
  second:
    executor: here
    needs: { v: first.v }
    run: test -f $DIR/fixed; echo second >> $DIR/executions; cat ${{ inputs.v }} > ${{ outputs.all }}
    outputs: { all: all }
";

#[tokio::test]
async fn resuming_a_failed_run_keeps_what_finished() {
    let f = Fixture::new();
    let (failed, _) = f
        .run(f.plan(RESUMABLE, &[], "r1"), RunOptions::default())
        .await;
    assert_eq!(failed.outcome, Outcome::Failed);
    std::fs::write(f.path("fixed"), "").unwrap();
    let resume = RunOptions {
        resume: true,
        ..RunOptions::default()
    };
    let (resumed, _) = f.run(f.plan(RESUMABLE, &[], "r1"), resume.clone()).await;
    assert_eq!(resumed.outcome, Outcome::Succeeded);
    assert_eq!((resumed.ran, resumed.cached), (1, 2));
    let text = std::fs::read_to_string(f.path("executions")).unwrap();
    assert_eq!(text, "first\nfirst\nsecond\n");
    // A finished run, a changed workflow, and an unknown run are refused.
    let again = f
        .engine
        .submit(f.plan(RESUMABLE, &[], "r1"), resume.clone())
        .await;
    assert!(matches!(again, Err(EngineError::AlreadySucceeded(_))));
    let changed = RESUMABLE.replace("echo first", "echo First");
    let (failed2, _) = {
        std::fs::remove_file(f.path("fixed")).unwrap();
        let no_cache = RunOptions {
            cache: false,
            ..RunOptions::default()
        };
        f.run(f.plan(RESUMABLE, &[], "r2"), no_cache).await
    };
    assert_eq!(failed2.outcome, Outcome::Failed);
    let err = f
        .engine
        .submit(f.plan(&changed, &[], "r2"), resume.clone())
        .await;
    assert!(matches!(err, Err(EngineError::PlanChanged(_))));
    let err = f
        .engine
        .submit(f.plan(RESUMABLE, &[], "nope"), resume)
        .await;
    assert!(matches!(err, Err(EngineError::NoSuchRun(_))));
    let err = f
        .engine
        .submit(f.plan(RESUMABLE, &[], "r1"), RunOptions::default())
        .await;
    assert!(matches!(err, Err(EngineError::RunExists(_))));
}

#[test]
fn a_database_from_a_newer_twinflow_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(twinflow_engine::StateStore::open(dir.path()).unwrap());
    let db = dir.path().join(twinflow_engine::DB_FILE);
    {
        let conn = rusqlite_conn(&db);
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = twinflow_engine::StateStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
    assert_eq!(
        rusqlite_conn(&db)
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        99
    );
}

fn rusqlite_conn(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// A state database written by schema version 1 (`tests/fixtures/state-v1.sqlite`,
/// made by `twinflow run tests/fixtures/state-v1.yaml`) opens, reads and takes
/// new runs. When the schema changes, this test keeps the old file working.
#[tokio::test]
async fn a_version_1_database_opens_reads_and_takes_new_runs() {
    let f = Fixture::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let state = f.path("v1");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        fixtures.join("state-v1.sqlite"),
        state.join(twinflow_engine::DB_FILE),
    )
    .unwrap();
    {
        let store = twinflow_engine::StateStore::open(&state).unwrap();
        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, "fixture-20261125-100240-453d");
        assert_eq!(runs[0].state, twinflow_engine::RunState::Succeeded);
        // Its settings, as `twinflow run` stored them then, read typed.
        assert_eq!(
            runs[0].settings(),
            twinflow_engine::RunSettings {
                file: Some("/tmp/fx/fixture.yaml".to_owned()),
                ..Default::default()
            }
        );
        let counts = store.step_counts(&runs[0].id).unwrap();
        assert_eq!((counts[0].step.as_str(), counts[0].succeeded), ("make", 2));
        let join = store.task(&runs[0].id, "join").unwrap().unwrap();
        let artefacts = store.artefacts(&runs[0].id, join.task).unwrap();
        assert_eq!(
            artefacts[0].sha256, "a6e2b7a040683432de03a18fd8a1939a2fdf82585b364bfc874bdd4095c4cae1",
            "the sha256 of \"1\\n2\\n\" as sealed"
        );
        assert_eq!(artefacts[0].size, 4);
        // Task states as version 1 stored them read as the typed states.
        let states: Vec<_> = store
            .tasks(&runs[0].id)
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.state))
            .collect();
        let succeeded = twinflow_engine::TaskState::Succeeded;
        assert_eq!(
            states,
            [
                ("make[i=1]".to_owned(), succeeded),
                ("make[i=2]".to_owned(), succeeded),
                ("join".to_owned(), succeeded)
            ]
        );
        let records = store.task_records(&runs[0].id).unwrap();
        assert!(records.iter().all(|r| r.state == succeeded), "{records:?}");
    }
    let engine = Engine::builder()
        .state_dir(&state)
        .executor(ExecutorKind::Local, LocalFactory::default())
        .build()
        .unwrap();
    let yaml = std::fs::read_to_string(fixtures.join("state-v1.yaml")).unwrap();
    let plan = f.plan(&yaml, &[], "after-v1");
    let mut handle = engine.submit(plan, RunOptions::default()).await.unwrap();
    while handle.next_event().await.is_some() {}
    let summary = handle.wait().await.unwrap();
    // The fixture's run came from another workflow directory (part of every
    // task's environment, so of its cache key): nothing is reused.
    assert_eq!((summary.ran, summary.cached), (3, 0));
    let both = summary.run_dir.join("work/join/0/both.txt");
    assert_eq!(std::fs::read_to_string(both).unwrap(), "1\n2\n");
}

/// A batch-system-like backend for the restart test: `submit` hands the job
/// to nobody (it stays queued, as in a busy cluster) and returns a handle
/// naming its working directory; after a restart, `reattach` follows every
/// attempt it is given and completes it by writing its output, as the job
/// would have. Other jobs run as local processes.
#[derive(Debug)]
struct Following {
    local: Arc<dyn twinflow_core::Executor>,
    sink: Arc<dyn twinflow_core::UpdateSink>,
    submitted: Arc<std::sync::atomic::AtomicUsize>,
    hold: bool,
}

#[derive(Debug, Clone)]
struct FollowingFactory {
    submitted: Arc<std::sync::atomic::AtomicUsize>,
    hold: bool,
}

impl twinflow_core::ExecutorFactory for FollowingFactory {
    fn create(
        &self,
        spec: &twinflow_core::ExecutorSpec,
        sink: Arc<dyn twinflow_core::UpdateSink>,
    ) -> Result<Arc<dyn twinflow_core::Executor>, twinflow_core::ExecutorError> {
        Ok(Arc::new(Following {
            local: LocalFactory::default().create(spec, Arc::clone(&sink))?,
            sink,
            submitted: Arc::clone(&self.submitted),
            hold: self.hold,
        }))
    }
}

#[async_trait::async_trait]
impl twinflow_core::Executor for Following {
    async fn submit(
        &self,
        job: twinflow_core::Job,
    ) -> Result<twinflow_core::Handle, twinflow_core::ExecutorError> {
        self.submitted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if !self.hold {
            return self.local.submit(job).await;
        }
        self.sink.send(twinflow_core::Update {
            key: job.key,
            status: twinflow_core::AttemptStatus::Queued,
        });
        Ok(twinflow_core::Handle(format!(
            "job:{}",
            job.workdir.display()
        )))
    }

    async fn reattach(
        &self,
        _run: twinflow_core::RunRef<'_>,
        attempts: Vec<(twinflow_core::AttemptKey, twinflow_core::Handle)>,
    ) -> Result<Vec<twinflow_core::AttemptKey>, twinflow_core::ExecutorError> {
        let mut followed = Vec::new();
        for (key, handle) in attempts {
            let dir = PathBuf::from(handle.0.trim_start_matches("job:"));
            let sink = Arc::clone(&self.sink);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                std::fs::write(dir.join("out.txt"), "from the followed job\n").unwrap();
                sink.send(twinflow_core::Update {
                    key,
                    status: twinflow_core::AttemptStatus::Exited(0),
                });
            });
            followed.push(key);
        }
        Ok(followed)
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

#[test]
fn after_a_crash_attempts_the_backend_still_follows_are_adopted_not_submitted_again() {
    let f = Fixture::new();
    let yaml = "
version: 1
name: adopt
executors: { cluster: { kind: local } }
steps:
  long:
    executor: cluster
    run: echo never runs here
    outputs: { out: out.txt }
  after:
    executor: cluster
    needs: { x: long.out }
    run: cat ${{ inputs.x }} > ${{ outputs.copy }}
    outputs: { copy: copy.txt }
";
    let state = f.path("adopt-state");
    let first = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // The first process submits `long`, journals its handle, and dies.
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let engine = Engine::builder()
            .state_dir(&state)
            .executor(
                ExecutorKind::Local,
                FollowingFactory {
                    submitted: Arc::clone(&first),
                    hold: true,
                },
            )
            .build()
            .unwrap();
        let plan = f.plan(yaml, &[], "r1");
        runtime.block_on(async {
            let _run = engine.submit(plan, RunOptions::default()).await.unwrap();
            let store = twinflow_engine::StateStore::open(&state).unwrap();
            for _ in 0..200 {
                if store
                    .task("r1", "long")
                    .unwrap()
                    .and_then(|t| t.handle)
                    .is_some()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        runtime.shutdown_background();
    }
    assert_eq!(first.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Its process is gone: record it as another, dead one.
    rusqlite_conn(&state.join(twinflow_engine::DB_FILE))
        .execute("UPDATE runs SET pid_start = 1 WHERE id = 'r1'", [])
        .unwrap();

    let second = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::builder()
        .state_dir(&state)
        .executor(
            ExecutorKind::Local,
            FollowingFactory {
                submitted: Arc::clone(&second),
                hold: false,
            },
        )
        .build()
        .unwrap();
    let summary = runtime.block_on(async {
        let resume = RunOptions {
            resume: true,
            ..RunOptions::default()
        };
        let handle = engine
            .submit(f.plan(yaml, &[], "r1"), resume)
            .await
            .unwrap();
        handle.wait().await.unwrap()
    });
    assert_eq!(
        summary.outcome,
        Outcome::Succeeded,
        "{:?}",
        summary.failures
    );
    assert_eq!(
        second.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "only `after` was submitted; `long` was followed, not submitted again"
    );
    let copy = summary.run_dir.join("work/after/0/copy.txt");
    assert_eq!(
        std::fs::read_to_string(copy).unwrap(),
        "from the followed job\n"
    );
}
