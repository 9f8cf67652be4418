//! `twinflow run --provenance --report` on the forest-bird demo, and
//! `twinflow provenance`/`report` on the stored run afterwards, from another
//! directory: the crate names the bird twin's model crate as the software of
//! its 81 tasks, the zip form holds the same metadata, and a run that is
//! not in the store is an error (exit 2).
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn twinflow(state: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(args)
        .current_dir(cwd)
        .env("TWINFLOW_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twinflow")
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/forest-bird/forest-bird.yaml")
}

#[test]
fn the_demo_writes_its_provenance_and_report_and_they_can_be_written_again() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let state = tmp.path().join("state");
    let demo = demo();
    let demo = demo.to_str().expect("utf-8 path");
    let prov = tmp.path().join("prov");
    let report = tmp.path().join("report.html");
    let o = twinflow(
        &state,
        tmp.path(),
        &[
            "run",
            demo,
            "--local",
            "-p",
            "climate=ssp126,ssp585",
            "--provenance",
            prov.to_str().expect("utf-8"),
            "--report",
            report.to_str().expect("utf-8"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("provenance crate: "), "{err}");
    assert!(err.contains("report: "), "{err}");

    let text = std::fs::read_to_string(prov.join("ro-crate-metadata.json")).expect("metadata");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let graph = json["@graph"].as_array().expect("graph");
    let entity = |id: &str| {
        graph
            .iter()
            .find(|e| e["@id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    // The parameters the run used (the override), not the file's defaults.
    assert_eq!(
        entity("#pv/climate")["value"],
        serde_json::json!(["ssp126", "ssp585"])
    );
    // The bird twin's model crate is the software of its tasks.
    let bird = entity("#tool/bird-biodiversity");
    assert_eq!(bird["name"], "bird-biodiversity");
    assert_eq!(bird["version"], "1.0.0");
    let bird_tasks = graph
        .iter()
        .filter(|e| e["instrument"]["@id"] == "#tool/bird-biodiversity")
        .count();
    assert_eq!(bird_tasks, 2 * 3 * 9);
    assert!(
        prov.join("models/bird-crate/ro-crate-metadata.json")
            .is_file()
    );
    assert!(prov.join("files/summary/0/summary.svg").is_file());
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(html.contains(r#"id="step-graph""#) && html.contains(r#"id="timeline""#));

    // Again from the stored run, from another directory, as a zip.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let zip = tmp.path().join("prov.zip");
    let o = twinflow(
        &state,
        elsewhere.path(),
        &[
            "provenance",
            "latest",
            "--out",
            zip.to_str().expect("utf-8"),
            "--license",
            "CC-BY-4.0",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::metadata(&zip).expect("zip").len() > 10_000);
    let again = tmp.path().join("again.html");
    let o = twinflow(
        &state,
        elsewhere.path(),
        &["report", "latest", "--out", again.to_str().expect("utf-8")],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let o = twinflow(
        &state,
        elsewhere.path(),
        &["report", "no-such-run", "--out", "x.html"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no run `no-such-run`"));
}
