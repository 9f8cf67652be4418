//! The end of a CWL run as the conformance runner contract wants it: the
//! output object's files and directories copied into `--outdir` (names
//! made unique), their `location` and `path` pointing there.

use crate::error::{CwlError, Result};
use crate::files;
use crate::tool::stage::{copy_tree, link_tree, rebase};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Copies every File and Directory of `outputs` into `outdir` and points
/// the object at the copies; files under `run_dir` (the run's own, which
/// nothing writes again) become hard links where the file system allows.
pub fn relocate(outputs: &mut Value, outdir: &Path, run_dir: Option<&Path>) -> Result<()> {
    std::fs::create_dir_all(outdir).map_err(|e| CwlError::io("cannot create", outdir, &e))?;
    let mut taken = HashSet::new();
    let root = run_dir.and_then(|r| r.canonicalize().ok());
    let mut to = Target {
        outdir,
        taken: &mut taken,
        link_root: root.as_deref(),
    };
    walk(outputs, None, &mut to)
}

/// Copies into `outdir` the Files and Directories of `outputs` that are
/// under `workdir` but not under `outdir` (a step's staged inputs passed
/// through, a workflow's step directories); those elsewhere stay where
/// they are. Files of the run's task directories (`work/` of the run,
/// where staged inputs point) are hard-linked, not copied.
pub fn relocate_within(outputs: &mut Value, outdir: &Path, workdir: &Path) -> Result<()> {
    std::fs::create_dir_all(outdir).map_err(|e| CwlError::io("cannot create", outdir, &e))?;
    let mut taken = HashSet::new();
    // `<run>/work/<step>/<i>`: the run's task directories are two up.
    let tasks = workdir.parent().and_then(Path::parent).unwrap_or(workdir);
    let root = tasks.canonicalize().ok();
    let mut to = Target {
        outdir,
        taken: &mut taken,
        link_root: root.as_deref(),
    };
    walk(outputs, Some(workdir), &mut to)
}

/// Where objects go.
struct Target<'a> {
    outdir: &'a Path,
    /// Names given so far.
    taken: &'a mut HashSet<PathBuf>,
    /// Files whose real path is under this are linked, not copied.
    link_root: Option<&'a Path>,
}

/// Places the objects of `v`: all of them, or (`within`) those under the
/// working directory and not yet in the output directory.
fn walk(v: &mut Value, within: Option<&Path>, to: &mut Target<'_>) -> Result<()> {
    files::for_each_object(v, &mut |obj| {
        let moves = match (within, files::local_path(obj)) {
            (None, _) => true,
            (Some(workdir), Some(p)) => p.starts_with(workdir) && !p.starts_with(to.outdir),
            (Some(_), None) => false,
        };
        if moves { place(obj, to) } else { Ok(()) }
    })
}

fn place(obj: &mut Value, to: &mut Target<'_>) -> Result<()> {
    let outdir = to.outdir;
    let Some(src) = files::local_path(obj) else {
        return Ok(());
    };
    let name = obj
        .get("basename")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| src.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "output".into());
    let name = crate::tool::stage::safe_name(&name)?.to_owned();
    let mut target = outdir.join(&name);
    let mut n = 2;
    while to.taken.contains(&target) || target.symlink_metadata().is_ok() {
        target = outdir.join(format!("{name}_{n}"));
        n += 1;
    }
    to.taken.insert(target.clone());
    let ours = to
        .link_root
        .is_some_and(|root| src.canonicalize().is_ok_and(|real| real.starts_with(root)));
    if ours {
        link_tree(&src, &target)?;
    } else {
        copy_tree(&src, &target)?;
    }
    let text = target.to_string_lossy().into_owned();
    obj["location"] = Value::String(format!("file://{text}"));
    obj["path"] = Value::String(text);
    if let Some(listing) = obj.get_mut("listing") {
        rebase(listing, &src, &target);
    }
    if let Some(Value::Array(list)) = obj.get_mut("secondaryFiles") {
        for s in list.iter_mut() {
            place(s, to)?;
        }
    }
    Ok(())
}
