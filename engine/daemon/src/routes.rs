//! The `/v1` routes and their handlers. Reads of the state store go through
//! the engine's own connection ([`Engine::read_state`]), on a blocking
//! thread: on network file systems the store is held exclusively by that
//! connection, and no other could read it.

use crate::api::{
    ActionRequest, ErrorBody, LogStream, NotFound, Ping, SelectRequest, SubmitRequest, Submitted,
    TaskQuery,
};
use crate::query::{self, QueryError};
use crate::resume;
use crate::runs::Runs;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tokio::io::AsyncReadExt as _;
use tokio::sync::Notify;
use tokio_stream::StreamExt as _;
use twinflow_engine::{Engine, EngineError, RunOptions, StateStore};

/// How much of a log file goes out in one piece.
const LOG_CHUNK: usize = 64 * 1024;

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) engine: Engine,
    pub(crate) runs: Runs,
    pub(crate) stop: Arc<Notify>,
    /// The TCP address listened on, if any.
    pub(crate) listen: Option<String>,
}

/// The routes, before a listener's own checks are layered on: those of a
/// run's own socket, submissions and shutdown.
pub(crate) fn router() -> Router<App> {
    run_router()
        .route("/v1/runs", get(list).post(submit))
        .route("/v1/shutdown", post(stop_daemon))
}

/// The routes a run's own socket serves ([`crate::RunSocket`]): those about
/// its one run (reads, actions, selections, cancel, events, logs) and
/// `ping`; no submissions, no shutdown.
pub(crate) fn run_router() -> Router<App> {
    Router::new()
        .route("/v1/ping", get(ping))
        .route("/v1/runs/{id}", get(status))
        .route("/v1/runs/{id}/summary", get(summary))
        .route("/v1/runs/{id}/tasks", get(tasks))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/runs/{id}/actions", post(act))
        .route("/v1/runs/{id}/select", post(select))
        .route("/v1/runs/{id}/events", get(events))
        .route("/v1/runs/{id}/logs/{task}", get(logs))
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
            not_found: None,
        }),
    )
        .into_response()
}

fn query_error(e: QueryError) -> Response {
    match e {
        QueryError::NotFound(nf) => (
            StatusCode::NOT_FOUND,
            Json(ErrorBody {
                error: nf.to_string(),
                not_found: Some(nf),
            }),
        )
            .into_response(),
        QueryError::Store(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        QueryError::Invalid(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// Runs `f` on the engine's store, on a blocking thread.
async fn read<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&StateStore) -> T + Send + 'static,
) -> Result<T, Response> {
    let engine = app.engine.clone();
    tokio::task::spawn_blocking(move || engine.read_state(f))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn ping(State(app): State<App>) -> Json<Ping> {
    Json(Ping {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        state_dir: app.engine.state_dir().display().to_string(),
        live_runs: app.runs.ids(),
        listen: app.listen.clone(),
    })
}

async fn submit(State(app): State<App>, Json(req): Json<SubmitRequest>) -> Response {
    if !std::path::Path::new(&req.file).is_absolute() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("the workflow file {} is not an absolute path", req.file),
        );
    }
    // Run ids carry 16 random bits: a clash with a run of the same second is
    // possible under many clients, and answered with a new id.
    for _ in 0..8 {
        let run_id = twinflow_engine::new_run_id_for_file(std::path::Path::new(&req.file));
        let compiled = {
            let req = req.clone();
            let id = run_id.clone();
            tokio::task::spawn_blocking(move || resume::compile(&req, &id)).await
        };
        let plan = match compiled {
            Ok(Ok(plan)) => plan,
            Ok(Err(rendered)) => return error(StatusCode::BAD_REQUEST, rendered),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        let options = RunOptions {
            cache: !req.no_cache,
            fail_fast: req.fail_fast,
            args: resume::stored_args(&req),
            ..RunOptions::default()
        };
        match app.engine.submit(plan, options).await {
            Ok(handle) => {
                let answer = Submitted {
                    run_id: handle.run_id().to_owned(),
                    run_dir: handle.run_dir().display().to_string(),
                };
                app.runs.add(handle);
                return Json(answer).into_response();
            }
            Err(EngineError::RunExists(_)) => {}
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "no free run id after 8 tries; submit again",
    )
}

async fn list(State(app): State<App>) -> Response {
    match read(&app, query::runs).await {
        Ok(Ok(runs)) => Json(runs).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(response) => response,
    }
}

async fn status(State(app): State<App>, Path(id): Path<String>) -> Response {
    match read(&app, move |store| query::status(store, Some(&id))).await {
        Ok(Ok(mut status)) => {
            status.live = app.runs.is_live(&status.run.id);
            Json(status).into_response()
        }
        Ok(Err(e)) => query_error(e),
        Err(response) => response,
    }
}

async fn summary(State(app): State<App>, Path(id): Path<String>) -> Response {
    match read(&app, move |store| query::summary(store, Some(&id))).await {
        Ok(Ok(mut summary)) => {
            summary.live = app.runs.is_live(&summary.run.id);
            Json(summary).into_response()
        }
        Ok(Err(e)) => query_error(e),
        Err(response) => response,
    }
}

/// `?step=NAME&state=STATE...&name=GLOB&order=ORDER&after=CURSOR&limit=N`,
/// all optional.
async fn tasks(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let asked = match TaskQuery::parse(raw.as_deref().unwrap_or_default()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match read(&app, move |store| query::tasks(store, &id, &asked)).await {
        Ok(Ok(page)) => Json(page).into_response(),
        Ok(Err(e)) => query_error(e),
        Err(response) => response,
    }
}

/// `?stream=stdout|stderr&attempt=N&follow=1`, all optional.
fn log_query(raw: Option<&str>) -> Result<(Option<LogStream>, Option<u32>, bool), String> {
    let mut stream = None;
    let mut attempt = None;
    let mut follow = false;
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "stream" => {
                stream = Some(
                    LogStream::parse(value)
                        .ok_or_else(|| format!("stream={value}: expected stdout or stderr"))?,
                );
            }
            "attempt" => {
                attempt = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| format!("attempt={value}: expected a number"))?,
                );
            }
            "follow" => {
                follow = match value {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(format!("follow={value}: expected 1 or 0")),
                };
            }
            _ => {
                return Err(format!(
                    "unknown query parameter `{key}`: expected stream, attempt or follow"
                ));
            }
        }
    }
    Ok((stream, attempt, follow))
}

/// Without `stream=`: where the task's logs are ([`crate::api::TaskLogs`]).
/// With it: that file's bytes, as they are now; with `follow=1` too, as
/// they are written, until the attempt ends ([`crate::follow`]).
async fn logs(
    State(app): State<App>,
    Path((id, task)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (stream, attempt, follow) = match log_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let found = match read(&app, move |store| {
        query::task_logs(store, &id, &task, attempt)
    })
    .await
    {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return query_error(e),
        Err(response) => return response,
    };
    let Some(stream) = stream else {
        return Json(found).into_response();
    };
    let path = found.path(stream).to_owned();
    if follow {
        return follow_log(app, found, path);
    }
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        // The attempt ran and wrote nothing to this stream.
        Err(e) if found.is_empty_log(&e) => {
            return log_body(Body::empty());
        }
        Err(e) => {
            return query_error(QueryError::NotFound(NotFound::Log {
                path,
                reason: e.to_string(),
            }));
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        loop {
            let mut chunk = vec![0; LOG_CHUNK];
            match file.read(&mut chunk).await {
                Ok(0) => return,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    log_body(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

/// The body of a followed log: its bytes as they are written, ending when
/// the attempt has ended.
fn follow_log(app: App, found: crate::api::TaskLogs, path: String) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let over = || {
            let (app, found) = (app.clone(), found.clone());
            async move {
                read(&app, move |store| {
                    crate::follow::attempt_over(store, &found.run_id, &found.task, found.attempt)
                })
                .await
                .map_or(true, |r| r.unwrap_or(true))
            }
        };
        let emit = |chunk: Vec<u8>| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(chunk))).await.is_ok() }
        };
        if let Err(e) = crate::follow::follow(std::path::Path::new(&path), over, emit).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    log_body(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

fn log_body(body: Body) -> Response {
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The run `id` names (an id, a unique prefix of one, or `latest`), found
/// as every read route finds it ([`query::find_run`]); an unknown or
/// ambiguous name is answered as the read routes answer it (a 404 with
/// [`NotFound`]). A run this daemon carries or just ended is taken as named.
async fn resolve(app: &App, id: String) -> Result<Resolved, Response> {
    if app.runs.knows(&id) {
        return Ok(Resolved { id, stored: None });
    }
    match read(app, move |store| query::find_run(store, Some(&id))).await? {
        Ok(run) => Ok(Resolved {
            id: run.id.clone(),
            stored: Some(run),
        }),
        Err(e) => Err(query_error(e)),
    }
}

/// A run named by a route.
struct Resolved {
    id: String,
    /// Its record, when it was looked up in the store.
    stored: Option<twinflow_engine::RunInfo>,
}

/// The answer for a run that exists but that this daemon does not carry.
fn not_live(run: &Resolved) -> Response {
    let state = run
        .stored
        .as_ref()
        .map(|r| format!(" (it is {})", r.state.as_str()))
        .unwrap_or_default();
    error(
        StatusCode::CONFLICT,
        format!("run `{}` is not running in this daemon{state}", run.id),
    )
}

async fn cancel(State(app): State<App>, Path(id): Path<String>) -> Response {
    let run = match resolve(&app, id).await {
        Ok(run) => run,
        Err(response) => return response,
    };
    if app.runs.cancel(&run.id) {
        Json(serde_json::json!({ "cancelled": run.id })).into_response()
    } else {
        not_live(&run)
    }
}

/// An operator action on a live run: journalled by the run before it is
/// applied. A rerun of a run this daemon does not carry takes it up again
/// ([`resume::take_up_for_rerun`]), one at a time: a second action that
/// arrives meanwhile goes to the run once it is live. The actor is the
/// daemon's user, the only one it serves (the socket's peer check; the TCP
/// token is that user's).
async fn act(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(request): Json<ActionRequest>,
) -> Response {
    let run = match resolve(&app, id).await {
        Ok(run) => run,
        Err(response) => return response,
    };
    let action = twinflow_engine::OperatorAction {
        kind: request.kind,
        selectors: request.selectors,
        by: twinflow_engine::Actor::current(),
    };
    if let Some(controller) = app.runs.controller(&run.id) {
        return act_on(&controller, action).await;
    }
    if !action.kind.is_rerun() || !app.runs.takes_up() {
        return error(
            StatusCode::NOT_FOUND,
            format!("run `{}` is not running in this daemon", run.id),
        );
    }
    let _one_at_a_time = app.runs.taking_up().await;
    if let Some(controller) = app.runs.controller(&run.id) {
        return act_on(&controller, action).await;
    }
    // Its record as it is now: it may have ended since it was resolved.
    let id = run.id.clone();
    let stored = match read(&app, move |store| store.run(&id)).await {
        Ok(Ok(Some(info))) => info,
        Ok(Ok(None)) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("run `{}` is not in this daemon's state directory", run.id),
            );
        }
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(response) => return response,
    };
    match resume::take_up_for_rerun(&app.engine, &app.runs, &stored, action).await {
        Ok(report) => Json(report).into_response(),
        Err(resume::TakeUpError::Refused(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(resume::TakeUpError::Conflict(e)) => error(StatusCode::CONFLICT, e),
        Err(resume::TakeUpError::Failed(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Sends `action` to a live run and answers what it did.
async fn act_on(
    controller: &twinflow_engine::Controller,
    action: twinflow_engine::OperatorAction,
) -> Response {
    match controller.act(action).await {
        Ok(report) => Json(report).into_response(),
        Err(e) if e.is_bad_request() => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ twinflow_engine::ControlError::NotLive(_)) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The tasks selectors name and where each one is: asked of the live run
/// (its scheduler's view, waiting tasks too), else read from the store.
async fn select(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(request): Json<SelectRequest>,
) -> Response {
    let id = match resolve(&app, id).await {
        Ok(run) => run.id,
        Err(response) => return response,
    };
    let answer = match app.runs.controller(&id) {
        Some(controller) => match controller.select(request.selectors.clone()).await {
            Err(twinflow_engine::ControlError::NotLive(_)) => None,
            answer => Some(answer),
        },
        None => None,
    };
    let answer = match answer {
        Some(answer) => answer,
        None => match read(&app, move |store| {
            store.select_recorded(&id, &request.selectors)
        })
        .await
        {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            Err(response) => return response,
        },
    };
    match answer {
        Ok(selection) => Json(selection).into_response(),
        Err(e) if e.is_bad_request() => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The `run-finished` event of a run that ended before this daemon could
/// keep its last event (another daemon, or `twinflow run`), rebuilt from
/// the store; `None` for a run that has not ended.
async fn ended_from_store(app: &App, run: &twinflow_engine::RunInfo) -> Option<Arc<str>> {
    use twinflow_engine::{Outcome, RunEvent, RunState, RunSummary};
    let outcome = match run.state {
        RunState::Succeeded => Outcome::Succeeded,
        RunState::Failed => Outcome::Failed,
        RunState::Cancelled => Outcome::Cancelled,
        RunState::Running | RunState::Interrupted => return None,
    };
    let id = run.id.clone();
    let summary = read(app, move |store| query::summary(store, Some(&id)))
        .await
        .ok()?
        .ok()?;
    let sum = |f: fn(&twinflow_engine::StepCounts) -> u64| summary.steps.iter().map(f).sum();
    let cached: u64 = sum(|s| s.cached);
    let event = RunEvent::RunFinished(RunSummary {
        run_id: run.id.clone(),
        outcome,
        run_dir: run.run_dir.clone().into(),
        tasks: run.task_count,
        ran: sum(|s| s.succeeded).saturating_sub(cached),
        cached,
        failed: summary.failed,
        skipped: sum(|s| s.skipped),
        cancelled: sum(|s| s.cancelled),
        seconds: run.updated_ms.saturating_sub(run.created_ms) as f64 / 1000.0,
        failures: summary
            .failures
            .into_iter()
            .map(|t| (t.name, t.reason.unwrap_or_default()))
            .collect(),
    });
    serde_json::to_string(&event).ok().map(Into::into)
}

async fn events(State(app): State<App>, Path(id): Path<String>) -> Response {
    let run = match resolve(&app, id).await {
        Ok(run) => run,
        Err(response) => return response,
    };
    let id = run.id.clone();
    let watch = match app.runs.watch(&id) {
        Some(watch) => watch,
        None => match run.stored.as_ref() {
            Some(stored) => match ended_from_store(&app, stored).await {
                Some(last) => crate::runs::Watch {
                    replay: vec![last],
                    rx: None,
                },
                None => return not_live(&run),
            },
            None => return not_live(&run),
        },
    };
    let mut replay: Vec<String> = watch.replay.iter().map(|s| format!("{s}\n")).collect();
    if watch.rx.is_some() && !replay.is_empty() {
        // A watcher that comes late learns what happened so far: the
        // per-step counts in the store, right after `run-started`. (One
        // that comes before `run-started` gets it live, and nothing has
        // happened yet.)
        let counts = app.engine.read_state(|store| store.step_counts(&id));
        if let Ok(steps) = counts
            && let Ok(line) = serde_json::to_string(&serde_json::json!({
                "event": crate::api::PROGRESS_EVENT,
                "steps": steps,
            }))
        {
            replay.push(format!("{line}\n"));
        }
    }
    let first = tokio_stream::iter(replay);
    let rest: std::pin::Pin<Box<dyn tokio_stream::Stream<Item = String> + Send>> = match watch.rx {
        Some(rx) => Box::pin(
            tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|line| match line {
                Ok(line) => Some(format!("{line}\n")),
                // A watcher that fell behind misses events, not the end.
                Err(_) => None,
            }),
        ),
        None => Box::pin(tokio_stream::empty()),
    };
    // Events that are ready together go out in one write.
    let body =
        crate::coalesce::Coalesce::new(first.chain(rest)).map(Ok::<_, std::convert::Infallible>);
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn stop_daemon(State(app): State<App>) -> Response {
    app.stop.notify_one();
    Json(serde_json::json!({ "stopping": std::process::id() })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_queries_parse_or_say_what_is_wrong() {
        assert_eq!(log_query(None), Ok((None, None, false)));
        assert_eq!(
            log_query(Some("stream=stderr&attempt=2")),
            Ok((Some(LogStream::Stderr), Some(2), false))
        );
        assert_eq!(log_query(Some("attempt=1")), Ok((None, Some(1), false)));
        assert_eq!(
            log_query(Some("stream=stdout&follow=1")),
            Ok((Some(LogStream::Stdout), None, true))
        );
        assert!(
            log_query(Some("follow=yes"))
                .unwrap_err()
                .contains("1 or 0")
        );
        assert!(
            log_query(Some("stream=both"))
                .unwrap_err()
                .contains("stdout or stderr")
        );
        assert!(
            log_query(Some("attempt=x"))
                .unwrap_err()
                .contains("a number")
        );
        assert!(
            log_query(Some("tail=5"))
                .unwrap_err()
                .contains("unknown query parameter")
        );
    }
}
