//! Containers on the VM, the executor's side: resolving a step's image
//! once on the VM at submit, and the typed container part of the task specs
//! of that step's attempts (the runner builds the command from it, see
//! [`crate::task`]).
//!
//! [`resolve`] picks the runtime (the step's `container.runtime`, else the
//! executor's `container_runtime`; neither is refused) and hands the image
//! to `twinflow-launch`'s resolver for it. Its commands (`podman image
//! inspect`, `podman pull`, `apptainer pull`, `sha256sum`, …) run on the VM
//! through [`RemoteRunner`], over the executor's own SSH connection, as
//! argument vectors each word of which is quoted for the remote shell. A
//! runtime the VM lacks (the remote shell's status 127, "not found") is a
//! clear error naming the image, the runtime and the VM. Apptainer keeps
//! the SIFs it pulls in `<workdir>/.twinflow/images` on the VM. The VM
//! user's uid and gid (`id -u`, `id -g`) decide the user inside podman.

use crate::spec::SpecContainer;
use std::ffi::OsString;
use std::sync::Arc;
use twinflow_core::{
    ContainerRuntime, ContainerSpec, ExecutorError, Job, ResolvedImage, shell_quote,
};
use twinflow_launch::{
    ApptainerResolver, CommandOutput, CommandRunner, HostUser, ImageResolver, PodmanResolver,
    container_name,
};
use twinflow_ssh::Remote;

/// The image a step's tasks run in, resolved on the VM.
#[derive(Debug, Clone)]
pub(crate) struct StepContainer {
    /// The step's `container:`.
    pub(crate) spec: ContainerSpec,
    /// What resolution found.
    pub(crate) resolved: ResolvedImage,
    /// The VM user.
    pub(crate) user: HostUser,
}

impl StepContainer {
    /// The container part of the spec of `job`'s attempt.
    pub(crate) fn for_job(&self, job: &Job, run_id: &str) -> SpecContainer {
        SpecContainer {
            runtime: self.resolved.runtime.as_str().to_owned(),
            image: self.spec.image.clone(),
            digest: self.resolved.digest.clone(),
            run_ref: self.resolved.run_ref.clone(),
            options: self.spec.options.clone(),
            name: container_name(run_id, job.key.task, job.key.attempt),
            uid: self.user.uid,
            gid: self.user.gid,
        }
    }
}

/// The containers of an executor's steps, by step name.
pub(crate) type Containers = twinflow_launch::ByStep<StepContainer>;

/// A [`CommandRunner`] on the VM over the executor's SSH connection:
/// blocks on its async commands, so it must run on a blocking thread
/// (`spawn_blocking`).
#[derive(Debug, Clone)]
pub(crate) struct RemoteRunner {
    remote: Arc<dyn Remote>,
    host: String,
    rt: tokio::runtime::Handle,
}

impl RemoteRunner {
    pub(crate) fn new(remote: Arc<dyn Remote>, rt: tokio::runtime::Handle) -> Self {
        let host = remote.describe();
        Self { remote, host, rt }
    }
}

/// `argv` as one line for the remote shell, every word quoted.
pub(crate) fn command_line(argv: &[OsString]) -> std::io::Result<String> {
    let words = argv
        .iter()
        .map(|a| {
            a.to_str().map(shell_quote).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("the argument {a:?} is not valid utf-8"),
                )
            })
        })
        .collect::<Result<Vec<String>, _>>()?;
    Ok(words.join(" "))
}

impl CommandRunner for RemoteRunner {
    fn host(&self) -> &str {
        &self.host
    }

    fn run(&self, argv: &[OsString]) -> std::io::Result<CommandOutput> {
        let line = command_line(argv)?;
        let out = self
            .rt
            .block_on(self.remote.exec(&line, None))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let stderr = out.stderr_lossy();
        // The remote shell says 127 for a program it cannot find.
        if out.status == 127 && stderr.contains("not found") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} on {}", stderr.trim(), self.host),
            ));
        }
        Ok(CommandOutput {
            status: Some(out.status),
            stdout: out.stdout_lossy(),
            stderr,
        })
    }
}

/// Resolves `container` on the VM behind `remote`, for the executor whose
/// default runtime is `default_runtime` and whose absolute working
/// directory there is `root`.
pub(crate) async fn resolve(
    remote: Arc<dyn Remote>,
    root: &str,
    default_runtime: Option<ContainerRuntime>,
    container: &ContainerSpec,
) -> Result<StepContainer, ExecutorError> {
    let image = container
        .image_ref()
        .map_err(|e| ExecutorError::new(format!("cannot run it: {e}")))?;
    let runtime = container.runtime.or(default_runtime).ok_or_else(|| {
        ExecutorError::new(
            "names no container runtime for it: set the step's `container: { runtime: … }` \
             or the executor's `container_runtime`",
        )
    })?;
    let runner = RemoteRunner::new(remote, tokio::runtime::Handle::current());
    let cache = format!("{}/.twinflow/images", root.trim_end_matches('/'));
    let spec = container.clone();
    tokio::task::spawn_blocking(move || {
        let user = HostUser {
            uid: id_of(&runner, "-u")?,
            gid: id_of(&runner, "-g")?,
        };
        let resolved = match runtime {
            ContainerRuntime::Podman | ContainerRuntime::Docker => {
                PodmanResolver::new(runtime, runner).resolve(&image)
            }
            ContainerRuntime::Apptainer | ContainerRuntime::Singularity => {
                ApptainerResolver::new(runtime, cache, runner).resolve(&image)
            }
        }
        .map_err(|e| ExecutorError {
            message: format!("cannot run it: {e}"),
            transient: e.transient,
        })?;
        Ok(StepContainer {
            spec,
            resolved,
            user,
        })
    })
    .await
    .map_err(|e| ExecutorError::new(format!("cannot run it: image resolution failed: {e}")))?
}

fn id_of(runner: &RemoteRunner, flag: &str) -> Result<u32, ExecutorError> {
    let argv = [OsString::from("id"), OsString::from(flag)];
    let out = runner.run(&argv).map_err(|e| {
        ExecutorError::new(format!(
            "cannot run it: failed to run `id {flag}` on {}: {e}",
            runner.host
        ))
    })?;
    if out.status != Some(0) {
        return Err(ExecutorError::new(format!(
            "cannot run it: `id {flag}` failed on {}: {}",
            runner.host,
            out.stderr.trim()
        )));
    }
    out.stdout.trim().parse().map_err(|_| {
        ExecutorError::new(format!(
            "cannot run it: `id {flag}` on {} printed {:?}",
            runner.host, out.stdout
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_vectors_are_quoted_word_by_word_for_the_remote_shell() {
        let argv: Vec<OsString> = ["podman", "image", "inspect", "--format={{.Id}} x", "a'b"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            command_line(&argv).ok().as_deref(),
            Some("podman image inspect '--format={{.Id}} x' 'a'\\''b'")
        );
    }
}
