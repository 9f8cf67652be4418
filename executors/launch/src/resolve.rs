//! Image resolution: finding, on the host that will run the tasks, the
//! exact image a reference names, fetching it once, and giving back its
//! digest (for the cache key and provenance) and the pinned form the launch
//! names ([`ResolvedImage`]).
//!
//! This is the one part of the crate that does I/O, and only through a
//! [`CommandRunner`]: every command is an argument vector, run on this
//! machine by [`LocalRunner`] or elsewhere (over SSH) by a runner the
//! executor provides. The commands themselves are built by pure functions,
//! snapshot-tested.
//!
//! | runtime | image | how |
//! | --- | --- | --- |
//! | podman, docker | `docker://…`, bare | `image inspect`; if absent `pull --quiet` once, then `inspect` again |
//! | podman, docker | `localhost/…` | `image inspect` only: local images are never pulled |
//! | apptainer, singularity | `.sif` path | `sha256sum` of the file; the file is run where it is |
//! | apptainer, singularity | `docker://…`, `oras://…` pinned by `@sha256:` | `<cache>/sha256-<hex>.sif` if present, else `pull` into it: once per site |
//! | apptainer, singularity | `docker://…`, `oras://…` by tag | `pull` to a temporary file, `sha256sum`, renamed to `<cache>/sif-sha256-<hex>.sif` |
//!
//! Podman and docker runs name the image by its id (`--pull=never`), so a
//! tag moved after resolution changes nothing; the digest recorded is the
//! repository digest matching the reference, else the image id. A pinned
//! reference whose digest is not among the image's is refused (digest
//! mismatch).

use crate::error::ResolveError;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::Path;
pub use twinflow_core::ResolvedImage;
use twinflow_core::{ContainerRuntime, ImageRef, OciRef};

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit status; `None` when a signal ended it.
    pub status: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// Runs argument vectors on one host.
pub trait CommandRunner: Send + Sync + fmt::Debug {
    /// The host's name, for messages.
    fn host(&self) -> &str;
    /// Runs `argv` (`argv[0]` looked up in `PATH`) to its end, stdin empty.
    /// `Err` only when it could not be started (`NotFound`: no such program).
    fn run(&self, argv: &[OsString]) -> io::Result<CommandOutput>;
}

/// [`CommandRunner`] on this machine (`std::process::Command`).
#[derive(Debug, Clone)]
pub struct LocalRunner {
    host: String,
}

impl LocalRunner {
    /// A runner named by this machine's host name.
    pub fn new() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        Self { host }
    }
}

impl Default for LocalRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandRunner for LocalRunner {
    fn host(&self) -> &str {
        &self.host
    }

    fn run(&self, argv: &[OsString]) -> io::Result<CommandOutput> {
        let Some((program, args)) = argv.split_first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
        };
        let out = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()?;
        Ok(CommandOutput {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Resolves image references for one runtime on one host. Callers resolve
/// each image once per run and executor and reuse the result for every task.
pub trait ImageResolver: Send + Sync + fmt::Debug {
    /// Finds (fetching if needed) the image `image` names.
    fn resolve(&self, image: &ImageRef) -> Result<ResolvedImage, ResolveError>;
}

/// Podman or docker.
#[derive(Debug, Clone)]
pub struct PodmanResolver<R> {
    runtime: ContainerRuntime,
    runner: R,
}

impl<R: CommandRunner> PodmanResolver<R> {
    /// A resolver for `runtime` (podman or docker) on the runner's host.
    pub fn new(runtime: ContainerRuntime, runner: R) -> Self {
        Self { runtime, runner }
    }
}

/// Apptainer or singularity, with the site's SIF cache directory.
#[derive(Debug, Clone)]
pub struct ApptainerResolver<R> {
    runtime: ContainerRuntime,
    cache_dir: String,
    runner: R,
}

impl<R: CommandRunner> ApptainerResolver<R> {
    /// A resolver for `runtime` (apptainer or singularity) that keeps pulled
    /// images in `cache_dir` (absolute, on the host of `runner`; on a
    /// cluster a directory every node sees).
    pub fn new(runtime: ContainerRuntime, cache_dir: impl Into<String>, runner: R) -> Self {
        Self {
            runtime,
            cache_dir: cache_dir.into(),
            runner,
        }
    }
}

/// Runs one command for resolving `image`; a failure to start it or a
/// non-zero exit becomes an error naming the command.
struct Step<'a, R> {
    runtime: ContainerRuntime,
    runner: &'a R,
    image: &'a ImageRef,
}

impl<R: CommandRunner> Step<'_, R> {
    fn error(&self, reason: String, transient: bool) -> ResolveError {
        ResolveError {
            image: self.image.to_string(),
            runtime: self.runtime.to_string(),
            host: self.runner.host().to_owned(),
            reason,
            transient,
        }
    }

    /// Runs `argv`; `Ok(Err(output))` when it exited non-zero.
    fn try_run(&self, argv: &[OsString]) -> Result<Result<String, CommandOutput>, ResolveError> {
        let shown = show(argv);
        match self.runner.run(argv) {
            Ok(out) if out.status == Some(0) => Ok(Ok(out.stdout)),
            Ok(out) => Ok(Err(out)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.error(
                format!(
                    "{} is not installed (not on PATH) to run `{shown}`",
                    argv.first()
                        .map(|p| p.to_string_lossy())
                        .unwrap_or_default()
                ),
                false,
            )),
            Err(e) => Err(self.error(format!("failed to run `{shown}`: {e}"), true)),
        }
    }

    fn run(&self, argv: &[OsString]) -> Result<String, ResolveError> {
        self.try_run(argv)?
            .map_err(|out| self.error(failed(argv, &out), false))
    }
}

fn failed(argv: &[OsString], out: &CommandOutput) -> String {
    let status = out
        .status
        .map_or_else(|| "a signal".to_owned(), |s| format!("status {s}"));
    format!(
        "`{}` ended with {status}: {}",
        show(argv),
        out.stderr.trim()
    )
}

fn show(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

impl<R: CommandRunner> ImageResolver for PodmanResolver<R> {
    fn resolve(&self, image: &ImageRef) -> Result<ResolvedImage, ResolveError> {
        let step = Step {
            runtime: self.runtime,
            runner: &self.runner,
            image,
        };
        let oci = match image {
            ImageRef::Docker(o) | ImageRef::Local(o) => o,
            ImageRef::Oras(_) | ImageRef::Sif(_) => {
                return Err(step.error(
                    "oras:// and .sif images need apptainer or singularity".into(),
                    false,
                ));
            }
        };
        let reference = oci.to_string();
        let inspect = inspect_argv(self.runtime, &reference);
        let text = match step.try_run(&inspect)? {
            Ok(text) => text,
            Err(_) if matches!(image, ImageRef::Local(_)) => {
                return Err(step.error(
                    "no such image in the local store (localhost/ images are built or imported there, never pulled)".into(),
                    false,
                ));
            }
            Err(_) => {
                step.run(&pull_argv(self.runtime, &reference))?;
                step.run(&inspect)?
            }
        };
        let (id, digest) = parse_inspect(&text, oci).map_err(|reason| step.error(reason, false))?;
        Ok(ResolvedImage {
            image: image.clone(),
            runtime: self.runtime,
            digest,
            run_ref: id,
        })
    }
}

/// `podman image inspect --format=… REF`: the id, then each repository digest.
pub fn inspect_argv(runtime: ContainerRuntime, reference: &str) -> Vec<OsString> {
    words([
        runtime.as_str(),
        "image",
        "inspect",
        "--format={{.Id}}{{range .RepoDigests}} {{.}}{{end}}",
        reference,
    ])
}

/// `podman pull --quiet REF`.
pub fn pull_argv(runtime: ContainerRuntime, reference: &str) -> Vec<OsString> {
    words([runtime.as_str(), "pull", "--quiet", reference])
}

/// The image id (bare hex) and the digest to record, from [`inspect_argv`]'s
/// output: the repository digest of the reference's repository, else the
/// first, else `sha256:<id>`. A pinned reference must find its digest.
fn parse_inspect(text: &str, oci: &OciRef) -> Result<(String, String), String> {
    let mut words = text.split_whitespace();
    let id = words
        .next()
        .map(|id| id.strip_prefix("sha256:").unwrap_or(id).to_owned())
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("image inspect printed no image id: {:?}", text.trim()))?;
    let repo: Vec<(&str, &str)> = words.filter_map(|w| w.split_once('@')).collect();
    if let Some(pinned) = &oci.digest {
        if !repo.iter().any(|(_, d)| d == pinned) && pinned != &format!("sha256:{id}") {
            return Err(format!(
                "digest mismatch: the image holds {}, not {pinned}",
                if repo.is_empty() {
                    format!("id sha256:{id}")
                } else {
                    repo.iter().map(|(_, d)| *d).collect::<Vec<_>>().join(", ")
                }
            ));
        }
        return Ok((id, pinned.clone()));
    }
    let same_repo = |name: &str| name == oci.name || name.ends_with(&format!("/{}", oci.name));
    let digest = repo
        .iter()
        .find(|(name, _)| same_repo(name))
        .or(repo.first())
        .map_or_else(|| format!("sha256:{id}"), |(_, d)| (*d).to_owned());
    Ok((id, digest))
}

impl<R: CommandRunner> ImageResolver for ApptainerResolver<R> {
    fn resolve(&self, image: &ImageRef) -> Result<ResolvedImage, ResolveError> {
        let step = Step {
            runtime: self.runtime,
            runner: &self.runner,
            image,
        };
        let resolved = |digest: String, run_ref: String| ResolvedImage {
            image: image.clone(),
            runtime: self.runtime,
            digest,
            run_ref,
        };
        match image {
            ImageRef::Sif(path) => {
                if !Path::new(path).is_absolute() {
                    return Err(step.error(
                        "the .sif path is relative; resolve it against the workflow directory first".into(),
                        false,
                    ));
                }
                let hex = sha256_of(&step, path)?;
                Ok(resolved(format!("sha256:{hex}"), path.clone()))
            }
            ImageRef::Local(_) => Err(step.error(
                "podman's local images cannot run under apptainer: use a .sif file or docker://"
                    .into(),
                false,
            )),
            ImageRef::Docker(_) | ImageRef::Oras(_) => {
                if !Path::new(&self.cache_dir).is_absolute() {
                    return Err(step.error(
                        format!(
                            "the image cache directory `{}` is not absolute",
                            self.cache_dir
                        ),
                        false,
                    ));
                }
                let uri = image.to_string();
                step.run(&words(["mkdir", "-p", "--", &self.cache_dir]))?;
                if let Some(digest) = image.digest() {
                    let sif = cached_sif(&self.cache_dir, digest);
                    if step.try_run(&words(["test", "-s", &sif]))?.is_err() {
                        let tmp = temporary_sif(&self.cache_dir);
                        pull_into(&step, self.runtime, &tmp, &uri)?;
                        step.run(&words(["mv", "-f", "--", &tmp, &sif]))?;
                    }
                    return Ok(resolved(digest.to_owned(), sif));
                }
                let tmp = temporary_sif(&self.cache_dir);
                pull_into(&step, self.runtime, &tmp, &uri)?;
                let hex = sha256_of(&step, &tmp)?;
                let sif = format!(
                    "{}/sif-sha256-{hex}.sif",
                    self.cache_dir.trim_end_matches('/')
                );
                step.run(&words(["mv", "-f", "--", &tmp, &sif]))?;
                Ok(resolved(format!("sha256:{hex}"), sif))
            }
        }
    }
}

/// `<cache>/<algorithm>-<hex>.sif` for a pinned digest.
pub fn cached_sif(cache_dir: &str, digest: &str) -> String {
    format!(
        "{}/{}.sif",
        cache_dir.trim_end_matches('/'),
        digest.replace(':', "-")
    )
}

/// `apptainer pull TARGET URI`.
pub fn apptainer_pull_argv(runtime: ContainerRuntime, target: &str, uri: &str) -> Vec<OsString> {
    words([runtime.as_str(), "pull", target, uri])
}

/// Pulls into `tmp`, removing what a failed pull left.
fn pull_into<R: CommandRunner>(
    step: &Step<'_, R>,
    runtime: ContainerRuntime,
    tmp: &str,
    uri: &str,
) -> Result<(), ResolveError> {
    let pulled = step.run(&apptainer_pull_argv(runtime, tmp, uri));
    if pulled.is_err() {
        let _ = step.try_run(&words(["rm", "-f", "--", tmp]));
    }
    pulled.map(|_| ())
}

fn temporary_sif(cache_dir: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}/.pull-{}-{nanos}.sif",
        cache_dir.trim_end_matches('/'),
        std::process::id()
    )
}

/// The sha256 of a file on the host, by `sha256sum`.
fn sha256_of<R: CommandRunner>(step: &Step<'_, R>, path: &str) -> Result<String, ResolveError> {
    let out = step.run(&words(["sha256sum", "--", path]))?;
    let hex = out.split_whitespace().next().unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(step.error(
            format!("sha256sum of `{path}` printed {:?}", out.trim()),
            false,
        ))
    }
}

fn words<'a>(w: impl IntoIterator<Item = &'a str>) -> Vec<OsString> {
    w.into_iter().map(OsString::from).collect()
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
