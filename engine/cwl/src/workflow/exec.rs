//! Running a workflow in this process: steps in dependency order, each
//! step's input object assembled from its links (defaults for nulls,
//! `valueFrom`), scattered into jobs, each job's `when` evaluated and its
//! process run in `<dir>/<step>/<job>`; outputs gathered back per scatter
//! shape. Subworkflows run the same way, nested.

use super::{Source, Step, Workflow, links, scatter};
use crate::error::{CwlError, Result};
use crate::expr::{self, Context};
use crate::model::{Class, Process};
use crate::tool::inputs::Discovery;
use crate::{files, tool};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// Runs `wf` on `job` (File objects resolved) with working directories
/// under `dir`; returns its output object.
pub fn run(wf: &Workflow, job: &Value, dir: &Path, discovery: Discovery) -> Result<Value> {
    let inputs = tool::inputs::prepare(&wf.process, job, discovery)
        .map_err(|e| wf.process.error("inputs", e))?;
    let mut values: HashMap<Source, Value> = HashMap::new();
    if let Value::Object(m) = &inputs {
        for (k, v) in m {
            values.insert(Source::Input(k.clone()), v.clone());
        }
    }
    for step in &wf.steps {
        let outputs = run_step(wf, step, &values, &dir.join(&step.id))
            .map_err(|e| wf.process.error("steps", e.in_file(&wf.process.doc.path)))?;
        for o in &step.outputs {
            let v = outputs.get(o).cloned().unwrap_or(Value::Null);
            values.insert(Source::Step(step.id.clone(), o.clone()), v);
        }
    }
    outputs(wf, &values)
}

/// The workflow's output object from the values of its inputs and steps.
pub fn outputs(wf: &Workflow, values: &HashMap<Source, Value>) -> Result<Value> {
    let mut out = Map::new();
    for o in &wf.outputs {
        let v = links::resolve(&o.link, values)?;
        if let Some(param) = wf.process.outputs.iter().find(|p| p.id == o.id) {
            let wrong = if v.is_null() {
                (!param.ty.is_optional())
                    .then(|| format!("required workflow output `{}` is null", o.id))
            } else {
                (!param.ty.accepts(&v)).then(|| {
                    format!(
                        "workflow output `{}`: {v} is not a value of type {}",
                        o.id,
                        param.ty.describe()
                    )
                })
            };
            if let Some(message) = wrong {
                return Err(wf
                    .process
                    .error(&format!("outputs/{}", o.id), CwlError::failed(message)));
            }
        }
        out.insert(o.id.clone(), v);
    }
    Ok(Value::Object(out))
}

/// The input object of `step` before scatter: its links resolved, defaults
/// for nulls, contents loaded.
pub fn step_inputs(
    wf: &Workflow,
    step: &Step,
    values: &HashMap<Source, Value>,
) -> Result<Map<String, Value>> {
    let mut base = Map::new();
    for i in &step.inputs {
        let mut v = links::resolve(&i.link, values)?;
        if v.is_null()
            && let Some(d) = &i.default
        {
            v = d.clone();
            files::resolve(&mut v, wf.process.dir())?;
        }
        if i.load_contents {
            load_contents(&mut v)?;
        }
        base.insert(i.id.clone(), v);
    }
    Ok(base)
}

fn load_contents(v: &mut Value) -> Result<()> {
    match v {
        Value::Array(items) => items.iter_mut().try_for_each(load_contents),
        obj if files::class_of(obj) == Some("File") => {
            if let Some(p) = files::local_path(obj) {
                obj["contents"] = Value::String(files::contents(&p)?);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Runs one step (all its scatter jobs) and returns its output object.
pub fn run_step(
    wf: &Workflow,
    step: &Step,
    values: &HashMap<Source, Value>,
    dir: &Path,
) -> Result<Map<String, Value>> {
    let base = step_inputs(wf, step, values)?;
    let (jobs, dims) = if step.scatter.is_empty() {
        (vec![base], None)
    } else {
        let (jobs, dims) = scatter::jobs(&base, &step.scatter, step.method)?;
        (jobs, Some(dims))
    };
    let mut results = Vec::with_capacity(jobs.len());
    for (n, job) in jobs.into_iter().enumerate() {
        results.push(run_job(wf, step, job, &dir.join(n.to_string()))?);
    }
    let mut out = Map::new();
    for o in &step.outputs {
        let per_job: Vec<Value> = results
            .iter()
            .map(|r| {
                r.as_ref()
                    .and_then(|m| m.get(o))
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect();
        let v = match &dims {
            None => per_job.into_iter().next().unwrap_or(Value::Null),
            Some(dims) => scatter::gather(per_job, dims),
        };
        out.insert(o.clone(), v);
    }
    Ok(out)
}

/// One job of a step: `valueFrom`, `when`, then the process; `None` when
/// `when` was false.
pub fn run_job(
    wf: &Workflow,
    step: &Step,
    job: Map<String, Value>,
    dir: &Path,
) -> Result<Option<Map<String, Value>>> {
    let job = value_from(wf, step, job)?;
    if let Some(when) = &step.when {
        let inputs = Value::Object(job.clone());
        let ctx = Context {
            inputs: &inputs,
            self_: &Value::Null,
            runtime: &Value::Null,
            lib: wf.process.expression_lib(),
        };
        match expr::eval(when, &ctx, wf.process.js())? {
            Value::Bool(true) => {}
            Value::Bool(false) => return Ok(None),
            other => {
                return Err(CwlError::failed(format!(
                    "step `{}`: `when` gave {other}, not a boolean",
                    step.id
                )));
            }
        }
    }
    let declared: Map<String, Value> = job
        .into_iter()
        .filter(|(k, _)| step.run.inputs.iter().any(|i| &i.id == k))
        .collect();
    let out = run_process(&step.run, &Value::Object(declared), dir)?;
    match out {
        Value::Object(m) => Ok(Some(m)),
        other => Err(CwlError::failed(format!(
            "step `{}` gave {other}, not an output object",
            step.id
        ))),
    }
}

fn value_from(wf: &Workflow, step: &Step, job: Map<String, Value>) -> Result<Map<String, Value>> {
    if step.inputs.iter().all(|i| i.value_from.is_none()) {
        return Ok(job);
    }
    let before = Value::Object(job.clone());
    let mut after = job;
    for i in &step.inputs {
        if let Some(vf) = &i.value_from {
            let self_ = before.get(&i.id).cloned().unwrap_or(Value::Null);
            let ctx = Context {
                inputs: &before,
                self_: &self_,
                runtime: &Value::Null,
                lib: wf.process.expression_lib(),
            };
            let v = expr::eval(vf, &ctx, wf.process.js())?;
            after.insert(i.id.clone(), v);
        }
    }
    Ok(after)
}

/// Runs any process on a job in `dir`.
pub fn run_process(process: &Process, job: &Value, dir: &Path) -> Result<Value> {
    crate::check::javascript(process)?;
    match process.class {
        Class::CommandLineTool => Ok(tool::run(process, job, dir, Discovery::Listed)?.outputs),
        Class::Workflow => {
            let wf = Workflow::from_process(process.clone())?;
            run(&wf, job, dir, Discovery::Listed)
        }
        Class::ExpressionTool => crate::expression_tool::run(process, job, dir, Discovery::Listed),
        Class::Operation => Err(process.error(
            "class",
            CwlError::unsupported(
                "Operation: an abstract step runs only when bound to a concrete one",
            ),
        )),
    }
}
