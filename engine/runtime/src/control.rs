//! Operator actions on a live run (hold, release, kill, rerun, trigger,
//! set succeeded or failed): their types, as
//! the store records them and the daemon sends them (the one place their
//! names are spelled), and how selectors (a task name, a step name, or a
//! glob over task names) resolve to tasks. The dispatch loop journals an
//! action in the state store before the scheduler applies it
//! (`dispatch/control.rs`).

use serde::{Deserialize, Serialize};
use twinflow_core::scheduler::Operator;
use twinflow_core::{Plan, TaskId};

/// What an operator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Held tasks do not start; running ones finish.
    Hold,
    /// Held tasks may start again.
    Release,
    /// Running tasks are killed and fail for good; their dependents are
    /// skipped (held ones wait).
    Kill,
    /// Finished tasks run again as new attempts (never from the cache);
    /// their unfinished or skipped dependents wait for them (running ones
    /// are killed and run again).
    Rerun,
    /// [`ActionKind::Rerun`] with every finished dependent too,
    /// transitively (`twinflow rerun --downstream`).
    RerunDownstream,
    /// Tasks that have not started (waiting for their dependencies, or
    /// ready and held) start now, with their inputs as they are (a hold on
    /// them is lifted); their dependencies' later ends do not touch them.
    Trigger,
    /// Tasks that are not running are marked succeeded by hand: their
    /// declared outputs are sealed as they are in their task directory
    /// (refused when one is missing) and their dependents become ready.
    SetSucceeded,
    /// Tasks that are not running are marked failed for good; their
    /// dependents are skipped (held ones wait).
    SetFailed,
}

impl ActionKind {
    /// Every kind, for tests and help texts.
    pub const ALL: [Self; 8] = [
        Self::Hold,
        Self::Release,
        Self::Kill,
        Self::Rerun,
        Self::RerunDownstream,
        Self::Trigger,
        Self::SetSucceeded,
        Self::SetFailed,
    ];

    /// The lowercase name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Kill => "kill",
            Self::Rerun => "rerun",
            Self::RerunDownstream => "rerun-downstream",
            Self::Trigger => "trigger",
            Self::SetSucceeded => "set-succeeded",
            Self::SetFailed => "set-failed",
        }
    }

    /// Whether it reruns tasks.
    pub fn is_rerun(self) -> bool {
        matches!(self, Self::Rerun | Self::RerunDownstream)
    }

    /// The kind named `name`, as [`ActionKind::as_str`] spells it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether it sets tasks by hand.
    pub fn is_set(self) -> bool {
        matches!(self, Self::SetSucceeded | Self::SetFailed)
    }

    /// What it does to tasks it does not apply to, for messages.
    fn applies_to(self) -> &'static str {
        match self {
            Self::Hold => "unfinished",
            Self::Release => "held",
            Self::Kill => "running (or waiting to retry)",
            Self::Rerun | Self::RerunDownstream => {
                "finished (succeeded, failed, skipped or cancelled; a running or \
                 waiting task is not rerun: kill it first, or let it finish)"
            }
            Self::Trigger => {
                "waiting for its dependencies or held (a running or finished task is \
                 not triggered; a ready task that is not held is queued already)"
            }
            Self::SetSucceeded => {
                "failed, skipped, cancelled, waiting, ready or held (a running task is \
                 not set: kill it first)"
            }
            Self::SetFailed => {
                "succeeded, skipped, cancelled, waiting, ready or held (a running task \
                 is not set: kill it first)"
            }
        }
    }

    pub(crate) fn operator(self) -> Operator {
        match self {
            Self::Hold => Operator::Hold,
            Self::Release => Operator::Release,
            Self::Kill => Operator::Kill,
            Self::Rerun => Operator::Rerun { downstream: false },
            Self::RerunDownstream => Operator::Rerun { downstream: true },
            Self::Trigger => Operator::Trigger,
            Self::SetSucceeded => Operator::SetSucceeded,
            Self::SetFailed => Operator::SetFailed,
        }
    }
}

/// Who acts: the user name and uid the daemon or the run's own socket saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user name (or the uid as text when it has none).
    pub user: String,
    /// The uid.
    pub uid: u32,
}

impl Actor {
    /// The user running this process.
    pub fn current() -> Self {
        Self::for_uid(nix::unistd::getuid().as_raw())
    }

    /// The user with uid `uid` (named by the uid when it has no name).
    pub fn for_uid(uid: u32) -> Self {
        let user = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name);
        Self { user, uid }
    }
}

/// An action on tasks of a live run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorAction {
    /// What to do.
    pub kind: ActionKind,
    /// Task names, step names or globs over task names (`*`, `?`).
    pub selectors: Vec<String>,
    /// Who asks.
    pub by: Actor,
}

/// What an accepted action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReport {
    /// Its number in the state store's journal of actions.
    pub seq: i64,
    /// What was done.
    pub kind: ActionKind,
    /// The tasks it applied to, by name.
    pub applied: Vec<String>,
    /// How many selected tasks it did not apply to (finished, not held,
    /// not running).
    pub skipped: usize,
    /// Whether the action took an ended run up again (a rerun of a run
    /// that had ended: it is live again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub taken_up: bool,
    /// What the operator must know about what it did (a trigger names the
    /// dependencies its tasks start without), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One journalled action ([`crate::StateStore::actions`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Its number.
    pub seq: i64,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
    /// Who.
    pub by: Actor,
    /// What.
    pub kind: ActionKind,
    /// The selectors as given.
    pub selectors: Vec<String>,
    /// The tasks it applied to, by name.
    pub tasks: Vec<String>,
}

/// Why an action was refused; nothing was journalled or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "refused", rename_all = "kebab-case")]
pub enum ControlError {
    /// No selector given.
    #[error("no task selected: name tasks, steps or globs over task names")]
    Empty,
    /// A selector names no task, step or task matching it.
    #[error("`{selector}` names no task or step of run `{run}` and matches no task name")]
    NoMatch {
        /// The run.
        run: String,
        /// The selector.
        selector: String,
    },
    /// The selected tasks are all in a state the action does not change.
    #[error("cannot {kind} any of the {count} selected task(s) of run `{run}`: none is {what}")]
    NothingApplies {
        /// The run.
        run: String,
        /// The action, as named.
        kind: String,
        /// How many were selected.
        count: usize,
        /// What the tasks would have to be.
        what: String,
    },
    /// The run is not live in this process (it ended, or another runs it).
    #[error("run `{0}` is not live here; it ended, or another twinflow process runs it")]
    NotLive(String),
    /// The action reaches tasks it cannot be applied to (a rerun whose
    /// tasks or dependents are members of a coupling group).
    #[error("cannot {kind} on run `{run}`: {why}")]
    Unsupported {
        /// The run.
        run: String,
        /// The action, as named.
        kind: String,
        /// Why.
        why: String,
    },
    /// The action could not be journalled; it was not applied.
    #[error("failed to journal the action on run `{run}`: {message}")]
    Journal {
        /// The run.
        run: String,
        /// Why.
        message: String,
    },
}

impl ControlError {
    pub(crate) fn nothing_applies(run: &str, kind: ActionKind, count: usize) -> Self {
        Self::NothingApplies {
            run: run.to_owned(),
            kind: kind.as_str().to_owned(),
            count,
            what: kind.applies_to().to_owned(),
        }
    }

    /// Whether the caller asked for something wrong (exit 2), rather than
    /// the run or the store failing.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Self::Empty
                | Self::NoMatch { .. }
                | Self::NothingApplies { .. }
                | Self::Unsupported { .. }
        )
    }
}

/// The tasks of `plan` the selectors name, in task order without
/// duplicates: each selector is a task name, else a step name (all its
/// tasks), else, when it holds `*` or `?`, a glob over task names.
/// A selector that names or matches nothing is an error.
pub fn select_tasks(plan: &Plan, selectors: &[String]) -> Result<Vec<TaskId>, ControlError> {
    select_tasks_named(
        plan,
        |t| std::borrow::Cow::Owned(plan.task_name(t)),
        selectors,
    )
}

/// [`select_tasks`] with task names from `name` (a live run keeps them, so
/// that a glob over 100,000 tasks does not make each name anew).
pub(crate) fn select_tasks_named<'n>(
    plan: &Plan,
    name: impl Fn(TaskId) -> std::borrow::Cow<'n, str>,
    selectors: &[String],
) -> Result<Vec<TaskId>, ControlError> {
    if selectors.is_empty() {
        return Err(ControlError::Empty);
    }
    let mut chosen = vec![false; plan.task_count()];
    for selector in selectors {
        let mut any = false;
        // A task name starts with its step's name.
        let step_named = selector
            .split(['[', '@'])
            .next()
            .and_then(|step| plan.steps.iter().find(|s| s.name == step));
        let task = step_named.and_then(|step| {
            step.tasks
                .clone()
                .find(|&t| name(TaskId(t)) == selector.as_str())
        });
        if let Some(t) = task {
            chosen[t as usize] = true;
            any = true;
        } else if let Some(step) = plan.steps.iter().find(|s| &s.name == selector) {
            for t in step.tasks.clone() {
                chosen[t as usize] = true;
                any = true;
            }
        } else if crate::is_glob(selector) {
            // A glob whose literal start holds `[` or `@` names its step:
            // only that step's task names are made and matched.
            let literal = &selector[..selector.find(['*', '?']).unwrap_or(selector.len())];
            let steps: Vec<&twinflow_core::StepSpec> = match literal.find(['[', '@']) {
                Some(end) => plan
                    .steps
                    .iter()
                    .filter(|s| s.name == literal[..end])
                    .collect(),
                None => plan.steps.iter().collect(),
            };
            for step in steps {
                for t in step.tasks.clone() {
                    if glob_match(selector.as_bytes(), name(TaskId(t)).as_bytes()) {
                        chosen[t as usize] = true;
                        any = true;
                    }
                }
            }
        }
        if !any {
            return Err(ControlError::NoMatch {
                run: plan.workflow.run_id.clone(),
                selector: selector.clone(),
            });
        }
    }
    Ok(chosen
        .iter()
        .enumerate()
        .filter(|(_, c)| **c)
        .map(|(t, _)| TaskId(t as u32))
        .collect())
}

/// The tasks a rerun of `tasks` resets in a run that is not live (one
/// taken up again, or resumed after a crash): `tasks` and, with
/// `downstream`, every task depending on one of them, transitively, in
/// task order. (Without it, the run's dependents that did not succeed run
/// again anyway when it is taken up, and those that did are reused only
/// while their inputs' digests match.)
pub(crate) fn plan_closure(plan: &Plan, tasks: &[u32], downstream: bool) -> Vec<u32> {
    let n = plan.task_count();
    let mut chosen = vec![false; n];
    for &t in tasks {
        chosen[t as usize] = true;
    }
    if downstream {
        let mut dependents: Vec<Vec<u32>> = vec![Vec::new(); n];
        for t in 0..n as u32 {
            for d in plan.dependencies(TaskId(t)) {
                dependents[d.index()].push(t);
            }
        }
        let mut stack: Vec<u32> = tasks.to_vec();
        while let Some(t) = stack.pop() {
            for &d in &dependents[t as usize] {
                if !chosen[d as usize] {
                    chosen[d as usize] = true;
                    stack.push(d);
                }
            }
        }
    }
    (0..n as u32).filter(|&t| chosen[t as usize]).collect()
}

/// Glob matching over task names: `*` any run of characters, `?` one;
/// everything else literally (`[` and `]` too, since task names hold them:
/// `forest[ssp126,*]`).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_the_shell() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m("forest[*]", "forest[ssp126]"));
        assert!(m("*ssp126*", "forest[ssp126,2020]"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("x[*]", "x[5]"), "brackets are literal");
        assert!(!m("x[5]", "x5"));
        assert!(!m("forest*", "bird[1]"));
        assert!(m("*", ""));
    }

    fn plan() -> Plan {
        let yaml = "version: 1\nname: c\nexecutors: { here: { kind: local } }\n\
                    steps:\n  a:\n    executor: here\n    for_each: { k: [x, y] }\n    run: 'true'\n\
                    \x20 b:\n    executor: here\n    run: 'true'\n";
        twinflow_workflow::compile_str(
            "c.yaml",
            yaml,
            &twinflow_workflow::CompileOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn selectors_name_tasks_steps_or_globs_and_a_miss_is_an_error() {
        let p = plan();
        let names = |sel: &[&str]| -> Vec<String> {
            let sel: Vec<String> = sel.iter().map(|s| (*s).to_owned()).collect();
            select_tasks(&p, &sel)
                .unwrap()
                .into_iter()
                .map(|t| p.task_name(t))
                .collect()
        };
        let a: Vec<String> = (0..2).map(|t| p.task_name(TaskId(t))).collect();
        assert_eq!(names(&["a"]), a);
        assert_eq!(names(&[&a[1]]), [a[1].clone()]);
        assert_eq!(
            names(&["b", "a*"]).len(),
            3,
            "globs and steps together, once each"
        );
        let err = select_tasks(&p, &["nope".to_owned()]).unwrap_err();
        assert!(err.is_bad_request());
        assert_eq!(
            err.to_string(),
            "`nope` names no task or step of run `dry-run` and matches no task name"
        );
        assert!(select_tasks(&p, &["z*".to_owned()]).is_err());
        assert_eq!(select_tasks(&p, &[]), Err(ControlError::Empty));
    }
}
