//! What one attempt runs beyond `/bin/sh -e -c SCRIPT` on the host: the
//! container its step runs in, the GPUs it asks for, the executor's
//! prologue and its MPI ranks under `mpirun` ([`Extra`], carried to the
//! supervisor in its start request),
//! and how the supervisor turns that into the argument vector it spawns
//! ([`command`]: `twinflow_launch::launch` with the devices it handed out)
//! and stops a container by name ([`stop`]).
//!
//! The container's processes are not the supervisor's descendants (podman's
//! `conmon` runs them), so killing the attempt's process group does not
//! reach them: a podman or docker attempt is stopped with `RUNTIME kill
//! --signal=TERM NAME` on SIGTERM and `RUNTIME rm -f NAME` on SIGKILL, and
//! `rm -f` once more when it has ended, whatever ended it. Apptainer's
//! processes are the attempt's own and go with its group.

use crate::wire::{Launch, Reader, bad, put_bytes, put_u32};
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;
use twinflow_core::{ContainerRuntime, GpuVendor, ImageRef, ResolvedImage};
use twinflow_launch::{ContainerLaunch, GpuBinding, HostUser, LaunchSpec, Network};

/// An attempt's prologue, GPUs and container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Extra {
    /// The executor's `prologue:`, run on the host in the shell that then
    /// execs the attempt's command.
    pub(crate) prologue: Option<String>,
    /// The GPUs it asks for.
    pub(crate) gpus: Gpus,
    /// The sources of its staged inputs, bound read-only in a container.
    pub(crate) inputs: Vec<PathBuf>,
    /// The container it runs in.
    pub(crate) container: Option<Container>,
    /// Its ranks under `mpirun -np N` (0: no `mpirun`): the command (the
    /// shell, or the container runtime running it) runs once per rank.
    pub(crate) mpirun: u32,
}

/// GPUs of one attempt: `count` of the executor's `devices`, handed out by
/// the supervisor when it starts the attempt, never to two at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Gpus {
    pub(crate) count: u32,
    pub(crate) devices: Vec<u32>,
    pub(crate) vendor: GpuVendor,
}

/// The container of one attempt, its image resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Container {
    pub(crate) runtime: ContainerRuntime,
    /// The image as the step names it.
    pub(crate) image: String,
    pub(crate) digest: String,
    pub(crate) run_ref: String,
    pub(crate) options: Vec<String>,
    /// `twinflow_launch::container_name` of the attempt.
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Extra {
    /// Nothing beyond the script: sent as a plain (kind 1) start request.
    pub(crate) fn is_plain(&self) -> bool {
        self.prologue.is_none()
            && self.gpus.count == 0
            && self.container.is_none()
            && self.mpirun == 0
    }

    /// The start request's kind: 1 plain, 4 with a container, GPUs or a
    /// prologue, 5 with `mpirun` ranks as well (kind 4's fields, then the
    /// ranks), so a supervisor that predates ranks refuses such a request
    /// rather than run the command once.
    pub(crate) fn kind(&self) -> u8 {
        if self.mpirun > 0 {
            5
        } else if self.is_plain() {
            1
        } else {
            4
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match &self.prologue {
            Some(p) => {
                out.push(1);
                put_bytes(out, p.as_bytes());
            }
            None => out.push(0),
        }
        put_u32(out, self.gpus.count);
        out.push(match self.gpus.vendor {
            GpuVendor::Nvidia => 0,
            GpuVendor::Amd => 1,
        });
        put_u32(out, len(self.gpus.devices.len()));
        for d in &self.gpus.devices {
            put_u32(out, *d);
        }
        put_u32(out, len(self.inputs.len()));
        for i in &self.inputs {
            put_bytes(out, i.as_os_str().as_bytes());
        }
        self.encode_container(out);
        if self.mpirun > 0 {
            // Kind 5: its ranks follow kind 4's fields.
            put_u32(out, self.mpirun);
        }
    }

    fn encode_container(&self, out: &mut Vec<u8>) {
        let Some(c) = &self.container else {
            out.push(0);
            return;
        };
        out.push(match c.runtime {
            ContainerRuntime::Podman => 1,
            ContainerRuntime::Docker => 2,
            ContainerRuntime::Apptainer => 3,
            ContainerRuntime::Singularity => 4,
        });
        for text in [&c.image, &c.digest, &c.run_ref] {
            put_bytes(out, text.as_bytes());
        }
        put_u32(out, len(c.options.len()));
        for o in &c.options {
            put_bytes(out, o.as_bytes());
        }
        put_bytes(out, c.name.as_bytes());
        put_u32(out, c.uid);
        put_u32(out, c.gid);
    }

    /// The fields of a request of `kind` (4 or 5).
    pub(crate) fn decode(r: &mut Reader<'_>, kind: u8) -> io::Result<Self> {
        let prologue = match r.u8()? {
            0 => None,
            _ => Some(r.string()?),
        };
        let count = r.u32()?;
        let vendor = match r.u8()? {
            0 => GpuVendor::Nvidia,
            _ => GpuVendor::Amd,
        };
        let devices = (0..r.u32()?).map(|_| r.u32()).collect::<io::Result<_>>()?;
        let inputs = (0..r.u32()?).map(|_| r.path()).collect::<io::Result<_>>()?;
        let runtime = match r.u8()? {
            0 => None,
            1 => Some(ContainerRuntime::Podman),
            2 => Some(ContainerRuntime::Docker),
            3 => Some(ContainerRuntime::Apptainer),
            4 => Some(ContainerRuntime::Singularity),
            other => return Err(bad(&format!("unknown container runtime {other}"))),
        };
        let container = match runtime {
            None => None,
            Some(runtime) => Some(Container {
                runtime,
                image: r.string()?,
                digest: r.string()?,
                run_ref: r.string()?,
                options: (0..r.u32()?)
                    .map(|_| r.string())
                    .collect::<io::Result<_>>()?,
                name: r.string()?,
                uid: r.u32()?,
                gid: r.u32()?,
            }),
        };
        Ok(Self {
            prologue,
            gpus: Gpus {
                count,
                devices,
                vendor,
            },
            inputs,
            container,
            mpirun: if kind == 5 { r.u32()? } else { 0 },
        })
    }
}

fn len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What the supervisor spawns for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    /// The program (looked up in `PATH`) and its arguments.
    pub(crate) argv: Vec<OsString>,
    /// Added to the supervisor's environment, a later entry winning.
    pub(crate) env: Vec<(String, String)>,
    /// The podman or docker container to stop by name: (program, name).
    pub(crate) container: Option<(String, String)>,
}

/// The shell that runs a prologue before it execs the attempt's command
/// (given as its positional parameters, never pasted into the text): under
/// `set -e`, a failing line ends it with a message on the task's stderr.
const PROLOGUE_HEAD: &str = "trap 's=$?; echo \"twinflow: the executor prologue failed (status \
     $s); the task did not run\" >&2; exit $(( s ? s : 1 ))' EXIT\nset -e\n";
const PROLOGUE_TAIL: &str = "\ntrap - EXIT\nexec \"$@\"\n";

/// The command of `launch` holding the GPUs `devices` (host ids, as many as
/// it asked for); why it cannot run otherwise.
pub(crate) fn command(launch: &Launch, devices: &[u32]) -> Result<Command, String> {
    let extra = &launch.extra;
    let gpus = (!devices.is_empty()).then(|| GpuBinding {
        vendor: extra.gpus.vendor,
        devices: twinflow_launch::GpuDevices::Ids(devices.to_vec()),
    });
    let network = Network::Host;
    let parts = match &extra.container {
        Some(c) => {
            let image = ImageRef::parse(&c.image).map_err(|e| e.to_string())?;
            Some((
                ResolvedImage {
                    image: image.clone(),
                    runtime: c.runtime,
                    digest: c.digest.clone(),
                    run_ref: c.run_ref.clone(),
                },
                image,
            ))
        }
        None => None,
    };
    let container = match (&extra.container, &parts) {
        (Some(c), Some((resolved, image))) => Some(ContainerLaunch {
            runtime: c.runtime,
            image,
            resolved: Some(resolved),
            options: &c.options,
            name: &c.name,
            network: &network,
            user: HostUser {
                uid: c.uid,
                gid: c.gid,
            },
        }),
        _ => None,
    };
    let built = twinflow_launch::launch(&LaunchSpec {
        script: &launch.script,
        workdir: &launch.workdir,
        inputs: &extra.inputs,
        env: &launch.env,
        gpus: gpus.as_ref(),
        container: container.as_ref(),
    })
    .map_err(|e| match &extra.container {
        Some(c) => format!("cannot run it in container `{}`: {e}", c.image),
        None => e.to_string(),
    })?;
    let env = if extra.container.is_some() {
        // The runtime's process carries the task's variables too, so that a
        // restarted executor finds it by its run's id.
        merged(&launch.env, &built.env)
    } else {
        merged(&[], &built.env)
    };
    let (mut argv, env) = if extra.mpirun > 0 {
        // Once per rank, started by `mpirun` on the host: the prologue (a
        // `module load`) runs once before it, a container once per rank.
        let mut argv: Vec<OsString> =
            vec![MPIRUN.into(), "-np".into(), extra.mpirun.to_string().into()];
        argv.extend(built.argv);
        (argv, merged(&mpirun_env(), &env))
    } else {
        (built.argv, env)
    };
    if let Some(prologue) = &extra.prologue {
        let script = format!("{PROLOGUE_HEAD}{prologue}{PROLOGUE_TAIL}");
        let mut wrapped: Vec<OsString> = vec![
            "/bin/sh".into(),
            "-c".into(),
            script.into(),
            "twinflow-prologue".into(),
        ];
        wrapped.append(&mut argv);
        argv = wrapped;
    }
    let container = extra
        .container
        .as_ref()
        .zip(built.container)
        .map(|(c, name)| (c.runtime.as_str().to_owned(), name));
    Ok(Command {
        argv,
        env,
        container,
    })
}

/// The program that starts an attempt's ranks (looked up in `PATH`).
pub(crate) const MPIRUN: &str = "mpirun";

/// What `mpirun` gets in its environment before the task's own (which
/// wins): Open MPI's settings, as variables that MPICH ignores. Twinflow's
/// slots, not Open MPI's count of this machine's cores, decide how many
/// ranks run here, so ranks beyond the cores are allowed
/// (`rmaps_base_oversubscribe`), and ranks are not bound to cores
/// (`hwloc_base_binding_policy=none`): two attempts' `mpirun`s know nothing
/// of each other and would both bind their ranks to the first cores. As
/// root, Open MPI refuses to run without `OMPI_ALLOW_RUN_AS_ROOT` and its
/// confirmation.
pub(crate) fn mpirun_env() -> Vec<(String, String)> {
    let mut env = vec![
        ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
        ("OMPI_MCA_hwloc_base_binding_policy", "none"),
    ];
    // This process's effective user: the owner of its `/proc/self`.
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if root {
        env.push(("OMPI_ALLOW_RUN_AS_ROOT", "1"));
        env.push(("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"));
    }
    env.into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `first` then `then`, each name once (its last value).
fn merged(first: &[(String, String)], then: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(first.len() + then.len());
    for (k, v) in first.iter().chain(then) {
        out.retain(|(name, _)| name != k);
        out.push((k.clone(), v.clone()));
    }
    out
}

/// How to hand `signal` to the container `name` of `runtime` (`podman`,
/// `docker`): `kill --signal=NAME`, or for SIGKILL `rm -f` (which also
/// removes it).
pub(crate) fn stop_argv(runtime: &str, name: &str, signal: Signal) -> Vec<OsString> {
    let words: Vec<String> = if signal == Signal::SIGKILL {
        let mut w = vec![runtime.to_owned(), "rm".to_owned(), "-f".to_owned()];
        if runtime == "podman" {
            w.push("--time=0".to_owned());
        }
        w.push(name.to_owned());
        w
    } else {
        let sig = signal.as_str().trim_start_matches("SIG");
        vec![
            runtime.to_owned(),
            "kill".to_owned(),
            format!("--signal={sig}"),
            name.to_owned(),
        ]
    };
    words.into_iter().map(OsString::from).collect()
}

/// Runs [`stop_argv`] to its end (at most a minute); a container that is
/// already gone is not an error, and nothing is reported.
pub(crate) async fn stop(runtime: &str, name: &str, signal: Signal) {
    let argv = stop_argv(runtime, name, signal);
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    match child {
        Ok(mut child) => {
            let _ = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
        }
        Err(e) => tracing::warn!("failed to run {runtime} to stop container {name}: {e}"),
    }
}

#[cfg(test)]
#[path = "attempt_tests.rs"]
mod tests;
