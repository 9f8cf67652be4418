//! The forest-beetle demo (issue 19's coupling groups): the workflow compiles
//! to one coupling group `stand` of 6 instances with the expected task
//! counts, binds to the local Slurm through its site file, and its two twins
//! couple correctly when started by hand on one group directory (the Python
//! tests in `workflows/forest-beetle/tests`, run with `python3`).

use std::process::Command;
use twinflow_core::BackendConfig;
use twinflow_tests::repo_root;
use twinflow_workflow::{CompileOptions, SiteSource, compile_file};

fn demo() -> std::path::PathBuf {
    repo_root().join("workflows/forest-beetle/forest-beetle.yaml")
}

#[test]
fn the_demo_compiles_to_one_group_of_six_instances() {
    let plan = compile_file(&demo(), &CompileOptions::default())
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let shape: Vec<(&str, usize, Option<&str>)> = plan
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.tasks.len(), s.group.as_deref()))
        .collect();
    assert_eq!(
        shape,
        [
            ("climate", 3, None),
            ("forest", 6, Some("stand")),
            ("beetle", 6, Some("stand")),
            ("summary", 1, None),
        ]
    );
    assert_eq!(plan.task_count(), 16);
    // each member asks for one CPU: an instance needs 2 at once
    for s in plan.steps.iter().filter(|s| s.group.is_some()) {
        assert_eq!(s.resources.cpus, 1, "{}", s.name);
    }
}

#[test]
fn the_demo_runs_on_the_local_slurm_through_its_site_file() {
    let site = repo_root().join("workflows/sites/forest-beetle-local-slurm.yaml");
    let options = CompileOptions {
        site: Some(SiteSource::read(&site).unwrap_or_else(|e| panic!("{}", e.render(false)))),
        ..CompileOptions::default()
    };
    let plan = compile_file(&demo(), &options).unwrap_or_else(|e| panic!("{}", e.render(false)));
    let hpc = plan
        .executors
        .iter()
        .find(|e| e.name == "hpc")
        .expect("the demo has an hpc executor");
    assert!(hpc.bound_by.is_some(), "the site file does not bind hpc");
    match &hpc.backend {
        BackendConfig::Slurm(s) => assert_eq!(s.partition.as_deref(), Some("batch")),
        other => panic!("hpc is bound to {other:?}, not the local Slurm"),
    }
}

#[test]
fn the_twins_couple_by_hand_without_twinflow() {
    let tests = repo_root().join("workflows/forest-beetle/tests");
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(&tests)
        .output()
        .expect("python3 runs (scripts/setup installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python3 -m unittest failed:\n{stderr}"
    );
    assert!(
        stderr.contains("Ran 4 tests"),
        "expected the 4 coupling tests to run:\n{stderr}"
    );
}
