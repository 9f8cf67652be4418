//! `twinflow watch RUN SEL…`: follows a subset of a run's tasks (task
//! names, step names, globs, as operator actions select them). Each change
//! of a selected task's state is printed to stderr (`name: running`), and
//! the output of each of its attempts is followed while it runs, every line
//! prefixed with the task's name (its standard output to stdout, its
//! standard error to stderr). It returns once every selected task has
//! ended, or the run is no longer live: exit 0 when all of them succeeded,
//! 1 when any did not.
//!
//! The tasks are asked for through the daemon's `select` route once a
//! second (a live run's scheduler answers, so waiting and held tasks are
//! seen too); a big selection costs one answer of that size per second.

use crate::args::{DaemonArgs, StateArgs};
use crate::exit;
use crate::output::Output;
use crate::plumbing::{block_on, failed_for_run, state_dir, target_for_run};
use crate::term::shown;
use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use twinflow_daemon::api::LogStream;
use twinflow_daemon::{Client, DaemonError, query};
use twinflow_engine::{LiveState, SelectedTask, Selection, StateStore};

/// How often the selection is asked for again.
const POLL: Duration = Duration::from_millis(500);

/// Follows the tasks `selectors` name in `run` until they end.
pub(crate) fn watch_tasks(
    out: &Output,
    state: &StateArgs,
    daemon: &DaemonArgs,
    run: &str,
    selectors: &[String],
    json: bool,
) -> u8 {
    let target = match target_for_run(out, state, daemon, Some(run)) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let client = target.client.clone();
    let result = block_on(
        out,
        follow(
            client,
            state_dir(state),
            run.to_owned(),
            selectors.to_vec(),
            json,
        ),
    );
    match result {
        Ok(Ok(all_succeeded)) => {
            if all_succeeded {
                exit::SUCCESS
            } else {
                exit::TASK_FAILED
            }
        }
        Ok(Err(e)) => failed_for_run(out, state, &target, &e, run),
        Err(code) => code,
    }
}

/// The loop: whether every selected task succeeded.
async fn follow(
    client: Client,
    state: PathBuf,
    run: String,
    selectors: Vec<String>,
    json: bool,
) -> Result<bool, DaemonError> {
    let mut seen: HashMap<u32, SelectedTask> = HashMap::new();
    let mut followers = tokio::task::JoinSet::new();
    let mut followed: HashSet<(u32, u32)> = HashSet::new();
    let mut first = true;
    loop {
        let selection = match client.select(&run, &selectors).await {
            // Nothing answers (a `twinflow run` ended and closed its
            // socket, and no daemon runs): the store has the end.
            Err(DaemonError::NotRunning { .. }) => recorded(&state, &run, &selectors)?,
            answer => answer?,
        };
        if first && !json {
            eprintln!(
                "watching {} task(s) of {}{}",
                selection.tasks.len(),
                shown(&selection.run_id),
                if selection.live {
                    ""
                } else {
                    " (not live: as recorded)"
                }
            );
        }
        first = false;
        for task in &selection.tasks {
            let changed = seen.get(&task.task).is_none_or(|before| before != task);
            if !changed {
                continue;
            }
            report(task, json);
            // Its attempt ran while watched (not one that had ended before
            // the watch began): its output is printed, followed while it runs.
            let ran = matches!(
                task.state,
                LiveState::Running
                    | LiveState::RetryWait
                    | LiveState::Succeeded
                    | LiveState::Failed
            );
            let watched = seen.contains_key(&task.task) || task.state == LiveState::Running;
            if ran
                && watched
                && !json
                && selection.live
                && followed.insert((task.task, task.attempt))
            {
                for stream in [LogStream::Stdout, LogStream::Stderr] {
                    followers.spawn(print_log(
                        client.clone(),
                        run.clone(),
                        task.name.clone(),
                        task.attempt,
                        stream,
                    ));
                }
            }
            seen.insert(task.task, task.clone());
        }
        let all_ended = selection.tasks.iter().all(|t| t.state.is_terminal());
        if all_ended || !selection.live {
            // The output of attempts that ended is read to its end.
            while followers.join_next().await.is_some() {}
            return Ok(selection
                .tasks
                .iter()
                .all(|t| t.state == LiveState::Succeeded));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The selection as the state store recorded it, for a run no process
/// serves.
fn recorded(state: &Path, run: &str, selectors: &[String]) -> Result<Selection, DaemonError> {
    let store = StateStore::open(state).map_err(|e| DaemonError::Setup(e.to_string()))?;
    let info = query::find_run(&store, Some(run)).map_err(|e| match e {
        query::QueryError::NotFound(nf) => DaemonError::NotFound(nf),
        query::QueryError::Store(e) => DaemonError::Setup(e.to_string()),
        query::QueryError::Invalid(message) => DaemonError::Refused {
            status: 400,
            message,
        },
    })?;
    store
        .select_recorded(&info.id, selectors)
        .map_err(|e| DaemonError::Setup(e.to_string()))?
        .map_err(|e| DaemonError::Refused {
            status: 400,
            message: e.to_string(),
        })
}

/// One change of a task's state: a line on stderr, or a JSON line.
fn report(task: &SelectedTask, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(task) {
            println!("{line}");
        }
        return;
    }
    let held = if task.held { " (held)" } else { "" };
    let attempt = match task.attempt {
        0 => String::new(),
        n => format!(", attempt {n}"),
    };
    eprintln!(
        "{}: {}{attempt}{held}",
        shown(&task.name),
        task.state.as_str()
    );
}

/// Prints one log file of an attempt as it is written, each line prefixed
/// with the task's name, until the attempt ends. A file that cannot be
/// read is said once on stderr; the watch goes on.
async fn print_log(client: Client, run: String, task: String, attempt: u32, stream: LogStream) {
    let prefix = format!("{} | ", shown(&task));
    let mut reader = match client.follow_log(&run, &task, stream, Some(attempt)).await {
        Ok(reader) => reader,
        // An attempt that wrote nothing there (or was reused from the
        // cache) has no such file.
        Err(DaemonError::NotFound(_)) => return,
        Err(e) => {
            eprintln!("{prefix}cannot follow its {}: {e}", stream.as_str());
            return;
        }
    };
    let mut pending: Vec<u8> = Vec::new();
    loop {
        match reader.next().await {
            Ok(Some(chunk)) => {
                pending.extend_from_slice(&chunk);
                if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                    let lines: Vec<u8> = pending.drain(..=end).collect();
                    write_lines(&prefix, &lines, stream);
                }
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("{prefix}stopped following its {}: {e}", stream.as_str());
                break;
            }
        }
    }
    if !pending.is_empty() {
        pending.push(b'\n');
        write_lines(&prefix, &pending, stream);
    }
}

/// Writes whole lines, each with `prefix`, to the stream's terminal side.
fn write_lines(prefix: &str, lines: &[u8], stream: LogStream) {
    let mut text = Vec::with_capacity(lines.len() + prefix.len() * 4);
    for line in lines.split_inclusive(|&b| b == b'\n') {
        text.extend_from_slice(prefix.as_bytes());
        text.extend_from_slice(line);
    }
    let _ = match stream {
        LogStream::Stdout => std::io::stdout().lock().write_all(&text),
        LogStream::Stderr => std::io::stderr().lock().write_all(&text),
    };
}
