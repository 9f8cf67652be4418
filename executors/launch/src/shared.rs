//! One container for several tasks: started once, each task run in it by
//! `exec` with its own working directory, environment, output and exit
//! status, then stopped once. A packed Slurm job whose members share an
//! image runs them this way, so the container starts once per job rather
//! than once per task.
//!
//! ```text
//! start:  podman run --rm --init [--pull=never] --log-driver=none --name=NAME --detach --interactive
//!           --network=host --security-opt=label=disable [--userns=keep-id]
//!           --volume=DIR:DIR … --volume=SOURCE:SOURCE:ro … OPTIONS… IMAGE /bin/sh -c 'read _'
//! task:   podman exec --workdir=WORKDIR --env=NAME=VALUE … NAME
//!           /bin/sh -c WRAPPER sh PIDFILE SCRIPT
//! kill:   podman exec NAME /bin/sh -c KILLER sh PIDFILE     (after `: >PIDFILE.stop` outside)
//! stop:   podman rm -f --time=0 NAME
//! ```
//!
//! - **Podman and docker only.** [`start_shared`] refuses Apptainer and
//!   Singularity, whose tasks share an instance instead
//!   ([`crate::start_instance`]).
//! - The container's own process is the image's `/bin/sh` waiting on its
//!   standard input (`read`), which `--interactive` keeps open while
//!   `--detach`ed: nothing but `/bin/sh`, which every task needs anyway, is
//!   asked of the image. `--init` (catatonit) is PID 1 and reaps.
//! - **Binds**: the union of every task's directory and `rw` directory
//!   (read-write) and every task's input sources (read-only), at the same
//!   paths; a source under a read-write directory or under another source
//!   gets no bind of its own, as for one task.
//! - The step's `options:` go to `run` (they configure the container).
//! - **Each task** is a `podman exec` of `/bin/sh -c WRAPPER`: the wrapper
//!   writes its PID (inside the container) to the task's PID file, ends
//!   with 143 if `<PID file>.stop` exists (the task was stopped before it
//!   started), and otherwise `exec`s `/bin/sh -e -c SCRIPT`. A process that
//!   `podman exec` starts leads a session and process group of its own, so
//!   that PID names the task's whole process group. `exec` passes the
//!   script's exit status through; 125 is podman's own failure (e.g. the
//!   container is gone). The PID file must be on a path bound read-write.
//! - **Stopping one task** ([`kill_shared_task`]): killing the `podman exec`
//!   client does not stop what it started in the container, so the caller
//!   first creates `<PID file>.stop`, then runs the killer, which sends
//!   SIGKILL to the task's process group inside; the other tasks go on.
//! - **Stopping all** ([`stop_shared`]): `rm -f --time=0` kills everything
//!   in the container and removes it (docker's `rm` has no `--time`; `-f`
//!   kills at once anyway).

use crate::error::LaunchError;
use crate::parts::{Bind, Launch, check_env, check_path, image_arg, text};
use crate::podman;
use crate::spec::ContainerLaunch;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use twinflow_core::ContainerRuntime;

/// What a container shared by several tasks binds.
#[derive(Debug, Clone, Copy)]
pub struct SharedSpec<'a> {
    /// Runtime, image, options, name (of the shared container), network,
    /// user.
    pub container: &'a ContainerLaunch<'a>,
    /// Bound read-write at the same paths: the tasks' directories and the
    /// directory of their PID files. Absolute.
    pub rw: &'a [PathBuf],
    /// Bound read-only at the same paths: the tasks' input sources.
    /// Absolute.
    pub ro: &'a [PathBuf],
}

/// One task run inside a shared container.
#[derive(Debug, Clone, Copy)]
pub struct SharedTask<'a> {
    /// The task's script, run as `/bin/sh -e -c SCRIPT`.
    pub script: &'a str,
    /// Its working directory (bound by [`SharedSpec::rw`]).
    pub workdir: &'a Path,
    /// Its environment.
    pub env: &'a [(String, String)],
    /// Where the task's PID inside the container goes (bound read-write).
    pub pid_file: &'a Path,
}

/// The script the wrapper runs: `$1` the PID file, `$2` the task's script.
const WRAPPER: &str =
    "echo $$ >\"$1\" || exit 125; [ ! -e \"$1.stop\" ] || exit 143; exec /bin/sh -e -c \"$2\"";
/// SIGKILL to the process group whose leader's PID is in `$1` (`kill -9
/// -PGID`: the form busybox, dash and bash all take).
const KILLER: &str = "read p <\"$1\" && kill -9 \"-$p\"";

/// The argument vector that starts the shared container (see the module
/// documentation); refuses what [`crate::launch`] refuses for one task and
/// a runtime that cannot share a container.
pub fn start_shared(spec: &SharedSpec<'_>) -> Result<Vec<OsString>, LaunchError> {
    let c = spec.container;
    podman_only(c.runtime)?;
    let binds = union_binds(spec.rw, spec.ro)?;
    let image = image_arg(c)?;
    let mut argv = podman::run_args(c, &binds, &["--detach".into(), "--interactive".into()])?;
    argv.extend(c.options.iter().map(OsString::from));
    argv.push(image.into());
    argv.extend(["/bin/sh", "-c", "read _"].map(OsString::from));
    Ok(argv)
}

/// How to run `task` inside the shared container `name` of `runtime`: the
/// `exec` argument vector, run from the task's directory.
pub fn exec_shared(
    runtime: ContainerRuntime,
    name: &str,
    task: &SharedTask<'_>,
) -> Result<Launch, LaunchError> {
    podman_only(runtime)?;
    check_path(task.workdir, "working directory")?;
    check_path(task.pid_file, "pid file")?;
    if task.script.contains('\0') {
        return Err(LaunchError::new("the script holds a NUL byte"));
    }
    let workdir = text(task.workdir.to_str(), "working directory", task.workdir)?;
    let pid = text(task.pid_file.to_str(), "pid file", task.pid_file)?;
    let mut argv: Vec<OsString> = vec![runtime.as_str().into(), "exec".into()];
    argv.push(format!("--workdir={workdir}").into());
    for (k, v) in task.env {
        check_env(k, v)?;
        argv.push(format!("--env={k}={v}").into());
    }
    argv.push(name.into());
    argv.extend(["/bin/sh", "-c", WRAPPER, "sh", pid, task.script].map(OsString::from));
    Ok(Launch {
        argv,
        env: Vec::new(),
        workdir: task.workdir.to_path_buf(),
        container: Some(name.to_owned()),
    })
}

/// The argument vector that kills the task whose PID file is `pid_file` in
/// the shared container `name`; create `<pid_file>.stop` before running
/// it (see the module documentation).
pub fn kill_shared_task(
    runtime: ContainerRuntime,
    name: &str,
    pid_file: &Path,
) -> Result<Vec<OsString>, LaunchError> {
    podman_only(runtime)?;
    check_path(pid_file, "pid file")?;
    let mut argv: Vec<OsString> = vec![runtime.as_str().into(), "exec".into(), name.into()];
    argv.extend(["/bin/sh", "-c", KILLER, "sh"].map(OsString::from));
    argv.push(pid_file.as_os_str().to_owned());
    Ok(argv)
}

/// The argument vector that kills and removes the shared container `name`.
pub fn stop_shared(runtime: ContainerRuntime, name: &str) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![runtime.as_str().into(), "rm".into(), "-f".into()];
    if runtime == ContainerRuntime::Podman {
        argv.push("--time=0".into());
    }
    argv.push(name.into());
    argv
}

fn podman_only(runtime: ContainerRuntime) -> Result<(), LaunchError> {
    match runtime {
        ContainerRuntime::Podman | ContainerRuntime::Docker => Ok(()),
        ContainerRuntime::Apptainer | ContainerRuntime::Singularity => Err(LaunchError::new(
            format!("{runtime} shares an instance, not a container: see start_instance"),
        )),
    }
}

/// The read-write directories, then the read-only sources not under one of
/// them or under one another, each once, in path order.
pub(crate) fn union_binds(rw: &[PathBuf], ro: &[PathBuf]) -> Result<Vec<Bind>, LaunchError> {
    for p in rw {
        check_path(p, "task directory")?;
    }
    for p in ro {
        check_path(p, "input")?;
    }
    let mut dirs: Vec<&PathBuf> = rw.iter().collect();
    dirs.sort();
    dirs.dedup();
    let mut out: Vec<Bind> = Vec::new();
    let mut last: Option<&Path> = None;
    for d in dirs {
        if last.is_some_and(|l| d.starts_with(l)) {
            continue;
        }
        out.push(Bind {
            path: d.clone(),
            read_only: false,
        });
        last = Some(d);
    }
    let writable: Vec<PathBuf> = out.iter().map(|b| b.path.clone()).collect();
    let mut sources: Vec<&PathBuf> = ro.iter().collect();
    sources.sort();
    sources.dedup();
    let mut last: Option<&Path> = None;
    for s in sources {
        if writable.iter().any(|w| s.starts_with(w)) || last.is_some_and(|l| s.starts_with(l)) {
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

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
