//! `s3://bucket/key` (one object, a file) and `s3://bucket/prefix/` (every
//! object under the prefix, a directory keeping their relative paths)
//! through `object_store`. Settings come from the `AWS_*` environment (as
//! `AmazonS3Builder::from_env` reads it), then the source's `profile` (keys,
//! region and endpoint of `~/.aws/credentials` and `~/.aws/config`, or the
//! files `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE` name), then its
//! `endpoint` and `region` options. The validator is the object's ETag (for
//! a prefix, a digest of the listing's keys, sizes and ETags). Bodies are
//! streamed to disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey as Key};
use object_store::path::Path as ObjectPath;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use crate::remote::{Ctx, sha256_hex};
use crate::{Fetched, Fetcher, Request, SourceError, Validators};

/// Fetches `s3://` sources.
#[derive(Clone)]
pub struct S3Fetcher {
    env: Arc<HashMap<String, String>>,
}

impl std::fmt::Debug for S3Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Fetcher").finish_non_exhaustive()
    }
}

impl Default for S3Fetcher {
    fn default() -> Self {
        Self::from_env()
    }
}

impl S3Fetcher {
    /// Reads settings from this process's environment.
    pub fn from_env() -> Self {
        Self::with_env(std::env::vars())
    }

    /// Reads settings from `vars` instead of the environment (`AWS_*`,
    /// `HOME`).
    pub fn with_env(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        S3Fetcher {
            env: Arc::new(vars.into_iter().filter(|(_, v)| !v.is_empty()).collect()),
        }
    }

    fn var(&self, k: &str) -> Option<String> {
        self.env.get(k).cloned()
    }

    /// The client for `bucket`, and the context with its secrets hidden.
    fn client(
        &self,
        request: &Request<'_>,
        bucket: &str,
    ) -> Result<(Arc<dyn ObjectStore>, Ctx), SourceError> {
        let spec = request.spec;
        let mut ctx = Ctx::new(&spec.name, request.url);
        let mut b = AmazonS3Builder::new().with_bucket_name(bucket);
        for (k, v) in self.env.iter() {
            if k.starts_with("AWS_")
                && let Ok(key) = k.to_ascii_lowercase().parse::<Key>()
            {
                b = b.with_config(key, v);
            }
        }
        if let Some(profile) = &spec.options.profile {
            b = self.apply_profile(b, profile, &ctx)?;
        }
        if let Some(e) = &spec.options.endpoint {
            b = b.with_endpoint(e);
            if e.starts_with("http://") {
                b = b.with_config(Key::Client(ClientConfigKey::AllowHttp), "true");
            }
        }
        if let Some(r) = &spec.options.region {
            b = b.with_region(r);
        }
        for k in [Key::SecretAccessKey, Key::Token] {
            if let Some(s) = b.get_config_value(&k) {
                ctx.hide(&s);
            }
        }
        let keys = b.get_config_value(&Key::AccessKeyId).is_some()
            && b.get_config_value(&Key::SecretAccessKey).is_some();
        let other = [
            Key::SkipSignature,
            Key::WebIdentityTokenFile,
            Key::ContainerCredentialsRelativeUri,
            Key::ContainerCredentialsFullUri,
        ]
        .iter()
        .any(|k| b.get_config_value(k).is_some_and(|v| v != "false"));
        if !keys && !other {
            let how = match &spec.options.profile {
                Some(p) => format!(
                    "profile `{p}` has no aws_access_key_id and aws_secret_access_key \
                     (~/.aws/credentials, or the file AWS_SHARED_CREDENTIALS_FILE names)"
                ),
                None => "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a `profile:` \
                         option, or AWS_SKIP_SIGNATURE=true for a public bucket)"
                    .to_owned(),
            };
            return Err(ctx.failed(format!("no S3 credentials: {how}")));
        }
        let store = b
            .build()
            .map_err(|e| ctx.failed(format!("bad S3 settings: {e}")))?;
        Ok((Arc::new(store), ctx))
    }

    fn apply_profile(
        &self,
        mut b: AmazonS3Builder,
        profile: &str,
        ctx: &Ctx,
    ) -> Result<AmazonS3Builder, SourceError> {
        let home = self.var("HOME").map(PathBuf::from);
        let file = |var: &str, name: &str| {
            self.var(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
        };
        let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok());
        let creds = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials")).unwrap_or_default();
        let config = read(file("AWS_CONFIG_FILE", "config")).unwrap_or_default();
        let config_section = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        let mut settings = ini_section(&config, &config_section);
        settings.extend(ini_section(&creds, profile));
        if settings.is_empty() {
            return Err(ctx.failed(format!(
                "no S3 profile `{profile}` in ~/.aws/credentials or ~/.aws/config \
                 (or the files AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE name)"
            )));
        }
        for (name, key) in [
            ("aws_access_key_id", Key::AccessKeyId),
            ("aws_secret_access_key", Key::SecretAccessKey),
            ("aws_session_token", Key::Token),
            ("region", Key::Region),
            ("endpoint_url", Key::Endpoint),
        ] {
            if let Some(v) = settings.get(name) {
                b = b.with_config(key, v);
            }
        }
        Ok(b)
    }
}

/// `key = value` lines of `[section]` of an ini file (keys lowercased;
/// indented sub-settings skipped).
fn ini_section(text: &str, section: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut inside = false;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

/// `s3://bucket/key` split; the key may be empty (the whole bucket).
fn parse(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}

fn describe(err: &object_store::Error) -> String {
    let mut text = err.to_string();
    let mut cur = std::error::Error::source(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = e.source();
    }
    text.replace('\n', " ")
}

fn map_err(ctx: &Ctx, what: &str, err: &object_store::Error) -> SourceError {
    use object_store::Error as E;
    let detail = describe(err);
    match err {
        E::NotFound { .. } => ctx.absent(format!("{what}: no such object (404)")),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            ctx.failed(format!("{what}: access denied: {detail}"))
        }
        _ => {
            let status = detail
                .find("status code: ")
                .and_then(|i| detail.get(i + 13..i + 16))
                .and_then(|s| s.parse::<u16>().ok());
            match status {
                Some(s) if s >= 500 || s == 429 => ctx.transient(format!("{what}: {detail}")),
                Some(_) => ctx.failed(format!("{what}: {detail}")),
                None if detail.contains("connect") || detail.contains("timed out") => {
                    ctx.transient(format!("{what}: {detail}"))
                }
                None => ctx.failed(format!("{what}: {detail}")),
            }
        }
    }
}

/// `rel` as a path below a directory: refuses empty, `.`, `..` and
/// absolute parts.
fn relative(rel: &str) -> Option<PathBuf> {
    rel.split('/')
        .all(crate::remote::safe_segment)
        .then(|| PathBuf::from(rel))
}

async fn get_to_file(
    store: &dyn ObjectStore,
    ctx: &Ctx,
    key: &ObjectPath,
    dest: &Path,
    size: u64,
) -> Result<(), SourceError> {
    let what = format!("get {key}");
    let got = store.get(key).await.map_err(|e| map_err(ctx, &what, &e))?;
    let io = |e: std::io::Error| ctx.failed(format!("cannot write {}: {e}", dest.display()));
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut stream = got.into_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| map_err(ctx, &what, &e))?;
        written += chunk.len() as u64;
        if written > size {
            return Err(ctx.failed(format!("{what}: more than the {size} bytes listed")));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    if written != size {
        return Err(ctx.transient(format!("{what}: truncated body: {written} of {size} bytes")));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Fetcher for S3Fetcher {
    async fn fetch(
        &self,
        request: Request<'_>,
        staging: &Path,
        known: Option<&Validators>,
    ) -> Result<Fetched, SourceError> {
        let spec = request.spec;
        let Some((bucket, key)) = parse(request.url) else {
            return Err(Ctx::new(&spec.name, request.url)
                .failed("not an s3 URL: write s3://BUCKET/KEY or s3://BUCKET/PREFIX/"));
        };
        let (store, ctx) = self.client(&request, bucket)?;
        let max = spec.options.max_size;
        let directory = spec.directory || key.is_empty() || key.ends_with('/');
        if !directory {
            let path = ObjectPath::from(key);
            let meta = store
                .head(&path)
                .await
                .map_err(|e| map_err(&ctx, &format!("head {key}"), &e))?;
            let etag = meta.e_tag.clone();
            if etag.is_some() && known.and_then(|k| k.etag.as_ref()) == etag.as_ref() {
                return Ok(Fetched::NotModified);
            }
            if let Some(max) = max
                && meta.size > max
            {
                return Err(ctx.failed(format!(
                    "{key}: {} bytes is more than max_size {max}",
                    meta.size
                )));
            }
            get_to_file(store.as_ref(), &ctx, &path, staging, meta.size).await?;
            return Ok(Fetched::Content {
                directory: false,
                validators: Validators {
                    etag,
                    last_modified: None,
                },
                content_url: ctx.url.clone(),
                citation: None,
            });
        }
        let prefix = key.trim_end_matches('/');
        let list_prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        let mut listing = store.list(list_prefix.as_ref());
        let mut objects = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| map_err(&ctx, &format!("list {prefix}/"), &e))?;
            let full = meta.location.to_string();
            let rel = if prefix.is_empty() {
                full.as_str()
            } else {
                full.strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix('/'))
                    .unwrap_or_default()
            };
            if rel.is_empty() && meta.size == 0 {
                continue; // a directory marker
            }
            let Some(rel_path) = relative(rel) else {
                return Err(ctx.failed(format!(
                    "refusing key `{full}`: it would land outside the directory"
                )));
            };
            objects.push((rel.to_owned(), rel_path, meta));
        }
        if objects.is_empty() {
            return Err(ctx.absent(format!("no objects under {bucket}/{prefix}/")));
        }
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        let mut listing_text = String::new();
        for (rel, _, m) in &objects {
            listing_text.push_str(&format!(
                "{rel}\0{}\0{}\n",
                m.size,
                m.e_tag.as_deref().unwrap_or("")
            ));
        }
        let etag = Some(format!(
            "listing-sha256:{}",
            sha256_hex(listing_text.as_bytes())
        ));
        if known.and_then(|k| k.etag.as_ref()) == etag.as_ref() {
            return Ok(Fetched::NotModified);
        }
        let total: u64 = objects.iter().map(|(_, _, m)| m.size).sum();
        if let Some(max) = max
            && total > max
        {
            return Err(ctx.failed(format!(
                "{} objects of {total} bytes under {prefix}/: more than max_size {max}",
                objects.len()
            )));
        }
        let mk = |d: &Path| {
            std::fs::create_dir_all(d)
                .map_err(|e| ctx.failed(format!("cannot create {}: {e}", d.display())))
        };
        mk(staging)?;
        for (_, rel, meta) in &objects {
            let dest = staging.join(rel);
            if let Some(parent) = dest.parent() {
                mk(parent)?;
            }
            get_to_file(store.as_ref(), &ctx, &meta.location, &dest, meta.size).await?;
        }
        Ok(Fetched::Content {
            directory: true,
            validators: Validators {
                etag,
                last_modified: None,
            },
            content_url: ctx.url.clone(),
            citation: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_relative_keys() {
        assert_eq!(parse("s3://b/k/x.nc"), Some(("b", "k/x.nc")));
        assert_eq!(parse("s3://b"), Some(("b", "")));
        assert_eq!(parse("s3:///k"), None);
        assert!(relative("a/b.txt").is_some());
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a/./b"] {
            assert!(relative(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn profile_sections() {
        let text = "[default]\naws_access_key_id=A\n[lumi]\nAWS_SECRET_ACCESS_KEY = s\n  sub = x\n";
        let s = ini_section(text, "lumi");
        assert_eq!(
            s.get("aws_secret_access_key").map(String::as_str),
            Some("s")
        );
        assert!(!s.contains_key("aws_access_key_id") && !s.contains_key("sub"));
    }
}
