//! What a hook is told: the event as a JSON object (a hook's standard input
//! and a webhook's body) and as `TWINFLOW_EVENT_*` variables (one per
//! top-level field that is not an object or a list).

use crate::event::RunEvent;
use serde_json::{Map, Value, json};
use twinflow_core::{HookEvent, Plan};

/// The format tag of a hook's JSON (`"format"`).
pub const HOOK_EVENT_FORMAT: &str = "twinflow.hook-event/v1";

/// The hook event a run event fires, with the step whose hooks also fire
/// (`None` for the run's own events).
pub(crate) fn classify(event: &RunEvent) -> Option<(HookEvent, Option<u32>)> {
    match event {
        RunEvent::TaskFailed {
            step,
            retry_in: Some(_),
            ..
        } => Some((HookEvent::Retry, Some(*step))),
        RunEvent::TaskFailed { step, .. } => Some((HookEvent::Failure, Some(*step))),
        RunEvent::TaskSucceeded { step, .. } => Some((HookEvent::Success, Some(*step))),
        RunEvent::RunStalled { .. } => Some((HookEvent::Stalled, None)),
        RunEvent::RunFinished(_) => Some((HookEvent::Finished, None)),
        _ => None,
    }
}

/// The JSON object of `event` (of kind `kind`) in a run of `plan`.
pub(crate) fn payload(
    plan: &Plan,
    run_dir: &std::path::Path,
    kind: HookEvent,
    event: &RunEvent,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("format".into(), json!(HOOK_EVENT_FORMAT));
    m.insert("kind".into(), json!(kind.as_str()));
    m.insert("run_id".into(), json!(plan.workflow.run_id));
    m.insert("workflow".into(), json!(plan.workflow.name));
    m.insert("run_dir".into(), json!(run_dir));
    let step_name = |step: u32| {
        plan.steps
            .get(step as usize)
            .map_or(Value::Null, |s| json!(s.name))
    };
    match event {
        RunEvent::TaskFailed {
            task,
            name,
            step,
            attempt,
            reason,
            retry_in,
            stderr,
            stdout,
        } => {
            m.insert("task".into(), json!(name));
            m.insert("task_id".into(), json!(task));
            m.insert("step".into(), step_name(*step));
            m.insert("attempt".into(), json!(attempt));
            m.insert("reason".into(), json!(reason));
            if let Some(code) = exit_status(reason) {
                m.insert("exit_status".into(), json!(code));
            }
            m.insert("retry_in".into(), json!(retry_in));
            m.insert("stderr".into(), json!(stderr));
            m.insert("stdout".into(), json!(stdout));
        }
        RunEvent::TaskSucceeded {
            task,
            name,
            step,
            cached_from,
            seconds,
        } => {
            m.insert("task".into(), json!(name));
            m.insert("task_id".into(), json!(task));
            m.insert("step".into(), step_name(*step));
            m.insert("cached_from".into(), json!(cached_from));
            m.insert("seconds".into(), json!(seconds));
        }
        RunEvent::RunStalled { unfinished } => {
            m.insert("unfinished".into(), json!(unfinished));
        }
        RunEvent::RunFinished(summary) => {
            m.insert("outcome".into(), json!(summary.outcome));
            m.insert("tasks".into(), json!(summary.tasks));
            m.insert("ran".into(), json!(summary.ran));
            m.insert("cached".into(), json!(summary.cached));
            m.insert("failed".into(), json!(summary.failed));
            m.insert("skipped".into(), json!(summary.skipped));
            m.insert("cancelled".into(), json!(summary.cancelled));
            m.insert("seconds".into(), json!(summary.seconds));
            let failures: Vec<Value> = summary
                .failures
                .iter()
                .map(|(task, reason)| json!({ "task": task, "reason": reason }))
                .collect();
            m.insert("failures".into(), Value::Array(failures));
        }
        _ => {}
    }
    m
}

/// The exit status a failure reason names (`exited with status 3`).
fn exit_status(reason: &str) -> Option<i32> {
    let rest = reason.split("exited with status ").nth(1)?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// `TWINFLOW_EVENT_<FIELD>` for each scalar field (null: empty).
pub(crate) fn variables(payload: &Map<String, Value>) -> Vec<(String, String)> {
    payload
        .iter()
        .filter_map(|(key, value)| {
            let text = match value {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Array(_) | Value::Object(_) => return None,
            };
            Some((format!("TWINFLOW_EVENT_{}", key.to_ascii_uppercase()), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_are_read_from_reasons() {
        assert_eq!(exit_status("exited with status 3"), Some(3));
        assert_eq!(exit_status("exited with status 12: boom | bang"), Some(12));
        assert_eq!(exit_status("killed by signal 9"), None);
    }

    #[test]
    fn scalar_fields_become_variables() {
        let mut m = Map::new();
        m.insert("kind".into(), json!("failure"));
        m.insert("attempt".into(), json!(2));
        m.insert("retry_in".into(), Value::Null);
        m.insert("failures".into(), json!([]));
        assert_eq!(
            variables(&m),
            vec![
                ("TWINFLOW_EVENT_KIND".into(), "failure".into()),
                ("TWINFLOW_EVENT_ATTEMPT".into(), "2".into()),
                ("TWINFLOW_EVENT_RETRY_IN".into(), String::new()),
            ]
        );
    }
}
