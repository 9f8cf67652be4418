//! The provenance crate: a Workflow Run RO-Crate (RO-Crate 1.1, Provenance
//! Run Crate profile 0.5) of one run.
//!
//! Layout and ids (stable: derived from names in the plan, never from
//! times or counters):
//!
//! ```text
//! ro-crate-metadata.json
//! workflow/<file>                      the workflow file (mainEntity)
//! models/<dir>/...                     each step's model crate (`model:`), copied
//! files/<step>/<instance>/<path>       artefacts up to the size caps, copied
//! ```
//!
//! `#run` is the workflow run (`CreateAction`), `#engine` twinflow,
//! `#organize` its `OrganizeAction`, `#step/<s>` a `HowToStep`,
//! `#control/<s>` the `ControlAction` of a step's tasks, `#tool/<s>` the
//! step's tool (its model crate's software entity when it has one),
//! `#task/<task name>` a task (`CreateAction`), `#param/...` formal
//! parameters, `#pv/<name>` parameter values. An artefact over the caps is
//! described, not copied: its id is its absolute `file://` URI on the host
//! that ran the run, with size and SHA-256.

use crate::record::{RunRecord, rfc3339};
use crate::sink::Sink;
use crate::{ReportError, model};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use twinflow_core::{ContainerRuntime, ExecutorKind, TaskId};
use twinflow_engine::TaskState;

const PROFILES: [(&str, &str, &str); 4] = [
    (
        "https://w3id.org/ro/wfrun/process/0.5",
        "Process Run Crate",
        "0.5",
    ),
    (
        "https://w3id.org/ro/wfrun/workflow/0.5",
        "Workflow Run Crate",
        "0.5",
    ),
    (
        "https://w3id.org/ro/wfrun/provenance/0.5",
        "Provenance Run Crate",
        "0.5",
    ),
    (
        "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
        "Workflow RO-Crate",
        "1.0",
    ),
];
const FORMAL_PARAMETER: &str = "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE";
const COMPUTATIONAL_WORKFLOW: &str =
    "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE";
/// twinflow's own terms (command, executor, handle, ...), defined in the
/// crate's `@context` and described as `rdf:Property` entities.
const TERMS: &str = "https://twinflow.dev/terms#";
const OWN_TERMS: [(&str, &str); 10] = [
    (
        "alteredAfterSealing",
        "The file no longer has the size and SHA-256 recorded when its task sealed it; it is not in the crate",
    ),
    ("command", "The shell script the task ran, as substituted"),
    ("executor", "The workflow executor (role) that ran the task"),
    (
        "executorKind",
        "The kind of that executor: local, slurm or cloud",
    ),
    (
        "handle",
        "The task's backend handle as twinflow stored it (local: the process; Slurm: job and status file)",
    ),
    (
        "slurmJobId",
        "The Slurm job (or job_arrayindex) that ran the task",
    ),
    (
        "host",
        "The host the twinflow process that ran the run was on",
    ),
    (
        "attempt",
        "The task's latest attempt number (0 for the first; retries add one), as in its log file names",
    ),
    ("exitCode", "The exit status of the task's latest attempt"),
    (
        "cachedFrom",
        "The earlier run whose result this task reused, not running again",
    ),
];

/// Longer commands are files of the crate.
const MAX_INLINE_COMMAND: usize = 8192;

/// Gathers of more files than this are one `Collection` entity.
const MAX_INLINE_GATHER: usize = 8;

/// What to include.
#[derive(Debug, Clone)]
pub struct CrateOptions {
    /// Artefacts up to this size are copied into the crate.
    pub max_file_bytes: u64,
    /// ... while the copied artefacts stay under this total.
    pub max_total_bytes: u64,
    /// The crate's licence: an SPDX identifier (`CC-BY-4.0`), a URL, or
    /// text; `None`: a sentence saying that none was given.
    pub license: Option<String>,
    /// A sealed file that changed since the run (its bytes are not the
    /// sealed size and SHA-256) fails the export ([`ReportError::Altered`]);
    /// with this, it is described as sealed, marked `alteredAfterSealing`,
    /// listed in [`CrateSummary::altered`] and not copied.
    pub allow_altered: bool,
}

impl Default for CrateOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: 16 << 20,
            max_total_bytes: 1 << 30,
            license: None,
            allow_altered: false,
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct CrateSummary {
    /// The directory or archive.
    pub path: PathBuf,
    /// Task actions described.
    pub actions: usize,
    /// Artefacts described.
    pub files: usize,
    /// Of those, copied into the crate.
    pub files_included: usize,
    /// Bytes copied.
    pub bytes_included: u64,
    /// Sealed files that changed since the run, left out of the crate
    /// (only with [`CrateOptions::allow_altered`]): path, task and output.
    pub altered: Vec<String>,
}

/// Writes the provenance crate of `record` to `out`: a directory, or a zip
/// archive when `out` ends in `.zip`.
pub fn write_provenance(
    record: &RunRecord,
    out: &Path,
    options: &CrateOptions,
) -> Result<CrateSummary, ReportError> {
    let workflow_file = record
        .plan
        .workflow
        .file
        .clone()
        .or_else(|| record.run.file.as_ref().map(PathBuf::from))
        .ok_or_else(|| ReportError::NoWorkflowFile(record.run.id.clone()))?;
    let mut builder = Builder::new(record, options);
    let graph = builder.graph(&workflow_file);
    if !builder.altered.is_empty() && !options.allow_altered {
        return Err(ReportError::Altered {
            files: builder.altered,
        });
    }
    let metadata = json!({
        "@context": ["https://w3id.org/ro/crate/1.1/context", own_context()],
        "@graph": graph,
    });
    let text = serde_json::to_string_pretty(&metadata).unwrap_or_default();
    let mut sink = Sink::create(out)?;
    sink.bytes("ro-crate-metadata.json", text.as_bytes())?;
    sink.copy(&builder.workflow_id, &workflow_file)?;
    for (rel, source, sealed) in &builder.copies {
        let copied = sink.copy(rel, source)?;
        if let Some(sealed) = sealed
            && copied != *sealed
        {
            // Checked when the graph was built, changed since.
            return Err(ReportError::Altered {
                files: vec![format!(
                    "{} (changed while the crate was written)",
                    source.display()
                )],
            });
        }
    }
    for (rel, script) in &builder.scripts {
        sink.bytes(rel, script.as_bytes())?;
    }
    sink.finish()?;
    Ok(CrateSummary {
        path: out.to_owned(),
        actions: builder.actions,
        files: builder.files.len(),
        files_included: builder.included,
        bytes_included: builder.included_bytes,
        altered: builder.altered,
    })
}

/// The Workflow Run Crate terms (as its context at
/// https://w3id.org/ro/terms/workflow-run/context defines them), inline so
/// that the crate needs only the RO-Crate 1.1 context to be read.
const WFRUN_TERMS: [&str; 13] = [
    "ContainerImage",
    "DockerImage",
    "SIFImage",
    "ParameterConnection",
    "connection",
    "containerImage",
    "environment",
    "registry",
    "resourceUsage",
    "sha256",
    "sourceParameter",
    "tag",
    "targetParameter",
];

/// The crate's own `@context` entry: Workflow Run Crate terms, `sha256`
/// (as RO-Crate 1.2 maps it) and twinflow's terms.
fn own_context() -> Value {
    let mut ctx = Map::new();
    ctx.insert(
        "wfrun".into(),
        json!("https://w3id.org/ro/terms/workflow-run#"),
    );
    for term in WFRUN_TERMS {
        ctx.insert(term.into(), json!(format!("wfrun:{term}")));
    }
    ctx.insert("sha256".into(), json!("http://schema.org/sha256"));
    ctx.insert("twinflow".into(), json!(TERMS));
    for (term, _) in OWN_TERMS {
        ctx.insert(term.into(), json!(format!("twinflow:{term}")));
    }
    Value::Object(ctx)
}

fn id(s: impl Into<String>) -> Value {
    json!({ "@id": s.into() })
}

/// References to `list`: one value alone, as RO-Crate recommends, else an array.
fn ids<I: IntoIterator<Item = String>>(list: I) -> Value {
    let mut all: Vec<Value> = list.into_iter().map(id).collect();
    if all.len() == 1 {
        all.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(all)
    }
}

/// `text` as a URI path or fragment: bytes other than unreserved characters
/// and `!$&'()*+,;=:@/` percent-encoded (task names hold `[`, `]`, and
/// parameter values anything).
fn iri_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A file to copy into the crate: (crate path, source, the sealed size and
/// SHA-256 its bytes must have).
type Copy = (String, PathBuf, Option<(u64, String)>);

/// Builds the graph; remembers which files to copy.
struct Builder<'a> {
    record: &'a RunRecord,
    options: &'a CrateOptions,
    workflow_id: String,
    /// Artefact (task, output) -> its entity id.
    files: BTreeMap<(u32, String), String>,
    copies: Vec<Copy>,
    /// Sealed files that changed since the run: path, task and output.
    altered: Vec<String>,
    /// File id -> the input parameters it was staged as.
    consumed: BTreeMap<String, Vec<String>>,
    /// Gathered inputs of many files, one entity per distinct set.
    collections: Vec<Value>,
    /// Long commands, written as files (crate path, script).
    scripts: Vec<(String, String)>,
    included: usize,
    included_bytes: u64,
    actions: usize,
}

impl<'a> Builder<'a> {
    fn new(record: &'a RunRecord, options: &'a CrateOptions) -> Self {
        Self {
            record,
            options,
            workflow_id: String::new(),
            files: BTreeMap::new(),
            copies: Vec::new(),
            altered: Vec::new(),
            consumed: BTreeMap::new(),
            collections: Vec::new(),
            scripts: Vec::new(),
            included: 0,
            included_bytes: 0,
            actions: 0,
        }
    }

    fn graph(&mut self, workflow_file: &Path) -> Vec<Value> {
        let record = self.record;
        let plan = &record.plan;
        let file_name = workflow_file.file_name().map_or_else(
            || "workflow.yaml".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.workflow_id = format!("workflow/{file_name}");
        let mut graph = Vec::new();
        let mut parts = vec![self.workflow_id.clone()];
        let mut entities = Vec::new();

        // Artefacts first: every action refers to them.
        let mut file_entities = self.file_entities();

        // Parameters of the workflow and their values.
        let mut wf_inputs = Vec::new();
        let mut values = Vec::new();
        for (name, value) in &plan.params {
            let fp = format!("#param/{name}");
            let list = value.as_slice();
            entities.push(json!({
                "@id": fp,
                "@type": "FormalParameter",
                "conformsTo": id(FORMAL_PARAMETER),
                "name": name,
                "additionalType": "Text",
                "valueRequired": true,
                "multipleValues": list.len() > 1,
            }));
            let pv = format!("#pv/{name}");
            entities.push(json!({
                "@id": pv,
                "@type": "PropertyValue",
                "name": name,
                "value": if list.len() == 1 { json!(list[0]) } else { json!(list) },
                "exampleOfWork": id(&fp),
            }));
            wf_inputs.push(fp);
            values.push(pv);
        }

        // Steps, their tools and the connections between them.
        let sinks = plan.sink_steps();
        let mut wf_outputs = Vec::new();
        let mut steps = Vec::new();
        let mut tools = Vec::new();
        let mut connections = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let name = &step.name;
            let tool_id = format!("#tool/{name}");
            let inputs: Vec<String> = step
                .inputs
                .iter()
                .map(|inp| format!("#param/{name}/in/{}", inp.name))
                .collect();
            let outputs: Vec<String> = step
                .outputs
                .iter()
                .map(|o| format!("#param/{name}/out/{}", o.name))
                .collect();
            for (inp, fp) in step.inputs.iter().zip(&inputs) {
                entities.push(formal_file(fp, &inp.name, inp.gather));
                let producer = &plan.steps[inp.from_step.index()].name;
                let conn = format!("#connection/{name}/{}", inp.name);
                entities.push(json!({
                    "@id": conn,
                    "@type": "ParameterConnection",
                    "sourceParameter": id(format!("#param/{producer}/out/{}", inp.output)),
                    "targetParameter": id(fp),
                }));
                connections.push(conn);
            }
            for (out, fp) in step.outputs.iter().zip(&outputs) {
                entities.push(formal_file(fp, &out.name, false));
                if sinks.contains(&i) {
                    wf_outputs.push(fp.clone());
                }
            }
            let mut tool = Map::new();
            let mut model_context = Vec::new();
            if let Some(dir) = &step.model {
                let dir_name = dir
                    .file_name()
                    .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
                if let Some(m) = model::read(dir, &dir_name, &tool_id) {
                    tool = m.tool;
                    model_context = m.context;
                    let crate_dir = format!("models/{dir_name}/");
                    let files = model::files(dir, 1000, 64 << 20);
                    for f in &files {
                        self.copies
                            .push((format!("{crate_dir}{f}"), dir.join(f), None));
                    }
                    entities.push(json!({
                        "@id": crate_dir,
                        "@type": "Dataset",
                        "name": format!("model crate of step {name}"),
                        "conformsTo": id("https://w3id.org/ro/crate/1.1"),
                        "hasPart": ids(files.iter().map(|f| iri_safe(&format!("{crate_dir}{f}")))),
                    }));
                    for f in &files {
                        entities.push(
                            json!({ "@id": iri_safe(&format!("{crate_dir}{f}")), "@type": "File" }),
                        );
                    }
                    parts.push(crate_dir);
                }
            }
            if tool.is_empty() {
                tool.insert("@id".into(), json!(tool_id));
                tool.insert("@type".into(), json!("SoftwareApplication"));
                tool.insert("name".into(), json!(name));
            }
            if let Some(d) = &step.description {
                tool.entry("description").or_insert_with(|| json!(d));
            }
            tool.insert("input".into(), ids(inputs.clone()));
            tool.insert("output".into(), ids(outputs.clone()));
            entities.push(Value::Object(tool));
            entities.extend(model_context);
            let step_id = format!("#step/{name}");
            let mut how = json!({
                "@id": step_id,
                "@type": "HowToStep",
                "name": name,
                "position": i.to_string(),
                "workExample": id(&tool_id),
            });
            let mine: Vec<String> = step
                .inputs
                .iter()
                .map(|inp| format!("#connection/{name}/{}", inp.name))
                .collect();
            if !mine.is_empty() {
                how["connection"] = ids(mine);
            }
            entities.push(how);
            if let Some(c) = &step.container {
                let digest = self
                    .record
                    .images
                    .iter()
                    .find(|i| i.step == *name && i.image == c.image)
                    .map(|i| i.digest.as_str());
                entities.push(container_entity(name, &c.image, c.runtime, digest));
            }
            steps.push(step_id);
            tools.push(tool_id);
        }

        // Tasks, one CreateAction each, and one ControlAction per step.
        let mut controls = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let mut actions = Vec::new();
            for t in step.tasks.clone() {
                if let Some(action) = self.task_action(TaskId(t)) {
                    actions.push(action["@id"].as_str().unwrap_or_default().to_owned());
                    entities.push(action);
                }
            }
            if actions.is_empty() {
                continue;
            }
            let control = format!("#control/{}", step.name);
            entities.push(json!({
                "@id": control,
                "@type": "ControlAction",
                "name": format!("orchestrate step {} ({} tasks)", step.name, actions.len()),
                "instrument": id(&steps[i]),
                "object": ids(actions),
            }));
            controls.push(control);
        }

        // A file is an example of its producer's output parameter and of
        // every input parameter it was staged as.
        for entity in &mut file_entities {
            if let Some(inputs) = self
                .consumed
                .get(entity["@id"].as_str().unwrap_or_default())
            {
                let mut all = vec![
                    entity["exampleOfWork"]["@id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ];
                all.extend(inputs.iter().cloned());
                entity["exampleOfWork"] = ids(all);
            }
        }
        let task_actions: Vec<String> = entities
            .iter()
            .filter(|e| e["@id"].as_str().is_some_and(|i| i.starts_with("#task/")))
            .map(entity_id_of)
            .collect();

        // The run, the engine and its orchestration.
        let (status, error) = run_status(record);
        let results: Vec<String> = plan
            .steps
            .iter()
            .enumerate()
            .filter(|(i, _)| sinks.contains(i))
            .flat_map(|(_, s)| s.tasks.clone())
            .flat_map(|t| {
                record.artefacts[t as usize]
                    .iter()
                    .filter_map(|a| self.files.get(&(t, a.output.clone())).cloned())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut run = json!({
            "@id": "#run",
            "@type": "CreateAction",
            "name": format!("twinflow run {} of {}", record.run.id, plan.workflow.name),
            "identifier": record.run.id,
            "instrument": id(&self.workflow_id),
            "object": ids(values.clone()),
            "result": ids(results),
            "startTime": rfc3339(record.run.created_ms),
            "actionStatus": id(status),
            "host": record.run.host,
        });
        if let Some(end) = record.ended_ms() {
            run["endTime"] = json!(rfc3339(end));
        }
        if let Some(e) = error {
            run["error"] = json!(e);
        }
        let mut organize = json!({
            "@id": "#organize",
            "@type": "OrganizeAction",
            "name": format!("twinflow orchestration of run {}", record.run.id),
            "instrument": id("#engine"),
            "object": ids(controls),
            "result": id("#run"),
            "startTime": rfc3339(record.run.created_ms),
        });
        if let Some(end) = record.ended_ms() {
            organize["endTime"] = json!(rfc3339(end));
        }

        // The root, the metadata descriptor and the workflow.
        let now = rfc3339(jiff::Timestamp::now().as_millisecond());
        let included: Vec<String> = self.copies_of_files();
        parts.extend(included);
        parts.extend(self.scripts.iter().map(|(rel, _)| iri_safe(rel)));
        let mut root = json!({
            "@id": "./",
            "@type": "Dataset",
            "name": format!("Provenance of twinflow run {}", record.run.id),
            "description": format!(
                "Workflow Run RO-Crate of run {} of workflow {}: {} tasks, {}.",
                record.run.id, plan.workflow.name, plan.task_count(), record.run.state.as_str()
            ),
            "datePublished": now,
            "conformsTo": ids(PROFILES.iter().map(|(p, _, _)| (*p).to_owned())),
            "mainEntity": id(&self.workflow_id),
            "hasPart": ids(parts),
            "mentions": ids(std::iter::once("#run".to_owned()).chain(task_actions)),
        });
        if let Some(d) = &plan.workflow.description {
            root["abstract"] = json!(d);
        }
        root["license"] = license(self.options.license.as_deref(), &mut entities);
        graph.push(json!({
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": [
                id("https://w3id.org/ro/crate/1.1"),
                id("https://w3id.org/workflowhub/workflow-ro-crate/1.0"),
            ],
            "about": id("./"),
        }));
        graph.push(root);
        for (uri, name, version) in PROFILES {
            graph.push(
                json!({ "@id": uri, "@type": "CreativeWork", "name": name, "version": version }),
            );
        }
        let mut workflow = json!({
            "@id": self.workflow_id,
            "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
            "conformsTo": id(COMPUTATIONAL_WORKFLOW),
            "name": plan.workflow.name,
            "programmingLanguage": id("#twinflow-language"),
            "input": ids(wf_inputs),
            "output": ids(wf_outputs),
            "hasPart": ids(tools),
            "step": ids(steps),
            "connection": ids(connections),
            "encodingFormat": "application/yaml",
        });
        if let Some(d) = &plan.workflow.description {
            workflow["description"] = json!(d);
        }
        if let Ok(bytes) = std::fs::read(workflow_file) {
            use sha2::Digest;
            workflow["contentSize"] = json!(bytes.len().to_string());
            workflow["sha256"] = json!(format!("{:x}", sha2::Sha256::digest(&bytes)));
        }
        graph.push(workflow);
        graph.push(json!({
            "@id": "#twinflow-language",
            "@type": "ComputerLanguage",
            "name": "twinflow workflow language",
            "alternateName": "twinflow",
            "version": "1",
            "url": id("https://twinflow.dev/schemas/workflow.v1.schema.json"),
        }));
        graph.push(json!({
            "@id": "#engine",
            "@type": "SoftwareApplication",
            "name": "twinflow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Workflow orchestration for coupled digital twins on HPC",
        }));
        graph.push(run);
        graph.push(organize);
        graph.extend(entities);
        graph.extend(crate::operator::entities(&self.record.actions, |name| {
            format!("#task/{}", iri_safe(name))
        }));
        graph.extend(file_entities);
        graph.append(&mut self.collections);
        for (rel, script) in &self.scripts {
            graph.push(json!({
                "@id": iri_safe(rel),
                "@type": "File",
                "name": "a task's command (too long to inline)",
                "encodingFormat": "text/x-shellscript",
                "contentSize": script.len().to_string(),
            }));
        }
        for (term, comment) in OWN_TERMS {
            graph.push(json!({
                "@id": format!("{TERMS}{term}"),
                "@type": "rdf:Property",
                "rdfs:label": term,
                "rdfs:comment": comment,
            }));
        }
        graph
    }

    /// Ids of the copied artefacts (for the root's `hasPart`).
    fn copies_of_files(&self) -> Vec<String> {
        self.copies
            .iter()
            .filter(|(rel, _, _)| rel.starts_with("files/"))
            .map(|(rel, _, _)| iri_safe(rel))
            .collect()
    }

    /// One `File` per sealed artefact; copies those under the caps.
    fn file_entities(&mut self) -> Vec<Value> {
        let record = self.record;
        let plan = &record.plan;
        let run_dir = record.run_dir();
        let mut out = Vec::new();
        let mut citations = Vec::new();
        for (t, artefacts) in record.artefacts.iter().enumerate() {
            let task = TaskId(t as u32);
            if t >= plan.task_count() {
                break;
            }
            let step = plan.step_of(task);
            let instance = plan.instance_index(task);
            for a in artefacts {
                let rel_path = step
                    .outputs
                    .iter()
                    .find(|o| o.name == a.output)
                    .map_or_else(|| a.output.clone(), |o| o.path.clone());
                let crate_rel = format!("files/{}/{instance}/{rel_path}", step.name);
                let source = PathBuf::from(&a.path);
                let fits = a.size <= self.options.max_file_bytes
                    && self.included_bytes + a.size <= self.options.max_total_bytes
                    && source.is_file();
                // A file to copy must still be what was sealed (one that is
                // gone is described by its path, as one too big to copy).
                let sealed = (a.size, a.sha256.clone());
                let altered =
                    fits && crate::verify::file_digest(&source).map_or(true, |now| now != sealed);
                if altered {
                    self.altered.push(format!(
                        "{} ({}, output `{}`)",
                        source.display(),
                        plan.task_name(task),
                        a.output
                    ));
                }
                let entity_id = if fits && !altered {
                    self.included += 1;
                    self.included_bytes += a.size;
                    self.copies
                        .push((crate_rel.clone(), source.clone(), Some(sealed)));
                    iri_safe(&crate_rel)
                } else {
                    format!("file://{}", iri_safe(&a.path))
                };
                let mut entity = json!({
                    "@id": entity_id,
                    "@type": "File",
                    "name": rel_path,
                    "contentSize": a.size.to_string(),
                    "sha256": a.sha256,
                    "exampleOfWork": id(format!("#param/{}/out/{}", step.name, a.output)),
                });
                if altered {
                    entity["alteredAfterSealing"] = json!(true);
                }
                if let Ok(rel) = source.strip_prefix(&run_dir) {
                    entity["alternateName"] = json!(rel.display().to_string());
                }
                if let Some(format) = media_type(&rel_path) {
                    entity["encodingFormat"] = json!(format);
                }
                if plan.executor_of(task).backend.kind() == ExecutorKind::Fetch {
                    crate::source_entity::describe(&mut entity, &source, &mut citations);
                }
                self.files
                    .insert((task.0, a.output.clone()), entity_id_of(&entity));
                out.push(entity);
            }
        }
        citations.dedup_by(|a, b| a["@id"] == b["@id"]);
        out.extend(citations);
        out
    }

    /// The `CreateAction` of a task that has a record.
    fn task_action(&mut self, task: TaskId) -> Option<Value> {
        let record = self.record;
        let plan = &record.plan;
        let row = record.tasks.get(task.index())?.as_ref()?;
        let step = plan.step_of(task);
        let executor = plan.executor_of(task);
        let name = plan.task_name(task);
        let mut objects = Vec::new();
        for input in plan.inputs(task) {
            let fp = format!("#param/{}/in/{}", step.name, input.spec.name);
            let files: Vec<String> = input
                .producers
                .iter()
                .filter_map(|p| self.files.get(&(p.0, input.spec.output.clone())).cloned())
                .collect();
            if input.spec.gather && files.len() > MAX_INLINE_GATHER {
                objects.push(self.collection(&step.name, &input.spec.name, &fp, files));
                continue;
            }
            for f in files {
                self.note_consumed(&f, &fp);
                objects.push(f);
            }
        }
        let results: Vec<String> = record.artefacts[task.index()]
            .iter()
            .filter_map(|a| self.files.get(&(task.0, a.output.clone())).cloned())
            .collect();
        let mut action = json!({
            "@id": format!("#task/{}", iri_safe(&name)),
            "@type": "CreateAction",
            "name": name,
            "instrument": id(format!("#tool/{}", step.name)),
            "object": ids(objects),
            "result": ids(results),
            "actionStatus": id(task_status(row.state)),
            "command": self.command(task),
            "executor": executor.name,
            "executorKind": executor.backend.kind().as_str(),
            "host": record.run.host,
            "attempt": row.attempt,
        });
        if let Some(h) = &row.handle {
            action["handle"] = json!(h);
            let job = h
                .strip_prefix("slurm:")
                .or_else(|| h.strip_prefix("slurm-pack:"))
                .and_then(|rest| rest.split(':').next());
            if let Some(job) = job {
                action["slurmJobId"] = json!(job);
            }
        }
        if let Some(ms) = row.started_ms {
            action["startTime"] = json!(rfc3339(ms));
        }
        if let Some(ms) = row.finished_ms {
            action["endTime"] = json!(rfc3339(ms));
        }
        if let Some(code) = row.exit_status() {
            action["exitCode"] = json!(code);
        }
        if let Some(from) = &row.cached_from {
            action["cachedFrom"] = json!(from);
            action["description"] = json!(format!(
                "not run again: the result of run {from} was reused"
            ));
        }
        if let Some(reason) = &row.reason {
            action["error"] = json!(reason);
        }
        if step.container.is_some() {
            action["containerImage"] = id(format!("#container/{}", step.name));
        }
        self.actions += 1;
        Some(action)
    }
}

/// The root's `license`: a URL (an SPDX identifier becomes its SPDX URL,
/// described by a contextual entity), else the text given, else a sentence.
fn license(given: Option<&str>, graph: &mut Vec<Value>) -> Value {
    let Some(given) = given.map(str::trim).filter(|g| !g.is_empty()) else {
        return json!(
            "No licence was given for this crate (twinflow provenance --license); ask the run's owner before reuse."
        );
    };
    let spdx_like = !given.contains(char::is_whitespace)
        && given
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+'));
    let url = if given.contains("://") {
        given.to_owned()
    } else if spdx_like {
        format!("https://spdx.org/licenses/{given}")
    } else {
        return json!(given);
    };
    let mut entity = json!({ "@id": url, "@type": "CreativeWork", "name": given });
    if spdx_like {
        entity["identifier"] = json!(given);
    }
    graph.push(entity);
    id(url)
}

impl Builder<'_> {
    fn note_consumed(&mut self, file: &str, fp: &str) {
        let list = self.consumed.entry(file.to_owned()).or_default();
        if !list.iter().any(|x| x == fp) {
            list.push(fp.to_owned());
        }
    }

    /// A task's command, or for one over [`MAX_INLINE_COMMAND`] bytes (a
    /// gather of thousands of paths) a note naming the file of the crate
    /// that holds it, `commands/<step>/<instance>.sh`.
    fn command(&mut self, task: TaskId) -> String {
        let plan = &self.record.plan;
        let command = plan.task(task).command.as_ref();
        if command.len() <= MAX_INLINE_COMMAND {
            return command.to_owned();
        }
        let rel = format!(
            "commands/{}/{}.sh",
            plan.step_of(task).name,
            plan.instance_index(task)
        );
        self.scripts.push((rel.clone(), command.to_owned()));
        format!("{} bytes: the script is {rel} in this crate", command.len())
    }

    /// The `Collection` of a gather's files, one per distinct set: a
    /// gather of thousands by each of thousands of tasks would otherwise
    /// list millions of references.
    fn collection(&mut self, step: &str, input: &str, fp: &str, files: Vec<String>) -> String {
        use sha2::Digest;
        let mut digest = sha2::Sha256::new();
        for f in &files {
            digest.update(f.as_bytes());
            digest.update(b"\n");
        }
        let hex = format!("{:x}", digest.finalize());
        let coll = format!("#collection/{step}/{input}/{}", &hex[..16]);
        if self.collections.iter().any(|c| c["@id"] == coll.as_str()) {
            return coll;
        }
        for f in &files {
            self.note_consumed(f, fp);
        }
        self.collections.push(json!({
            "@id": coll,
            "@type": "Collection",
            "name": format!("{} files gathered as input {input} of step {step}", files.len()),
            "hasPart": ids(files),
            "exampleOfWork": id(fp),
        }));
        coll
    }
}

fn entity_id_of(entity: &Value) -> String {
    entity["@id"].as_str().unwrap_or_default().to_owned()
}

fn formal_file(fp: &str, name: &str, many: bool) -> Value {
    json!({
        "@id": fp,
        "@type": "FormalParameter",
        "conformsTo": id(FORMAL_PARAMETER),
        "name": name,
        "additionalType": "File",
        "multipleValues": many,
    })
}

/// The `ContainerImage` of a step, with `sha256` (hex) when the executor
/// resolved the image's digest at submit.
fn container_entity(
    step: &str,
    image: &str,
    runtime: Option<ContainerRuntime>,
    digest: Option<&str>,
) -> Value {
    let reference = image.strip_prefix("docker://").unwrap_or(image);
    let sif = image.ends_with(".sif")
        || matches!(
            runtime,
            Some(ContainerRuntime::Apptainer | ContainerRuntime::Singularity)
        ) && !image.starts_with("docker://");
    let mut entity = json!({
        "@id": format!("#container/{step}"),
        "@type": "ContainerImage",
        "additionalType": id(if sif {
            "https://w3id.org/ro/terms/workflow-run#SIFImage"
        } else {
            "https://w3id.org/ro/terms/workflow-run#DockerImage"
        }),
        "name": reference,
    });
    if !sif {
        let (path, tag) = match reference.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t)),
            _ => (reference, None),
        };
        let (registry, name) = match path.split_once('/') {
            Some((r, n)) if r.contains('.') || r.contains(':') || r == "localhost" => (r, n),
            _ => ("docker.io", path),
        };
        entity["registry"] = json!(registry);
        entity["name"] = json!(name);
        if let Some(t) = tag {
            entity["tag"] = json!(t);
        }
    }
    if let Some(hex) = digest.and_then(|d| d.strip_prefix("sha256:")) {
        entity["sha256"] = json!(hex);
    }
    entity
}

fn task_status(state: TaskState) -> &'static str {
    match state {
        TaskState::Succeeded => "http://schema.org/CompletedActionStatus",
        TaskState::Failed | TaskState::Lost | TaskState::Cancelled => {
            "http://schema.org/FailedActionStatus"
        }
        TaskState::Queued | TaskState::Running | TaskState::Awaiting | TaskState::Retrying => {
            "http://schema.org/ActiveActionStatus"
        }
        TaskState::Skipped | TaskState::Waiting => "http://schema.org/PotentialActionStatus",
    }
}

fn run_status(record: &RunRecord) -> (&'static str, Option<String>) {
    use twinflow_engine::RunState;
    match record.run.state {
        RunState::Succeeded => ("http://schema.org/CompletedActionStatus", None),
        RunState::Failed => {
            let failed = record
                .tasks
                .iter()
                .flatten()
                .filter(|t| t.state == TaskState::Failed)
                .count();
            (
                "http://schema.org/FailedActionStatus",
                Some(format!("{failed} tasks failed")),
            )
        }
        RunState::Cancelled => (
            "http://schema.org/FailedActionStatus",
            Some("the run was cancelled".to_owned()),
        ),
        RunState::Interrupted => (
            "http://schema.org/FailedActionStatus",
            Some("the run was interrupted (its twinflow process ended); `twinflow run --resume` takes it up".to_owned()),
        ),
        RunState::Running => ("http://schema.org/ActiveActionStatus", None),
    }
}

fn media_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit('.').next()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "csv" => "text/csv",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "txt" | "log" => "text/plain",
        "nc" => "application/x-netcdf",
        "png" => "image/png",
        "tsv" => "text/tab-separated-values",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_images_are_split_into_registry_name_and_tag() {
        let docker = container_entity("s", "docker://ghcr.io/biodt/landis:7", None, None);
        assert!(
            docker.get("sha256").is_none(),
            "no digest resolved: none named"
        );
        assert_eq!(docker["registry"], "ghcr.io");
        assert_eq!(docker["name"], "biodt/landis");
        assert_eq!(docker["tag"], "7");
        assert_eq!(
            docker["additionalType"]["@id"],
            "https://w3id.org/ro/terms/workflow-run#DockerImage"
        );
        let hub = container_entity("s", "docker://python:3.12-slim", None, None);
        assert_eq!(
            (hub["registry"].as_str(), hub["name"].as_str()),
            (Some("docker.io"), Some("python"))
        );
        let sif = container_entity(
            "s",
            "/scratch/images/landis.sif",
            Some(ContainerRuntime::Apptainer),
            Some("sha256:4f00"),
        );
        assert_eq!(sif["sha256"], "4f00");
        assert_eq!(
            sif["additionalType"]["@id"],
            "https://w3id.org/ro/terms/workflow-run#SIFImage"
        );
        assert_eq!(sif["name"], "/scratch/images/landis.sif");
    }

    #[test]
    fn ids_are_percent_encoded_and_licences_become_spdx_urls() {
        assert_eq!(iri_safe("make[who=two words]"), "make%5Bwho=two%20words%5D");
        assert_eq!(iri_safe("files/a/0/x.csv"), "files/a/0/x.csv");
        let mut graph = Vec::new();
        assert_eq!(
            license(Some("CC-BY-4.0"), &mut graph),
            id("https://spdx.org/licenses/CC-BY-4.0")
        );
        assert_eq!(graph.len(), 1);
        assert_eq!(
            license(Some("ask me first"), &mut graph),
            json!("ask me first")
        );
        assert!(
            license(None, &mut graph)
                .as_str()
                .is_some_and(|s| s.contains("No licence"))
        );
    }
}
