//! The step runner: what a CWL task runs (`twinflow cwl-step`). It loads the
//! tool, runs it in the task's working directory and leaves the output
//! object in `outputs.json` (paths relative to the working directory, so the
//! object travels with the directory), or the error in `error.json`.

use crate::error::{CwlError, ErrorKind, Result};
use crate::split::FromSpec;
use crate::tool::inputs::Discovery;
use crate::workflow::{self, Source, Workflow};
use crate::{files, model, tool};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The output object a step leaves in its working directory.
pub const OUTPUTS_FILE: &str = "outputs.json";
/// The error a failed step leaves in its working directory.
pub const ERROR_FILE: &str = "error.json";
/// Exit code of a step that needs a feature twinflow does not support (as
/// the conformance runner contract's).
pub const EXIT_UNSUPPORTED: i32 = 33;

/// What a step task does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Run the document's process (a tool, or a whole workflow) on the job.
    Whole,
    /// Run one step of the document's workflow; `scattered` holds the
    /// values of this task's scatter job when the step is scattered into
    /// tasks.
    Step {
        /// The CWL step id.
        id: String,
        /// This task's scattered input values (JSON object), if any.
        scattered: Option<String>,
    },
    /// Assemble the workflow's output object.
    Collect,
}

/// The arguments of `twinflow cwl-step`.
#[derive(Debug, Clone)]
pub struct StepArgs {
    /// The document (`file.cwl[#id]`).
    pub document: PathBuf,
    /// What to do.
    pub mode: Mode,
    /// The job object (workflow input values), JSON, paths absolute.
    pub job: String,
    /// Where producers' outputs are staged ([`crate::split::FromSpec`]).
    pub from: Vec<String>,
    /// The binding file of the workflow's abstract steps.
    pub bind: Option<PathBuf>,
}

/// Runs a step task in `workdir`; returns the process exit code (0, 1, or
/// [`EXIT_UNSUPPORTED`]) after writing `outputs.json` or `error.json`.
pub fn main(args: &StepArgs, workdir: &Path) -> i32 {
    match run(args, workdir) {
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

fn run(args: &StepArgs, workdir: &Path) -> Result<()> {
    let job: Value = serde_json::from_str(&args.job)
        .map_err(|e| CwlError::invalid(format!("the job object is not JSON: {e}")))?;
    let mut process = model::with_job_requirements(model::load(&args.document)?, &job)?;
    if let Some(bind) = &args.bind {
        process.bindings = Some(std::sync::Arc::new(crate::bind::Bindings::read(bind)?));
    }
    let outdir = workdir.join(tool::OUT_DIR);
    let mut outputs = match (&args.mode, process.class) {
        (Mode::Whole, model::Class::CommandLineTool) => {
            let result = tool::run(&process, &job, workdir, Discovery::FromDisk)?;
            eprintln!("ran: {}", result.command);
            result.outputs
        }
        (Mode::Whole, model::Class::ExpressionTool) => {
            crate::expression_tool::run(&process, &job, workdir, Discovery::FromDisk)?
        }
        (Mode::Whole, model::Class::Workflow) => {
            let wf = Workflow::from_process(process)?;
            workflow::exec::run(&wf, &job, &workdir.join("steps"), Discovery::FromDisk)?
        }
        (Mode::Step { id, scattered }, model::Class::Workflow) => {
            let wf = Workflow::from_process(process)?;
            let values = known_values(&job, &args.from, workdir)?;
            let step = wf
                .steps
                .iter()
                .find(|s| &s.id == id)
                .ok_or_else(|| CwlError::invalid(format!("the workflow has no step `{id}`")))?;
            let out = match scattered {
                Some(element) => {
                    let element: Value = serde_json::from_str(element)
                        .map_err(|e| CwlError::invalid(format!("--scattered is not JSON: {e}")))?;
                    let mut base = workflow::exec::step_inputs(&wf, step, &values)?;
                    if let Value::Object(m) = element {
                        base.extend(m);
                    }
                    let done = workflow::exec::run_job(&wf, step, base, &workdir.join("job"))?;
                    done.unwrap_or_else(|| {
                        step.outputs
                            .iter()
                            .map(|o| (o.clone(), Value::Null))
                            .collect()
                    })
                }
                None => workflow::exec::run_step(&wf, step, &values, &workdir.join("jobs"))?,
            };
            Value::Object(out)
        }
        (Mode::Collect, model::Class::Workflow) => {
            let wf = Workflow::from_process(process)?;
            let values = known_values(&job, &args.from, workdir)?;
            workflow::exec::outputs(&wf, &values)?
        }
        (mode, class) => {
            return Err(CwlError::invalid(format!(
                "cannot run a {class:?} as {mode:?}"
            )));
        }
    };
    // The task's artefacts are its `out` directory: outputs made elsewhere
    // in the working directory are copied there.
    crate::runner::relocate_within(&mut outputs, &outdir, workdir)?;
    relativise(&mut outputs, workdir);
    let path = workdir.join(OUTPUTS_FILE);
    let text = serde_json::to_string_pretty(&outputs)
        .map_err(|e| CwlError::failed(format!("cannot encode the outputs: {e}")))?;
    std::fs::write(&path, text).map_err(|e| CwlError::io("cannot write", &path, &e))
}

/// The values a step task knows: the workflow inputs it was given and its
/// producers' outputs, read from where they were staged.
fn known_values(job: &Value, from: &[String], workdir: &Path) -> Result<HashMap<Source, Value>> {
    let mut values = HashMap::new();
    if let Value::Object(m) = job {
        for (k, v) in m {
            values.insert(Source::Input(k.clone()), v.clone());
        }
    }
    for arg in from {
        let spec = FromSpec::parse(arg)?;
        let mut per_task = Vec::with_capacity(spec.objects.len());
        for (obj, dir) in spec.objects.iter().zip(&spec.dirs) {
            per_task.push(read_staged(&workdir.join(obj), &workdir.join(dir))?);
        }
        let outputs: Map<String, Value> = match &spec.dims {
            None => match per_task.into_iter().next() {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            },
            Some(dims) => {
                let mut keys: Vec<String> = Vec::new();
                for o in &per_task {
                    if let Value::Object(m) = o {
                        for k in m.keys() {
                            if !keys.contains(k) {
                                keys.push(k.clone());
                            }
                        }
                    }
                }
                keys.into_iter()
                    .map(|k| {
                        let vs = per_task
                            .iter()
                            .map(|o| o.get(&k).cloned().unwrap_or(Value::Null))
                            .collect();
                        (k, workflow::scatter::gather(vs, dims))
                    })
                    .collect()
            }
        };
        for (k, v) in outputs {
            values.insert(Source::Step(spec.step.clone(), k), v);
        }
    }
    Ok(values)
}

/// A producer's output object as staged: its relative paths (under its
/// `out/`) point into the staged directory `dir`.
fn read_staged(object: &Path, dir: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(object).map_err(|e| CwlError::io("cannot read", object, &e))?;
    let mut v: Value = serde_json::from_str(&text)
        .map_err(|e| CwlError::failed(format!("{} is not JSON: {e}", object.display())))?;
    rebase_out(&mut v, dir)?;
    files::resolve(&mut v, Path::new("/"))?;
    Ok(v)
}

fn rebase_out(v: &mut Value, dir: &Path) -> Result<()> {
    if files::class_of(v).is_some() {
        for key in ["path", "location"] {
            if let Some(Value::String(p)) = v.get(key).cloned() {
                let new = if Path::new(&p).is_absolute() || p.contains("://") {
                    p
                } else {
                    let rest = p
                        .strip_prefix(&format!("{}/", tool::OUT_DIR))
                        .or_else(|| (p == tool::OUT_DIR).then_some(""))
                        .ok_or_else(|| {
                            CwlError::failed(format!(
                                "staged output {p} is outside its producer's out/"
                            ))
                        })?;
                    dir.join(rest).to_string_lossy().into_owned()
                };
                v[key] = Value::String(new);
            }
        }
    }
    match v {
        Value::Array(items) => items.iter_mut().try_for_each(|x| rebase_out(x, dir)),
        Value::Object(m) => m
            .iter_mut()
            .filter(|(k, _)| *k != "path" && *k != "location")
            .try_for_each(|(_, x)| rebase_out(x, dir)),
        _ => Ok(()),
    }
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
