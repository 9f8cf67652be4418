//! The podman and docker command line of one attempt:
//!
//! ```text
//! podman run --rm --init --pull=never --log-driver=none --name=NAME --workdir=WORKDIR
//!   --network=host --security-opt=label=disable [--userns=keep-id]
//!   --volume=WORKDIR:WORKDIR --volume=SOURCE:SOURCE:ro …
//!   [--device=nvidia.com/gpu=N … | --device=/dev/kfd --device=/dev/dri]
//!   [--env=CUDA_VISIBLE_DEVICES …] --env=NAME=VALUE … OPTIONS… IMAGE /bin/sh -e -c SCRIPT
//! ```
//!
//! - `--init` puts an init process (catatonit, docker's tini) at PID 1: it
//!   forwards `podman kill`'s signal to the script and reaps what the script
//!   leaves, so stopping the container stops everything in it; `--rm` removes
//!   it once it ends; the name comes from [`crate::container_name`].
//! - `--pull=never` when the image was resolved (pulled once, named by its
//!   id); an unresolved image keeps podman's default (`missing`).
//! - `--log-driver=none` (podman only): podman still streams the task's
//!   output to its own stdout and stderr, which the executor sends to the
//!   task's log files, but no second copy is written into podman's storage.
//! - `--security-opt=label=disable` (podman only): no SELinux relabelling of
//!   the bound paths (`:z` would relabel a shared file system's files).
//! - User: root (uid 0) stays root inside, which under rootful podman owns
//!   the files it writes as root outside too. Any other user is kept as
//!   itself: podman `--userns=keep-id` (rootless podman maps the user to the
//!   same uid and gid inside, so outputs belong to the user), docker
//!   `--user=UID:GID` (the docker daemon is rootful). The image's own `USER`
//!   is not used.
//! - GPUs: host ids ([`crate::GpuDevices::Ids`]) go in through CDI (NVIDIA:
//!   `--device=nvidia.com/gpu=N` each, numbered from 0 inside) or all of
//!   `/dev/kfd` and `/dev/dri` with the variables naming the host's ids
//!   (AMD). A batch allocation ([`crate::GpuDevices::Allocated`]) gives
//!   every device of the vendor and passes the job's variables in by name
//!   (`--env=CUDA_VISIBLE_DEVICES`), which then pick its devices, as under
//!   Apptainer.
//! - Exit status: `podman run` exits with the script's status; a script
//!   killed by signal N gives 128+N (143 for SIGTERM, 137 for SIGKILL); 125
//!   means podman itself failed (e.g. no such image), 126 and 127 that
//!   `/bin/sh` could not be run in the image.

use crate::error::LaunchError;
use crate::parts::{Bind, Launch, bind_args, check_options, gpu_env, gpu_vars, sh, text};
use crate::spec::{ContainerLaunch, GpuDevices, LaunchSpec, Network};
use std::ffi::OsString;
use twinflow_core::ContainerRuntime;
use twinflow_core::GpuVendor;

/// Options the command line sets itself.
const OWNED: [&str; 8] = [
    "--name",
    "--rm",
    "--detach",
    "-d",
    "--workdir",
    "-w",
    "--init",
    "--pull",
];

/// `RUNTIME run --rm --init …` up to the binds (see the module
/// documentation), with `extra` after `--name`: what a container of one
/// attempt ([`wrap`]) and one shared by several ([`crate::shared`]) have in
/// common. Refuses options that set what this sets.
pub(crate) fn run_args(
    c: &ContainerLaunch<'_>,
    binds: &[Bind],
    extra: &[String],
) -> Result<Vec<OsString>, LaunchError> {
    check_options(c, &OWNED)?;
    let podman = c.runtime == ContainerRuntime::Podman;
    let mut argv: Vec<OsString> = vec![c.runtime.as_str().into(), "run".into()];
    let mut arg = |s: String| argv.push(OsString::from(s));
    arg("--rm".into());
    arg("--init".into());
    if c.resolved.is_some() {
        arg("--pull=never".into());
    }
    if podman {
        arg("--log-driver=none".into());
    }
    arg(format!("--name={}", c.name));
    for e in extra {
        arg(e.clone());
    }
    arg(match c.network {
        Network::Host => "--network=host".into(),
        Network::None => "--network=none".into(),
        Network::Named(n) => format!("--network={n}"),
    });
    if podman {
        arg("--security-opt=label=disable".into());
    }
    if c.user.uid != 0 {
        arg(if podman {
            "--userns=keep-id".into()
        } else {
            format!("--user={}:{}", c.user.uid, c.user.gid)
        });
    }
    for bind in bind_args(binds, "--volume", &[':'], c.runtime)? {
        arg(bind);
    }
    Ok(argv)
}

pub(crate) fn wrap(
    spec: &LaunchSpec<'_>,
    c: &ContainerLaunch<'_>,
    binds: &[Bind],
    image: &str,
) -> Result<Launch, LaunchError> {
    let workdir = text(spec.workdir.to_str(), "working directory", spec.workdir)?;
    let mut argv = run_args(c, binds, &[format!("--workdir={workdir}")])?;
    let mut arg = |s: String| argv.push(OsString::from(s));
    let mut env = spec.env.to_vec();
    // Variables passed in by name: podman and docker copy their own value.
    let mut forwarded: Vec<&str> = Vec::new();
    if let Some(gpus) = spec.gpus {
        match (gpus.vendor, &gpus.devices) {
            // CDI (`nvidia-ctk cdi generate`): the container sees only its
            // devices, numbered from 0.
            (GpuVendor::Nvidia, GpuDevices::Ids(ids)) => {
                for d in ids {
                    arg(format!("--device=nvidia.com/gpu={d}"));
                }
                let inside: Vec<u32> = (0..ids.len())
                    .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                    .collect();
                env.extend(gpu_env(gpus, &inside));
            }
            // All of /dev/dri is there: the variables pick the host's ids.
            (GpuVendor::Amd, GpuDevices::Ids(ids)) => {
                arg("--device=/dev/kfd".into());
                arg("--device=/dev/dri".into());
                env.extend(gpu_env(gpus, ids));
            }
            // The batch system's variables pick the devices, as under
            // Apptainer: every device is there.
            (GpuVendor::Nvidia, GpuDevices::Allocated) => {
                arg("--device=nvidia.com/gpu=all".into());
                forwarded.extend(gpu_vars(gpus.vendor));
            }
            (GpuVendor::Amd, GpuDevices::Allocated) => {
                arg("--device=/dev/kfd".into());
                arg("--device=/dev/dri".into());
                forwarded.extend(gpu_vars(gpus.vendor));
            }
        }
    }
    for name in forwarded {
        arg(format!("--env={name}"));
    }
    for (name, value) in &env {
        arg(format!("--env={name}={value}"));
    }
    for o in c.options {
        arg(o.clone());
    }
    arg(image.to_owned());
    argv.extend(sh(spec.script));
    Ok(Launch {
        argv,
        env: Vec::new(),
        workdir: spec.workdir.to_path_buf(),
        container: Some(c.name.to_owned()),
    })
}
