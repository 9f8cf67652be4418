use super::*;
use twinflow_core::{Resources, TaskId};

pub(super) fn job(task: u32, step: &str, time: Option<u64>, pack: Option<u32>) -> Job {
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("{step}[{task}]"),
        script: "true".to_owned(),
        env: Vec::new(),
        workdir: PathBuf::from(format!("/run/work/{step}/{task}")),
        stdout: PathBuf::from(format!("/run/logs/{step}/{task}.0.out")),
        stderr: PathBuf::from(format!("/run/logs/{step}/{task}.0.err")),
        resources: Resources {
            time_seconds: time,
            ..Resources::default()
        },
        step: step.to_owned(),
        pack: pack.map(twinflow_core::PackSpec::sequential),
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

/// Each unit as a letter and its task ids.
pub(super) fn shapes(units: &[Unit]) -> Vec<(char, Vec<u32>)> {
    units
        .iter()
        .map(|u| match u {
            Unit::Single(j) => ('s', vec![j.key.task.0]),
            Unit::Array(js) => ('a', js.iter().map(|j| j.key.task.0).collect()),
            Unit::Pack(js, _) => ('p', js.iter().map(|j| j.key.task.0).collect()),
            Unit::Group(js) => ('g', js.iter().map(|j| j.key.task.0).collect()),
        })
        .collect()
}

#[test]
fn tasks_of_one_step_with_the_same_resources_become_arrays_chunked_by_max_array_size() {
    let mut jobs: Vec<Job> = (0..5).map(|t| job(t, "a", Some(600), None)).collect();
    jobs.push(job(5, "b", Some(600), None));
    jobs.push(job(6, "a", Some(900), None));
    let u = units(jobs, 3, Some(Path::new("/bin/twinflow")));
    assert_eq!(
        shapes(&u),
        [
            ('a', vec![0, 1, 2]),
            ('a', vec![3, 4]),
            ('s', vec![5]),
            ('s', vec![6])
        ]
    );
}

#[test]
fn pack_n_and_short_tasks_are_packed_only_with_a_worker() {
    let jobs = || -> Vec<Job> {
        let mut v: Vec<Job> = (0..5).map(|t| job(t, "p", Some(3600), Some(2))).collect();
        v.extend((5..8).map(|t| job(t, "short", Some(30), None)));
        v.push(job(8, "one", Some(30), Some(1)));
        v.push(job(9, "one", Some(30), Some(1)));
        v
    };
    assert_eq!(
        shapes(&units(jobs(), 1000, Some(Path::new("/bin/twinflow")))),
        [
            ('p', vec![0, 1]),
            ('p', vec![2, 3]),
            ('s', vec![4]),
            ('p', vec![5, 6, 7]),
            ('a', vec![8, 9]),
        ]
    );
    assert_eq!(
        shapes(&units(jobs(), 1000, None)),
        [
            ('a', vec![0, 1, 2, 3, 4]),
            ('a', vec![5, 6, 7]),
            ('a', vec![8, 9]),
        ]
    );
}

#[test]
fn automatic_packs_hold_about_ten_minutes_of_work() {
    assert_eq!(pack_size(&job(0, "s", Some(30), None), true), 20);
    assert_eq!(pack_size(&job(0, "s", Some(1), None), true), 100);
    assert_eq!(pack_size(&job(0, "s", Some(59), None), true), 10);
    assert_eq!(pack_size(&job(0, "s", Some(60), None), true), 1);
    assert_eq!(pack_size(&job(0, "s", None, None), true), 1);
    assert_eq!(pack_size(&job(0, "s", Some(30), None), false), 1);
}

#[test]
fn handles_round_trip_with_paths_holding_colons() {
    let status = Path::new("/scratch/a:b/0.0.status");
    for (job, packed, text) in [
        (
            JobRef::Job(JobId(42)),
            false,
            "slurm:42:/scratch/a:b/0.0.status",
        ),
        (
            JobRef::ArrayTask {
                array: JobId(42),
                task: 7,
            },
            false,
            "slurm:42_7:/scratch/a:b/0.0.status",
        ),
        (
            JobRef::Job(JobId(9)),
            true,
            "slurm-pack:9:/scratch/a:b/0.0.status",
        ),
    ] {
        let h = handle_of(&job, status, packed);
        assert_eq!(h.0, text);
        assert_eq!(
            parse_handle(&h),
            Some(Parsed::Job {
                job,
                status: status.to_owned(),
                packed
            })
        );
    }
    assert_eq!(
        parse_handle(&Handle("slurm-queued:/x/0.0.status".into())),
        Some(Parsed::Queued {
            status: PathBuf::from("/x/0.0.status")
        })
    );
    assert_eq!(parse_handle(&Handle("pid:1:2".into())), None);
}

/// A cluster whose controller is out of reach for the first `sbatch`, then
/// back: it accepts the array as job 77 and runs it to the end.
#[derive(Debug, Default)]
struct FlakyController {
    sbatch_calls: std::sync::atomic::AtomicU32,
    lookups: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Cluster for FlakyController {
    async fn command(&self, program: &str, args: &[String]) -> Result<String, ExecutorError> {
        use std::sync::atomic::Ordering::SeqCst;
        match program {
            "scontrol" => Ok("MaxArraySize = 1001\n".to_owned()),
            "sbatch" if self.sbatch_calls.fetch_add(1, SeqCst) == 0 => {
                Err(crate::cluster::failed(
                    "sbatch",
                    "exit status: 1",
                    b"sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
                ))
            }
            "sbatch" => Ok("77\n".to_owned()),
            // Looking for jobs by comment: the first sbatch never got through.
            "squeue" if args.iter().any(|a| a == "--me") => {
                self.lookups.fetch_add(1, SeqCst);
                Ok(String::new())
            }
            "squeue" => Ok("77_0|COMPLETED|None\n77_1|COMPLETED|None\n".to_owned()),
            _ => Ok(String::new()),
        }
    }

    async fn write_files(&self, _: Vec<(PathBuf, String)>) -> Result<(), ExecutorError> {
        Ok(())
    }

    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
        paths
            .iter()
            .map(|p| {
                p.extension()
                    .is_some_and(|e| e == "status")
                    .then(|| "0\n".to_owned())
            })
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

#[tokio::test(start_paused = true)]
async fn an_sbatch_the_controller_could_not_take_is_looked_up_then_sent_again() {
    let cluster = Arc::new(FlakyController::default());
    let recorder = Arc::new(Recorder::default());
    let exec = SlurmExecutor::with_cluster(
        SlurmConfig::default(),
        recorder.clone(),
        cluster.clone(),
        Duration::from_secs(1),
    );
    let jobs: Vec<Job> = (0..2).map(|t| job(t, "s", Some(600), None)).collect();
    let handles = exec.submit_batch(jobs).await;
    assert!(handles.iter().all(Result::is_ok));
    // Paused time runs ahead while everything waits.
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if lock(&recorder.0)
            .iter()
            .filter(|u| u.status == AttemptStatus::Exited(0))
            .count()
            == 2
        {
            break;
        }
    }
    let updates = lock(&recorder.0).clone();
    assert!(
        !updates
            .iter()
            .any(|u| matches!(u.status, AttemptStatus::Error(_))),
        "no task failed for the outage: {updates:?}"
    );
    let submitted: Vec<&AttemptStatus> = updates
        .iter()
        .map(|u| &u.status)
        .filter(|s| matches!(s, AttemptStatus::Submitted(_)))
        .collect();
    assert_eq!(submitted.len(), 2, "{updates:?}");
    assert_eq!(
        updates
            .iter()
            .filter(|u| u.status == AttemptStatus::Exited(0))
            .count(),
        2,
        "{updates:?}"
    );
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(cluster.sbatch_calls.load(SeqCst), 2);
    assert_eq!(
        cluster.lookups.load(SeqCst),
        1,
        "looked up before sending again"
    );
}

/// A cluster whose `sbatch` never gets through to the controller; with
/// `answers`, its `scontrol` did answer once (the host is there), without,
/// nothing ever answers (a wrong host or port).
#[derive(Debug, Default)]
struct DeadController {
    answers: bool,
    sbatch_calls: std::sync::atomic::AtomicU32,
    /// Every command, the lookups by comment included.
    calls: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Cluster for DeadController {
    async fn command(&self, program: &str, _: &[String]) -> Result<String, ExecutorError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let unreachable = || {
            Err(crate::cluster::failed(
                program,
                "exit status: 1",
                b"error: Unable to contact slurm controller (connect failure)",
            ))
        };
        match program {
            "scontrol" if self.answers => Ok("MaxArraySize = 1001\n".to_owned()),
            "sbatch" => {
                self.sbatch_calls
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                unreachable()
            }
            _ => unreachable(),
        }
    }

    async fn write_files(&self, _: Vec<(PathBuf, String)>) -> Result<(), ExecutorError> {
        Ok(())
    }

    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
        vec![None; paths.len()]
    }
}

/// Submits two attempts to `cluster` and waits (in paused time) until both
/// failed or `limit` passed; their error messages and the time it took.
async fn errors_from(cluster: Arc<DeadController>, limit: Duration) -> (Vec<String>, Duration) {
    let recorder = Arc::new(Recorder::default());
    let exec = SlurmExecutor::with_cluster(
        SlurmConfig::default(),
        recorder.clone(),
        cluster,
        Duration::from_secs(1),
    );
    let start = tokio::time::Instant::now();
    let jobs: Vec<Job> = (0..2).map(|t| job(t, "s", Some(600), None)).collect();
    let handles = exec.submit_batch(jobs).await;
    assert!(handles.iter().all(Result::is_ok));
    let errors = || -> Vec<String> {
        lock(&recorder.0)
            .iter()
            .filter_map(|u| match &u.status {
                AttemptStatus::Error(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    };
    while errors().len() < 2 && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    (errors(), start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_controller_that_stays_out_of_reach_fails_the_attempts_after_the_patience() {
    let cluster = Arc::new(DeadController {
        answers: true,
        ..DeadController::default()
    });
    let (errors, took) = errors_from(cluster.clone(), Duration::from_secs(3600)).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("Unable to contact slurm controller") && errors[0].contains("gave up"),
        "{}",
        errors[0]
    );
    assert!(
        took >= OUTAGE_PATIENCE && took < OUTAGE_PATIENCE + RETRY_MAX * 2,
        "waited {took:?}"
    );
    // Asked again and again while waiting (a lookup by comment before each
    // new sbatch), with a backoff: not once a second.
    let calls = cluster.calls.load(std::sync::atomic::Ordering::SeqCst);
    assert!((10..60).contains(&calls), "{calls} commands while waiting");
}

#[tokio::test(start_paused = true)]
async fn a_cluster_that_never_answered_fails_the_attempts_at_once() {
    let cluster = Arc::new(DeadController::default());
    let (errors, took) = errors_from(cluster.clone(), Duration::from_secs(3600)).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("never answered"), "{}", errors[0]);
    assert!(took < RETRY_FIRST, "failed without waiting: {took:?}");
    assert_eq!(
        cluster
            .sbatch_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[test]
fn parallel_packs_hold_their_tasks_and_take_one_rank_srun_tasks() {
    let parallel = |t: u32, launcher| Job {
        pack: Some(twinflow_core::PackSpec {
            tasks: 4,
            parallel: 2,
        }),
        launcher,
        ..job(t, "w", Some(600), None)
    };
    let mut jobs: Vec<Job> = (0..5)
        .map(|t| parallel(t, Some(twinflow_core::Launcher::Srun)))
        .collect();
    // Same step and resources, sequential: a pack of its own.
    jobs.push(job(5, "w", Some(600), Some(4)));
    jobs.push(job(6, "w", Some(600), Some(4)));
    assert_eq!(
        shapes(&units(jobs, 1000, Some(Path::new("/bin/twinflow")))),
        [('p', vec![0, 1, 2, 3]), ('s', vec![4]), ('p', vec![5, 6])]
    );
    // `launcher: srun` outside a parallel pack is not packed.
    let mut seq = job(0, "w", Some(600), Some(4));
    seq.launcher = Some(twinflow_core::Launcher::Srun);
    assert_eq!(pack_size(&seq, true), 1);
}
