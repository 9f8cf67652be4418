//! Tasks of several ranks or nodes on Slurm: the `#SBATCH` lines of their
//! shape, the line that starts their ranks, and which shapes the executor
//! runs ([`shape_refusal`]).
//!
//! | `resources` | `#SBATCH` |
//! | --- | --- |
//! | `nodes: N` | `--nodes=N` |
//! | `tasks: T` (T > 1) | `--ntasks=T` |
//! | `tasks_per_node: K` | `--ntasks-per-node=K` |
//! | `exclusive: true` | `--exclusive` |
//! | `cpus: C` | `--cpus-per-task=C`: per rank, as before |
//!
//! The launcher ([`launcher`]: the step's `launcher:`, else `srun` when
//! `tasks > 1`, else none) decides the line that runs the task's script
//! (always from its working directory, with the job's environment):
//!
//! - `srun`: `srun --ntasks=T --cpus-per-task=C --export=ALL /bin/sh -e -c
//!   SCRIPT`, a job step that runs the script once per rank (`SLURM_PROCID`
//!   tells them apart). `--cpus-per-task` is repeated because srun 22.05
//!   does not take it from the allocation, `--export=ALL` because an
//!   executor's `--export=NONE` would otherwise reach the step too. No
//!   `--mpi=`: the site's `MpiDefault` applies.
//! - `mpirun`: `mpirun -np T /bin/sh -e -c SCRIPT`; the MPI reads the
//!   allocation (OpenMPI and MPICH both do under Slurm). Options of one MPI
//!   only (OpenMPI's `--allow-run-as-root`, `--oversubscribe`, binding) are
//!   left to its environment variables (`OMPI_ALLOW_RUN_AS_ROOT=1`,
//!   `OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1`, `OMPI_MCA_*`), set in the
//!   executor's or step's `env`.
//! - none: `/bin/sh -e -c SCRIPT` once, in the batch shell, with the whole
//!   allocation: the command starts its ranks itself.
//!
//! Either way the batch shell runs that line once and records its exit
//! status in the status file, as for any job: the task's status is the
//! launcher's (srun's is the highest of its ranks'), and a job that Slurm
//! kills still leaves no status file.
//!
//! Not run, refused at submit with the reason ([`shape_refusal`]): a task
//! started by `srun` or `mpirun` in a container (run one container per rank
//! yourself under `launcher: none`, or the step on the host), and a
//! parallel task in a `pack:` (a pack's tasks share one task's
//! allocation; a parallel pack runs one-rank `launcher: srun` tasks, one
//! step each: [`crate::pack_parallel`]); such tasks are not packed
//! automatically either.

use crate::script_error::ScriptError;
use twinflow_core::{Job, Launcher, Resources, StepSpec, shell_quote};

/// What starts the ranks of a task with `resources` whose step says
/// `launcher` (`None`: the default, `srun` for several ranks).
pub fn launcher(resources: &Resources, launcher: Option<Launcher>) -> Launcher {
    launcher.unwrap_or(if resources.tasks > 1 {
        Launcher::Srun
    } else {
        Launcher::None
    })
}

/// Whether a task is more than one process in one task's allocation: it
/// then goes out on its own (or as an array element), never in a pack.
pub(crate) fn is_parallel(resources: &Resources, step_launcher: Option<Launcher>) -> bool {
    resources.is_parallel() || launcher(resources, step_launcher) != Launcher::None
}

/// The `#SBATCH` options (without `#SBATCH `) of the shape of `job`:
/// nodes, ranks, ranks per node, whole nodes; none for one process.
pub(crate) fn sbatch_options(job: &Job) -> Result<Vec<String>, ScriptError> {
    let r = &job.resources;
    let zero = |what: &str| {
        Err(ScriptError::new(format!(
            "`{}` asks for 0 {what}; slurm needs at least 1",
            job.name
        )))
    };
    if r.tasks == 0 {
        return zero("ranks (`tasks`)");
    }
    let mut options = Vec::new();
    match r.nodes {
        Some(0) => return zero("nodes"),
        Some(n) => options.push(format!("--nodes={n}")),
        None => {}
    }
    if r.tasks > 1 {
        options.push(format!("--ntasks={}", r.tasks));
    }
    match r.tasks_per_node {
        Some(0) => return zero("ranks per node (`tasks_per_node`)"),
        Some(k) => options.push(format!("--ntasks-per-node={k}")),
        None => {}
    }
    if r.exclusive {
        options.push("--exclusive".to_owned());
    }
    Ok(options)
}

/// The line that runs the script of `job` from its working directory,
/// under its launcher (see the module documentation).
pub(crate) fn run_line(job: &Job, workdir: &str) -> String {
    let r = &job.resources;
    let mut argv: Vec<String> = match launcher(r, job.launcher) {
        Launcher::Srun => vec![
            "srun".to_owned(),
            format!("--ntasks={}", r.tasks.max(1)),
            format!("--cpus-per-task={}", r.cpus.max(1)),
            "--export=ALL".to_owned(),
        ],
        Launcher::Mpirun => vec![
            "mpirun".to_owned(),
            "-np".to_owned(),
            r.tasks.max(1).to_string(),
        ],
        Launcher::None => Vec::new(),
    };
    argv.extend(["/bin/sh", "-e", "-c"].map(str::to_owned));
    argv.push(job.script.clone());
    let command: Vec<String> = argv.iter().map(|w| shell_quote(w)).collect();
    format!("cd -- {} && {}", shell_quote(workdir), command.join(" "))
}

/// Refuses a task of `job` that would run in a container under a launcher
/// (see [`shape_refusal`]; the executor refuses the step at submit, this
/// keeps a script from being written for it all the same).
pub(crate) fn container_refusal(job: &Job) -> Result<(), ScriptError> {
    match launcher(&job.resources, job.launcher) {
        Launcher::None => Ok(()),
        l => Err(ScriptError::new(format!(
            "`{}` {}",
            job.name,
            container_reason(l, job.resources.tasks)
        ))),
    }
}

fn container_reason(l: Launcher, tasks: u32) -> String {
    format!(
        "cannot start {tasks} rank(s) with `launcher: {}` in a container yet: \
         use `launcher: none` and start the ranks inside the container, or run the step without `container:`",
        l.as_str()
    )
}

/// What the Slurm executor refuses of `step`'s shape (see the module
/// documentation); what it does not handle itself goes to
/// [`twinflow_core::default_shape_refusal`].
pub fn shape_refusal(step: &StepSpec) -> Option<String> {
    let r = &step.resources;
    let parallel = is_parallel(r, step.launcher);
    if step.container.is_some() {
        let l = launcher(r, step.launcher);
        if l != Launcher::None {
            return Some(container_reason(l, r.tasks));
        }
    }
    if let Some(why) = crate::pack_parallel::shape_refusal(r, step.launcher, step.pack) {
        return Some(why);
    }
    let packable = crate::pack_parallel::packable(r, step.launcher, step.pack);
    if parallel
        && !packable
        && let Some(n) = step.pack.map(|p| p.tasks).filter(|n| *n > 1)
    {
        return Some(format!(
            "does not pack tasks of several ranks, nodes or whole nodes yet (`pack: {n}`): \
             a pack's tasks share one task's allocation; drop `pack:` to run each as a job of its own"
        ));
    }
    if r.tasks == 0 {
        return Some("cannot start 0 ranks (`tasks: 0`)".to_owned());
    }
    if r.nodes == Some(0) || r.tasks_per_node == Some(0) {
        return Some("cannot run a task on 0 nodes or with 0 ranks per node".to_owned());
    }
    // The shape this executor handles, taken out: whatever else the default
    // refuses (fields added later) is still refused.
    let mut rest = step.clone();
    rest.resources = Resources {
        tasks: 1,
        nodes: None,
        tasks_per_node: None,
        exclusive: false,
        ..rest.resources
    };
    rest.launcher = None;
    // Parallel packs run here ([`crate::pack_parallel`]).
    rest.pack = rest
        .pack
        .map(|p| twinflow_core::PackSpec::sequential(p.tasks));
    twinflow_core::default_shape_refusal(&rest)
}

/// How a parallel task's shape reads in a message: `2 nodes, 8 ranks of 2
/// cpus, 4 per node, whole nodes` (`None` for one process).
pub(crate) fn describe(job: &Job) -> Option<String> {
    let r = &job.resources;
    if !is_parallel(r, job.launcher) {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(n) = r.nodes {
        parts.push(format!("{n} node{}", if n == 1 { "" } else { "s" }));
    }
    parts.push(format!(
        "{} rank{} of {} cpu{}",
        r.tasks,
        if r.tasks == 1 { "" } else { "s" },
        r.cpus,
        if r.cpus == 1 { "" } else { "s" }
    ));
    if let Some(k) = r.tasks_per_node {
        parts.push(format!("{k} per node"));
    }
    if r.exclusive {
        parts.push("whole nodes".to_owned());
    }
    parts.push(format!("launcher {}", launcher(r, job.launcher).as_str()));
    Some(parts.join(", "))
}

#[cfg(test)]
#[path = "ranks_tests.rs"]
mod tests;
