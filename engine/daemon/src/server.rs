//! The daemon: the socket, who may use it, and the `/v1` routes.

use crate::api::{ErrorBody, Ping, SubmitRequest, Submitted};
use crate::runs::Runs;
use crate::{DaemonError, DaemonPaths, lock, resume};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::sync::Notify;
use tokio_stream::StreamExt as _;
use twinflow_engine::{Engine, EngineError, RunOptions, StateStore};

/// Who is on the other end of a connection (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy)]
struct Peer {
    uid: Option<u32>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, UnixListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, UnixListener>) -> Self {
        Self {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

#[derive(Clone)]
struct App {
    engine: Engine,
    runs: Runs,
    stop: Arc<Notify>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

/// Refuses every user but the daemon's own.
async fn only_owner(ConnectInfo(peer): ConnectInfo<Peer>, req: Request, next: Next) -> Response {
    let me = nix::unistd::geteuid().as_raw();
    if peer.uid != Some(me) {
        tracing::warn!("refused a connection from uid {:?}", peer.uid);
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "this twinflow daemon serves only uid {me}, not {}",
                peer.uid
                    .map_or_else(|| "an unknown user".to_owned(), |u| u.to_string())
            ),
        );
    }
    next.run(req).await
}

/// Runs the daemon of `engine`'s state directory until `shutdown` resolves
/// or a client asks it to stop (`POST /v1/shutdown`). It first takes up the
/// runs a dead daemon left. Runs it carries when it stops are left as they
/// are (Slurm jobs go on) and taken up by the next daemon.
pub async fn serve(
    engine: Engine,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let paths = DaemonPaths::new(engine.state_dir());
    paths.prepare()?;
    let state_dir = engine.state_dir().display().to_string();
    let _lock = lock::acquire(&paths, &state_dir)?;
    // A socket file left by a dead daemon (we hold the lock, so it is dead).
    let _ = std::fs::remove_file(&paths.socket);
    let listener =
        UnixListener::bind(&paths.socket).map_err(|e| DaemonError::io(&paths.socket, &e))?;
    std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| DaemonError::io(&paths.socket, &e))?;
    let app = App {
        engine: engine.clone(),
        runs: Runs::default(),
        stop: Arc::new(Notify::new()),
    };
    resume::take_up_interrupted(&engine, &app.runs).await;
    tracing::info!(
        "twinflow daemon {} listening on {}",
        std::process::id(),
        paths.socket.display()
    );
    let stop = Arc::clone(&app.stop);
    let router = Router::new()
        .route("/v1/ping", get(ping))
        .route("/v1/runs", get(list).post(submit))
        .route("/v1/runs/{id}", get(status))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/runs/{id}/events", get(events))
        .route("/v1/shutdown", post(stop_daemon))
        .layer(middleware::from_fn(only_owner))
        .with_state(app);
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(async move {
        tokio::select! {
            () = shutdown => {}
            () = stop.notified() => {}
        }
    })
    .await;
    let _ = std::fs::remove_file(&paths.socket);
    result.map_err(|e| DaemonError::io(&paths.socket, &e))
}

async fn ping(State(app): State<App>) -> Json<Ping> {
    Json(Ping {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        state_dir: app.engine.state_dir().display().to_string(),
        live_runs: app.runs.ids(),
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

fn store(app: &App) -> Result<StateStore, String> {
    StateStore::open(app.engine.state_dir()).map_err(|e| e.to_string())
}

async fn list(State(app): State<App>) -> Response {
    let store = match store(&app) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    match store.runs() {
        Ok(runs) => Json(runs).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn status(State(app): State<App>, Path(id): Path<String>) -> Response {
    let store = match store(&app) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let run = match store.run(&id) {
        Ok(Some(run)) => run,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no run `{id}`")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let steps = store.step_counts(&run.id).unwrap_or_default();
    Json(serde_json::json!({ "run": run, "steps": steps, "live": app.runs.is_live(&run.id) }))
        .into_response()
}

async fn cancel(State(app): State<App>, Path(id): Path<String>) -> Response {
    if app.runs.cancel(&id) {
        Json(serde_json::json!({ "cancelled": id })).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("run `{id}` is not running in this daemon"),
        )
    }
}

async fn events(State(app): State<App>, Path(id): Path<String>) -> Response {
    let Some(watch) = app.runs.watch(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("run `{id}` is not running in this daemon"),
        );
    };
    let first = tokio_stream::iter(watch.replay.into_iter().map(|s| format!("{s}\n")));
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
    let body = first.chain(rest).map(Ok::<_, std::convert::Infallible>);
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn stop_daemon(State(app): State<App>) -> Response {
    app.stop.notify_one();
    Json(serde_json::json!({ "stopping": std::process::id() })).into_response()
}
