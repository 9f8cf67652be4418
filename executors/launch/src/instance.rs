//! One Apptainer (or Singularity) instance for several tasks: started once,
//! each task run in it by `exec instance://` with its own working
//! directory, environment, output and exit status, then stopped once. A
//! packed Slurm job whose members share an image runs them this way, as
//! podman and docker packs share one container ([`crate::shared`]).
//!
//! ```text
//! start:  apptainer instance start --no-eval --bind=DIR:DIR … --bind=SOURCE:SOURCE:ro …
//!           [--nv | --rocm] [--net --network=NAME] OPTIONS… IMAGE NAME
//! task:   APPTAINERENV_NAME=VALUE … apptainer exec --no-eval --pwd=WORKDIR [ENV OPTIONS…]
//!           instance://NAME /bin/sh -e -c SCRIPT
//! stop:   apptainer instance stop --force NAME
//! ```
//!
//! (`singularity` and `SINGULARITYENV_` for Singularity.)
//!
//! - **Binds** are the union of the tasks' (as for a podman container
//!   shared by several tasks): every task directory read-write, every input
//!   source read-only, at the same paths. Binds, GPUs (`--nv`/`--rocm`,
//!   whose devices the instance then holds) and the network are set up when
//!   the instance starts: a process that joins it sees its mounts.
//! - The step's `options:` go to `instance start`, as they go to `exec` for
//!   one task: they configure the container. Apptainer sets up a joining
//!   process's environment when it joins, not when the instance starts, so
//!   the options that shape the environment (`--cleanenv`/`-e`, `--env`,
//!   `--env-file`; `--containall`/`-C` as the `--cleanenv` it implies) go to
//!   each `exec` as well: each task sees the environment it would see in a
//!   container of its own.
//! - **Each task** is an `apptainer exec` of its own: its variables as
//!   `APPTAINERENV_` in the environment of that process (with `--no-eval`,
//!   never evaluated inside), its directory as `--pwd`, its output the
//!   process's own, its exit status `exec`'s. The container processes of a
//!   joining `exec` are descendants of that `exec` on the host, in its
//!   process group and its cgroup (a Slurm job's), as for one task: killing
//!   the task's process group stops that task alone; the instance and the
//!   other tasks go on. So there is no PID file and no killer as for podman
//!   (whose `exec` starts the task under `conmon`, outside the group).
//! - **Stopping all**: `instance stop --force` kills the instance with
//!   SIGKILL and removes its record (`~/.apptainer/instances/…`).
//! - The instance runs the image's `%startscript` when it has one (an
//!   image made from a `docker://` one has none); names are the
//!   characters `[A-Za-z0-9._-]`, as [`crate::container_name`] makes them.

use crate::apptainer::{HIDE_HOST_ENV, OWNED, container_flags, prefixed};
use crate::error::LaunchError;
use crate::parts::{
    Launch, bind_args, check_env, check_options, check_path, host_gpu_env, image_arg, sh, text,
};
use crate::shared::{SharedSpec, union_binds};
use crate::spec::{ContainerLaunch, GpuBinding};
use std::ffi::OsString;
use std::path::Path;
use twinflow_core::ContainerRuntime;

/// Options that shape a joining process's environment and take their
/// value in the next argument when it is not given with `=`.
const ENV_WITH_VALUE: [&str; 2] = ["--env", "--env-file"];
/// Options that shape a joining process's environment and take no value.
const ENV_FLAGS: [&str; 2] = ["--cleanenv", "-e"];

/// One task run in a shared instance.
#[derive(Debug, Clone, Copy)]
pub struct InstanceTask<'a> {
    /// The task's script, run as `/bin/sh -e -c SCRIPT`.
    pub script: &'a str,
    /// Its working directory (bound by [`SharedSpec::rw`]).
    pub workdir: &'a Path,
    /// Its environment.
    pub env: &'a [(String, String)],
    /// Its GPUs: the instance holds the devices (see [`start_instance`]);
    /// the task's variables pick its own ([`crate::GpuDevices::Ids`]) or
    /// are the batch system's, inherited ([`crate::GpuDevices::Allocated`]).
    pub gpus: Option<&'a GpuBinding>,
}

/// The argument vector that starts the instance `spec.container.name` of
/// `spec.container.image` with the union of the tasks' binds, with the
/// flags for `gpus` (the vendor of the tasks' devices) (see the module
/// documentation). Refuses what [`crate::launch`] refuses for one task,
/// and podman and docker (see [`crate::start_shared`]).
pub fn start_instance(
    spec: &SharedSpec<'_>,
    gpus: Option<&GpuBinding>,
) -> Result<Vec<OsString>, LaunchError> {
    let c = spec.container;
    apptainer_only(c.runtime)?;
    check_options(c, &OWNED)?;
    check_name(c.name)?;
    let binds = union_binds(spec.rw, spec.ro)?;
    let image = image_arg(c)?;
    let mut argv: Vec<OsString> = [c.runtime.as_str(), "instance", "start", "--no-eval"]
        .map(OsString::from)
        .to_vec();
    for bind in bind_args(&binds, "--bind", &[':', ','], c.runtime)? {
        argv.push(bind.into());
    }
    for flag in container_flags(c, gpus)? {
        argv.push(flag.into());
    }
    argv.extend(c.options.iter().map(OsString::from));
    argv.push(image.into());
    argv.push(c.name.into());
    Ok(argv)
}

/// How to run `task` in the instance `container.name` (started by
/// [`start_instance`] with the same `container`): the `exec` argument
/// vector, its `APPTAINERENV_` variables, run from the task's directory.
pub fn exec_instance(
    container: &ContainerLaunch<'_>,
    task: &InstanceTask<'_>,
) -> Result<Launch, LaunchError> {
    let c = container;
    apptainer_only(c.runtime)?;
    check_name(c.name)?;
    check_path(task.workdir, "working directory")?;
    if task.script.contains('\0') {
        return Err(LaunchError::new("the script holds a NUL byte"));
    }
    let mut inside = Vec::with_capacity(task.env.len());
    for (k, v) in task.env {
        check_env(k, v)?;
        inside.push((k.clone(), v.clone()));
    }
    if let Some(gpus) = task.gpus {
        inside.extend(host_gpu_env(gpus));
    }
    let workdir = text(task.workdir.to_str(), "working directory", task.workdir)?;
    let mut argv: Vec<OsString> = [c.runtime.as_str(), "exec", "--no-eval"]
        .map(OsString::from)
        .to_vec();
    argv.push(format!("--pwd={workdir}").into());
    argv.extend(env_options(c.options).into_iter().map(OsString::from));
    argv.push(format!("instance://{}", c.name).into());
    argv.extend(sh(task.script));
    Ok(Launch {
        argv,
        env: prefixed(c.runtime, inside),
        workdir: task.workdir.to_path_buf(),
        container: None,
    })
}

/// The argument vector that kills the instance `name` and removes its
/// record.
pub fn stop_instance(runtime: ContainerRuntime, name: &str) -> Result<Vec<OsString>, LaunchError> {
    apptainer_only(runtime)?;
    check_name(name)?;
    Ok([runtime.as_str(), "instance", "stop", "--force", name]
        .map(OsString::from)
        .to_vec())
}

/// The step's options that a joining `exec` needs to give its task the
/// environment of a container of its own, in order.
fn env_options(options: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = options.iter();
    while let Some(o) = words.next() {
        let (flag, has_value) = o
            .split_once('=')
            .map_or((o.as_str(), false), |(f, _)| (f, true));
        if ENV_FLAGS.contains(&flag) {
            out.push(o.clone());
        } else if ENV_WITH_VALUE.contains(&flag) {
            out.push(o.clone());
            if !has_value && let Some(value) = words.next() {
                out.push(value.clone());
            }
        } else if HIDE_HOST_ENV.contains(&flag) {
            // `--containall`/`-C`: contained at the start; clean at the join.
            out.push("--cleanenv".to_owned());
        }
    }
    out
}

fn apptainer_only(runtime: ContainerRuntime) -> Result<(), LaunchError> {
    match runtime {
        ContainerRuntime::Apptainer | ContainerRuntime::Singularity => Ok(()),
        ContainerRuntime::Podman | ContainerRuntime::Docker => Err(LaunchError::new(format!(
            "{runtime} has no instances: tasks share a {runtime} container through start_shared"
        ))),
    }
}

/// Apptainer's instance names: `[A-Za-z0-9._-]+`.
fn check_name(name: &str) -> Result<(), LaunchError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(LaunchError::new(format!(
            "`{name}` is not an instance name (letters, digits, `.`, `_` and `-` only)"
        )))
    }
}

#[cfg(test)]
#[path = "instance_tests.rs"]
mod tests;
