//! `stac+file:` catalogs: a static STAC catalog, collection or item JSON on
//! this machine's file system. [`LocalRoot`] owns the boundary: every
//! `file:` document or asset a local catalog names must lie inside the
//! directory of the root catalog file (checked on the URL's path, with
//! `..` already resolved, and again on the real path, so that a symbolic
//! link cannot lead out), and it reads documents (at most the HTTP size
//! limit), stats assets for the validator and copies them into place.

use crate::SourceError;
use crate::remote::{Ctx, scrub_url};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt as _;
use url::Url;

/// The directory of a `stac+file:` root catalog.
#[derive(Debug, Clone)]
pub(crate) struct LocalRoot {
    /// As the URL names it.
    given: PathBuf,
    /// Its real path (symbolic links resolved).
    real: PathBuf,
}

impl LocalRoot {
    /// The boundary of the catalog at `start` (a `file:` URL); absent when
    /// the catalog file or its directory does not exist (yet).
    pub(crate) fn new(ctx: &Ctx, start: &Url) -> Result<Self, SourceError> {
        let file = start
            .to_file_path()
            .map_err(|()| ctx.failed("a stac+file: URL names an absolute local path"))?;
        let Some(given) = file.parent().map(Path::to_path_buf) else {
            return Err(ctx.failed(format!("{} has no directory", file.display())));
        };
        let real = match std::fs::canonicalize(&given) {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(ctx.absent(format!("no catalog at {}", file.display())));
            }
            Err(e) => return Err(ctx.failed(format!("cannot read {}: {e}", given.display()))),
        };
        Ok(Self { given, real })
    }

    /// The real path of `url` (a `file:` URL that `href` resolved to), if
    /// it lies inside the root's directory; absent when it does not exist.
    pub(crate) fn inside(&self, ctx: &Ctx, href: &str, url: &Url) -> Result<PathBuf, SourceError> {
        let refuse = || {
            ctx.failed(format!(
                "refusing href `{}`: it leads out of the catalog's directory {}",
                scrub_url(href),
                self.given.display()
            ))
        };
        let path = url
            .to_file_path()
            .map_err(|()| ctx.failed(format!("href `{}` is not a local path", scrub_url(href))))?;
        // `Url::join` has removed `.` and `..` segments already.
        if !path.starts_with(&self.given) && !path.starts_with(&self.real) {
            return Err(refuse());
        }
        let real = match std::fs::canonicalize(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(ctx.absent(format!(
                    "href `{}`: no such file {}",
                    scrub_url(href),
                    path.display()
                )));
            }
            Err(e) => return Err(ctx.failed(format!("cannot read {}: {e}", path.display()))),
        };
        if !real.starts_with(&self.real) {
            return Err(refuse());
        }
        Ok(real)
    }

    /// The JSON document at `url`, at most `limit` bytes.
    pub(crate) async fn read_json(
        &self,
        ctx: &Ctx,
        url: &Url,
        limit: u64,
    ) -> Result<serde_json::Value, SourceError> {
        let path = self.inside(ctx, url.as_str(), url)?;
        let shown = path.display();
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => ctx.absent(format!("no such file {shown}")),
                _ => ctx.failed(format!("cannot read {shown}: {e}")),
            })?;
        let mut body = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut body)
            .await
            .map_err(|e| ctx.failed(format!("cannot read {shown}: {e}")))?;
        if body.len() as u64 > limit {
            return Err(ctx.failed(format!("{shown}: document larger than {limit} bytes")));
        }
        serde_json::from_slice(&body).map_err(|e| ctx.failed(format!("{shown}: not JSON: {e}")))
    }
}

/// A local asset's size and modification time (ns): what its part of the
/// validator digest holds. Refuses anything but a regular file.
pub(crate) fn stamp(ctx: &Ctx, href: &str, path: &Path) -> Result<(u64, i64), SourceError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ctx.failed(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(ctx.failed(format!(
            "href `{}`: {} is not a regular file",
            scrub_url(href),
            path.display()
        )));
    }
    Ok((meta.len(), crate::tree::mtime_ns(&meta)))
}

/// Copies the local asset `src` to `dest` (a copy, never a hard link: the
/// cache's content must not change when the catalog's file is edited in
/// place), refusing more than `max_size` bytes. Returns the bytes copied.
pub(crate) async fn copy_asset(
    ctx: &Ctx,
    href: &str,
    src: &Path,
    dest: &Path,
    max_size: Option<u64>,
) -> Result<u64, SourceError> {
    let (size, _) = stamp(ctx, href, src)?;
    if let Some(max) = max_size
        && size > max
    {
        return Err(ctx.failed(format!(
            "{}: {size} bytes is more than max_size {max}",
            src.display()
        )));
    }
    let n = tokio::fs::copy(src, dest).await.map_err(|e| {
        ctx.failed(format!(
            "cannot copy {} to {}: {e}",
            src.display(),
            dest.display()
        ))
    })?;
    match max_size {
        Some(max) if n > max => {
            Err(ctx.failed(format!("{}: more than max_size {max} bytes", src.display())))
        }
        _ => Ok(n),
    }
}
