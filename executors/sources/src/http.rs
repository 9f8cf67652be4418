//! The `https://` (and `http://`) fetcher: one file, streamed to the
//! staging file while a writer thread hashes it; a partial staging file is
//! resumed with `Range` + `If-Range` (a changed upstream answers `200` and
//! the download restarts); a cached copy is revalidated with
//! `If-None-Match` / `If-Modified-Since`; transient faults (connect errors,
//! a cut body, `408`, `429`, `5xx`) are retried with exponential backoff
//! (`Retry-After` honoured) a bounded number of times, each retry noted.
//! Redirects are followed; the final URL is the `content_url`.

use crate::fetcher::leave_digest;
use crate::progress::note;
use crate::remote::Ctx;
use crate::retry::Attempt;
use crate::scrub::scrub_url;
use crate::{Fetched, Fetcher, Request, SourceError, Validators};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::retry::Retry;

/// Fetches `http(s)://` sources.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    retry: Retry,
}

impl HttpFetcher {
    /// A fetcher with the given retry policy.
    pub fn new(retry: Retry) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("twinflow/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| format!("failed to set up the HTTP client: {e}"))?;
        Ok(Self { client, retry })
    }
}

/// The outcome of one try.
enum Try {
    Done(Fetched),
    Absent(String),
    Failed(String),
    Transient(String, Option<Duration>),
}

/// What a partial staging file was downloaded against (`http.json`
/// beside it), to resume it with `If-Range`.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Partial {
    etag: Option<String>,
    last_modified: Option<String>,
}

#[async_trait::async_trait]
impl Fetcher for HttpFetcher {
    async fn fetch(
        &self,
        request: Request<'_>,
        staging: &Path,
        known: Option<&Validators>,
    ) -> Result<Fetched, SourceError> {
        let ctx = &Ctx::new(&request.spec.name, request.url);
        self.retry
            .run(ctx, move || async move {
                match self.try_once(request, staging, known).await {
                    Try::Done(fetched) => Attempt::Done(Ok(fetched)),
                    Try::Absent(reason) => Attempt::Done(Err(ctx.absent(reason))),
                    Try::Failed(reason) => Attempt::Done(Err(ctx.failed(reason))),
                    Try::Transient(reason, after) => Attempt::Transient { reason, after },
                }
            })
            .await
    }
}

impl HttpFetcher {
    async fn try_once(
        &self,
        request: Request<'_>,
        staging: &Path,
        known: Option<&Validators>,
    ) -> Try {
        let partial_path = side_file(staging, "http.json");
        let have = std::fs::metadata(staging).map(|m| m.len()).unwrap_or(0);
        let partial: Option<Partial> = std::fs::read(&partial_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let if_range = partial.as_ref().and_then(|p| {
            p.etag
                .clone()
                .filter(|e| !e.starts_with("W/"))
                .or_else(|| p.last_modified.clone())
        });
        let resume_from = (have > 0)
            .then_some(())
            .and(if_range.clone())
            .map(|v| (have, v));
        let mut req = self.client.get(request.url);
        if let Some(k) = known {
            if let Some(etag) = &k.etag {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &k.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm);
            }
        }
        if let Some((from, validator)) = &resume_from {
            req = req
                .header(header::RANGE, format!("bytes={from}-"))
                .header(header::IF_RANGE, validator);
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => return classify(&e),
        };
        let status = response.status();
        let content_url = scrub_url(response.url().as_str());
        let retry_after = retry_after(response.headers());
        match status {
            StatusCode::NOT_MODIFIED if known.is_some() => return Try::Done(Fetched::NotModified),
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Try::Absent(format!("not found (HTTP {status})"));
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Try::Failed(format!(
                    "access refused (HTTP {status}): check the credentials the URL needs"
                ));
            }
            StatusCode::RANGE_NOT_SATISFIABLE if resume_from.is_some() => {
                let _ = std::fs::remove_file(staging);
                return Try::Transient(
                    "the partial download did not resume (HTTP 416)".into(),
                    Some(Duration::ZERO),
                );
            }
            s if s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::REQUEST_TIMEOUT
                || s.is_server_error() =>
            {
                return Try::Transient(format!("HTTP {status}"), retry_after);
            }
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {}
            s => return Try::Failed(format!("unexpected answer HTTP {s}")),
        }
        let validators = Validators {
            etag: header_string(response.headers(), header::ETAG),
            last_modified: header_string(response.headers(), header::LAST_MODIFIED),
        };
        let length = response.content_length();
        let (offset, total) = if status == StatusCode::PARTIAL_CONTENT {
            match (content_range(response.headers()), &resume_from) {
                (Some((start, total)), Some((from, _))) if start == *from => {
                    (start, total.or(length.map(|l| l + start)))
                }
                _ => {
                    let _ = std::fs::remove_file(staging);
                    return Try::Transient(
                        "the server answered a range that was not asked; restarting".into(),
                        Some(Duration::ZERO),
                    );
                }
            }
        } else {
            (0, length)
        };
        let max = request.spec.options.max_size;
        if let (Some(max), Some(total)) = (max, total)
            && total > max
        {
            let _ = std::fs::remove_file(staging);
            return Try::Failed(format!("is {total} bytes, over `max_size` {max}"));
        }
        if offset == 0 {
            let p = Partial {
                etag: validators.etag.clone(),
                last_modified: validators.last_modified.clone(),
            };
            let _ = std::fs::write(&partial_path, serde_json::to_vec(&p).unwrap_or_default());
        } else {
            note(&format!(
                "source `{}`: resuming at byte {offset}",
                request.spec.name
            ));
        }
        match stream(response, staging, offset, max).await {
            Err(e) => e,
            Ok((size, sha256)) => {
                if let Some(total) = total
                    && size < total
                {
                    return Try::Transient(
                        format!("the body was cut after {size} of {total} bytes"),
                        None,
                    );
                }
                if let Err(e) = leave_digest(staging, &sha256, size) {
                    tracing::warn!("{}: {e}", staging.display());
                }
                Try::Done(Fetched::Content {
                    directory: false,
                    validators,
                    content_url,
                    citation: None,
                })
            }
        }
    }
}

/// Streams the body into `staging` from `offset` (the bytes before it are
/// already there), a writer thread hashing and writing; returns the size
/// and SHA-256 of the whole file.
async fn stream(
    mut response: reqwest::Response,
    staging: &Path,
    offset: u64,
    max: Option<u64>,
) -> Result<(u64, String), Try> {
    // Chunks go to the writer in batches of at least BATCH bytes: one
    // wake-up of the writer thread per batch, not per (small) chunk.
    const BATCH: usize = 1 << 20;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<bytes::Bytes>>(16);
    let path = staging.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, String)> {
        let mut hasher = Sha256::new();
        let mut file = prefix(&path, offset, &mut hasher)?;
        let mut size = offset;
        while let Some(batch) = rx.blocking_recv() {
            for chunk in batch {
                hasher.update(&chunk);
                file.write_all(&chunk)?;
                size += chunk.len() as u64;
            }
        }
        file.flush()?;
        Ok((size, hex(&hasher.finalize())))
    });
    let mut received = offset;
    let mut cut = None;
    let (mut batch, mut batched) = (Vec::new(), 0);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                batched += chunk.len();
                if let Some(max) = max
                    && received > max
                {
                    drop(tx);
                    let _ = writer.await;
                    let _ = std::fs::remove_file(staging);
                    return Err(Try::Failed(format!(
                        "is over `max_size` {max} bytes (the server announced no or a wrong length)"
                    )));
                }
                batch.push(chunk);
                if batched >= BATCH {
                    batched = 0;
                    if tx.send(std::mem::take(&mut batch)).await.is_err() {
                        break;
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                cut = Some(format!(
                    "the body was cut after {received} bytes: {}",
                    error_chain(&e)
                ));
                break;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    drop(tx);
    let written = match writer.await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            return Err(Try::Failed(format!(
                "failed to write {}: {e}",
                staging.display()
            )));
        }
        Err(e) => return Err(Try::Failed(format!("the writer thread failed: {e}"))),
    };
    match cut {
        Some(reason) => Err(Try::Transient(reason, None)),
        None => Ok(written),
    }
}

/// Opens `path` for appending after hashing its first `offset` bytes (a
/// partial download), or creates it empty when `offset` is 0.
fn prefix(path: &Path, offset: u64, hasher: &mut Sha256) -> std::io::Result<std::fs::File> {
    if offset == 0 {
        return std::fs::File::create(path);
    }
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = offset;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::other("the partial download shrank"));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let file = std::fs::OpenOptions::new().append(true).open(path)?;
    file.set_len(offset)?;
    Ok(file)
}

fn classify(e: &reqwest::Error) -> Try {
    let reason = error_chain(e);
    if e.is_builder() {
        Try::Failed(format!("malformed URL: {reason}"))
    } else if e.is_redirect() {
        Try::Failed(reason)
    } else {
        Try::Transient(reason, None)
    }
}

/// The error and its causes, without the URL (which may hold credentials).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    let mut first = true;
    while let Some(err) = cur {
        let part = if first {
            // reqwest's own message names the URL: rebuild it without.
            let mut s = String::new();
            if e.is_connect() {
                s.push_str("failed to connect");
            } else if e.is_timeout() {
                s.push_str("timed out");
            } else if e.is_body() || e.is_decode() {
                s.push_str("failed to read the body");
            } else if e.is_redirect() {
                s.push_str("too many redirects");
            } else {
                s.push_str("request failed");
            }
            s
        } else {
            err.to_string()
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&scrub_url(&part));
        first = false;
        cur = err.source();
    }
    text
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    let secs = at.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// `Content-Range: bytes START-END/TOTAL` -> (START, TOTAL if known).
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A file beside `staging` in its own staging directory.
pub(crate) fn side_file(staging: &Path, name: &str) -> PathBuf {
    staging
        .parent()
        .map_or_else(|| PathBuf::from(name), |p| p.join(name))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
