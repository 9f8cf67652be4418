//! One row write per task and batch: a short task starts, runs and ends
//! within one [`super::SOON`] window, and its changes (queued, handle,
//! running, succeeded, cache key) used to be five statements on its row,
//! each moving it in the state index and firing the per-step count
//! triggers. A task whose changes in the batch begin with the start of an
//! attempt (`queued`) has its row computed here, by the same rules as the
//! statements one by one (`state::write`), and written once; its events
//! are still written one per change.

use super::Op;
use crate::state::TaskState;
use crate::state::write::AttemptChanges;
use std::collections::{HashMap, HashSet};

/// A task's row as its changes in the batch leave it.
#[derive(Debug)]
pub(super) struct Collapsed<'a> {
    /// Index of the task's first change in the batch: where the row is written.
    pub first: usize,
    pub changes: AttemptChanges<'a>,
}

/// The tasks of `ops` whose row can be written once, with that row. A
/// task qualifies when its first change in the batch is `queued` and the
/// rest are states, handles, running marks, cache keys or sealed outputs of
/// that same attempt; anything else (an operator's reset, a second
/// attempt) leaves it to the statements one by one.
pub(super) fn collapse(ops: &[(i64, Op)]) -> HashMap<u32, Collapsed<'_>> {
    let mut rows: HashMap<u32, Collapsed<'_>> = HashMap::new();
    let mut refused: HashSet<u32> = HashSet::new();
    for (i, (at, op)) in ops.iter().enumerate() {
        let Some(task) = op.task() else { continue };
        if refused.contains(&task) {
            continue;
        }
        let Some(Collapsed { changes: row, .. }) = rows.get_mut(&task) else {
            match op {
                Op::State {
                    attempt,
                    state: TaskState::Queued,
                    reason,
                    ..
                } => {
                    rows.insert(
                        task,
                        Collapsed {
                            first: i,
                            changes: AttemptChanges {
                                attempt: *attempt,
                                state: TaskState::Queued,
                                reason: reason.as_deref(),
                                handle: None,
                                started_ms: *at,
                                finished_ms: None,
                                cache: None,
                            },
                        },
                    );
                }
                _ => {
                    refused.insert(task);
                }
            }
            continue;
        };
        let same_attempt = match op {
            Op::State { attempt, state, .. } => {
                *attempt == row.attempt && *state != TaskState::Queued
            }
            Op::Handle { attempt, .. } => *attempt == row.attempt,
            Op::Running { .. } | Op::Cache { .. } | Op::Sealed { .. } => true,
            Op::Waiting { .. } | Op::RunFinished { .. } => false,
        };
        if !same_attempt {
            rows.remove(&task);
            refused.insert(task);
            continue;
        }
        match op {
            Op::State { state, reason, .. } => {
                row.state = *state;
                row.reason = reason.as_deref();
                if state.ends_attempt() {
                    row.finished_ms = Some(*at);
                }
            }
            Op::Handle { handle, .. } => row.handle = Some(handle),
            Op::Running { .. } => {
                if matches!(row.state, TaskState::Queued | TaskState::Awaiting) {
                    row.state = TaskState::Running;
                    row.reason = None;
                }
            }
            Op::Cache { key, from, .. } => row.cache = Some((key, from.as_deref())),
            Op::Sealed { .. } | Op::Waiting { .. } | Op::RunFinished { .. } => {}
        }
    }
    rows
}
