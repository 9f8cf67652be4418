//! The stable JSON form of a [`Plan`] (`twinflow plan --json`), documented in
//! `docs/plan-json.md`. Tasks are streamed, never collected into a JSON tree.

use crate::{ParamValue, Plan, TaskId};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};

/// Format tag written as `"format"`; bumped on any incompatible change.
pub const PLAN_FORMAT: &str = "twinflow.plan/v1";

/// Serialises a plan in its documented JSON form.
#[derive(Debug, Clone, Copy)]
pub struct PlanJson<'a>(pub &'a Plan);

impl Serialize for PlanJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let plan = self.0;
        let mut s = serializer.serialize_struct("Plan", 9)?;
        s.serialize_field("format", PLAN_FORMAT)?;
        s.serialize_field("workflow", &Workflow(plan))?;
        s.serialize_field("params", &Params(&plan.params))?;
        s.serialize_field("cycle", &plan.cycle.as_ref().map(Cycle))?;
        s.serialize_field("executors", &Executors(plan))?;
        s.serialize_field("steps", &Steps(plan))?;
        s.serialize_field("hooks", &plan.hooks)?;
        s.serialize_field("task_count", &plan.task_count())?;
        s.serialize_field("tasks", &Tasks(plan))?;
        s.end()
    }
}

struct Workflow<'a>(&'a Plan);

impl Serialize for Workflow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let w = &self.0.workflow;
        let mut s = serializer.serialize_struct("Workflow", 5)?;
        s.serialize_field("name", &w.name)?;
        s.serialize_field("description", &w.description)?;
        s.serialize_field("file", &w.file)?;
        s.serialize_field("dir", &w.dir)?;
        s.serialize_field("run_id", &w.run_id)?;
        s.end()
    }
}

struct Params<'a>(&'a [(String, ParamValue)]);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            match value {
                ParamValue::One(v) => m.serialize_entry(name, v)?,
                ParamValue::Many(v) => m.serialize_entry(name, v)?,
            }
        }
        m.end()
    }
}

struct Cycle<'a>(&'a crate::CycleSpec);

impl Serialize for Cycle<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut s = serializer.serialize_struct("Cycle", 5)?;
        s.serialize_field("start", &c.start)?;
        s.serialize_field("stop", &c.stop)?;
        s.serialize_field("step", &c.step)?;
        s.serialize_field("runahead", &c.runahead)?;
        let points: Vec<&str> = c.points.iter().map(|p| p.label.as_str()).collect();
        s.serialize_field("points", &points)?;
        s.end()
    }
}

struct Executors<'a>(&'a Plan);

impl Serialize for Executors<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(self.0.executors.len()))?;
        for e in &self.0.executors {
            m.serialize_entry(&e.name, e)?;
        }
        m.end()
    }
}

struct Steps<'a>(&'a Plan);

impl Serialize for Steps<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let plan = self.0;
        let mut seq = serializer.serialize_seq(Some(plan.steps.len()))?;
        for step in &plan.steps {
            seq.serialize_element(&Step { plan, step })?;
        }
        seq.end()
    }
}

struct Step<'a> {
    plan: &'a Plan,
    step: &'a crate::StepSpec,
}

impl Serialize for Step<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (plan, step) = (self.plan, self.step);
        let mut s = serializer.serialize_struct("Step", 16)?;
        s.serialize_field("name", &step.name)?;
        s.serialize_field("executor", &plan.executors[step.executor.index()].name)?;
        let for_each: Vec<(&str, &[String])> = step
            .for_each
            .iter()
            .map(|k| (k.name.as_str(), k.values.as_slice()))
            .collect();
        s.serialize_field("for_each", &MapOf(&for_each))?;
        s.serialize_field("cycling", &step.cycling)?;
        let needs: Vec<(&str, String)> = step
            .inputs
            .iter()
            .map(|i| {
                let from = &plan.steps[i.from_step.index()].name;
                let reference = match i.offset {
                    0 => format!("{from}.{}", i.output),
                    k => format!("{from}.{}@-{k}", i.output),
                };
                (i.name.as_str(), reference)
            })
            .collect();
        s.serialize_field("needs", &MapOf(&needs))?;
        let after: Vec<String> = step
            .after
            .iter()
            .map(|a| match a.offset {
                0 => plan.steps[a.step.index()].name.clone(),
                k => format!("{}@-{k}", plan.steps[a.step.index()].name),
            })
            .collect();
        s.serialize_field("after", &after)?;
        s.serialize_field("pack", &step.pack.map(|p| p.tasks))?;
        s.serialize_field("pack_parallel", &step.pack.map(|p| p.parallel))?;
        s.serialize_field("launcher", &step.launcher)?;
        s.serialize_field("group", &step.group)?;
        s.serialize_field("code", &step.code)?;
        s.serialize_field("hooks", &step.hooks)?;
        s.serialize_field("first_task", &step.tasks.start)?;
        s.serialize_field("task_count", &step.tasks.len())?;
        s.end()
    }
}

struct MapOf<'a, V>(&'a [(&'a str, V)]);

impl<V: Serialize> Serialize for MapOf<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct Tasks<'a>(&'a Plan);

impl Serialize for Tasks<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let plan = self.0;
        let mut seq = serializer.serialize_seq(Some(plan.task_count()))?;
        for id in 0..plan.task_count() as u32 {
            seq.serialize_element(&TaskJson {
                plan,
                id: TaskId(id),
            })?;
        }
        seq.end()
    }
}

struct TaskJson<'a> {
    plan: &'a Plan,
    id: TaskId,
}

impl Serialize for TaskJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (plan, id) = (self.plan, self.id);
        let task = plan.task(id);
        let step = plan.step_of(id);
        let mut s = serializer.serialize_struct("Task", 13)?;
        s.serialize_field("id", &id)?;
        s.serialize_field("name", &plan.task_name(id))?;
        s.serialize_field("step", &step.name)?;
        s.serialize_field("for_each", &MapOf(&plan.coordinates(id)))?;
        s.serialize_field("cycle_point", &plan.cycle_point(id).map(|p| &p.label))?;
        s.serialize_field("executor", &plan.executor_of(id).name)?;
        s.serialize_field("command", &task.command)?;
        s.serialize_field("dependencies", plan.dependencies(id))?;
        s.serialize_field("inputs", &Inputs { plan, id })?;
        let outputs: Vec<(&str, &str)> = step
            .outputs
            .iter()
            .map(|o| (o.name.as_str(), o.path.as_str()))
            .collect();
        s.serialize_field("outputs", &MapOf(&outputs))?;
        s.serialize_field("resources", &step.resources)?;
        s.serialize_field("retries", &step.retries)?;
        s.serialize_field("timeout_seconds", &step.timeout_seconds)?;
        s.end()
    }
}

struct Inputs<'a> {
    plan: &'a Plan,
    id: TaskId,
}

impl Serialize for Inputs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let inputs: Vec<_> = self.plan.inputs(self.id).collect();
        let mut m = serializer.serialize_map(Some(inputs.len()))?;
        for input in &inputs {
            m.serialize_entry(
                &input.spec.name,
                &InputJson {
                    gather: input.spec.gather,
                    paths: self.plan.input_paths(input),
                    producers: input.producers,
                    output: &input.spec.output,
                },
            )?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct InputJson<'a> {
    gather: bool,
    paths: Vec<String>,
    producers: &'a [TaskId],
    output: &'a str,
}
