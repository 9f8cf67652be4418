//! Parallel task shapes on the local executor (this one machine).
//!
//! A task's ranks (`resources.tasks: N`) run under `mpirun -np N` (the
//! default launcher here, or `launcher: mpirun`), the command once per
//! rank; with `launcher: none` the command runs once and starts its ranks
//! itself. Either way the task takes `N x cpus` of the executor's slots
//! (its cost, [`slots_of`]). What this machine cannot give is refused at
//! submit with the reason ([`refusal`]), never run in another shape or held
//! for ever: `launcher: srun`, `nodes` above 1, `tasks_per_node`,
//! `exclusive`, ranks needing more slots than the executor has, ranks under
//! `mpirun` in a podman or docker container (one container per rank is
//! Apptainer's model; a named podman container per rank is not done), and
//! `mpirun` missing from `PATH` (unless a prologue may bring it: then the
//! attempt fails naming it).
//!
//! Coupling groups (`group:`) run here as concurrent processes: the
//! members of an instance come in one batch, once they all fit into the
//! free slots, and start together (see `supervisor/queue.rs` and the
//! shared pool in `pool.rs`).

use super::{LocalExecutor, lock};
use crate::attempt::MPIRUN;
use std::sync::atomic::Ordering;
use twinflow_core::{ContainerRuntime, Launcher, Resources, StepSpec, default_shape_refusal};
use twinflow_core::{ExecutorError, Job};

/// How many ranks `mpirun` starts for a task (0: no `mpirun`, the command
/// runs once).
pub(crate) fn ranks_under_mpirun(resources: &Resources, launcher: Option<Launcher>) -> u32 {
    match launcher {
        Some(Launcher::None) => 0,
        Some(Launcher::Mpirun) => resources.tasks.max(1),
        // `srun` is refused before a task is sent.
        None | Some(Launcher::Srun) if resources.tasks > 1 => resources.tasks,
        None | Some(Launcher::Srun) => 0,
    }
}

/// The slots a task takes: `cpus` of each of its ranks.
pub(crate) fn slots_of(resources: &Resources) -> u32 {
    resources.cpus.max(1).saturating_mul(resources.tasks.max(1))
}

/// What the executor brings to the check of one task's shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    /// Its slots (or the shared pool's cores); 0: no limit.
    pub(crate) slots: u32,
    /// Whether it has a prologue (which may put `mpirun` on `PATH`).
    pub(crate) prologue: bool,
    /// The runtime of the task's container, if it runs in one.
    pub(crate) runtime: Option<ContainerRuntime>,
    /// Whether a program is on `PATH` (`containers::on_path`; a test's
    /// stand-in).
    pub(crate) found: fn(&str) -> bool,
}

/// Why a task shaped by `resources` and `launcher` cannot run on this
/// executor, as a lowercase fragment that follows the executor's name.
pub(crate) fn refusal(
    resources: &Resources,
    launcher: Option<Launcher>,
    cx: Context,
) -> Option<String> {
    if launcher == Some(Launcher::Srun) {
        return Some(
            "does not run `launcher: srun` (a local executor has no Slurm): use \
             `launcher: mpirun` (its default for ranks) or `launcher: none`"
                .to_owned(),
        );
    }
    if let Some(n) = resources.nodes.filter(|n| *n > 1) {
        return Some(format!(
            "runs a task on this one machine, not across {n} nodes (`resources.nodes`): use a \
             Slurm executor"
        ));
    }
    if resources.tasks_per_node.is_some() {
        return Some(
            "does not place ranks per node (`resources.tasks_per_node`): it is one node; give \
             only `resources.tasks`"
                .to_owned(),
        );
    }
    if resources.exclusive {
        return Some(
            "does not give a task the whole machine (`resources.exclusive`): it shares its \
             slots; use a Slurm executor for whole nodes"
                .to_owned(),
        );
    }
    let need = slots_of(resources);
    if resources.tasks > 1 && cx.slots > 0 && need > cx.slots {
        return Some(format!(
            "has {} slot(s), and the task needs {need} ({} ranks x {} cpus); it is refused \
             rather than held for ever",
            cx.slots, resources.tasks, resources.cpus
        ));
    }
    if ranks_under_mpirun(resources, launcher) == 0 {
        return None;
    }
    if let Some(rt @ (ContainerRuntime::Podman | ContainerRuntime::Docker)) = cx.runtime {
        return Some(format!(
            "runs ranks under `mpirun` in Apptainer or Singularity containers only (one per \
             rank), not in a {rt} container: use `launcher: none` and start the ranks inside \
             the image, or run it with apptainer"
        ));
    }
    if !cx.prologue && !(cx.found)(MPIRUN) {
        return Some(format!(
            "starts ranks with `{MPIRUN}`, which is not on PATH here: install Open MPI \
             (Debian: `apt-get install openmpi-bin`), load it in the executor's `prologue`, or \
             use `launcher: none`"
        ));
    }
    None
}

impl LocalExecutor {
    /// What [`refusal`] needs of this executor, for tasks in
    /// `runtime`'s containers.
    pub(super) fn shape_context(
        &self,
        runtime: Option<twinflow_core::ContainerRuntime>,
    ) -> Context {
        let settings = lock(&self.inner.settings);
        Context {
            slots: match &self.pool {
                Some((pool, _)) => pool.total(),
                None => self.inner.slots.load(Ordering::Relaxed),
            },
            prologue: settings.prologue.is_some(),
            runtime,
            found: super::containers::on_path,
        }
    }

    /// Refuses a job whose shape (ranks, nodes, launcher) this machine
    /// cannot give it (see `shape.rs`), rather than run or hold it.
    pub(super) fn check_shape(&self, job: &Job) -> Result<(), ExecutorError> {
        if !job.resources.is_parallel() && job.launcher.is_none() {
            return Ok(());
        }
        let runtime = lock(&self.inner.settings)
            .containers
            .get(&job.step)
            .map(|s| s.resolved.runtime);
        match refusal(&job.resources, job.launcher, self.shape_context(runtime)) {
            None => Ok(()),
            Some(why) => Err(ExecutorError::new(format!(
                "{} cannot run as written: executor `{}` {why}",
                job.name, self.inner.name
            ))),
        }
    }
}

/// [`refusal`] for every task of `step` (`cx.runtime`: the executor's
/// `container_runtime`, which the step's own overrides), then
/// [`default_shape_refusal`] for whatever shape this module does not handle
/// (a field added later).
pub(crate) fn step_refusal(step: &StepSpec, mut cx: Context) -> Option<String> {
    if let Some(container) = &step.container {
        cx.runtime = container.runtime.or(cx.runtime);
    } else {
        cx.runtime = None;
    }
    if let Some(why) = refusal(&step.resources, step.launcher, cx) {
        return Some(why);
    }
    if let Some(why) = twinflow_core::group_container_refusal(step) {
        return Some(why);
    }
    let mut rest = step.clone();
    rest.resources.tasks = 1;
    rest.resources.nodes = None;
    rest.resources.tasks_per_node = None;
    rest.resources.exclusive = false;
    rest.launcher = None;
    // Coupling groups run here: the scheduler launches an instance's
    // members together once they all fit, and the supervisor (or the
    // shared pool) starts them together.
    rest.group = None;
    default_shape_refusal(&rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(tasks: u32, cpus: u32) -> Resources {
        Resources {
            tasks,
            cpus,
            ..Resources::default()
        }
    }

    const FREE: Context = Context {
        slots: 4,
        prologue: false,
        runtime: None,
        found: |_| true,
    };

    #[test]
    fn ranks_run_under_mpirun_unless_the_launcher_is_none() {
        assert_eq!(ranks_under_mpirun(&ranks(4, 1), None), 4);
        assert_eq!(ranks_under_mpirun(&ranks(1, 1), None), 0);
        assert_eq!(ranks_under_mpirun(&ranks(1, 1), Some(Launcher::Mpirun)), 1);
        assert_eq!(ranks_under_mpirun(&ranks(4, 2), Some(Launcher::None)), 0);
        assert_eq!(slots_of(&ranks(4, 2)), 8);
        assert_eq!(slots_of(&ranks(1, 0)), 1);
    }

    #[test]
    fn what_one_machine_cannot_give_is_refused_with_the_reason() {
        let why = |r: &Resources, l| refusal(r, l, FREE).unwrap_or_default();
        assert!(why(&ranks(2, 1), Some(Launcher::Srun)).contains("`launcher: srun`"));
        let two_nodes = Resources {
            nodes: Some(2),
            ..ranks(2, 1)
        };
        assert!(why(&two_nodes, None).contains("not across 2 nodes"));
        let one_node = Resources {
            nodes: Some(1),
            ..ranks(2, 1)
        };
        assert_eq!(refusal(&one_node, None, FREE), None);
        let per_node = Resources {
            tasks_per_node: Some(2),
            ..ranks(2, 1)
        };
        assert!(why(&per_node, None).contains("tasks_per_node"));
        let whole = Resources {
            exclusive: true,
            ..ranks(1, 1)
        };
        assert!(why(&whole, None).contains("exclusive"));
        assert_eq!(
            why(&ranks(5, 1), None),
            "has 4 slot(s), and the task needs 5 (5 ranks x 1 cpus); it is refused rather \
             than held for ever"
        );
        assert!(why(&ranks(2, 3), Some(Launcher::None)).contains("needs 6"));
        // One rank bigger than the slots runs alone, as before.
        assert_eq!(refusal(&ranks(1, 9), None, FREE), None);
        assert_eq!(refusal(&ranks(4, 1), None, FREE), None);
    }

    #[test]
    fn ranks_in_podman_are_refused_and_in_apptainer_are_not() {
        let cx = |runtime| Context {
            runtime: Some(runtime),
            ..FREE
        };
        let why = refusal(&ranks(2, 1), None, cx(ContainerRuntime::Podman)).unwrap_or_default();
        assert!(why.contains("not in a podman container"), "{why}");
        assert_eq!(
            refusal(&ranks(2, 1), None, cx(ContainerRuntime::Apptainer)),
            None
        );
        assert_eq!(
            refusal(
                &ranks(2, 1),
                Some(Launcher::None),
                cx(ContainerRuntime::Docker)
            ),
            None,
            "without mpirun the command runs once, in one container"
        );
    }

    #[test]
    fn mpirun_missing_from_path_is_refused_unless_a_prologue_may_bring_it() {
        let missing = Context {
            found: |_| false,
            ..FREE
        };
        assert_eq!(
            refusal(&ranks(2, 1), None, missing).unwrap_or_default(),
            "starts ranks with `mpirun`, which is not on PATH here: install Open MPI (Debian: \
             `apt-get install openmpi-bin`), load it in the executor's `prologue`, or use \
             `launcher: none`"
        );
        let prologue = Context {
            prologue: true,
            ..missing
        };
        assert_eq!(refusal(&ranks(2, 1), None, prologue), None);
        assert_eq!(refusal(&ranks(2, 1), Some(Launcher::None), missing), None);
    }
}
