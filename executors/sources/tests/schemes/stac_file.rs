//! `stac+file:` static catalogs on this machine: relative local assets
//! copied beside each item's JSON, hrefs that lead out of the catalog's
//! directory refused, a changed asset changing the validators, an absent
//! catalog, and local assets mixed with http ones the devserver serves.

use crate::support::{devserver, fetch, spec, validators};
use serde_json::{Value, json};
use std::path::Path;
use twinflow_core::{SourceScheme, SourceSpec};
use twinflow_sources::{Cache, Fetched, Policy, Request, Resolution, SourceError, StacFetcher};

fn write_json(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, serde_json::to_string_pretty(value).expect("json")).expect("write");
}

fn item(id: &str, assets: Value) -> Value {
    json!({
        "type": "Feature", "stac_version": "1.0.0", "id": id,
        "properties": {"datetime": "2030-01-01T00:00:00Z"},
        "geometry": null,
        "links": [
            {"rel": "self", "href": format!("https://example.org/stac/{id}.json")},
            {"rel": "root", "href": "../../catalog.json"}
        ],
        "assets": assets
    })
}

/// `<root>/catalog.json` -> `collection/collection.json` -> one item per
/// `(id, assets)` at `collection/<id>/<id>.json`.
fn catalog(root: &Path, items: &[(&str, Value)]) {
    write_json(
        &root.join("catalog.json"),
        &json!({"type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "d",
                "links": [{"rel": "child", "href": "./collection/collection.json"}]}),
    );
    let links: Vec<Value> = items
        .iter()
        .map(|(id, _)| json!({"rel": "item", "href": format!("./{id}/{id}.json")}))
        .collect();
    write_json(
        &root.join("collection/collection.json"),
        &json!({"type": "Collection", "stac_version": "1.0.0", "id": "col",
                "description": "d", "license": "CC0-1.0", "links": links}),
    );
    for (id, assets) in items {
        write_json(
            &root.join(format!("collection/{id}/{id}.json")),
            &item(id, assets.clone()),
        );
    }
}

fn file_url(path: &Path) -> String {
    format!("stac+file://{}", path.display())
}

fn stac_spec(url: &str) -> SourceSpec {
    spec("forcing", url, SourceScheme::Stac, true)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn a_static_catalog_of_relative_local_assets_is_copied_beside_each_item() {
    let cat = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(cat.path().join("data")).expect("mkdir");
    std::fs::write(cat.path().join("data/shared.csv"), "sst\n1\n").expect("write");
    catalog(
        cat.path(),
        &[
            ("m01", json!({"forcing": {"href": "./forcing.csv"}})),
            (
                "m02",
                json!({"forcing": {"href": "forcing.csv"},
                       "extra": {"href": "../../data/shared.csv"}}),
            ),
        ],
    );
    std::fs::write(cat.path().join("collection/m01/forcing.csv"), "sst\n10\n").expect("write");
    std::fs::write(cat.path().join("collection/m02/forcing.csv"), "sst\n20\n").expect("write");

    let mut s = stac_spec(&file_url(&cat.path().join("catalog.json")));
    s.options.assets = vec!["forcing".into()];
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, None).await;
    let got = got.expect("fetched");
    assert_eq!(read(&dir.join("m01/forcing.csv")), "sst\n10\n");
    assert_eq!(read(&dir.join("m02/forcing.csv")), "sst\n20\n");
    assert!(!dir.join("m02/extra.csv").exists(), "only `assets:` keys");
    let kept: Value = serde_json::from_str(&read(&dir.join("m01/item.json"))).expect("json");
    assert_eq!(kept["id"], "m01");
    match &got {
        Fetched::Content { content_url, .. } => {
            assert!(content_url.starts_with("file:///"), "{content_url}");
            assert!(content_url.ends_with("/catalog.json"), "{content_url}");
        }
        Fetched::NotModified => panic!("content expected"),
    }
    // A copy, not a link: editing the catalog's file leaves the fetched one.
    std::fs::write(cat.path().join("collection/m01/forcing.csv"), "sst\n99\n").expect("write");
    assert_eq!(read(&dir.join("m01/forcing.csv")), "sst\n10\n");

    // All assets, one of them up and across the tree (still inside it).
    s.options.assets = vec![];
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, None).await;
    got.expect("fetched");
    assert_eq!(read(&dir.join("m02/extra.csv")), "sst\n1\n");

    // A collection as the root: its directory is the boundary, so the
    // shared asset above it is refused, and the rest is fetched.
    let mut s = stac_spec(&file_url(&cat.path().join("collection/collection.json")));
    let tmp = tempfile::tempdir().expect("tmp");
    let e = fetch(&StacFetcher::new(), &s, &tmp, None)
        .await
        .1
        .expect_err("outside the collection's directory");
    assert!(
        e.to_string()
            .contains("refusing href `../../data/shared.csv`"),
        "{e}"
    );
    s.options.assets = vec!["forcing".into()];
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, None).await;
    got.expect("fetched from the collection");
    assert!(dir.join("m02/forcing.csv").is_file());
}

async fn refused(root: &Path, assets: Value) -> String {
    catalog(root, &[("m01", assets)]);
    let s = stac_spec(&file_url(&root.join("catalog.json")));
    let tmp = tempfile::tempdir().expect("tmp");
    let e = fetch(&StacFetcher::new(), &s, &tmp, None)
        .await
        .1
        .expect_err("refused");
    assert!(matches!(e, SourceError::Failed { .. }), "{e}");
    e.to_string()
}

#[tokio::test]
async fn hrefs_that_lead_out_of_the_catalog_directory_are_refused() {
    let outer = tempfile::tempdir().expect("tmp");
    std::fs::write(outer.path().join("secret.csv"), "secret\n").expect("write");
    let root = outer.path().join("cat");

    let e = refused(&root, json!({"a": {"href": "../../../secret.csv"}})).await;
    assert!(e.contains("refusing href `../../../secret.csv`"), "{e}");
    assert!(e.contains("leads out of the catalog's directory"), "{e}");

    let abs = format!("file://{}", outer.path().join("secret.csv").display());
    let e = refused(&root, json!({"a": {"href": abs}})).await;
    assert!(e.contains(&format!("refusing href `{abs}`")), "{e}");

    let e = refused(&root, json!({"a": {"href": "/etc/passwd"}})).await;
    assert!(e.contains("refusing href `/etc/passwd`"), "{e}");

    // A symbolic link inside the tree that leads out of it.
    std::os::unix::fs::symlink(
        outer.path().join("secret.csv"),
        root.join("collection/m01/link.csv"),
    )
    .expect("symlink");
    let e = refused(&root, json!({"a": {"href": "link.csv"}})).await;
    assert!(e.contains("refusing href `link.csv`"), "{e}");

    // A link of the catalog itself, and a scheme neither file: nor http.
    write_json(
        &outer.path().join("evil/catalog.json"),
        &json!({"type": "Catalog", "id": "e", "links": [{"rel": "child", "href": "../cat/catalog.json"}]}),
    );
    let s = stac_spec(&file_url(&outer.path().join("evil/catalog.json")));
    let tmp = tempfile::tempdir().expect("tmp");
    let e = fetch(&StacFetcher::new(), &s, &tmp, None)
        .await
        .1
        .expect_err("refused");
    assert!(
        e.to_string()
            .contains("refusing href `../cat/catalog.json`"),
        "{e}"
    );
    let e = refused(&root, json!({"a": {"href": "s3://bucket/key"}})).await;
    assert!(e.contains("not s3:"), "{e}");
}

#[tokio::test]
async fn a_changed_local_asset_changes_the_validators_and_refresh_refetches_only_then() {
    let cat = tempfile::tempdir().expect("tmp");
    catalog(
        cat.path(),
        &[("m01", json!({"forcing": {"href": "forcing.csv"}}))],
    );
    let asset = cat.path().join("collection/m01/forcing.csv");
    std::fs::write(&asset, "sst\n10\n").expect("write");
    let mut s = stac_spec(&file_url(&cat.path().join("catalog.json")));
    s.refresh_seconds = Some(0);

    let tmp = tempfile::tempdir().expect("tmp");
    let first = validators(
        &fetch(&StacFetcher::new(), &s, &tmp, None)
            .await
            .1
            .expect("fetched"),
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let same = fetch(&StacFetcher::new(), &s, &tmp, Some(&first)).await.1;
    assert_eq!(same.expect("revalidated"), Fetched::NotModified);

    // Same size, new content and mtime.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&asset, "sst\n11\n").expect("write");
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, Some(&first)).await;
    let second = validators(&got.expect("changed"));
    assert_ne!(first, second);
    assert_eq!(read(&dir.join("m01/forcing.csv")), "sst\n11\n");

    // Through the cache with `refresh`: unchanged is a revalidation, a
    // changed asset a fetch.
    let state = tempfile::tempdir().expect("tmp");
    let cache = Cache::new(state.path());
    let req = Request {
        spec: &s,
        url: &s.url,
    };
    let resolve = || async {
        match cache
            .resolve(req, &StacFetcher::new(), &Policy::Current)
            .await
            .expect("resolved")
        {
            Resolution::Ready { entry, fetched } => (entry, fetched),
            Resolution::NotYet(why) => panic!("not yet: {why}"),
        }
    };
    let (a, fetched) = resolve().await;
    assert!(fetched);
    let (b, fetched) = resolve().await;
    assert!(!fetched, "unchanged: not fetched again");
    assert_eq!(a.sha256, b.sha256);
    std::fs::write(&asset, "sst\n12\n").expect("write");
    let (c, fetched) = resolve().await;
    assert!(fetched, "changed: fetched");
    assert_ne!(a.sha256, c.sha256);
}

#[tokio::test]
async fn an_absent_catalog_is_absent() {
    let cat = tempfile::tempdir().expect("tmp");
    let tmp = tempfile::tempdir().expect("tmp");
    for missing in ["catalog.json", "not-yet/catalog.json"] {
        let s = stac_spec(&file_url(&cat.path().join(missing)));
        let e = fetch(&StacFetcher::new(), &s, &tmp, None)
            .await
            .1
            .expect_err("absent");
        assert!(matches!(e, SourceError::Absent { .. }), "{missing}: {e}");
        assert!(e.to_string().contains("`forcing`"), "{e}");
        assert!(e.to_string().contains(missing), "{e}");
    }
}

#[tokio::test]
async fn local_and_http_assets_mix_in_one_local_catalog() {
    let base = devserver().await;
    let cat = tempfile::tempdir().expect("tmp");
    let remote = format!("{base}/stac/collections/climate-ensemble/assets/tas-r1-2021.nc");
    catalog(
        cat.path(),
        &[(
            "m01",
            json!({"forcing": {"href": "forcing.csv"}, "tas": {"href": remote}}),
        )],
    );
    std::fs::write(cat.path().join("collection/m01/forcing.csv"), "sst\n10\n").expect("write");
    let s = stac_spec(&file_url(&cat.path().join("catalog.json")));
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, None).await;
    got.expect("fetched");
    assert_eq!(read(&dir.join("m01/forcing.csv")), "sst\n10\n");
    let nc = std::fs::read(dir.join("m01/tas.nc")).expect("http asset");
    assert!(nc.starts_with(b"CDF\x01"));
}
