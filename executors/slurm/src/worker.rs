//! `twinflow worker MANIFEST`: runs the tasks of a packed Slurm job inside
//! its allocation.
//!
//! The manifest ([`Manifest`], written by the executor next to the tasks'
//! logs) lists each task's script and status file. The worker runs the
//! scripts in order, as many side by side as the allocation's CPUs hold
//! (`SLURM_CPUS_PER_TASK`, else `SLURM_CPUS_ON_NODE`, divided by the CPUs
//! one task asked for; at least one, and no more than the shares of the
//! allocation's GPUs when its tasks ask for GPUs, each task getting its own
//! share: see [`crate::pack_gpus`]), each in a process group of its own.
//! Each script writes its own logs, `.started` marker and status file, so
//! the executor follows the tasks one by one. A task whose
//! `<status file>.cancel` marker appears is skipped if it has not started,
//! and otherwise killed (SIGTERM to its group, SIGKILL 5 s later): that is
//! how the executor cancels one task of a pack without `scancel`ling the
//! others. `scancel` of the whole job kills the worker and its tasks with
//! it, as Slurm signals every process of the job.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The value of [`Manifest::format`].
pub const MANIFEST_FORMAT: &str = "twinflow.pack/v1";

/// What a packed job runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// CPUs each task asked for.
    pub cpus_per_task: u32,
    /// GPUs each task asked for: the worker gives each task that runs its
    /// own share of the allocation's ([`crate::pack_gpus`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpus_per_task: u32,
    /// The tasks, in the order to start them.
    pub tasks: Vec<PackTask>,
}

/// One task of a pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackTask {
    /// Its script.
    pub script: PathBuf,
    /// Its status file (`.started` and `.cancel` sit beside it).
    pub status: PathBuf,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `<status file><suffix>`.
pub(crate) fn marker(status: &Path, suffix: &str) -> PathBuf {
    let mut s = status.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// How long a cancelled task has between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// How often the worker looks at its tasks and their cancel markers.
const TICK: Duration = Duration::from_millis(200);

struct Running {
    child: Child,
    cancel: PathBuf,
    term_sent: Option<Instant>,
    /// The share of the allocation's GPUs it holds.
    gpus: Option<usize>,
}

/// Runs the pack described by `manifest` in an allocation of `cpus` CPUs
/// ([`allocated_cpus`] inside a job; see the module documentation); returns
/// once every task has ended or been skipped. The tasks' outcomes are in
/// their status files, not in the result.
pub fn run_pack(manifest: &Path, cpus: u32) -> Result<(), String> {
    run_pack_with(manifest, cpus, |name| std::env::var(name).ok())
}

/// [`run_pack`] with the job's variables looked up by `var` (tests give
/// their own GPU variables).
pub fn run_pack_with(
    manifest: &Path,
    cpus: u32,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| format!("failed to read pack manifest {}: {e}", manifest.display()))?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| format!("pack manifest {} is not valid: {e}", manifest.display()))?;
    if m.format != MANIFEST_FORMAT {
        return Err(format!(
            "pack manifest {} has format {:?}; this worker reads {MANIFEST_FORMAT:?}",
            manifest.display(),
            m.format
        ));
    }
    let mut gpus = crate::pack_gpus::Shares::new(m.gpus_per_task, var);
    let cpu_width = (cpus / m.cpus_per_task.max(1)).max(1) as usize;
    let width = gpus.as_ref().map_or(cpu_width, |g| g.width(cpu_width));
    let mut next = 0;
    let mut running: Vec<Running> = Vec::new();
    while next < m.tasks.len() || !running.is_empty() {
        while running.len() < width && next < m.tasks.len() {
            let task = &m.tasks[next];
            next += 1;
            let cancel = marker(&task.status, ".cancel");
            if cancel.exists() {
                continue;
            }
            let share = gpus.as_mut().and_then(crate::pack_gpus::Shares::take);
            let mut command = Command::new("/bin/sh");
            if let (Some(g), Some(i)) = (&gpus, share) {
                command.envs(g.env(i).iter().map(|(k, v)| (k, v)));
            }
            match command
                .arg(&task.script)
                .stdin(Stdio::null())
                .process_group(0)
                .spawn()
            {
                Ok(child) => running.push(Running {
                    child,
                    cancel,
                    term_sent: None,
                    gpus: share,
                }),
                Err(e) => {
                    if let (Some(g), Some(i)) = (gpus.as_mut(), share) {
                        g.give_back(i);
                    }
                    eprintln!(
                        "twinflow worker: failed to start {}: {e}",
                        task.script.display()
                    );
                }
            }
        }
        std::thread::sleep(TICK);
        running.retain_mut(|r| {
            if matches!(r.child.try_wait(), Ok(Some(_)) | Err(_)) {
                kill_group(&r.child, Signal::SIGKILL);
                if let (Some(g), Some(i)) = (gpus.as_mut(), r.gpus) {
                    g.give_back(i);
                }
                return false;
            }
            match r.term_sent {
                None if r.cancel.exists() => {
                    kill_group(&r.child, Signal::SIGTERM);
                    r.term_sent = Some(Instant::now());
                }
                Some(at) if at.elapsed() >= GRACE => kill_group(&r.child, Signal::SIGKILL),
                _ => {}
            }
            true
        });
    }
    Ok(())
}

/// Signals a task's process group (it is the group's leader); a group
/// already gone is no error.
fn kill_group(child: &Child, signal: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

/// The CPUs of the job this runs in: `SLURM_CPUS_PER_TASK`, else
/// `SLURM_CPUS_ON_NODE`, else 1.
pub fn allocated_cpus() -> u32 {
    ["SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .max(1)
}
