//! A real run to export: a small workflow (a fan-out, a gather through a
//! step with a model crate, and a step that fails with exit status 3) run
//! by the engine with the local executor, then loaded as a `RunRecord`.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "each test binary uses a part; helpers fail the test"
)]

use std::path::PathBuf;
use twinflow_core::ExecutorKind;
use twinflow_engine::{Engine, RunOptions, StateStore};
use twinflow_report::RunRecord;
use twinflow_workflow::{CompileOptions, Plan};

pub(crate) const WORKFLOW: &str = r#"
version: 1
name: exported
description: A fan-out, a gather through a model, and a failure.
params:
  greeting: hello
  who: [world, twins, "two words"]
executors:
  here: { kind: local, slots: 2 }
steps:
  make:
    for_each: { who: "${{ params.who }}" }
    run: echo ${{ params.greeting }} ${{ who }} > ${{ outputs.text }}
    outputs: { text: text.txt }
  join:
    needs: { texts: make.text }
    model: model-crate
    run: cat ${{ inputs.texts }} > ${{ outputs.all }}
    outputs: { all: all.txt }
  broken:
    needs: { one: make.text }
    run: echo "about to fail" >&2; echo boom >&2; exit 3
    outputs: { never: never.txt }
"#;

pub(crate) const MODEL_CRATE: &str = r##"{
  "@context": "https://w3id.org/ro/crate/1.1/context",
  "@graph": [
    { "@id": "ro-crate-metadata.json", "@type": "CreativeWork",
      "conformsTo": { "@id": "https://w3id.org/ro/crate/1.1" }, "about": { "@id": "./" } },
    { "@id": "./", "@type": "Dataset", "name": "joiner crate", "mainEntity": { "@id": "#joiner" },
      "license": { "@id": "https://spdx.org/licenses/MIT" } },
    { "@id": "#joiner", "@type": "SoftwareApplication", "name": "joiner", "version": "2.1.0",
      "author": { "@id": "#ada" }, "license": { "@id": "https://spdx.org/licenses/MIT" } },
    { "@id": "#ada", "@type": "Person", "name": "Ada Lovelace" },
    { "@id": "https://spdx.org/licenses/MIT", "@type": "CreativeWork", "name": "MIT License" }
  ]
}"##;

/// A finished run in a temporary state directory.
pub(crate) struct Exported {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) workflow: PathBuf,
    pub(crate) run_id: String,
}

impl Exported {
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The run's plan, compiled again as the CLI does.
    pub(crate) fn plan(&self) -> Plan {
        let options = CompileOptions {
            run_id: self.run_id.clone(),
            ..CompileOptions::default()
        };
        twinflow_workflow::compile_file(&self.workflow, &options)
            .unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    pub(crate) fn record(&self) -> RunRecord {
        let store = StateStore::open(&self.state_dir()).unwrap();
        RunRecord::load(&store, &self.run_id, self.plan()).unwrap()
    }
}

/// Runs [`WORKFLOW`] to its end (it fails: `broken` exits 3).
pub(crate) fn run() -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("exported.yaml");
    std::fs::write(&workflow, WORKFLOW).unwrap();
    let model = dir.path().join("model-crate");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("ro-crate-metadata.json"), MODEL_CRATE).unwrap();
    let run_id = twinflow_engine::new_run_id("exported");
    let exported = Exported {
        dir,
        workflow,
        run_id,
    };
    let engine = Engine::builder()
        .state_dir(exported.state_dir())
        .executor(
            ExecutorKind::Local,
            twinflow_executor_local::LocalFactory::default(),
        )
        .build()
        .unwrap();
    let plan = exported.plan();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let summary = runtime.block_on(async {
        let mut handle = engine.submit(plan, RunOptions::default()).await.unwrap();
        while handle.next_event().await.is_some() {}
        handle.wait().await.unwrap()
    });
    assert_eq!(summary.outcome, twinflow_engine::Outcome::Failed);
    exported
}
