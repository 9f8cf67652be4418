//! A STAC API (<https://github.com/radiantearth/stac-api-spec>) over the
//! fixture catalog `<root>/stac/`: `catalog.json`, and per collection
//! `collections/<id>/collection.json` with its items
//! `collections/<id>/items/*.json` (assets as small files beside them).
//!
//! - `GET /stac`: the landing page (links to `search` and `collections`);
//! - `GET /stac/search?collections=&bbox=&datetime=&limit=&token=`: an
//!   ItemCollection of the items matching every given filter (collection
//!   ids; bbox intersection; datetime instant or interval `a/b`, `../b`,
//!   `a/..`, against the item's `datetime` or `start_datetime`/
//!   `end_datetime`), `limit` (default 10) per page with a `next` link;
//!   items carry an absolute `self` link and absolute asset hrefs;
//! - `GET /stac/collections` and `/stac/collections/<id>`;
//! - any other path: the catalog's files as they are (a static catalog).

use std::path::{Component, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

type Shared = Arc<PathBuf>;

/// The routes of this module, nested by [`crate::router`].
pub fn router(config: &crate::Config) -> axum::Router {
    let dir: Shared = Arc::new(config.root.join("stac"));
    axum::Router::new()
        .route("/", get(landing))
        .route("/search", get(search))
        .route("/collections", get(collections))
        .route("/collections/{id}", get(collection))
        .route("/{*path}", get(file))
        .with_state(dir)
}

fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/stac")
}

fn bad(text: &str) -> Response {
    (StatusCode::BAD_REQUEST, text.to_owned()).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

async fn landing(headers: HeaderMap) -> Response {
    let b = base(&headers);
    Json(json!({
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "twinflow-devserver",
        "description": "twinflow's test STAC API",
        "conformsTo": [
            "https://api.stacspec.org/v1.0.0/core",
            "https://api.stacspec.org/v1.0.0/item-search",
            "https://api.stacspec.org/v1.0.0/collections"
        ],
        "links": [
            {"rel": "self", "href": format!("{b}"), "type": "application/json"},
            {"rel": "root", "href": format!("{b}"), "type": "application/json"},
            {"rel": "data", "href": format!("{b}/collections"), "type": "application/json"},
            {"rel": "search", "href": format!("{b}/search"), "type": "application/geo+json", "method": "GET"}
        ]
    }))
    .into_response()
}

fn read_json(path: &std::path::Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn collection_ids(dir: &std::path::Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("collections"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("collection.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

async fn collections(State(dir): State<Shared>) -> Response {
    let list: Vec<Value> = collection_ids(&dir)
        .iter()
        .filter_map(|id| read_json(&dir.join("collections").join(id).join("collection.json")))
        .collect();
    Json(json!({"collections": list, "links": []})).into_response()
}

async fn collection(State(dir): State<Shared>, Path(id): Path<String>) -> Response {
    if !collection_ids(&dir).contains(&id) {
        return not_found();
    }
    match read_json(&dir.join("collections").join(&id).join("collection.json")) {
        Some(c) => Json(c).into_response(),
        None => not_found(),
    }
}

/// Every item of the catalog: (collection, file name, item).
fn items(dir: &std::path::Path) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for c in collection_ids(dir) {
        let idir = dir.join("collections").join(&c).join("items");
        let mut files: Vec<String> = std::fs::read_dir(&idir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        files.sort();
        for f in files {
            if let Some(item) = read_json(&idir.join(&f)) {
                out.push((c.clone(), f, item));
            }
        }
    }
    out
}

type Interval = (Option<jiff::Timestamp>, Option<jiff::Timestamp>);

fn parse_interval(text: &str) -> Result<Interval, String> {
    let ts = |s: &str| -> Result<Option<jiff::Timestamp>, String> {
        if s.is_empty() || s == ".." {
            Ok(None)
        } else {
            s.parse()
                .map(Some)
                .map_err(|e| format!("bad datetime `{s}`: {e}"))
        }
    };
    match text.split_once('/') {
        Some((a, b)) => Ok((ts(a)?, ts(b)?)),
        None => {
            let t = ts(text)?;
            Ok((t, t))
        }
    }
}

fn item_interval(item: &Value) -> Interval {
    let p = &item["properties"];
    let get = |k: &str| {
        p[k].as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    };
    match get("datetime") {
        Some(t) => (Some(t), Some(t)),
        None => (get("start_datetime"), get("end_datetime")),
    }
}

fn parse_bbox(text: &str) -> Result<[f64; 4], String> {
    let n: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad bbox `{text}`"))?;
    match n.as_slice() {
        [a, b, c, d] => Ok([*a, *b, *c, *d]),
        [a, b, _, d, e, _] => Ok([*a, *b, *d, *e]),
        _ => Err(format!("bad bbox `{text}`: 4 or 6 numbers")),
    }
}

/// The item as search returns it: absolute `self` link and asset hrefs.
fn absolute(mut item: Value, b: &str, collection: &str, file: &str) -> Value {
    let at = format!("{b}/collections/{collection}/items/{file}");
    let Ok(at_url) = url::Url::parse(&at) else {
        return item;
    };
    if let Some(assets) = item["assets"].as_object_mut() {
        for a in assets.values_mut() {
            if let Some(h) = a["href"].as_str()
                && let Ok(u) = at_url.join(h)
            {
                a["href"] = json!(u.as_str());
            }
        }
    }
    let mut links: Vec<Value> = item["links"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l["rel"] != "self")
        .collect();
    links.push(json!({"rel": "self", "href": at, "type": "application/geo+json"}));
    item["links"] = json!(links);
    item
}

async fn search(
    State(dir): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let wanted: Option<Vec<&str>> = param("collections").map(|c| c.split(',').collect());
    let bbox = match param("bbox").map(parse_bbox).transpose() {
        Ok(b) => b,
        Err(e) => return bad(&e),
    };
    let interval = match param("datetime").map(parse_interval).transpose() {
        Ok(i) => i,
        Err(e) => return bad(&e),
    };
    let limit: usize = match param("limit").map(str::parse).transpose() {
        Ok(l) => l.unwrap_or(10).clamp(1, 10_000),
        Err(_) => return bad("bad limit"),
    };
    let offset: usize = param("token").and_then(|t| t.parse().ok()).unwrap_or(0);
    let matching: Vec<(String, String, Value)> = items(&dir)
        .into_iter()
        .filter(|(c, _, _)| wanted.as_ref().is_none_or(|w| w.contains(&c.as_str())))
        .filter(|(_, _, item)| {
            let Some(q) = bbox else { return true };
            let b: Vec<f64> = item["bbox"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let b = match b.as_slice() {
                [a, b2, c, d] => [*a, *b2, *c, *d],
                [a, b2, _, d, e, _] => [*a, *b2, *d, *e],
                _ => return false,
            };
            b[0] <= q[2] && q[0] <= b[2] && b[1] <= q[3] && q[1] <= b[3]
        })
        .filter(|(_, _, item)| {
            let Some((qa, qb)) = interval else {
                return true;
            };
            let (ia, ib) = item_interval(item);
            if ia.is_none() && ib.is_none() {
                return false;
            }
            let before_end = match (ia, qb) {
                (Some(s), Some(e)) => s <= e,
                _ => true,
            };
            let after_start = match (ib, qa) {
                (Some(e), Some(s)) => e >= s,
                _ => true,
            };
            before_end && after_start
        })
        .collect();
    let b = base(&headers);
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(c, f, item)| absolute(item.clone(), &b, c, f))
        .collect();
    let mut links = vec![json!({"rel": "root", "href": b, "type": "application/json"})];
    if offset + limit < matching.len() {
        let mut next: Vec<(String, String)> =
            q.iter().filter(|(k, _)| k != "token").cloned().collect();
        next.push(("token".into(), (offset + limit).to_string()));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next)
            .finish();
        links.push(json!({
            "rel": "next",
            "href": format!("{b}/search?{query}"),
            "type": "application/geo+json",
            "method": "GET"
        }));
    }
    Json(json!({
        "type": "FeatureCollection",
        "features": page,
        "links": links,
        "numberMatched": matching.len(),
        "numberReturned": page.len(),
    }))
    .into_response()
}

async fn file(State(dir): State<Shared>, Path(path): Path<String>) -> Response {
    let rel = std::path::Path::new(&path);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return not_found();
    }
    let full = dir.join(rel);
    let Ok(bytes) = tokio::fs::read(&full).await else {
        return not_found();
    };
    let kind = if path.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    ([(header::CONTENT_TYPE, kind)], bytes).into_response()
}
