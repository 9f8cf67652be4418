//! External sources end to end, through the `twinflow` binary on the local
//! executor, against twinflow-devserver started in this process (a real
//! HTTP server with ETags, conditional requests and per-path counters):
//! a source is fetched once and reused, a changed upstream file re-runs
//! exactly its consumers, a data trigger holds its consumers until the
//! file is published (and `status` shows it awaiting), and a missing or
//! corrupt source fails naming the source and its URL, losing nothing;
//! two runs the daemon carries at once fetch a shared source once.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

#[expect(dead_code, reason = "these tests need no daemon")]
mod common;

use common::{daemon, text, twinflow, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The devserver over `root`, alive as long as the returned runtime.
fn devserver(root: &Path) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let running = rt
        .block_on(twinflow_devserver::start(
            twinflow_devserver::Config {
                root: root.to_path_buf(),
            },
            "127.0.0.1:0".parse().expect("address"),
        ))
        .expect("devserver starts");
    (rt, running.base_url())
}

/// `GET /files/_stats/<path>` of the devserver.
fn stats(base: &str, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sf", &format!("{base}/files/_stats/{path}")])
        .output()
        .expect("curl runs");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// A test's setting: a temp dir whose `files/` the devserver serves, a
/// state directory `state/` beside it, and the workflow files written.
struct World {
    _rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    files: PathBuf,
    base: String,
    state: PathBuf,
}

impl World {
    /// Serves `files` (name, content) from a fresh `files/`.
    fn serving(files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("files");
        std::fs::create_dir(&root).expect("mkdir");
        for (name, content) in files {
            std::fs::write(root.join(name), content).expect("write");
        }
        let (rt, base) = devserver(&root);
        let state = dir.path().join("state");
        Self {
            _rt: rt,
            dir,
            files: root,
            base,
            state,
        }
    }

    /// Writes `yaml`, its `BASE` the server's URL, as `name` in the temp
    /// dir; its path.
    fn workflow(&self, name: &str, yaml: &str) -> String {
        let file = self.dir.path().join(name);
        std::fs::write(&file, yaml.replace("BASE", &self.base)).expect("write workflow");
        file.to_str().expect("utf-8").to_owned()
    }
}

fn status(state: &Path) -> serde_json::Value {
    let o = twinflow(state, &["status", "latest", "--json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

/// The latest run's directory.
fn run_dir(state: &Path) -> PathBuf {
    PathBuf::from(status(state)["run"]["run_dir"].as_str().expect("run_dir"))
}

/// The record of task `name` in `status --json` output `v`.
fn task<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} has no record: {v}"))
}

/// (task name, cached?) of the latest run.
fn cached(state: &Path) -> Vec<(String, bool)> {
    let v = status(state);
    let mut out: Vec<(String, bool)> = v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_owned(),
                !t["cached_from"].is_null(),
            )
        })
        .collect();
    out.sort();
    out
}

const REFRESHED: &str = r#"
version: 1
name: refreshed
sources:
  a: { url: "BASE/files/a.csv", refresh: 1s }
  b: { url: "BASE/files/b.csv", refresh: 1s }
steps:
  use-a:
    needs: { x: sources.a }
    run: cat ${{ inputs.x }} > ${{ outputs.o }}
    outputs: { o: o.txt }
  use-b:
    needs: { x: sources.b }
    run: cat ${{ inputs.x }} > ${{ outputs.o }}
    outputs: { o: o.txt }
"#;

#[test]
fn a_source_is_fetched_once_and_a_changed_upstream_reruns_exactly_its_consumers() {
    let w = World::serving(&[("a.csv", b"a,1\n"), ("b.csv", b"b,1\n")]);
    let (state, base) = (&w.state, &w.base);
    let wf = &w.workflow("w.yaml", REFRESHED);

    let first = twinflow(state, &["run", wf]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(stats(base, "a.csv")["gets"], 1, "fetched once");

    // Nothing changed: each source is revalidated (refresh: 1s) with its
    // ETag, which costs no body, and every consumer is reused.
    std::thread::sleep(Duration::from_millis(1100));
    let second = twinflow(state, &["run", wf]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let a = stats(base, "a.csv");
    assert_eq!(a["body_bytes"], 4, "a 304 sends no body again: {a}");
    assert!(a["conditional"].as_u64().unwrap_or(0) >= 1, "{a}");
    assert_eq!(
        cached(state),
        [
            ("sources.a".to_owned(), false),
            ("sources.b".to_owned(), false),
            ("use-a".to_owned(), true),
            ("use-b".to_owned(), true),
        ],
        "source tasks always ask the source cache; consumers are reused"
    );

    // a.csv changes upstream: only its consumer runs again.
    std::fs::write(w.files.join("a.csv"), "a,2\n").expect("write");
    std::thread::sleep(Duration::from_millis(1100));
    let third = twinflow(state, &["run", wf]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));
    let v = cached(state);
    assert!(v.contains(&("use-a".to_owned(), false)), "{v:?}");
    assert!(v.contains(&("use-b".to_owned(), true)), "{v:?}");
    let out =
        std::fs::read_to_string(run_dir(state).join("work/use-a/0/o.txt")).expect("use-a's output");
    assert_eq!(out, "a,2\n");
}

const NEVER: &str = r#"
version: 1
name: never
sources:
  a: { url: "BASE/files/a.csv" }
steps:
  use-a:
    needs: { x: sources.a }
    run: cat ${{ inputs.x }} > ${{ outputs.o }}
    outputs: { o: o.txt }
"#;

#[test]
fn with_refresh_never_a_second_run_asks_nothing_of_the_server() {
    let w = World::serving(&[("a.csv", b"a,1\n")]);
    let (state, base) = (&w.state, &w.base);
    let wf = &w.workflow("w.yaml", NEVER);
    for _ in 0..2 {
        let o = twinflow(state, &["run", wf]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    assert_eq!(stats(base, "a.csv")["requests"], 1, "one request in all");
    // The source's log says where the content came from.
    let logs = twinflow(
        state,
        &["logs", "latest", "sources.a", "--stream", "stderr"],
    );
    assert!(
        text(&logs.stdout).contains("from the cache"),
        "{}",
        text(&logs.stdout)
    );
}

const TRIGGER: &str = r#"
version: 1
name: monthly
cycle: { start: 2030-01-01, stop: 2030-02-01, step: P1M }
sources:
  month: { url: "BASE/files/month-${{ cycle.month }}.csv" }
steps:
  use:
    cycling: true
    needs: { x: sources.month }
    wait_for: [{ source: sources.month, interval: 1s, timeout: 2m }]
    run: cat ${{ inputs.x }} > ${{ outputs.o }}
    outputs: { o: o.txt }
"#;

#[test]
fn a_data_trigger_holds_its_consumer_until_the_file_is_published() {
    let w = World::serving(&[("month-1.csv", b"january\n")]);
    let state = &w.state;
    let wf = w.workflow("w.yaml", TRIGGER);
    let run = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["run", &wf, "--state-dir"])
        .arg(state)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("twinflow run starts");

    // February is not published: its source task awaits it, and status
    // says what it waits for.
    let mut shown = String::new();
    wait_until(
        "the february source to await",
        Duration::from_secs(60),
        || {
            let o = twinflow(state, &["status", "latest"]);
            shown = text(&o.stdout);
            shown.contains("awaiting data")
        },
    );
    assert!(
        shown.contains("sources.month@2030-02-01") && shown.contains("not found"),
        "{shown}"
    );
    let v = status(state);
    let feb = task(&v, "sources.month@2030-02-01");
    assert_eq!(feb["state"], "awaiting", "{feb}");
    std::fs::write(w.files.join("month-2.csv"), "february\n").expect("publish");
    let out = run.wait_with_output().expect("twinflow run ends");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("awaiting sources.month@2030-02-01"), "{err}");
    let feb = std::fs::read_to_string(run_dir(state).join("work/use/1/o.txt"))
        .expect("february's output");
    assert_eq!(feb, "february\n");
}

/// The same data trigger in a run the daemon carries: `watch` shows the
/// source awaiting its file, then the run to its end.
#[test]
fn watch_shows_a_run_the_daemon_carries_awaiting_its_data() {
    let w = World::serving(&[("month-1.csv", b"january\n")]);
    let state = w.state.clone();
    let wf = w.workflow("w.yaml", TRIGGER);
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", &wf]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let watch = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["watch", &run, "--state-dir"])
        .arg(&state)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("twinflow watch starts");
    wait_until(
        "the february source to await",
        Duration::from_secs(60),
        || text(&twinflow(&state, &["status", &run]).stdout).contains("awaiting data"),
    );
    // Long enough for watch to see a check or two.
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::write(w.files.join("month-2.csv"), "february\n").expect("publish");
    let out = watch.wait_with_output().expect("watch ends");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("awaiting sources.month@2030-02-01"), "{err}");
    assert!(err.contains("not found"), "{err}");
    let _ = d.kill();
    let _ = d.wait();
}

const BROKEN: &str = r#"
version: 1
name: broken
sources:
  gone: { url: "BASE/files/gone.csv" }
  pinned:
    url: "BASE/files/here.csv"
    sha256: abababababababababababababababababababababababababababababababab
steps:
  use-gone:
    needs: { x: sources.gone }
    run: cat ${{ inputs.x }}
  use-pinned:
    needs: { x: sources.pinned }
    run: cat ${{ inputs.x }}
"#;

#[test]
fn a_missing_or_mismatched_source_fails_naming_it_and_its_consumers_are_skipped() {
    let w = World::serving(&[("here.csv", b"x\n")]);
    let (state, base) = (&w.state, &w.base);
    let o = twinflow(state, &["run", &w.workflow("w.yaml", BROKEN)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("source `gone` ({base}/files/gone.csv)")),
        "{err}"
    );
    assert!(err.contains("not found"), "{err}");
    assert!(
        err.contains("source `pinned`") && err.contains("sha256"),
        "{err}"
    );
    let v = status(state);
    for consumer in ["use-gone", "use-pinned"] {
        let t = task(&v, consumer);
        assert_eq!(t["state"], "skipped", "{t}");
    }
    // Nothing unverified was published into the cache.
    let blobs = state.join("sources/blobs");
    let published = std::fs::read_dir(&blobs).map_or(0, Iterator::count);
    assert_eq!(published, 0, "{}", blobs.display());
}

const SHARED: &str = r#"
version: 1
name: NAME
sources:
  big: { url: "BASE/files/big.bin?slow=10" }
steps:
  size:
    needs: { x: sources.big }
    run: wc -c < ${{ inputs.x }} > ${{ outputs.o }}
    outputs: { o: o.txt }
"#;

/// The daemon carries two runs at once whose sources are the same slow
/// download: the second waits for the first's fetch (a lock per source in
/// the state directory's cache) instead of downloading again, and `watch`
/// shows both to their end.
#[test]
fn two_runs_the_daemon_carries_at_once_fetch_a_shared_source_once() {
    let w = World::serving(&[("big.bin", &vec![7u8; 4 << 20])]);
    let (state, base) = (&w.state, &w.base);
    let mut d = daemon(state, None);
    let mut runs = Vec::new();
    for name in ["first", "second"] {
        let wf = w.workflow(&format!("{name}.yaml"), &SHARED.replace("NAME", name));
        let o = twinflow(state, &["submit", &wf]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        runs.push(text(&o.stdout).trim().to_owned());
    }
    for run in &runs {
        let o = twinflow(state, &["watch", run]);
        assert_eq!(o.status.code(), Some(0), "{run}: {}", text(&o.stderr));
        let status = twinflow(state, &["status", run, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        let run_dir = v["run"]["run_dir"].as_str().expect("run_dir").to_owned();
        let size = std::fs::read_to_string(Path::new(&run_dir).join("work/size/0/o.txt"))
            .expect("size output");
        assert_eq!(size.trim(), (4 << 20).to_string(), "{run}");
    }
    let big = stats(base, "big.bin");
    assert_eq!(big["gets"], 1, "one download for both runs: {big}");
    // ...while both were under way: one of them waited for the other.
    let waited = runs.iter().any(|run| {
        let logs = twinflow(state, &["logs", run, "sources.big", "--stream", "stderr"]);
        text(&logs.stdout).contains("another fetch of this source is under way")
    });
    assert!(waited, "the two fetches did not overlap");
    let _ = d.kill();
    let _ = d.wait();
}

const CATALOG: &str = r#"
version: 1
name: catalog
sources:
  forcing: { url: "stac+file:catalog/catalog.json" }
steps:
  count:
    needs: { d: sources.forcing }
    run: find -L ${{ inputs.d }} -type f | wc -l > ${{ outputs.o }}
    outputs: { o: o.txt }
"#;

/// Writes a static STAC catalog under `root`: `catalog.json` -> a
/// collection -> items `m02` and `m02-b` with local assets beside them.
/// The fetch writes them as `m02/…` and `m02-b/…`, which sort one way as
/// text (`-` before `/`) and the other by path components: both digests
/// must order a tree's files the same way.
fn stac_catalog(root: &Path) {
    let write = |rel: &str, v: serde_json::Value| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, v.to_string()).expect("write catalog");
    };
    write(
        "catalog.json",
        serde_json::json!({"type": "Catalog", "stac_version": "1.0.0", "id": "c",
            "description": "d", "links": [{"rel": "child", "href": "./col/collection.json"}]}),
    );
    write(
        "col/collection.json",
        serde_json::json!({"type": "Collection", "stac_version": "1.0.0", "id": "col",
            "description": "d", "license": "CC0-1.0", "extent": {},
            "links": [{"rel": "item", "href": "./m02/m02.json"},
                      {"rel": "item", "href": "./m02-b/m02-b.json"}]}),
    );
    for (id, assets) in [
        ("m02", serde_json::json!({"sst": {"href": "./sst.csv"}})),
        (
            "m02-b",
            serde_json::json!({"sst": {"href": "./sst.csv"},
                               "mask": {"href": "./aux/mask.txt"}}),
        ),
    ] {
        write(
            &format!("col/{id}/{id}.json"),
            serde_json::json!({"type": "Feature", "stac_version": "1.0.0", "id": id,
                "properties": {"datetime": "2030-01-01T00:00:00Z"}, "geometry": null,
                "links": [], "assets": assets}),
        );
        let dir = root.join(format!("col/{id}"));
        std::fs::write(dir.join("sst.csv"), format!("sst\n{id}\n")).expect("write asset");
    }
    std::fs::create_dir_all(root.join("col/m02-b/aux")).expect("mkdir");
    std::fs::write(root.join("col/m02-b/aux/mask.txt"), "land\n").expect("write asset");
}

/// The sources crate digests a directory source itself (`tree.rs`) and the
/// runtime digests the same directory again when it seals the source
/// task's output (`artefact.rs`): two implementations of one tree digest,
/// in crates that may not depend on each other. A directory source's
/// `sha256` (what a workflow pins, what `source.json` records) must be the
/// sealed artefact's, or pinning and provenance would name content the
/// runtime does not know: this run of a `stac+file:` catalog (a folder
/// per item) holds them to the same value.
#[test]
fn a_directory_sources_sha256_is_the_digest_the_runtime_sealed() {
    let w = World::serving(&[]);
    stac_catalog(&w.dir.path().join("catalog"));
    let o = twinflow(&w.state, &["run", &w.workflow("w.yaml", CATALOG)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let v = status(&w.state);
    let run = v["run"]["id"].as_str().expect("run id").to_owned();
    let id = task(&v, "sources.forcing")["task"]
        .as_u64()
        .expect("task id");
    let store = twinflow::StateStore::open(&w.state).expect("open the state store");
    let sealed = store
        .artefacts(&run, u32::try_from(id).expect("a task id"))
        .expect("artefacts");
    let [sealed] = sealed.as_slice() else {
        panic!("one output of the source task: {sealed:?}")
    };
    let out = Path::new(&sealed.path);
    assert!(out.is_dir(), "a directory source: {}", out.display());
    let record: twinflow::twinflow_core::SourceRecord = serde_json::from_slice(
        &std::fs::read(
            out.parent()
                .expect("the task's directory")
                .join(twinflow::twinflow_core::SOURCE_RECORD_FILE),
        )
        .expect("source.json"),
    )
    .expect("a source record");
    assert!(record.directory, "{record:?}");
    assert_eq!(
        record.sha256, sealed.sha256,
        "the source's tree digest is not the sealed artefact's"
    );
    // The digest covers a tree of folders: the step saw items and assets.
    let count = std::fs::read_to_string(run_dir(&w.state).join("work/count/0/o.txt"))
        .expect("count's output");
    assert_eq!(count.trim(), "5", "2 item JSONs and 3 assets");
}
