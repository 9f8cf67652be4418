//! The forest-beetle demo with its coupling group on the real local Slurm
//! (`deploy/dev/slurm-up`; `scripts/test` starts it and sets
//! `TWINFLOW_TEST_SLURM=1`): every instance of the group `stand` runs as
//! one Slurm job of two `srun` steps, whose members overlap in time (the
//! provenance crate's action times).

#![expect(clippy::expect_used, reason = "test")]

use std::path::Path;
use std::process::{Command, Output};

fn twinflow(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(args)
        .env("TWINFLOW_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twinflow")
}

#[test]
fn the_forest_beetle_demo_runs_its_coupled_twins_together_on_slurm() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let crate_dir = state.path().join("crate");
    let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let demo = workflows.join("forest-beetle/forest-beetle.yaml");
    let site = workflows.join("sites/forest-beetle-local-slurm.yaml");
    let o = twinflow(
        state.path(),
        &[
            "run",
            demo.to_str().expect("utf-8 path"),
            "--site",
            site.to_str().expect("utf-8 path"),
            "--provenance",
            crate_dir.to_str().expect("utf-8 path"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("16 tasks, 16 ran, 0 cached"), "{err}");

    let status = twinflow(state.path(), &["status", "--json", "--limit", "10000"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let handle = |name: &str| -> String {
        status["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["name"] == name)
            .and_then(|t| t["handle"].as_str())
            .unwrap_or_else(|| panic!("no handle for {name}"))
            .to_owned()
    };
    let job = |h: &str| h.split(':').nth(1).unwrap_or_default().to_owned();
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(crate_dir.join("ro-crate-metadata.json")).expect("crate metadata"),
    )
    .expect("crate JSON");
    let times = |name: &str| -> (String, String) {
        let action = meta["@graph"]
            .as_array()
            .expect("graph")
            .iter()
            .find(|e| e["@type"] == "CreateAction" && e["name"] == name)
            .unwrap_or_else(|| panic!("no action {name}"));
        let t = |k: &str| action[k].as_str().expect("a time").to_owned();
        (t("startTime"), t("endTime"))
    };
    for climate in ["ssp126", "ssp245", "ssp585"] {
        for management in ["business-as-usual", "set-aside"] {
            let key = format!("[climate={climate},management={management}]");
            let (f, b) = (format!("forest{key}"), format!("beetle{key}"));
            let (fh, bh) = (handle(&f), handle(&b));
            assert!(
                fh.starts_with("slurm-pack:"),
                "{f} ran in a group job: {fh}"
            );
            assert_eq!(job(&fh), job(&bh), "{key}: the members share one Slurm job");
            let (forest, beetle) = (times(&f), times(&b));
            // RFC 3339 times in UTC compare as strings.
            assert!(
                forest.0 < beetle.1 && beetle.0 < forest.1,
                "{key}: forest {forest:?} and beetle {beetle:?} did not overlap"
            );
        }
    }
}
