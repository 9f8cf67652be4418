//! What `twinflow watch RUN SEL…` follows: the tasks that operator
//! selectors name (the rules of [`crate::select_tasks`]) with where each one
//! is now, as the live run's scheduler sees it ([`crate::Controller::select`])
//! or, once the run is no longer live, as the state store recorded it
//! ([`crate::StateStore::select_recorded`]). Also the one translation of a
//! selector glob to SQLite's `GLOB`, so that `status --name` and the
//! selectors of actions match the same names.

use serde::{Deserialize, Serialize};
pub use twinflow_core::scheduler::TaskState as LiveState;

/// A selected task and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectedTask {
    /// Its id in the plan.
    pub task: u32,
    /// Its name.
    pub name: String,
    /// Where it is in its life.
    pub state: LiveState,
    /// Its current attempt, as its log files number them (0 for the first).
    pub attempt: u32,
    /// Whether an operator holds it.
    pub held: bool,
}

/// The tasks `selectors` name, as a live run or its record sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The run's id.
    pub run_id: String,
    /// Whether the run is live (its states change); otherwise they come
    /// from the state store and tasks never launched are not listed.
    pub live: bool,
    /// The tasks, in task order.
    pub tasks: Vec<SelectedTask>,
}

/// Whether `selector` is a glob rather than a name (it holds `*` or `?`).
pub fn is_glob(selector: &str) -> bool {
    selector.contains(['*', '?'])
}

/// A selector glob (`*`, `?`, everything else literal) as an SQLite `GLOB`
/// pattern: `[` starts a character class there, so it is written `[[]`.
pub fn sqlite_glob(glob: &str) -> String {
    glob.replace('[', "[[]")
}

/// The state a stored task state stands for, for a run that is not live.
pub(crate) fn live_state(stored: crate::TaskState) -> LiveState {
    use crate::TaskState as S;
    match stored {
        S::Queued | S::Running | S::Awaiting => LiveState::Running,
        S::Retrying => LiveState::RetryWait,
        S::Succeeded => LiveState::Succeeded,
        S::Failed | S::Lost => LiveState::Failed,
        S::Skipped => LiveState::Skipped,
        S::Cancelled => LiveState::Cancelled,
        S::Waiting => LiveState::Waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_glob_keeps_brackets_literal_in_sqlite() {
        assert_eq!(sqlite_glob("forest[ssp126,*]"), "forest[[]ssp126,*]");
        assert!(is_glob("a*") && is_glob("a?") && !is_glob("forest[x]"));
    }

    #[test]
    fn live_states_serialize_as_their_names() {
        for state in [
            LiveState::Waiting,
            LiveState::Ready,
            LiveState::Running,
            LiveState::RetryWait,
            LiveState::Succeeded,
            LiveState::Failed,
            LiveState::Skipped,
            LiveState::Cancelled,
        ] {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::from(state.as_str())
            );
        }
    }
}
