//! The digest of a plan: whether a workflow changed between a run and its
//! resumption (same tasks, ids, commands, dependencies, outputs).

use crate::artefact::CacheKey;
use twinflow_core::{Plan, TaskId};

/// SHA-256 over every task's name, step, command and dependencies and every
/// step's outputs.
pub(crate) fn plan_digest(plan: &Plan) -> String {
    let mut key = CacheKey::new(&plan.workflow.name, "plan");
    for step in &plan.steps {
        key.field(&step.name);
        for output in &step.outputs {
            key.field(&output.name);
            key.field(&output.path);
        }
    }
    let mut deps = String::new();
    for (i, task) in plan.tasks().iter().enumerate() {
        let id = TaskId(i as u32);
        key.field(&plan.steps[task.step.index()].name);
        key.field(&task.command);
        deps.clear();
        for d in plan.dependencies(id) {
            deps.push_str(&d.0.to_string());
            deps.push(',');
        }
        key.field(&deps);
    }
    key.finish()
}
