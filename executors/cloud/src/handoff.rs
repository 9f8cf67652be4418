//! Artefacts between this machine and the VM, through the store.
//!
//! - Before an attempt starts, each of its inputs (a sealed output of a
//!   task that ran anywhere: locally, on Slurm, on this VM) is put in the
//!   store under its producer's artefact name `<run>/task-<id>/<output>`:
//!   blobs by content (a blob already there is not sent again), then the
//!   manifest. The runner on the VM fetches them by manifest, verified.
//! - After the runner reports an exit with 0 (its outputs are then in the
//!   store), every output's manifest is read and checked (each blob there
//!   with its size), and the files are fetched here, each verified against
//!   its sha256 before it is renamed into place. Only then is the exit
//!   reported, so the runtime seals outputs that are verified in the store
//!   and present here for consumers on any executor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use twinflow_core::{ExecutorError, JobInput};
use twinflow_store::{ArtefactName, Store, StoreError};

use crate::spec::{SpecFile, artefact_task};

/// What was last put in the store for an artefact name: the source's path,
/// size and modification time.
type Sent = (PathBuf, u64, Option<SystemTime>);

/// The store side of one executor.
#[derive(Debug)]
pub(crate) struct Handoff {
    store: Store,
    sent: Mutex<HashMap<ArtefactName, Sent>>,
}

fn store_error(what: &str, e: &StoreError) -> ExecutorError {
    ExecutorError {
        message: format!("{what}: {e}"),
        transient: e.is_transient(),
    }
}

impl Handoff {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            sent: Mutex::default(),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Puts every input in the store (once per content and executor) and
    /// returns them as the runner names them.
    pub(crate) async fn send_inputs(
        &self,
        run: &str,
        inputs: &[JobInput],
    ) -> Result<Vec<SpecFile>, ExecutorError> {
        let mut files = Vec::with_capacity(inputs.len());
        for input in inputs {
            let task = artefact_task(input.producer);
            let name = ArtefactName::new(run, &task, &input.output)
                .map_err(|e| store_error(&format!("input {}", input.rel), &e))?;
            let meta = std::fs::metadata(&input.source).map_err(|e| {
                ExecutorError::new(format!(
                    "input {}: failed to read {}: {e}",
                    input.rel,
                    input.source.display()
                ))
            })?;
            let sent: Sent = (input.source.clone(), meta.len(), meta.modified().ok());
            let known = self
                .sent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&name)
                == Some(&sent);
            if !known {
                self.store
                    .put_output(&name, &input.source)
                    .await
                    .map_err(|e| store_error(&format!("input {}", input.rel), &e))?;
                self.sent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name, sent);
            }
            files.push(SpecFile {
                rel: input.rel.clone(),
                task,
                output: input.output.clone(),
            });
        }
        Ok(files)
    }

    /// Checks each output in the store and fetches it into `workdir`,
    /// verified. Transient store failures are tried again a few times.
    pub(crate) async fn fetch_outputs(
        &self,
        run: &str,
        outputs: &[SpecFile],
        workdir: &Path,
    ) -> Result<(), ExecutorError> {
        for out in outputs {
            let mut delay = Duration::from_millis(500);
            let mut tries = 0;
            loop {
                match self.fetch_one(run, out, workdir).await {
                    Ok(()) => break,
                    Err(e) if e.transient && tries < 4 => {
                        tracing::warn!("{}; trying again in {delay:?}", e.message);
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        tries += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn fetch_one(
        &self,
        run: &str,
        out: &SpecFile,
        workdir: &Path,
    ) -> Result<(), ExecutorError> {
        let what = format!("output `{}`", out.output);
        let name =
            ArtefactName::new(run, &out.task, &out.output).map_err(|e| store_error(&what, &e))?;
        let manifest = self
            .store
            .manifest(&name)
            .await
            .map_err(|e| store_error(&what, &e))?;
        self.store
            .check_output(&manifest)
            .await
            .map_err(|e| store_error(&what, &e))?;
        let dest = workdir.join(&out.rel);
        remove_any(&dest).map_err(|e| {
            ExecutorError::new(format!("{what}: failed to replace {}: {e}", dest.display()))
        })?;
        self.store
            .get_output(&manifest, &dest)
            .await
            .map_err(|e| store_error(&what, &e))
    }
}

/// Removes a file or directory tree; nothing there is no error.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
