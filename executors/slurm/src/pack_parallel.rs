//! Parallel packs on Slurm (`pack: {tasks: N, parallel: K}`, K > 1): N
//! tasks of one step in one allocation sized for K of them, run K at a
//! time by `twinflow worker` ([`crate::worker`]), which starts the next as
//! one ends.
//!
//! | what | rendered |
//! | --- | --- |
//! | the allocation | `--nodes=1 --ntasks=K' --cpus-per-task=C`, `--mem=K'*M` when the task asks for M, with K' = min(K, tasks in this pack) |
//! | its time limit | ceil(N / K') x the task's `time` (no `--time` without one); an executor's `sbatch: ["--time=..."]` comes later and wins |
//! | each task, by default (or `launcher: srun`, one rank) | a job step: `srun --exact --quiet --nodes=1 --ntasks=1 --cpus-per-task=C [--mem=MM] --export=ALL /bin/sh <member script>` |
//! | each task under `launcher: none` | a plain process of the batch shell: `/bin/sh <member script>` |
//!
//! The time limit is what the N tasks need K' at a time when each takes its
//! whole `time`. The worker never starts a task whose `time` no longer fits
//! in what is left of the allocation (it asks `squeue` for the job's time
//! left, else counts the pack's own limit from its start): it writes
//! `<status file>.notrun` with the reason instead, and the executor reports
//! that attempt as failed with that reason, which the step's `retries`
//! turns into a new attempt (a new job). Slurm's `--time` is whole minutes,
//! rounded up, which leaves the last wave a little slack.
//!
//! Not run, refused at submit ([`shape_refusal`]): parallel packs of tasks
//! of several ranks or nodes, under `mpirun`, or asking for GPUs (a step
//! would need its share of the allocation's GPUs; that is not done yet).

use crate::group::Member;
use crate::script_error::ScriptError;
use twinflow_core::{Job, Launcher, PackSpec, Resources};

/// How many of a pack's tasks run at once: `parallel` of its step's
/// `pack:`, at most the tasks in the pack; 1 for a sequential pack.
pub(crate) fn width(job: &Job, tasks: usize) -> u32 {
    let k = job.pack.map_or(1, |p| p.parallel.max(1));
    k.min(u32::try_from(tasks).unwrap_or(u32::MAX)).max(1)
}

/// Whether the pack carrying `members` runs several of them at once.
pub(crate) fn is_parallel(members: &[Member<'_>]) -> bool {
    members
        .first()
        .is_some_and(|m| width(m.job, members.len()) > 1)
}

/// The model of the allocation of a parallel pack of `members`: the first
/// member's job with `K'` ranks on one node and `K'` times its memory
/// ([`crate::script::header`] renders it).
pub(crate) fn allocation(members: &[Member<'_>]) -> Result<Job, ScriptError> {
    let first = members
        .first()
        .ok_or_else(|| ScriptError::new("a submission without tasks".to_owned()))?;
    let k = width(first.job, members.len());
    let mut job = first.job.clone();
    job.resources.tasks = k;
    job.resources.nodes = Some(1);
    job.resources.memory_bytes = match first.job.resources.memory_bytes {
        Some(m) => Some(m.checked_mul(u64::from(k)).ok_or_else(|| {
            ScriptError::new(format!(
                "`{}`: {k} tasks' memory does not fit in a number",
                first.job.name
            ))
        })?),
        None => None,
    };
    Ok(job)
}

/// The time limit of a pack of `tasks` tasks of `job`, `width` at a time:
/// ceil(tasks / width) task times.
pub(crate) fn time_limit(job: &Job, tasks: usize, width: u32) -> Option<u64> {
    let waves = (tasks as u64).div_ceil(u64::from(width.max(1)));
    job.resources
        .time_seconds
        .map(|t| t.saturating_mul(waves.max(1)))
}

/// The words the worker puts before `/bin/sh <member script>` to start one
/// task of a parallel pack of `job` (empty: a plain process, under
/// `launcher: none`).
pub(crate) fn step_launch(job: &Job) -> Vec<String> {
    if job.launcher == Some(Launcher::None) {
        return Vec::new();
    }
    let r = &job.resources;
    let mut argv: Vec<String> = ["srun", "--exact", "--quiet", "--nodes=1", "--ntasks=1"]
        .map(str::to_owned)
        .to_vec();
    argv.push(format!("--cpus-per-task={}", r.cpus.max(1)));
    if let Some(bytes) = r.memory_bytes {
        argv.push(format!("--mem={}M", bytes.div_ceil(1 << 20).max(1)));
    }
    argv.push("--export=ALL".to_owned());
    argv
}

/// Whether tasks of `resources` under `launcher` may go in a pack shaped
/// `pack`: one process each (no launcher), or, in a parallel pack, one
/// rank under `launcher: srun` (each task is one `srun` step anyway).
pub(crate) fn packable(
    resources: &Resources,
    launcher: Option<Launcher>,
    pack: Option<PackSpec>,
) -> bool {
    if !crate::ranks::is_parallel(resources, launcher) {
        return true;
    }
    pack.is_some_and(|p| p.parallel > 1)
        && !resources.is_parallel()
        && launcher == Some(Launcher::Srun)
}

/// Why the Slurm executor does not run the parallel pack of a step with
/// `resources` under `launcher` (`None`: it does, or it is no parallel
/// pack).
pub(crate) fn shape_refusal(
    resources: &Resources,
    launcher: Option<Launcher>,
    pack: Option<PackSpec>,
) -> Option<String> {
    let p = pack.filter(|p| p.parallel > 1 && p.tasks > 1)?;
    let written = format!("`pack: {{tasks: {}, parallel: {}}}`", p.tasks, p.parallel);
    if !packable(resources, launcher, pack) {
        return Some(format!(
            "does not run parallel packs ({written}) of tasks of several ranks, nodes or whole \
             nodes, or under `launcher: mpirun`: each task of a parallel pack is one process \
             (one `srun` step, or a plain process under `launcher: none`)"
        ));
    }
    if resources.gpus > 0 {
        return Some(format!(
            "does not run parallel packs ({written}) of tasks that ask for GPUs yet; \
             use `pack: {}` (one after another) or drop `pack:`",
            p.tasks
        ));
    }
    None
}

#[cfg(test)]
#[path = "pack_parallel_tests.rs"]
mod tests;
