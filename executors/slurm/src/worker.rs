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
//! others.
//!
//! A parallel pack's manifest ([`crate::pack_parallel`]) says how many
//! tasks run at once (`parallel`), what starts each (`launch`: an `srun
//! --exact` step, whose group the same signals reach: srun cancels its
//! step) and each task's time limit (`task_seconds`): a task is started
//! only while the allocation has that much time left ([`parse_time_left`]
//! of `squeue -o %L`, else the manifest's `time_seconds` from the worker's
//! start); otherwise, or when it cannot be started at all, the worker
//! writes `<status file>.notrun` with the reason and goes on. `scancel` of the whole job kills the worker and its tasks with
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
    /// A parallel pack ([`crate::pack_parallel`]): this many tasks run at
    /// once, whatever the allocation's CPUs say (0: as many as its CPUs
    /// hold, see the module documentation).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parallel: u32,
    /// The words before `/bin/sh <task script>` that start each task
    /// (`srun --exact ...`: one job step per task); empty: a plain process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launch: Vec<String>,
    /// Each task's time limit: a task is started only while the
    /// allocation has at least this much time left; otherwise it gets a
    /// `<status file>.notrun` marker with the reason and is not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_seconds: Option<u64>,
    /// The pack's own time limit, counted from the worker's start when
    /// `squeue` cannot tell the allocation's time left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_seconds: Option<u64>,
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
/// How often, within a [`TICK`], it asks whether a task has ended (a
/// `waitpid`, no file system access), so that the next task starts within
/// this much of one ending.
const REAP_TICK: Duration = Duration::from_millis(20);

/// Waits up to a [`TICK`], less when a running task ends first (its status
/// stays in its `Child` for the look that follows).
fn nap(running: &mut [Running]) {
    let start = Instant::now();
    while start.elapsed() < TICK {
        std::thread::sleep(REAP_TICK);
        if running
            .iter_mut()
            .any(|r| !matches!(r.child.try_wait(), Ok(None)))
        {
            return;
        }
    }
}

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
    let deadline = m.task_seconds.and_then(|_| deadline(&m, &var));
    let mut gpus = crate::pack_gpus::Shares::new(m.gpus_per_task, var);
    let cpu_width = match m.parallel {
        0 => (cpus / m.cpus_per_task.max(1)).max(1) as usize,
        k => k as usize,
    };
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
            if let Some(why) = no_time(m.task_seconds, deadline) {
                not_run(task, &why);
                continue;
            }
            let share = gpus.as_mut().and_then(crate::pack_gpus::Shares::take);
            let mut command = match m.launch.split_first() {
                Some((program, args)) => {
                    let mut c = Command::new(program);
                    c.args(args).arg("/bin/sh");
                    c
                }
                None => Command::new("/bin/sh"),
            };
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
                    let why = format!(
                        "the pack's worker failed to start {}: {e}",
                        task.script.display()
                    );
                    eprintln!("twinflow worker: {why}");
                    not_run(task, &why);
                }
            }
        }
        nap(&mut running);
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

/// Why a task of `task_seconds` is not started now (`None`: it fits, or
/// nothing bounds it).
fn no_time(task_seconds: Option<u64>, deadline: Option<Instant>) -> Option<String> {
    let (need, end) = (task_seconds?, deadline?);
    let left = end.saturating_duration_since(Instant::now());
    (left < Duration::from_secs(need)).then(|| {
        format!(
            "not started: its pack's allocation had {} s left, and the task's time limit is {need} s",
            left.as_secs()
        )
    })
}

/// Marks `task` as not run, with `why` (`<status file>.notrun`); the
/// executor reports it as failed with that reason, and the step's
/// `retries` run it again as a new attempt.
fn not_run(task: &PackTask, why: &str) {
    let path = marker(&task.status, ".notrun");
    if let Err(e) = std::fs::write(&path, why) {
        eprintln!("twinflow worker: failed to write {}: {e}", path.display());
    }
}

/// When the allocation ends: now plus the job's time left as `squeue`
/// tells it (inside a Slurm job), else the manifest's `time_seconds` from
/// now; `None` when neither is known.
fn deadline(m: &Manifest, var: &impl Fn(&str) -> Option<String>) -> Option<Instant> {
    let start = Instant::now();
    let left = var("SLURM_JOB_ID")
        .and_then(|id| {
            let out = Command::new("squeue")
                .args(["-h", "-j", id.trim(), "-o", "%L"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()?;
            out.status.success().then_some(())?;
            parse_time_left(&String::from_utf8_lossy(&out.stdout))
        })
        .or(m.time_seconds)?;
    start.checked_add(Duration::from_secs(left))
}

/// Seconds in what `squeue -o %L` prints: `SS`, `MM:SS`, `HH:MM:SS`,
/// `D-HH:MM:SS` (`None` for `UNLIMITED`, `NOT_SET` or anything else).
pub fn parse_time_left(text: &str) -> Option<u64> {
    let text = text.trim();
    let (days, rest) = match text.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().ok()?, rest),
        None => (0, text),
    };
    let mut seconds = 0u64;
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    for p in parts {
        seconds = seconds
            .checked_mul(60)?
            .checked_add(p.parse::<u64>().ok()?)?;
    }
    days.checked_mul(86_400)?.checked_add(seconds)
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
