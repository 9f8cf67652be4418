//! The provenance crate names the digest each step's image resolved to at
//! submit (recorded by the runtime, [`RunRecord::images`]) on the step's
//! `ContainerImage`. The run is recorded as the store would return it, as
//! in `scale.rs`: no container runtime is needed.

use twinflow_engine::{RunImage, RunInfo};
use twinflow_report::{CrateOptions, RunRecord, write_provenance};

#[test]
fn the_container_image_of_a_step_carries_its_resolved_digest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("boxed.yaml");
    let yaml = "version: 1\nname: boxed\nexecutors: { hpc: { kind: slurm, container_runtime: podman } }\nsteps:\n  \
                a:\n    executor: hpc\n    container: localhost/twinflow-busybox:1\n    \
                run: echo a\n  b:\n    executor: hpc\n    run: echo b\n";
    std::fs::write(&file, yaml).unwrap();
    let options = twinflow_workflow::CompileOptions {
        run_id: "boxed-1".into(),
        ..Default::default()
    };
    let plan = twinflow_workflow::compile_file(&file, &options).unwrap();
    let run: RunInfo = serde_json::from_value(serde_json::json!({
        "id": "boxed-1", "workflow": "boxed", "file": file, "run_dir": "/nonexistent/boxed-1",
        "state": "succeeded", "task_count": 2, "created_ms": 0, "updated_ms": 1,
        "plan_digest": "", "args": "{}", "host": "login1", "pid": 1, "pid_start": 1
    }))
    .unwrap();
    let hex = "ab".repeat(32);
    let record = RunRecord {
        run,
        plan,
        tasks: vec![None, None],
        artefacts: vec![Vec::new(), Vec::new()],
        span: Some((0, 1)),
        images: vec![RunImage {
            step: "a".into(),
            image: "localhost/twinflow-busybox:1".into(),
            runtime: "podman".into(),
            digest: format!("sha256:{hex}"),
        }],
        actions: Vec::new(),
    };
    let out = dir.path().join("crate");
    write_provenance(&record, &out, &CrateOptions::default()).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("ro-crate-metadata.json")).unwrap())
            .unwrap();
    let graph = meta["@graph"].as_array().unwrap();
    let image = graph
        .iter()
        .find(|e| e["@id"] == "#container/a")
        .unwrap_or_else(|| panic!("no ContainerImage for step a"));
    assert_eq!(image["@type"], "ContainerImage");
    assert_eq!(image["sha256"], hex.as_str());
    // A local podman image is named by its own registry, not docker.io's.
    assert_eq!(image["registry"], "localhost");
    assert_eq!(image["name"], "twinflow-busybox");
    assert_eq!(image["tag"], "1");
    assert!(graph.iter().all(|e| e["@id"] != "#container/b"));
}
