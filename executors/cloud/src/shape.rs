//! Parallel task shapes on a cloud executor (one VM).
//!
//! A task's ranks (`resources.tasks: N`) run under `mpirun -np N` on the VM
//! (the default launcher, or `launcher: mpirun`): the runner starts
//! `mpirun`, which runs the task's command once per rank (in its
//! container, one per rank, with Apptainer or Singularity); `launcher:
//! none` runs the command once. The cloud executor keeps no slots (the VM
//! is the task's), so nothing is counted. Refused at submit, with the
//! reason: `launcher: srun`, `nodes` above 1, `tasks_per_node`,
//! `exclusive`, and ranks under `mpirun` in a podman or docker container.
//! An `mpirun` missing on the VM fails the attempt with the runner's
//! `failed to run mpirun in DIR: No such file or directory`.
//!
//! Coupling groups (`group:`) run: the VM keeps no slots, so the members
//! of an instance, which come in one batch, are launched at once and run
//! concurrently, sharing a directory on the VM (see `executor.rs`). A
//! member with a `container:` is refused: the group directory is not bound
//! into images yet.

use twinflow_core::{ContainerRuntime, Launcher, Resources, StepSpec, default_shape_refusal};

/// How many ranks `mpirun` starts for a task (0: no `mpirun`).
pub(crate) fn ranks_under_mpirun(resources: &Resources, launcher: Option<Launcher>) -> u32 {
    match launcher {
        Some(Launcher::None) => 0,
        Some(Launcher::Mpirun) => resources.tasks.max(1),
        None | Some(Launcher::Srun) if resources.tasks > 1 => resources.tasks,
        None | Some(Launcher::Srun) => 0,
    }
}

/// What `mpirun` gets before the task's own environment (which wins), as
/// on the local executor: Open MPI may start more ranks than it counts
/// cores (`rmaps_base_oversubscribe`) and does not bind them to cores; as
/// root it needs `OMPI_ALLOW_RUN_AS_ROOT` and its confirmation. Variables
/// MPICH ignores.
pub(crate) fn mpirun_env() -> Vec<(String, String)> {
    let mut env = vec![
        ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
        ("OMPI_MCA_hwloc_base_binding_policy", "none"),
    ];
    // This process's effective user: the owner of its `/proc/self`.
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if root {
        env.push(("OMPI_ALLOW_RUN_AS_ROOT", "1"));
        env.push(("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"));
    }
    env.into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Why the tasks of `step` cannot run on a cloud executor whose
/// `container_runtime` is `runtime`; then [`default_shape_refusal`] for any
/// shape this module does not handle.
pub(crate) fn step_refusal(step: &StepSpec, runtime: Option<ContainerRuntime>) -> Option<String> {
    let runtime = step.container.as_ref().and_then(|c| c.runtime.or(runtime));
    if let Some(why) = refusal(&step.resources, step.launcher, runtime) {
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
    // Coupling groups run here: an instance's members start at once.
    rest.group = None;
    default_shape_refusal(&rest)
}

/// Why a task shaped by `r` and `launcher`, in a container of `runtime`
/// if any, cannot run on one VM.
fn refusal(
    r: &Resources,
    launcher: Option<Launcher>,
    runtime: Option<ContainerRuntime>,
) -> Option<String> {
    if launcher == Some(Launcher::Srun) {
        return Some(
            "does not run `launcher: srun` (a cloud VM has no Slurm): use `launcher: mpirun` \
             (its default for ranks) or `launcher: none`"
                .to_owned(),
        );
    }
    if let Some(n) = r.nodes.filter(|n| *n > 1) {
        return Some(format!(
            "runs a task on one VM, not across {n} nodes (`resources.nodes`): use a Slurm \
             executor"
        ));
    }
    if r.tasks_per_node.is_some() {
        return Some(
            "does not place ranks per node (`resources.tasks_per_node`): it is one VM; give \
             only `resources.tasks`"
                .to_owned(),
        );
    }
    if r.exclusive {
        return Some(
            "does not take whole nodes (`resources.exclusive`): use a Slurm executor".to_owned(),
        );
    }
    if ranks_under_mpirun(r, launcher) > 0
        && let Some(rt @ (ContainerRuntime::Podman | ContainerRuntime::Docker)) = runtime
    {
        return Some(format!(
            "runs ranks under `mpirun` in Apptainer or Singularity containers only (one per \
             rank), not in a {rt} container: use `launcher: none` and start the ranks inside \
             the image, or run it with apptainer"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(tasks: u32) -> Resources {
        Resources {
            tasks,
            ..Resources::default()
        }
    }

    #[test]
    fn one_vm_runs_ranks_under_mpirun_and_refuses_what_it_cannot_give() {
        assert_eq!(ranks_under_mpirun(&ranks(4), None), 4);
        assert_eq!(ranks_under_mpirun(&ranks(4), Some(Launcher::None)), 0);
        assert_eq!(ranks_under_mpirun(&ranks(1), None), 0);
        assert_eq!(refusal(&ranks(64), None, None), None, "no slots on a VM");
        let why = |r: &Resources, l, rt| refusal(r, l, rt).unwrap_or_default();
        assert!(why(&ranks(2), Some(Launcher::Srun), None).contains("`launcher: srun`"));
        let nodes = Resources {
            nodes: Some(3),
            ..ranks(2)
        };
        assert!(why(&nodes, None, None).contains("not across 3 nodes"));
        let per_node = Resources {
            tasks_per_node: Some(1),
            ..ranks(2)
        };
        assert!(why(&per_node, None, None).contains("tasks_per_node"));
        let whole = Resources {
            exclusive: true,
            ..ranks(1)
        };
        assert!(why(&whole, None, None).contains("exclusive"));
        assert!(
            why(&ranks(2), None, Some(ContainerRuntime::Docker))
                .contains("not in a docker container")
        );
        assert_eq!(
            refusal(&ranks(2), None, Some(ContainerRuntime::Apptainer)),
            None
        );
        assert_eq!(
            refusal(
                &ranks(2),
                Some(Launcher::None),
                Some(ContainerRuntime::Podman)
            ),
            None
        );
        let mut step = twinflow_core::StepSpec {
            name: "forest".into(),
            description: None,
            executor: twinflow_core::ExecutorId(0),
            for_each: Vec::new(),
            cycling: false,
            inputs: Vec::new(),
            after: Vec::new(),
            outputs: Vec::new(),
            resources: Resources::default(),
            retries: 0,
            timeout_seconds: None,
            pack: None,
            group: Some("fb".into()),
            launcher: None,
            env: Vec::new(),
            container: None,
            model: None,
            code: Vec::new(),
            hooks: Vec::new(),
            tasks: 0..1,
        };
        assert!(
            default_shape_refusal(&step).is_some(),
            "the default refuses groups"
        );
        assert_eq!(step_refusal(&step, None), None, "groups run on a VM");
        step.container = Some(twinflow_core::ContainerSpec {
            image: "docker://alpine:3".into(),
            runtime: None,
            options: Vec::new(),
        });
        let why = step_refusal(&step, None).unwrap_or_default();
        assert!(why.contains("`group: fb`"), "{why}");
        let env = mpirun_env();
        assert!(env.contains(&("OMPI_MCA_rmaps_base_oversubscribe".into(), "1".into())));
    }
}
