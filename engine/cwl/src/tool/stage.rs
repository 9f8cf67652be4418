//! Placing a run's files: every input File and Directory linked under the
//! staging directory by its `basename` (one directory per object, so names
//! never collide and secondary files sit beside their primary), literals
//! written out, and `InitialWorkDirRequirement` entries placed in the output
//! directory. Names that would leave their directory are refused.

use crate::error::{CwlError, Result};
use crate::expr::{self, Context};
use crate::files;
use crate::model::Process;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A file or directory name that stays inside the directory it is put in.
pub fn safe_name(name: &str) -> Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(CwlError::invalid(format!(
            "`{name}` is not a usable file name"
        )));
    }
    Ok(name)
}

/// A relative path (`entryname`) that stays inside its directory.
pub fn safe_relative(path: &str) -> Result<PathBuf> {
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(CwlError::unsupported(format!(
            "entryname {path}: an absolute path needs a container"
        )));
    }
    match twinflow_workflow::relative_inside(path) {
        Some(norm) if !path.contains('\0') => Ok(norm),
        _ => Err(CwlError::invalid(format!(
            "`{path}` leaves the output directory"
        ))),
    }
}

/// Stages every File and Directory of `inputs` under `stage_dir`.
pub fn stage_inputs(inputs: &mut Value, stage_dir: &Path) -> Result<()> {
    let mut n = 0usize;
    files::for_each_object(inputs, &mut |obj| {
        n += 1;
        let dir = stage_dir.join(n.to_string());
        mkdir(&dir)?;
        place(obj, &dir, false)
    })
}

/// Writes every File and Directory literal of `v` (an object with neither
/// `path` nor `location`: a File's `contents`, a Directory's `listing`)
/// into `dir` under its basename, and points it there.
pub fn write_literals(v: &mut Value, dir: &Path) -> Result<()> {
    files::for_each_object(v, &mut |obj| {
        if files::local_path(obj).is_some() {
            return Ok(());
        }
        mkdir(dir)?;
        place(obj, dir, true)
    })
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| CwlError::io("cannot create", dir, &e))
}

/// Places object `obj` in `dir` under its basename (a link to its path, a
/// copy when `writable`, or its literal contents) and its secondary files
/// beside it; rewrites the paths.
fn place(obj: &mut Value, dir: &Path, writable: bool) -> Result<()> {
    let class = files::class_of(obj).unwrap_or("File").to_owned();
    let source = files::local_path(obj);
    let name = match obj.get("basename").and_then(Value::as_str) {
        Some(b) => b.to_owned(),
        None => match &source {
            Some(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            None => format!("literal-{}", std::process::id()),
        },
    };
    let target = dir.join(safe_name(&name)?);
    match (&source, class.as_str()) {
        (Some(src), _) => link_or_copy(src, &target, writable)?,
        (None, "File") => {
            let text = obj
                .get("contents")
                .and_then(Value::as_str)
                .unwrap_or_default();
            std::fs::write(&target, text).map_err(|e| CwlError::io("cannot write", &target, &e))?;
        }
        (None, _) => {
            mkdir(&target)?;
            if let Some(Value::Array(entries)) = obj.get_mut("listing") {
                for entry in entries.iter_mut() {
                    place(entry, &target, true)?;
                }
            }
        }
    }
    if let (Some(src), Some(listing)) = (&source, obj.get_mut("listing")) {
        rebase(listing, src, &target);
    }
    set_path(obj, &target, &name);
    if let Some(Value::Array(list)) = obj.get_mut("secondaryFiles") {
        for s in list.iter_mut() {
            place(s, dir, writable)?;
        }
    }
    Ok(())
}

fn set_path(obj: &mut Value, target: &Path, name: &str) {
    let text = target.to_string_lossy().into_owned();
    obj["location"] = Value::String(format!("file://{text}"));
    obj["path"] = Value::String(text);
    obj["basename"] = Value::String(name.to_owned());
    if let Some(parent) = target.parent() {
        obj["dirname"] = Value::String(parent.to_string_lossy().into_owned());
    }
    let (root, ext) = files::split_name(name);
    obj["nameroot"] = Value::from(root);
    obj["nameext"] = Value::from(ext);
    if files::class_of(obj) == Some("File")
        && obj.get("size").is_none()
        && let Ok(meta) = std::fs::metadata(target)
    {
        obj["size"] = Value::from(meta.len());
    }
}

/// Rewrites paths under `from` to be under `to` in a listing.
pub(crate) fn rebase(v: &mut Value, from: &Path, to: &Path) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|x| rebase(x, from, to)),
        Value::Object(m) => {
            if let Some(Value::String(p)) = m.get("path")
                && let Ok(rest) = Path::new(p).strip_prefix(from)
            {
                let new = to.join(rest).to_string_lossy().into_owned();
                m.insert("location".into(), Value::String(format!("file://{new}")));
                m.insert("path".into(), Value::String(new));
            }
            if let Some(l) = m.get_mut("listing") {
                rebase(l, from, to);
            }
        }
        _ => {}
    }
}

fn link_or_copy(src: &Path, target: &Path, writable: bool) -> Result<()> {
    if target.symlink_metadata().is_ok() {
        return Err(CwlError::invalid(format!(
            "{} is staged twice",
            target.display()
        )));
    }
    if writable {
        copy_tree(src, target)
    } else {
        std::os::unix::fs::symlink(src, target).map_err(|e| CwlError::io("cannot link", target, &e))
    }
}

/// Copies a file, or a directory recursively.
pub fn copy_tree(src: &Path, target: &Path) -> Result<()> {
    duplicate_tree(src, target, false)
}

/// [`copy_tree`], but files become hard links of the originals where the
/// file system allows (a copy where it does not): for files of the run's
/// own directory, which nothing writes again, so a workflow's outputs are
/// not copied byte by byte into the step that assembles them.
pub fn link_tree(src: &Path, target: &Path) -> Result<()> {
    duplicate_tree(src, target, true)
}

fn duplicate_tree(src: &Path, target: &Path, link: bool) -> Result<()> {
    let meta = std::fs::metadata(src).map_err(|e| CwlError::io("cannot read", src, &e))?;
    if meta.is_dir() {
        mkdir(target)?;
        let entries = std::fs::read_dir(src).map_err(|e| CwlError::io("cannot list", src, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| CwlError::io("cannot list", src, &e))?;
            duplicate_tree(&entry.path(), &target.join(entry.file_name()), link)?;
        }
        return Ok(());
    }
    if link {
        // The file itself, not a symbolic link on the way to it.
        let real = src
            .canonicalize()
            .map_err(|e| CwlError::io("cannot resolve", src, &e))?;
        if std::fs::hard_link(&real, target).is_ok() {
            return Ok(());
        }
    }
    std::fs::copy(src, target)
        .map(|_| ())
        .map_err(|e| CwlError::io("cannot copy to", target, &e))
}

/// Replaces the symbolic links under `dir` that lead outside `root` to
/// one of `inputs` (paths, canonical) by copies of what they point at: a
/// tool's output directory may link its inputs (`cp -r` of a staged
/// directory), and twinflow keeps no output that points outside its task's
/// directory. A link to anything else outside `root` is an error (CWL
/// forbids outputs that escape the output directory).
pub fn materialise_links(dir: &Path, root: &Path, inputs: &[PathBuf]) -> Result<()> {
    let root = root
        .canonicalize()
        .map_err(|e| CwlError::io("cannot resolve", root, &e))?;
    materialise_in(dir, &root, inputs)
}

fn materialise_in(dir: &Path, root: &Path, inputs: &[PathBuf]) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| CwlError::io("cannot list", dir, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CwlError::io("cannot list", dir, &e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| CwlError::io("cannot read", &path, &e))?;
        if kind.is_symlink() {
            let Ok(target) = path.canonicalize() else {
                continue; // dangling: nothing to copy, and nothing outside
            };
            if target.starts_with(root) {
                continue;
            }
            if !inputs.iter().any(|i| target.starts_with(i)) {
                return Err(CwlError::failed(format!(
                    "output {} links to {}, outside the output directory and not an input",
                    path.display(),
                    target.display()
                )));
            }
            std::fs::remove_file(&path).map_err(|e| CwlError::io("cannot replace", &path, &e))?;
            copy_tree(&target, &path)?;
        } else if kind.is_dir() {
            materialise_in(&path, root, inputs)?;
        }
    }
    Ok(())
}

/// The canonical local paths of the Files and Directories of `v` (and
/// their secondary files).
pub fn input_paths(v: &Value) -> Vec<PathBuf> {
    fn walk(v: &Value, out: &mut Vec<PathBuf>) {
        if files::class_of(v).is_some()
            && let Some(p) = files::local_path(v)
            && let Ok(c) = p.canonicalize()
        {
            out.push(c);
        }
        match v {
            Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// Places the `InitialWorkDirRequirement` listing of `tool` in `outdir`;
/// inputs staged there get their new paths in `inputs`.
pub fn initial_workdir(
    tool: &Process,
    inputs: &mut Value,
    runtime: &Value,
    outdir: &Path,
) -> Result<()> {
    let Some(req) = tool.find("InitialWorkDirRequirement") else {
        return Ok(());
    };
    let js = tool.js();
    let listing = req.value.get("listing").cloned().unwrap_or(Value::Null);
    let snapshot = inputs.clone();
    let ctx = Context {
        inputs: &snapshot,
        self_: &Value::Null,
        runtime,
        lib: tool.expression_lib(),
    };
    let entries: Vec<Value> = match &listing {
        Value::String(_) => flatten(expr::eval(&listing, &ctx, js)?),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::String(_) => out.extend(flatten(expr::eval(item, &ctx, js)?)),
                    other => out.extend(flatten(other.clone())),
                }
            }
            out
        }
        _ => Vec::new(),
    };
    let mut moved: Vec<(String, Value)> = Vec::new();
    for entry in entries {
        if entry.is_null() {
            continue;
        }
        if files::class_of(&entry).is_some() {
            let mut obj = entry;
            // A literal object's location is relative to the document.
            files::resolve(&mut obj, tool.dir())?;
            let old = obj.get("path").and_then(Value::as_str).map(str::to_owned);
            place(
                &mut obj,
                outdir,
                tool.find("InplaceUpdateRequirement").is_none(),
            )?;
            if let Some(old) = old {
                moved.push((old, obj));
            }
            continue;
        }
        let Some(dirent) = entry.as_object() else {
            return Err(CwlError::invalid(format!("{entry} is not a listing entry")));
        };
        let writable = dirent
            .get("writable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let raw = dirent.get("entry").cloned().unwrap_or(Value::Null);
        let is_whole_expr = raw
            .as_str()
            .is_some_and(|s| s.trim_start().starts_with("$(") || s.trim_start().starts_with("${"));
        let value = match &raw {
            Value::String(text) => expr::interpolate_with(text, &ctx, js, expr::Whitespace::Keep)?,
            other => other.clone(),
        };
        let name = match dirent.get("entryname") {
            Some(n) => match expr::eval(n, &ctx, js)? {
                Value::String(s) => Some(s),
                Value::Null => None,
                other => Some(crate::tool::cmdline::to_str(&other)?),
            },
            None => None,
        };
        match value {
            Value::Null => {}
            obj @ Value::Object(_) if files::class_of(&obj).is_some() => {
                let mut obj = obj;
                let old = obj.get("path").and_then(Value::as_str).map(str::to_owned);
                let dir = match &name {
                    Some(n) => {
                        let rel = safe_relative(n)?;
                        obj["basename"] = Value::from(
                            rel.file_name()
                                .map(|f| f.to_string_lossy().into_owned())
                                .unwrap_or_default(),
                        );
                        let parent = outdir.join(rel.parent().unwrap_or(Path::new("")));
                        mkdir(&parent)?;
                        parent
                    }
                    None => outdir.to_path_buf(),
                };
                place(&mut obj, &dir, writable)?;
                if let Some(old) = old {
                    moved.push((old, obj));
                }
            }
            Value::Array(items)
                if items.iter().all(|i| files::class_of(i).is_some()) && name.is_none() =>
            {
                for mut obj in items {
                    place(&mut obj, outdir, writable)?;
                }
            }
            other => {
                let Some(name) = name else {
                    return Err(CwlError::invalid(
                        "a listing entry with text needs an `entryname`",
                    ));
                };
                let text = match other {
                    Value::String(s) => s,
                    v if is_whole_expr => expr::interpolated_text(&v),
                    v => v.to_string(),
                };
                let rel = safe_relative(&name)?;
                let path = outdir.join(&rel);
                if let Some(parent) = path.parent() {
                    mkdir(parent)?;
                }
                std::fs::write(&path, text).map_err(|e| CwlError::io("cannot write", &path, &e))?;
            }
        }
    }
    for (old, new) in moved {
        replace_path(inputs, &old, &new);
    }
    Ok(())
}

fn flatten(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.into_iter().flat_map(flatten).collect(),
        other => vec![other],
    }
}

/// Replaces the File/Directory object whose path is `old` by `new`
/// everywhere in `v`.
fn replace_path(v: &mut Value, old: &str, new: &Value) {
    // The closure never fails.
    let _ = files::for_each_object(v, &mut |obj| {
        if obj.get("path").and_then(Value::as_str) == Some(old) {
            *obj = new.clone();
        }
        Ok(())
    });
}
