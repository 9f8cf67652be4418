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

fn write_workflow(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, yaml).expect("write workflow");
    file
}

fn status(state: &Path) -> serde_json::Value {
    let o = twinflow(state, &["status", "latest", "--json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
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
    let dir = tempfile::tempdir().expect("temp dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    std::fs::write(files.join("a.csv"), "a,1\n").expect("write");
    std::fs::write(files.join("b.csv"), "b,1\n").expect("write");
    let (_rt, base) = devserver(&files);
    let state = dir.path().join("state");
    let wf = write_workflow(dir.path(), "w.yaml", &REFRESHED.replace("BASE", &base));
    let wf = wf.to_str().expect("utf-8");

    let first = twinflow(&state, &["run", wf]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(stats(&base, "a.csv")["gets"], 1, "fetched once");

    // Nothing changed: each source is revalidated (refresh: 1s) with its
    // ETag, which costs no body, and every consumer is reused.
    std::thread::sleep(Duration::from_millis(1100));
    let second = twinflow(&state, &["run", wf]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let a = stats(&base, "a.csv");
    assert_eq!(a["body_bytes"], 4, "a 304 sends no body again: {a}");
    assert!(a["conditional"].as_u64().unwrap_or(0) >= 1, "{a}");
    assert_eq!(
        cached(&state),
        [
            ("sources.a".to_owned(), false),
            ("sources.b".to_owned(), false),
            ("use-a".to_owned(), true),
            ("use-b".to_owned(), true),
        ],
        "source tasks always ask the source cache; consumers are reused"
    );

    // a.csv changes upstream: only its consumer runs again.
    std::fs::write(files.join("a.csv"), "a,2\n").expect("write");
    std::thread::sleep(Duration::from_millis(1100));
    let third = twinflow(&state, &["run", wf]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));
    let v = cached(&state);
    assert!(v.contains(&("use-a".to_owned(), false)), "{v:?}");
    assert!(v.contains(&("use-b".to_owned(), true)), "{v:?}");
    let run_dir = status(&state)["run"]["run_dir"]
        .as_str()
        .expect("run_dir")
        .to_owned();
    let out = std::fs::read_to_string(Path::new(&run_dir).join("work/use-a/0/o.txt"))
        .expect("use-a's output");
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
    let dir = tempfile::tempdir().expect("temp dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    std::fs::write(files.join("a.csv"), "a,1\n").expect("write");
    let (_rt, base) = devserver(&files);
    let state = dir.path().join("state");
    let wf = write_workflow(dir.path(), "w.yaml", &NEVER.replace("BASE", &base));
    let wf = wf.to_str().expect("utf-8");
    for _ in 0..2 {
        let o = twinflow(&state, &["run", wf]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    assert_eq!(stats(&base, "a.csv")["requests"], 1, "one request in all");
    // The source's log says where the content came from.
    let logs = twinflow(
        &state,
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
    let dir = tempfile::tempdir().expect("temp dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    std::fs::write(files.join("month-1.csv"), "january\n").expect("write");
    let (_rt, base) = devserver(&files);
    let state = dir.path().join("state");
    let wf = write_workflow(dir.path(), "w.yaml", &TRIGGER.replace("BASE", &base));
    let run = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["run", wf.to_str().expect("utf-8"), "--state-dir"])
        .arg(&state)
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
            let o = twinflow(&state, &["status", "latest"]);
            shown = text(&o.stdout);
            shown.contains("awaiting data")
        },
    );
    assert!(
        shown.contains("sources.month@2030-02-01") && shown.contains("not found"),
        "{shown}"
    );
    let v = status(&state);
    let feb = v["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["name"] == "sources.month@2030-02-01")
        .expect("the february source task")
        .clone();
    assert_eq!(feb["state"], "awaiting", "{feb}");
    std::fs::write(files.join("month-2.csv"), "february\n").expect("publish");
    let out = run.wait_with_output().expect("twinflow run ends");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("awaiting sources.month@2030-02-01"), "{err}");
    let run_dir = status(&state)["run"]["run_dir"]
        .as_str()
        .expect("run_dir")
        .to_owned();
    let feb = std::fs::read_to_string(Path::new(&run_dir).join("work/use/1/o.txt"))
        .expect("february's output");
    assert_eq!(feb, "february\n");
}

/// The same data trigger in a run the daemon carries: `watch` shows the
/// source awaiting its file, then the run to its end.
#[test]
fn watch_shows_a_run_the_daemon_carries_awaiting_its_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    std::fs::write(files.join("month-1.csv"), "january\n").expect("write");
    let (_rt, base) = devserver(&files);
    let state = dir.path().join("state");
    let wf = write_workflow(dir.path(), "w.yaml", &TRIGGER.replace("BASE", &base));
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", wf.to_str().expect("utf-8")]);
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
    std::fs::write(files.join("month-2.csv"), "february\n").expect("publish");
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
    let dir = tempfile::tempdir().expect("temp dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    std::fs::write(files.join("here.csv"), "x\n").expect("write");
    let (_rt, base) = devserver(&files);
    let state = dir.path().join("state");
    let wf = write_workflow(dir.path(), "w.yaml", &BROKEN.replace("BASE", &base));
    let o = twinflow(&state, &["run", wf.to_str().expect("utf-8")]);
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
    let v = status(&state);
    for consumer in ["use-gone", "use-pinned"] {
        let t = v["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["name"] == consumer)
            .unwrap_or_else(|| panic!("{consumer} has no record: {v}"));
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
    let dir = tempfile::tempdir().expect("temp dir");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).expect("mkdir");
    std::fs::write(files.join("big.bin"), vec![7u8; 4 << 20]).expect("write");
    let (_rt, base) = devserver(&files);
    let state = dir.path().join("state");
    let mut d = daemon(&state, None);
    let mut runs = Vec::new();
    for name in ["first", "second"] {
        let yaml = SHARED.replace("BASE", &base).replace("NAME", name);
        let wf = write_workflow(dir.path(), &format!("{name}.yaml"), &yaml);
        let o = twinflow(&state, &["submit", wf.to_str().expect("utf-8")]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        runs.push(text(&o.stdout).trim().to_owned());
    }
    for run in &runs {
        let o = twinflow(&state, &["watch", run]);
        assert_eq!(o.status.code(), Some(0), "{run}: {}", text(&o.stderr));
        let status = twinflow(&state, &["status", run, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        let run_dir = v["run"]["run_dir"].as_str().expect("run_dir").to_owned();
        let size = std::fs::read_to_string(Path::new(&run_dir).join("work/size/0/o.txt"))
            .expect("size output");
        assert_eq!(size.trim(), (4 << 20).to_string(), "{run}");
    }
    let big = stats(&base, "big.bin");
    assert_eq!(big["gets"], 1, "one download for both runs: {big}");
    // ...while both were under way: one of them waited for the other.
    let waited = runs.iter().any(|run| {
        let logs = twinflow(&state, &["logs", run, "sources.big", "--stream", "stderr"]);
        text(&logs.stdout).contains("another fetch of this source is under way")
    });
    assert!(waited, "the two fetches did not overlap");
    let _ = d.kill();
    let _ = d.wait();
}
