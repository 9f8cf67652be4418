//! A step's `container:`, checked at compile time as far as it can be
//! known without running anything: the reference parses
//! ([`twinflow_core::ImageRef`]), a runtime is named (the step's, else its
//! executor's `container_runtime`), the runtime can run that kind of image,
//! and a `.sif` file on this machine exists.
//!
//! A relative `.sif` path is taken against the workflow file's directory
//! and the plan carries it absolute. Where the step's executor runs tasks
//! on another host (Slurm or a cloud VM over SSH) the file is that host's,
//! so a relative path is refused there and an absolute one is left for the
//! executor to check when it resolves the image at submit.

use super::executors::runtime;
use crate::diag::Diags;
use crate::model::ContainerDoc;
use crate::span::{Span, Spanned};
use std::path::Path;
use twinflow_core::{BackendConfig, ContainerRuntime, ContainerSpec, ExecutorSpec, ImageRef};

/// Lowers `c`, the `container:` of a step that runs on `executor` (`None`
/// when the step's executor is itself in error).
pub(crate) fn lower(
    d: &mut Diags,
    c: &Spanned<ContainerDoc>,
    executor: Option<&ExecutorSpec>,
    workflow_dir: &Path,
) -> Option<ContainerSpec> {
    let (image, runtime_doc, options, span) = match &c.value {
        ContainerDoc::Image(i) => (i.clone(), None, Vec::new(), c.span),
        ContainerDoc::Full(f) => (
            f.image.value.clone(),
            f.runtime.as_ref().map(|r| r.value),
            f.options.clone(),
            f.image.span,
        ),
    };
    let parsed = match ImageRef::parse(&image) {
        Ok(parsed) => parsed,
        Err(e) => {
            d.at("twinflow::bad-image", span, e.to_string(), "invalid image")
                .set_help(Some(
                    "for example `docker://ghcr.io/biodt/landis:7`, `oras://ghcr.io/biodt/landis:7`, \
                     `/scratch/images/landis.sif` or `localhost/landis:7`"
                        .into(),
                ));
            return None;
        }
    };
    let step_runtime = runtime_doc.map(runtime);
    let executor = executor?;
    let Some(chosen) = step_runtime.or(executor.container_runtime) else {
        d.at(
            "twinflow::no-container-runtime",
            span,
            format!(
                "no container runtime for `{image}`: neither the step nor executor `{}` names one",
                executor.name
            ),
            "which runtime runs this image?",
        )
        .set_help(Some(format!(
            "set `container_runtime: apptainer` (or singularity, podman, docker) on executor `{}`, \
             or write `container: {{ image: {image}, runtime: podman }}`",
            executor.name
        )));
        return None;
    };
    if let Some(reason) = mismatch(&parsed, chosen) {
        d.at(
            "twinflow::image-runtime-mismatch",
            span,
            format!("{chosen} cannot run `{image}`: {reason}"),
            format!("runs under {chosen}"),
        );
        return None;
    }
    let image = match &parsed {
        ImageRef::Sif(path) => sif_path(d, span, path, executor, workflow_dir)?,
        _ => image,
    };
    Some(ContainerSpec {
        image,
        runtime: step_runtime,
        options,
    })
}

/// Why `runtime` cannot run `image`, if it cannot.
fn mismatch(image: &ImageRef, runtime: ContainerRuntime) -> Option<&'static str> {
    let apptainer = matches!(
        runtime,
        ContainerRuntime::Apptainer | ContainerRuntime::Singularity
    );
    match image {
        ImageRef::Oras(_) | ImageRef::Sif(_) if !apptainer => {
            Some("oras:// and .sif images need apptainer or singularity")
        }
        ImageRef::Local(_) if apptainer => Some(
            "localhost/ images live in podman's or docker's own store; give apptainer a .sif file or a docker:// reference",
        ),
        _ => None,
    }
}

/// The `.sif` file `path` names, absolute: checked here when `executor`
/// runs its tasks on this machine.
fn sif_path(
    d: &mut Diags,
    span: Span,
    path: &str,
    executor: &ExecutorSpec,
    workflow_dir: &Path,
) -> Option<String> {
    let remote = match &executor.backend {
        // The fetch executor runs no step of the file.
        BackendConfig::Local(_) | BackendConfig::Fetch(_) => None,
        BackendConfig::Slurm(s) => s.ssh.as_ref().map(ToString::to_string),
        BackendConfig::Cloud(c) => Some(
            c.ssh
                .as_ref()
                .map_or_else(|| "its VM".to_owned(), ToString::to_string),
        ),
    };
    let given = Path::new(path);
    if let Some(host) = remote {
        if given.is_relative() {
            d.at(
                "twinflow::relative-remote-image",
                span,
                format!(
                    "`{path}` is relative, but executor `{}` runs its tasks on {host}",
                    executor.name
                ),
                "a file on which machine?",
            )
            .set_help(Some(format!(
                "give the image's absolute path on {host}, e.g. `/scratch/images/{}`",
                given
                    .file_name()
                    .map_or_else(|| "model.sif".into(), |n| n.to_string_lossy())
            )));
            return None;
        }
        return Some(path.to_owned());
    }
    let absolute = workflow_dir.join(given);
    if !std::fs::metadata(&absolute).is_ok_and(|m| m.is_file()) {
        d.at(
            "twinflow::missing-image",
            span,
            format!(
                "no image file `{}` on this machine, which runs executor `{}`'s tasks",
                absolute.display(),
                executor.name
            ),
            "not found",
        )
        .set_help(
            given
                .is_relative()
                .then(|| "a relative .sif path is taken from the workflow file's directory".into()),
        );
        return None;
    }
    Some(absolute.to_string_lossy().into_owned())
}
