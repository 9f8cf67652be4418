//! Containers, GPUs and the prologue on the local executor: resolving a
//! step's image once on this machine ([`resolve`]), and what each attempt
//! carries to the supervisor beyond its script ([`extra`]), which then
//! starts it inside the image, with its devices, after the prologue (see
//! `crate::attempt`).
//!
//! The runtime is the step's `container.runtime`, else the executor's
//! `container_runtime`. Podman and docker images are inspected in (or
//! pulled once into) the local store and run by id; Apptainer and
//! Singularity run a `.sif` where it is and pull `docker://` and `oras://`
//! images into a SIF cache named by digest: `$XDG_CACHE_HOME/twinflow/sif`,
//! else `$HOME/.cache/twinflow/sif`. The user inside podman is the user
//! twinflow runs as.

use super::{Inner, lock};
use crate::attempt::{Container, Extra, Gpus};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use twinflow_core::{
    ContainerRuntime, ContainerSpec, ExecutorError, GpuVendor, Job, ResolvedImage,
};
use twinflow_launch::{
    ApptainerResolver, CommandRunner, ImageResolver, LocalRunner, PodmanResolver, container_name,
};

/// What an executor's settings add to its attempts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// The executor's `prologue:`.
    pub(crate) prologue: Option<String>,
    /// The host's GPU device ids it hands out.
    pub(crate) gpus: Vec<u32>,
    pub(crate) gpu_vendor: GpuVendor,
    /// Its `container_runtime`.
    pub(crate) container_runtime: Option<ContainerRuntime>,
    /// The image of each step that runs in one, by step name.
    pub(crate) containers: HashMap<String, Arc<StepImage>>,
}

/// A step's container, its image resolved here.
#[derive(Debug)]
pub(crate) struct StepImage {
    pub(crate) options: Vec<String>,
    pub(crate) resolved: ResolvedImage,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The SIF cache of Apptainer and Singularity on this machine.
pub(crate) fn sif_cache() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".cache"))
        })
        .map(|c| c.join("twinflow").join("sif"))
}

/// Resolves `container` on this machine for the tasks of `steps`.
pub(crate) async fn resolve(
    inner: &Inner,
    container: &ContainerSpec,
    steps: &[String],
) -> Result<ResolvedImage, ExecutorError> {
    let image = container
        .image_ref()
        .map_err(|e| ExecutorError::new(format!("cannot run it: {e}")))?;
    let default_runtime = lock(&inner.settings).container_runtime;
    let runtime = container.runtime.or(default_runtime).ok_or_else(|| {
        ExecutorError::new(
            "names no container runtime for it: set the step's `container: { runtime: … }` \
             or the executor's `container_runtime`",
        )
    })?;
    let resolved = tokio::task::spawn_blocking(move || {
        let runner = LocalRunner::new();
        if !on_path(runtime.as_str()) {
            // Before anything is made for it (the SIF cache directory).
            return Err(twinflow_launch::ResolveError {
                image: image.to_string(),
                runtime: runtime.to_string(),
                host: runner.host().to_owned(),
                reason: format!("{runtime} is not installed (not on PATH)"),
                transient: false,
            });
        }
        match runtime {
            ContainerRuntime::Podman | ContainerRuntime::Docker => {
                PodmanResolver::new(runtime, runner).resolve(&image)
            }
            ContainerRuntime::Apptainer | ContainerRuntime::Singularity => {
                let cache = sif_cache().ok_or_else(|| twinflow_launch::ResolveError {
                    image: image.to_string(),
                    runtime: runtime.to_string(),
                    host: runner.host().to_owned(),
                    reason: "neither XDG_CACHE_HOME nor HOME is an absolute path, so there is \
                             no SIF cache directory"
                        .to_owned(),
                    transient: false,
                })?;
                let cache = cache.to_string_lossy().into_owned();
                ApptainerResolver::new(runtime, cache, runner).resolve(&image)
            }
        }
    })
    .await
    .map_err(|e| ExecutorError::new(format!("cannot run it: image resolution failed: {e}")))?
    .map_err(|e| ExecutorError {
        message: format!("cannot run it: {e}"),
        transient: e.transient,
    })?;
    // This process's user: the owner of its `/proc/self`.
    let me = std::fs::metadata("/proc/self").map_err(|e| {
        ExecutorError::new(format!("cannot run it: failed to read /proc/self: {e}"))
    })?;
    let step = Arc::new(StepImage {
        options: container.options.clone(),
        resolved: resolved.clone(),
        uid: std::os::unix::fs::MetadataExt::uid(&me),
        gid: std::os::unix::fs::MetadataExt::gid(&me),
    });
    let mut settings = lock(&inner.settings);
    for name in steps {
        settings.containers.insert(name.clone(), Arc::clone(&step));
    }
    Ok(resolved)
}

/// Whether an executable file `program` is in a directory of `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Refuses a job that asks for more GPUs than the executor has.
pub(crate) fn check_gpus(inner: &Inner, job: &Job) -> Result<(), ExecutorError> {
    let settings = lock(&inner.settings);
    let have = settings.gpus.len();
    if job.resources.gpus as usize > have {
        return Err(ExecutorError::new(format!(
            "{} asks for {} GPU(s), but executor `{}` has {have} (its `gpus: {:?}`); it is \
             refused rather than run without them",
            job.name, job.resources.gpus, inner.name, settings.gpus
        )));
    }
    Ok(())
}

/// What `job` carries to the supervisor beyond its script.
pub(crate) fn extra(inner: &Inner, job: &Job) -> Box<Extra> {
    let settings = lock(&inner.settings);
    let gpus = if job.resources.gpus > 0 {
        Gpus {
            count: job.resources.gpus,
            devices: settings.gpus.clone(),
            vendor: settings.gpu_vendor,
        }
    } else {
        Gpus::default()
    };
    let container = settings.containers.get(&job.step).map(|step| {
        let run_id = job
            .env
            .iter()
            .find(|(k, _)| k == "TWINFLOW_RUN_ID")
            .map_or("run", |(_, v)| v.as_str());
        Container {
            runtime: step.resolved.runtime,
            image: step.resolved.image.to_string(),
            digest: step.resolved.digest.clone(),
            run_ref: step.resolved.run_ref.clone(),
            options: step.options.clone(),
            name: container_name(run_id, job.key.task, job.key.attempt),
            uid: step.uid,
            gid: step.gid,
        }
    });
    let inputs = if container.is_some() {
        job.inputs.iter().map(|i| i.source.clone()).collect()
    } else {
        Vec::new()
    };
    Box::new(Extra {
        prologue: settings.prologue.clone(),
        gpus,
        inputs,
        container,
        mpirun: super::shape::ranks_under_mpirun(&job.resources, job.launcher),
    })
}
