//! What the engine refuses to seal or stage, and what its cache key covers:
//! outputs linking out of their task directory, inputs whose sealed file
//! vanished, and code files a step runs (issue 17).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use twinflow_engine::{Outcome, RunOptions, RunSummary};
use twinflow_workflow::CompileOptions;

mod common;
use common::Fixture;

impl Fixture {
    /// Writes `yaml` as `wf/test.yaml` and compiles it from there, so that
    /// `workflow.dir` is `wf/`.
    fn plan(&self, yaml: &str, run_id: &str) -> twinflow_core::Plan {
        let wf = self.path("wf");
        std::fs::create_dir_all(&wf).unwrap();
        let file = wf.join("test.yaml");
        let yaml = yaml.replace("$DIR", &self.dir.path().display().to_string());
        std::fs::write(&file, yaml).unwrap();
        let options = CompileOptions {
            run_id: run_id.to_owned(),
            ..CompileOptions::default()
        };
        twinflow_workflow::compile_file(&file, &options)
            .unwrap_or_else(|e| panic!("{}", e.render(false)))
    }

    async fn run(&self, plan: twinflow_core::Plan) -> RunSummary {
        self.run_all(plan, RunOptions::default()).await.0
    }
}

fn failure<'a>(summary: &'a RunSummary, task: &str) -> &'a str {
    summary
        .failures
        .iter()
        .find(|(name, _)| name == task)
        .map(|(_, reason)| reason.as_str())
        .unwrap_or_else(|| panic!("{task} did not fail: {summary:?}"))
}

#[tokio::test]
async fn an_output_linking_out_of_its_task_directory_fails_the_task_naming_the_target() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: links
executors: { here: { kind: local } }
steps:
  secret:
    executor: here
    run: ln -s /etc/hostname ${{ outputs.o }}
    outputs: { o: o.txt }
  tree:
    executor: here
    run: mkdir -p d && echo a > d/a && ln -s /usr/share d/share
    outputs: { d: d }
  inside:
    executor: here
    run: echo fine > real.txt && ln -s real.txt ${{ outputs.o }}
    outputs: { o: o.txt }
",
        "r1",
    );
    let summary = f.run(plan).await;
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!(
        failure(&summary, "secret"),
        "output `o` (o.txt) is refused: o.txt is a symbolic link to /etc/hostname, \
         outside the task directory"
    );
    assert_eq!(
        failure(&summary, "tree"),
        "output `d` (d) is refused: d/share is a symbolic link to /usr/share, \
         outside the task directory"
    );
    assert_eq!((summary.ran, summary.failed), (1, 2), "`inside` passed");
}

#[tokio::test]
async fn a_vanished_input_fails_the_attempt_naming_the_artefact() {
    let f = Fixture::new();
    let plan = f.plan(
        "
version: 1
name: vanish
executors: { here: { kind: local } }
steps:
  gen:
    executor: here
    run: echo data > ${{ outputs.out }}
    outputs: { out: out.txt }
  remove:
    executor: here
    needs: { x: gen.out }
    run: rm \"$TWINFLOW_RUN_DIR/work/gen/0/out.txt\" && touch ${{ outputs.done }}
    outputs: { done: done }
  use:
    executor: here
    needs: { x: gen.out, after: remove.done }
    run: cat ${{ inputs.x }}
",
        "r1",
    );
    let summary = f.run(plan).await;
    assert_eq!(summary.outcome, Outcome::Failed);
    let gone = summary.run_dir.join("work/gen/0/out.txt");
    assert_eq!(
        failure(&summary, "use"),
        format!(
            "failed to stage input inputs/x.txt: the sealed output `out` of gen is gone \
             ({} no longer exists)",
            gone.display()
        )
    );
    assert!(!Path::new(&summary.run_dir.join("work/use/0/inputs/x.txt")).exists());
}

const CODE: &str = "
version: 1
name: code
executors: { here: { kind: local } }
steps:
  summary:
    executor: here
    run: |
      echo summary >> $DIR/executions
      sh ${{ workflow.dir }}/twins/summary.sh > ${{ outputs.o }}
    outputs: { o: o.txt }
  report:
    executor: here
    needs: { s: summary.o }
    run: echo report >> $DIR/executions; cat ${{ inputs.s }} > ${{ outputs.o }}
    outputs: { o: o.txt }
  helper:
    executor: here
    code: [lib/*.sh]
    run: echo helper >> $DIR/executions; . \"$TWINFLOW_WORKFLOW_DIR/lib/util.sh\" > ${{ outputs.o }}
    outputs: { o: o.txt }
  other:
    executor: here
    run: echo other >> $DIR/executions; echo same > ${{ outputs.o }}
    outputs: { o: o.txt }
";

/// Which steps ran since the last call.
fn ran(f: &Fixture, seen: &mut usize) -> Vec<String> {
    let text = std::fs::read_to_string(f.path("executions")).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().skip(*seen).map(str::to_owned).collect();
    *seen += lines.len();
    lines.sort();
    lines
}

#[tokio::test]
async fn editing_a_steps_code_reruns_that_step_and_only_the_dependents_whose_inputs_changed() {
    let f = Fixture::new();
    let twins = f.path("wf/twins");
    let lib = f.path("wf/lib");
    std::fs::create_dir_all(&twins).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(twins.join("summary.sh"), "echo one\n").unwrap();
    std::fs::write(lib.join("util.sh"), "echo util\n").unwrap();
    let mut seen = 0;
    let mut go = async |run: &str| {
        let plan = f.plan(CODE, run);
        let summary = f.run(plan).await;
        assert_eq!(summary.outcome, Outcome::Succeeded, "{summary:?}");
        ran(&f, &mut seen)
    };
    assert_eq!(go("r1").await, ["helper", "other", "report", "summary"]);
    assert!(
        go("r2").await.is_empty(),
        "an unchanged workflow runs nothing"
    );

    // The script `run` names through `${{ workflow.dir }}`: its step runs
    // again; so does its dependent, whose input changed.
    std::fs::write(twins.join("summary.sh"), "echo two\n").unwrap();
    assert_eq!(go("r3").await, ["report", "summary"]);
    // A change that leaves the output as it was: the dependent is cached.
    std::fs::write(twins.join("summary.sh"), "# a comment\necho two\n").unwrap();
    assert_eq!(go("r4").await, ["summary"]);
    // A file only `code:` names.
    std::fs::write(lib.join("util.sh"), "echo util2\n").unwrap();
    assert_eq!(go("r5").await, ["helper"]);
    assert!(go("r6").await.is_empty());
}
