//! The answers of the read routes, computed from a state store: the daemon
//! computes them through its engine's connection, and a client with no
//! daemon to ask (`twinflow runs`, `status`, `logs`) computes the same from
//! the store itself, so both print the same.

use crate::api::{
    DEFAULT_PAGE, MAX_PAGE, NotFound, RunStatus, SUMMARY_TASKS, StatusSummary, TaskLogs, TaskPage,
    TaskQuery,
};
use std::path::Path;
use twinflow_engine::{RunInfo, StateError, StateStore, TaskFilter, TaskOrder, TaskState};

/// Follows at most this many reused results from run to run.
const MAX_REUSE_HOPS: usize = 64;

/// Why a read found no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// What was asked for is not there.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StateError),
    /// The question does not hold together (a page cursor of another order).
    #[error("{0}")]
    Invalid(String),
}

/// Every run, newest first.
pub fn runs(store: &StateStore) -> Result<Vec<RunInfo>, StateError> {
    store.runs()
}

/// How many runs an ambiguous prefix lists.
const CANDIDATES_SHOWN: usize = 10;

/// A run by id or unique id prefix; `None` or `latest`: the newest run. A
/// prefix of several runs' ids is [`NotFound::Ambiguous`], with them.
pub fn find_run(store: &StateStore, run: Option<&str>) -> Result<RunInfo, QueryError> {
    match run {
        Some(id) if id != "latest" => {
            if let Some(found) = store.run(id)? {
                return Ok(found);
            }
            let matching: Vec<RunInfo> = store
                .runs()?
                .into_iter()
                .filter(|r| r.id.starts_with(id))
                .collect();
            if matching.len() > 1 {
                return Err(NotFound::Ambiguous {
                    run: id.to_owned(),
                    count: matching.len(),
                    candidates: matching
                        .into_iter()
                        .take(CANDIDATES_SHOWN)
                        .map(|r| r.id)
                        .collect(),
                }
                .into());
            }
            Err(NotFound::Run { run: id.to_owned() }.into())
        }
        _ => store
            .runs()?
            .into_iter()
            .next()
            .ok_or(QueryError::NotFound(NotFound::NoRuns)),
    }
}

/// A run's status (`live` is left `false`).
pub fn status(store: &StateStore, run: Option<&str>) -> Result<RunStatus, QueryError> {
    let run = find_run(store, run)?;
    let steps = store.step_counts(&run.id)?;
    let tasks = store.tasks(&run.id)?;
    let held = store.held_tasks(&run.id)?;
    let actions = store.actions(&run.id)?;
    Ok(RunStatus {
        run,
        steps,
        tasks,
        live: false,
        held,
        actions,
    })
}

/// A run's summary: its counts and first failed and awaiting tasks, read
/// through indexes (`live` is left `false`).
pub fn summary(store: &StateStore, run: Option<&str>) -> Result<StatusSummary, QueryError> {
    let run = find_run(store, run)?;
    let steps = store.step_counts(&run.id)?;
    let first = |state: TaskState| -> Result<Vec<_>, StateError> {
        let filter = TaskFilter {
            states: vec![state],
            ..TaskFilter::default()
        };
        Ok(store
            .task_page(&run.id, &filter, TaskOrder::Id, None, SUMMARY_TASKS)?
            .map_or_else(|_| Vec::new(), |(tasks, _)| tasks))
    };
    let failures = first(TaskState::Failed)?;
    let awaiting_tasks = first(TaskState::Awaiting)?;
    let held = store.held_tasks(&run.id)?;
    let mut actions = store.actions(&run.id)?;
    let action_count = actions.len() as u64;
    actions.drain(..actions.len().saturating_sub(SUMMARY_TASKS));
    Ok(StatusSummary {
        held,
        action_count,
        actions,
        failed: steps.iter().map(|s| s.failed).sum(),
        awaiting: steps.iter().map(|s| s.awaiting).sum(),
        run,
        steps,
        failures,
        awaiting_tasks,
        live: false,
    })
}

/// One page of a run's tasks, filtered and ordered as `query` says. An
/// unknown step is [`NotFound::StepName`], with the run's steps; a cursor of
/// another order is [`QueryError::Invalid`].
pub fn tasks(store: &StateStore, run: &str, query: &TaskQuery) -> Result<TaskPage, QueryError> {
    let run = find_run(store, Some(run))?;
    let step = match &query.step {
        Some(name) => Some(store.step_index(&run.id, name)?.ok_or_else(|| {
            let steps = store
                .step_counts(&run.id)
                .map(|s| s.into_iter().map(|s| s.step).collect())
                .unwrap_or_default();
            NotFound::StepName {
                run: run.id.clone(),
                step: name.clone(),
                steps,
            }
        })?),
        None => None,
    };
    let filter = TaskFilter {
        step,
        states: query.states.clone(),
        name: query.name.clone(),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let (tasks, next_after) = store
        .task_page(&run.id, &filter, query.order, query.after, limit)?
        .map_err(|e| QueryError::Invalid(e.to_string()))?;
    Ok(TaskPage {
        run_id: run.id,
        tasks,
        next_after,
    })
}

/// Where the logs of task `task` (by name) of `run` are, following reused
/// results to the run that produced them. `attempt` defaults to the task's
/// latest in the run whose logs they are.
pub fn task_logs(
    store: &StateStore,
    run: &str,
    task: &str,
    attempt: Option<u32>,
) -> Result<TaskLogs, QueryError> {
    let mut reused_from = Vec::new();
    let mut asked = run.to_owned();
    loop {
        let info = find_run(store, Some(&asked))?;
        let row = store.task(&info.id, task)?.ok_or_else(|| NotFound::Task {
            run: info.id.clone(),
            task: task.to_owned(),
        })?;
        if let Some(from) = row.cached_from.as_deref().filter(|from| *from != info.id)
            && reused_from.len() < MAX_REUSE_HOPS
        {
            reused_from.push(from.to_owned());
            asked = from.to_owned();
            continue;
        }
        let (step, first) = store.step_of(&info.id, row.step)?.ok_or(NotFound::Step {
            run: info.id.clone(),
            step: row.step,
        })?;
        let attempt = attempt.unwrap_or(row.attempt);
        let paths = twinflow_engine::task_paths(
            Path::new(&info.run_dir),
            &step,
            row.task.saturating_sub(first),
            attempt,
        );
        let started = store.attempt_started(&info.id, row.task, attempt)?;
        return Ok(TaskLogs {
            started,
            run_id: info.id,
            task: row.name,
            attempt,
            reused_from,
            stdout: paths.stdout.display().to_string(),
            stderr: paths.stderr.display().to_string(),
        });
    }
}
