//! `stac+https://…` sources: a STAC API item search
//! (`…/search?collections=…&bbox=…&datetime=…`, its `next` links followed)
//! or a static catalog (`…/catalog.json`, `…/collection.json`, or one
//! item's JSON: its `child` and `item` links walked). Each matching item
//! (at most `max_items`, default 1,000) becomes `<item-id>/item.json` and
//! its assets (`assets:` keys, empty: all) `<item-id>/<key><ext>`, fetched
//! over http(s) with hrefs resolved against the item's URL (its `self`
//! link, else where it was read). The validator is a digest of the item
//! ids, their `updated` (else `datetime`) and asset hrefs.
//!
//! `stac+file:///…/catalog.json`: a static catalog on this machine
//! ([`crate::stac_file`]). Its documents are read from disk and their
//! hrefs resolve against the document's own file URL (`self` ignored);
//! `file:` links and assets must stay inside the root catalog's directory
//! and are copied, http(s) assets are downloaded. Its validator also holds
//! each local item's JSON and each local asset's size and mtime. A
//! document read over http(s) never has a `file:` href followed.
//!
//! The JSON shapes are this module's own few serde types rather than the
//! `stac` crate's: `stac` 0.17 requires `cql2` (a pest parser, geozero,
//! a JSON-schema validator), `geojson` and `stac-derive`, none of which the
//! workspace has, to read four fields.

use std::collections::{HashSet, VecDeque};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::remote::{self, Ctx, safe_segment, scrub_url, sha256_hex};
use crate::stac_file::{self, LocalRoot};
use crate::{Fetched, Fetcher, Request, SourceError, Validators};

/// The largest STAC JSON document read.
const DOC_LIMIT: u64 = 64 << 20;
/// Items fetched when `max_items` is not set.
const DEFAULT_MAX_ITEMS: u32 = 1000;
/// Pages or catalog documents read at most (a guard against link loops).
const MAX_DOCS: usize = 100_000;

#[derive(Debug, Deserialize)]
struct Link {
    rel: String,
    href: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    body: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Asset {
    href: String,
}

#[derive(Debug, Deserialize)]
struct Item {
    id: String,
    #[serde(default)]
    properties: serde_json::Map<String, Value>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    assets: serde_json::Map<String, Value>,
}

/// An item found, with the raw JSON kept and the URL its hrefs resolve
/// against.
#[derive(Debug)]
struct Found {
    item: Item,
    raw: Value,
    base: Url,
    /// Read from disk (a `stac+file:` catalog's item).
    local: bool,
}

/// Fetches `stac+https://` (and `stac+http://`, `stac+file:`) sources.
#[derive(Debug, Clone, Default)]
pub struct StacFetcher;

impl StacFetcher {
    /// A fetcher.
    pub fn new() -> Self {
        StacFetcher
    }
}

fn links(doc: &Value) -> Vec<Link> {
    doc.get("links")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

/// `href` resolved against `base`: http(s), or (`from_disk`: the root of
/// the local catalog whose document holds the href) a `file:` URL inside
/// the root's directory.
fn resolve(
    ctx: &Ctx,
    from_disk: Option<&LocalRoot>,
    base: &Url,
    href: &str,
) -> Result<Url, SourceError> {
    let url = base
        .join(href)
        .map_err(|e| ctx.failed(format!("bad href `{}`: {e}", scrub_url(href))))?;
    match (url.scheme(), from_disk) {
        ("http" | "https", _) => Ok(url),
        ("file", Some(root)) => {
            root.inside(ctx, href, &url)?;
            Ok(url)
        }
        (s, Some(_)) => Err(ctx.failed(format!(
            "refusing href `{}`: a local catalog's links are file: or http(s), not {s}:",
            scrub_url(href)
        ))),
        (s, None) => Err(ctx.failed(format!(
            "refusing href `{}`: only http(s) links are fetched, not {s}:",
            scrub_url(href)
        ))),
    }
}

/// Adds the item `raw` read at `at`, unless already seen.
fn take_item(
    ctx: &Ctx,
    raw: Value,
    at: &Url,
    seen: &mut HashSet<String>,
    out: &mut Vec<Found>,
) -> Result<(), SourceError> {
    let item: Item = serde_json::from_value(raw.clone())
        .map_err(|e| ctx.failed(format!("{}: not a STAC item: {e}", scrub_url(at.as_str()))))?;
    if !seen.insert(item.id.clone()) {
        return Ok(());
    }
    let local = at.scheme() == "file";
    let base = match item.links.iter().find(|l| l.rel == "self") {
        Some(l) if !local => at.join(&l.href).unwrap_or_else(|_| at.clone()),
        _ => at.clone(),
    };
    out.push(Found {
        item,
        raw,
        base,
        local,
    });
    Ok(())
}

/// Pages of an item search, `next` links followed.
async fn search(
    ctx: &Ctx,
    http: &reqwest::Client,
    start: Url,
    max: usize,
) -> Result<Vec<Found>, SourceError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut pages = HashSet::new();
    let mut next: Option<(Url, Option<Value>)> = Some((start, None));
    while let Some((url, body)) = next.take() {
        if out.len() >= max
            || pages.len() >= MAX_DOCS
            || !pages.insert((url.clone(), body.clone().map(|b| b.to_string())))
        {
            break;
        }
        let page = match &body {
            None => {
                remote::get_json(ctx, http, url.as_str(), DOC_LIMIT)
                    .await?
                    .0
            }
            Some(b) => {
                let shown = scrub_url(url.as_str());
                let resp = remote::send(ctx, &format!("POST {shown}"), || {
                    http.post(url.as_str())
                        .header("content-type", "application/json")
                        .body(b.to_string())
                })
                .await?;
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| ctx.transient(format!("POST {shown}: {e}")))?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| ctx.failed(format!("POST {shown}: not JSON: {e}")))?
            }
        };
        let Some(features) = page.get("features").and_then(Value::as_array) else {
            return Err(ctx.failed(format!(
                "{}: not a STAC ItemCollection (no `features`)",
                scrub_url(url.as_str())
            )));
        };
        for f in features {
            if out.len() >= max {
                break;
            }
            take_item(ctx, f.clone(), &url, &mut seen, &mut out)?;
        }
        if let Some(l) = links(&page).into_iter().find(|l| l.rel == "next") {
            let to = resolve(ctx, None, &url, &l.href)?;
            let post = l.method.is_some_and(|m| m.eq_ignore_ascii_case("POST"));
            next = Some((
                to,
                if post {
                    Some(l.body.unwrap_or(Value::Null))
                } else {
                    None
                },
            ));
        }
    }
    Ok(out)
}

/// A static catalog, collection or item: `child` and `item` links walked
/// breadth first. `root`: the catalog is local (`file:` documents are
/// read from disk).
async fn walk(
    ctx: &Ctx,
    http: &reqwest::Client,
    root: Option<&LocalRoot>,
    start: Url,
    max: usize,
) -> Result<Vec<Found>, SourceError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut visited = HashSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(url) = queue.pop_front() {
        if out.len() >= max || visited.len() >= MAX_DOCS || !visited.insert(url.clone()) {
            continue;
        }
        let from_disk = root.filter(|_| url.scheme() == "file");
        let doc = match from_disk {
            Some(r) => r.read_json(ctx, &url, DOC_LIMIT).await?,
            None => {
                remote::get_json(ctx, http, url.as_str(), DOC_LIMIT)
                    .await?
                    .0
            }
        };
        match doc.get("type").and_then(Value::as_str) {
            Some("Feature") => take_item(ctx, doc, &url, &mut seen, &mut out)?,
            Some("FeatureCollection") => {
                for f in doc
                    .get("features")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if out.len() < max {
                        take_item(ctx, f.clone(), &url, &mut seen, &mut out)?;
                    }
                }
            }
            Some("Catalog" | "Collection") => {
                for l in links(&doc) {
                    if l.rel == "child" || l.rel == "item" {
                        queue.push_back(resolve(ctx, from_disk, &url, &l.href)?);
                    }
                }
            }
            other => {
                return Err(ctx.failed(format!(
                    "{}: not a STAC catalog, collection or item (type {})",
                    scrub_url(url.as_str()),
                    other.unwrap_or("missing")
                )));
            }
        }
    }
    Ok(out)
}

/// The assets of `item` to fetch: `(key, href)`.
fn selected(ctx: &Ctx, item: &Item, want: &[String]) -> Result<Vec<(String, String)>, SourceError> {
    let mut out = Vec::new();
    let keys: Vec<&String> = if want.is_empty() {
        item.assets.keys().collect()
    } else {
        want.iter().collect()
    };
    for key in keys {
        let Some(raw) = item.assets.get(key) else {
            return Err(ctx.failed(format!("item `{}` has no asset `{key}`", item.id)));
        };
        let asset: Asset = serde_json::from_value(raw.clone())
            .map_err(|e| ctx.failed(format!("item `{}`: asset `{key}`: {e}", item.id)))?;
        if !safe_segment(key) {
            return Err(ctx.failed(format!(
                "item `{}`: refusing asset key `{key}` as a file name",
                item.id
            )));
        }
        out.push((key.clone(), asset.href));
    }
    Ok(out)
}

/// `.tif` of `…/x.tif`: the extension of the URL's last path segment.
fn extension(url: &Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 8
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!(".{ext}")
        }
        _ => String::new(),
    }
}

#[async_trait::async_trait]
impl Fetcher for StacFetcher {
    async fn fetch(
        &self,
        request: Request<'_>,
        staging: &Path,
        known: Option<&Validators>,
    ) -> Result<Fetched, SourceError> {
        let spec = request.spec;
        let ctx = Ctx::new(&spec.name, request.url);
        let Some(inner) = request.url.strip_prefix("stac+") else {
            return Err(ctx.failed("not a stac URL: write stac+https://…"));
        };
        let start = Url::parse(inner).map_err(|e| ctx.failed(format!("malformed URL: {e}")))?;
        let root = match start.scheme() {
            "http" | "https" => None,
            "file" => Some(LocalRoot::new(&ctx, &start)?),
            _ => {
                return Err(ctx.failed(
                    "a stac URL is stac+https:// (or stac+http://, or stac+file: for a local catalog)",
                ));
            }
        };
        let http = remote::client(&ctx)?;
        let max = spec.options.max_items.unwrap_or(DEFAULT_MAX_ITEMS) as usize;
        let found = if start.path().ends_with(".json") {
            walk(&ctx, &http, root.as_ref(), start, max).await?
        } else if root.is_some() {
            return Err(ctx.failed(
                "a stac+file: URL names the JSON file of a static catalog, collection or item",
            ));
        } else {
            search(&ctx, &http, start, max).await?
        };
        if found.is_empty() {
            return Err(ctx.absent("stac search matched no items"));
        }
        let mut plan = Vec::new();
        let mut digest_text = String::new();
        for f in &found {
            if !safe_segment(&f.item.id) {
                return Err(ctx.failed(format!(
                    "refusing item id `{}` as a directory name",
                    f.item.id
                )));
            }
            let from_disk = root.as_ref().filter(|_| f.local);
            let stamp = ["updated", "datetime", "end_datetime"]
                .iter()
                .find_map(|k| f.item.properties.get(*k).and_then(Value::as_str))
                .unwrap_or("");
            digest_text.push_str(&format!("{}\0{stamp}", f.item.id));
            if from_disk.is_some() {
                digest_text.push_str(&format!("\0{}", sha256_hex(f.raw.to_string().as_bytes())));
            }
            let mut assets = Vec::new();
            for (k, h) in selected(&ctx, &f.item, &spec.options.assets)? {
                digest_text.push_str(&format!("\0{k}={h}"));
                let url = resolve(&ctx, from_disk, &f.base, &h)?;
                let local = match from_disk {
                    Some(r) if url.scheme() == "file" => {
                        let path = r.inside(&ctx, &h, &url)?;
                        let (size, mtime) = stac_file::stamp(&ctx, &h, &path)?;
                        digest_text.push_str(&format!("\0{size}\0{mtime}"));
                        Some(path)
                    }
                    _ => None,
                };
                assets.push((k, h, url, local));
            }
            digest_text.push('\n');
            plan.push((f, assets));
        }
        let etag = Some(format!(
            "stac-sha256:{}",
            sha256_hex(digest_text.as_bytes())
        ));
        if known.and_then(|k| k.etag.as_ref()) == etag.as_ref() {
            return Ok(Fetched::NotModified);
        }
        let mut budget = spec.options.max_size;
        for (f, assets) in plan {
            let dir = staging.join(&f.item.id);
            std::fs::create_dir_all(&dir)
                .map_err(|e| ctx.failed(format!("cannot create {}: {e}", dir.display())))?;
            let json = serde_json::to_vec_pretty(&f.raw)
                .map_err(|e| ctx.failed(format!("item `{}`: {e}", f.item.id)))?;
            std::fs::write(dir.join("item.json"), json)
                .map_err(|e| ctx.failed(format!("cannot write {}: {e}", dir.display())))?;
            for (key, href, url, local) in assets {
                let dest = dir.join(format!("{key}{}", extension(&url)));
                let n = match local {
                    Some(path) => stac_file::copy_asset(&ctx, &href, &path, &dest, budget).await?,
                    None => {
                        remote::download(&ctx, &http, url.as_str(), &dest, budget, None).await?
                    }
                };
                budget = budget.map(|b| b.saturating_sub(n));
            }
        }
        Ok(Fetched::Content {
            directory: true,
            validators: Validators {
                etag,
                last_modified: None,
            },
            content_url: scrub_url(inner),
            citation: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_extensions() {
        let u = |s: &str| Url::parse(s).expect("url");
        assert_eq!(extension(&u("http://h/a/b/tas.nc")), ".nc");
        assert_eq!(extension(&u("http://h/a/b/x.tif?sig=1")), ".tif");
        assert_eq!(extension(&u("http://h/a/b/noext")), "");
        assert_eq!(extension(&u("http://h/a/.hidden")), "");
    }
}
