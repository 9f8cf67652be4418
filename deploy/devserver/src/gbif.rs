//! GBIF's occurrence download API, answering as its documentation shows
//! (<https://techdocs.gbif.org/en/data-use/api-downloads>), over
//! the downloads `<root>/gbif/downloads.json` describes:
//!
//! - `POST /occurrence/download/request` (HTTP basic auth checked against
//!   the file's `user`/`password`; a JSON body with `creator`, `format`
//!   and `predicate`): a new download, answered with its key as
//!   `text/plain` (201); it serves `request_archive` and succeeds after
//!   `polls` status requests;
//! - `GET /occurrence/download/KEY`: the status document (`PREPARING`,
//!   then `RUNNING`, then the download's `status` after `polls` requests;
//!   a download whose `status` is `RUNNING` never ends), with
//!   `downloadLink`, `doi`, `totalRecords` and `size` once `SUCCEEDED`;
//! - `GET /occurrence/download/10.15468/dl.xxx`: the same, by DOI;
//! - `GET /occurrence/download/request/KEY.zip`: the archive, a file of
//!   `<root>/gbif/`;
//! - `GET /_devserver/requests`: how many requests were filed, and the last
//!   body (for tests; not part of GBIF's API).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Deserialize)]
struct Download {
    archive: String,
    #[serde(default)]
    doi: Option<String>,
    #[serde(default = "succeeded")]
    status: String,
    #[serde(default)]
    records: Option<u64>,
    /// Status requests before it reaches `status` (default: the file's).
    #[serde(default)]
    polls: Option<u32>,
    #[serde(skip)]
    request: Option<Value>,
}

fn succeeded() -> String {
    "SUCCEEDED".into()
}

#[derive(Debug, Clone, Deserialize)]
struct Settings {
    #[serde(default = "default_user")]
    user: String,
    #[serde(default = "default_password")]
    password: String,
    #[serde(default)]
    polls: u32,
    #[serde(default)]
    request_archive: Option<String>,
    #[serde(default)]
    request_records: Option<u64>,
    #[serde(default)]
    downloads: HashMap<String, Download>,
}

fn default_user() -> String {
    "twinflow-test".into()
}

fn default_password() -> String {
    "gbif-test-only-password".into()
}

#[derive(Debug)]
struct Gbif {
    dir: PathBuf,
    settings: Settings,
    /// Status requests seen per key.
    polled: HashMap<String, u32>,
    requests: u32,
    last_request: Option<Value>,
}

type Shared = Arc<Mutex<Gbif>>;

/// The routes of this module, nested by [`crate::router`].
pub fn router(config: &crate::Config) -> axum::Router {
    let dir = config.root.join("gbif");
    let settings = std::fs::read_to_string(dir.join("downloads.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Settings>(&t).ok())
        .unwrap_or(Settings {
            user: default_user(),
            password: default_password(),
            polls: 0,
            request_archive: None,
            request_records: None,
            downloads: HashMap::new(),
        });
    let state: Shared = Arc::new(Mutex::new(Gbif {
        dir,
        settings,
        polled: HashMap::new(),
        requests: 0,
        last_request: None,
    }));
    axum::Router::new()
        .route("/occurrence/download/request", post(request))
        .route("/occurrence/download/request/{file}", get(archive))
        .route("/occurrence/download/{key}", get(status))
        .route("/occurrence/download/{prefix}/{suffix}", get(status_by_doi))
        .route("/_devserver/requests", get(requests))
        .with_state(state)
}

fn error(code: StatusCode, text: &str) -> Response {
    (code, text.to_owned()).into_response()
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Gbif> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

async fn request(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut g = lock(&state);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", g.settings.user, g.settings.password))
    );
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"GBIF\"")],
            "Unauthorized",
        )
            .into_response();
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "the request body is not JSON");
    };
    if body["creator"].as_str() != Some(g.settings.user.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "creator is not the authenticated user",
        );
    }
    if !body["predicate"]["type"].is_string() {
        return error(StatusCode::BAD_REQUEST, "the request has no predicate");
    }
    let format = body["format"].as_str().unwrap_or("DWCA");
    if !["DWCA", "SIMPLE_CSV", "SPECIES_LIST"].contains(&format) {
        return error(StatusCode::BAD_REQUEST, "unknown format");
    }
    let Some(archive) = g.settings.request_archive.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this devserver has no request_archive",
        );
    };
    g.requests += 1;
    let n = g.requests;
    let key = format!("{:07}-250116100000{n:03}", 9000 + n);
    let download = Download {
        archive,
        doi: Some(format!("10.15468/dl.req{n:03}")),
        status: succeeded(),
        records: g.settings.request_records,
        polls: None,
        request: Some(body.clone()),
    };
    g.settings.downloads.insert(key.clone(), download);
    g.last_request = Some(body);
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "text/plain")],
        key,
    )
        .into_response()
}

fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned()
}

/// The status document of `key`, counting this request as a poll.
fn document(g: &mut Gbif, key: &str, headers: &HeaderMap) -> Response {
    let Some(d) = g.settings.downloads.get(key).cloned() else {
        return error(StatusCode::NOT_FOUND, "no such download");
    };
    let polls = d.polls.unwrap_or(g.settings.polls);
    let seen = g.polled.entry(key.to_owned()).or_insert(0);
    *seen += 1;
    let status = if *seen > polls {
        d.status.clone()
    } else if *seen == 1 {
        "PREPARING".to_owned()
    } else {
        "RUNNING".to_owned()
    };
    let ready = status == "SUCCEEDED";
    let size = std::fs::metadata(g.dir.join(&d.archive)).map_or(0, |m| m.len());
    let mut doc = json!({
        "key": key,
        "doi": d.doi,
        "license": "http://creativecommons.org/licenses/by/4.0/legalcode",
        "request": d.request.clone().unwrap_or_else(|| json!({
            "predicate": {"type": "equals", "key": "TAXON_KEY", "value": "9000001"},
            "sendNotification": false,
            "format": "DWCA",
            "type": "OCCURRENCE"
        })),
        "created": "2025-01-16T10:00:00.000+00:00",
        "modified": "2025-01-16T10:05:00.000+00:00",
        "eraseAfter": "2025-07-16T10:00:00.000+00:00",
        "status": status,
        "size": if ready { size } else { 0 },
        "totalRecords": if ready { d.records.unwrap_or(0) } else { 0 },
        "numberDatasets": if ready { 1 } else { 0 },
    });
    if ready {
        doc["downloadLink"] = json!(format!(
            "http://{}/gbif/v1/occurrence/download/request/{key}.zip",
            host(headers)
        ));
    }
    Json(doc).into_response()
}

async fn status(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    document(&mut lock(&state), &key, &headers)
}

async fn status_by_doi(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((prefix, suffix)): Path<(String, String)>,
) -> Response {
    let doi = format!("{prefix}/{suffix}");
    let mut g = lock(&state);
    let key = g
        .settings
        .downloads
        .iter()
        .find(|(_, d)| d.doi.as_deref() == Some(doi.as_str()))
        .map(|(k, _)| k.clone());
    match key {
        Some(k) => document(&mut g, &k, &headers),
        None => error(StatusCode::NOT_FOUND, "no download with that DOI"),
    }
}

async fn archive(State(state): State<Shared>, Path(file): Path<String>) -> Response {
    let (path, ok) = {
        let g = lock(&state);
        let Some(d) = file
            .strip_suffix(".zip")
            .and_then(|k| g.settings.downloads.get(k))
        else {
            return error(StatusCode::NOT_FOUND, "no such download");
        };
        (g.dir.join(&d.archive), d.status == "SUCCEEDED")
    };
    if !ok {
        return error(StatusCode::NOT_FOUND, "the download did not succeed");
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/zip")], bytes).into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, "the archive is missing"),
    }
}

async fn requests(State(state): State<Shared>) -> Response {
    let g = lock(&state);
    Json(json!({"count": g.requests, "last": g.last_request})).into_response()
}
