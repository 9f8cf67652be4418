//! Staging for a cluster that does not share the submitting machine's file
//! system (`ssh:` with `workdir:`): the run's files live under
//! `<workdir>/<run id>/` on the cluster, laid out as the run directory is
//! here. Before a task is submitted its working directory (with its inputs,
//! links followed) is uploaded; when it has ended, what it wrote there
//! (everything but `inputs/`) and its two logs come back, and only then is
//! its end reported, so the runtime seals outputs that are really here.
//! What comes back is copied with symbolic links followed only inside the
//! remote working directory ([`Remote::download_within`]): a declared
//! output with a link out of it (or a dangling one) fails the task naming
//! the output and the link (when the attempt succeeded: a failed one keeps
//! its own failure); any other entry with such a link stays on the
//! cluster, with a warning.

use crate::remote::ssh_error;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use twinflow_core::{AttemptKey, ExecutorError, Job, Update, UpdateSink};
use twinflow_ssh::{Remote, SshError};

/// Where a task's files are, here and there; also kept beside its local
/// logs (`<instance>.<attempt>.stage`), so a restarted runtime can bring
/// back the files of a job it takes back.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Files {
    local_workdir: PathBuf,
    remote_workdir: PathBuf,
    logs: [(PathBuf, PathBuf); 2],
    /// The declared outputs (name, path relative to the working
    /// directory), to name the one a refused link belongs to.
    #[serde(default)]
    outputs: Vec<(String, String)>,
}

/// Staging to `root` on the cluster through `remote`.
#[derive(Debug)]
pub(crate) struct Staging {
    remote: Arc<dyn Remote>,
    root: PathBuf,
    tasks: Mutex<HashMap<AttemptKey, Files>>,
}

fn env<'a>(job: &'a Job, name: &str) -> Option<&'a str> {
    job.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Staging {
    pub(crate) fn new(remote: Arc<dyn Remote>, root: PathBuf) -> Self {
        Self {
            remote,
            root,
            tasks: Mutex::default(),
        }
    }

    /// The directory on the cluster that holds the runs' directories.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `job` as it runs on the cluster: its paths (and `TWINFLOW_RUN_DIR`)
    /// moved from the run directory here to the run's directory there.
    pub(crate) fn remote_job(&self, job: &Job) -> Result<Job, ExecutorError> {
        let (Some(local_run), Some(id)) =
            (env(job, "TWINFLOW_RUN_DIR"), env(job, "TWINFLOW_RUN_ID"))
        else {
            return Err(ExecutorError::new(format!(
                "{}: no TWINFLOW_RUN_DIR/TWINFLOW_RUN_ID to stage by",
                job.name
            )));
        };
        let local_run = Path::new(local_run);
        let remote_run = self.root.join(id);
        let map = |p: &Path| -> Result<PathBuf, ExecutorError> {
            let rel = p.strip_prefix(local_run).map_err(|_| {
                ExecutorError::new(format!(
                    "{} is outside the run directory {}; it cannot be staged",
                    p.display(),
                    local_run.display()
                ))
            })?;
            Ok(remote_run.join(rel))
        };
        let mut remote = job.clone();
        remote.workdir = map(&job.workdir)?;
        remote.stdout = map(&job.stdout)?;
        remote.stderr = map(&job.stderr)?;
        // What a container binds: inputs sealed in this run's directory are
        // uploaded there too; others keep their path.
        for input in &mut remote.inputs {
            if let Ok(there) = map(&input.source) {
                input.source = there;
            }
        }
        // A coupling group's directory is under the run's, on the cluster
        // (its job creates it there).
        if let Some(g) = &mut remote.group {
            g.dir = map(&g.dir)?;
        }
        for (k, v) in &mut remote.env {
            if k == "TWINFLOW_RUN_DIR" {
                *v = remote_run.display().to_string();
            }
            if k == "TWINFLOW_GROUP_DIR"
                && let Some(g) = &remote.group
            {
                *v = g.dir.display().to_string();
            }
        }
        Ok(remote)
    }

    /// Uploads the working directory of `local` to where `remote` runs.
    pub(crate) async fn stage_in(&self, local: &Job, remote: &Job) -> Result<(), ExecutorError> {
        self.remote
            .upload(&local.workdir, &remote.workdir.display().to_string())
            .await
            .map_err(|e| ssh_error(&e))?;
        let files = Files {
            local_workdir: local.workdir.clone(),
            remote_workdir: remote.workdir.clone(),
            logs: [
                (remote.stdout.clone(), local.stdout.clone()),
                (remote.stderr.clone(), local.stderr.clone()),
            ],
            outputs: local
                .outputs
                .iter()
                .map(|o| (o.name.clone(), o.rel.clone()))
                .collect(),
        };
        let sidecar = local.stdout.with_extension("stage");
        let text = serde_json::to_string(&files).unwrap_or_default();
        std::fs::write(&sidecar, text).map_err(|e| {
            ExecutorError::new(format!("failed to write {}: {e}", sidecar.display()))
        })?;
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(local.key, files);
        Ok(())
    }

    /// Where a path of `run`'s directory here is on the cluster.
    pub(crate) fn cluster_path(
        &self,
        run: twinflow_core::RunRef<'_>,
        local: &Path,
    ) -> Option<PathBuf> {
        Some(
            self.root
                .join(run.id)
                .join(local.strip_prefix(run.dir).ok()?),
        )
    }

    /// Takes back the staging of an attempt of `run` whose job writes
    /// `remote_status` on the cluster; whether its record was found.
    pub(crate) fn adopt(
        &self,
        run: twinflow_core::RunRef<'_>,
        key: AttemptKey,
        remote_status: &Path,
    ) -> bool {
        let Ok(rel) = remote_status.strip_prefix(self.root.join(run.id)) else {
            return false;
        };
        let sidecar = run.dir.join(rel).with_extension("stage");
        let Some(files) = std::fs::read_to_string(&sidecar)
            .ok()
            .and_then(|t| serde_json::from_str::<Files>(&t).ok())
        else {
            return false;
        };
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, files);
        true
    }

    /// Brings back what the task wrote and its logs; the error is the
    /// task's failure message. A link out of the working directory fails
    /// it only if the attempt `succeeded` (its outputs are to be sealed)
    /// and the link is in an output.
    async fn stage_out(&self, files: &Files, succeeded: bool) -> Result<(), String> {
        let failed = |e: &dyn std::fmt::Display| {
            format!("failed to bring its files back from the cluster: {e}")
        };
        let dir = files.remote_workdir.display().to_string();
        let list = self
            .remote
            .exec(
                &format!("ls -A -- {}", twinflow_core::shell_quote(&dir)),
                None,
            )
            .await
            .map_err(|e| failed(&e))?;
        for name in list.stdout_lossy().lines().filter(|n| *n != "inputs") {
            let from = format!("{dir}/{name}");
            let local = files.local_workdir.join(name);
            match self.remote.download_within(&from, &local, &dir).await {
                Ok(()) => {}
                Err(e @ SshError::LinkOutside { .. }) => {
                    match refused_output(files, name, &e).filter(|_| succeeded) {
                        Some(message) => return Err(message),
                        None => tracing::warn!("left {from} on the cluster: {e}"),
                    }
                }
                Err(e) => return Err(failed(&e)),
            }
        }
        for (remote, local) in &files.logs {
            // A job killed before it started has no logs; that is no error.
            if let Ok(Some(data)) = self.remote.read(&remote.display().to_string()).await {
                std::fs::write(local, data)
                    .map_err(|e| failed(&format!("failed to write {}: {e}", local.display())))?;
            }
        }
        Ok(())
    }
}

/// The failure message for a link out of the working directory found in
/// the top-level entry `name`, if that is (or holds) a declared output:
/// the output the link is in, else the first one the entry holds.
fn refused_output(files: &Files, name: &str, e: &SshError) -> Option<String> {
    let SshError::LinkOutside {
        target,
        link,
        to,
        resolved,
        ..
    } = e
    else {
        return None;
    };
    let dir = &files.remote_workdir;
    let rel = Path::new(link).strip_prefix(dir).unwrap_or(Path::new(name));
    // `./o.txt` is `o.txt`
    let clean = |p: &str| -> PathBuf {
        Path::new(p)
            .components()
            .filter(|c| *c != std::path::Component::CurDir)
            .collect()
    };
    let (output, rel_output) = files
        .outputs
        .iter()
        .find(|(_, o)| rel.starts_with(clean(o)))
        .or_else(|| {
            files
                .outputs
                .iter()
                .find(|(_, o)| clean(o).starts_with(name))
        })?;
    let why = match resolved {
        None => ", which does not exist".to_owned(),
        Some(r) if r == to => format!(", outside the task directory {}", dir.display()),
        Some(r) => format!(" ({r}), outside the task directory {}", dir.display()),
    };
    Some(format!(
        "output `{output}` ({rel_output}) is refused: {} on {target} is a symbolic link to {to}{why}",
        rel.display()
    ))
}

/// Forwards updates, staging a task's files back before its end.
#[derive(Debug)]
pub(crate) struct StageOutSink {
    pub(crate) staging: Arc<Staging>,
    pub(crate) inner: Arc<dyn UpdateSink>,
}

impl UpdateSink for StageOutSink {
    fn send(&self, update: Update) {
        if !update.status.is_final() {
            self.inner.send(update);
            return;
        }
        let files = self
            .staging
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&update.key);
        let Some(files) = files else {
            self.inner.send(update);
            return;
        };
        let staging = Arc::clone(&self.staging);
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let succeeded = update.status == twinflow_core::AttemptStatus::Exited(0);
            let update = match staging.stage_out(&files, succeeded).await {
                Ok(()) => update,
                Err(message) => Update {
                    key: update.key,
                    status: twinflow_core::AttemptStatus::Error(message),
                },
            };
            inner.send(update);
        });
    }
}

#[cfg(test)]
mod tests;
