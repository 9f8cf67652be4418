//! The executor's `twinflow:` and `array_throttle` on a scripted cluster:
//! what reaches the job scripts, what a binary that does not run does.

use super::tests_support::job;
use super::*;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;

const GOOD: &str = "/appl/twinflow/bin/twinflow";
const MISSING: &str = "/missing/twinflow";

/// A cluster that runs every job to success at once, knows `GOOD` as a
/// twinflow binary and has nothing at `MISSING`; it keeps the files the
/// executor writes.
#[derive(Debug, Default)]
struct Scripted {
    next_id: AtomicU32,
    version_checks: AtomicU32,
    written: Mutex<Vec<(PathBuf, String)>>,
}

#[async_trait::async_trait]
impl Cluster for Scripted {
    async fn command(&self, program: &str, args: &[String]) -> Result<String, ExecutorError> {
        match program {
            "scontrol" => Ok("MaxArraySize = 1001\n".to_owned()),
            GOOD => {
                assert_eq!(args, ["--version"]);
                self.version_checks.fetch_add(1, SeqCst);
                Ok("twinflow 0.1.0\n".to_owned())
            }
            MISSING => {
                self.version_checks.fetch_add(1, SeqCst);
                Err(crate::cluster::failed(
                    MISSING,
                    "exit status 127 on root@login:22",
                    b"sh: 1: /missing/twinflow: not found\n",
                ))
            }
            "sbatch" => Ok(format!("{}\n", 100 + self.next_id.fetch_add(1, SeqCst))),
            "squeue" => Ok(super::tests_support::squeue_all_completed(args)),
            _ => Ok(String::new()),
        }
    }

    async fn write_files(&self, files: Vec<(PathBuf, String)>) -> Result<(), ExecutorError> {
        lock(&self.written).extend(files);
        Ok(())
    }

    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
        super::tests_support::status_files_zero(&paths)
    }
}

impl Scripted {
    /// The job scripts written whose name ends with `suffix`.
    fn scripts(&self, suffix: &str) -> Vec<String> {
        lock(&self.written)
            .iter()
            .filter(|(p, _)| p.display().to_string().ends_with(suffix))
            .map(|(_, t)| t.clone())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Update>>);

impl UpdateSink for Recorder {
    fn send(&self, update: Update) {
        lock(&self.0).push(update);
    }
}

impl Recorder {
    fn ended(&self) -> Vec<(u32, AttemptStatus)> {
        lock(&self.0)
            .iter()
            .filter(|u| u.status.is_final())
            .map(|u| (u.key.task.0, u.status.clone()))
            .collect()
    }

    /// Waits (in paused time) until `n` attempts ended.
    async fn wait_ended(&self, n: usize) {
        for _ in 0..600 {
            if self.ended().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("only {:?} ended", self.ended());
    }
}

fn executor(binary: &str, throttle: Option<u32>) -> (SlurmExecutor, Arc<Scripted>, Arc<Recorder>) {
    let cluster = Arc::new(Scripted::default());
    let recorder = Arc::new(Recorder::default());
    let config = SlurmConfig {
        array_throttle: throttle,
        twinflow: Some(binary.to_owned()),
        ..SlurmConfig::default()
    };
    let exec = SlurmExecutor::with_cluster_packing(
        config,
        recorder.clone(),
        cluster.clone(),
        Duration::from_millis(200),
        Source::Given(PathBuf::from(binary)),
    );
    (exec, cluster, recorder)
}

#[tokio::test(start_paused = true)]
async fn packs_run_the_given_twinflow_and_arrays_carry_the_throttle() {
    let (exec, cluster, recorder) = executor(GOOD, Some(2));
    let mut jobs: Vec<Job> = (0..4).map(|t| job(t, "p", Some(2))).collect();
    jobs.extend((4..7).map(|t| job(t, "a", None)));
    assert!(exec.submit_batch(jobs).await.iter().all(Result::is_ok));
    recorder.wait_ended(7).await;
    assert!(
        recorder
            .ended()
            .iter()
            .all(|(_, s)| *s == AttemptStatus::Exited(0)),
        "{:?}",
        recorder.ended()
    );
    let packs = cluster.scripts(".pack.sbatch");
    assert_eq!(packs.len(), 2, "two packs of two");
    for pack in &packs {
        assert!(
            pack.contains(&format!("\nexec {GOOD} worker /run/logs/p/")),
            "{pack}"
        );
    }
    let arrays = cluster.scripts(".array.sbatch");
    assert_eq!(arrays.len(), 1);
    assert!(
        arrays[0].contains("\n#SBATCH --array=0-2%2\n"),
        "{}",
        arrays[0]
    );
    // The binary is checked once, not per batch.
    let more: Vec<Job> = (7..9).map(|t| job(t, "p", Some(2))).collect();
    assert!(exec.submit_batch(more).await.iter().all(Result::is_ok));
    recorder.wait_ended(9).await;
    assert_eq!(cluster.scripts(".pack.sbatch").len(), 3);
    assert_eq!(cluster.version_checks.load(SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_given_twinflow_that_does_not_run_fails_the_tasks_it_would_pack() {
    let (exec, cluster, recorder) = executor(MISSING, None);
    let mut jobs: Vec<Job> = (0..2).map(|t| job(t, "p", Some(2))).collect();
    jobs.extend((2..4).map(|t| job(t, "a", None)));
    assert!(exec.submit_batch(jobs).await.iter().all(Result::is_ok));
    recorder.wait_ended(4).await;
    let mut ended = recorder.ended();
    ended.sort_by_key(|(t, _)| *t);
    for (task, status) in &ended[..2] {
        let AttemptStatus::Error(message) = status else {
            panic!("task {task}: {status:?}");
        };
        assert!(
            message.contains("`twinflow: /missing/twinflow` does not run on the cluster")
                && message.contains("not found")
                && message.contains("executor `test`"),
            "{message}"
        );
    }
    // The rest of the batch is not held up by it.
    assert_eq!(
        ended[2..],
        [(2, AttemptStatus::Exited(0)), (3, AttemptStatus::Exited(0))]
    );
    assert!(cluster.scripts(".pack.sbatch").is_empty());
    // No `%` without a throttle.
    let arrays = cluster.scripts(".array.sbatch");
    assert!(
        arrays[0].contains("\n#SBATCH --array=0-1\n"),
        "{}",
        arrays[0]
    );
}

/// Tasks of several ranks (or under a launcher) are never packed, not even
/// short ones that would be packed automatically: a pack's tasks share one
/// task's allocation. They go out as an array instead.
#[test]
fn parallel_tasks_are_never_packed() {
    let short = |t: u32, tasks: u32, launcher: Option<twinflow_core::Launcher>| {
        let mut j = job(t, "mpi", None);
        j.resources.time_seconds = Some(10);
        j.resources.tasks = tasks;
        j.launcher = launcher;
        j
    };
    let worker = Path::new(GOOD);
    let serial: Vec<Job> = (0..4).map(|t| short(t, 1, None)).collect();
    assert!(matches!(
        units(serial, 1000, Some(worker)).as_slice(),
        [Unit::Pack(jobs, _)] if jobs.len() == 4
    ));
    for (tasks, launcher) in [
        (4, None),
        (1, Some(twinflow_core::Launcher::Srun)),
        (1, Some(twinflow_core::Launcher::Mpirun)),
    ] {
        let parallel: Vec<Job> = (0..4).map(|t| short(t, tasks, launcher)).collect();
        assert!(
            matches!(
                units(parallel, 1000, Some(worker)).as_slice(),
                [Unit::Array(jobs)] if jobs.len() == 4
            ),
            "{tasks} ranks, {launcher:?}"
        );
    }
}

/// The executor takes the shapes the default refuses (ranks, nodes, a
/// launcher) and refuses a parallel task in a pack.
#[test]
fn the_executor_runs_ranks_and_nodes_but_does_not_pack_them() {
    let exec = SlurmExecutor::with_cluster(
        SlurmConfig::default(),
        Arc::new(Recorder::default()),
        Arc::new(Scripted::default()),
        Duration::from_millis(10),
    );
    let mut step = twinflow_core::StepSpec {
        name: "ocean".into(),
        description: None,
        executor: twinflow_core::ExecutorId(0),
        for_each: Vec::new(),
        cycling: false,
        inputs: Vec::new(),
        after: Vec::new(),
        outputs: Vec::new(),
        resources: twinflow_core::Resources {
            tasks: 8,
            nodes: Some(2),
            ..twinflow_core::Resources::default()
        },
        retries: 0,
        timeout_seconds: None,
        pack: None,
        launcher: Some(twinflow_core::Launcher::Mpirun),
        group: None,
        env: Vec::new(),
        container: None,
        model: None,
        code: Vec::new(),
        hooks: Vec::new(),
        tasks: 0..1,
    };
    assert!(twinflow_core::default_shape_refusal(&step).is_some());
    assert_eq!(exec.shape_refusal(&step), None);
    step.pack = Some(twinflow_core::PackSpec {
        tasks: 4,
        parallel: 1,
    });
    let why = exec.shape_refusal(&step).unwrap();
    assert!(why.contains("pack: 4"), "{why}");
}
