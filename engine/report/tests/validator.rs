//! The provenance crate of a real run passes rocrate-validator (PyPI
//! `roc-validator`, profile `provenance-run-crate-0.5`, REQUIRED level),
//! and the same crate with a required link removed fails it (so a pass
//! means something). The validator fetches the RO-Crate 1.1 JSON-LD
//! context, which this machine cannot reach: `tests/validate_crate.py`
//! serves it from a local copy of the published document that
//! `scripts/setup` installs.
//!
//! Without the validator or the context this test says so and passes,
//! unless `TWINFLOW_TEST_ROCRATE=1` (set by `scripts/test`), where it fails.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use twinflow_report::{CrateOptions, write_provenance};

/// Where `scripts/setup` puts the RO-Crate 1.1 context.
const CONTEXT: &str = "/usr/local/share/twinflow/ro-crate-1.1-context.jsonld";

fn tools() -> Option<PathBuf> {
    let context = std::env::var_os("TWINFLOW_ROCRATE_CONTEXT")
        .map_or_else(|| PathBuf::from(CONTEXT), PathBuf::from);
    let importable = Command::new("python3")
        .args(["-c", "import rocrate_validator"])
        .status()
        .is_ok_and(|s| s.success());
    let problem = if !importable {
        "the Python package rocrate_validator (pip install roc-validator) is not installed"
    } else if !context.is_file() {
        "the RO-Crate 1.1 context copy is missing (scripts/setup installs it)"
    } else {
        return Some(context);
    };
    if std::env::var_os("TWINFLOW_TEST_ROCRATE").is_some() {
        panic!("TWINFLOW_TEST_ROCRATE is set but {problem}");
    }
    eprintln!("SKIPPED: rocrate-validator test: {problem}; run scripts/setup");
    None
}

/// The validator's verdict on the crate in `dir`, and its report.
fn validate(context: &Path, dir: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate_crate.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(context)
        .args([
            "--",
            "--disable-color",
            "-y",
            "validate",
            "-p",
            "provenance-run-crate-0.5",
        ])
        .args(["--verbose", "-w", "160"])
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn rocrate_validator_accepts_the_crate_and_rejects_it_broken() {
    let Some(context) = tools() else { return };
    let run = common::run();
    let record = run.record();
    let dir = run.dir.path().join("crate");
    write_provenance(&record, &dir, &CrateOptions::default()).unwrap();
    let (ok, report) = validate(&context, &dir);
    assert!(ok, "the validator refused the crate:\n{report}");
    assert!(
        report.contains("is a valid provenance-run-crate-0.5"),
        "{report}"
    );

    // Without the OrganizeAction's instrument (the engine), the Provenance
    // Run Crate profile is not met.
    let file = dir.join("ro-crate-metadata.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for e in json["@graph"].as_array_mut().unwrap() {
        if e["@id"] == "#organize" {
            e.as_object_mut().unwrap().remove("instrument");
        }
    }
    std::fs::write(&file, serde_json::to_string(&json).unwrap()).unwrap();
    let (ok, report) = validate(&context, &dir);
    assert!(
        !ok,
        "the validator accepted a crate without the engine:\n{report}"
    );
    assert!(report.contains("OrganizeAction"), "{report}");
}
