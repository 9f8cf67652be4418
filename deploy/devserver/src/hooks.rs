//! A webhook receiver for tests of event hooks:
//!
//! - `POST /hooks/NAME`: records the request (its headers and body, the
//!   body as JSON when it is, else as text) and answers 200; a `NAME`
//!   starting with `fail` answers 500 after recording;
//! - `GET /hooks/NAME`: what `NAME` received, oldest first, as a JSON list
//!   of `{ "headers": { name: value }, "body": … }`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

type Received = Arc<Mutex<HashMap<String, Vec<Value>>>>;

/// The routes under `/hooks`.
pub fn router() -> axum::Router {
    let received: Received = Arc::default();
    axum::Router::new()
        .route("/{name}", get(list).post(record))
        .with_state(received)
}

async fn record(
    State(received): State<Received>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut shown = Map::new();
    for (key, value) in &headers {
        shown.insert(
            key.as_str().to_owned(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(name.clone())
        .or_default()
        .push(json!({ "headers": shown, "body": body }));
    if name.starts_with("fail") {
        (StatusCode::INTERNAL_SERVER_ERROR, "failing on purpose\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn list(State(received): State<Received>, Path(name): Path<String>) -> Response {
    let all = received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&name)
        .cloned()
        .unwrap_or_default();
    Json(Value::Array(all)).into_response()
}
