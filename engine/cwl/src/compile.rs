//! CWL to a twinflow [`Plan`]: a `CommandLineTool` becomes a one-step plan
//! whose task runs the step runner (`twinflow cwl-step`) on the job object;
//! the step's outputs are the tool's output directory and its output
//! object, so twinflow's staging, caching and provenance carry them.

use crate::error::{CwlError, Result};
use crate::model::{self, Class, Process};
use crate::workflow::Workflow;
use crate::{check, files, load, step, tool};
use serde_json::Value;
use std::path::{Path, PathBuf};
use twinflow_core::{
    BackendConfig, ExecutorId, ExecutorSpec, OutputSpec, Piece, Plan, PlanBuilder, Resources,
    StepId, StepSpec, Template, WorkflowInfo, shell_quote,
};

/// What to compile.
#[derive(Debug, Clone)]
pub struct CwlInput {
    /// The document (`file.cwl` or `file.cwl#id`).
    pub document: PathBuf,
    /// The job object file, if any (YAML or JSON).
    pub job: Option<PathBuf>,
    /// The run's id.
    pub run_id: String,
    /// The `twinflow` binary the tasks call back into.
    pub runner: PathBuf,
    /// `--site`: a site file binding the executor role [`EXECUTOR_ROLE`].
    pub site: Option<twinflow_workflow::SiteSource>,
    /// `--local`: every step on a local executor.
    pub local: bool,
    /// `--bind`: the binding file of the document's abstract steps.
    pub bind: Option<PathBuf>,
    /// `--max-tasks`: the most tasks the plan may have.
    pub max_tasks: usize,
}

/// The executor role every CWL step runs on: local unless a site file binds
/// it (`executors: {cwl: {kind: slurm, …}}`).
pub const EXECUTOR_ROLE: &str = "cwl";

/// The executor the steps run on, and the environment its site binding
/// gives them; refused where the tasks could not reach the twinflow binary,
/// the documents and the inputs by the paths they have here.
fn executor(input: &CwlInput) -> Result<(ExecutorSpec, Vec<(String, Template)>)> {
    let options = twinflow_workflow::CompileOptions {
        site: input.site.clone(),
        local: input.local,
        ..Default::default()
    };
    let mut bound = twinflow_workflow::bind_executor_roles(&[EXECUTOR_ROLE], &options)
        .map_err(|e| CwlError::invalid(e.render(false)))?;
    let Some(twinflow_workflow::BoundRole { spec, site_env }) = bound.pop() else {
        return Err(CwlError::invalid("no executor for the CWL steps"));
    };
    let remote = match &spec.backend {
        BackendConfig::Slurm(s) => s.ssh.is_some(),
        BackendConfig::Cloud(_) => true,
        BackendConfig::Local(_) | BackendConfig::Fetch(_) => false,
    };
    if remote {
        return Err(CwlError::unsupported(format!(
            "executor `{}` ({}) runs elsewhere: CWL steps run on a local or a login-node Slurm executor so far (their tasks need this twinflow binary, the documents and the inputs at the paths they have here)",
            spec.name,
            spec.backend.kind()
        )));
    }
    let env = site_env
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                Template {
                    pieces: vec![Piece::Lit(v)],
                },
            )
        })
        .collect();
    Ok((spec, env))
}

/// A compiled CWL document: the plan and the process it came from.
#[derive(Debug)]
pub struct Compiled {
    /// The plan.
    pub plan: Plan,
    /// The top-level process.
    pub process: Process,
    /// The step the process runs as.
    pub step: String,
}

/// Loads and checks a document without a job (for `validate`).
pub fn check_document(document: &Path, bind: Option<&Path>) -> Result<Process> {
    let mut process = model::load(document)?;
    if let Some(bind) = bind {
        process.bindings = Some(std::sync::Arc::new(crate::bind::Bindings::read(bind)?));
    }
    supported(&process)?;
    Ok(process)
}

fn supported(process: &Process) -> Result<()> {
    check::javascript(process)?;
    match process.class {
        Class::CommandLineTool | Class::ExpressionTool => Ok(()),
        Class::Workflow => {
            let wf = Workflow::from_process(process.clone())?;
            for step in &wf.steps {
                // Each step works on its own sealed copy of what it is given:
                // an update in place would not reach the next step.
                if step
                    .run
                    .find("InplaceUpdateRequirement")
                    .is_some_and(|r| !r.hint)
                {
                    return Err(step.run.error(
                        "requirements",
                        CwlError::unsupported(format!(
                            "InplaceUpdateRequirement in workflow step `{}`: each twinflow step works on its own copy of its inputs",
                            step.id
                        )),
                    ));
                }
                supported(&step.run)?;
            }
            Ok(())
        }
        Class::Operation => Err(process.error(
            "class",
            CwlError::invalid(
                "an Operation runs only as a step of a workflow, bound by a binding file (--bind)",
            ),
        )),
    }
}

/// Reads a job object file, File objects resolved against its directory.
pub fn read_job(path: Option<&Path>) -> Result<Value> {
    let Some(path) = path else {
        return Ok(Value::Object(Default::default()));
    };
    let doc = load::read(path)?;
    let mut job = doc.value.clone();
    files::resolve(&mut job, doc.dir()).map_err(|e| e.in_file(&doc.path))?;
    if !job.is_object() && !job.is_null() {
        return Err(CwlError::invalid("the job object must be a mapping").in_file(&doc.path));
    }
    Ok(job)
}

/// Compiles a CWL document and job object into a plan.
pub fn compile(input: &CwlInput) -> Result<Compiled> {
    let job = read_job(input.job.as_deref())?;
    let mut process = model::with_job_requirements(model::load(&input.document)?, &job)?;
    if let Some(bind) = &input.bind {
        process.bindings = Some(std::sync::Arc::new(crate::bind::Bindings::read(bind)?));
    }
    supported(&process)?;
    // Fail on a bad job object now, not in the task; the tasks get the
    // completed values (sizes, secondary files found beside primaries).
    let inputs =
        tool::inputs::prepare(&process, &job, tool::inputs::Discovery::FromDisk).map_err(|e| {
            match &input.job {
                Some(p) => e.in_file(p),
                None => e,
            }
        })?;
    let document = load::absolute(&input.document)?;
    let (file, _) = load::split_fragment(&document);
    let name = step_name(&file);
    let info = WorkflowInfo {
        name: name.clone(),
        description: process
            .field("doc")
            .and_then(Value::as_str)
            .map(str::to_owned),
        file: Some(file.clone()),
        dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
        run_id: input.run_id.clone(),
    };
    if process.class == Class::Workflow {
        let wf = Workflow::from_process(process.clone())?;
        let (executor, env) = executor(input)?;
        let target = crate::split::Target {
            runner: &input.runner,
            executor,
            env,
            max_tasks: input.max_tasks,
        };
        let (plan, step) = crate::split::plan(&wf, &inputs, &document, target, info)?;
        return Ok(Compiled {
            plan,
            process,
            step,
        });
    }
    let mut command = format!(
        "exec {} cwl-step --tool {} --job {}",
        shell_quote(&input.runner.to_string_lossy()),
        shell_quote(&document.to_string_lossy()),
        shell_quote(&job.to_string()),
    );
    if process.reuse_disabled() {
        command.push_str(&no_reuse(&input.run_id));
    }
    let (executor, env) = executor(input)?;
    let mut spec = step_spec(
        name.clone(),
        resources(&process, &executor),
        vec![file.clone()],
    );
    spec.env = env;
    let mut builder = PlanBuilder::new(info, Vec::new(), None, vec![executor], vec![spec]);
    builder.push_task(StepId(0), command, &mut Vec::new());
    Ok(Compiled {
        plan: builder.finish(),
        process,
        step: name,
    })
}

/// What a step with `WorkReuse: {enableReuse: false}` adds to its command:
/// the run's id, which makes the command, hence the task's cache key,
/// unique to the run, so twinflow's cache never hands it another run's
/// result.
pub(crate) fn no_reuse(run_id: &str) -> String {
    format!(" --run {}", shell_quote(run_id))
}

/// The key of a job object's requirements.
pub(crate) const JOB_REQUIREMENTS: &str = "cwl:requirements";

/// A step whose outputs are a CWL run's `out` directory and output object,
/// with one task (callers set `tasks`, `for_each` and `inputs` as needed).
pub(crate) fn step_spec(name: String, resources: Resources, code: Vec<PathBuf>) -> StepSpec {
    StepSpec {
        name,
        description: None,
        executor: ExecutorId(0),
        for_each: Vec::new(),
        cycling: false,
        inputs: Vec::new(),
        after: Vec::new(),
        outputs: vec![
            OutputSpec {
                name: OUT_OUTPUT.into(),
                path: tool::OUT_DIR.into(),
            },
            OutputSpec {
                name: OBJECT_OUTPUT.into(),
                path: step::OUTPUTS_FILE.into(),
            },
        ],
        resources,
        retries: 0,
        timeout_seconds: None,
        pack: None,
        group: None,
        launcher: None,
        env: Vec::new(),
        container: None,
        model: None,
        code,
        hooks: Vec::new(),
        tasks: 0..1,
    }
}

/// The twinflow output holding a step's output directory.
pub(crate) const OUT_OUTPUT: &str = "out";
/// The twinflow output holding a step's output object.
pub(crate) const OBJECT_OUTPUT: &str = "object";

/// A step name from the document's file stem: letters, digits, `-` and `_`.
pub(crate) fn step_name(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    twinflow_name(&stem, "tool_")
}

/// `text` as a twinflow step name: letters, digits, `-` and `_` (anything
/// else `_`), starting with a letter (else `prefix` is put first).
pub(crate) fn twinflow_name(text: &str, prefix: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, prefix);
    }
    name
}

/// twinflow resources from `ResourceRequirement` minimums written as
/// numbers (expressions are evaluated by the step runner; the plan keeps
/// the default then).
pub(crate) fn resources(process: &Process, executor: &ExecutorSpec) -> Resources {
    let mut r = Resources::default();
    if let Some(req) = process.find("ResourceRequirement") {
        let number = |k: &str| req.value.get(k).and_then(Value::as_f64);
        if let Some(c) = number("coresMin").or_else(|| number("coresMax")) {
            // A local executor cannot give more than the machine has; the
            // step runner still reports the asked-for cores in `runtime`.
            let asked = c.ceil().max(1.0) as u32;
            r.cpus = match &executor.backend {
                BackendConfig::Local(l) => {
                    let machine =
                        std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
                    asked.min(l.slots.unwrap_or(machine))
                }
                _ => asked,
            };
        }
        if let Some(m) = number("ramMin").or_else(|| number("ramMax")) {
            r.memory_bytes = Some((m.ceil().max(1.0) as u64) * 1024 * 1024);
        }
    }
    r
}
