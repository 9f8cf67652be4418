//! The Apptainer and Singularity command line of one attempt:
//!
//! ```text
//! apptainer exec --no-eval --pwd=WORKDIR --bind=WORKDIR:WORKDIR --bind=SOURCE:SOURCE:ro …
//!   [--nv | --rocm] [--net --network=NAME] OPTIONS… IMAGE /bin/sh -e -c SCRIPT
//! ```
//!
//! with the task's variables in the environment of `apptainer` itself as
//! `APPTAINERENV_NAME=VALUE` (`SINGULARITYENV_` for singularity), which
//! Apptainer sets inside: a value is never split, whatever it holds.
//!
//! - `--no-eval` (Apptainer ≥ 1.1, SingularityCE ≥ 3.10): the values are
//!   taken literally; without it Apptainer evaluates them in a shell inside
//!   the container, so a parameter holding `$(…)` would run it.
//! - The host environment passes in as Apptainer always does (minus what
//!   it filters); the task's variables win. `options: [--cleanenv]` keeps
//!   only the task's variables.
//! - The network is the host's unless asked otherwise; Apptainer runs as
//!   the invoking user, so there is no user mapping to choose.
//! - GPUs: `--nv` / `--rocm` bind every device of the host, and the
//!   variables (`CUDA_VISIBLE_DEVICES`, `ROCR_VISIBLE_DEVICES`,
//!   `HIP_VISIBLE_DEVICES`) pick this attempt's host ids; with
//!   [`GpuDevices::Allocated`] they are the batch system's, inherited from
//!   the job (so `--cleanenv` and `--containall`, which would hide them,
//!   are refused).
//! - Exit status: `apptainer exec` exits with the script's status; a
//!   script killed by signal N makes Apptainer raise N on itself, so the
//!   executor sees the same signal (128+N if it does not end it). The
//!   container's processes are ordinary processes of the executor's process
//!   group: killing the group stops them.

use crate::error::LaunchError;
use crate::parts::{Bind, Launch, bind_args, check_options, gpu_vars, host_gpu_env, sh, text};
use crate::spec::{ContainerLaunch, GpuBinding, GpuDevices, LaunchSpec, Network};
use std::ffi::OsString;
use twinflow_core::ContainerRuntime;
use twinflow_core::GpuVendor;

/// Options the command line sets itself.
pub(crate) const OWNED: [&str; 1] = ["--pwd"];

/// Options that keep the host's environment out of the container, and so
/// the GPU variables of [`GpuDevices::Allocated`].
pub(crate) const HIDE_HOST_ENV: [&str; 4] = ["--cleanenv", "-e", "--containall", "-C"];

pub(crate) fn wrap(
    spec: &LaunchSpec<'_>,
    c: &ContainerLaunch<'_>,
    binds: &[Bind],
    image: &str,
) -> Result<Launch, LaunchError> {
    check_options(c, &OWNED)?;
    let mut argv: Vec<OsString> = vec![c.runtime.as_str().into(), "exec".into()];
    let mut arg = |s: String| argv.push(OsString::from(s));
    arg("--no-eval".into());
    let workdir = text(spec.workdir.to_str(), "working directory", spec.workdir)?;
    arg(format!("--pwd={workdir}"));
    for bind in bind_args(binds, "--bind", &[':', ','], c.runtime)? {
        arg(bind);
    }
    let mut inside = spec.env.to_vec();
    if let Some(gpus) = spec.gpus {
        inside.extend(host_gpu_env(gpus));
    }
    for flag in container_flags(c, spec.gpus)? {
        arg(flag);
    }
    for o in c.options {
        arg(o.clone());
    }
    arg(image.to_owned());
    argv.extend(sh(spec.script));
    Ok(Launch {
        argv,
        env: prefixed(c.runtime, inside),
        workdir: spec.workdir.to_path_buf(),
        container: None,
    })
}

/// The task's variables as Apptainer takes them from the environment of
/// its own process: `APPTAINERENV_NAME` (`SINGULARITYENV_NAME`).
pub(crate) fn prefixed(
    runtime: ContainerRuntime,
    vars: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let prefix = match runtime {
        ContainerRuntime::Singularity => "SINGULARITYENV_",
        _ => "APPTAINERENV_",
    };
    vars.into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v))
        .collect()
}

/// What configures the container itself, after the binds: `--nv` or
/// `--rocm` for `gpus`, the network. Refuses an option that would hide the
/// batch system's GPU variables from a task holding
/// [`GpuDevices::Allocated`]. [`wrap`] and an instance's start
/// ([`crate::instance`]) share it.
pub(crate) fn container_flags(
    c: &ContainerLaunch<'_>,
    gpus: Option<&GpuBinding>,
) -> Result<Vec<String>, LaunchError> {
    let mut out = Vec::new();
    if let Some(gpus) = gpus {
        if gpus.devices == GpuDevices::Allocated
            && let Some(o) = c
                .options
                .iter()
                .find(|o| HIDE_HOST_ENV.contains(&o.as_str()))
        {
            return Err(LaunchError::new(format!(
                "the container option `{o}` would hide the GPU variables the batch system set ({}) from the task",
                gpu_vars(gpus.vendor).join(", ")
            )));
        }
        out.push(match gpus.vendor {
            GpuVendor::Nvidia => "--nv".into(),
            GpuVendor::Amd => "--rocm".into(),
        });
    }
    match c.network {
        Network::Host => {}
        Network::None => {
            out.push("--net".into());
            out.push("--network=none".into());
        }
        Network::Named(n) => {
            out.push("--net".into());
            out.push(format!("--network={n}"));
        }
    }
    Ok(out)
}
