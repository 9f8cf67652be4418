//! The pieces every launch is built from: the [`Launch`] itself and its
//! script form, the host's `sh` command, bind mounts, the checks of paths,
//! environment entries and runtime options, GPU variables and the image
//! argument; [`crate::wrap`], [`crate::podman`] and [`crate::apptainer`]
//! share them.

use crate::error::LaunchError;
use crate::spec::{ContainerLaunch, GpuBinding, GpuDevices};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use twinflow_core::GpuVendor;
use twinflow_core::{ContainerRuntime, shell_quote, shell_words};

/// How to start one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program and its arguments (`argv[0]` is the program, looked up
    /// in `PATH`): `/bin/sh -e -c SCRIPT`, or the container runtime that
    /// runs it. Never a shell string.
    pub argv: Vec<OsString>,
    /// Environment to add to the launching process's own, in order (a later
    /// entry wins). On the host: the task's env and the GPU variables; under
    /// Apptainer the same names prefixed `APPTAINERENV_`
    /// (`SINGULARITYENV_`), which Apptainer moves inside; under podman and
    /// docker empty (the variables are `--env` arguments).
    pub env: Vec<(String, String)>,
    /// The working directory of the launching process: the task directory.
    pub workdir: PathBuf,
    /// The podman/docker container's name, by which to stop it
    /// (`podman kill --signal=TERM NAME`, then `podman rm -f NAME`).
    pub container: Option<String>,
}

impl Launch {
    /// The launch as lines of a POSIX `sh` script (a Slurm batch script or
    /// a packed job's member script): one `export NAME=VALUE` per
    /// environment entry, then, as the last line, `cd -- WORKDIR && ARGV…`,
    /// every word quoted with [`twinflow_core::shell_quote`], so the caller
    /// can follow it with `status=$?`. A word that is not UTF-8 is refused.
    pub fn script_lines(&self) -> Result<Vec<String>, LaunchError> {
        let mut lines = Vec::with_capacity(self.env.len() + 1);
        for (name, value) in &self.env {
            check_env(name, value)?;
            lines.push(format!("export {name}={}", shell_quote(value)));
        }
        let workdir = self.workdir.to_str().ok_or_else(|| {
            LaunchError::new(format!(
                "the working directory {} is not valid utf-8",
                self.workdir.display()
            ))
        })?;
        let words = self
            .argv
            .iter()
            .map(|w| {
                w.to_str().ok_or_else(|| {
                    LaunchError::new(format!("the argument {w:?} is not valid utf-8"))
                })
            })
            .collect::<Result<Vec<&str>, _>>()?;
        lines.push(format!(
            "cd -- {} && {}",
            shell_quote(workdir),
            shell_words(words)
        ));
        Ok(lines)
    }
}

/// `/bin/sh -e -c SCRIPT`.
pub(crate) fn sh(script: &str) -> Vec<OsString> {
    ["/bin/sh", "-e", "-c", script]
        .into_iter()
        .map(OsString::from)
        .collect()
}

/// One bind mount at the same path inside as outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bind {
    pub(crate) path: PathBuf,
    pub(crate) read_only: bool,
}

/// Each bind as `OPTION=SRC:SRC[:ro]` (`--bind` for Apptainer, `--volume`
/// for podman and docker); a source holding one of `forbidden`, which the
/// option's syntax cannot carry, is refused.
pub(crate) fn bind_args(
    binds: &[Bind],
    option: &str,
    forbidden: &[char],
    runtime: ContainerRuntime,
) -> Result<Vec<String>, LaunchError> {
    binds
        .iter()
        .map(|b| {
            let p = text(b.path.to_str(), "bind source", &b.path)?;
            if p.contains(forbidden) {
                let listed: Vec<String> = forbidden.iter().map(|c| format!("`{c}`")).collect();
                return Err(LaunchError::new(format!(
                    "the bind source `{p}` holds {}, which {runtime}'s {option} cannot carry",
                    listed.join(" or ")
                )));
            }
            Ok(format!(
                "{option}={p}:{p}{}",
                if b.read_only { ":ro" } else { "" }
            ))
        })
        .collect()
}

/// The task directory read-write, then the input sources read-only that
/// are not under it or under one another, in path order.
pub(crate) fn binds(workdir: &Path, inputs: &[PathBuf]) -> Result<Vec<Bind>, LaunchError> {
    let mut out = vec![Bind {
        path: workdir.to_path_buf(),
        read_only: false,
    }];
    let mut sources: Vec<&PathBuf> = inputs.iter().collect();
    for s in &sources {
        check_path(s, "input")?;
    }
    sources.sort();
    sources.dedup();
    let mut last: Option<&Path> = None;
    for s in sources {
        if s.starts_with(workdir) || last.is_some_and(|l| s.starts_with(l)) {
            continue;
        }
        out.push(Bind {
            path: s.clone(),
            read_only: true,
        });
        last = Some(s);
    }
    Ok(out)
}

/// Absolute, no `.` or `..` component, no NUL.
pub(crate) fn check_path(path: &Path, what: &str) -> Result<(), LaunchError> {
    let normal = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !normal {
        return Err(LaunchError::new(format!(
            "the {what} {} is not an absolute path without `.` or `..`",
            path.display()
        )));
    }
    Ok(())
}

/// A shell variable name with a value that an environment can hold.
pub(crate) fn check_env(name: &str, value: &str) -> Result<(), LaunchError> {
    let shell_name = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !shell_name {
        return Err(LaunchError::new(format!(
            "the environment variable name {name:?} is not a shell variable name"
        )));
    }
    if value.contains('\0') {
        return Err(LaunchError::new(format!(
            "the value of {name} holds a NUL byte"
        )));
    }
    Ok(())
}

/// The variables that select a vendor's devices.
pub(crate) fn gpu_vars(vendor: GpuVendor) -> &'static [&'static str] {
    match vendor {
        GpuVendor::Nvidia => &["CUDA_VISIBLE_DEVICES"],
        GpuVendor::Amd => &["ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"],
    }
}

/// The variables that select `devices` for `gpus.vendor`.
pub(crate) fn gpu_env(gpus: &GpuBinding, devices: &[u32]) -> Vec<(String, String)> {
    let list = devices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    gpu_vars(gpus.vendor)
        .iter()
        .map(|n| ((*n).to_owned(), list.clone()))
        .collect()
}

/// The variables of a binding on the host: its ids' variables, or none
/// for [`GpuDevices::Allocated`] (the batch system's are inherited).
pub(crate) fn host_gpu_env(gpus: &GpuBinding) -> Vec<(String, String)> {
    match &gpus.devices {
        GpuDevices::Ids(ids) => gpu_env(gpus, ids),
        GpuDevices::Allocated => Vec::new(),
    }
}

/// The image argument the runtime is given.
pub(crate) fn image_arg(c: &ContainerLaunch<'_>) -> Result<String, LaunchError> {
    use twinflow_core::ImageRef;
    if let Some(r) = c.resolved {
        if r.runtime != c.runtime {
            return Err(LaunchError::new(format!(
                "image `{}` was resolved for {}, not for {}",
                c.image, r.runtime, c.runtime
            )));
        }
        if &r.image != c.image {
            return Err(LaunchError::new(format!(
                "the resolution of image `{}` is for image `{}`",
                c.image, r.image
            )));
        }
        return Ok(r.run_ref.clone());
    }
    let apptainer = matches!(
        c.runtime,
        ContainerRuntime::Apptainer | ContainerRuntime::Singularity
    );
    match (c.image, apptainer) {
        (ImageRef::Docker(o), false) | (ImageRef::Local(o), false) => Ok(o.to_string()),
        (ImageRef::Docker(_) | ImageRef::Oras(_), true) => Ok(c.image.to_string()),
        (ImageRef::Sif(p), true) => {
            if Path::new(p).is_absolute() {
                Ok(p.clone())
            } else {
                Err(LaunchError::new(format!(
                    "the image path `{p}` is relative; resolve it to an absolute path first"
                )))
            }
        }
        (ImageRef::Oras(_) | ImageRef::Sif(_), false) => Err(LaunchError::new(format!(
            "{} cannot run image `{}`: oras:// and .sif images need apptainer or singularity",
            c.runtime, c.image
        ))),
        (ImageRef::Local(_), true) => Err(LaunchError::new(format!(
            "{} cannot run image `{}` from podman's local store: use a .sif file or docker://",
            c.runtime, c.image
        ))),
    }
}

/// Refuses an option that sets what the launch sets itself (`--name` and
/// friends); `owned` lists them as `--long` or `-s`.
pub(crate) fn check_options(c: &ContainerLaunch<'_>, owned: &[&str]) -> Result<(), LaunchError> {
    for option in c.options {
        let flag = option.split_once('=').map_or(option.as_str(), |(f, _)| f);
        if owned.contains(&flag) {
            return Err(LaunchError::new(format!(
                "the container option `{option}` sets what twinflow sets itself for {} ({})",
                c.runtime,
                owned.join(", ")
            )));
        }
    }
    Ok(())
}

/// A path as text: podman's and docker's options are strings.
pub(crate) fn text<'a>(
    s: Option<&'a str>,
    what: &str,
    path: &std::path::Path,
) -> Result<&'a str, LaunchError> {
    s.ok_or_else(|| LaunchError::new(format!("the {what} {} is not valid utf-8", path.display())))
}
