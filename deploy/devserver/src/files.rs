//! `/files/<path>`: the files under [`crate::Config::root`], served as a
//! plain HTTP file server does, with injected faults for tests, and
//! per-path counters a test reads back.
//!
//! - `GET` and `HEAD`, streamed from disk in chunks (never buffered whole);
//!   a strong `ETag` made of the file's size and modification time (ns),
//!   `Last-Modified`, `Content-Length`, `Accept-Ranges: bytes`.
//! - `If-None-Match` (else `If-Modified-Since`) matching -> `304`.
//! - One `Range: bytes=a-`, `a-b` or `-n` -> `206` with `Content-Range`;
//!   unsatisfiable -> `416` with `Content-Range: bytes */SIZE`; several
//!   ranges, or an `If-Range` that does not match, -> the whole file (`200`).
//!
//! Faults, as query parameters (combinable):
//! - `fail=N`: the first N requests of this path answer `503` (or
//!   `fail_status=429|500|...`), with `Retry-After: S` when `retry_after=S`;
//! - `status=CODE`: always answer CODE with an empty body;
//! - `truncate=BYTES`: announce the full length, but close the connection
//!   when the body reaches byte BYTES of the file (a request whose range
//!   starts at or after BYTES is served whole: a resume succeeds);
//! - `slow=MS`: wait MS milliseconds before each 16 KiB chunk;
//! - `no_range=1`: ignore `Range` (answer `200`, the whole file).
//!
//! `GET /files/_stats/<path>` answers JSON counters of `<path>` (see
//! [`PathStats`]); a path never asked for has all zeros.

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Counters of one path, as `/files/_stats/<path>` answers them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PathStats {
    /// Every request, faults included.
    pub requests: u64,
    /// `GET` requests.
    pub gets: u64,
    /// `HEAD` requests.
    pub heads: u64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// The `Range` header of each request that had one, in order.
    pub ranges: Vec<String>,
    /// Requests that carried `If-None-Match` or `If-Modified-Since`.
    pub conditional: u64,
    /// Body bytes the server sent (started to send, for a cut one).
    pub body_bytes: u64,
    /// Answers with an injected failure (`fail=N`).
    pub injected: u64,
}

#[derive(Debug)]
struct Files {
    root: PathBuf,
    stats: Mutex<HashMap<String, PathStats>>,
}

impl Files {
    fn with_stats<T>(&self, path: &str, f: impl FnOnce(&mut PathStats) -> T) -> T {
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        f(stats.entry(path.to_owned()).or_default())
    }
}

/// The routes of this module, nested by [`crate::router`] under `/files`.
pub fn router(config: &crate::Config) -> axum::Router {
    let state = Arc::new(Files {
        root: config.root.clone(),
        stats: Mutex::new(HashMap::new()),
    });
    axum::Router::new()
        .route("/_stats/{*path}", axum::routing::get(stats))
        .route("/{*path}", axum::routing::get(serve))
        .with_state(state)
}

async fn stats(State(files): State<Arc<Files>>, UrlPath(path): UrlPath<String>) -> Response {
    let stats = files.with_stats(&path, |s| s.clone());
    axum::Json(stats).into_response()
}

/// The fault-injection query parameters.
#[derive(Debug, Default, serde::Deserialize)]
struct Faults {
    fail: Option<u64>,
    fail_status: Option<u16>,
    retry_after: Option<u64>,
    status: Option<u16>,
    truncate: Option<u64>,
    slow: Option<u64>,
    no_range: Option<u8>,
}

async fn serve(
    State(files): State<Arc<Files>>,
    method: Method,
    UrlPath(path): UrlPath<String>,
    Query(faults): Query<Faults>,
    headers: HeaderMap,
) -> Response {
    let range_header = header_str(&headers, header::RANGE).map(str::to_owned);
    let conditional = headers.contains_key(header::IF_NONE_MATCH)
        || headers.contains_key(header::IF_MODIFIED_SINCE);
    let inject = files.with_stats(&path, |s| {
        s.requests += 1;
        if method == Method::HEAD {
            s.heads += 1;
        } else {
            s.gets += 1;
        }
        if let Some(r) = &range_header {
            s.ranges.push(r.clone());
        }
        s.conditional += u64::from(conditional);
        let inject = faults.fail.is_some_and(|n| s.injected < n);
        s.injected += u64::from(inject);
        inject
    });
    let response = answer(&files.root, &path, &method, &faults, &headers, inject).await;
    let (status, sent) = (response.0.status().as_u16(), response.1);
    files.with_stats(&path, |s| {
        *s.statuses.entry(status).or_default() += 1;
        s.body_bytes += sent;
    });
    response.0
}

/// The response, and the body bytes it will send.
async fn answer(
    root: &Path,
    path: &str,
    method: &Method,
    faults: &Faults,
    headers: &HeaderMap,
    inject: bool,
) -> (Response, u64) {
    if inject {
        let code = StatusCode::from_u16(faults.fail_status.unwrap_or(503))
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut response = empty(code);
        if let Some(secs) = faults.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return (response, 0);
    }
    if let Some(code) = faults.status {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (empty(code), 0);
    }
    let Some(file_path) = resolve(root, path) else {
        return (empty(StatusCode::NOT_FOUND), 0);
    };
    let Ok(meta) = tokio::fs::metadata(&file_path).await else {
        return (empty(StatusCode::NOT_FOUND), 0);
    };
    if !meta.is_file() {
        return (empty(StatusCode::NOT_FOUND), 0);
    }
    let size = meta.len();
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let mtime_ns = mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{size:x}-{mtime_ns:x}\"");
    let last_modified = http_date(mtime);
    let mut base = HeaderMap::new();
    insert(&mut base, header::ETAG, &etag);
    insert(&mut base, header::LAST_MODIFIED, &last_modified);
    if faults.no_range != Some(1) {
        insert(&mut base, header::ACCEPT_RANGES, "bytes");
    }

    if not_modified(headers, &etag, mtime) {
        let mut response = empty(StatusCode::NOT_MODIFIED);
        response.headers_mut().extend(base);
        return (response, 0);
    }
    let if_range_ok = header_str(headers, header::IF_RANGE)
        .is_none_or(|v| v == etag || (!v.starts_with('"') && v == last_modified));
    let range = match header_str(headers, header::RANGE) {
        Some(r) if faults.no_range != Some(1) && if_range_ok => parse_range(r, size),
        _ => RangeAsk::Whole,
    };
    let (status, start, end) = match range {
        RangeAsk::Whole => (StatusCode::OK, 0, size),
        RangeAsk::Part(a, b) => {
            insert(
                &mut base,
                header::CONTENT_RANGE,
                &format!("bytes {a}-{}/{size}", b - 1),
            );
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        RangeAsk::Unsatisfiable => {
            let mut response = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            insert(
                response.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            return (response, 0);
        }
    };
    insert(
        &mut base,
        header::CONTENT_LENGTH,
        &(end - start).to_string(),
    );
    insert(&mut base, header::CONTENT_TYPE, "application/octet-stream");
    if *method == Method::HEAD {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = base;
        return (response, 0);
    }
    let Ok(mut file) = tokio::fs::File::open(&file_path).await else {
        return (empty(StatusCode::NOT_FOUND), 0);
    };
    if start > 0 && file.seek(SeekFrom::Start(start)).await.is_err() {
        return (empty(StatusCode::INTERNAL_SERVER_ERROR), 0);
    }
    // Cut at byte `truncate` of the file, unless the range starts past it.
    let stop = match faults.truncate {
        Some(t) if t > start && t < end => t,
        _ => end,
    };
    let body = Body::from_stream(chunks(
        file,
        start,
        stop,
        stop < end,
        faults.slow.map(Duration::from_millis),
    ));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = base;
    (response, stop - start)
}

/// The body: `file` from `pos` to `stop`, then an error (which makes the
/// server drop the connection mid-body) when `cut`.
fn chunks(
    file: tokio::fs::File,
    pos: u64,
    stop: u64,
    cut: bool,
    slow: Option<Duration>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let chunk = if slow.is_some() { 16 << 10 } else { 1 << 20 };
    futures_util::stream::unfold(
        (file, pos, false),
        move |(mut file, pos, done)| async move {
            if done {
                return None;
            }
            if pos >= stop {
                return cut.then(|| {
                    let e = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "truncated");
                    (Err(e), (file, pos, true))
                });
            }
            if let Some(d) = slow {
                tokio::time::sleep(d).await;
            }
            let want = usize::try_from((stop - pos).min(chunk)).unwrap_or(1 << 16);
            let mut buf = vec![0u8; want];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, pos + n as u64, false)))
                }
                Err(e) => Some((Err(e), (file, pos, true))),
            }
        },
    )
}

/// The file `path` names under `root`, if it stays under it.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

fn not_modified(headers: &HeaderMap, etag: &str, mtime: SystemTime) -> bool {
    if let Some(inm) = header_str(headers, header::IF_NONE_MATCH) {
        return inm
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag));
    }
    let Some(ims) = header_str(headers, header::IF_MODIFIED_SINCE) else {
        return false;
    };
    let Ok(since) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(ims) else {
        return false;
    };
    let secs = mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs).is_ok_and(|s| s <= since.as_second())
}

enum RangeAsk {
    Whole,
    /// `[start, end)`.
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(value: &str, size: u64) -> RangeAsk {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // A suffix: the last `b` bytes.
        return match b.parse::<u64>() {
            Ok(0) => RangeAsk::Unsatisfiable,
            Ok(n) if size > 0 => RangeAsk::Part(size.saturating_sub(n), size),
            Ok(_) => RangeAsk::Unsatisfiable,
            Err(_) => RangeAsk::Whole,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeAsk::Whole;
    };
    let end = if b.is_empty() {
        size
    } else {
        match b.parse::<u64>() {
            Ok(last) if last >= start => (last + 1).min(size),
            _ => return RangeAsk::Whole,
        }
    };
    if start >= size {
        RangeAsk::Unsatisfiable
    } else {
        RangeAsk::Part(start, end)
    }
}

fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ts = jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0)).unwrap_or_default();
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&ts)
        .unwrap_or_default()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn empty(code: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}
