//! The runner: what runs one attempt on the VM (`twinflow cloud-task DIR`,
//! or the `twinflow-cloud-runner` binary), in the control directory `DIR`
//! the executor prepared (see [`crate::spec`]).
//!
//! 1. Reads `task.json`, opens the store (the forwarded `AWS_*` settings
//!    are in its environment, never in the task's).
//! 2. Empties the working directory and fetches every input from the
//!    store by its manifest into the control directory's `staged/`, each
//!    file verified against its sha256 before it is renamed into place (a
//!    corrupted object fails the attempt and is never seen by the task),
//!    then links it from the working directory.
//! 3. Runs the task there (`task.rs`): `/bin/sh -e -c SCRIPT` on the
//!    VM or inside the attempt's image, after the executor's prologue,
//!    stdin from `/dev/null`, stdout and stderr to the task's log files.
//!    The runner leads the attempt's process group (the launcher started it
//!    with `setsid`), so the executor cancels the attempt by signalling the
//!    group (and stopping the container by name).
//! 4. After an exit with 0, sends every declared output to the store
//!    (content-addressed blobs, then the manifest; requests retried with
//!    backoff by the store, and a store out of reach tried again for
//!    [`TaskSpec::store_patience_s`], ten minutes by default). A missing
//!    output or a failed upload is an error of the attempt, which is then
//!    not done.
//! 5. Writes `exit.json` last, through a temporary file and a rename.

use crate::spec::{ExitRecord, SPEC_FORMAT, SPEC_FORMAT_V1, SpecFile, TaskSpec};
use crate::task;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use twinflow_store::{ArtefactName, Store, StoreError};

/// Runs the attempt of control directory `ctl` and writes its exit record;
/// `Err` only when not even that could be written.
pub fn run(ctl: &Path) -> Result<(), String> {
    let record = match attempt(ctl) {
        Ok(record) => record,
        Err(error) => ExitRecord {
            error: Some(error),
            ..ExitRecord::default()
        },
    };
    write_record(ctl, &record)
}

fn write_record(ctl: &Path, record: &ExitRecord) -> Result<(), String> {
    let text = serde_json::to_vec(record).map_err(|e| format!("failed to encode exit: {e}"))?;
    let tmp = ctl.join(".exit.json.tmp");
    let path = ctl.join("exit.json");
    std::fs::write(&tmp, text).map_err(|e| format!("failed to write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("failed to write {}: {e}", path.display()))
}

fn read_spec(ctl: &Path) -> Result<TaskSpec, String> {
    let path = ctl.join("task.json");
    let text =
        std::fs::read(&path).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let spec: TaskSpec = serde_json::from_slice(&text)
        .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    if spec.format != SPEC_FORMAT && spec.format != SPEC_FORMAT_V1 {
        return Err(format!(
            "{} is a `{}` file, this runner reads `{SPEC_FORMAT}`",
            path.display(),
            spec.format
        ));
    }
    Ok(spec)
}

fn attempt(ctl: &Path) -> Result<ExitRecord, String> {
    let spec = read_spec(ctl)?;
    if ctl.join("cancelled").exists() {
        return Err("cancelled before it started".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("failed to start the runner's runtime: {e}"))?;
    let store = Store::open(&spec.store).map_err(|e| e.to_string())?;
    let workdir = PathBuf::from(&spec.workdir);
    fresh_dir(&workdir)?;
    rt.block_on(fetch_inputs(&store, &spec, ctl, &workdir))?;
    for out in &spec.outputs {
        if let Some(parent) = workdir.join(&out.rel).parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("failed to create {}: {e}", parent.display()))?;
        }
    }
    let record = task::run(&spec, ctl, &workdir)?;
    if record.status != Some(0) {
        return Ok(record);
    }
    rt.block_on(send_outputs(&store, &spec, &workdir))?;
    Ok(record)
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("failed to empty {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))
}

fn name(spec: &TaskSpec, file: &SpecFile) -> Result<ArtefactName, String> {
    ArtefactName::new(&spec.run, &file.task, &file.output).map_err(|e| e.to_string())
}

/// Inside the working directory, or an error: paths never escape it.
fn inside(workdir: &Path, rel: &str) -> Result<PathBuf, String> {
    let p = Path::new(rel);
    let plain = p
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        return Err(format!("`{rel}` is not a plain relative path"));
    }
    Ok(workdir.join(p))
}

/// Whether the output at `path` resolves inside `workdir`: a symbolic link
/// out of it (or through a linked parent) is refused, as the runtime's
/// sealing refuses it, so that nothing outside the task directory reaches
/// the store (links inside directory outputs the store refuses itself).
fn stays_inside(workdir: &Path, path: &Path) -> Result<(), String> {
    let (Ok(root), Ok(real)) = (workdir.canonicalize(), path.canonicalize()) else {
        // A dangling link: the store's upload reports it.
        return Ok(());
    };
    if real.starts_with(&root) {
        return Ok(());
    }
    let rel = path.strip_prefix(workdir).unwrap_or(path);
    let mut at = workdir.to_path_buf();
    for part in rel.components() {
        at.push(part);
        if let Ok(target) = std::fs::read_link(&at) {
            let shown = at.strip_prefix(workdir).unwrap_or(&at);
            return Err(format!(
                "{} is a symbolic link to {}, outside the task directory",
                shown.display(),
                target.display()
            ));
        }
    }
    Err(format!(
        "it resolves to {}, outside the task directory",
        real.display()
    ))
}

/// Runs `op` until it succeeds, fails for good, or the store stayed out
/// of reach for the spec's patience: transient failures (each already
/// retried by the store) are tried again after growing pauses.
async fn patiently<T, F, Fut>(spec: &TaskSpec, what: &str, mut op: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let start = Instant::now();
    let patience = Duration::from_secs(spec.store_patience_s);
    let mut pause = Duration::from_millis(500);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && start.elapsed() + pause < patience => {
                eprintln!("{what}: {e}; trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(15));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

/// Fetches every input to `<ctl>/staged/<rel>` and links it from
/// `<workdir>/<rel>`.
async fn fetch_inputs(
    store: &Store,
    spec: &TaskSpec,
    ctl: &Path,
    workdir: &Path,
) -> Result<(), String> {
    let staged = ctl.join("staged");
    fresh_dir(&staged)?;
    for input in &spec.inputs {
        // Checked as a path in the working directory, then staged aside.
        let rel = inside(workdir, &input.rel)?
            .strip_prefix(workdir)
            .map(Path::to_path_buf)
            .map_err(|_| format!("`{}` is not a plain relative path", input.rel))?;
        let dest = task::staged(ctl, &rel);
        let name = name(spec, input)?;
        let what = format!("input {}", input.rel);
        let manifest = patiently(spec, &what, || store.manifest(&name)).await?;
        patiently(spec, &what, || store.get_output(&manifest, &dest)).await?;
        task::link_input(workdir, &rel, &dest).map_err(|e| format!("{what}: {e}"))?;
    }
    Ok(())
}

async fn send_outputs(store: &Store, spec: &TaskSpec, workdir: &Path) -> Result<(), String> {
    for out in &spec.outputs {
        let path = inside(workdir, &out.rel)?;
        if !path.exists() {
            return Err(format!(
                "output `{}` was not written: no {}",
                out.output,
                path.display()
            ));
        }
        stays_inside(workdir, &path).map_err(|reason| {
            format!("output `{}` ({}) is refused: {reason}", out.output, out.rel)
        })?;
        let name = name(spec, out)?;
        let what = format!("output `{}`", out.output);
        patiently(spec, &what, || store.put_output(&name, &path)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_working_directory() {
        let wd = Path::new("/w");
        assert_eq!(
            inside(wd, "inputs/a/b.nc").ok(),
            Some(PathBuf::from("/w/inputs/a/b.nc"))
        );
        assert!(inside(wd, "../etc/passwd").is_err());
        assert!(inside(wd, "/etc/passwd").is_err());
        assert!(
            inside(wd, "a/./b").is_ok(),
            "`.` components are dropped by components()"
        );
    }

    #[test]
    fn an_output_linking_out_of_the_task_directory_never_reaches_the_store() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let wd = dir.path();
        std::fs::write(wd.join("real.txt"), "x").ok();
        std::os::unix::fs::symlink("/etc/hostname", wd.join("o.txt")).ok();
        std::os::unix::fs::symlink("real.txt", wd.join("in.txt")).ok();
        std::os::unix::fs::symlink("/etc", wd.join("sub")).ok();
        assert_eq!(
            stays_inside(wd, &wd.join("o.txt")),
            Err("o.txt is a symbolic link to /etc/hostname, outside the task directory".into())
        );
        assert_eq!(
            stays_inside(wd, &wd.join("sub/hostname")),
            Err("sub is a symbolic link to /etc, outside the task directory".into())
        );
        assert_eq!(stays_inside(wd, &wd.join("in.txt")), Ok(()));
        assert_eq!(stays_inside(wd, &wd.join("real.txt")), Ok(()));
    }

    #[test]
    fn a_bad_spec_leaves_an_exit_record_that_says_why() {
        let Ok(dir) = tempfile::tempdir() else { return };
        std::fs::write(dir.path().join("task.json"), "{").ok();
        assert_eq!(run(dir.path()), Ok(()));
        let text = std::fs::read_to_string(dir.path().join("exit.json")).unwrap_or_default();
        let r: ExitRecord = serde_json::from_str(&text).unwrap_or_default();
        let error = r.error.unwrap_or_default();
        assert!(error.contains("task.json"), "{error}");
        assert_eq!(r.status, None);
    }
}
