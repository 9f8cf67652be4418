//! `twinflow runs` and `logs`, and the reader `status` uses: asked of the daemon when one
//! answers for the state directory (or is named with `--daemon`), else read
//! from the state store. On network file systems a daemon holds the store
//! exclusively, so asking it is the only way in while it runs. Both ways
//! compute the same values ([`twinflow_daemon::query`]) and print them with
//! the same code below.

use crate::args::{DaemonArgs, StateArgs, Stream};
use crate::exit;
use crate::output::Output;
use crate::plumbing::{Target, failed, open_store, runtime, state_dir, target, target_for_run};
use crate::term::shown;
use std::fmt::Write as _;
use twinflow_daemon::api::{LogStream, NotFound, StatusSummary, TaskLogs, TaskPage, TaskQuery};
use twinflow_daemon::query::{self, QueryError};
use twinflow_daemon::{Client, DaemonError};
use twinflow_engine::{RunInfo, StateStore};

/// Where the answers come from.
enum Source {
    Daemon {
        client: Client,
        rt: tokio::runtime::Runtime,
    },
    Store(StateStore),
}

/// Why an answer did not come.
pub(super) enum Failure {
    NotFound(NotFound),
    /// Reported already; the exit code.
    Reported(u8),
}

pub(super) struct Reader {
    source: Source,
    /// The state directory or daemon address, for messages.
    place: String,
}

/// The daemon if one answers (or was named), else the store.
pub(super) fn reader(out: &Output, state: &StateArgs, daemon: &DaemonArgs) -> Result<Reader, u8> {
    reader_from(out, state, target(out, state, daemon)?)
}

/// For run `run` (`None`: the latest): its own socket when a `twinflow
/// run` in progress serves it, else as [`reader`].
pub(super) fn reader_for(
    out: &Output,
    state: &StateArgs,
    daemon: &DaemonArgs,
    run: Option<&str>,
) -> Result<Reader, u8> {
    reader_from(out, state, target_for_run(out, state, daemon, run)?)
}

fn reader_from(out: &Output, state: &StateArgs, target: Target) -> Result<Reader, u8> {
    let Target {
        client,
        explicit,
        place,
    } = target;
    let rt = runtime(out)?;
    if !explicit {
        match rt.block_on(client.ping()) {
            Ok(_) => {}
            Err(DaemonError::NotRunning { .. }) => {
                let store = open_store(out, &state_dir(state))?;
                return Ok(Reader {
                    source: Source::Store(store),
                    place,
                });
            }
            Err(e) => return Err(failed(out, &e)),
        }
    }
    Ok(Reader {
        source: Source::Daemon { client, rt },
        place,
    })
}

impl Reader {
    fn daemon_failure(out: &Output, e: DaemonError) -> Failure {
        match e {
            DaemonError::NotFound(nf) => Failure::NotFound(nf),
            e => Failure::Reported(failed(out, &e)),
        }
    }

    fn store_failure(out: &Output, e: QueryError) -> Failure {
        match e {
            QueryError::NotFound(nf) => Failure::NotFound(nf),
            QueryError::Store(e) => {
                out.error(&e.to_string());
                Failure::Reported(exit::UNREACHABLE)
            }
            QueryError::Invalid(e) => {
                out.error(&e);
                Failure::Reported(exit::INVALID)
            }
        }
    }

    fn runs(&self, out: &Output) -> Result<Vec<RunInfo>, Failure> {
        match &self.source {
            Source::Daemon { client, rt } => rt
                .block_on(client.runs())
                .map_err(|e| Self::daemon_failure(out, e)),
            Source::Store(store) => {
                query::runs(store).map_err(|e| Self::store_failure(out, QueryError::Store(e)))
            }
        }
    }

    pub(super) fn summary(
        &self,
        out: &Output,
        run: Option<&str>,
    ) -> Result<StatusSummary, Failure> {
        match &self.source {
            Source::Daemon { client, rt } => rt
                .block_on(client.summary(run.unwrap_or("latest")))
                .map_err(|e| Self::daemon_failure(out, e)),
            Source::Store(store) => {
                query::summary(store, run).map_err(|e| Self::store_failure(out, e))
            }
        }
    }

    /// One page of a run's tasks (`run`: an id, as the summary found it).
    pub(super) fn tasks(
        &self,
        out: &Output,
        run: &str,
        asked: &TaskQuery,
    ) -> Result<TaskPage, Failure> {
        match &self.source {
            Source::Daemon { client, rt } => rt
                .block_on(client.tasks(run, asked))
                .map_err(|e| Self::daemon_failure(out, e)),
            Source::Store(store) => {
                query::tasks(store, run, asked).map_err(|e| Self::store_failure(out, e))
            }
        }
    }

    fn task_logs(
        &self,
        out: &Output,
        run: &str,
        task: &str,
        attempt: Option<u32>,
    ) -> Result<TaskLogs, Failure> {
        match &self.source {
            Source::Daemon { client, rt } => rt
                .block_on(client.task_logs(run, task, attempt))
                .map_err(|e| Self::daemon_failure(out, e)),
            Source::Store(store) => {
                query::task_logs(store, run, task, attempt).map_err(|e| Self::store_failure(out, e))
            }
        }
    }

    /// Copies one log file to stdout, calling `opened` once it could be
    /// opened (before its first byte) with whether it is empty. A started
    /// attempt's missing file is an empty log: files are created on the
    /// first byte.
    fn copy_log(
        &self,
        out: &Output,
        logs: &TaskLogs,
        stream: LogStream,
        opened: impl FnOnce(bool),
    ) -> Result<(), Failure> {
        let path = logs.path(stream);
        match &self.source {
            Source::Daemon { client, rt } => rt.block_on(async {
                let mut reader = client
                    .log(&logs.run_id, &logs.task, stream, Some(logs.attempt))
                    .await
                    .map_err(|e| Self::daemon_failure(out, e))?;
                let mut chunk = reader
                    .next()
                    .await
                    .map_err(|e| Self::daemon_failure(out, e))?;
                opened(chunk.is_none());
                while let Some(bytes) = chunk {
                    out.print_bytes(&bytes);
                    chunk = reader
                        .next()
                        .await
                        .map_err(|e| Self::daemon_failure(out, e))?;
                }
                Ok(())
            }),
            Source::Store(_) => match std::fs::read(path) {
                Ok(bytes) => {
                    opened(bytes.is_empty());
                    out.print_bytes(&bytes);
                    Ok(())
                }
                Err(e) if logs.is_empty_log(&e) => {
                    opened(true);
                    Ok(())
                }
                Err(e) => Err(Failure::NotFound(NotFound::Log {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })),
            },
        }
    }

    /// Prints what the attempt of `logs` writes to `streams` as it is
    /// written (standard output to stdout, standard error to stderr), from
    /// the start of each file, until the attempt has ended.
    fn follow_logs(
        &self,
        out: &Output,
        logs: &TaskLogs,
        streams: &[LogStream],
    ) -> Result<(), Failure> {
        let print = |stream: LogStream, bytes: &[u8]| match stream {
            LogStream::Stdout => out.print_bytes(bytes),
            LogStream::Stderr => {
                use std::io::Write as _;
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(bytes);
                let _ = err.flush();
            }
        };
        match &self.source {
            Source::Daemon { client, rt } => rt.block_on(async {
                let one = |stream: LogStream| async move {
                    let mut reader = client
                        .follow_log(&logs.run_id, &logs.task, stream, Some(logs.attempt))
                        .await?;
                    while let Some(bytes) = reader.next().await? {
                        print(stream, &bytes);
                    }
                    Ok::<(), DaemonError>(())
                };
                let all = futures_util::future::join_all(streams.iter().map(|&s| one(s))).await;
                all.into_iter()
                    .collect::<Result<(), _>>()
                    .map_err(|e| Self::daemon_failure(out, e))
            }),
            Source::Store(store) => {
                let rt = runtime(out).map_err(Failure::Reported)?;
                rt.block_on(async {
                    let one = |stream: LogStream| async move {
                        let over = || async {
                            twinflow_daemon::follow::attempt_over(
                                store,
                                &logs.run_id,
                                &logs.task,
                                logs.attempt,
                            )
                            .unwrap_or(true)
                        };
                        let emit = |bytes: Vec<u8>| {
                            print(stream, &bytes);
                            async { true }
                        };
                        let path = std::path::Path::new(logs.path(stream));
                        twinflow_daemon::follow::follow(path, over, emit)
                            .await
                            .map_err(|e| {
                                Failure::NotFound(NotFound::Log {
                                    path: logs.path(stream).to_owned(),
                                    reason: e.to_string(),
                                })
                            })
                    };
                    futures_util::future::join_all(streams.iter().map(|&s| one(s)))
                        .await
                        .into_iter()
                        .collect::<Result<(), _>>()
                })
            }
        }
    }

    /// Reports a failure; its exit code. `asked` is the run the user named.
    pub(super) fn report(&self, out: &Output, failure: Failure, asked: Option<&str>) -> u8 {
        let nf = match failure {
            Failure::Reported(code) => return code,
            Failure::NotFound(nf) => nf,
        };
        let no_run = |run: &str| {
            format!(
                "no run `{run}` in {} (`twinflow runs` lists them)",
                self.place
            )
        };
        match nf {
            NotFound::Run { run } => out.error(&no_run(&run)),
            NotFound::NoRuns => match asked {
                Some(run) => out.error(&no_run(run)),
                None => out.error(&format!("no runs yet in {}", self.place)),
            },
            NotFound::Task { run, task } => out.error(&format!(
                "run {run} has no record of a task `{task}` (`twinflow status {run} --tasks` lists them)"
            )),
            NotFound::Step { .. } => {
                out.error(&nf.to_string());
                return exit::UNREACHABLE;
            }
            NotFound::Log { .. } | NotFound::Ambiguous { .. } | NotFound::StepName { .. } => {
                out.error(&nf.to_string());
            }
        }
        exit::INVALID
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub(super) fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let date = jiff::civil::Date::new(1970, 1, 1)
        .ok()
        .and_then(|d| d.checked_add(jiff::Span::new().days(days)).ok());
    match date {
        Some(d) => format!(
            "{d} {:02}:{:02}:{:02}",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        ),
        None => ms.to_string(),
    }
}

pub(crate) fn runs(out: &Output, state: &StateArgs, daemon: &DaemonArgs, json: bool) -> u8 {
    let reader = match reader(out, state, daemon) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let runs = match reader.runs(out) {
        Ok(r) => r,
        Err(f) => return reader.report(out, f, None),
    };
    if json {
        out.print(&format!(
            "{}\n",
            serde_json::to_string(&runs).unwrap_or_default()
        ));
        return exit::SUCCESS;
    }
    if runs.is_empty() {
        out.print(&format!("no runs yet in {}\n", shown(&reader.place)));
        return exit::SUCCESS;
    }
    let ids: Vec<_> = runs.iter().map(|r| shown(&r.id)).collect();
    let width = ids.iter().map(|id| id.len()).max().unwrap_or(6).max(6);
    let mut s = format!(
        "{:<width$}  {:<11}  {:>7}  {:<19} UTC  workflow\n",
        "run", "state", "tasks", "created"
    );
    for (r, id) in runs.iter().zip(&ids) {
        let _ = writeln!(
            s,
            "{:<width$}  {:<11}  {:>7}  {}      {}",
            id,
            r.state.as_str(),
            r.task_count,
            when(r.created_ms),
            shown(&r.workflow)
        );
    }
    out.print(&s);
    exit::SUCCESS
}

/// What `twinflow logs` was asked for.
#[derive(Debug)]
pub(crate) struct LogsArgs<'a> {
    pub run: &'a str,
    pub task: &'a str,
    pub attempt: Option<u32>,
    pub stream: Option<Stream>,
    pub follow: bool,
}

pub(crate) fn logs(
    out: &Output,
    state: &StateArgs,
    daemon: &DaemonArgs,
    asked: &LogsArgs<'_>,
) -> u8 {
    let LogsArgs {
        run,
        task,
        attempt,
        stream,
        follow,
    } = *asked;
    let reader = match reader_for(out, state, daemon, Some(run)) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let logs = match reader.task_logs(out, run, task, attempt) {
        Ok(l) => l,
        Err(f) => return reader.report(out, f, Some(run)),
    };
    // A reused result's logs are those of the run that produced it.
    for from in &logs.reused_from {
        eprintln!(
            "({} reused the result of run {}; its logs follow)",
            shown(&logs.task),
            shown(from)
        );
    }
    let wanted = stream.map(|s| match s {
        Stream::Stdout => LogStream::Stdout,
        Stream::Stderr => LogStream::Stderr,
    });
    if follow {
        let streams = match wanted {
            Some(one) => vec![one],
            None => vec![LogStream::Stdout, LogStream::Stderr],
        };
        return match reader.follow_logs(out, &logs, &streams) {
            Ok(()) => exit::SUCCESS,
            Err(f) => reader.report(out, f, Some(run)),
        };
    }
    let mut copied = 0;
    for which in [LogStream::Stdout, LogStream::Stderr] {
        if wanted.is_some_and(|w| w != which) {
            continue;
        }
        let header = |empty: bool| {
            if wanted.is_none() {
                eprintln!(
                    "==> {} of {} (attempt {}): {}",
                    which.as_str(),
                    shown(&logs.task),
                    logs.attempt,
                    if empty {
                        "(empty)".into()
                    } else {
                        shown(logs.path(which))
                    }
                );
            }
        };
        match reader.copy_log(out, &logs, which, header) {
            Ok(()) => copied += 1,
            Err(Failure::NotFound(NotFound::Log { path, reason })) => {
                eprintln!("(no log at {}: {})", shown(&path), shown(&reason));
            }
            Err(f) => return reader.report(out, f, Some(run)),
        }
    }
    if copied == 0 {
        return exit::INVALID;
    }
    exit::SUCCESS
}
