//! `user_max_jobs` with two executors (two runs) on one simulated cluster:
//! the user's live jobs (twinflow's, of either executor, and one of the
//! user's own) never pass the cap, and every attempt runs.

use super::*;
use crate::executor::tests_support::job;

/// A cluster where every job runs for two polls, and the user has one job
/// of their own running for the first `foreign` polls.
#[derive(Debug, Default)]
struct Busy(Mutex<Sim>);

#[derive(Debug, Default)]
struct Sim {
    next: u32,
    /// Elements of the array script written last.
    array: Option<u32>,
    /// Live jobs (squeue ids) and the polls they have left.
    live: Vec<(String, u32)>,
    ended: Vec<String>,
    foreign: u32,
    /// The most live jobs of the user at once, and each `sbatch`'s count.
    most: usize,
    sbatches: u32,
    /// An `squeue` that did not ask for all the user's jobs.
    by_id: bool,
}

#[async_trait::async_trait]
impl Cluster for Busy {
    async fn command(&self, program: &str, args: &[String]) -> Result<String, ExecutorError> {
        let mut sim = lock(&self.0);
        match program {
            "scontrol" => Ok("MaxArraySize = 1001\n".to_owned()),
            "sbatch" => {
                sim.next += 1;
                sim.sbatches += 1;
                let id = sim.next + 100;
                let new: Vec<String> = match args.last() {
                    Some(path) if path.ends_with("array.sbatch") => {
                        let n = sim.array.take().unwrap_or(0);
                        (0..n).map(|i| format!("{id}_{i}")).collect()
                    }
                    _ => vec![id.to_string()],
                };
                sim.live.extend(new.into_iter().map(|j| (j, 2)));
                let now = sim.live.len() + usize::from(sim.foreign > 0);
                sim.most = sim.most.max(now);
                Ok(format!("{id}\n"))
            }
            "squeue" => {
                if !args.iter().any(|a| a == "--me") {
                    sim.by_id = true;
                }
                let mut out = String::new();
                if sim.foreign > 0 {
                    out.push_str("7|RUNNING|None\n");
                    sim.foreign -= 1;
                }
                for (id, _) in &sim.live {
                    out.push_str(&format!("{id}|RUNNING|None\n"));
                }
                for id in &sim.ended {
                    out.push_str(&format!("{id}|COMPLETED|None\n"));
                }
                for entry in &mut sim.live {
                    entry.1 -= 1;
                }
                let (done, left): (Vec<_>, Vec<_>) = sim.live.drain(..).partition(|e| e.1 == 0);
                sim.live = left;
                sim.ended.extend(done.into_iter().map(|(id, _)| id));
                Ok(out)
            }
            _ => Ok(String::new()),
        }
    }

    async fn write_files(&self, files: Vec<(PathBuf, String)>) -> Result<(), ExecutorError> {
        for (_, text) in files {
            if let Some(range) = text
                .lines()
                .find_map(|l| l.strip_prefix("#SBATCH --array=0-"))
            {
                let last: u32 = range
                    .split('%')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                lock(&self.0).array = Some(last + 1);
            }
        }
        Ok(())
    }

    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
        crate::executor::tests_support::status_files_zero(&paths)
    }
}

#[derive(Debug, Default)]
struct Ends(Mutex<Vec<Update>>);

impl UpdateSink for Ends {
    fn send(&self, update: Update) {
        lock(&self.0).push(update);
    }
}

impl Ends {
    fn exited(&self) -> usize {
        lock(&self.0)
            .iter()
            .filter(|u| u.status == AttemptStatus::Exited(0))
            .count()
    }
}

#[tokio::test(start_paused = true)]
async fn two_executors_on_one_cluster_keep_the_users_jobs_under_user_max_jobs() {
    let cluster = Arc::new(Busy::default());
    let monitor = Arc::new(Monitor::new(cluster.clone(), Duration::from_secs(1)));
    let config = SlurmConfig {
        user_max_jobs: Some(3),
        ..SlurmConfig::default()
    };
    let (a_ends, b_ends) = (Arc::new(Ends::default()), Arc::new(Ends::default()));
    let a = SlurmExecutor::with_monitor(
        config.clone(),
        a_ends.clone(),
        Arc::clone(&monitor),
        Source::None,
    );
    // The other run's executor sets no cap: its jobs count against a's.
    let b = SlurmExecutor::with_monitor(
        SlurmConfig::default(),
        b_ends.clone(),
        Arc::clone(&monitor),
        Source::None,
    );
    assert!(a.caps_user_jobs());
    let b_jobs: Vec<Job> = (0..2).map(|t| job(10 + t, "b", None)).collect();
    assert!(b.submit_batch(b_jobs).await.iter().all(Result::is_ok));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lock(&cluster.0).live.len(), 2, "b's jobs went out");
    let a_jobs: Vec<Job> = (0..7).map(|t| job(t, "a", None)).collect();
    assert!(a.submit_batch(a_jobs).await.iter().all(Result::is_ok));
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if a_ends.exited() == 7 && b_ends.exited() == 2 {
            break;
        }
    }
    assert_eq!(a_ends.exited(), 7, "{:?}", lock(&a_ends.0));
    assert_eq!(b_ends.exited(), 2);
    let sim = lock(&cluster.0);
    assert!(!sim.by_id, "a capped cluster is polled with squeue --me");
    assert!(sim.most <= 3, "{} live jobs at once", sim.most);
    assert!(sim.sbatches > 2, "refills went out: {}", sim.sbatches);
}

#[tokio::test(start_paused = true)]
async fn a_capped_executor_alone_never_passes_its_cap_with_the_users_own_job() {
    let cluster = Arc::new(Busy::default());
    lock(&cluster.0).foreign = 6;
    let monitor = Arc::new(Monitor::new(cluster.clone(), Duration::from_secs(1)));
    let config = SlurmConfig {
        user_max_jobs: Some(3),
        ..SlurmConfig::default()
    };
    let mut runs = Vec::new();
    let mut sinks = Vec::new();
    for run in 0..2u32 {
        let ends = Arc::new(Ends::default());
        let exec = SlurmExecutor::with_monitor(
            config.clone(),
            ends.clone(),
            Arc::clone(&monitor),
            Source::None,
        );
        let jobs: Vec<Job> = (0..5).map(|t| job(run * 10 + t, "s", None)).collect();
        assert!(exec.submit_batch(jobs).await.iter().all(Result::is_ok));
        runs.push(exec);
        sinks.push(ends);
    }
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if sinks.iter().all(|s| s.exited() == 5) {
            break;
        }
    }
    for ends in &sinks {
        assert_eq!(ends.exited(), 5, "{:?}", lock(&ends.0));
    }
    let most = lock(&cluster.0).most;
    assert!(
        most <= 3,
        "{most} live jobs of the user at once under user_max_jobs: 3"
    );
}
