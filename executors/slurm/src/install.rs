//! Where packed jobs find the `twinflow` binary they run (`twinflow worker
//! <manifest>`, see [`crate::worker`]), decided once per cluster:
//!
//! - the executor's `twinflow:` path when it is set, checked once with
//!   `<path> --version` on the login node (here, or there over SSH); a path
//!   that does not run there fails the tasks that would be packed, with
//!   that command's error;
//! - else, on the login node, this process's own binary
//!   ([`crate::SlurmFactory::with_worker`], which the CLI sets), at a path
//!   the compute nodes must see;
//! - else, over SSH, this binary uploaded to
//!   `<dir>/.twinflow/bin/twinflow-<sha256 of the binary>`, `<dir>` being
//!   the directory that holds the run directories on the cluster (the
//!   executor's `workdir`, or the parent of the run directory on a shared
//!   file system). The name is the content's digest, so a copy already
//!   there is used as it is: it goes up once per cluster and build of
//!   twinflow, whatever the number of runs and processes. It is uploaded
//!   only when the login node runs the same system and architecture as
//!   this binary (`uname -sm`), and used only once it runs there
//!   (`--version`); otherwise (or without a binary to upload) the executor
//!   does not pack, sends job arrays instead, and says why in a warning.
//!
//! A failure that may pass (a dropped connection) is not remembered: the
//! next batch decides again, and goes out as arrays meanwhile.

use crate::cluster::Cluster;
use crate::remote::ssh_error;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::OnceCell;
use twinflow_core::{ExecutorError, shell_quote};
use twinflow_ssh::Remote;

/// Where an executor's packed jobs get `twinflow` from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// No binary: no packing.
    None,
    /// This process's binary, which the cluster runs at this path.
    Here(PathBuf),
    /// The executor's `twinflow:`.
    Given(PathBuf),
    /// This binary (`local`), uploaded over `remote`.
    Upload {
        local: PathBuf,
        remote: Arc<dyn Remote>,
    },
}

/// A decision: the path to run, or why there is none (`Err`).
type Decision = Result<PathBuf, String>;

/// A decision once made (or being made) for one cluster and path.
type Slot = Arc<OnceCell<Decision>>;

/// The decisions of one factory's executors, by cluster and path (given
/// binary) or directory (upload).
#[derive(Debug, Default)]
pub(crate) struct Installs {
    decided: Mutex<HashMap<(String, PathBuf), Slot>>,
}

/// What packing uses for one executor.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) source: Source,
    pub(crate) installs: Arc<Installs>,
    /// The cluster, as the factory names it (`local`, `user@host:port`).
    pub(crate) cluster: String,
}

impl Worker {
    /// The binary packed jobs run: `Ok(None)` for no packing; `Err` fails
    /// the tasks that would be packed. `runs` is the directory that holds
    /// the run directories on the cluster (only an upload needs it).
    pub(crate) async fn path(
        &self,
        cluster: &dyn Cluster,
        runs: Option<&Path>,
    ) -> Result<Option<PathBuf>, ExecutorError> {
        let (key, given) = match &self.source {
            Source::None => return Ok(None),
            Source::Here(path) => return Ok(Some(path.clone())),
            Source::Given(path) => (path.clone(), true),
            Source::Upload { .. } => match runs {
                Some(dir) => (dir.to_path_buf(), false),
                None => {
                    tracing::warn!(
                        "no run directory to upload twinflow next to on {}: not packing",
                        self.cluster
                    );
                    return Ok(None);
                }
            },
        };
        let cell = {
            let mut decided = self
                .installs
                .decided
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                decided
                    .entry((self.cluster.clone(), key.clone()))
                    .or_default(),
            )
        };
        let decided = cell
            .get_or_try_init(|| async {
                let decision = match &self.source {
                    Source::Upload { local, remote } => upload(local, remote.as_ref(), &key).await,
                    _ => check(cluster, &key).await,
                }?;
                if let Err(why) = &decision
                    && !given
                {
                    tracing::warn!("{why}: packed steps go out as job arrays");
                }
                Ok::<Decision, ExecutorError>(decision)
            })
            .await;
        match decided {
            Ok(Ok(path)) => Ok(Some(path.clone())),
            Ok(Err(why)) if given => Err(ExecutorError::new(why.clone())),
            Ok(Err(_)) => Ok(None),
            Err(e) => {
                tracing::warn!("{}; not packing this time", e.message);
                Ok(None)
            }
        }
    }
}

/// Whether `path --version` on the cluster says it is twinflow.
async fn check(cluster: &dyn Cluster, path: &Path) -> Result<Decision, ExecutorError> {
    let program = path.display().to_string();
    match cluster.command(&program, &["--version".to_owned()]).await {
        Ok(out) if is_twinflow(&out) => Ok(Ok(path.to_path_buf())),
        Ok(out) => Ok(Err(format!(
            "the executor's `twinflow: {program}` is not twinflow (`--version` printed {:?})",
            out.trim()
        ))),
        Err(e) if e.transient => Err(e),
        Err(e) => Ok(Err(format!(
            "the executor's `twinflow: {program}` does not run on the cluster: {}",
            e.message
        ))),
    }
}

fn is_twinflow(version: &str) -> bool {
    version.starts_with("twinflow ")
}

/// Whether `uname -sm` (e.g. `Linux x86_64`) names the system and
/// architecture this binary was built for.
pub(crate) fn same_platform(uname: &str) -> bool {
    let mut words = uname.split_whitespace();
    let (Some(os), Some(machine)) = (words.next(), words.next()) else {
        return false;
    };
    let machine = match machine {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        m => m,
    };
    os.eq_ignore_ascii_case(std::env::consts::OS) && machine == std::env::consts::ARCH
}

/// Uploads `local` into `dir/.twinflow/bin/` on `remote` unless its copy is
/// there already; see the module documentation.
async fn upload(local: &Path, remote: &dyn Remote, dir: &Path) -> Result<Decision, ExecutorError> {
    let there = remote.describe();
    let uname = remote
        .exec("uname -sm", None)
        .await
        .map_err(|e| ssh_error(&e))?
        .stdout_lossy();
    if !same_platform(&uname) {
        return Ok(Err(format!(
            "{there} runs {}, this twinflow is built for {} {}: it cannot be uploaded there \
             (set the executor's `twinflow:` to a twinflow binary on the cluster)",
            uname.trim(),
            std::env::consts::OS,
            std::env::consts::ARCH
        )));
    }
    let path = local.to_path_buf();
    let sum = match tokio::task::spawn_blocking(move || twinflow_ssh::file_sha256(&path)).await {
        Ok(Ok(sum)) => sum,
        Ok(Err(why)) => return Ok(Err(why)),
        Err(e) => return Ok(Err(format!("failed to hash {}: {e}", local.display()))),
    };
    let target = dir.join(".twinflow/bin").join(format!("twinflow-{sum}"));
    let q = shell_quote(&target.display().to_string());
    let runs = |out: &twinflow_ssh::Output| out.success() && is_twinflow(&out.stdout_lossy());
    let found = remote
        .exec(&format!("test -x {q} && {q} --version"), None)
        .await
        .map_err(|e| ssh_error(&e))?;
    if runs(&found) {
        return Ok(Ok(target));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = format!("{}.{}-{nanos}.tmp", target.display(), std::process::id());
    tracing::info!(
        "uploading {} to {there}:{}",
        local.display(),
        target.display()
    );
    remote
        .upload(local, &tmp)
        .await
        .map_err(|e| ssh_error(&e))?;
    let t = shell_quote(&tmp);
    let moved = remote
        .exec(
            &format!("chmod 755 {t} && mv -f -- {t} {q} && {q} --version"),
            None,
        )
        .await
        .map_err(|e| ssh_error(&e))?;
    if runs(&moved) {
        Ok(Ok(target))
    } else {
        Ok(Err(format!(
            "twinflow uploaded to {there}:{} does not run there: {}",
            target.display(),
            moved.stderr_lossy().lines().last().unwrap_or("").trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_is_matched_against_this_build() {
        let here = format!("Linux {}\n", std::env::consts::ARCH);
        assert_eq!(same_platform(&here), std::env::consts::OS == "linux");
        assert!(!same_platform("Linux riscv128\n"));
        assert!(!same_platform("Plan9 x86_64"));
        assert!(!same_platform(""));
        assert!(!same_platform("Linux"));
    }

    #[test]
    fn digests_are_sha256_hex() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("abc");
        std::fs::write(&file, "abc").unwrap();
        assert_eq!(
            twinflow_ssh::file_sha256(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(
            twinflow_ssh::file_sha256(&dir.path().join("missing"))
                .unwrap_err()
                .contains("missing")
        );
    }
}
