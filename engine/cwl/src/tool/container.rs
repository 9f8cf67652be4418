//! `DockerRequirement`: the tool's command run inside its image by the
//! container support every twinflow executor uses ([`twinflow_launch`]):
//! the working directory bound at the same path, the inputs bound
//! read-only, no network unless `NetworkAccess` allows it. The runtime is
//! the first of podman, docker, apptainer, singularity on `PATH`
//! (`TWINFLOW_CWL_CONTAINER_RUNTIME` picks one). A `DockerRequirement`
//! hint is not applied: the tool runs on the host.

use crate::error::{CwlError, Result};
use crate::model::Process;
use serde_json::Value;
use std::path::{Path, PathBuf};
use twinflow_core::{ContainerRuntime, ImageRef};
use twinflow_launch::{ContainerLaunch, HostUser, LaunchSpec, Network};

/// The image and runtime a tool runs in, if it requires one.
#[derive(Debug, Clone)]
pub struct Container {
    /// The image.
    pub image: ImageRef,
    /// The runtime.
    pub runtime: ContainerRuntime,
    /// Whether the tool may use the network.
    pub network: bool,
}

/// The container `tool` requires, or `None` to run on the host.
pub fn required(tool: &Process) -> Result<Option<Container>> {
    let Some(req) = tool.find("DockerRequirement").filter(|r| !r.hint) else {
        return Ok(None);
    };
    let v = &req.value;
    for unsupported in [
        "dockerLoad",
        "dockerFile",
        "dockerImport",
        "dockerOutputDirectory",
    ] {
        if v.get(unsupported).is_some() {
            return Err(CwlError::unsupported(format!(
                "DockerRequirement.{unsupported}"
            )));
        }
    }
    let pull = v
        .get("dockerPull")
        .or_else(|| v.get("dockerImageId"))
        .and_then(Value::as_str)
        .ok_or_else(|| CwlError::unsupported("DockerRequirement without dockerPull"))?;
    let text = if pull.contains("://") || pull.starts_with("localhost/") {
        pull.to_owned()
    } else {
        format!("docker://{pull}")
    };
    let image =
        ImageRef::parse(&text).map_err(|e| CwlError::invalid(format!("dockerPull {pull}: {e}")))?;
    let network = tool
        .find("NetworkAccess")
        .and_then(|r| r.value.get("networkAccess"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Some(Container {
        image,
        runtime: runtime()?,
        network,
    }))
}

fn runtime() -> Result<ContainerRuntime> {
    let all = [
        ("podman", ContainerRuntime::Podman),
        ("docker", ContainerRuntime::Docker),
        ("apptainer", ContainerRuntime::Apptainer),
        ("singularity", ContainerRuntime::Singularity),
    ];
    if let Ok(wanted) = std::env::var("TWINFLOW_CWL_CONTAINER_RUNTIME") {
        return all
            .iter()
            .find(|(n, _)| *n == wanted)
            .map(|(_, r)| *r)
            .ok_or_else(|| CwlError::invalid(format!("TWINFLOW_CWL_CONTAINER_RUNTIME={wanted}: not one of podman, docker, apptainer, singularity")));
    }
    all.iter()
        .find(|(n, _)| on_path(n))
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            CwlError::unsupported(
                "DockerRequirement: no podman, docker, apptainer or singularity on PATH",
            )
        })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// What to start for `script` (run by the image's `/bin/sh`) in
/// `container`, with `workdir` bound read-write and `inputs` read-only.
pub fn launch(
    container: &Container,
    script: &str,
    workdir: &Path,
    inputs: &[PathBuf],
    env: &[(String, String)],
) -> Result<twinflow_launch::Launch> {
    let name = format!(
        "tf-cwl-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let network = if container.network {
        Network::Host
    } else {
        Network::None
    };
    let user = HostUser {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    };
    let spec_container = ContainerLaunch {
        runtime: container.runtime,
        image: &container.image,
        resolved: None,
        options: &[],
        name: &name,
        network: &network,
        user,
    };
    let spec = LaunchSpec {
        script,
        workdir,
        inputs,
        env,
        gpus: None,
        container: Some(&spec_container),
    };
    twinflow_launch::launch(&spec)
        .map_err(|e| CwlError::failed(format!("cannot run in {}: {e}", container.image_text())))
}

impl Container {
    /// The image as written.
    pub fn image_text(&self) -> String {
        self.image.to_string()
    }

    /// The runtime's command name.
    pub fn program(&self) -> &'static str {
        match self.runtime {
            ContainerRuntime::Podman => "podman",
            ContainerRuntime::Docker => "docker",
            ContainerRuntime::Apptainer => "apptainer",
            ContainerRuntime::Singularity => "singularity",
        }
    }
}
