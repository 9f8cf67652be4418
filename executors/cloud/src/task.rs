//! How the runner starts one attempt's task on the VM, once its inputs are
//! fetched: the command, built by `twinflow_launch::launch` from the
//! [`TaskSpec`] (on the VM itself, or inside the attempt's image), the
//! executor's prologue before it, and the container stopped and removed
//! however the task ended.
//!
//! - **Inputs** are fetched to `<control dir>/staged/<rel>` and linked from
//!   `<task dir>/<rel>`, as the local executor links sealed outputs: inside
//!   a container the staged directory is bound read-only at the same path
//!   (the task directory read-write), so the links resolve there too.
//! - **Container** ([`TaskSpec::container`]): `launch()` with the task
//!   directory, the staged inputs, the task's environment (its `env` and the
//!   `TWINFLOW_*` variables) inside and the step's `options:`; podman and
//!   docker containers are named `tf-<run>-<task>-<attempt>`, which the
//!   runner writes to `<control dir>/container` before the container starts
//!   so the executor's kill can stop it by name. The runtime's exit status
//!   is the script's: it is recorded unchanged.
//! - **Prologue** ([`TaskSpec::prologue`]): `/bin/sh -c` runs the lines with
//!   `set -e` (through `eval` of a positional parameter, so nothing is
//!   pasted into a command line), writes `<control dir>/prologue.done` and
//!   `exec`s the task's command: whatever the prologue exports (`module
//!   load`) reaches the runtime or the task's shell, and the process the
//!   runner waits for is the task itself. A prologue that fails leaves no
//!   `prologue.done`, and the attempt fails with an error saying so.

use crate::spec::{ExitRecord, TaskSpec};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use twinflow_core::{ContainerRuntime, ImageRef, ResolvedImage};
use twinflow_launch::{ContainerLaunch, HostUser, LaunchSpec, Network};

/// Where the runner keeps the staged input at `rel`.
pub(crate) fn staged(ctl: &Path, rel: &Path) -> PathBuf {
    ctl.join("staged").join(rel)
}

/// Links `workdir/rel` to the staged copy at `source`.
pub(crate) fn link_input(workdir: &Path, rel: &Path, source: &Path) -> Result<(), String> {
    let link = workdir.join(rel);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("failed to create {}: {e}", parent.display()))?;
    }
    std::os::unix::fs::symlink(source, &link)
        .map_err(|e| format!("failed to link {}: {e}", link.display()))
}

fn runtime(name: &str) -> Option<ContainerRuntime> {
    [
        ContainerRuntime::Podman,
        ContainerRuntime::Docker,
        ContainerRuntime::Apptainer,
        ContainerRuntime::Singularity,
    ]
    .into_iter()
    .find(|r| r.as_str() == name)
}

/// The command of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    /// What the runner starts.
    pub(crate) argv: Vec<OsString>,
    /// Added to the runner's environment (without the hidden variables).
    pub(crate) env: Vec<(String, String)>,
    /// The named container (podman, docker) and its runtime.
    pub(crate) container: Option<(ContainerRuntime, String)>,
}

/// The prologue's wrapper: `$1` the marker to write, `$2` the prologue,
/// the rest the task's command.
const PROLOGUE: &str = "__tf_done=$1 __tf_prologue=$2; shift 2; set -e; eval \"$__tf_prologue\"; \
                        : > \"$__tf_done\"; unset __tf_done __tf_prologue; exec \"$@\"";

/// The command of the attempt of `spec` whose control directory is `ctl`.
pub(crate) fn plan(spec: &TaskSpec, ctl: &Path) -> Result<Planned, String> {
    let workdir = Path::new(&spec.workdir);
    let inputs: Vec<PathBuf> = if spec.inputs.is_empty() {
        Vec::new()
    } else {
        vec![ctl.join("staged")]
    };
    let (resolved, network, user);
    let container = match &spec.container {
        None => None,
        Some(c) => {
            let rt = runtime(&c.runtime)
                .ok_or_else(|| format!("`{}` is not a container runtime", c.runtime))?;
            let image = ImageRef::parse(&c.image).map_err(|e| e.to_string())?;
            resolved = ResolvedImage {
                image,
                runtime: rt,
                digest: c.digest.clone(),
                run_ref: c.run_ref.clone(),
            };
            network = Network::Host;
            user = HostUser {
                uid: c.uid,
                gid: c.gid,
            };
            Some(ContainerLaunch {
                runtime: rt,
                image: &resolved.image,
                resolved: Some(&resolved),
                options: &c.options,
                name: &c.name,
                network: &network,
                user,
            })
        }
    };
    let launch = twinflow_launch::launch(&LaunchSpec {
        script: &spec.script,
        workdir,
        inputs: &inputs,
        env: &spec.env,
        gpus: None,
        container: container.as_ref(),
    })
    .map_err(|e| match &spec.container {
        Some(c) => format!(
            "cannot run in container `{}` with {}: {e}",
            c.image, c.runtime
        ),
        None => format!("cannot run the script: {e}"),
    })?;
    let named = match (&spec.container, launch.container) {
        (Some(c), Some(name)) => runtime(&c.runtime).map(|r| (r, name)),
        _ => None,
    };
    let (argv, env) = if spec.mpirun > 0 {
        // Once per rank, started by `mpirun` on the VM after the prologue.
        let mut argv: Vec<OsString> = vec![
            "mpirun".into(),
            "-np".into(),
            spec.mpirun.to_string().into(),
        ];
        argv.extend(launch.argv);
        let mut env = crate::shape::mpirun_env();
        env.retain(|(k, _)| !launch.env.iter().any(|(name, _)| name == k));
        env.extend(launch.env);
        (argv, env)
    } else {
        (launch.argv, launch.env)
    };
    let argv_task = argv;
    let argv = match &spec.prologue {
        None => argv_task,
        Some(prologue) => {
            let mut argv: Vec<OsString> = ["/bin/sh", "-c", PROLOGUE, "twinflow-prologue"]
                .into_iter()
                .map(OsString::from)
                .collect();
            argv.push(ctl.join("prologue.done").into_os_string());
            argv.push(OsString::from(prologue));
            argv.extend(argv_task);
            argv
        }
    };
    Ok(Planned {
        argv,
        env,
        container: named,
    })
}

fn log_file(path: &str) -> Result<std::fs::File, String> {
    let p = Path::new(path);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("failed to create {}: {e}", parent.display()))?;
    }
    std::fs::File::create(p).map_err(|e| format!("failed to create {path}: {e}"))
}

/// Starts the attempt's command in `workdir` and waits for it.
pub(crate) fn run(spec: &TaskSpec, ctl: &Path, workdir: &Path) -> Result<ExitRecord, String> {
    let planned = plan(spec, ctl)?;
    if let Some((rt, name)) = &planned.container {
        let path = ctl.join("container");
        std::fs::write(&path, format!("{rt}\n{name}\n"))
            .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
    }
    // Checked again once the container's name is there for a kill to find.
    if ctl.join("cancelled").exists() {
        return Err("cancelled before it started".into());
    }
    let Some((program, args)) = planned.argv.split_first() else {
        return Err("empty command".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(log_file(&spec.stdout)?)
        .stderr(log_file(&spec.stderr)?);
    for k in &spec.hidden {
        cmd.env_remove(k);
    }
    cmd.envs(planned.env.iter().map(|(k, v)| (k, v)));
    let status = cmd.status();
    if let Some((rt, name)) = &planned.container {
        remove_container(*rt, name);
    }
    let status = status.map_err(|e| {
        format!(
            "failed to run {} in {}: {e}",
            program.to_string_lossy(),
            workdir.display()
        )
    })?;
    if spec.prologue.is_some() && !ctl.join("prologue.done").exists() {
        return Err(prologue_failed(status, &spec.stderr));
    }
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ExitRecord {
            status: Some(code),
            ..ExitRecord::default()
        },
        (None, Some(sig)) => ExitRecord {
            signal: Some(signal_name(sig)),
            ..ExitRecord::default()
        },
        (None, None) => ExitRecord {
            error: Some("the script ended without an exit status".into()),
            ..ExitRecord::default()
        },
    })
}

/// Removes the container, whichever way its runtime's client ended (it is
/// gone already after `--rm`, and this does nothing).
fn remove_container(rt: ContainerRuntime, name: &str) {
    let mut cmd = Command::new(rt.as_str());
    cmd.arg("rm").arg("-f");
    // Docker's `rm` has no `--time`; `-f` kills at once anyway.
    if rt == ContainerRuntime::Podman {
        cmd.arg("--time=0");
    }
    let _ = cmd
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn prologue_failed(status: std::process::ExitStatus, stderr: &str) -> String {
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by {}", signal_name(sig)),
        (None, None) => "ended".to_owned(),
    };
    let last = std::fs::read_to_string(stderr)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .map_or_else(String::new, |l| format!(": {}", l.trim()));
    format!("the executor's prologue {how} on the VM, so the task did not run{last}")
}

pub(crate) fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
