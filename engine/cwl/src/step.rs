//! The step runner: what a CWL task runs (`twinflow cwl-step`). It loads the
//! tool, runs it in the task's working directory and leaves the output
//! object in `outputs.json` (paths relative to the working directory, so the
//! object travels with the directory), or the error in `error.json`.

use crate::error::{CwlError, ErrorKind, Result};
use crate::tool::inputs::Discovery;
use crate::workflow::{self, Workflow};
use crate::{files, model, tool};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The output object a step leaves in its working directory.
pub const OUTPUTS_FILE: &str = "outputs.json";
/// The error a failed step leaves in its working directory.
pub const ERROR_FILE: &str = "error.json";
/// Exit code of a step that needs a feature twinflow does not support (as
/// the conformance runner contract's).
pub const EXIT_UNSUPPORTED: i32 = 33;

/// Runs the tool `tool_ref` (`file.cwl[#id]`) on `job` in `workdir`;
/// returns the process exit code (0, 1, or [`EXIT_UNSUPPORTED`]) after
/// writing `outputs.json` or `error.json`.
pub fn main(tool_ref: &Path, job: &str, workdir: &Path) -> i32 {
    match run(tool_ref, job, workdir) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            let path = workdir.join(ERROR_FILE);
            let kind = match e.kind {
                ErrorKind::Unsupported => "unsupported",
                ErrorKind::Invalid => "invalid",
                ErrorKind::Failed => "failed",
                ErrorKind::Io => "io",
            };
            let body = json!({"kind": kind, "message": e.to_string()});
            if let Err(w) = std::fs::write(&path, body.to_string()) {
                eprintln!("error: cannot write {}: {w}", path.display());
            }
            if e.kind == ErrorKind::Unsupported {
                EXIT_UNSUPPORTED
            } else {
                1
            }
        }
    }
}

fn run(tool_ref: &Path, job: &str, workdir: &Path) -> Result<()> {
    let process = model::load(tool_ref)?;
    let job: Value = serde_json::from_str(job)
        .map_err(|e| CwlError::invalid(format!("the job object is not JSON: {e}")))?;
    let mut outputs = match process.class {
        model::Class::CommandLineTool => {
            let result = tool::run(&process, &job, workdir, Discovery::FromDisk)?;
            eprintln!("ran: {}", result.command);
            result.outputs
        }
        model::Class::Workflow => {
            let wf = Workflow::from_process(process)?;
            let mut outputs =
                workflow::exec::run(&wf, &job, &workdir.join("steps"), Discovery::FromDisk)?;
            // The task's outputs are its `out` directory: the workflow's
            // files are copied there from its steps' directories.
            crate::runner::relocate(&mut outputs, &workdir.join(tool::OUT_DIR))?;
            outputs
        }
        other => {
            return Err(CwlError::unsupported(format!(
                "running a {other:?} as one step"
            )));
        }
    };
    relativise(&mut outputs, workdir);
    let path = workdir.join(OUTPUTS_FILE);
    let text = serde_json::to_string_pretty(&outputs)
        .map_err(|e| CwlError::failed(format!("cannot encode the outputs: {e}")))?;
    std::fs::write(&path, text).map_err(|e| CwlError::io("cannot write", &path, &e))
}

/// Paths under `base` made relative to it (others stay absolute).
fn relativise(v: &mut Value, base: &Path) {
    if files::class_of(v).is_some()
        && let Some(p) = files::local_path(v)
        && let Ok(rel) = p.strip_prefix(base)
    {
        let rel = rel.to_string_lossy().into_owned();
        v["path"] = Value::String(rel.clone());
        v["location"] = Value::String(rel);
    }
    match v {
        Value::Array(items) => items.iter_mut().for_each(|x| relativise(x, base)),
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k != "path" && k != "location" {
                    relativise(x, base);
                }
            }
        }
        _ => {}
    }
}

/// The output object a step left in `workdir`, paths absolute again.
pub fn read_outputs(workdir: &Path) -> Result<Value> {
    let path = workdir.join(OUTPUTS_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|e| CwlError::io("cannot read", &path, &e))?;
    let mut v: Value = serde_json::from_str(&text)
        .map_err(|e| CwlError::failed(format!("{} is not JSON: {e}", path.display())))?;
    files::resolve(&mut v, workdir)?;
    Ok(v)
}

/// The error a step left in `workdir`, if it left one.
pub fn read_error(workdir: &Path) -> Option<CwlError> {
    let text = std::fs::read_to_string(workdir.join(ERROR_FILE)).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let message = v.get("message")?.as_str()?.to_owned();
    let mut err = match v.get("kind")?.as_str()? {
        "unsupported" => CwlError::unsupported(String::new()),
        "invalid" => CwlError::invalid(String::new()),
        _ => CwlError::failed(String::new()),
    };
    // The message was written whole (file, line, prefix included).
    err.message = message.trim_start_matches("unsupported: ").to_owned();
    Some(err)
}

/// The working directory of a plan's task (`<run dir>/work/<step>/<i>`).
pub fn task_dir(run_dir: &Path, step: &str, instance: u32) -> PathBuf {
    run_dir.join("work").join(step).join(instance.to_string())
}
