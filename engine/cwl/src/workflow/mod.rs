//! CWL `Workflow`s: their steps read and checked (sources that exist, no
//! cycles, `run` processes loaded with the requirements they inherit), and
//! run in this process by [`exec`], one tool run per step (and per scatter
//! job) in its own working directory.

pub mod exec;
pub mod links;
pub mod scatter;

use crate::error::{CwlError, Result};
use crate::load;
use crate::model::{self, Class, Process, Requirement};
use crate::types::{after_hash, short_name};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Deepest nesting of subworkflows followed.
const MAX_NESTING: u32 = 16;

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A workflow input.
    Input(String),
    /// An output of a step: `(step, output)`.
    Step(String, String),
}

/// How several sources are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMerge {
    /// One list of the values (the default).
    Nested,
    /// Lists concatenated, other values appended.
    Flattened,
}

/// `pickValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickValue {
    /// The first non-null value.
    FirstNonNull,
    /// The one non-null value (an error unless exactly one).
    TheOnlyNonNull,
    /// All non-null values.
    AllNonNull,
}

/// A link: sources and how they combine.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The sources, in order.
    pub sources: Vec<Source>,
    /// Whether `source` was written as a list with `linkMerge` (a
    /// single-element list then still gives a list).
    pub listed: bool,
    /// `linkMerge`.
    pub merge: LinkMerge,
    /// `pickValue`.
    pub pick: Option<PickValue>,
}

/// An input of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInput {
    /// Its id (the `run` process input it feeds, if that has one).
    pub id: String,
    /// Where its value comes from.
    pub link: Link,
    /// `default`.
    pub default: Option<Value>,
    /// `valueFrom`.
    pub value_from: Option<Value>,
    /// `loadContents`.
    pub load_contents: bool,
}

/// How scattered inputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScatterMethod {
    /// Element-wise (equal lengths).
    Dotproduct,
    /// Every combination, as nested arrays.
    NestedCrossproduct,
    /// Every combination, as one flat array.
    FlatCrossproduct,
}

/// A step of a workflow.
#[derive(Debug, Clone)]
pub struct Step {
    /// Short id.
    pub id: String,
    /// Its inputs.
    pub inputs: Vec<StepInput>,
    /// The outputs it exposes.
    pub outputs: Vec<String>,
    /// The process it runs.
    pub run: Process,
    /// Inputs it scatters over, in order.
    pub scatter: Vec<String>,
    /// How.
    pub method: ScatterMethod,
    /// `when`.
    pub when: Option<Value>,
}

/// A workflow output.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowOutput {
    /// Its id.
    pub id: String,
    /// Its sources.
    pub link: Link,
}

/// A workflow with its steps in an order that runs producers first.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The workflow process.
    pub process: Process,
    /// Steps, producers before consumers.
    pub steps: Vec<Step>,
    /// Outputs.
    pub outputs: Vec<WorkflowOutput>,
}

impl Workflow {
    /// Reads the steps of workflow process `process`.
    pub fn from_process(process: Process) -> Result<Self> {
        read(process, 0)
    }
}

fn read(process: Process, depth: u32) -> Result<Workflow> {
    if depth > MAX_NESTING {
        return Err(process.error(
            "",
            CwlError::invalid(format!("subworkflows nest more than {MAX_NESTING} deep")),
        ));
    }
    let prefix = process
        .raw
        .get("id")
        .and_then(Value::as_str)
        .map(|id| after_hash(id).to_owned());
    let inputs: HashSet<String> = process.inputs.iter().map(|i| i.id.clone()).collect();
    let mut steps = Vec::new();
    let raw_steps =
        model::entries(process.field("steps"), "id").map_err(|e| process.error("steps", e))?;
    for (i, (id, raw)) in raw_steps.iter().enumerate() {
        let pointer = if process.field("steps").is_some_and(Value::is_array) {
            format!("steps/{i}")
        } else {
            format!("steps/{}", id.replace('~', "~0").replace('/', "~1"))
        };
        let step = read_step(&process, short_name(id), raw, prefix.as_deref(), depth)
            .map_err(|e| process.error(&pointer, e))?;
        steps.push(step);
    }
    let mut outputs = Vec::new();
    for o in &process.outputs {
        let link = link(o.raw.get("outputSource"), &o.raw, prefix.as_deref())
            .map_err(|e| process.error(&format!("outputs/{}", o.id), e))?;
        outputs.push(WorkflowOutput {
            id: o.id.clone(),
            link,
        });
    }
    let steps = order(steps, &inputs, &outputs).map_err(|e| process.error("steps", e))?;
    Ok(Workflow {
        process,
        steps,
        outputs,
    })
}

fn read_step(
    wf: &Process,
    id: &str,
    raw: &Value,
    prefix: Option<&str>,
    depth: u32,
) -> Result<Step> {
    let own = requirement_list(raw)?;
    let mut inherited: Vec<Requirement> = wf.requirements.clone();
    inherited.extend(own);
    let run = match raw.get("run") {
        Some(Value::String(target)) => {
            if let Some(frag) = target.strip_prefix('#') {
                model::process_in(&wf.doc, Some(frag), &inherited, Some(&wf.version))?
            } else {
                let path = wf.dir().join(load::strip_file_scheme(target));
                let (file, fragment) = load::split_fragment(&path);
                let doc = load::read(&file)?;
                model::process_in(&doc, fragment.as_deref(), &inherited, Some(&wf.version))?
            }
        }
        Some(obj @ Value::Object(_)) => {
            let pointer = format!("{}/steps/{id}/run", wf.pointer);
            model::from_value(
                &wf.doc,
                obj.clone(),
                pointer,
                &inherited,
                wf.version.clone(),
            )?
        }
        _ => return Err(CwlError::invalid(format!("step `{id}` has no `run`"))),
    };
    let path = if wf.step_path.is_empty() {
        id.to_owned()
    } else {
        format!("{}/{id}", wf.step_path)
    };
    let mut run = run;
    if run.class == Class::Operation {
        let none = crate::bind::Bindings::default();
        run = crate::bind::concrete(&run, &path, wf.bindings.as_deref().unwrap_or(&none))?;
    }
    run.bindings.clone_from(&wf.bindings);
    run.step_path = path;
    if run.class == Class::Workflow && depth + 1 > MAX_NESTING {
        return Err(CwlError::invalid("subworkflows nest too deep"));
    }
    let mut inputs = Vec::new();
    for (in_id, v) in model::entries(raw.get("in"), "id")? {
        let spec = match &v {
            Value::Object(_) => v.clone(),
            other => serde_json::json!({ "source": other }),
        };
        inputs.push(StepInput {
            id: short_name(&in_id).to_owned(),
            link: link(spec.get("source"), &spec, prefix)?,
            default: spec.get("default").cloned(),
            value_from: spec.get("valueFrom").cloned(),
            load_contents: spec
                .get("loadContents")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    let outputs = match raw.get("out") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|o| match o {
                Value::String(s) => Some(short_name(s).to_owned()),
                Value::Object(m) => m
                    .get("id")
                    .and_then(Value::as_str)
                    .map(|s| short_name(s).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let scatter = match raw.get("scatter") {
        Some(Value::String(s)) => vec![short_name(s).to_owned()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| short_name(s).to_owned())
            .collect(),
        _ => Vec::new(),
    };
    for s in &scatter {
        if !inputs.iter().any(|i| &i.id == s) {
            return Err(CwlError::invalid(format!(
                "step `{id}` scatters over `{s}`, which is not one of its inputs"
            )));
        }
    }
    let method = match raw.get("scatterMethod").and_then(Value::as_str) {
        None | Some("dotproduct") => ScatterMethod::Dotproduct,
        Some("nested_crossproduct") => ScatterMethod::NestedCrossproduct,
        Some("flat_crossproduct") => ScatterMethod::FlatCrossproduct,
        Some(other) => {
            return Err(CwlError::invalid(format!(
                "unknown scatterMethod `{other}`"
            )));
        }
    };
    Ok(Step {
        id: id.to_owned(),
        inputs,
        outputs,
        run,
        scatter,
        method,
        when: raw.get("when").cloned(),
    })
}

fn requirement_list(raw: &Value) -> Result<Vec<Requirement>> {
    // A step's own requirements and hints, as a process would read them.
    let fake = serde_json::json!({
        "class": "Operation",
        "requirements": raw.get("requirements").cloned().unwrap_or(Value::Null),
        "hints": raw.get("hints").cloned().unwrap_or(Value::Null),
    });
    let doc = std::sync::Arc::new(load::Document {
        path: Path::new("step").to_path_buf(),
        value: Value::Null,
        lines: load::Lines::default(),
    });
    Ok(model::from_value(&doc, fake, String::new(), &[], "v1.2".into())?.requirements)
}

/// Reads `source` (a string or a list) and the `linkMerge`/`pickValue` of
/// `spec`.
fn link(source: Option<&Value>, spec: &Value, prefix: Option<&str>) -> Result<Link> {
    let (raw, listed): (Vec<&str>, bool) = match source {
        None | Some(Value::Null) => (Vec::new(), false),
        Some(Value::String(s)) => (vec![s.as_str()], false),
        Some(Value::Array(items)) => (items.iter().filter_map(Value::as_str).collect(), true),
        Some(other) => return Err(CwlError::invalid(format!("{other} is not a source"))),
    };
    let sources = raw.into_iter().map(|s| parse_source(s, prefix)).collect();
    let merge = match spec.get("linkMerge").and_then(Value::as_str) {
        None | Some("merge_nested") => LinkMerge::Nested,
        Some("merge_flattened") => LinkMerge::Flattened,
        Some(other) => return Err(CwlError::invalid(format!("unknown linkMerge `{other}`"))),
    };
    let pick = match spec.get("pickValue").and_then(Value::as_str) {
        None => None,
        Some("first_non_null") => Some(PickValue::FirstNonNull),
        Some("the_only_non_null") => Some(PickValue::TheOnlyNonNull),
        Some("all_non_null") => Some(PickValue::AllNonNull),
        Some(other) => return Err(CwlError::invalid(format!("unknown pickValue `{other}`"))),
    };
    // A one-item list is wrapped only when `linkMerge` is written (v1.2).
    let listed = listed && spec.get("linkMerge").is_some_and(|m| !m.is_null());
    Ok(Link {
        sources,
        listed,
        merge,
        pick,
    })
}

/// `inp`, `#inp`, `#main/inp`, `step/out`, `#main/step/out`, `f.cwl#step/out`.
fn parse_source(s: &str, prefix: Option<&str>) -> Source {
    let mut rest = after_hash(s);
    if let Some(p) = prefix
        && let Some(r) = rest.strip_prefix(p).and_then(|r| r.strip_prefix('/'))
    {
        rest = r;
    }
    match rest.rsplit_once('/') {
        Some((step, out)) => Source::Step(short_name(step).to_owned(), out.to_owned()),
        None => Source::Input(rest.to_owned()),
    }
}

/// The steps in an order that runs producers first; unknown sources and
/// cycles are errors.
fn order(
    steps: Vec<Step>,
    inputs: &HashSet<String>,
    outputs: &[WorkflowOutput],
) -> Result<Vec<Step>> {
    let index: HashMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let check = |src: &Source, user: &str| -> Result<Option<usize>> {
        match src {
            Source::Input(name) if inputs.contains(name) => Ok(None),
            Source::Input(name) => Err(CwlError::invalid(format!(
                "{user}: source `{name}` is not a workflow input or step output"
            ))),
            Source::Step(step, out) => match index.get(step) {
                Some(i) if steps[*i].outputs.iter().any(|o| o == out) => Ok(Some(*i)),
                Some(_) => Err(CwlError::invalid(format!(
                    "{user}: step `{step}` has no output `{out}`"
                ))),
                None => Err(CwlError::invalid(format!("{user}: no step `{step}`"))),
            },
        }
    };
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(steps.len());
    for s in &steps {
        let mut d = Vec::new();
        for i in &s.inputs {
            for src in &i.link.sources {
                if let Some(p) = check(src, &format!("step `{}` input `{}`", s.id, i.id))? {
                    d.push(p);
                }
            }
        }
        deps.push(d);
    }
    for o in outputs {
        for src in &o.link.sources {
            check(src, &format!("output `{}`", o.id))?;
        }
    }
    // Depth-first topological sort; a node met again on the stack is a cycle.
    let mut state = vec![0u8; steps.len()];
    let mut sorted = Vec::with_capacity(steps.len());
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        n: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        sorted: &mut Vec<usize>,
        stack: &mut Vec<usize>,
        names: &[String],
    ) -> Result<()> {
        match state[n] {
            2 => return Ok(()),
            1 => {
                let from = stack.iter().position(|x| *x == n).unwrap_or(0);
                let mut cycle: Vec<&str> =
                    stack[from..].iter().map(|i| names[*i].as_str()).collect();
                cycle.push(names[n].as_str());
                return Err(CwlError::invalid(format!(
                    "dependency cycle: {}",
                    cycle.join(" -> ")
                )));
            }
            _ => {}
        }
        state[n] = 1;
        stack.push(n);
        for d in &deps[n] {
            visit(*d, deps, state, sorted, stack, names)?;
        }
        stack.pop();
        state[n] = 2;
        sorted.push(n);
        Ok(())
    }
    let names: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
    for n in 0..steps.len() {
        visit(n, &deps, &mut state, &mut sorted, &mut stack, &names)?;
    }
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    Ok(sorted.into_iter().filter_map(|i| slots[i].take()).collect())
}
