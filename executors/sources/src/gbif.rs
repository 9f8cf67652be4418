//! `gbif:` sources: a GBIF occurrence download, fetched as a Darwin Core
//! Archive, checked ([`crate::formats::dwca`]) and unpacked into a
//! directory with its citation in `citation.txt`.
//!
//! - `gbif:download/KEY`: `GET {endpoint}/occurrence/download/KEY`; ready
//!   (`SUCCEEDED`) or not yet (absent: a data trigger waits), or dead
//!   (`FAILED`, `KILLED`, `CANCELLED`: failed).
//! - `gbif:doi/10.15468/dl.…`: the same, found by DOI
//!   (`GET {endpoint}/occurrence/download/10.15468/dl.…`).
//! - `gbif:occurrence?taxonKey=…&country=FI`: files a download request
//!   (`POST {endpoint}/occurrence/download/request`, basic auth from
//!   `GBIF_USER`/`GBIF_PWD`, notification to `GBIF_EMAIL` if set), then
//!   polls it with backoff until ready or `prepare_timeout_seconds`.
//!
//! The validator is the download's key: GBIF downloads never change, so a
//! cached copy of the same key is not modified. A query whose cached copy
//! names its key re-checks that download instead of filing a new request,
//! unless the source has `refresh` (then each refresh is a new download).

mod api;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::formats::dwca;
use crate::remote::{self, Ctx, scrub_url};
use crate::{Fetched, Fetcher, Request, SourceError, Validators};
use api::{Form, Stage, Status};

/// A GBIF account (`GBIF_USER`, `GBIF_PWD`, `GBIF_EMAIL`).
#[derive(Clone, PartialEq, Eq)]
pub struct GbifCredentials {
    /// The user name (not the email).
    pub user: String,
    /// The password (never shown by `Debug`).
    pub password: String,
    /// Where GBIF sends its "download ready" mail, if anywhere.
    pub email: Option<String>,
}

impl std::fmt::Debug for GbifCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbifCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("email", &self.email)
            .finish()
    }
}

/// Fetches `gbif:` sources.
#[derive(Debug, Clone)]
pub struct GbifFetcher {
    credentials: Option<GbifCredentials>,
    poll_initial: Duration,
    poll_max: Duration,
}

impl Default for GbifFetcher {
    fn default() -> Self {
        Self::from_env()
    }
}

/// How long GBIF may take to prepare a requested download by default.
const DEFAULT_PREPARE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// The archive's name in the staging directory while it is checked.
const ARCHIVE: &str = ".twinflow-gbif-download.zip";

impl GbifFetcher {
    /// Credentials from `GBIF_USER`, `GBIF_PWD` and `GBIF_EMAIL`; polls
    /// every 5 s at first, backing off to once a minute.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let credentials = match (var("GBIF_USER"), var("GBIF_PWD")) {
            (Some(user), Some(password)) => Some(GbifCredentials {
                user,
                password,
                email: var("GBIF_EMAIL"),
            }),
            _ => None,
        };
        Self::with_credentials(credentials)
    }

    /// These credentials instead of the environment's.
    pub fn with_credentials(credentials: Option<GbifCredentials>) -> Self {
        GbifFetcher {
            credentials,
            poll_initial: Duration::from_secs(5),
            poll_max: Duration::from_secs(60),
        }
    }

    /// Polls a requested download first after `initial`, doubling up to
    /// `max` between polls.
    pub fn with_polling(mut self, initial: Duration, max: Duration) -> Self {
        self.poll_initial = initial;
        self.poll_max = max.max(initial);
        self
    }

    async fn status(
        ctx: &Ctx,
        http: &reqwest::Client,
        endpoint: &str,
        id: &str,
    ) -> Result<Status, SourceError> {
        let url = format!("{endpoint}/occurrence/download/{id}");
        let (value, _) = remote::get_json(ctx, http, &url, 1 << 20).await?;
        serde_json::from_value(value).map_err(|e| {
            ctx.failed(format!(
                "GET {}: not a GBIF download status: {e}",
                scrub_url(&url)
            ))
        })
    }

    /// Files the download request of `params`; returns its key.
    async fn request(
        &self,
        ctx: &mut Ctx,
        http: &reqwest::Client,
        endpoint: &str,
        params: &[(String, String)],
    ) -> Result<String, SourceError> {
        let Some(c) = &self.credentials else {
            return Err(ctx.failed(
                "a gbif:occurrence query files a download request with a GBIF account: \
                 set GBIF_USER and GBIF_PWD (and GBIF_EMAIL to be mailed when it is ready)",
            ));
        };
        ctx.hide(&c.password);
        let body = api::request_body(params, &c.user, c.email.as_deref()).to_string();
        let url = format!("{endpoint}/occurrence/download/request");
        let resp = remote::send(ctx, &format!("POST {}", scrub_url(&url)), || {
            http.post(&url)
                .basic_auth(&c.user, Some(&c.password))
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await?;
        let key = resp
            .text()
            .await
            .map_err(|e| ctx.transient(format!("POST {}: {e}", scrub_url(&url))))?
            .trim()
            .to_owned();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ctx.failed(format!(
                "POST {}: GBIF answered no download key",
                scrub_url(&url)
            )));
        }
        tracing::info!(source = %ctx.name, key = %key, "filed a GBIF download request");
        Ok(key)
    }

    /// Polls download `key` until it is ready, dead or `timeout` passed.
    async fn wait(
        &self,
        ctx: &Ctx,
        http: &reqwest::Client,
        endpoint: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Status, SourceError> {
        let deadline = Instant::now() + timeout;
        let mut delay = self.poll_initial;
        loop {
            let status = Self::status(ctx, http, endpoint, key).await?;
            match status.stage() {
                Stage::Ready => return Ok(status),
                Stage::Dead => return Err(dead(ctx, &status)),
                Stage::Pending => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ctx.failed(format!(
                    "GBIF download {key} is still {} after {} s (prepare_timeout_seconds); \
                     fetch it later as gbif:download/{key}",
                    status.status,
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(self.poll_max);
        }
    }
}

fn dead(ctx: &Ctx, status: &Status) -> SourceError {
    ctx.failed(format!(
        "GBIF download {} is {}: GBIF did not produce it",
        status.key, status.status
    ))
}

#[async_trait::async_trait]
impl Fetcher for GbifFetcher {
    async fn fetch(
        &self,
        request: Request<'_>,
        staging: &Path,
        known: Option<&Validators>,
    ) -> Result<Fetched, SourceError> {
        let spec = request.spec;
        let mut ctx = Ctx::new(&spec.name, request.url);
        let form = api::parse(request.url).map_err(|e| ctx.failed(e))?;
        let endpoint = spec
            .options
            .endpoint
            .as_deref()
            .unwrap_or(api::DEFAULT_ENDPOINT)
            .trim_end_matches('/')
            .to_owned();
        let http = remote::client(&ctx)?;
        let known_key = known.and_then(|k| k.etag.as_deref());
        let status = match &form {
            Form::Download(id) | Form::Doi(id) => {
                let s = Self::status(&ctx, &http, &endpoint, id).await?;
                match s.stage() {
                    Stage::Ready => s,
                    Stage::Dead => return Err(dead(&ctx, &s)),
                    Stage::Pending => {
                        return Err(ctx.absent(format!(
                            "GBIF download {} is {}: not ready yet",
                            s.key, s.status
                        )));
                    }
                }
            }
            Form::Query(params) => {
                let timeout = spec
                    .options
                    .prepare_timeout_seconds
                    .map_or(DEFAULT_PREPARE_TIMEOUT, Duration::from_secs);
                let key = match known_key {
                    Some(k) if spec.refresh_seconds.is_none() => k.to_owned(),
                    _ => self.request(&mut ctx, &http, &endpoint, params).await?,
                };
                self.wait(&ctx, &http, &endpoint, &key, timeout).await?
            }
        };
        if known_key == Some(status.key.as_str()) {
            return Ok(Fetched::NotModified);
        }
        if let (Some(max), Some(size)) = (spec.options.max_size, status.size)
            && size > max
        {
            return Err(ctx.failed(format!(
                "GBIF download {} is {size} bytes: more than max_size {max}",
                status.key
            )));
        }
        let link = status
            .download_link
            .clone()
            .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
            .unwrap_or_else(|| {
                format!("{endpoint}/occurrence/download/request/{}.zip", status.key)
            });
        std::fs::create_dir_all(staging)
            .map_err(|e| ctx.failed(format!("cannot create {}: {e}", staging.display())))?;
        let zip = staging.join(ARCHIVE);
        remote::download(&ctx, &http, &link, &zip, spec.options.max_size, None).await?;
        let shown = scrub_url(&link);
        dwca::check_zip(&zip).map_err(|e| ctx.failed(format!("{shown}: {e}")))?;
        dwca::unpack(&zip, staging).map_err(|e| ctx.failed(format!("{shown}: {e}")))?;
        std::fs::remove_file(&zip)
            .map_err(|e| ctx.failed(format!("cannot remove {}: {e}", zip.display())))?;
        let citation = status.citation();
        let text = format!(
            "{}\ndownload key: {}\nrecords: {}\narchive: {shown}\n",
            citation
                .as_deref()
                .unwrap_or("GBIF.org GBIF Occurrence Download"),
            status.key,
            status
                .total_records
                .map_or("unknown".into(), |n| n.to_string()),
        );
        std::fs::write(staging.join("citation.txt"), text)
            .map_err(|e| ctx.failed(format!("cannot write citation.txt: {e}")))?;
        Ok(Fetched::Content {
            directory: true,
            validators: Validators {
                etag: Some(status.key.clone()),
                last_modified: None,
            },
            content_url: shown,
            citation,
        })
    }
}
