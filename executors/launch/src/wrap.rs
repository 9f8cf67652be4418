//! [`launch`]: the pure function from a [`LaunchSpec`] to the [`Launch`] an
//! executor starts (an argument vector, the environment of the launching
//! process, its working directory) or writes into a batch script
//! ([`Launch::script_lines`]); the runtimes' own forms are in
//! [`crate::podman`] and [`crate::apptainer`], the shared pieces in
//! [`crate::parts`].

use crate::error::LaunchError;
use crate::parts::{Launch, binds, check_env, check_path, host_gpu_env, image_arg, sh};
use crate::spec::LaunchSpec;
use crate::{apptainer, podman};
use twinflow_core::ContainerRuntime;

/// Turns one attempt into how to start it. Pure: looks at no file and runs
/// nothing, so the same spec gives the same [`Launch`] everywhere (it is
/// snapshot-tested per runtime, image kind and GPU case).
///
/// Refuses (never falls back to the host): a relative or non-normal
/// working directory or input, a bind path the runtime's option syntax
/// cannot carry, an environment name that is not a shell name, a NUL byte,
/// an image the runtime cannot run, a resolution made for another runtime,
/// and an option that would take over what the launch sets itself.
pub fn launch(spec: &LaunchSpec<'_>) -> Result<Launch, LaunchError> {
    check_path(spec.workdir, "working directory")?;
    if spec.script.contains('\0') {
        return Err(LaunchError::new("the script holds a NUL byte"));
    }
    for (name, value) in spec.env {
        check_env(name, value)?;
    }
    let Some(container) = spec.container else {
        let mut env = spec.env.to_vec();
        if let Some(gpus) = spec.gpus {
            env.extend(host_gpu_env(gpus));
        }
        return Ok(Launch {
            argv: sh(spec.script),
            env,
            workdir: spec.workdir.to_path_buf(),
            container: None,
        });
    };
    let binds = binds(spec.workdir, spec.inputs)?;
    let image = image_arg(container)?;
    match container.runtime {
        ContainerRuntime::Podman | ContainerRuntime::Docker => {
            podman::wrap(spec, container, &binds, &image)
        }
        ContainerRuntime::Apptainer | ContainerRuntime::Singularity => {
            apptainer::wrap(spec, container, &binds, &image)
        }
    }
}
