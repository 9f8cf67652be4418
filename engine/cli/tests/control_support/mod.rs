//! What the operator-action command-line tests share: how long to wait
//! for a run to get somewhere, and the states of a step's tasks.

use super::common::tasks;
use std::time::Duration;

/// How long a test waits for a run to reach a state.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// The states of the tasks of run `run` whose names start with `prefix`,
/// in task order.
pub(crate) fn state_of(state: &std::path::Path, run: &str, prefix: &str) -> Vec<String> {
    tasks(state, run)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with(prefix))
        .map(|(_, s, _)| s)
        .collect()
}
