//! What the s3, stac and gbif fetchers share: errors that name the source
//! and its URL with credentials scrubbed ([`Ctx`]), and plain HTTP GETs
//! through `reqwest` (JSON documents, and bodies streamed to a file with a
//! size limit, retrying transient faults as [`Retry::REQUESTS`] says).

use crate::SourceError;
use crate::retry::{Attempt, Retry};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The source a fetch is for, to build its errors: every message carries
/// the source's name and its URL, and never a secret.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) name: String,
    pub(crate) url: String,
    secrets: Vec<String>,
}

impl Ctx {
    pub(crate) fn new(name: &str, url: &str) -> Self {
        Ctx {
            name: name.to_owned(),
            url: scrub_url(url),
            secrets: Vec::new(),
        }
    }

    /// Never shows `secret` in a message.
    pub(crate) fn hide(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.secrets.push(secret.to_owned());
        }
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    pub(crate) fn absent(&self, reason: impl AsRef<str>) -> SourceError {
        SourceError::Absent {
            source_name: self.name.clone(),
            url: self.url.clone(),
            reason: self.scrub(reason.as_ref()),
        }
    }

    pub(crate) fn failed(&self, reason: impl AsRef<str>) -> SourceError {
        SourceError::Failed {
            source_name: self.name.clone(),
            url: self.url.clone(),
            reason: self.scrub(reason.as_ref()),
        }
    }

    pub(crate) fn transient(&self, reason: impl AsRef<str>) -> SourceError {
        SourceError::Transient {
            source_name: self.name.clone(),
            url: self.url.clone(),
            reason: self.scrub(reason.as_ref()),
        }
    }
}

pub(crate) use crate::scrub::scrub_url;

/// A `reqwest` client with the fetchers' timeouts.
pub(crate) fn client(ctx: &Ctx) -> Result<reqwest::Client, SourceError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("twinflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ctx.failed(format!("cannot build an http client: {e}")))
}

/// Sends the request `make` builds, retrying connection faults, 5xx and
/// 429 as [`Retry::REQUESTS`] says; maps 404/410 to
/// [`SourceError::Absent`], other 4xx to [`SourceError::Failed`]. `what`
/// names the request in messages.
pub(crate) async fn send(
    ctx: &Ctx,
    what: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, SourceError> {
    let make = &make;
    Retry::REQUESTS
        .run(ctx, move || async move {
            match make().send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        return Attempt::Done(Ok(resp));
                    }
                    let code = status.as_u16();
                    let msg = format!("{what}: http {status}");
                    if code == 404 || code == 410 {
                        return Attempt::Done(Err(ctx.absent(msg)));
                    }
                    if !(status.is_server_error() || code == 429) {
                        let body = resp.text().await.unwrap_or_default();
                        let body: String = body.trim().chars().take(200).collect();
                        return Attempt::Done(Err(ctx.failed(if body.is_empty() {
                            msg
                        } else {
                            format!("{msg}: {body}")
                        })));
                    }
                    Attempt::Transient {
                        reason: msg,
                        after: None,
                    }
                }
                Err(e) => {
                    let msg = format!("{what}: {}", without_url(&e));
                    if !(e.is_connect() || e.is_timeout() || e.is_request()) {
                        return Attempt::Done(Err(ctx.failed(msg)));
                    }
                    Attempt::Transient {
                        reason: msg,
                        after: None,
                    }
                }
            }
        })
        .await
}

/// A reqwest error's text without the URL it carries (which may hold
/// credentials; messages name the scrubbed URL themselves).
fn without_url(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "bad response body"
    } else {
        "request failed"
    }
    .to_owned();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

/// GETs `url` and parses its body as JSON (at most `limit` bytes).
pub(crate) async fn get_json(
    ctx: &Ctx,
    http: &reqwest::Client,
    url: &str,
    limit: u64,
) -> Result<(serde_json::Value, Vec<u8>), SourceError> {
    let shown = scrub_url(url);
    let mut resp = send(ctx, &format!("GET {shown}"), || {
        http.get(url).header("accept", "application/json")
    })
    .await?;
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ctx.transient(format!("GET {shown}: {}", without_url(&e))))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            return Err(ctx.failed(format!("GET {shown}: document larger than {limit} bytes")));
        }
    }
    let value = serde_json::from_slice(&body)
        .map_err(|e| ctx.failed(format!("GET {shown}: not JSON: {e}")))?;
    Ok((value, body))
}

/// GETs `url` into the new file `dest`, streaming; refuses more than
/// `max_size` bytes and a body shorter than its `Content-Length`. Returns
/// the bytes written.
pub(crate) async fn download(
    ctx: &Ctx,
    http: &reqwest::Client,
    url: &str,
    dest: &Path,
    max_size: Option<u64>,
    auth: Option<(&str, &str)>,
) -> Result<u64, SourceError> {
    let shown = scrub_url(url);
    let mut resp = send(ctx, &format!("GET {shown}"), || {
        let r = http.get(url);
        match auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    })
    .await?;
    let expected = resp.content_length();
    if let (Some(len), Some(max)) = (expected, max_size)
        && len > max
    {
        return Err(ctx.failed(format!(
            "GET {shown}: {len} bytes is more than max_size {max}"
        )));
    }
    let io = |e: std::io::Error| ctx.failed(format!("cannot write {}: {e}", dest.display()));
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut written: u64 = 0;
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| ctx.transient(format!("GET {shown}: {}", without_url(&e))))?;
        let Some(chunk) = chunk else { break };
        written += chunk.len() as u64;
        if let Some(max) = max_size
            && written > max
        {
            return Err(ctx.failed(format!("GET {shown}: more than max_size {max} bytes")));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    if let Some(len) = expected
        && written != len
    {
        return Err(ctx.transient(format!(
            "GET {shown}: truncated body: {written} of {len} bytes"
        )));
    }
    Ok(written)
}

/// Whether `name` is a safe single path segment (no `/`, `\`, `..`, `.`,
/// NUL, not empty).
pub(crate) fn safe_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// SHA-256 of `data`, lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_user_info_and_secret_params() {
        assert_eq!(
            scrub_url("https://u:pw@h.example/a/b?x=1&token=abc&X-Amz-Signature=s"),
            "https://h.example/a/b?x=1&token=REDACTED&X-Amz-Signature=REDACTED"
        );
        assert_eq!(
            scrub_url("gbif:occurrence?taxonKey=5&country=FI"),
            "gbif:occurrence?taxonKey=5&country=FI"
        );
        let mut c = Ctx::new("n", "s3://b/k");
        c.hide("hunter2");
        assert!(!c.failed("bad hunter2").to_string().contains("hunter2"));
    }

    #[test]
    fn segments() {
        assert!(safe_segment("item-1"));
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            assert!(!safe_segment(bad), "{bad}");
        }
    }
}
