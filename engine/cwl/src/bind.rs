//! Binding files: what makes an abstract workflow runnable. DT-GEO publishes
//! workflows whose steps are `class: Operation` (inputs and outputs, no
//! implementation); a binding file names, per step id, either a concrete
//! CWL process or a command to run in its place:
//!
//! ```yaml
//! version: 1
//! steps:
//!   simulate:
//!     run: tools/simulate.cwl            # relative to the binding file
//!   plot:
//!     command: [python3, plot.py, "$(inputs.field.path)"]
//!     outputs: {figure: {glob: "*.png"}}
//!     container: docker.io/dtgeo/plot:1   # optional: DockerRequirement
//!     cores: 4                            # optional: ResourceRequirement
//! ```
//!
//! A `command` becomes a `CommandLineTool` with the Operation's inputs and
//! outputs (each output needs a `glob`); parameter references in it are
//! evaluated like any CWL expression, each element one word (never a
//! shell). Nested steps are named `outer/inner`.

use crate::error::{CwlError, Result};
use crate::load;
use crate::model::{self, Class, Process};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The binding of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    /// A concrete CWL process (`file.cwl` or `file.cwl#id`), absolute.
    Run(PathBuf),
    /// A command and how its outputs are found.
    Command {
        /// The words (parameter references allowed).
        argv: Vec<String>,
        /// Output id to glob.
        outputs: BTreeMap<String, String>,
        /// `DockerRequirement.dockerPull`.
        container: Option<String>,
        /// `ResourceRequirement.coresMin`.
        cores: Option<u64>,
    },
}

/// A binding file, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bindings {
    /// The file, absolute (`None` for no bindings).
    pub file: Option<PathBuf>,
    /// Step path (`step` or `outer/inner`) to binding.
    pub steps: BTreeMap<String, Binding>,
}

fn bad(msg: impl Into<String>) -> CwlError {
    CwlError::invalid(msg)
}

impl Bindings {
    /// Reads a binding file; unknown keys are errors naming them.
    pub fn read(path: &Path) -> Result<Self> {
        let doc = load::read(path)?;
        let at = |pointer: &str, e: CwlError| doc.error_at(pointer, e);
        let Value::Object(top) = &doc.value else {
            return Err(at(
                "",
                bad("a binding file is a mapping with `version: 1` and `steps`"),
            ));
        };
        for k in top.keys() {
            if k != "version" && k != "steps" {
                return Err(at(
                    &format!("/{k}"),
                    bad(format!("unknown key `{k}` (expected version, steps)")),
                ));
            }
        }
        if top.get("version").and_then(Value::as_u64) != Some(1) {
            return Err(at("/version", bad("a binding file needs `version: 1`")));
        }
        let mut steps = BTreeMap::new();
        let Some(Value::Object(raw_steps)) = top.get("steps") else {
            return Err(at("/steps", bad("`steps` must map step ids to bindings")));
        };
        for (id, spec) in raw_steps {
            let pointer = format!("/steps/{}", id.replace('~', "~0").replace('/', "~1"));
            let binding = read_one(spec, doc.dir()).map_err(|e| at(&pointer, e))?;
            steps.insert(id.clone(), binding);
        }
        Ok(Self {
            file: Some(doc.path.clone()),
            steps,
        })
    }
}

fn read_one(spec: &Value, dir: &Path) -> Result<Binding> {
    let Value::Object(m) = spec else {
        return Err(bad("a binding is a mapping with `run` or `command`"));
    };
    for k in m.keys() {
        if !["run", "command", "outputs", "container", "cores"].contains(&k.as_str()) {
            return Err(bad(format!(
                "unknown key `{k}` (expected run, command, outputs, container, cores)"
            )));
        }
    }
    match (m.get("run"), m.get("command")) {
        (Some(Value::String(run)), None) => {
            for k in ["outputs", "container", "cores"] {
                if m.contains_key(k) {
                    return Err(bad(format!("`{k}` goes with `command`, not `run`")));
                }
            }
            Ok(Binding::Run(dir.join(run)))
        }
        (None, Some(Value::Array(words))) => {
            let argv = words
                .iter()
                .map(|w| match w {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(bad(format!("command word {other} is not a string"))),
                })
                .collect::<Result<Vec<_>>>()?;
            if argv.is_empty() {
                return Err(bad("`command` is empty"));
            }
            let mut outputs = BTreeMap::new();
            if let Some(raw) = m.get("outputs") {
                let Value::Object(o) = raw else {
                    return Err(bad("`outputs` maps output ids to {glob: PATTERN}"));
                };
                for (id, v) in o {
                    match v.get("glob").and_then(Value::as_str) {
                        Some(g) => {
                            outputs.insert(id.clone(), g.to_owned());
                        }
                        None => return Err(bad(format!("output `{id}` needs a `glob`"))),
                    }
                }
            }
            Ok(Binding::Command {
                argv,
                outputs,
                container: m
                    .get("container")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                cores: m.get("cores").and_then(Value::as_u64),
            })
        }
        (Some(_), Some(_)) => Err(bad("a binding has `run` or `command`, not both")),
        _ => Err(bad("a binding needs `run: FILE.cwl` or `command: [WORDS]`")),
    }
}

/// The process that runs in place of `operation`, the Operation at step
/// path `step`.
pub fn concrete(operation: &Process, step: &str, bindings: &Bindings) -> Result<Process> {
    let Some(binding) = bindings.steps.get(step) else {
        let hint = match &bindings.file {
            Some(f) => format!("; {} binds {}", f.display(), names(bindings)),
            None => " (give a binding file with --bind)".to_owned(),
        };
        return Err(operation.error(
            "class",
            CwlError::invalid(format!(
                "step `{step}` is an abstract Operation and is not bound{hint}"
            )),
        ));
    };
    let concrete = match binding {
        Binding::Run(path) => {
            let (file, fragment) = load::split_fragment(path);
            let doc = load::read(&file)?;
            model::process_in(
                &doc,
                fragment.as_deref(),
                &operation.requirements,
                Some(&operation.version),
            )?
        }
        Binding::Command {
            argv,
            outputs,
            container,
            cores,
        } => {
            let tool = command_tool(operation, step, argv, outputs, container.as_deref(), *cores)?;
            let pointer = operation.pointer.clone();
            model::from_value(
                &operation.doc,
                tool,
                pointer,
                &operation.requirements,
                operation.version.clone(),
            )?
        }
    };
    if concrete.class == Class::Operation {
        return Err(bad(format!("step `{step}` is bound to another Operation")));
    }
    for out in &operation.outputs {
        if !concrete.outputs.iter().any(|o| o.id == out.id) {
            return Err(bad(format!(
                "step `{step}`: the bound process has no output `{}` that the Operation declares",
                out.id
            )));
        }
    }
    Ok(concrete)
}

fn names(bindings: &Bindings) -> String {
    let list: Vec<&str> = bindings.steps.keys().map(String::as_str).collect();
    if list.is_empty() {
        "nothing".to_owned()
    } else {
        list.join(", ")
    }
}

/// The `CommandLineTool` of a `command` binding.
fn command_tool(
    operation: &Process,
    step: &str,
    argv: &[String],
    globs: &BTreeMap<String, String>,
    container: Option<&str>,
    cores: Option<u64>,
) -> Result<Value> {
    let mut outputs = Map::new();
    for out in &operation.outputs {
        let Some(glob) = globs.get(&out.id) else {
            return Err(bad(format!(
                "step `{step}`: the binding gives no `glob` for output `{}`",
                out.id
            )));
        };
        let mut o = match &out.raw {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        o.remove("id");
        o.insert("outputBinding".into(), json!({ "glob": glob }));
        outputs.insert(out.id.clone(), Value::Object(o));
    }
    for id in globs.keys() {
        if !operation.outputs.iter().any(|o| &o.id == id) {
            return Err(bad(format!(
                "step `{step}`: the Operation has no output `{id}`"
            )));
        }
    }
    let inputs: Map<String, Value> = match operation.raw.get("inputs") {
        Some(v) => model::entries(Some(v), "id")?
            .into_iter()
            .map(|(id, mut spec)| {
                if let Value::Object(m) = &mut spec {
                    m.remove("id");
                }
                (crate::types::short_name(&id).to_owned(), spec)
            })
            .collect(),
        None => Map::new(),
    };
    let mut requirements = Vec::new();
    if let Some(image) = container {
        requirements.push(json!({"class": "DockerRequirement", "dockerPull": image}));
    }
    if let Some(c) = cores {
        requirements.push(json!({"class": "ResourceRequirement", "coresMin": c}));
    }
    Ok(json!({
        "class": "CommandLineTool",
        "id": format!("#{step}"),
        "inputs": inputs,
        "outputs": outputs,
        "baseCommand": [argv[0]],
        "arguments": argv[1..],
        "requirements": requirements,
    }))
}
