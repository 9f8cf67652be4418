//! How the store talks to S3: [`StoreOptions`] and [`RetrySettings`], and the
//! `object_store` client built from the standard AWS environment variables
//! (`AmazonS3Builder::from_env`) or, when `AWS_ACCESS_KEY_ID` is not set, the
//! profile `AWS_PROFILE` (default `default`) of the shared credentials and
//! config files (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`;
//! `AWS_CONFIG_FILE`, else `~/.aws/config`). Secrets are kept out of every
//! message and `Debug` output.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey as Key};
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

use crate::error::{Secrets, StoreError};
use crate::location::Location;

/// How often and how long a failed request is retried.
///
/// Transient failures (connection refused or dropped, timeouts, 5xx, 429)
/// are retried with exponential backoff (doubling from `initial_backoff` up
/// to `max_backoff`, with jitter), at most `max_retries` times and not after
/// `timeout` since the first attempt; each request of an operation (each part
/// of a multipart upload) has its own budget. Permanent failures (403, 404,
/// 400) are not retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// Retries of one request; 0 disables retrying. Default 6.
    pub max_retries: usize,
    /// First backoff. Default 200 ms.
    pub initial_backoff: Duration,
    /// Longest backoff. Default 10 s.
    pub max_backoff: Duration,
    /// No retry starts later than this after the first attempt. Default 120 s.
    pub timeout: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Keys given by the caller instead of the environment or profile.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never shown by `Debug`).
    pub secret_access_key: String,
    /// A session token, for temporary credentials (never shown by `Debug`).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Settings of a [`Store`](crate::Store); [`Default`] suits most uses.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// The S3 endpoint (e.g. `http://127.0.0.1:17580`); overrides
    /// `AWS_ENDPOINT_URL` and the profile's `endpoint_url`. Default: none.
    pub endpoint: Option<String>,
    /// Keys to use instead of `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
    /// and the profile. Default: none.
    pub credentials: Option<Credentials>,
    /// Retries of failed requests.
    pub retry: RetrySettings,
    /// Files larger than this go up in a multipart upload. Default 64 MiB.
    pub multipart_threshold: u64,
    /// Size of one part of a multipart upload (at least 5 MiB; grown so that
    /// no upload needs more than 10,000 parts). Default 16 MiB.
    pub part_size: usize,
    /// Parts of one multipart upload sent at once. Default 4.
    pub parts_in_flight: usize,
    /// Small files of a directory output uploaded at once. Default 4.
    pub files_in_flight: usize,
    /// Longest time of one HTTP request, body included (a download that
    /// takes longer continues from where it stopped). Default 300 s.
    pub request_timeout: Duration,
    /// Longest time to open a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// `fsync` a downloaded file before renaming it into place. Default true.
    pub sync_downloads: bool,
    /// Sign the payload of uploads (its sha256 in the SigV4 signature, so the
    /// server rejects bytes changed in transit); `None` (the default) signs
    /// over plain http only, as the aws CLI does: over https TLS protects
    /// the bytes, and every download is verified against its digest anyway.
    /// Signing costs one more sha256 pass over the data.
    pub sign_payload: Option<bool>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            endpoint: None,
            credentials: None,
            retry: RetrySettings::default(),
            multipart_threshold: 64 << 20,
            part_size: 16 << 20,
            parts_in_flight: 4,
            files_in_flight: 4,
            request_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            sync_downloads: true,
            sign_payload: None,
        }
    }
}

/// The smallest part S3 accepts (except the last one).
pub(crate) const MIN_PART: usize = 5 << 20;
/// The most parts of one multipart upload.
pub(crate) const MAX_PARTS: u64 = 10_000;

/// What [`client`] builds.
pub(crate) struct Client {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// For messages: the endpoint URL without user info.
    pub(crate) endpoint: String,
    pub(crate) secrets: Secrets,
}

/// Builds the S3 client for `loc`.
pub(crate) fn client(loc: &Location, opts: &StoreOptions) -> Result<Client, StoreError> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(loc.bucket());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(c) = &opts.credentials {
        b = b
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(&c.secret_access_key);
        if let Some(t) = &c.session_token {
            b = b.with_token(t);
        }
    } else if env("AWS_ACCESS_KEY_ID").is_none() {
        b = apply_profile(b, &env);
    }
    if let Some(e) = &opts.endpoint {
        b = b.with_endpoint(e);
    }
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: opts.retry.initial_backoff,
            max_backoff: opts.retry.max_backoff,
            base: 2.0,
        },
        max_retries: opts.retry.max_retries,
        retry_timeout: opts.retry.timeout,
    };
    b = b
        .with_retry(retry)
        .with_config(
            Key::Client(ClientConfigKey::Timeout),
            format!("{}ms", opts.request_timeout.as_millis()),
        )
        .with_config(
            Key::Client(ClientConfigKey::ConnectTimeout),
            format!("{}ms", opts.connect_timeout.as_millis()),
        );

    let secrets = Secrets::new(
        [Key::SecretAccessKey, Key::Token]
            .iter()
            .filter_map(|k| b.get_config_value(k)),
    );
    let region = b
        .get_config_value(&Key::Region)
        .or_else(|| b.get_config_value(&Key::DefaultRegion))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let endpoint = match b.get_config_value(&Key::Endpoint) {
        Some(e) => display_endpoint(&e),
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    let config_err = |message: String| StoreError::Config {
        location: loc.to_string(),
        endpoint: endpoint.clone(),
        message: secrets.scrub(&message),
    };
    let allow_http = b
        .get_config_value(&Key::Client(ClientConfigKey::AllowHttp))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if endpoint.starts_with("http://") && !allow_http {
        return Err(config_err(
            "the endpoint is plain http: set AWS_ALLOW_HTTP=true to allow it".into(),
        ));
    }
    let sign = opts
        .sign_payload
        .unwrap_or_else(|| endpoint.starts_with("http://"));
    let s3 = b
        .with_unsigned_payload(!sign)
        .build()
        .map_err(|e| config_err(e.to_string()))?;
    Ok(Client {
        store: Arc::new(s3),
        endpoint,
        secrets,
    })
}

/// Takes keys, region and endpoint from the profile's files, where the
/// environment does not set them.
fn apply_profile(mut b: AmazonS3Builder, env: &dyn Fn(&str) -> Option<String>) -> AmazonS3Builder {
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok());
    let creds = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))
        .map(|t| parse_ini(&t))
        .unwrap_or_default();
    let config = read(file("AWS_CONFIG_FILE", "config"))
        .map(|t| parse_ini(&t))
        .unwrap_or_default();
    let settings = profile_settings(&profile, &creds, &config);
    let get = |k: &str| settings.get(k).cloned();
    if let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
        if let Some(t) = get("aws_session_token") {
            b = b.with_token(t);
        }
    }
    if env("AWS_REGION").is_none()
        && env("AWS_DEFAULT_REGION").is_none()
        && let Some(r) = get("region")
    {
        b = b.with_region(r);
    }
    if env("AWS_ENDPOINT_URL").is_none()
        && let Some(e) = get("endpoint_url")
    {
        b = b.with_endpoint(e);
    }
    b
}

type Ini = HashMap<String, HashMap<String, String>>;

/// `[section]` / `key = value` lines; `#` and `;` start comments. Keys are
/// lowercased; nested (indented) settings are skipped.
pub(crate) fn parse_ini(text: &str) -> Ini {
    let mut out: Ini = HashMap::new();
    let mut section: Option<String> = None;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) {
            continue; // a sub-setting, e.g. under `s3 =`
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_owned());
            continue;
        }
        if let (Some(s), Some((k, v))) = (&section, line.split_once('=')) {
            let v = v.trim();
            if !v.is_empty() {
                out.entry(s.clone())
                    .or_default()
                    .insert(k.trim().to_ascii_lowercase(), v.to_owned());
            }
        }
    }
    out
}

/// The settings of `profile`: the config file's `[profile NAME]` (or
/// `[default]`), overridden by the credentials file's `[NAME]`.
pub(crate) fn profile_settings(
    profile: &str,
    creds: &Ini,
    config: &Ini,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    for src in [config.get(&config_section), creds.get(profile)]
        .into_iter()
        .flatten()
    {
        out.extend(src.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// The endpoint without `user:password@`, for messages.
pub(crate) fn display_endpoint(endpoint: &str) -> String {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("", endpoint));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = path.trim_end_matches('/');
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_without_user_info() {
        assert_eq!(
            display_endpoint("http://127.0.0.1:17580"),
            "http://127.0.0.1:17580"
        );
        assert_eq!(
            display_endpoint("http://127.0.0.1:17580/"),
            "http://127.0.0.1:17580"
        );
        assert_eq!(
            display_endpoint("https://user:pass@s3.example.org/base"),
            "https://s3.example.org/base"
        );
    }

    #[test]
    fn profiles() {
        let creds = parse_ini(
            "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = s1\n\
             # comment\n[lumi]\nAWS_ACCESS_KEY_ID=AKLUMI\naws_secret_access_key = s2\n",
        );
        let config = parse_ini(
            "[default]\nregion = eu-west-1\n[profile lumi]\nregion = lumi\n\
             endpoint_url = https://lumidata.example\ns3 =\n  addressing_style = path\n",
        );
        let d = profile_settings("default", &creds, &config);
        assert_eq!(d["aws_access_key_id"], "AKDEFAULT");
        assert_eq!(d["region"], "eu-west-1");
        let l = profile_settings("lumi", &creds, &config);
        assert_eq!(l["aws_access_key_id"], "AKLUMI");
        assert_eq!(l["aws_secret_access_key"], "s2");
        assert_eq!(l["region"], "lumi");
        assert_eq!(l["endpoint_url"], "https://lumidata.example");
        assert!(!l.contains_key("addressing_style"));
        assert!(profile_settings("none", &creds, &config).is_empty());
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "very-secret-key".into(),
            session_token: Some("very-secret-token".into()),
        };
        let shown = format!(
            "{:?}",
            StoreOptions {
                credentials: Some(c),
                ..StoreOptions::default()
            }
        );
        assert!(shown.contains("AKID"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn defaults_are_sane() {
        let o = StoreOptions::default();
        assert!(o.part_size >= MIN_PART);
        assert!(o.multipart_threshold >= o.part_size as u64);
        assert!(o.parts_in_flight >= 1 && o.files_in_flight >= 1);
    }
}
