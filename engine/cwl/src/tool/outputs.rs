//! Collecting a tool's outputs after it ran: `cwl.output.json` when the tool
//! wrote one, else each output's `outputBinding` (`glob`, `loadContents`,
//! `outputEval`), `stdout`/`stderr` captures, `secondaryFiles` and `format`;
//! every File gets its `size` and `checksum`, and a required output that
//! comes out null is an error naming it.

use crate::error::{CwlError, Result};
use crate::expr::{self, Context};
use crate::files;
use crate::model::{OutputParam, Process};
use crate::types::Type;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Where the streams went.
#[derive(Debug, Clone, Default)]
pub struct Streams {
    /// The file standard output was written to.
    pub stdout: Option<PathBuf>,
    /// The file standard error was written to.
    pub stderr: Option<PathBuf>,
}

/// The output object of the run of `tool` in `outdir`.
pub fn collect(
    tool: &Process,
    inputs: &Value,
    runtime: &Value,
    outdir: &Path,
    streams: &Streams,
) -> Result<Value> {
    let custom = outdir.join("cwl.output.json");
    if custom.is_file() {
        return from_custom(tool, &custom, outdir);
    }
    let mut out = Map::new();
    for param in &tool.outputs {
        let value = collect_param(tool, param, inputs, runtime, outdir, streams)
            .map_err(|e| tool.error(&format!("outputs/{}", param.id), e))?;
        out.insert(param.id.clone(), value);
    }
    Ok(Value::Object(out))
}

fn from_custom(tool: &Process, path: &Path, outdir: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| CwlError::io("cannot read", path, &e))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| CwlError::failed(format!("{} is not JSON: {e}", path.display())))?;
    let Value::Object(m) = v else {
        return Err(CwlError::failed(format!(
            "{} is not a JSON object",
            path.display()
        )));
    };
    from_object(tool, m, outdir, false)
}

/// An output object given whole (`cwl.output.json`, an ExpressionTool's
/// value): File and Directory literals written to `outdir`, locations
/// resolved against it, Files completed (size, checksum), each declared
/// output checked against its type (a missing one is null; with
/// `null_any`, null passes for an output of type `Any`, as cwltool lets an
/// ExpressionTool give it).
pub fn from_object(
    tool: &Process,
    m: Map<String, Value>,
    outdir: &Path,
    null_any: bool,
) -> Result<Value> {
    let mut v = Value::Object(m);
    super::stage::write_literals(&mut v, outdir)?;
    files::resolve(&mut v, outdir)?;
    complete_files(&mut v)?;
    let Value::Object(mut m) = v else {
        return Err(CwlError::failed("the output object is not an object"));
    };
    for param in &tool.outputs {
        let value = m.entry(param.id.clone()).or_insert(Value::Null);
        if !(null_any && value.is_null() && param.ty == Type::Any) {
            check(param, value)?;
        }
    }
    Ok(Value::Object(m))
}

/// Adds size, checksum and listing to every File and Directory of `v`.
fn complete_files(v: &mut Value) -> Result<()> {
    match files::class_of(v) {
        Some(_) => {
            let Some(path) = files::local_path(v) else {
                return Ok(());
            };
            let found = files::object_of(&path, true)?;
            let keep_name = v.get("basename").cloned();
            let secondary = v.get_mut("secondaryFiles").map(std::mem::take);
            let format = v.get("format").cloned();
            *v = found;
            if let Some(name) = keep_name {
                if let Some(text) = name.as_str() {
                    let (root, ext) = files::split_name(text);
                    v["nameroot"] = Value::from(root);
                    v["nameext"] = Value::from(ext);
                }
                v["basename"] = name;
            }
            if let Some(mut sf) = secondary {
                complete_files(&mut sf)?;
                v["secondaryFiles"] = sf;
            }
            if let Some(f) = format {
                v["format"] = f;
            }
            Ok(())
        }
        None => match v {
            Value::Array(items) => items.iter_mut().try_for_each(complete_files),
            Value::Object(m) => m.values_mut().try_for_each(complete_files),
            _ => Ok(()),
        },
    }
}

fn check(param: &OutputParam, value: &Value) -> Result<()> {
    if value.is_null() && !param.ty.is_optional() {
        let glob = param
            .output_binding
            .as_ref()
            .and_then(|b| b.get("glob"))
            .map(|g| format!(" (glob {g} matched nothing)"))
            .unwrap_or_default();
        return Err(CwlError::failed(format!(
            "required output `{}` has no value{glob}",
            param.id
        )));
    }
    if !param.ty.accepts(value) && !matches!(param.ty, Type::Stdout | Type::Stderr) {
        return Err(CwlError::failed(format!(
            "output `{}`: {value} is not a value of type {}",
            param.id,
            param.ty.describe()
        )));
    }
    Ok(())
}

fn collect_param(
    tool: &Process,
    param: &OutputParam,
    inputs: &Value,
    runtime: &Value,
    outdir: &Path,
    streams: &Streams,
) -> Result<Value> {
    let mut value = match &param.ty {
        Type::Stdout => stream_file(streams.stdout.as_deref())?,
        Type::Stderr => stream_file(streams.stderr.as_deref())?,
        Type::Record(fields) if param.output_binding.is_none() => {
            let mut m = Map::new();
            for f in fields.iter() {
                let sub = OutputParam {
                    id: f.name.clone(),
                    ty: f.ty.clone(),
                    output_binding: f.output_binding.clone(),
                    secondary_files: f.secondary_files.clone(),
                    format: None,
                    raw: Value::Null,
                };
                m.insert(
                    f.name.clone(),
                    collect_param(tool, &sub, inputs, runtime, outdir, streams)?,
                );
            }
            Value::Object(m)
        }
        ty => match &param.output_binding {
            Some(binding) => from_binding(tool, ty, binding, inputs, runtime, outdir)?,
            None => Value::Null,
        },
    };
    if let Some(spec) = &param.secondary_files {
        add_secondary(tool, spec, &mut value, inputs, runtime)?;
    }
    if let Some(format) = &param.format {
        set_format(tool, format, &mut value, inputs, runtime)?;
    }
    check(param, &value)?;
    Ok(value)
}

fn stream_file(path: Option<&Path>) -> Result<Value> {
    match path {
        Some(p) => files::object_of(p, true),
        None => Err(CwlError::failed(
            "a stdout/stderr output without a captured stream",
        )),
    }
}

fn from_binding(
    tool: &Process,
    ty: &Type,
    binding: &Value,
    inputs: &Value,
    runtime: &Value,
    outdir: &Path,
) -> Result<Value> {
    let js = tool.js();
    let ctx = Context {
        inputs,
        self_: &Value::Null,
        runtime,
        lib: tool.expression_lib(),
    };
    let mut found: Vec<Value> = Vec::new();
    let mut globbed = false;
    if let Some(glob) = binding.get("glob") {
        globbed = true;
        let patterns = match glob {
            Value::Array(items) => items
                .iter()
                .map(|p| expr::eval(p, &ctx, js))
                .collect::<std::result::Result<Vec<_>, _>>()?,
            one => vec![expr::eval(one, &ctx, js)?],
        };
        for pattern in patterns.iter().flat_map(|p| match p {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        }) {
            let Value::String(pattern) = pattern else {
                if pattern.is_null() {
                    continue;
                }
                return Err(CwlError::failed(format!("glob {pattern} is not a string")));
            };
            for path in glob_in(outdir, &pattern)? {
                found.push(files::object_of(&path, true)?);
            }
        }
    }
    let load = binding
        .get("loadContents")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if load {
        for f in &mut found {
            if let Some(p) = files::local_path(f) {
                f["contents"] = Value::String(files::contents(&p)?);
            }
        }
    }
    if let Some(eval) = binding.get("outputEval") {
        let self_ = Value::Array(found);
        let ctx = Context {
            inputs,
            self_: &self_,
            runtime,
            lib: tool.expression_lib(),
        };
        let mut v = expr::eval(eval, &ctx, js)?;
        files::resolve(&mut v, outdir)?;
        complete_files(&mut v)?;
        return Ok(v);
    }
    if !globbed {
        return Ok(Value::Null);
    }
    let wants_array = match ty {
        Type::Array(..) => true,
        Type::Union(ts) => {
            ts.iter().any(|t| matches!(t, Type::Array(..)))
                && !ts.iter().any(|t| matches!(t, Type::File | Type::Directory))
        }
        Type::Any => found.len() != 1,
        _ => false,
    };
    if wants_array {
        return Ok(Value::Array(found));
    }
    match found.len() {
        0 => Ok(Value::Null),
        1 => Ok(found.remove(0)),
        n => Err(CwlError::failed(format!(
            "the glob matched {n} files for an output of one"
        ))),
    }
}

/// Paths in `outdir` matching `pattern` (relative, or absolute inside
/// `outdir`), sorted; `*` and `?` do not match a leading dot.
pub fn glob_in(outdir: &Path, pattern: &str) -> Result<Vec<PathBuf>> {
    let relative = match Path::new(pattern).strip_prefix(outdir) {
        Ok(rest) => rest.to_string_lossy().into_owned(),
        Err(_) if pattern.starts_with('/') => {
            return Err(CwlError::failed(format!(
                "glob {pattern} is outside the output directory"
            )));
        }
        Err(_) => pattern.to_owned(),
    };
    if relative.is_empty() || relative == "." {
        return Ok(vec![outdir.to_path_buf()]);
    }
    let mut current = vec![outdir.to_path_buf()];
    for part in relative.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err(CwlError::failed(format!(
                "glob {pattern} leaves the output directory"
            )));
        }
        let mut next = Vec::new();
        let wild = part.contains(['*', '?', '[']);
        for dir in &current {
            if !wild {
                let p = dir.join(part);
                if p.symlink_metadata().is_ok() {
                    next.push(p);
                }
                continue;
            }
            let matcher = globset::GlobBuilder::new(part)
                .literal_separator(true)
                .build()
                .map_err(|e| CwlError::failed(format!("glob {pattern}: {e}")))?
                .compile_matcher();
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                .filter(|n| matcher.is_match(n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        current = next;
    }
    Ok(current)
}

fn add_secondary(
    tool: &Process,
    spec: &Value,
    value: &mut Value,
    inputs: &Value,
    runtime: &Value,
) -> Result<()> {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| add_secondary(tool, spec, v, inputs, runtime)),
        v if files::class_of(v) == Some("File") => {
            let Some(primary) = files::local_path(v) else {
                return Ok(());
            };
            let dir = primary.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut list = match v.get("secondaryFiles") {
                Some(Value::Array(l)) => l.clone(),
                _ => Vec::new(),
            };
            for (pattern, required) in files::secondary_patterns(spec, false) {
                let ctx = Context {
                    inputs,
                    self_: v,
                    runtime,
                    lib: tool.expression_lib(),
                };
                let (names, required) =
                    files::secondary_names(&pattern, &required, &ctx, tool.js())?;
                let names: Vec<Value> = match names {
                    Value::Array(items) => items,
                    Value::Null => Vec::new(),
                    other => vec![other],
                };
                for n in names {
                    let (path, rename) = match &n {
                        Value::String(s) => (dir.join(s), None),
                        obj => match files::local_path(obj) {
                            Some(p) => (dir.join(p), obj.get("basename").and_then(Value::as_str)),
                            None => continue,
                        },
                    };
                    if path.exists() {
                        let mut found = files::object_of(&path, true)?;
                        // A File object given a basename of its own is renamed.
                        if let Some(name) = rename {
                            let (root, ext) = files::split_name(name);
                            found["basename"] = Value::from(name);
                            found["nameroot"] = Value::from(root);
                            found["nameext"] = Value::from(ext);
                        }
                        list.push(found);
                    } else if required {
                        return Err(CwlError::failed(format!(
                            "missing secondary file {}",
                            path.display()
                        )));
                    }
                }
            }
            v["secondaryFiles"] = Value::Array(list);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn set_format(
    tool: &Process,
    format: &Value,
    value: &mut Value,
    inputs: &Value,
    runtime: &Value,
) -> Result<()> {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| set_format(tool, format, v, inputs, runtime)),
        v if files::class_of(v) == Some("File") => {
            let ctx = Context {
                inputs,
                self_: v,
                runtime,
                lib: tool.expression_lib(),
            };
            if let Value::String(f) = expr::eval(format, &ctx, tool.js())? {
                v["format"] = Value::String(expand_namespace(tool, &f));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `edam:format_1` with `$namespaces: {edam: http://edamontology.org/}` as
/// `http://edamontology.org/format_1`.
pub fn expand_namespace(tool: &Process, name: &str) -> String {
    if let Some((prefix, rest)) = name.split_once(':')
        && let Some(base) = tool
            .doc
            .value
            .get("$namespaces")
            .and_then(|n| n.get(prefix))
            .and_then(Value::as_str)
    {
        return format!("{base}{rest}");
    }
    name.to_owned()
}
