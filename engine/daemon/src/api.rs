//! The JSON the daemon and its clients exchange (`/v1/...`).
//!
//! The read routes (`GET /v1/runs`, `/v1/runs/{id}`, `/v1/runs/{id}/logs/{task}`)
//! answer with the state store's own rows ([`RunInfo`], [`StepCounts`],
//! [`TaskRow`]), so a client renders the same values whether it asked the
//! daemon or read a store itself ([`crate::query`]).

use serde::{Deserialize, Serialize};
use twinflow_engine::{RunInfo, StepCounts, TaskCursor, TaskOrder, TaskRow, TaskState};

/// `POST /v1/runs`: run a workflow file, as `twinflow run` would.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The workflow file, absolute (the daemon's working directory is not
    /// the client's).
    pub file: String,
    /// `key=value` parameter overrides.
    #[serde(default)]
    pub params: Vec<String>,
    /// A site file, absolute.
    #[serde(default)]
    pub site: Option<String>,
    /// Bind every executor to a local one.
    #[serde(default)]
    pub local: bool,
    /// Run every task again instead of reusing cached results.
    #[serde(default)]
    pub no_cache: bool,
    /// Stop at the first task that fails for good.
    #[serde(default)]
    pub fail_fast: bool,
}

/// The answer to a submission.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Submitted {
    /// The new run's id.
    pub run_id: String,
    /// Where its files are.
    pub run_dir: String,
}

/// The kind (`"event"`) of the line that `GET /v1/runs/{id}/events` sends a
/// live run's watcher right after `run-started`: `{"event": "progress",
/// "steps": [...]}`, each step's counts so far as `twinflow status` reports
/// them (`twinflow_engine::StepCounts`). Every other line is a
/// `twinflow_engine::RunEvent` (the `twinflow.events/v1` stream).
pub const PROGRESS_EVENT: &str = "progress";

/// `GET /v1/ping`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ping {
    /// The daemon's pid.
    pub pid: u32,
    /// Its version.
    pub version: String,
    /// Its state directory.
    pub state_dir: String,
    /// Runs it carries now.
    pub live_runs: Vec<String>,
    /// The TCP address it listens on besides its socket, if it does.
    #[serde(default)]
    pub listen: Option<String>,
}

/// `GET /v1/runs/{id}`: a run (`id` may be a unique prefix, or `latest`
/// for the newest run), its per-step counts and every task with a record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStatus {
    /// The run.
    pub run: RunInfo,
    /// Its steps' task counts, in step order.
    pub steps: Vec<StepCounts>,
    /// Its tasks that have a record (launched at least once, or skipped).
    pub tasks: Vec<TaskRow>,
    /// Whether the daemon that answered carries it now (always `false` when
    /// read from a store directly).
    #[serde(default)]
    pub live: bool,
    /// Its unfinished tasks an operator holds, by name.
    #[serde(default)]
    pub held: Vec<String>,
    /// The operator actions on it, oldest first.
    #[serde(default)]
    pub actions: Vec<twinflow_engine::ActionRecord>,
}

/// Which of a task's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    /// Parses `stdout` or `stderr`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "stdout" => Some(Self::Stdout),
            "stderr" => Some(Self::Stderr),
            _ => None,
        }
    }
}

/// `GET /v1/runs/{id}/logs/{task}` (without `stream=`): where a task's logs
/// are. A task that reused an earlier run's result has that run's logs:
/// they are followed, and the runs passed through are listed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskLogs {
    /// The run whose files these are (the one asked for, or the last run
    /// in `reused_from`).
    pub run_id: String,
    /// The task's name.
    pub task: String,
    /// The attempt (the one asked for, else the latest).
    pub attempt: u32,
    /// The runs whose results the task reused, in the order followed.
    pub reused_from: Vec<String>,
    /// Its standard output file.
    pub stdout: String,
    /// Its standard error file.
    pub stderr: String,
    /// Whether the attempt was started: a started attempt's missing log
    /// file means it wrote nothing to that stream (files are created on the
    /// first byte); otherwise there is no log yet.
    #[serde(default)]
    pub started: bool,
}

impl TaskLogs {
    /// Whether `error`, met opening a log file, stands for an empty log:
    /// the file is missing and the attempt started (it wrote nothing there).
    pub fn is_empty_log(&self, error: &std::io::Error) -> bool {
        error.kind() == std::io::ErrorKind::NotFound && self.started
    }

    /// The file of `stream`.
    pub fn path(&self, stream: LogStream) -> &str {
        match stream {
            LogStream::Stdout => &self.stdout,
            LogStream::Stderr => &self.stderr,
        }
    }
}

/// What a read route did not find (a 404 with this in its body).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NotFound {
    /// No run has this id or id prefix.
    #[error("no run `{run}`")]
    Run {
        /// The id asked for.
        run: String,
    },
    /// A prefix of several runs' ids.
    #[error("{}", ambiguous(run, *count, candidates))]
    Ambiguous {
        /// The prefix asked for.
        run: String,
        /// How many runs it begins.
        count: usize,
        /// The newest of them (at most ten), newest first.
        candidates: Vec<String>,
    },
    /// The newest run was asked for and there is none.
    #[error("no runs yet")]
    NoRuns,
    /// The run has no record of the task.
    #[error("run {run} has no record of a task `{task}`")]
    Task {
        /// The run.
        run: String,
        /// The task asked for.
        task: String,
    },
    /// The store names a step it does not have (a damaged store).
    #[error("run {run} has no step {step}")]
    Step {
        /// The run.
        run: String,
        /// The step's index.
        step: u32,
    },
    /// The run has no step of this name.
    #[error("run {run} has no step `{step}` (its steps: {})", steps.join(", "))]
    StepName {
        /// The run.
        run: String,
        /// The step asked for.
        step: String,
        /// Its steps' names.
        steps: Vec<String>,
    },
    /// A log file could not be read.
    #[error("no log at {path}: {reason}")]
    Log {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The message of [`NotFound::Ambiguous`].
fn ambiguous(run: &str, count: usize, candidates: &[String]) -> String {
    let more = count.saturating_sub(candidates.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "run `{run}` is ambiguous: {count} runs begin with it ({}{more}); give more of the id",
        candidates.join(", ")
    )
}

/// An error answer: `{"error": "..."}`, with what was not found on a 404
/// of a read route.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong, a lowercase fragment.
    pub error: String,
    /// On a 404 of a read route: what was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found: Option<NotFound>,
}

/// `POST /v1/runs/{id}/actions`: an operator action on tasks of a live run
/// (answered with a [`twinflow_engine::ActionReport`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// What to do.
    pub kind: twinflow_engine::ActionKind,
    /// Task names, step names or globs over task names.
    pub selectors: Vec<String>,
}

/// The body of `POST /v1/runs/{id}/select` (answered with a
/// [`twinflow_engine::Selection`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SelectRequest {
    /// Task names, step names or globs over task names.
    pub selectors: Vec<String>,
}

/// How many failed and awaiting tasks a [`StatusSummary`] names.
pub const SUMMARY_TASKS: usize = 10;

/// The most tasks one page holds ([`TaskQuery::limit`]).
pub const MAX_PAGE: usize = 10_000;

/// The tasks a page holds when [`TaskQuery::limit`] is not given.
pub const DEFAULT_PAGE: usize = 100;

/// `GET /v1/runs/{id}/summary`: a run's state and per-step counts, with its
/// first failed and awaiting tasks: the same size whatever the run's size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusSummary {
    /// The run.
    pub run: RunInfo,
    /// Its steps' task counts, in step order.
    pub steps: Vec<StepCounts>,
    /// How many of its tasks failed for good.
    pub failed: u64,
    /// The first of them (at most [`SUMMARY_TASKS`]), in task order.
    pub failures: Vec<TaskRow>,
    /// How many of its tasks await external data.
    pub awaiting: u64,
    /// The first of them (at most [`SUMMARY_TASKS`]), in task order.
    pub awaiting_tasks: Vec<TaskRow>,
    /// The unfinished tasks an operator holds, by name.
    #[serde(default)]
    pub held: Vec<String>,
    /// How many operator actions the run's journal holds.
    #[serde(default)]
    pub action_count: u64,
    /// The latest of them (at most [`SUMMARY_TASKS`]), oldest first.
    #[serde(default)]
    pub actions: Vec<twinflow_engine::ActionRecord>,
    /// Whether the daemon that answered carries it now.
    #[serde(default)]
    pub live: bool,
}

/// `GET /v1/runs/{id}/tasks?...`: which of a run's tasks to list, and from
/// where, in which order. Every field is optional; as query parameters:
/// `step=NAME`, `state=STATE` (repeatable), `name=GLOB`,
/// `order=id|longest|latest`, `after=CURSOR` (a page's `next_after`: a task
/// id in task order, else `ORDER:KEY:TASK`), `limit=N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuery {
    /// Only the tasks of the step of this name.
    pub step: Option<String>,
    /// Only tasks in one of these states.
    pub states: Vec<TaskState>,
    /// Only tasks whose name matches this glob (`*`, `?`, `[...]`).
    pub name: Option<String>,
    /// The order of the tasks (default: task order).
    #[serde(default)]
    pub order: TaskOrder,
    /// Only tasks after this position in [`TaskQuery::order`] (the previous
    /// page's [`TaskPage::next_after`]; a cursor of another order is refused).
    pub after: Option<TaskCursor>,
    /// At most this many tasks (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    pub limit: Option<usize>,
}

impl TaskQuery {
    /// The query string (without `?`), each value percent-encoded.
    pub fn to_query(&self) -> String {
        let mut pairs = Vec::new();
        if let Some(step) = &self.step {
            pairs.push(format!("step={}", crate::client::escape(step)));
        }
        for state in &self.states {
            pairs.push(format!("state={}", state.as_str()));
        }
        if let Some(name) = &self.name {
            pairs.push(format!("name={}", crate::client::escape(name)));
        }
        if self.order != TaskOrder::Id {
            pairs.push(format!("order={}", self.order));
        }
        if let Some(after) = self.after {
            pairs.push(format!(
                "after={}",
                crate::client::escape(&after.to_string())
            ));
        }
        if let Some(limit) = self.limit {
            pairs.push(format!("limit={limit}"));
        }
        pairs.join("&")
    }

    /// Parses a query string, or says which parameter is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut query = Self::default();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = unescape(value).ok_or_else(|| format!("{key}: bad percent-encoding"))?;
            match key {
                "step" => query.step = Some(value),
                "state" => {
                    query.states.push(value.parse().map_err(
                        |e: twinflow_engine::UnknownState| format!("state={value}: {e}"),
                    )?)
                }
                "name" => query.name = Some(value),
                "order" => {
                    query.order = value.parse().map_err(|e: twinflow_engine::UnknownOrder| {
                        format!("order={value}: {e}")
                    })?;
                }
                "after" => {
                    query.after =
                        Some(value.parse().map_err(|e: twinflow_engine::BadCursor| {
                            format!("after={value}: {e}")
                        })?);
                }
                "limit" => {
                    let limit: usize = value
                        .parse()
                        .map_err(|_| format!("limit={value}: expected a number"))?;
                    if limit == 0 || limit > MAX_PAGE {
                        return Err(format!("limit={value}: expected 1 to {MAX_PAGE}"));
                    }
                    query.limit = Some(limit);
                }
                _ => {
                    return Err(format!(
                        "unknown query parameter `{key}`: expected step, state, name, order, after or limit"
                    ));
                }
            }
        }
        if let Some(after) = query.after.filter(|a| a.order != query.order) {
            return Err(format!(
                "after={after}: a position in order {}, not {} (give order={})",
                after.order, query.order, after.order
            ));
        }
        Ok(query)
    }
}

/// Percent-decoding of a query value (`+` stays `+`).
fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The answer of `GET /v1/runs/{id}/tasks`: one page of a run's tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskPage {
    /// The run's id.
    pub run_id: String,
    /// The tasks, in the order asked for.
    pub tasks: Vec<TaskRow>,
    /// When more tasks match: ask again with `after` set to this (and the
    /// same order). A JSON number (the last task's id) in task order, else
    /// a string `ORDER:KEY:TASK`.
    pub next_after: Option<TaskCursor>,
}

/// `POST /v1/token/rotate` (Unix socket only): the TCP listener's token
/// was replaced; the new one is in the access file, the old one is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRotated {
    /// The access file holding the new token.
    pub access_file: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_query_goes_through_its_query_string_unchanged() {
        let query = TaskQuery {
            step: Some("grow model".to_owned()),
            states: vec![TaskState::Failed, TaskState::Awaiting],
            name: Some("grow[climate=ssp1]@*".to_owned()),
            order: TaskOrder::Id,
            after: Some(TaskCursor::after_task(41)),
            limit: Some(250),
        };
        let raw = query.to_query();
        assert!(!raw.contains('[') && !raw.contains(' '), "{raw}");
        assert!(raw.contains("after=41") && !raw.contains("order="), "{raw}");
        assert_eq!(TaskQuery::parse(&raw), Ok(query));
        assert_eq!(TaskQuery::parse(""), Ok(TaskQuery::default()));
    }

    #[test]
    fn an_ordered_task_query_goes_through_its_query_string_unchanged() {
        for order in [TaskOrder::Longest, TaskOrder::Latest] {
            let query = TaskQuery {
                states: vec![TaskState::Succeeded],
                name: Some("sim*".to_owned()),
                order,
                after: Some(TaskCursor {
                    order,
                    key: -8_999_998_234_000_000,
                    task: 77,
                }),
                limit: Some(100),
                ..TaskQuery::default()
            };
            let raw = query.to_query();
            assert!(raw.contains(&format!("order={order}")), "{raw}");
            assert_eq!(TaskQuery::parse(&raw), Ok(query));
        }
    }

    #[test]
    fn a_bad_task_query_says_which_parameter() {
        for (raw, says) in [
            ("state=sleepy", "unknown task state `sleepy`"),
            ("limit=0", "expected 1 to 10000"),
            ("limit=10001", "expected 1 to 10000"),
            ("after=x", "bad page cursor `x`"),
            (
                "order=name",
                "unknown task order `name`: expected id, longest or latest",
            ),
            (
                "order=latest&after=41",
                "a position in order id, not latest",
            ),
            ("after=longest:-5:3", "a position in order longest, not id"),
            ("page=2", "unknown query parameter `page`"),
            ("name=%zz", "bad percent-encoding"),
        ] {
            let e = TaskQuery::parse(raw).unwrap_err();
            assert!(e.contains(says), "{raw}: {e}");
        }
    }
}
