//! What the Slurm executor's pack benchmarks share: the benchmark binary
//! serving as the packs' worker (as `twinflow worker` does), whether a
//! command works, `sbatch --parsable`, and waiting for the tasks' status
//! files. Included by path (`#[path = "support/sbatch_bench.rs"]`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a pack as its worker when this process was started as one
/// (`BIN worker MANIFEST`); false otherwise.
pub(crate) fn serve_as_worker(args: &[String]) -> bool {
    if args.get(1).map(String::as_str) != Some("worker") {
        return false;
    }
    let manifest = Path::new(args.get(2).expect("worker MANIFEST"));
    let cpus = twinflow_executor_slurm::worker::allocated_cpus();
    if let Err(e) = twinflow_executor_slurm::worker::run_pack(manifest, cpus) {
        eprintln!("{e}");
        std::process::exit(2);
    }
    true
}

/// Whether `program args` runs and exits 0.
pub(crate) fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `sbatch --parsable script`: the job id.
pub(crate) fn sbatch(script: &Path) -> String {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .expect("run sbatch");
    assert!(
        out.status.success(),
        "sbatch {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().split(';').next().unwrap_or_default().to_owned()
}

/// Polls every 50 ms until every status file is there; cancels the jobs
/// `ids` and stops once `limit` has passed since `start`.
pub(crate) fn wait_for(statuses: &[&PathBuf], ids: &[String], start: Instant, limit: Duration) {
    let mut left = statuses.to_vec();
    while !left.is_empty() {
        left.retain(|s| !s.exists());
        if start.elapsed() > limit {
            let _ = Command::new("scancel").args(ids).status();
            panic!(
                "{} tasks never ended, first {}",
                left.len(),
                left[0].display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
