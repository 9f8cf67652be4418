//! A packed job whose members all run in the same image starts one
//! container for them: podman and docker one container, whose members run
//! through `podman exec` ([`twinflow_launch::start_shared`] and friends);
//! Apptainer and Singularity one instance, whose members run through
//! `apptainer exec instance://` ([`twinflow_launch::start_instance`] and
//! friends). Each member keeps its own task directory, environment, logs
//! and exit status.
//!
//! The pack's batch script (after the prologue, if any):
//!
//! ```text
//! mkdir -p -- PACKDIR && rm -f -- PACKDIR/error
//! <checks: runtime on PATH, every bind source exists, (Apptainer) the SIF> (crate::preflight)
//! podman run --detach … --name=tf-<run>-<first task>-<attempt>-pack IMAGE /bin/sh -c 'read _'
//!   | apptainer instance start --no-eval --bind=… [--nv|--rocm] OPTIONS… SIF tf-<run>-<first task>-<attempt>-pack
//!   (on failure: "twinflow: cannot run image … on host …: <runtime's message>" >PACKDIR/error)
//! trap 'podman rm -f --time=0 NAME | apptainer instance stop --force NAME …; exit 143' TERM INT HUP
//! TWINFLOW worker MANIFEST &
//! wait $!; podman rm -f --time=0 NAME | apptainer instance stop --force NAME; exit with the worker's status
//! ```
//!
//! `PACKDIR` is `<first member's log>.pack.d`, beside the tasks' logs: it
//! holds the error file and, under podman (bound read-write), each
//! member's PID file (`<task>.<attempt>.pid`). The container binds every
//! member's task directory (read-write) and input sources (read-only) at
//! their paths.
//!
//! A member's script (run by the worker on the host, as without a
//! container) reports `PACKDIR/error` as its own failure (status 125) when
//! the container did not start. Otherwise, under podman and docker, it
//! runs `podman exec` in the background, trapping SIGTERM, SIGINT and
//! SIGHUP: the worker's cancel of that member (its `.cancel` marker: the
//! executor's cancel or the task's timeout) creates `<pid file>.stop` and
//! kills the member's process group inside the container (SIGKILL), then
//! exits 143, while the other members go on. Under Apptainer it runs
//! `apptainer exec … instance://NAME` in the foreground: what that starts
//! is a descendant of it on the host, in the member's process group and
//! the job's cgroup, so the worker's signals to the group stop that member
//! alone, as for a member with a container of its own. `scancel` or the
//! job's time limit reaches the pack script's trap, which removes the
//! container or stops the instance: neither outlives the job.
//!
//! The worker itself stays on the host: it is a host binary (dynamically
//! linked against the host's C library), which an image need not be able
//! to run (a busybox image has no C library at all).
//!
//! Packs whose members would run in different containers keep one
//! container per member (a pack holds the tasks of one step, so they share
//! the step's image; the check is there anyway), and so do podman and
//! docker packs whose tasks ask for GPUs: the shared container would not
//! get the job's devices, a member's own container does. An Apptainer
//! instance gets `--nv`/`--rocm` and each member the job's device
//! variables as the worker narrowed them ([`crate::pack_gpus`]).

use crate::containers::{Containers, StepContainer};
use crate::group::Member;
use crate::preflight;
use crate::script::path_text;
use crate::script_error::ScriptError;
use std::path::PathBuf;
use std::sync::Arc;
use twinflow_core::{ContainerRuntime, Job, shell_quote, shell_words};
use twinflow_launch::{
    ContainerLaunch, GpuBinding, GpuDevices, InstanceTask, Network, SharedSpec, SharedTask,
    container_name, exec_instance, exec_shared, kill_shared_task, start_instance, start_shared,
    stop_instance, stop_shared,
};

/// The network of a shared container: the host's.
static HOST: Network = Network::Host;

/// The container a pack's members share.
#[derive(Debug, Clone)]
pub struct PackContainer {
    /// The step's container.
    pub container: Arc<StepContainer>,
    /// The shared container's name.
    pub name: String,
    /// The pack's directory of PID files and the error file.
    pub dir: PathBuf,
}

impl PackContainer {
    /// The container `members` share, if they all run in one container
    /// (podman, docker: without GPUs) or one instance (apptainer,
    /// singularity); `None` otherwise (one container per member, or none).
    pub(crate) fn of(members: &[Member<'_>], containers: &Containers) -> Option<Self> {
        let first = members.first()?;
        let container = containers.of(&first.job.step)?;
        // Podman and docker share no GPUs: a shared container would get
        // none of the devices one of its own gets.
        let podman = matches!(
            container.resolved.runtime,
            ContainerRuntime::Podman | ContainerRuntime::Docker
        );
        if podman && members.iter().any(|m| m.job.resources.gpus > 0) {
            return None;
        }
        let same = |c: &StepContainer| {
            c.resolved.runtime == container.resolved.runtime
                && c.resolved.run_ref == container.resolved.run_ref
                && c.spec.options == container.spec.options
                && c.user == container.user
                && c.gpu_vendor == container.gpu_vendor
        };
        let all = members[1..]
            .iter()
            .all(|m| containers.of(&m.job.step).is_some_and(|c| same(&c)));
        all.then(|| Self::new(first.job, container))
    }

    /// The container of a pack whose first member is `first`.
    pub fn new(first: &Job, container: Arc<StepContainer>) -> Self {
        let run_id = first
            .env
            .iter()
            .find(|(k, _)| k == "TWINFLOW_RUN_ID")
            .map_or("run", |(_, v)| v.as_str());
        Self {
            container,
            name: format!(
                "{}-pack",
                container_name(run_id, first.key.task, first.key.attempt)
            ),
            dir: first.stdout.with_extension("pack.d"),
        }
    }

    /// An Apptainer/Singularity instance rather than a podman/docker
    /// container.
    fn is_instance(&self) -> bool {
        matches!(
            self.container.resolved.runtime,
            ContainerRuntime::Apptainer | ContainerRuntime::Singularity
        )
    }

    /// The shared container as `twinflow_launch` takes it.
    fn launch(&self) -> ContainerLaunch<'_> {
        let c = &self.container;
        ContainerLaunch {
            runtime: c.resolved.runtime,
            image: &c.resolved.image,
            resolved: Some(&c.resolved),
            options: &c.spec.options,
            name: &self.name,
            network: &HOST,
            user: c.user,
        }
    }

    /// The devices Slurm allocated to the job, of the cluster's vendor.
    fn gpus(&self) -> GpuBinding {
        GpuBinding {
            vendor: self.container.gpu_vendor,
            devices: GpuDevices::Allocated,
        }
    }

    fn error_file(&self) -> PathBuf {
        self.dir.join("error")
    }

    fn pid_file(&self, job: &Job) -> PathBuf {
        self.dir
            .join(format!("{}.{}.pid", job.key.task, job.key.attempt))
    }

    /// The pack script's lines that start the container, run `worker`
    /// (the line that runs `twinflow worker`) and remove the container
    /// (see the module documentation).
    pub(crate) fn pack_lines(
        &self,
        members: &[Member<'_>],
        worker: &str,
    ) -> Result<Vec<String>, ScriptError> {
        let c = &self.container;
        let refuse = |e: twinflow_launch::LaunchError| {
            ScriptError::new(format!(
                "a pack of step `{}` cannot run in container `{}`: {e}",
                members.first().map_or("", |m| m.job.step.as_str()),
                c.spec.image
            ))
        };
        let mut rw = Vec::new();
        let mut ro = Vec::new();
        for m in members {
            rw.push(m.job.workdir.clone());
            ro.extend(m.job.inputs.iter().map(|i| i.source.clone()));
        }
        let mut sources: Vec<&str> = Vec::new();
        for p in rw.iter().chain(&ro) {
            sources.push(path_text(p, "bind source")?);
        }
        let launch = self.launch();
        let runtime = c.resolved.runtime;
        let (start, stop) = if self.is_instance() {
            let gpus = members
                .iter()
                .any(|m| m.job.resources.gpus > 0)
                .then(|| self.gpus());
            let start = start_instance(
                &SharedSpec {
                    container: &launch,
                    rw: &rw,
                    ro: &ro,
                },
                gpus.as_ref(),
            );
            (start, stop_instance(runtime, &self.name))
        } else {
            // The members' PID files.
            let mut rw = rw.clone();
            rw.push(self.dir.clone());
            let start = start_shared(&SharedSpec {
                container: &launch,
                rw: &rw,
                ro: &ro,
            });
            (start, Ok(stop_shared(runtime, &self.name)))
        };
        let start = start.map_err(refuse)?;
        let stop = words(&stop.map_err(refuse)?)?;
        let dir = shell_quote(path_text(&self.dir, "pack directory")?);
        let error = self.error_file();
        let error = shell_quote(path_text(&error, "pack error file")?);
        let out = format!("{dir}/start.err");
        let run = vec![
            format!("if ! {} >/dev/null 2>{out}; then", words(&start)?),
            format!("{{ {}; cat {out}; }} >{error}", preflight::printf(c, "")),
            "fi".to_owned(),
        ];
        let mut lines = vec![format!("mkdir -p -- {dir} && rm -f -- {error}")];
        lines.extend(preflight::guarded(c, &sources, run, &format!(">{error}")));
        lines.push(format!(
            "trap '{} >/dev/null 2>&1; exit 143' TERM INT HUP",
            stop.replace('\'', "'\\''")
        ));
        lines.push(format!("{worker} &"));
        lines.push("wait $!".to_owned());
        lines.push("status=$?".to_owned());
        lines.push(format!("{stop} >/dev/null 2>&1"));
        lines.push("exit \"$status\"".to_owned());
        Ok(lines)
    }

    /// The lines of a member's script that run `job` in the shared
    /// container, leaving its status in `$?` (see the module
    /// documentation).
    pub(crate) fn member_lines(&self, job: &Job) -> Result<Vec<String>, ScriptError> {
        let c = &self.container;
        let refuse = |e: twinflow_launch::LaunchError| {
            ScriptError::new(format!(
                "`{}` cannot run in container `{}`: {e}",
                job.name, c.spec.image
            ))
        };
        let error = self.error_file();
        let error = shell_quote(path_text(&error, "pack error file")?);
        let mut lines = vec![
            format!("if [ -e {error} ]; then"),
            format!("cat {error} >&2"),
            "(exit 125)".to_owned(),
            "else".to_owned(),
        ];
        if self.is_instance() {
            // In the foreground: the worker's signal to the member's
            // process group reaches `exec` and the task inside.
            let gpus = (job.resources.gpus > 0).then(|| self.gpus());
            let launch = exec_instance(
                &self.launch(),
                &InstanceTask {
                    script: &job.script,
                    workdir: &job.workdir,
                    env: &job.env,
                    gpus: gpus.as_ref(),
                },
            )
            .and_then(|l| l.script_lines())
            .map_err(refuse)?;
            lines.extend(launch);
            lines.push("fi".to_owned());
            return Ok(lines);
        }
        let runtime = c.resolved.runtime;
        let pid = self.pid_file(job);
        let launch = exec_shared(
            runtime,
            &self.name,
            &SharedTask {
                script: &job.script,
                workdir: &job.workdir,
                env: &job.env,
                pid_file: &pid,
            },
        )
        .map_err(refuse)?;
        let run = launch.script_lines().map_err(refuse)?;
        let kill = words(&kill_shared_task(runtime, &self.name, &pid).map_err(refuse)?)?;
        let pid = path_text(&pid, "pid file")?;
        let stop = shell_quote(&format!("{pid}.stop"));
        lines.push(format!(
            "trap '{} >/dev/null 2>&1; exit 143' TERM INT HUP",
            format!(": >{stop}; {kill}").replace('\'', "'\\''")
        ));
        let last = run.len().saturating_sub(1);
        for (i, line) in run.into_iter().enumerate() {
            lines.push(if i == last { format!("{line} &") } else { line });
        }
        lines.push("wait $!".to_owned());
        lines.push("fi".to_owned());
        Ok(lines)
    }
}

/// An argument vector as quoted shell words.
fn words(argv: &[std::ffi::OsString]) -> Result<String, ScriptError> {
    let words = argv
        .iter()
        .map(|w| {
            w.to_str()
                .ok_or_else(|| ScriptError::new(format!("the argument {w:?} is not valid utf-8")))
        })
        .collect::<Result<Vec<&str>, _>>()?;
    Ok(shell_words(words))
}

#[cfg(test)]
#[path = "pack_instance_tests.rs"]
mod tests;
