//! The end of a CWL run as the conformance runner contract wants it: the
//! output object's files and directories copied into `--outdir` (names
//! made unique), their `location` and `path` pointing there.

use crate::error::{CwlError, Result};
use crate::files;
use crate::tool::stage::{copy_tree, rebase};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Copies every File and Directory of `outputs` into `outdir` and points
/// the object at the copies.
pub fn relocate(outputs: &mut Value, outdir: &Path) -> Result<()> {
    std::fs::create_dir_all(outdir).map_err(|e| CwlError::io("cannot create", outdir, &e))?;
    let mut taken = HashSet::new();
    walk(outputs, outdir, None, &mut taken)
}

/// Copies into `outdir` the Files and Directories of `outputs` that are
/// under `workdir` but not under `outdir` (a step's staged inputs passed
/// through, a workflow's step directories); those elsewhere stay where
/// they are.
pub fn relocate_within(outputs: &mut Value, outdir: &Path, workdir: &Path) -> Result<()> {
    std::fs::create_dir_all(outdir).map_err(|e| CwlError::io("cannot create", outdir, &e))?;
    let mut taken = HashSet::new();
    walk(outputs, outdir, Some(workdir), &mut taken)
}

fn walk(
    v: &mut Value,
    outdir: &Path,
    within: Option<&Path>,
    taken: &mut HashSet<PathBuf>,
) -> Result<()> {
    if files::class_of(v).is_some() {
        let moves = match (within, files::local_path(v)) {
            (None, _) => true,
            (Some(workdir), Some(p)) => p.starts_with(workdir) && !p.starts_with(outdir),
            (Some(_), None) => false,
        };
        return if moves {
            place(v, outdir, taken)
        } else {
            Ok(())
        };
    }
    match v {
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|x| walk(x, outdir, within, taken)),
        Value::Object(m) => m
            .values_mut()
            .try_for_each(|x| walk(x, outdir, within, taken)),
        _ => Ok(()),
    }
}

fn place(obj: &mut Value, outdir: &Path, taken: &mut HashSet<PathBuf>) -> Result<()> {
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
    while taken.contains(&target) || target.symlink_metadata().is_ok() {
        target = outdir.join(format!("{name}_{n}"));
        n += 1;
    }
    taken.insert(target.clone());
    copy_tree(&src, &target)?;
    let text = target.to_string_lossy().into_owned();
    obj["location"] = Value::String(format!("file://{text}"));
    obj["path"] = Value::String(text);
    if let Some(listing) = obj.get_mut("listing") {
        rebase(listing, &src, &target);
    }
    if let Some(Value::Array(list)) = obj.get_mut("secondaryFiles") {
        for s in list.iter_mut() {
            place(s, outdir, taken)?;
        }
    }
    Ok(())
}
