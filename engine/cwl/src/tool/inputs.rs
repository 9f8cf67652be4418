//! The input object of a tool run: defaults filled, every value checked
//! against its parameter's type, File and Directory objects checked on disk
//! and completed (`size`, `contents` for `loadContents`, `secondaryFiles`
//! found beside the primary, `listing` per `loadListing`).

use crate::error::{CwlError, Result};
use crate::expr::Context;
use crate::files;
use crate::model::{InputParam, Process};
use crate::types::Type;
use serde_json::{Map, Value};

/// Where the secondary files of an input File come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// Found on disk beside the primary by the parameter's patterns (the
    /// inputs of the process a user runs, as cwltool does).
    FromDisk,
    /// Only those listed in the File object (a step inside a workflow:
    /// what its producer passed on); a required one missing is an error.
    Listed,
}

/// The complete input object of `tool` from `job` (whose File objects are
/// already resolved against the job's directory). Inputs `tool` does not
/// declare are dropped.
pub fn prepare(tool: &Process, job: &Value, discovery: Discovery) -> Result<Value> {
    let given = match job {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(CwlError::invalid(format!(
                "the job object must be a mapping, found {other}"
            )));
        }
    };
    let mut out = Map::new();
    for param in &tool.inputs {
        let value = match given.get(&param.id) {
            Some(v) if !v.is_null() => v.clone(),
            _ => match &param.default {
                Some(d) => {
                    let mut d = d.clone();
                    files::resolve(&mut d, tool.dir())?;
                    d
                }
                None => Value::Null,
            },
        };
        out.insert(param.id.clone(), value);
    }
    let listing_default = default_listing(tool);
    let mut inputs = Value::Object(out);
    for param in &tool.inputs {
        let Some(mut value) = inputs.get(&param.id).cloned() else {
            continue;
        };
        check(param, &value)?;
        complete(
            tool,
            param,
            &param.ty,
            &mut value,
            &inputs,
            &listing_default,
            discovery,
        )?;
        inputs[&param.id] = value;
    }
    Ok(inputs)
}

fn check(param: &InputParam, value: &Value) -> Result<()> {
    if value.is_null() && !param.ty.is_optional() {
        return Err(CwlError::invalid(format!(
            "missing required input `{}` ({})",
            param.id,
            param.ty.describe()
        )));
    }
    if !param.ty.accepts(value) {
        return Err(CwlError::invalid(format!(
            "input `{}`: {} is not a value of type {}",
            param.id,
            abbreviate(value),
            param.ty.describe()
        )));
    }
    Ok(())
}

fn abbreviate(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// `loadListing` when a parameter says nothing: `LoadListingRequirement`,
/// else deep for v1.0 documents and none after.
fn default_listing(tool: &Process) -> String {
    if let Some(r) = tool.find("LoadListingRequirement")
        && let Some(l) = r.value.get("loadListing").and_then(Value::as_str)
    {
        return l.to_owned();
    }
    if tool.version == "v1.0" {
        "deep_listing".into()
    } else {
        "no_listing".into()
    }
}

fn complete(
    tool: &Process,
    param: &InputParam,
    ty: &Type,
    value: &mut Value,
    inputs: &Value,
    listing_default: &str,
    discovery: Discovery,
) -> Result<()> {
    let ty = match ty {
        Type::Union(_) => match ty.select(value) {
            Some(t) => t.clone(),
            None => return Ok(()),
        },
        t => t.clone(),
    };
    match (&ty, value) {
        (Type::File, v @ Value::Object(_)) => complete_file(tool, param, v, inputs, discovery),
        (Type::Directory, v @ Value::Object(_)) => {
            let listing = param.load_listing.as_deref().unwrap_or(listing_default);
            complete_directory(v, listing)
        }
        (Type::Array(items, _), Value::Array(vs)) => {
            for v in vs {
                complete(tool, param, items, v, inputs, listing_default, discovery)?;
            }
            Ok(())
        }
        (Type::Any, v) => complete_any(v),
        (Type::Record(fields), Value::Object(m)) => {
            for f in fields.iter() {
                if let Some(v) = m.get_mut(&f.name) {
                    let sub = InputParam {
                        id: f.name.clone(),
                        ty: f.ty.clone(),
                        default: None,
                        binding: f.binding.clone(),
                        secondary_files: f.secondary_files.clone(),
                        load_contents: f.binding.as_ref().is_some_and(|b| b.load_contents),
                        load_listing: None,
                        format: None,
                    };
                    complete(tool, &sub, &f.ty, v, inputs, listing_default, discovery)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// File objects inside an `Any` value get their size checked too.
fn complete_any(v: &mut Value) -> Result<()> {
    match v {
        Value::Object(_) if files::class_of(v) == Some("File") => file_on_disk(v),
        Value::Array(vs) => vs.iter_mut().try_for_each(complete_any),
        _ => Ok(()),
    }
}

fn file_on_disk(v: &mut Value) -> Result<()> {
    let Some(path) = files::local_path(v) else {
        return if v.get("contents").is_some() {
            Ok(())
        } else {
            Err(CwlError::invalid(format!(
                "{} has no location, path or contents",
                abbreviate(v)
            )))
        };
    };
    let meta =
        std::fs::metadata(&path).map_err(|e| CwlError::io("cannot read input", &path, &e))?;
    if meta.is_dir() {
        return Err(CwlError::invalid(format!(
            "{} is a directory, not a File",
            path.display()
        )));
    }
    v["size"] = Value::from(meta.len());
    Ok(())
}

fn complete_file(
    tool: &Process,
    param: &InputParam,
    v: &mut Value,
    inputs: &Value,
    discovery: Discovery,
) -> Result<()> {
    file_on_disk(v)?;
    if let Some(Value::Array(list)) = v.get_mut("secondaryFiles") {
        for s in list.iter_mut() {
            if files::class_of(s) == Some("File") {
                file_on_disk(s)?;
            }
        }
    }
    if param.load_contents
        && let Some(path) = files::local_path(v)
    {
        v["contents"] = Value::String(files::contents(&path)?);
    }
    if let Some(spec) = &param.secondary_files {
        secondary_files(tool, spec, v, inputs, discovery)?;
    }
    Ok(())
}

/// Adds the secondary files `spec` names for primary `v` that exist beside
/// it (and are not listed yet); a required one missing is an error.
fn secondary_files(
    tool: &Process,
    spec: &Value,
    v: &mut Value,
    inputs: &Value,
    discovery: Discovery,
) -> Result<()> {
    let Some(primary) = files::local_path(v) else {
        return Ok(());
    };
    let dir = primary
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let mut listed: Vec<Value> = match v.get("secondaryFiles") {
        Some(Value::Array(l)) => l.clone(),
        _ => Vec::new(),
    };
    let runtime = Value::Null;
    for (pattern, required) in files::secondary_patterns(spec, true) {
        let ctx = Context {
            inputs,
            self_: v,
            runtime: &runtime,
            lib: tool.expression_lib(),
        };
        let (names, required) = files::secondary_names(&pattern, &required, &ctx, tool.js())?;
        let found = match names {
            Value::String(_) | Value::Object(_) => vec![names],
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => return Err(CwlError::invalid(format!("secondaryFiles gave {other}"))),
        };
        for item in found {
            let mut obj = match item {
                Value::String(name) => {
                    serde_json::json!({"class": "File", "location": dir.join(&name).to_string_lossy()})
                }
                obj => obj,
            };
            files::resolve(&mut obj, &dir)?;
            let Some(path) = files::local_path(&obj) else {
                continue;
            };
            let already = listed
                .iter()
                .any(|l| files::local_path(l).as_deref() == Some(path.as_path()));
            if already {
                continue;
            }
            if path.exists() && discovery == Discovery::FromDisk {
                if path.is_dir() {
                    obj["class"] = Value::from("Directory");
                } else {
                    file_on_disk(&mut obj)?;
                }
                listed.push(obj);
            } else if required {
                return Err(CwlError::invalid(format!(
                    "missing required secondary file {} of {}",
                    path.display(),
                    primary.display()
                )));
            }
        }
    }
    if !listed.is_empty() {
        v["secondaryFiles"] = Value::Array(listed);
    }
    Ok(())
}

fn complete_directory(v: &mut Value, listing: &str) -> Result<()> {
    let Some(path) = files::local_path(v) else {
        return Ok(());
    };
    if !path.is_dir() {
        return Err(CwlError::invalid(format!(
            "input directory {} does not exist",
            path.display()
        )));
    }
    if v.get("listing").is_none() {
        match listing {
            "shallow_listing" => v["listing"] = Value::Array(files::listing(&path, false, false)?),
            "deep_listing" => v["listing"] = Value::Array(files::listing(&path, true, false)?),
            _ => {}
        }
    }
    Ok(())
}
