//! What the TUI asks the daemon ([`Request`]) and what comes back
//! ([`Update`]), and the worker that carries them through
//! [`twinflow_daemon::Client`] on a thread of its own, so that keys are
//! never kept waiting by the daemon.

use std::sync::mpsc;
use twinflow_daemon::api::{LogStream, StatusSummary, TaskPage, TaskQuery};
use twinflow_daemon::{Client, DaemonError};
use twinflow_engine::{ActionKind, ActionReport, RunInfo};

/// Something to ask the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The runs (`GET /v1/runs`).
    Runs,
    /// A run's summary and one page of its tasks.
    Run {
        /// The run (id, prefix or `latest`).
        run: String,
        /// The page.
        query: TaskQuery,
    },
    /// Follow a task's log until its attempt ends (replacing the log
    /// followed before).
    Follow {
        /// The run's id.
        run: String,
        /// The task's name.
        task: String,
        /// Which stream.
        stream: LogStream,
        /// Which follow this is ([`crate::model::LogPane::generation`]).
        generation: u64,
    },
    /// An operator action.
    Act {
        /// The run's id.
        run: String,
        /// What to do.
        kind: ActionKind,
        /// Task names or a step name.
        selectors: Vec<String>,
    },
}

/// An answer.
#[derive(Debug)]
pub enum Update {
    /// The runs, or why not.
    Runs(Result<Vec<RunInfo>, String>),
    /// A run's summary and page, each or why not.
    Run {
        /// The summary.
        summary: Result<Box<StatusSummary>, String>,
        /// The page.
        page: Result<TaskPage, String>,
        /// The query the page answers.
        query: TaskQuery,
    },
    /// More of a followed log.
    Log {
        /// Which follow.
        generation: u64,
        /// The bytes.
        chunk: Vec<u8>,
    },
    /// A followed log ended; `note` says why there is nothing (more).
    LogEnd {
        /// Which follow.
        generation: u64,
        /// Why, if worth saying.
        note: Option<String>,
    },
    /// An action's answer.
    Acted {
        /// What was asked.
        kind: ActionKind,
        /// What the daemon did, or why not.
        result: Result<ActionReport, String>,
    },
}

/// A run's summary and one page of its tasks, asked at once.
pub async fn run_view(client: &Client, run: &str, query: &TaskQuery) -> Update {
    let (summary, page) = tokio::join!(client.summary(run), client.tasks(run, query));
    Update::Run {
        summary: summary.map(Box::new).map_err(|e| e.to_string()),
        page: page.map_err(|e| e.to_string()),
        query: query.clone(),
    }
}

/// Why a log shows nothing, for the pane.
fn log_note(e: &DaemonError) -> String {
    match e {
        DaemonError::NotFound(_) => "no log yet".to_owned(),
        other => other.to_string(),
    }
}

async fn follow(
    client: Client,
    run: String,
    task: String,
    stream: LogStream,
    generation: u64,
    updates: mpsc::Sender<Update>,
) {
    let mut reader = match client.follow_log(&run, &task, stream, None).await {
        Ok(reader) => reader,
        Err(e) => {
            let _ = updates.send(Update::LogEnd {
                generation,
                note: Some(log_note(&e)),
            });
            return;
        }
    };
    loop {
        match reader.next().await {
            Ok(Some(chunk)) => {
                let update = Update::Log {
                    generation,
                    chunk: chunk.to_vec(),
                };
                if updates.send(update).is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = updates.send(Update::LogEnd {
                    generation,
                    note: Some("(the attempt ended)".to_owned()),
                });
                return;
            }
            Err(e) => {
                let _ = updates.send(Update::LogEnd {
                    generation,
                    note: Some(e.to_string()),
                });
                return;
            }
        }
    }
}

/// The worker: a thread with an async runtime of its own, carrying each
/// request to the daemon as a task of its own and sending back its answer.
#[derive(Debug)]
pub struct Worker {
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    /// The answers, in the order they come.
    pub updates: mpsc::Receiver<Update>,
}

impl Worker {
    /// Starts the worker for `client`.
    pub fn start(client: Client) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (requests, mut rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (tx, updates) = mpsc::channel();
        std::thread::Builder::new()
            .name("twinflow-tui-fetch".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut following: Option<tokio::task::JoinHandle<()>> = None;
                    while let Some(request) = rx.recv().await {
                        let client = client.clone();
                        let tx = tx.clone();
                        match request {
                            Request::Runs => {
                                tokio::spawn(async move {
                                    let runs = client.runs().await.map_err(|e| e.to_string());
                                    let _ = tx.send(Update::Runs(runs));
                                });
                            }
                            Request::Run { run, query } => {
                                tokio::spawn(async move {
                                    let _ = tx.send(run_view(&client, &run, &query).await);
                                });
                            }
                            Request::Follow {
                                run,
                                task,
                                stream,
                                generation,
                            } => {
                                if let Some(old) = following.take() {
                                    old.abort();
                                }
                                following = Some(tokio::spawn(follow(
                                    client, run, task, stream, generation, tx,
                                )));
                            }
                            Request::Act {
                                run,
                                kind,
                                selectors,
                            } => {
                                tokio::spawn(async move {
                                    let result = client
                                        .act(&run, kind, &selectors)
                                        .await
                                        .map_err(|e| e.to_string());
                                    let _ = tx.send(Update::Acted { kind, result });
                                });
                            }
                        }
                    }
                    if let Some(old) = following.take() {
                        old.abort();
                    }
                });
            })?;
        Ok(Self { requests, updates })
    }

    /// Sends a request (dropped if the worker is gone, which its missing
    /// answers then show).
    pub fn send(&self, request: Request) {
        let _ = self.requests.send(request);
    }
}
