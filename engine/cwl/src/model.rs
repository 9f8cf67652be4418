//! CWL processes as read from a document: class, inputs, outputs,
//! requirements and hints, with the list-or-map forms normalised, ids made
//! short, and `$graph` documents resolved to the process asked for.

use crate::error::{CwlError, Result};
use crate::load::{self, Document};
use crate::types::{Binding, Names, Type, short_name};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Arc;

/// The CWL versions read.
pub const VERSIONS: [&str; 3] = ["v1.0", "v1.1", "v1.2"];

/// What kind of process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `CommandLineTool`.
    CommandLineTool,
    /// `ExpressionTool`.
    ExpressionTool,
    /// `Workflow`.
    Workflow,
    /// `Operation` (abstract).
    Operation,
}

/// A requirement or hint.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// `class`, without a namespace prefix.
    pub class: String,
    /// The whole object.
    pub value: Value,
    /// True for a hint.
    pub hint: bool,
}

/// An input parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct InputParam {
    /// Short id.
    pub id: String,
    /// Type.
    pub ty: Type,
    /// `default`.
    pub default: Option<Value>,
    /// `inputBinding`.
    pub binding: Option<Binding>,
    /// `secondaryFiles`, as written.
    pub secondary_files: Option<Value>,
    /// `loadContents`.
    pub load_contents: bool,
    /// `loadListing`.
    pub load_listing: Option<String>,
    /// `format`.
    pub format: Option<Value>,
}

/// An output parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputParam {
    /// Short id.
    pub id: String,
    /// Type.
    pub ty: Type,
    /// `outputBinding` (tools).
    pub output_binding: Option<Value>,
    /// `secondaryFiles`, as written.
    pub secondary_files: Option<Value>,
    /// `format`.
    pub format: Option<Value>,
    /// The whole parameter as written (workflows read `outputSource`,
    /// `linkMerge`, `pickValue` from it).
    pub raw: Value,
}

/// A process (tool, expression tool, workflow or operation).
#[derive(Debug, Clone)]
pub struct Process {
    /// The document it is written in.
    pub doc: Arc<Document>,
    /// JSON pointer of the process object in `doc`.
    pub pointer: String,
    /// Class.
    pub class: Class,
    /// `cwlVersion` (its document's).
    pub version: String,
    /// Inputs, in order.
    pub inputs: Vec<InputParam>,
    /// Outputs, in order.
    pub outputs: Vec<OutputParam>,
    /// Requirements (inherited ones first, own last: later wins), then hints.
    pub requirements: Vec<Requirement>,
    /// Named types.
    pub names: Names,
    /// The process object as written.
    pub raw: Value,
    /// The binding file its abstract steps are bound by (passed on to its
    /// steps).
    pub bindings: Option<Arc<crate::bind::Bindings>>,
    /// Its step path in the top-level workflow (`""` for the top level,
    /// `step`, `outer/inner`): how binding files name steps.
    pub step_path: String,
}

/// Requirements twinflow implements.
const SUPPORTED: &[&str] = &[
    "InlineJavascriptRequirement",
    "SchemaDefRequirement",
    "DockerRequirement",
    "InitialWorkDirRequirement",
    "EnvVarRequirement",
    "ShellCommandRequirement",
    "ResourceRequirement",
    "WorkReuse",
    "NetworkAccess",
    "InplaceUpdateRequirement",
    "ToolTimeLimit",
    "SubworkflowFeatureRequirement",
    "ScatterFeatureRequirement",
    "MultipleInputFeatureRequirement",
    "StepInputExpressionRequirement",
    "LoadListingRequirement",
];

impl Process {
    /// The requirement (not hint) or hint of `class` that applies, the
    /// requirement first, the last written winning.
    pub fn find(&self, class: &str) -> Option<&Requirement> {
        let mut found = None;
        for r in self.requirements.iter().filter(|r| !r.hint) {
            if r.class == class {
                found = Some(r);
            }
        }
        found.or_else(|| {
            self.requirements
                .iter()
                .rev()
                .find(|r| r.hint && r.class == class)
        })
    }

    /// Whether `WorkReuse` forbids reusing an earlier run's result.
    pub fn reuse_disabled(&self) -> bool {
        self.find("WorkReuse")
            .and_then(|r| r.value.get("enableReuse"))
            .and_then(Value::as_bool)
            == Some(false)
    }

    /// Whether `InlineJavascriptRequirement` applies.
    pub fn js(&self) -> crate::expr::Js {
        if self
            .find("InlineJavascriptRequirement")
            .is_some_and(|r| !r.hint)
        {
            crate::expr::Js::Declared
        } else {
            crate::expr::Js::NotDeclared
        }
    }

    /// The `expressionLib` of the InlineJavascriptRequirement that applies
    /// (JavaScript texts, `$include`s read by the loader); empty without one.
    pub fn expression_lib(&self) -> &[Value] {
        self.find("InlineJavascriptRequirement")
            .filter(|r| !r.hint)
            .and_then(|r| r.value.get("expressionLib"))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// A field of the process object.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.raw.get(name)
    }

    /// An error located at `field` of this process.
    pub fn error(&self, field: &str, err: CwlError) -> CwlError {
        let pointer = if field.is_empty() {
            self.pointer.clone()
        } else {
            format!("{}/{field}", self.pointer)
        };
        self.doc.error_at(&pointer, err)
    }

    /// The directory relative locations in the process resolve against.
    pub fn dir(&self) -> &Path {
        self.doc.dir()
    }
}

/// The entries of a field written either as a list of objects carrying
/// `key` (`id` or `name`) or as a mapping from that key to the object (or to
/// a shorthand value): `(id, value)` pairs in order, ids as written.
pub fn entries(v: Option<&Value>, key: &str) -> Result<Vec<(String, Value)>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item.get(key).and_then(Value::as_str) {
                Some(id) => Ok((id.to_owned(), item.clone())),
                None => Err(CwlError::invalid(format!(
                    "an entry has no `{key}`: {item}"
                ))),
            })
            .collect(),
        Some(Value::Object(m)) => Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Some(other) => Err(CwlError::invalid(format!(
            "expected a list or a mapping, found {other}"
        ))),
    }
}

/// Reads the requirements or hints list (or mapping from class).
fn requirement_list(v: Option<&Value>, hint: bool) -> Result<Vec<Requirement>> {
    let mut out = Vec::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let class = item.get("class").and_then(Value::as_str).ok_or_else(|| {
                    CwlError::invalid(format!("a requirement has no `class`: {item}"))
                })?;
                out.push(Requirement {
                    class: strip_namespace(class).to_owned(),
                    value: item.clone(),
                    hint,
                });
            }
        }
        Some(Value::Object(m)) => {
            for (class, body) in m {
                let mut value = match body {
                    Value::Object(b) => b.clone(),
                    _ => Map::new(),
                };
                value.insert("class".into(), Value::String(class.clone()));
                out.push(Requirement {
                    class: strip_namespace(class).to_owned(),
                    value: Value::Object(value),
                    hint,
                });
            }
        }
        Some(other) => {
            return Err(CwlError::invalid(format!(
                "requirements must be a list or a mapping, found {other}"
            )));
        }
    }
    Ok(out)
}

fn strip_namespace(class: &str) -> &str {
    class
        .strip_prefix("cwl:")
        .or_else(|| class.strip_prefix("https://w3id.org/cwl/cwl#"))
        .unwrap_or(class)
}

/// Adds the `cwl:requirements` of a job object to `process` (they win over
/// the document's own).
pub fn with_job_requirements(mut process: Process, job: &Value) -> Result<Process> {
    let Some(list) = job.get(crate::compile::JOB_REQUIREMENTS) else {
        return Ok(process);
    };
    let extra = requirement_list(Some(list), false)?;
    for r in &extra {
        if !SUPPORTED.contains(&r.class.as_str()) {
            return Err(CwlError::unsupported(format!(
                "requirement {} in the job object",
                r.class
            )));
        }
        if r.class == "SchemaDefRequirement"
            && let Some(types) = r.value.get("types")
        {
            process.names.add_schema_defs(types);
        }
    }
    process.requirements.extend(extra);
    Ok(process)
}

/// Loads the process at `path` (`file.cwl` or `file.cwl#id`).
pub fn load(path: &Path) -> Result<Process> {
    let (file, fragment) = load::split_fragment(path);
    let doc = load::read(&file)?;
    process_in(&doc, fragment.as_deref(), &[], None)
}

/// The process of `doc` named `fragment` (or its only or `#main` process),
/// inheriting `inherited` requirements and, when the document has none, the
/// `version` of the document that refers to it.
pub fn process_in(
    doc: &Arc<Document>,
    fragment: Option<&str>,
    inherited: &[Requirement],
    version: Option<&str>,
) -> Result<Process> {
    let root_version = doc.value.get("cwlVersion").and_then(Value::as_str);
    let version = match (root_version, version) {
        (Some(v), _) => v.to_owned(),
        (None, Some(v)) => v.to_owned(),
        (None, None) => {
            return Err(doc.error_at(
                "",
                CwlError::invalid("the document has no `cwlVersion` (one of v1.0, v1.1, v1.2)"),
            ));
        }
    };
    if !VERSIONS.contains(&version.as_str()) {
        return Err(doc.error_at(
            "/cwlVersion",
            CwlError::unsupported(format!(
                "cwlVersion {version}: twinflow reads v1.0, v1.1 and v1.2"
            )),
        ));
    }
    let (value, pointer) = match doc.value.get("$graph").and_then(Value::as_array) {
        Some(graph) => {
            let wanted = fragment.unwrap_or("main");
            let found = graph.iter().enumerate().find(|(_, p)| {
                p.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| crate::types::after_hash(id) == wanted)
            });
            match found {
                Some((i, p)) => (p.clone(), format!("/$graph/{i}")),
                None if fragment.is_none() && graph.len() == 1 => {
                    (graph[0].clone(), "/$graph/0".to_owned())
                }
                None => {
                    return Err(doc.error_at(
                        "/$graph",
                        CwlError::invalid(format!("no process with id `#{wanted}` in $graph")),
                    ));
                }
            }
        }
        None => (doc.value.clone(), String::new()),
    };
    from_value(doc, value, pointer, inherited, version)
}

/// Reads the process object `value` found at `pointer` of `doc`.
pub fn from_value(
    doc: &Arc<Document>,
    value: Value,
    pointer: String,
    inherited: &[Requirement],
    version: String,
) -> Result<Process> {
    let at = |field: &str, e: CwlError| doc.error_at(&format!("{pointer}/{field}"), e);
    let class = match value.get("class").and_then(Value::as_str) {
        Some("CommandLineTool") => Class::CommandLineTool,
        Some("ExpressionTool") => Class::ExpressionTool,
        Some("Workflow") => Class::Workflow,
        Some("Operation") => Class::Operation,
        Some(other) => {
            return Err(at(
                "class",
                CwlError::invalid(format!(
                    "unknown class `{other}` (expected CommandLineTool, ExpressionTool, Workflow or Operation)"
                )),
            ));
        }
        None => return Err(at("", CwlError::invalid("the process has no `class`"))),
    };
    if let Some((field, message)) = newer_syntax(&value, &version) {
        return Err(at(&field, CwlError::invalid(message)));
    }
    let own =
        requirement_list(value.get("requirements"), false).map_err(|e| at("requirements", e))?;
    let hints = requirement_list(value.get("hints"), true).map_err(|e| at("hints", e))?;
    for r in &own {
        if !SUPPORTED.contains(&r.class.as_str()) {
            let known = KNOWN_UNSUPPORTED.contains(&r.class.as_str());
            let err = if known {
                CwlError::unsupported(format!("requirement {}", r.class))
            } else {
                CwlError::invalid(format!("unknown requirement `{}`", r.class))
            };
            return Err(at("requirements", err));
        }
    }
    let mut requirements: Vec<Requirement> =
        inherited.iter().filter(|r| !r.hint).cloned().collect();
    requirements.extend(own);
    requirements.extend(inherited.iter().filter(|r| r.hint).cloned());
    requirements.extend(hints);
    let mut names = Names::default();
    for r in requirements
        .iter()
        .filter(|r| r.class == "SchemaDefRequirement")
    {
        if let Some(types) = r.value.get("types") {
            names.add_schema_defs(types);
        }
    }
    let inputs = entries(value.get("inputs"), "id")
        .map_err(|e| at("inputs", e))?
        .into_iter()
        .map(|(id, v)| {
            input_param(&id, &v, &names).map_err(|e| at(&format!("inputs/{}", pointer_key(&id)), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = entries(value.get("outputs"), "id")
        .map_err(|e| at("outputs", e))?
        .into_iter()
        .map(|(id, v)| {
            output_param(&id, &v, &names)
                .map_err(|e| at(&format!("outputs/{}", pointer_key(&id)), e))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Process {
        doc: Arc::clone(doc),
        pointer,
        class,
        version,
        inputs,
        outputs,
        requirements,
        names,
        raw: value,
        bindings: None,
        step_path: String::new(),
    })
}

/// The first field of process `value` written with syntax newer than its
/// `version` (what the schema of that version refuses): a step's `when`
/// (v1.2), fractional ResourceRequirement numbers (v1.2), `secondaryFiles`
/// entries as `{pattern, required}` objects (v1.1).
fn newer_syntax(value: &Value, version: &str) -> Option<(String, String)> {
    if version == "v1.2" {
        return None;
    }
    let steps = entries(value.get("steps"), "id").unwrap_or_default();
    if let Some((id, _)) = steps.iter().find(|(_, s)| s.get("when").is_some()) {
        let message = format!("step `{id}`: `when` is CWL v1.2, this document is {version}");
        return Some(("steps".into(), message));
    }
    for field in ["requirements", "hints"] {
        let list = requirement_list(value.get(field), false).unwrap_or_default();
        for r in list.iter().filter(|r| r.class == "ResourceRequirement") {
            let fractional = r.value.as_object().and_then(|m| {
                m.iter()
                    .find(|(_, v)| v.as_f64().is_some_and(|x| x.fract() != 0.0))
            });
            if let Some((key, n)) = fractional {
                let message = format!(
                    "ResourceRequirement {key}: {n}: fractional values are CWL v1.2, this document is {version}"
                );
                return Some((field.into(), message));
            }
        }
    }
    if version == "v1.0" {
        for field in ["inputs", "outputs"] {
            let params = entries(value.get(field), "id").unwrap_or_default();
            let uses_objects = |(_, p): &&(String, Value)| match p.get("secondaryFiles") {
                Some(Value::Array(items)) => items.iter().any(Value::is_object),
                Some(one) => one.is_object(),
                None => false,
            };
            if let Some((id, _)) = params.iter().find(uses_objects) {
                let message = format!(
                    "{field} `{id}`: secondaryFiles as {{pattern, required}} is CWL v1.1, this document is v1.0"
                );
                return Some((field.into(), message));
            }
        }
    }
    None
}

/// Requirement classes of CWL that twinflow does not implement.
const KNOWN_UNSUPPORTED: &[&str] = &["MPIRequirement", "CUDARequirement", "SoftwareRequirement"];

fn pointer_key(id: &str) -> String {
    id.replace('~', "~0").replace('/', "~1")
}

/// A parameter written as a bare type (`x: File`) as an object.
fn as_object(v: &Value) -> Value {
    match v {
        Value::Object(_) => v.clone(),
        other => serde_json::json!({ "type": other }),
    }
}

fn input_param(id: &str, v: &Value, names: &Names) -> Result<InputParam> {
    let v = as_object(v);
    let ty = match v.get("type") {
        Some(t) => Type::parse(t, names)?,
        None => {
            return Err(CwlError::invalid(format!(
                "input `{}` has no type",
                short_name(id)
            )));
        }
    };
    let binding = v.get("inputBinding").map(Binding::parse).transpose()?;
    let load_contents = v
        .get("loadContents")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || binding.as_ref().is_some_and(|b| b.load_contents);
    Ok(InputParam {
        id: short_name(id).to_owned(),
        ty,
        default: v.get("default").cloned(),
        binding,
        secondary_files: v.get("secondaryFiles").cloned(),
        load_contents,
        load_listing: v
            .get("loadListing")
            .and_then(Value::as_str)
            .map(str::to_owned),
        format: v.get("format").cloned(),
    })
}

fn output_param(id: &str, v: &Value, names: &Names) -> Result<OutputParam> {
    let v = as_object(v);
    let ty = match v.get("type") {
        Some(t) => Type::parse(t, names)?,
        None => {
            return Err(CwlError::invalid(format!(
                "output `{}` has no type",
                short_name(id)
            )));
        }
    };
    Ok(OutputParam {
        id: short_name(id).to_owned(),
        ty,
        output_binding: v.get("outputBinding").cloned(),
        secondary_files: v.get("secondaryFiles").cloned(),
        format: v.get("format").cloned(),
        raw: v,
    })
}
