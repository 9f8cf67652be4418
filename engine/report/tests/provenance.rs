//! The provenance crate of a real run, checked against what the Provenance
//! Run Crate profile (0.5) requires of it, entity by entity, and against the
//! run itself (commands, times, exit statuses, files and their digests,
//! producer-to-consumer links, the model crate). Also: the zip form, and a
//! workflow changed since the run is refused.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

mod common;

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use twinflow_report::{CrateOptions, write_provenance};

struct Crate {
    by_id: HashMap<String, Value>,
    dir: std::path::PathBuf,
}

impl Crate {
    fn read(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join("ro-crate-metadata.json")).unwrap();
        Self::parse(&text, dir)
    }

    fn parse(text: &str, dir: &Path) -> Self {
        let json: Value = serde_json::from_str(text).unwrap();
        let mut by_id = HashMap::new();
        for e in json["@graph"].as_array().expect("@graph") {
            let id = e["@id"]
                .as_str()
                .expect("every entity has an @id")
                .to_owned();
            assert!(
                by_id.insert(id.clone(), e.clone()).is_none(),
                "duplicate @id {id}"
            );
        }
        Self {
            by_id,
            dir: dir.to_owned(),
        }
    }

    fn get(&self, id: &str) -> &Value {
        self.by_id
            .get(id)
            .unwrap_or_else(|| panic!("no entity {id}"))
    }
}

fn types(e: &Value) -> Vec<&str> {
    match &e["@type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The ids a property refers to (one reference or a list).
fn refs(v: &Value) -> Vec<String> {
    match v {
        Value::Object(o) => o["@id"].as_str().map(str::to_owned).into_iter().collect(),
        Value::Array(a) => a.iter().flat_map(refs).collect(),
        _ => Vec::new(),
    }
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok())
}

#[test]
fn the_crate_has_what_the_profile_requires_and_what_the_run_did() {
    let run = common::run();
    let record = run.record();
    let out = run.dir.path().join("crate");
    let summary = write_provenance(&record, &out, &CrateOptions::default()).unwrap();
    assert_eq!(summary.actions, 5, "3 make, 1 join, 1 broken");
    let c = Crate::read(&out);

    // Metadata descriptor and root data entity (RO-Crate 1.1).
    let descriptor = c.get("ro-crate-metadata.json");
    assert!(refs(&descriptor["conformsTo"]).contains(&"https://w3id.org/ro/crate/1.1".into()));
    assert_eq!(refs(&descriptor["about"]), ["./"]);
    let root = c.get("./");
    assert!(types(root).contains(&"Dataset"));
    for key in ["name", "description", "datePublished", "license"] {
        assert!(!root[key].is_null(), "root has no {key}");
    }
    assert!(is_rfc3339(&root["datePublished"]));
    let profiles = refs(&root["conformsTo"]);
    for p in [
        "https://w3id.org/ro/wfrun/process/0.5",
        "https://w3id.org/ro/wfrun/workflow/0.5",
        "https://w3id.org/ro/wfrun/provenance/0.5",
        "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
    ] {
        assert!(
            profiles.contains(&p.to_owned()),
            "root does not conform to {p}"
        );
        assert!(types(c.get(p)).contains(&"CreativeWork"));
    }

    // The workflow: mainEntity, a copied file, with steps and tools.
    let main = refs(&root["mainEntity"]);
    assert_eq!(main, ["workflow/exported.yaml"]);
    let workflow = c.get(&main[0]);
    for t in [
        "File",
        "SoftwareSourceCode",
        "ComputationalWorkflow",
        "HowTo",
    ] {
        assert!(types(workflow).contains(&t), "workflow is not a {t}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join(&main[0])).unwrap(),
        common::WORKFLOW
    );
    assert_eq!(workflow["sha256"], sha256_hex(&run.workflow));
    let steps = refs(&workflow["step"]);
    assert_eq!(steps, ["#step/make", "#step/join", "#step/broken"]);
    let tools = refs(&workflow["hasPart"]);
    for (step_id, tool_id) in steps.iter().zip(&tools) {
        let step = c.get(step_id);
        assert!(types(step).contains(&"HowToStep"));
        assert_eq!(&refs(&step["workExample"])[0], tool_id);
        let tool = c.get(tool_id);
        assert!(
            types(tool)
                .iter()
                .any(|t| ["SoftwareApplication", "SoftwareSourceCode"].contains(t)),
            "{tool_id} is not software"
        );
        for fp in refs(&tool["input"]).iter().chain(&refs(&tool["output"])) {
            assert!(types(c.get(fp)).contains(&"FormalParameter"), "{fp}");
        }
    }
    // Inputs are connected to the outputs they come from.
    let connection = c.get("#connection/join/texts");
    assert!(types(connection).contains(&"ParameterConnection"));
    assert_eq!(
        refs(&connection["sourceParameter"]),
        ["#param/make/out/text"]
    );
    assert_eq!(
        refs(&connection["targetParameter"]),
        ["#param/join/in/texts"]
    );

    // The model crate names the software of its step.
    let joiner = c.get("#tool/join");
    assert_eq!(joiner["name"], "joiner");
    assert_eq!(joiner["version"], "2.1.0");
    assert!(types(joiner).contains(&"SoftwareApplication"));
    let author = refs(&joiner["author"]);
    assert_eq!(c.get(&author[0])["name"], "Ada Lovelace");
    assert_eq!(refs(&joiner["license"]), ["https://spdx.org/licenses/MIT"]);
    assert!(
        out.join("models/model-crate/ro-crate-metadata.json")
            .is_file()
    );

    // Parameters and their values, the objects of the run.
    let run_action = c.get("#run");
    assert!(types(run_action).contains(&"CreateAction"));
    assert_eq!(refs(&run_action["instrument"]), [main[0].clone()]);
    let values = refs(&run_action["object"]);
    assert_eq!(values, ["#pv/greeting", "#pv/who"]);
    assert_eq!(c.get("#pv/greeting")["value"], "hello");
    assert_eq!(
        c.get("#pv/who")["value"],
        serde_json::json!(["world", "twins", "two words"])
    );
    assert_eq!(refs(&c.get("#pv/who")["exampleOfWork"]), ["#param/who"]);
    assert_eq!(
        refs(&run_action["actionStatus"]),
        ["http://schema.org/FailedActionStatus"]
    );
    assert!(is_rfc3339(&run_action["startTime"]) && is_rfc3339(&run_action["endTime"]));

    // Orchestration: OrganizeAction -> ControlActions -> task CreateActions.
    let organize = c.get("#organize");
    assert!(types(organize).contains(&"OrganizeAction"));
    assert_eq!(refs(&organize["result"]), ["#run"]);
    assert!(types(c.get(&refs(&organize["instrument"])[0])).contains(&"SoftwareApplication"));
    let mut task_actions = Vec::new();
    for control_id in refs(&organize["object"]) {
        let control = c.get(&control_id);
        assert!(types(control).contains(&"ControlAction"));
        let step = refs(&control["instrument"]);
        assert!(types(c.get(&step[0])).contains(&"HowToStep"));
        task_actions.extend(refs(&control["object"]));
    }
    assert_eq!(task_actions.len(), 5);

    // Every task: command, executor, handle, times, status, exit code.
    for id in &task_actions {
        let a = c.get(id);
        assert!(types(a).contains(&"CreateAction"), "{id}");
        let tool = refs(&a["instrument"]);
        assert!(tools.contains(&tool[0]), "{id}: instrument {tool:?}");
        assert!(a["command"].as_str().is_some_and(|s| !s.is_empty()), "{id}");
        assert_eq!(a["executor"], "here");
        assert_eq!(a["executorKind"], "local");
        assert!(a["handle"].as_str().is_some(), "{id} has no handle");
        assert!(
            is_rfc3339(&a["startTime"]) && is_rfc3339(&a["endTime"]),
            "{id}"
        );
        assert!(!a["host"].is_null());
    }
    let broken = c.get("#task/broken");
    assert_eq!(broken["exitCode"], 3);
    assert_eq!(
        refs(&broken["actionStatus"]),
        ["http://schema.org/FailedActionStatus"]
    );
    assert!(
        broken["error"].as_str().unwrap().contains("boom"),
        "{broken}"
    );
    // A task name with `[`, `]` and a space is percent-encoded in its id.
    let two = c.get("#task/make%5Bwho=two%20words%5D");
    assert_eq!(two["name"], "make[who=two words]");
    assert_eq!(two["exitCode"], 0);
    assert!(two["command"].as_str().unwrap().contains("two words"));

    // Files: size and digest, copied, linked producer -> consumer.
    let made = refs(&two["result"]);
    assert_eq!(made.len(), 1);
    let file = c.get(&made[0]);
    assert!(types(file).contains(&"File"));
    let on_disk = out.join("files/make/2/text.txt");
    assert_eq!(
        std::fs::read_to_string(&on_disk).unwrap(),
        "hello two words\n"
    );
    assert_eq!(file["sha256"], sha256_hex(&on_disk));
    assert_eq!(file["contentSize"], "16");
    assert!(refs(&c.get("./")["hasPart"]).contains(&made[0]));
    let join = c.get("#task/join");
    let read = refs(&join["object"]);
    assert_eq!(read.len(), 3, "join read the three texts");
    assert!(read.contains(&made[0]));
    for f in &read {
        let fp = refs(&c.get(f)["exampleOfWork"]);
        assert!(
            fp.contains(&"#param/make/out/text".to_owned()),
            "{f}: {fp:?}"
        );
        assert!(
            fp.contains(&"#param/join/in/texts".to_owned()),
            "{f}: {fp:?}"
        );
    }
    let all = refs(&join["result"]);
    assert_eq!(
        c.get(&all[0])["sha256"],
        sha256_hex(&c.dir.join("files/join/0/all.txt"))
    );
}

#[test]
fn the_zip_holds_the_same_crate_and_large_files_are_referenced_not_copied() {
    let run = common::run();
    let record = run.record();
    let zip_path = run.dir.path().join("crate.zip");
    let options = CrateOptions {
        max_file_bytes: 10,
        ..CrateOptions::default()
    };
    let summary = write_provenance(&record, &zip_path, &options).unwrap();
    assert!(summary.files > 0);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
        .collect();
    assert_eq!(names[0], "ro-crate-metadata.json", "{names:?}");
    assert!(names.contains(&"workflow/exported.yaml".to_owned()));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut archive.by_name("ro-crate-metadata.json").unwrap(),
        &mut text,
    )
    .unwrap();
    let c = Crate::parse(&text, run.dir.path());
    // Every text file is over 10 bytes: described by its file:// URI.
    let made = refs(&c.get("#task/make%5Bwho=world%5D")["result"]);
    assert!(made[0].starts_with("file:///"), "{made:?}");
    assert!(!names.iter().any(|n| n.starts_with("files/")), "{names:?}");
    assert_eq!(c.get(&made[0])["contentSize"], "12");
}

#[test]
fn a_workflow_changed_since_the_run_is_refused() {
    let run = common::run();
    let store = twinflow_engine::StateStore::open(&run.state_dir()).unwrap();
    std::fs::write(&run.workflow, common::WORKFLOW.replace("exit 3", "exit 4")).unwrap();
    let err = twinflow_report::RunRecord::load(&store, &run.run_id, run.plan()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("changed since the run"), "{message}");
    assert!(message.contains("exported.yaml"), "{message}");
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_sealed_file_changed_since_the_run_fails_the_export_unless_allowed() {
    let run = common::run();
    let record = run.record();
    let task = record.plan.find_task("make[who=world]").unwrap();
    let artefact = record.artefact(task, "text").unwrap().clone();
    // Same size, other bytes: only the digest tells.
    let before = std::fs::read(&artefact.path).unwrap();
    std::fs::write(&artefact.path, vec![b'x'; before.len()]).unwrap();
    let shown = format!("{} (make[who=world], output `text`)", artefact.path);

    let out = run.dir.path().join("crate");
    let err = write_provenance(&record, &out, &CrateOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "1 sealed file(s) changed since the run (not the sealed size and SHA-256): {shown}; \
             restore them, or export with --allow-altered to record them as altered and leave them out"
        )
    );
    assert!(!out.exists(), "no crate is written");

    let options = CrateOptions {
        allow_altered: true,
        ..CrateOptions::default()
    };
    let summary = write_provenance(&record, &out, &options).unwrap();
    assert_eq!(summary.altered, [shown]);
    let c = Crate::read(&out);
    let made = refs(&c.get("#task/make%5Bwho=world%5D")["result"]);
    let file = c.get(&made[0]);
    assert!(made[0].starts_with("file:///"), "not copied: {made:?}");
    assert_eq!(file["alteredAfterSealing"], true);
    assert_eq!(
        file["sha256"], artefact.sha256,
        "the sealed digest, as recorded"
    );
    // The other, intact files are copied and carry no mark.
    let other = refs(&c.get("#task/make%5Bwho=twins%5D")["result"]);
    assert!(other[0].starts_with("files/"), "{other:?}");
    assert!(c.get(&other[0]).get("alteredAfterSealing").is_none());
    assert_eq!(sha256_hex(&out.join(&other[0])), c.get(&other[0])["sha256"]);
}
