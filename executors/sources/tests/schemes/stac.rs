//! `stac+http://` against the devserver's STAC API and static catalog.

use crate::support::{devserver, fetch, spec, validators};
use twinflow_core::{SourceScheme, SourceSpec};
use twinflow_sources::{Fetched, SourceError, StacFetcher};

fn stac_spec(url: &str) -> SourceSpec {
    spec("ens", url, SourceScheme::Stac, true)
}

fn ids(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn search_follows_next_links_and_fetches_assets_beside_item_json() {
    let base = devserver().await;
    let url = format!(
        "stac+{base}/stac/search?collections=climate-ensemble&bbox=20,60,25,65\
         &datetime=2021-01-01T00:00:00Z/2022-12-31T23:59:59Z&limit=1"
    );
    let s = stac_spec(&url);
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, None).await;
    let got = got.expect("fetched");
    assert_eq!(
        ids(&dir),
        ["tas-r1-2021", "tas-r1-2022", "tas-r2-2021", "tas-r2-2022"],
        "four pages of one item"
    );
    assert_eq!(
        ids(&dir.join("tas-r1-2021")),
        ["item.json", "summary.csv", "tas.nc"]
    );
    let nc = std::fs::read(dir.join("tas-r1-2021/tas.nc")).expect("asset");
    assert!(nc.starts_with(b"CDF\x01"));
    let item: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("tas-r2-2022/item.json")).expect("item.json"),
    )
    .expect("json");
    assert_eq!(item["id"], "tas-r2-2022");

    let tmp2 = tempfile::tempdir().expect("tmp");
    let (_, again) = fetch(&StacFetcher::new(), &s, &tmp2, Some(&validators(&got))).await;
    assert_eq!(again.expect("revalidated"), Fetched::NotModified);
}

#[tokio::test]
async fn assets_and_max_items_options() {
    let base = devserver().await;
    let mut s = stac_spec(&format!(
        "stac+{base}/stac/search?collections=climate-ensemble"
    ));
    s.options.assets = vec!["tas".into()];
    s.options.max_items = Some(2);
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, None).await;
    got.expect("fetched");
    let items = ids(&dir);
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(ids(&dir.join(&items[0])), ["item.json", "tas.nc"]);

    s.options.assets = vec!["nope".into()];
    let tmp = tempfile::tempdir().expect("tmp");
    let e = fetch(&StacFetcher::new(), &s, &tmp, None)
        .await
        .1
        .expect_err("no such asset");
    assert!(e.to_string().contains("no asset `nope`"), "{e}");
}

#[tokio::test]
async fn static_catalog_and_collection_are_walked() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = stac_spec(&format!("stac+{base}/stac/catalog.json"));
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, None).await;
    got.expect("fetched");
    assert_eq!(ids(&dir).len(), 8);
    assert!(dir.join("ndvi-03/ndvi.csv").is_file());

    let tmp = tempfile::tempdir().expect("tmp");
    let s = stac_spec(&format!(
        "stac+{base}/stac/collections/coastal-peru/collection.json"
    ));
    let (dir, got) = fetch(&StacFetcher::new(), &s, &tmp, None).await;
    got.expect("fetched");
    assert_eq!(ids(&dir), ["ndvi-03", "ndvi-09"]);
}

#[tokio::test]
async fn no_items_is_absent_and_404_names_the_source() {
    let base = devserver().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = stac_spec(&format!("stac+{base}/stac/search?bbox=-150,-40,-140,-30"));
    let e = fetch(&StacFetcher::new(), &s, &tmp, None)
        .await
        .1
        .expect_err("nothing there");
    assert!(matches!(e, SourceError::Absent { .. }), "{e}");
    assert!(
        e.to_string().contains("stac search matched no items"),
        "{e}"
    );
    assert!(e.to_string().contains("`ens`"), "{e}");

    let s = stac_spec(&format!("stac+{base}/stac/missing/catalog.json"));
    let e = fetch(&StacFetcher::new(), &s, &tmp, None)
        .await
        .1
        .expect_err("404");
    assert!(matches!(e, SourceError::Absent { .. }), "{e}");
    assert!(e.to_string().contains("404"), "{e}");
}

/// A catalog of the test's own (served by a devserver over a temp root).
async fn own_catalog(item: serde_json::Value) -> (String, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(root.path().join("stac")).expect("mkdir");
    std::fs::write(
        root.path().join("stac/item.json"),
        serde_json::to_string(&item).expect("json"),
    )
    .expect("write");
    let running = twinflow_devserver::start(
        twinflow_devserver::Config {
            root: root.path().to_owned(),
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("devserver");
    (running.base_url(), root)
}

#[tokio::test]
async fn file_hrefs_and_escaping_ids_are_refused() {
    let (base, _root) = own_catalog(serde_json::json!({
        "type": "Feature", "id": "x", "properties": {"datetime": "2020-01-01T00:00:00Z"},
        "links": [], "assets": {"secret": {"href": "file:///etc/passwd"}}
    }))
    .await;
    let tmp = tempfile::tempdir().expect("tmp");
    let s = stac_spec(&format!("stac+{base}/stac/item.json"));
    let e = fetch(&StacFetcher::new(), &s, &tmp, None)
        .await
        .1
        .expect_err("file: refused");
    assert!(e.to_string().contains("only http(s)"), "{e}");

    let (base, _root) = own_catalog(serde_json::json!({
        "type": "Feature", "id": "..", "properties": {}, "links": [], "assets": {}
    }))
    .await;
    let s = stac_spec(&format!("stac+{base}/stac/item.json"));
    let e = fetch(&StacFetcher::new(), &s, &tmp, None)
        .await
        .1
        .expect_err("bad id");
    assert!(e.to_string().contains("refusing item id"), "{e}");
}
