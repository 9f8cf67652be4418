//! A CWL `Workflow` as a twinflow plan: one twinflow step per CWL step, so
//! that each runs as its own task (its own Slurm job, its own cache entry)
//! and twinflow stages the artefacts between them; one more step,
//! `outputs`, assembles the workflow's output object.
//!
//! A step scattered over workflow inputs only (whose lengths are known now)
//! becomes one task per scatter job; its consumers gather those tasks'
//! outputs back into arrays. A step scattered over what another step
//! produces runs its scatter jobs inside its one task (lengths known only
//! then). Every task runs the step runner (`twinflow cwl-step`) with the
//! workflow input values it reads and where its producers' outputs are
//! staged.

use crate::compile::{OBJECT_OUTPUT, OUT_OUTPUT, resources, step_spec};
use crate::error::{CwlError, Result};
use crate::workflow::{Source, Step, Workflow, links, scatter};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use twinflow_core::{
    ExecutorSpec, ForEachKey, InputSpec, Plan, PlanBuilder, StepId, TaskId, Template, WorkflowInfo,
    input_paths, shell_quote,
};

/// The step that assembles the workflow's outputs (renamed if a CWL step
/// has the name).
pub const COLLECT_STEP: &str = "outputs";

/// Where a consumer finds one producer's outputs: how `--from` spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromSpec {
    /// The producer (CWL step id).
    pub step: String,
    /// Staged output objects, in task order.
    pub objects: Vec<String>,
    /// Staged output directories, in task order.
    pub dirs: Vec<String>,
    /// `Some(dims)` when the producer is scattered into tasks (its outputs
    /// are gathered into arrays of these dimensions).
    pub dims: Option<Vec<usize>>,
}

impl FromSpec {
    /// `STEP=OBJ|DIR;OBJ|DIR...[@D1xD2]`.
    pub fn to_arg(&self) -> String {
        let pairs: Vec<String> = self
            .objects
            .iter()
            .zip(&self.dirs)
            .map(|(o, d)| format!("{o}|{d}"))
            .collect();
        let mut s = format!("{}={}", self.step, pairs.join(";"));
        if let Some(dims) = &self.dims {
            let d: Vec<String> = dims.iter().map(usize::to_string).collect();
            s.push('@');
            s.push_str(&d.join("x"));
        }
        s
    }

    /// Reads [`FromSpec::to_arg`]'s form.
    pub fn parse(arg: &str) -> Result<Self> {
        let bad = || CwlError::invalid(format!("--from {arg}: expected STEP=OBJ|DIR;...[@DIMS]"));
        let (step, rest) = arg.split_once('=').ok_or_else(bad)?;
        let (pairs, dims) = match rest.rsplit_once('@') {
            Some((p, d)) => {
                let dims = d
                    .split('x')
                    .map(|x| x.parse::<usize>().map_err(|_| bad()))
                    .collect::<Result<Vec<_>>>()?;
                (p, Some(dims))
            }
            None => (rest, None),
        };
        let mut objects = Vec::new();
        let mut dirs = Vec::new();
        for pair in pairs.split(';').filter(|p| !p.is_empty()) {
            let (o, d) = pair.split_once('|').ok_or_else(bad)?;
            objects.push(o.to_owned());
            dirs.push(d.to_owned());
        }
        Ok(Self {
            step: step.to_owned(),
            objects,
            dirs,
            dims,
        })
    }
}

/// A step scattered into tasks: each task's scattered values, and the
/// dimensions its outputs gather into.
struct StaticScatter {
    jobs: Vec<Map<String, Value>>,
    dims: Vec<usize>,
    /// The producer (step index) whose task `i` this step's task `i`
    /// scatters over (the jobs are then empty: the values come from it).
    aligned: Option<usize>,
}

/// Where the tasks run and what they call.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The `twinflow` binary the tasks run (`twinflow cwl-step`).
    pub runner: &'a Path,
    /// The executor every step runs on.
    pub executor: ExecutorSpec,
    /// The environment its binding gives every task.
    pub env: Vec<(String, Template)>,
    /// The most tasks the plan may have (`--max-tasks`).
    pub max_tasks: usize,
}

/// The plan of `wf` run on `inputs` (its completed input object), and the
/// name of the step that assembles the outputs.
pub fn plan(
    wf: &Workflow,
    inputs: &Value,
    document: &Path,
    target: Target<'_>,
    info: WorkflowInfo,
) -> Result<(Plan, String)> {
    let names = step_names(&wf.steps);
    let collect = unique(COLLECT_STEP, &names);
    let index: HashMap<&str, usize> = wf
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut input_values: HashMap<Source, Value> = HashMap::new();
    if let Value::Object(m) = inputs {
        for (k, v) in m {
            input_values.insert(Source::Input(k.clone()), v.clone());
        }
    }
    let mut statics: Vec<Option<StaticScatter>> = Vec::with_capacity(wf.steps.len());
    for s in &wf.steps {
        let known = match static_scatter(wf, s, &input_values, target.max_tasks)? {
            Some(found) => Some(found),
            None => aligned_scatter(s, &statics, &index),
        };
        statics.push(known);
    }
    // Step specs, task ranges consecutive in workflow order.
    let mut specs = Vec::with_capacity(wf.steps.len() + 1);
    let mut next = 0u32;
    let mut step_deps: Vec<Vec<usize>> = Vec::with_capacity(wf.steps.len() + 1);
    for (i, step) in wf.steps.iter().enumerate() {
        let mut code = vec![wf.process.doc.path.clone()];
        if let Some(file) = wf.process.bindings.as_ref().and_then(|b| b.file.clone()) {
            code.push(file);
        }
        if step.run.doc.path != wf.process.doc.path {
            code.push(step.run.doc.path.clone());
        }
        code.sort();
        let mut spec = step_spec(
            names[i].clone(),
            resources(&step.run, &target.executor),
            code,
        );
        spec.env.clone_from(&target.env);
        let count = statics[i].as_ref().map_or(1, |s| s.jobs.len() as u32);
        if statics[i].is_some() {
            spec.for_each = vec![ForEachKey {
                name: "i".into(),
                values: (0..count).map(|n| n.to_string()).collect(),
            }];
        }
        let deps = producers(step.inputs.iter().flat_map(|i| &i.link.sources), &index);
        spec.inputs = input_specs(&deps, &names, &statics, aligned_to(&statics, i));
        spec.tasks = next..next + count;
        next += count;
        specs.push(spec);
        step_deps.push(deps);
    }
    if next as usize >= target.max_tasks {
        let total = u64::from(next) + 1;
        return Err(too_many(
            target.max_tasks,
            &format!("{total} with the step that assembles the outputs"),
        ));
    }
    let out_deps = producers(wf.outputs.iter().flat_map(|o| &o.link.sources), &index);
    let mut collect_spec = step_spec(
        collect.clone(),
        Default::default(),
        vec![wf.process.doc.path.clone()],
    );
    collect_spec.env.clone_from(&target.env);
    collect_spec.inputs = input_specs(&out_deps, &names, &statics, None);
    collect_spec.tasks = next..next + 1;
    specs.push(collect_spec);
    step_deps.push(out_deps);

    let run_id = info.run_id.clone();
    let mut builder = PlanBuilder::new(info, Vec::new(), None, vec![target.executor], specs);
    let runner = shell_quote(&target.runner.to_string_lossy());
    let doc = shell_quote(&document.to_string_lossy());
    let task_range = |i: usize, b: &PlanBuilder| -> Vec<TaskId> {
        b.steps()[i].tasks.clone().map(TaskId).collect()
    };
    for i in 0..=wf.steps.len() {
        let aligned = aligned_to(&statics, i);
        let froms = from_specs(&step_deps[i], &names, &statics, &wf.steps, aligned);
        let mut deps: Vec<TaskId> = Vec::new();
        let producer_tasks: Vec<Vec<TaskId>> = step_deps[i]
            .iter()
            .map(|d| task_range(*d, &builder))
            .collect();
        let tasks: u32 = builder.steps()[i].tasks.len() as u32;
        let (mode, reads) = match wf.steps.get(i) {
            Some(step) => (
                format!("--step {}", shell_quote(&step.id)),
                inputs_read(step, statics[i].as_ref()),
            ),
            None => (
                "--collect".to_owned(),
                wf.outputs
                    .iter()
                    .flat_map(|o| input_names(&o.link.sources))
                    .collect(),
            ),
        };
        let job: Map<String, Value> = reads
            .iter()
            .map(String::as_str)
            .chain([crate::compile::JOB_REQUIREMENTS])
            .filter_map(|k| inputs.get(k).map(|v| (k.to_owned(), v.clone())))
            .collect();
        let job = shell_quote(&Value::Object(job).to_string());
        for t in 0..tasks {
            for (d, producers) in step_deps[i].iter().zip(&producer_tasks) {
                // An aligned producer feeds task `t` its task `t` alone.
                let producers = match aligned {
                    Some(a) if a == *d => &producers[t as usize..t as usize + 1],
                    _ => producers.as_slice(),
                };
                // Each producer feeds two inputs: its object and its directory.
                builder.push_input(producers);
                builder.push_input(producers);
                deps.extend_from_slice(producers);
            }
            let mut command = format!("exec {runner} cwl-step --tool {doc} {mode} --job {job}");
            if let Some(Some(s)) = statics.get(i) {
                let element = Value::Object(s.jobs[t as usize].clone()).to_string();
                command.push_str(&format!(" --scattered {}", shell_quote(&element)));
            }
            for f in &froms {
                command.push_str(&format!(" --from {}", shell_quote(&f.to_arg())));
            }
            if wf.steps.get(i).is_some_and(|s| s.run.reuse_disabled()) {
                command.push_str(&crate::compile::no_reuse(&run_id));
            }
            if let Some(file) = wf.process.bindings.as_ref().and_then(|b| b.file.as_ref()) {
                command.push_str(&format!(" --bind {}", shell_quote(&file.to_string_lossy())));
            }
            builder.push_task(StepId(i as u32), command, &mut deps);
            deps.clear();
        }
    }
    Ok((builder.finish(), collect))
}

/// The refusal of a plan over `--max-tasks`, as for YAML workflows.
fn too_many(max_tasks: usize, what: &str) -> CwlError {
    CwlError::invalid(format!(
        "the workflow would have more than {max_tasks} tasks ({what}); raise the limit with `--max-tasks`"
    ))
}

/// The producer a step's scatter is aligned with, if it is.
fn aligned_to(statics: &[Option<StaticScatter>], i: usize) -> Option<usize> {
    statics
        .get(i)
        .and_then(|s| s.as_ref())
        .and_then(|s| s.aligned)
}

/// A scatter over the outputs of one producer scattered into tasks along
/// one dimension: task `i` scatters over what task `i` of the producer
/// made, so the step gets one task per producer task instead of doing the
/// whole scatter in one. Only when every scattered input reads one output
/// of that producer and no other input reads the producer (which would
/// need all its tasks).
fn aligned_scatter(
    step: &Step,
    statics: &[Option<StaticScatter>],
    index: &HashMap<&str, usize>,
) -> Option<StaticScatter> {
    if step.scatter.is_empty() {
        return None;
    }
    if step.scatter.len() > 1 && step.method != crate::workflow::ScatterMethod::Dotproduct {
        return None;
    }
    let mut producer: Option<usize> = None;
    for name in &step.scatter {
        let input = step.inputs.iter().find(|i| &i.id == name)?;
        let [Source::Step(p, _)] = input.link.sources.as_slice() else {
            return None;
        };
        if input.link.listed || input.link.pick.is_some() {
            return None;
        }
        let p = *index.get(p.as_str())?;
        if producer.is_some_and(|q| q != p) {
            return None;
        }
        producer = Some(p);
    }
    let producer = producer?;
    let produced = statics.get(producer)?.as_ref()?;
    if produced.dims.len() != 1 {
        return None;
    }
    let reads_producer_elsewhere = step
        .inputs
        .iter()
        .filter(|i| !step.scatter.contains(&i.id))
        .flat_map(|i| &i.link.sources)
        .any(|s| matches!(s, Source::Step(p, _) if index.get(p.as_str()) == Some(&producer)));
    if reads_producer_elsewhere {
        return None;
    }
    let n = produced.jobs.len();
    Some(StaticScatter {
        jobs: vec![Map::new(); n],
        dims: vec![n],
        aligned: Some(producer),
    })
}

/// The scatter of `step` known now: its scattered inputs all come from
/// workflow inputs and give at least one job.
fn static_scatter(
    wf: &Workflow,
    step: &Step,
    values: &HashMap<Source, Value>,
    max_tasks: usize,
) -> Result<Option<StaticScatter>> {
    if step.scatter.is_empty() {
        return Ok(None);
    }
    let mut scattered = Map::new();
    for name in &step.scatter {
        let Some(input) = step.inputs.iter().find(|i| &i.id == name) else {
            return Ok(None);
        };
        if input
            .link
            .sources
            .iter()
            .any(|s| matches!(s, Source::Step(..)))
        {
            return Ok(None);
        }
        let mut v = links::resolve(&input.link, values)?;
        if v.is_null()
            && let Some(d) = &input.default
        {
            v = d.clone();
            crate::files::resolve(&mut v, wf.process.dir())?;
        }
        scattered.insert(name.clone(), v);
    }
    // Counted before the jobs are made: a crossproduct of a few long lists
    // is more than memory holds.
    let lengths = scattered.values().map(|v| v.as_array().map_or(0, Vec::len));
    let count = match step.method {
        crate::workflow::ScatterMethod::Dotproduct => lengths.max().unwrap_or(0) as u64,
        _ => lengths.fold(1u64, |n, l| n.saturating_mul(l as u64)),
    };
    if count > max_tasks as u64 {
        return Err(too_many(
            max_tasks,
            &format!("step `{}` scatters into {count} jobs", step.id),
        ));
    }
    let Ok((jobs, dims)) = scatter::jobs(&scattered, &step.scatter, step.method) else {
        // Not arrays, or unequal lengths: the task reports it when it runs.
        return Ok(None);
    };
    if jobs.is_empty() {
        return Ok(None);
    }
    Ok(Some(StaticScatter {
        jobs,
        dims,
        aligned: None,
    }))
}

/// The workflow inputs a step's task reads: those its links name, less
/// those only its scattered inputs name (their values come per task).
fn inputs_read(step: &Step, statics: Option<&StaticScatter>) -> BTreeSet<String> {
    step.inputs
        .iter()
        .filter(|i| statics.is_none() || !step.scatter.contains(&i.id))
        .flat_map(|i| input_names(&i.link.sources))
        .collect()
}

fn input_names(sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .filter_map(|s| match s {
            Source::Input(n) => Some(n.clone()),
            Source::Step(..) => None,
        })
        .collect()
}

/// The producing steps (indices), in first-mention order.
fn producers<'a>(
    sources: impl Iterator<Item = &'a Source>,
    index: &HashMap<&str, usize>,
) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for s in sources {
        if let Source::Step(step, _) = s
            && let Some(i) = index.get(step.as_str())
            && !out.contains(i)
        {
            out.push(*i);
        }
    }
    out
}

fn input_names_of(name: &str) -> (String, String) {
    (format!("{name}__o"), format!("{name}__d"))
}

fn input_specs(
    deps: &[usize],
    names: &[String],
    statics: &[Option<StaticScatter>],
    aligned: Option<usize>,
) -> Vec<InputSpec> {
    let mut out = Vec::with_capacity(deps.len() * 2);
    for d in deps {
        let (o, dir) = input_names_of(&names[*d]);
        let gather = statics[*d].is_some() && aligned != Some(*d);
        for (name, output) in [(o, OBJECT_OUTPUT), (dir, OUT_OUTPUT)] {
            out.push(InputSpec {
                name,
                from_step: StepId(*d as u32),
                output: output.into(),
                offset: 0,
                gather,
            });
        }
    }
    out
}

fn from_specs(
    deps: &[usize],
    names: &[String],
    statics: &[Option<StaticScatter>],
    steps: &[Step],
    aligned: Option<usize>,
) -> Vec<FromSpec> {
    deps.iter()
        .map(|d| {
            let (o, dir) = input_names_of(&names[*d]);
            let (gather, count, dims) = match &statics[*d] {
                Some(_) if aligned == Some(*d) => (false, 1, None),
                Some(s) => (true, s.jobs.len(), Some(s.dims.clone())),
                None => (false, 1, None),
            };
            FromSpec {
                step: steps[*d].id.clone(),
                objects: input_paths(&o, crate::step::OUTPUTS_FILE, gather, count),
                dirs: input_paths(&dir, crate::tool::OUT_DIR, gather, count),
                dims,
            }
        })
        .collect()
}

/// twinflow step names for CWL step ids: letters, digits, `-` and `_`,
/// starting with a letter, unique.
fn step_names(steps: &[Step]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(steps.len());
    for s in steps {
        let name = crate::compile::twinflow_name(&s.id, "step_");
        let name = unique(&name, &out);
        out.push(name);
    }
    out
}

fn unique(base: &str, taken: &[String]) -> String {
    let mut name = base.to_owned();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_specs_round_trip_through_their_argument() -> Result<()> {
        let single = FromSpec {
            step: "s1".into(),
            objects: vec!["inputs/s1__o.json".into()],
            dirs: vec!["inputs/s1__d".into()],
            dims: None,
        };
        assert_eq!(single.to_arg(), "s1=inputs/s1__o.json|inputs/s1__d");
        assert_eq!(FromSpec::parse(&single.to_arg())?, single);
        let gather = FromSpec {
            step: "s2".into(),
            objects: vec!["inputs/s2__o/0.json".into(), "inputs/s2__o/1.json".into()],
            dirs: vec!["inputs/s2__d/0".into(), "inputs/s2__d/1".into()],
            dims: Some(vec![1, 2]),
        };
        assert_eq!(FromSpec::parse(&gather.to_arg())?, gather);
        assert!(FromSpec::parse("nonsense").is_err());
        Ok(())
    }
}
