//! Containers on the cluster: resolving a step's image once on the host
//! that runs the jobs, and the lines of a job script that run a task inside
//! it.
//!
//! [`resolve`] picks the runtime (the step's `container.runtime`, else the
//! executor's `container_runtime`; neither is refused) and hands the image
//! to `twinflow-launch`'s resolver for it, whose commands (`podman image
//! inspect`, `apptainer pull`, `sha256sum`, …) run through
//! [`ClusterRunner`]: the executor's own command layer, so on this machine
//! when it is the login node and over the executor's SSH connection
//! otherwise. Apptainer keeps the SIFs it pulls in
//! `$HOME/.cache/twinflow/images` on the cluster (home directories are seen
//! by every node). The cluster user's uid and gid (`id -u`, `id -g`) decide
//! the user inside podman.
//!
//! [`lines`] is what a job script runs in place of `cd -- DIR && /bin/sh -e
//! -c SCRIPT`: `twinflow_launch::launch` with the task directory and its
//! staged inputs bound, the job's environment inside, named
//! `container_name(run, task, attempt)`, as [`twinflow_launch::Launch::script_lines`].
//! Under podman and docker the runtime runs in the background and the
//! script waits for it, trapping SIGTERM, SIGINT and SIGHUP: `scancel`, a
//! time limit or a pack's cancel then remove the container (`podman rm -f
//! --time=0 NAME`) before the job goes, since a container whose task ignores
//! SIGTERM would outlive the job otherwise (its `conmon` is not a process of
//! the job). The trap exits with 143 and writes no status file, so the
//! attempt's fate still comes from Slurm, as for a job without a container.
//! Apptainer's processes are the job's own, which Slurm kills. Before the
//! launch, `crate::preflight` checks the runtime, the bind sources and
//! (Apptainer) the image file on the node. A pack's members that share
//! an image run in one container (Apptainer: one instance) instead
//! ([`crate::pack_container`]).
//!
//! A task that asks for GPUs runs with the runtime's GPU flags for the
//! executor's `gpu_vendor` (Apptainer `--nv`/`--rocm`; podman and docker
//! every device of the vendor with the job's device variables passed in
//! by name) and the devices Slurm allocated to its job, which the job's
//! variables name (a pack's worker narrows them per task, see
//! [`crate::pack_gpus`]).

use crate::cluster::Cluster;
use crate::script_error::ScriptError;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use twinflow_core::GpuVendor;
use twinflow_core::{
    ContainerRuntime, ContainerSpec, ExecutorError, Job, ResolvedImage, shell_quote,
};
use twinflow_launch::{
    ApptainerResolver, CommandOutput, CommandRunner, ContainerLaunch, GpuBinding, GpuDevices,
    HostUser, ImageResolver, LaunchSpec, Network, PodmanResolver, container_name,
};

/// The image a step's tasks run in, resolved on the cluster.
#[derive(Debug, Clone)]
pub struct StepContainer {
    /// The step's `container:`.
    pub spec: ContainerSpec,
    /// What resolution found.
    pub resolved: ResolvedImage,
    /// The cluster user.
    pub user: HostUser,
    /// Whose GPUs the cluster has (the executor's `gpu_vendor`): a task
    /// that asks for GPUs gets the runtime's flags for them and the
    /// devices Slurm allocated to its job
    /// ([`twinflow_launch::GpuDevices::Allocated`]).
    pub gpu_vendor: GpuVendor,
}

/// The containers of an executor's steps, by step name.
pub(crate) type Containers = twinflow_launch::ByStep<StepContainer>;

/// A [`CommandRunner`] over the executor's cluster: blocks on its async
/// commands, so it must run on a blocking thread (`spawn_blocking`).
#[derive(Debug, Clone)]
pub(crate) struct ClusterRunner {
    cluster: Arc<dyn Cluster>,
    host: String,
    rt: tokio::runtime::Handle,
}

impl CommandRunner for ClusterRunner {
    fn host(&self) -> &str {
        &self.host
    }

    fn run(&self, argv: &[OsString]) -> std::io::Result<CommandOutput> {
        let argv = argv
            .iter()
            .map(|a| {
                a.to_str().map(str::to_owned).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("the argument {a:?} is not valid utf-8"),
                    )
                })
            })
            .collect::<Result<Vec<String>, _>>()?;
        self.rt.block_on(self.cluster.output(argv))
    }
}

/// Resolves `container` on `cluster` (named `host` in messages) for the
/// executor whose default runtime is `default_runtime`.
pub(crate) async fn resolve(
    cluster: Arc<dyn Cluster>,
    host: String,
    default_runtime: Option<ContainerRuntime>,
    container: &ContainerSpec,
    gpu_vendor: GpuVendor,
) -> Result<StepContainer, ExecutorError> {
    let image = container
        .image_ref()
        .map_err(|e| ExecutorError::new(format!("cannot run it: {e}")))?;
    let runtime = container.runtime.or(default_runtime).ok_or_else(|| {
        ExecutorError::new(
            "names no container runtime for it: set the step's `container: { runtime: … }` \
             or the executor's `container_runtime`",
        )
    })?;
    let runner = ClusterRunner {
        cluster,
        host,
        rt: tokio::runtime::Handle::current(),
    };
    let spec = container.clone();
    tokio::task::spawn_blocking(move || {
        let user = HostUser {
            uid: id_of(&runner, "-u")?,
            gid: id_of(&runner, "-g")?,
        };
        let resolved = match runtime {
            ContainerRuntime::Podman | ContainerRuntime::Docker => {
                PodmanResolver::new(runtime, runner).resolve(&image)
            }
            ContainerRuntime::Apptainer | ContainerRuntime::Singularity => {
                let home = output(&runner, &["printenv", "HOME"])?;
                let cache = format!("{}/.cache/twinflow/images", home.trim_end());
                output(&runner, &["mkdir", "-p", "--", &cache])?;
                ApptainerResolver::new(runtime, cache, runner).resolve(&image)
            }
        }
        .map_err(|e| ExecutorError {
            message: format!("cannot run it: {e}"),
            transient: e.transient,
        })?;
        Ok(StepContainer {
            spec,
            resolved,
            user,
            gpu_vendor,
        })
    })
    .await
    .map_err(|e| ExecutorError::new(format!("cannot run it: image resolution failed: {e}")))?
}

/// Runs `argv` on the cluster; its standard output, or an error naming it.
fn output(runner: &ClusterRunner, argv: &[&str]) -> Result<String, ExecutorError> {
    let words: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let shown = argv.join(" ");
    match runner.run(&words) {
        Ok(out) if out.status == Some(0) => Ok(out.stdout),
        Ok(out) => Err(ExecutorError::new(format!(
            "cannot run it: `{shown}` failed on {}: {}",
            runner.host,
            out.stderr.trim()
        ))),
        Err(e) => Err(ExecutorError::new(format!(
            "cannot run it: failed to run `{shown}` on {}: {e}",
            runner.host
        ))),
    }
}

fn id_of(runner: &ClusterRunner, flag: &str) -> Result<u32, ExecutorError> {
    let text = output(runner, &["id", flag])?;
    text.trim().parse().map_err(|_| {
        ExecutorError::new(format!(
            "cannot run it: `id {flag}` on {} printed {text:?}",
            runner.host
        ))
    })
}

/// The lines of a job script that run `job` inside `c` (see the module
/// documentation), ending with the runtime's exit status in `$?`.
pub(crate) fn lines(job: &Job, c: &StepContainer) -> Result<Vec<String>, ScriptError> {
    let run_id = job
        .env
        .iter()
        .find(|(k, _)| k == "TWINFLOW_RUN_ID")
        .map_or("run", |(_, v)| v.as_str());
    let name = container_name(run_id, job.key.task, job.key.attempt);
    let inputs: Vec<PathBuf> = job.inputs.iter().map(|i| i.source.clone()).collect();
    let network = Network::Host;
    let container = ContainerLaunch {
        runtime: c.resolved.runtime,
        image: &c.resolved.image,
        resolved: Some(&c.resolved),
        options: &c.spec.options,
        name: &name,
        network: &network,
        user: c.user,
    };
    let gpus = (job.resources.gpus > 0).then_some(GpuBinding {
        vendor: c.gpu_vendor,
        devices: GpuDevices::Allocated,
    });
    let launch = twinflow_launch::launch(&LaunchSpec {
        script: &job.script,
        workdir: &job.workdir,
        inputs: &inputs,
        env: &job.env,
        gpus: gpus.as_ref(),
        container: Some(&container),
    })
    .and_then(|l| Ok((l.script_lines()?, l.container, l.argv)))
    .map_err(|e| {
        ScriptError::new(format!(
            "`{}` cannot run in container `{}`: {e}",
            job.name, c.spec.image
        ))
    })?;
    let (mut lines, named, argv) = launch;
    let run = lines.pop().unwrap_or_default();
    let mut sources = vec![crate::script::path_text(&job.workdir, "working directory")?];
    for input in &inputs {
        sources.push(crate::script::path_text(input, "input")?);
    }
    let (Some(named), Some(program)) = (named, argv.first().and_then(|p| p.to_str())) else {
        lines.extend(crate::preflight::guarded(c, &sources, vec![run], ">&2"));
        return Ok(lines);
    };
    // Docker's `rm` has no `--time`; `-f` kills at once anyway.
    let wait = if c.resolved.runtime == ContainerRuntime::Podman {
        " --time=0"
    } else {
        ""
    };
    // Quoted once for the trap's own single-quoted text.
    let quote = |w: &str| shell_quote(w).replace('\'', "'\\''");
    let mut started = vec![
        format!(
            "trap '{} rm -f{wait} {} >/dev/null 2>&1; exit 143' TERM INT HUP",
            quote(program),
            quote(&named),
        ),
        format!("{run} &"),
        "wait $!".to_owned(),
    ];
    started.extend(crate::preflight::after_launch(c));
    lines.extend(crate::preflight::guarded(c, &sources, started, ">&2"));
    Ok(lines)
}

#[cfg(test)]
#[path = "containers_tests.rs"]
mod tests;
