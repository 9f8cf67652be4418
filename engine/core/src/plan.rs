//! The compiled workflow: steps, their task instances and the dependency DAG.
//!
//! A `Plan` is immutable once built. Tasks of one step have consecutive ids;
//! within a step, instances enumerate the `for_each` product in declaration
//! order (first key outermost) with the cycle point innermost, so a task's
//! coordinates are derived from its position and never stored.

use crate::{
    ContainerSpec, ExecutorId, ExecutorSpec, Piece, Ref, Resources, StepId, TaskId, Template,
};
use std::ops::Range;
use std::path::PathBuf;

/// A parameter's effective value (after `--param` overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A scalar, as text.
    One(String),
    /// A list of scalars, as text.
    Many(Vec<String>),
}

impl ParamValue {
    /// The value as a list (a scalar is a list of one).
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::One(v) => std::slice::from_ref(v),
            Self::Many(v) => v,
        }
    }
}

/// Where the workflow came from and what the run is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowInfo {
    /// `name:` (or the file stem).
    pub name: String,
    /// `description:`.
    pub description: Option<String>,
    /// The workflow file, when compiled from one.
    pub file: Option<PathBuf>,
    /// `workflow.dir`: the directory of the workflow file, absolute.
    pub dir: PathBuf,
    /// `run.id` as substituted into commands.
    pub run_id: String,
}

/// One point of a date cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CyclePoint {
    /// ISO 8601 label (`2020-01-01`, or `2020-01-01T06:00:00` for sub-daily cycles).
    pub label: String,
    /// Calendar year.
    pub year: i16,
    /// Month, 1-12.
    pub month: i8,
    /// Day of month, 1-31.
    pub day: i8,
}

/// The `cycle:` section, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleSpec {
    /// `start` as written.
    pub start: String,
    /// `stop` as written (inclusive).
    pub stop: String,
    /// `step` as written (ISO 8601 duration).
    pub step: String,
    /// Most points that may run ahead of the oldest unfinished one.
    pub runahead: Option<u32>,
    /// Every point from start to stop, in order.
    pub points: Vec<CyclePoint>,
}

/// One `for_each` key of a step and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForEachKey {
    /// Key name.
    pub name: String,
    /// Values, as text, in declaration order.
    pub values: Vec<String>,
}

/// A `needs` entry of a step, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// Input name (`inputs.<name>`).
    pub name: String,
    /// The producing step.
    pub from_step: StepId,
    /// The producer's output name.
    pub output: String,
    /// `k` of `@-k`; 0 for the same cycle point.
    pub offset: u32,
    /// True when each task receives a list of producer instances.
    pub gather: bool,
}

/// An `after` entry: ordering without artefacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterSpec {
    /// The step waited for.
    pub step: StepId,
    /// `k` of `@-k`; 0 for the same cycle point.
    pub offset: u32,
}

/// A declared output of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Output name (`outputs.<name>`).
    pub name: String,
    /// Path relative to the task's working directory, normalised, never escaping it.
    pub path: String,
}

impl OutputSpec {
    /// The last component of the path: the name consumers see it under.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// A step's `pack:`: `tasks` of its tasks share one allocation sized for
/// `parallel` of them, which run `parallel` at a time (`pack: N` is
/// `{tasks: N, parallel: 1}`: one after another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PackSpec {
    /// Tasks per allocation (1 ..= 10,000).
    pub tasks: u32,
    /// How many of them run at once (1 ..= `tasks`).
    pub parallel: u32,
}

impl PackSpec {
    /// `pack: N`: `tasks` tasks one after another.
    pub fn sequential(tasks: u32) -> Self {
        Self { tasks, parallel: 1 }
    }
}

/// A step of the workflow and the range of its task instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    /// Step name.
    pub name: String,
    /// `description:`.
    pub description: Option<String>,
    /// The executor its tasks run on.
    pub executor: ExecutorId,
    /// `for_each` keys, in declaration order.
    pub for_each: Vec<ForEachKey>,
    /// Whether it has one instance per cycle point as well.
    pub cycling: bool,
    /// `needs`, in declaration order.
    pub inputs: Vec<InputSpec>,
    /// `after`, in declaration order.
    pub after: Vec<AfterSpec>,
    /// `outputs`, in declaration order.
    pub outputs: Vec<OutputSpec>,
    /// Resources of every task.
    pub resources: Resources,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// Kill the task's process tree after this many seconds.
    pub timeout_seconds: Option<u64>,
    /// `pack:`: tasks per allocation on a batch backend and how many of
    /// them run at once (`None`: the backend's choice).
    pub pack: Option<PackSpec>,
    /// `group:`: the coupling group the step belongs to. Its tasks and
    /// those of the group's other steps with the same `for_each`
    /// coordinates and cycle point form one group instance, whose members
    /// start together and run concurrently.
    pub group: Option<String>,
    /// `launcher:`: what starts the ranks of each task (`None`: the
    /// executor's default for `resources.tasks`).
    pub launcher: Option<crate::Launcher>,
    /// Environment (workflow, executor and step `env` merged, step wins),
    /// rendered per task by [`Plan::task_env`].
    pub env: Vec<(String, Template)>,
    /// Image the command runs inside.
    pub container: Option<ContainerSpec>,
    /// `model:`: the RO-Crate directory of the model it runs (absolute, or
    /// relative to the current directory for a workflow compiled from text).
    pub model: Option<PathBuf>,
    /// The code its tasks run, absolute, sorted, without repeats: the
    /// files under `workflow.dir` its `run` names (`${{ workflow.dir }}/x.py`)
    /// and what its `code:` lists. The runtime digests them (and `model`)
    /// once per run, into every task's cache key.
    pub code: Vec<PathBuf>,
    /// `on:`: hooks fired by its tasks' `failure`, `retry` and `success`.
    pub hooks: Vec<crate::Hook>,
    /// Ids of its tasks.
    pub tasks: Range<u32>,
}

/// A task instance: one command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Its step.
    pub step: StepId,
    /// The fully substituted shell script.
    pub command: Box<str>,
    deps: (u32, u32),
    inputs_at: u32,
}

/// A task's view of one of its step's inputs.
#[derive(Debug, Clone, Copy)]
pub struct TaskInput<'a> {
    /// The step's input declaration.
    pub spec: &'a InputSpec,
    /// Producer tasks, in declaration order (empty: absent, before the first cycle point).
    pub producers: &'a [TaskId],
}

/// The compiled task DAG. Build it with [`PlanBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where it came from.
    pub workflow: WorkflowInfo,
    /// Effective parameters, in declaration order.
    pub params: Vec<(String, ParamValue)>,
    /// The date cycle, if any.
    pub cycle: Option<CycleSpec>,
    /// Executors, bound.
    pub executors: Vec<ExecutorSpec>,
    /// Steps in the workflow file's order.
    pub steps: Vec<StepSpec>,
    /// The workflow's `on:` hooks (every event; a step's own are in
    /// [`StepSpec::hooks`]).
    pub hooks: Vec<crate::Hook>,
    tasks: Vec<Task>,
    deps: Vec<TaskId>,
    input_ranges: Vec<(u32, u32)>,
    producers: Vec<TaskId>,
}

impl Plan {
    /// Indices of the steps no other step depends on (through an input or
    /// an `after`): the ends of the workflow, whose results users look for.
    pub fn sink_steps(&self) -> Vec<usize> {
        let mut used = vec![false; self.steps.len()];
        for step in &self.steps {
            for input in &step.inputs {
                used[input.from_step.index()] = true;
            }
            for after in &step.after {
                used[after.step.index()] = true;
            }
        }
        (0..self.steps.len()).filter(|i| !used[*i]).collect()
    }

    /// All tasks, by id.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Number of tasks.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// The task with this id.
    pub fn task(&self, id: TaskId) -> &Task {
        &self.tasks[id.index()]
    }

    /// The step of a task.
    pub fn step_of(&self, id: TaskId) -> &StepSpec {
        &self.steps[self.tasks[id.index()].step.index()]
    }

    /// The executor of a task.
    pub fn executor_of(&self, id: TaskId) -> &ExecutorSpec {
        &self.executors[self.step_of(id).executor.index()]
    }

    /// Tasks this task waits for (inputs and `after`), without repeats.
    pub fn dependencies(&self, id: TaskId) -> &[TaskId] {
        let (start, len) = self.tasks[id.index()].deps;
        &self.deps[start as usize..(start + len) as usize]
    }

    /// The task's inputs, one per `needs` entry of its step.
    pub fn inputs(&self, id: TaskId) -> impl Iterator<Item = TaskInput<'_>> {
        let task = &self.tasks[id.index()];
        let step = &self.steps[task.step.index()];
        let at = task.inputs_at as usize;
        step.inputs.iter().enumerate().map(move |(slot, spec)| {
            let (start, end) = self.input_ranges[at + slot];
            TaskInput {
                spec,
                producers: &self.producers[start as usize..end as usize],
            }
        })
    }

    /// Position of the task among its step's instances.
    pub fn instance_index(&self, id: TaskId) -> u32 {
        id.0 - self.step_of(id).tasks.start
    }

    /// The task's `for_each` values (key, value), in declaration order.
    pub fn coordinates(&self, id: TaskId) -> Vec<(&str, &str)> {
        let step = self.step_of(id);
        let mut rest = self.instance_index(id);
        if step.cycling {
            rest /= self.cycle_len();
        }
        let mut out = vec![("", ""); step.for_each.len()];
        for (slot, key) in step.for_each.iter().enumerate().rev() {
            let n = key.values.len() as u32;
            out[slot] = (key.name.as_str(), key.values[(rest % n) as usize].as_str());
            rest /= n;
        }
        out
    }

    /// The task's cycle point, for a cycling step.
    pub fn cycle_point(&self, id: TaskId) -> Option<&CyclePoint> {
        let step = self.step_of(id);
        if !step.cycling {
            return None;
        }
        let cycle = self.cycle.as_ref()?;
        let index = self.instance_index(id) as usize % cycle.points.len();
        cycle.points.get(index)
    }

    fn cycle_len(&self) -> u32 {
        self.cycle.as_ref().map_or(1, |c| c.points.len() as u32)
    }

    /// The task's name: `step[key=value,...]@point`.
    pub fn task_name(&self, id: TaskId) -> String {
        task_name(
            &self.step_of(id).name,
            self.coordinates(id),
            self.cycle_point(id).map(|p| p.label.as_str()),
        )
    }

    /// Finds a task by its name (a linear scan over the named step's tasks).
    pub fn find_task(&self, name: &str) -> Option<TaskId> {
        let step_name = name.split(['[', '@']).next()?;
        let step = self.steps.iter().find(|s| s.name == step_name)?;
        step.tasks
            .clone()
            .map(TaskId)
            .find(|&id| self.task_name(id) == name)
    }

    /// Paths, relative to the task's working directory, at which the runtime
    /// places the artefacts of input `slot`: `inputs/<name>/<file>` for one
    /// producer, `inputs/<name>/<i>/<file>` for a gather.
    pub fn input_paths(&self, input: &TaskInput<'_>) -> Vec<String> {
        let producer_step = &self.steps[input.spec.from_step.index()];
        let file = producer_step
            .outputs
            .iter()
            .find(|o| o.name == input.spec.output)
            .map_or(input.spec.output.as_str(), OutputSpec::file_name);
        input_paths(
            &input.spec.name,
            file,
            input.spec.gather,
            input.producers.len(),
        )
    }
}

impl Plan {
    /// Renders a template for a task, without shell quoting (lists are joined
    /// with spaces; an absent input is empty).
    pub fn render(&self, template: &Template, id: TaskId) -> String {
        let mut out = String::new();
        for piece in &template.pieces {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Ref(r) => out.push_str(&self.resolve(*r, id).join(" ")),
            }
        }
        out
    }

    /// The words a reference stands for in a task's context.
    pub fn resolve(&self, r: Ref, id: TaskId) -> Vec<String> {
        let step = self.step_of(id);
        let point = self.cycle_point(id);
        let one = |s: String| vec![s];
        match r {
            Ref::Param(i) => self.params[i as usize].1.as_slice().to_vec(),
            Ref::Key(slot) => one(self.coordinates(id)[slot as usize].1.to_owned()),
            Ref::Input(slot) => self
                .inputs(id)
                .nth(slot as usize)
                .map(|input| self.input_paths(&input))
                .unwrap_or_default(),
            Ref::Output(slot) => one(step.outputs[slot as usize].path.clone()),
            Ref::CyclePoint => point.map(|p| p.label.clone()).into_iter().collect(),
            Ref::CycleYear => point.map(|p| p.year.to_string()).into_iter().collect(),
            Ref::CycleMonth => point.map(|p| p.month.to_string()).into_iter().collect(),
            Ref::CycleDay => point.map(|p| p.day.to_string()).into_iter().collect(),
            Ref::WorkflowDir => one(self.workflow.dir.display().to_string()),
            Ref::WorkflowName => one(self.workflow.name.clone()),
            Ref::RunId => one(self.workflow.run_id.clone()),
            Ref::TaskName => one(self.task_name(id)),
        }
    }

    /// The environment of a task: `TWINFLOW_*` variables describing it, then
    /// the step's `env` (workflow, executor and step entries merged) rendered
    /// for it. Lists (gathers, list
    /// params) are joined with newlines in `TWINFLOW_*` variables.
    pub fn task_env(&self, id: TaskId) -> Vec<(String, String)> {
        let step = self.step_of(id);
        let mut env = vec![
            ("TWINFLOW_RUN_ID".to_owned(), self.workflow.run_id.clone()),
            ("TWINFLOW_TASK_NAME".to_owned(), self.task_name(id)),
            ("TWINFLOW_STEP".to_owned(), step.name.clone()),
            (
                "TWINFLOW_WORKFLOW_NAME".to_owned(),
                self.workflow.name.clone(),
            ),
            (
                "TWINFLOW_WORKFLOW_DIR".to_owned(),
                self.workflow.dir.display().to_string(),
            ),
        ];
        if let Some(p) = self.cycle_point(id) {
            env.push(("TWINFLOW_CYCLE_POINT".to_owned(), p.label.clone()));
            env.push(("TWINFLOW_CYCLE_YEAR".to_owned(), p.year.to_string()));
            env.push(("TWINFLOW_CYCLE_MONTH".to_owned(), p.month.to_string()));
            env.push(("TWINFLOW_CYCLE_DAY".to_owned(), p.day.to_string()));
        }
        for (name, value) in &self.params {
            env.push((
                env_name("TWINFLOW_PARAM_", name),
                value.as_slice().join("\n"),
            ));
        }
        for (key, value) in self.coordinates(id) {
            env.push((env_name("TWINFLOW_KEY_", key), value.to_owned()));
        }
        for input in self.inputs(id) {
            env.push((
                env_name("TWINFLOW_INPUT_", &input.spec.name),
                self.input_paths(&input).join("\n"),
            ));
        }
        for output in &step.outputs {
            env.push((
                env_name("TWINFLOW_OUTPUT_", &output.name),
                output.path.clone(),
            ));
        }
        for (name, template) in &step.env {
            let value = self.render(template, id);
            match env.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value,
                None => env.push((name.clone(), value)),
            }
        }
        env
    }
}

/// `TWINFLOW_PARAM_` + `my-param` -> `TWINFLOW_PARAM_MY_PARAM`.
fn env_name(prefix: &str, name: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + name.len());
    out.push_str(prefix);
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out
}

/// A task's name from its step, `for_each` values and cycle point:
/// `step[key=value,...]@point`. The one spelling of task names, used by the
/// compiler while expanding and by [`Plan::task_name`].
pub fn task_name<'a>(
    step: &str,
    coordinates: impl IntoIterator<Item = (&'a str, &'a str)>,
    point: Option<&str>,
) -> String {
    let mut name = step.to_owned();
    for (i, (key, value)) in coordinates.into_iter().enumerate() {
        name.push(if i == 0 { '[' } else { ',' });
        name.push_str(key);
        name.push('=');
        name.push_str(value);
    }
    if name.len() > step.len() {
        name.push(']');
    }
    if let Some(p) = point {
        name.push('@');
        name.push_str(p);
    }
    name
}

/// The staging layout of an input, shared by the compiler (which substitutes
/// these paths into commands) and the runtime (which places files there):
/// `inputs/<input><ext>` for a single input, `inputs/<input>/<i><ext>` for
/// the members of a gather, where `<ext>` is the extension of the producer's
/// file name `file` (see `extension`). Flat, so that staging an input costs
/// one directory entry (a hard link) and no directory of its own: a file
/// creation on ext4, a metadata-server round trip on Lustre.
pub fn input_paths(name: &str, file: &str, gather: bool, count: usize) -> Vec<String> {
    let ext = extension(file);
    if gather {
        (0..count)
            .map(|i| format!("inputs/{name}/{i}{ext}"))
            .collect()
    } else if count == 0 {
        Vec::new()
    } else {
        vec![format!("inputs/{name}{ext}")]
    }
}

/// The extension a staged input keeps of its producer's file name: from the
/// first dot on (`.csv`, `.tar.gz`), nothing for a name without a dot or
/// whose only dot leads it (`.env`).
pub(crate) fn extension(file: &str) -> &str {
    let first = file.chars().next().map_or(0, char::len_utf8);
    match file[first..].find('.') {
        Some(i) => &file[first + i..],
        None => "",
    }
}

/// Builds a [`Plan`] step by step, task by task, without per-task allocations
/// beyond the command itself.
#[derive(Debug)]
pub struct PlanBuilder {
    plan: Plan,
}

impl PlanBuilder {
    /// Starts a plan; steps are added with their task ranges already set.
    pub fn new(
        workflow: WorkflowInfo,
        params: Vec<(String, ParamValue)>,
        cycle: Option<CycleSpec>,
        executors: Vec<ExecutorSpec>,
        steps: Vec<StepSpec>,
    ) -> Self {
        let total = steps.last().map_or(0, |s| s.tasks.end as usize);
        Self {
            plan: Plan {
                workflow,
                params,
                cycle,
                executors,
                steps,
                hooks: Vec::new(),
                tasks: Vec::with_capacity(total),
                deps: Vec::new(),
                input_ranges: Vec::new(),
                producers: Vec::new(),
            },
        }
    }

    /// The steps being built.
    pub fn steps(&self) -> &[StepSpec] {
        &self.plan.steps
    }

    /// Id the next pushed task will get.
    pub fn next_id(&self) -> TaskId {
        TaskId(self.plan.tasks.len() as u32)
    }

    /// Appends the producer list of the next task's next input.
    pub fn push_input(&mut self, producers: &[TaskId]) {
        let start = self.plan.producers.len() as u32;
        self.plan.producers.extend_from_slice(producers);
        self.plan
            .input_ranges
            .push((start, self.plan.producers.len() as u32));
    }

    /// Appends a task whose inputs were pushed just before (one per input of
    /// its step) with its dependencies (deduplicated here).
    pub fn push_task(&mut self, step: StepId, command: String, deps: &mut Vec<TaskId>) {
        let inputs = self.plan.steps[step.index()].inputs.len() as u32;
        let inputs_at = self.plan.input_ranges.len() as u32 - inputs;
        deps.sort_unstable();
        deps.dedup();
        let start = self.plan.deps.len() as u32;
        self.plan.deps.extend_from_slice(deps);
        self.plan.tasks.push(Task {
            step,
            command: command.into_boxed_str(),
            deps: (start, deps.len() as u32),
            inputs_at,
        });
    }

    /// The finished plan.
    pub fn finish(mut self) -> Plan {
        self.plan.deps.shrink_to_fit();
        self.plan.producers.shrink_to_fit();
        self.plan.input_ranges.shrink_to_fit();
        self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_staged_flat_under_their_input_name_with_the_producer_extension() {
        assert_eq!(
            input_paths("drivers", "drivers.csv", false, 1),
            ["inputs/drivers.csv"]
        );
        assert_eq!(
            input_paths("all", "out.tar.gz", true, 2),
            ["inputs/all/0.tar.gz", "inputs/all/1.tar.gz"]
        );
        assert_eq!(
            input_paths("restart", "state", false, 1),
            ["inputs/restart"]
        );
        assert!(input_paths("prev", "f.txt", false, 0).is_empty());
        assert_eq!(extension(".env"), "");
        assert_eq!(extension("maps.v2.nc"), ".v2.nc");
        assert_eq!(extension("é.nc"), ".nc");
    }
}
