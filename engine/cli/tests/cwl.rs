//! CWL documents as a user runs them: `twinflow cwl-runner` (the
//! conformance runner contract), `twinflow run`/`validate` of a `.cwl`
//! file, a workflow split into one twinflow step per CWL step, and the
//! failures (JavaScript errors, a bad job object, a failing tool).
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Sandbox {
    dir: tempfile::TempDir,
}

const ECHO_TOOL: &str = "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  word:
    type: string
    inputBinding: {position: 1}
stdout: word.txt
outputs:
  out: stdout
";

const CAT_TOOL: &str = "cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs:
  files:
    type: File[]
    inputBinding: {position: 1}
stdout: all.txt
outputs:
  all: stdout
";

const WORKFLOW: &str = "cwlVersion: v1.2
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  words: string[]
outputs:
  joined:
    type: File
    outputSource: join/all
steps:
  say:
    run: echo.cwl
    scatter: word
    in: {word: words}
    out: [out]
  join:
    run: cat.cwl
    in: {files: say/out}
    out: [all]
";

impl Sandbox {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write file");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_twinflow"))
            .args(args)
            .env("TWINFLOW_STATE_DIR", self.path("state"))
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .output()
            .expect("run twinflow")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn output_object(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the output object is JSON")
}

fn workflow_sandbox() -> Sandbox {
    Sandbox::new(&[
        ("echo.cwl", ECHO_TOOL),
        ("cat.cwl", CAT_TOOL),
        ("wf.cwl", WORKFLOW),
        ("job.yml", "words: [alpha, beta, gamma]\n"),
    ])
}

#[test]
fn cwl_runner_runs_a_scattered_workflow_and_copies_its_outputs_into_outdir() {
    let sb = workflow_sandbox();
    let outdir = sb.path("results");
    let out = sb.run(&[
        "cwl-runner",
        "--outdir",
        &outdir.display().to_string(),
        "--quiet",
        "wf.cwl",
        "job.yml",
    ]);
    let object = output_object(&out);
    let joined = &object["joined"];
    assert_eq!(joined["class"], "File");
    let path = joined["path"].as_str().expect("path");
    assert!(
        Path::new(path).starts_with(&outdir),
        "{path} is not in --outdir"
    );
    assert_eq!(
        std::fs::read_to_string(path).expect("read"),
        "alpha\nbeta\ngamma\n"
    );
    assert_eq!(joined["size"], 17);
    assert_eq!(
        joined["checksum"],
        format!("sha1${}", sha1_of("alpha\nbeta\ngamma\n"))
    );
}

/// sha1 of a text, by the system's `sha1sum` (an independent check).
fn sha1_of(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha1sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("sha1sum output");
    text_first_word(&out.stdout)
}

fn text_first_word(bytes: &[u8]) -> String {
    text(bytes)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_workflow_is_one_twinflow_step_per_cwl_step_with_a_task_per_scatter_job() {
    let sb = workflow_sandbox();
    let out = sb.run(&["validate", "wf.cwl", "job.yml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let tasks_of = |step: &str| -> Option<u32> {
        summary
            .lines()
            .find(|l| l.split_whitespace().next() == Some(step))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
    };
    assert_eq!(tasks_of("say"), Some(3), "{summary}");
    assert_eq!(tasks_of("join"), Some(1), "{summary}");
    assert_eq!(tasks_of("outputs"), Some(1), "{summary}");
}

#[test]
fn twinflow_run_of_a_cwl_workflow_is_a_run_like_any_other() {
    let sb = workflow_sandbox();
    let out = sb.run(&["run", "wf.cwl", "job.yml"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let status = sb.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["run"]["state"], "succeeded", "{status}");
    let steps: Vec<&str> = status["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(steps, ["say", "join", "outputs"]);
    let runs = std::fs::read_dir(sb.path("state/runs"))
        .expect("runs")
        .next()
        .expect("a run")
        .expect("entry");
    let object = std::fs::read_to_string(runs.path().join("work/outputs/0/outputs.json"))
        .expect("the output object");
    assert!(object.contains("\"joined\""), "{object}");
    // The outputs step links the workflow's files, it does not copy them.
    use std::os::unix::fs::MetadataExt;
    let made = std::fs::metadata(runs.path().join("work/join/0/out/all.txt")).expect("join's file");
    let kept =
        std::fs::metadata(runs.path().join("work/outputs/0/out/all.txt")).expect("outputs' file");
    assert_eq!((made.dev(), made.ino()), (kept.dev(), kept.ino()));
}

#[test]
fn javascript_evaluates_in_tools_and_expression_tools() {
    let tool = "cwlVersion: v1.2
class: CommandLineTool
requirements:
  InlineJavascriptRequirement:
    expressionLib:
      - 'function plus(a, b) { return a + b; }'
baseCommand: echo
inputs:
  n: int
arguments:
  - $(inputs.n + 1)
  - ${ return plus(inputs.n, 10); }
stdout: out.txt
outputs:
  out: stdout
";
    let expression_tool = "cwlVersion: v1.2
class: ExpressionTool
requirements:
  InlineJavascriptRequirement: {}
inputs:
  n: int
outputs:
  squares: int[]
expression: |
  ${
    var out = [];
    for (var i = 1; i <= inputs.n; i++) { out.push(i * i); }
    return {'squares': out};
  }
";
    let sb = Sandbox::new(&[
        ("js.cwl", tool),
        ("squares.cwl", expression_tool),
        ("job.yml", "n: 3\n"),
    ]);
    let out = sb.run(&[
        "cwl-runner",
        "--outdir",
        "o",
        "--quiet",
        "js.cwl",
        "job.yml",
    ]);
    let object = output_object(&out);
    let path = object["out"]["path"].as_str().expect("path");
    assert_eq!(
        std::fs::read_to_string(path).expect("the captured stdout"),
        "4 13\n"
    );
    let out = sb.run(&[
        "cwl-runner",
        "--outdir",
        "o2",
        "--quiet",
        "squares.cwl",
        "job.yml",
    ]);
    assert_eq!(
        output_object(&out),
        serde_json::json!({"squares": [1, 4, 9]})
    );
}

#[test]
fn javascript_errors_are_reported_with_the_document_and_line() {
    let broken = "cwlVersion: v1.2
class: CommandLineTool
requirements:
  InlineJavascriptRequirement: {}
baseCommand: echo
inputs:
  n: int
arguments:
  - $(inputs.n +)
outputs: []
";
    let throws = broken.replace("$(inputs.n +)", "$(inputs.n.x.y)");
    let sb = Sandbox::new(&[
        ("broken.cwl", broken),
        ("throws.cwl", &throws),
        ("job.yml", "n: 1\n"),
    ]);
    // A syntax error is found before anything runs, at its line.
    let out = sb.run(&["cwl-runner", "--outdir", "o", "broken.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("broken.cwl:9:")
            && err.contains("javascript error in $(inputs.n +): SyntaxError"),
        "{err}"
    );
    // An exception fails the run, naming the document, line and expression.
    let out = sb.run(&["cwl-runner", "--outdir", "o", "throws.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("throws.cwl:9:")
            && err.contains(
                "javascript error in $(inputs.n.x.y): TypeError: cannot read property 'y' of undefined"
            ),
        "{err}"
    );
}

#[test]
fn a_job_value_of_the_wrong_type_is_refused_naming_the_job_file() {
    let sb = Sandbox::new(&[
        ("echo.cwl", ECHO_TOOL),
        ("job.yml", "word: [not, a, string]\n"),
    ]);
    let out = sb.run(&["cwl-runner", "--outdir", "o", "echo.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("job.yml") && err.contains("input `word`") && err.contains("type string"),
        "{err}"
    );
}

#[test]
fn a_failing_tool_fails_the_run_with_its_command_and_exit_code() {
    let tool = "cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c, 'exit 3']
inputs: []
outputs: []
";
    let sb = Sandbox::new(&[("fail.cwl", tool)]);
    let out = sb.run(&["cwl-runner", "--outdir", "o", "fail.cwl"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("exited with 3"), "{err}");
}

#[test]
fn a_parameter_value_reaches_the_tool_as_one_word_never_through_a_shell() {
    let sb = Sandbox::new(&[
        ("echo.cwl", ECHO_TOOL),
        ("job.yml", "word: \"$(touch pwned); `touch pwned2`\"\n"),
    ]);
    let out = sb.run(&["cwl-runner", "--outdir", "o", "echo.cwl", "job.yml"]);
    let object = output_object(&out);
    let path = object["out"]["path"].as_str().expect("path");
    assert_eq!(
        std::fs::read_to_string(path).expect("read"),
        "$(touch pwned); `touch pwned2`\n"
    );
    assert!(!sb.path("pwned").exists() && !sb.path("o/pwned").exists());
}

#[test]
fn a_cycle_between_steps_is_an_error_naming_it() {
    let wf = "cwlVersion: v1.2
class: Workflow
inputs: []
outputs: []
steps:
  a:
    run: echo.cwl
    in: {word: b/out}
    out: [out]
  b:
    run: echo.cwl
    in: {word: a/out}
    out: [out]
";
    let sb = Sandbox::new(&[("echo.cwl", ECHO_TOOL), ("wf.cwl", wf)]);
    let out = sb.run(&["validate", "wf.cwl"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("dependency cycle: a -> b -> a")
            || err.contains("dependency cycle: b -> a -> b"),
        "{err}"
    );
}

#[test]
fn work_reuse_false_runs_the_step_again_where_twinflow_would_reuse_it() {
    let tool = |reuse: bool| {
        format!(
            "cwlVersion: v1.2
class: CommandLineTool
requirements:
  WorkReuse: {{enableReuse: {reuse}}}
baseCommand: date
inputs: []
stdout: now.txt
outputs:
  now: stdout
"
        )
    };
    let sb = Sandbox::new(&[("fresh.cwl", &tool(false)), ("reused.cwl", &tool(true))]);
    for (doc, second) in [
        ("fresh.cwl", "1 ran, 0 cached"),
        ("reused.cwl", "0 ran, 1 cached"),
    ] {
        let first = sb.run(&["run", doc]);
        assert!(first.status.success(), "{}", text(&first.stderr));
        let again = sb.run(&["run", doc]);
        let err = text(&again.stderr);
        assert!(err.contains(second), "{doc}: {err}");
    }
}

#[test]
fn a_site_file_puts_the_cwl_steps_on_slurm_a_scatter_as_one_job_array() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let sb = workflow_sandbox();
    std::fs::write(
        sb.path("site.yaml"),
        "version: 1\nexecutors:\n  cwl: { kind: slurm, partition: debug }\n",
    )
    .expect("write site");
    let out = sb.run(&["run", "--site", "site.yaml", "wf.cwl", "job.yml"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let status = sb.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let handles: Vec<&str> = status["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["handle"].as_str())
        .collect();
    assert_eq!(handles.len(), 5, "{status}");
    assert!(
        handles.iter().all(|h| h.starts_with("slurm:")),
        "{handles:?}"
    );
    // The three scatter tasks went out as one array: `slurm:JOB_0`, `JOB_1`, ...
    let arrays: std::collections::BTreeSet<&str> = handles[..3]
        .iter()
        .filter_map(|h| h.trim_start_matches("slurm:").split('_').next())
        .collect();
    assert_eq!(arrays.len(), 1, "{handles:?}");
    let run_dir = status["run"]["run_dir"].as_str().expect("run_dir");
    let object = std::fs::read_to_string(Path::new(run_dir).join("work/outputs/0/outputs.json"))
        .expect("outputs");
    let object: serde_json::Value = serde_json::from_str(&object).expect("JSON");
    let joined = Path::new(run_dir)
        .join("work/outputs/0")
        .join(object["joined"]["path"].as_str().expect("path"));
    assert_eq!(
        std::fs::read_to_string(joined).expect("read"),
        "alpha\nbeta\ngamma\n"
    );
}

#[test]
fn a_site_that_runs_the_steps_elsewhere_is_refused_naming_the_executor() {
    let sb = workflow_sandbox();
    std::fs::write(
        sb.path("site.yaml"),
        "version: 1\nexecutors:\n  cwl: { kind: slurm, partition: debug, ssh: \"me@login.example\", workdir: /scratch/me }\n",
    )
    .expect("write site");
    let out = sb.run(&["validate", "--site", "site.yaml", "wf.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("executor `cwl` (slurm) runs elsewhere"),
        "{err}"
    );
}

const ABSTRACT: &str = "cwlVersion: v1.2
class: Workflow
inputs:
  word: string
outputs:
  shouted:
    type: File
    outputSource: shout/loud
steps:
  say:
    run:
      class: Operation
      inputs: {word: string}
      outputs: {out: File}
    in: {word: word}
    out: [out]
  shout:
    run:
      class: Operation
      inputs: {text: File}
      outputs: {loud: File}
    in: {text: say/out}
    out: [loud]
";

#[test]
fn abstract_operations_run_as_their_binding_file_says() {
    let bindings = "version: 1
steps:
  say:
    run: echo.cwl
  shout:
    command: [sh, -c, 'tr a-z A-Z < \"$0\" > loud.txt', $(inputs.text.path)]
    outputs: {loud: {glob: loud.txt}}
";
    let sb = Sandbox::new(&[
        ("echo.cwl", ECHO_TOOL),
        ("abstract.cwl", ABSTRACT),
        ("bind.yml", bindings),
        ("job.yml", "word: quiet\n"),
    ]);
    let out = sb.run(&[
        "cwl-runner",
        "--outdir",
        "o",
        "--bind",
        "bind.yml",
        "abstract.cwl",
        "job.yml",
    ]);
    let object = output_object(&out);
    let path = object["shouted"]["path"].as_str().expect("path");
    assert_eq!(std::fs::read_to_string(path).expect("read"), "QUIET\n");
    // Through `run` too, each bound step its own twinflow step.
    let run = sb.run(&["run", "--bind", "bind.yml", "abstract.cwl", "job.yml"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
}

#[test]
fn an_unbound_operation_is_refused_naming_the_step() {
    let sb = Sandbox::new(&[
        ("abstract.cwl", ABSTRACT),
        ("bind.yml", "version: 1\nsteps:\n  say: {run: echo.cwl}\n"),
        ("echo.cwl", ECHO_TOOL),
        ("job.yml", "word: quiet\n"),
    ]);
    let out = sb.run(&["validate", "abstract.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "step `say` is an abstract Operation and is not bound (give a binding file with --bind)"
        ),
        "{err}"
    );
    let out = sb.run(&["validate", "--bind", "bind.yml", "abstract.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("step `shout` is an abstract Operation and is not bound")
            && err.contains("binds say"),
        "{err}"
    );
    std::fs::write(
        sb.path("typo.yml"),
        "version: 1\nsteps:\n  say: {rnu: echo.cwl}\n",
    )
    .expect("write");
    let out = sb.run(&["validate", "--bind", "typo.yml", "abstract.cwl", "job.yml"]);
    let err = text(&out.stderr);
    assert!(
        err.contains("typo.yml:3:") && err.contains("unknown key `rnu`"),
        "{err}"
    );
}

const UPPER_TOOL: &str = "cwlVersion: v1.2
class: CommandLineTool
baseCommand: [tr, a-z, A-Z]
inputs:
  text: {type: File, streamable: true}
stdin: $(inputs.text.path)
stdout: upper.txt
outputs:
  out: stdout
";

const CHAIN: &str = "cwlVersion: v1.2
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  words: string[]
outputs:
  joined:
    type: File
    outputSource: join/all
steps:
  say:
    run: echo.cwl
    scatter: word
    in: {word: words}
    out: [out]
  shout:
    run: upper.cwl
    scatter: text
    in: {text: say/out}
    out: [out]
  join:
    run: cat.cwl
    in: {files: shout/out}
    out: [all]
";

#[test]
fn a_scatter_over_a_scattered_step_is_one_task_per_producer_task() {
    let sb = Sandbox::new(&[
        ("echo.cwl", ECHO_TOOL),
        ("upper.cwl", UPPER_TOOL),
        ("cat.cwl", CAT_TOOL),
        ("chain.cwl", CHAIN),
        ("job.yml", "words: [alpha, beta, gamma]\n"),
    ]);
    let plan = sb.run(&["plan", "--json", "chain.cwl", "job.yml"]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    let tasks = plan["tasks"].as_array().expect("tasks");
    let by_name = |name: &str| {
        tasks
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no task {name}: {plan}"))
    };
    // shout[i=1] waits for say[i=1] alone, not for the whole scatter.
    let say1 = by_name("say[i=1]")["id"].clone();
    assert_eq!(
        by_name("shout[i=1]")["dependencies"],
        serde_json::json!([say1]),
        "{plan}"
    );
    assert_eq!(
        by_name("join")["dependencies"].as_array().map(Vec::len),
        Some(3)
    );
    let out = sb.run(&["cwl-runner", "--outdir", "o", "chain.cwl", "job.yml"]);
    let object = output_object(&out);
    let path = object["joined"]["path"].as_str().expect("path");
    assert_eq!(
        std::fs::read_to_string(path).expect("read"),
        "ALPHA\nBETA\nGAMMA\n"
    );
}

#[test]
fn validate_without_a_job_checks_the_document_alone() {
    let sb = workflow_sandbox();
    let out = sb.run(&["validate", "wf.cwl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("CWL Workflow is valid (1 inputs, 1 outputs)"),
        "{said}"
    );
    std::fs::write(
        sb.path("broken.cwl"),
        WORKFLOW.replace("run: cat.cwl", "run: missing.cwl"),
    )
    .expect("write");
    let out = sb.run(&["validate", "broken.cwl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing.cwl"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_cwl_run_exports_a_provenance_crate_with_its_tasks_and_artefacts() {
    let sb = workflow_sandbox();
    let out = sb.run(&["run", "wf.cwl", "job.yml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let crate_dir = sb.path("crate");
    let out = sb.run(&[
        "provenance",
        "latest",
        "--out",
        &crate_dir.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let metadata =
        std::fs::read_to_string(crate_dir.join("ro-crate-metadata.json")).expect("metadata");
    let metadata: serde_json::Value = serde_json::from_str(&metadata).expect("JSON");
    let graph = metadata["@graph"].as_array().expect("@graph");
    let actions = graph
        .iter()
        .filter(|e| {
            e["@type"] == "CreateAction"
                || e["@type"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == "CreateAction"))
        })
        .count();
    // say[i=0..2], join and outputs.
    assert!(actions >= 5, "{actions} actions: {metadata}");
}

#[test]
fn submitting_a_cwl_document_to_the_daemon_is_refused_not_misread() {
    let sb = workflow_sandbox();
    let out = sb.run(&["submit", "wf.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("the daemon does not take CWL documents yet"),
        "{err}"
    );
}

#[test]
fn the_forest_bird_cwl_example_runs_each_scenario_as_its_own_tasks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/forest-bird-cwl");
    let sb = Sandbox::new(&[]);
    let doc = root.join("forest-bird.cwl").display().to_string();
    let job = root.join("job.json").display().to_string();
    let out = sb.run(&["cwl-runner", "--outdir", "o", &doc, &job]);
    let object = output_object(&out);
    let table =
        std::fs::read_to_string(object["table"]["path"].as_str().expect("path")).expect("table");
    for scenario in ["ssp126", "ssp245", "ssp585"] {
        assert!(
            table.contains(scenario),
            "{scenario} missing from:\n{table}"
        );
    }
    let chart =
        std::fs::read_to_string(object["chart"]["path"].as_str().expect("path")).expect("chart");
    assert!(
        chart.starts_with("<svg") || chart.contains("<svg"),
        "not an SVG chart"
    );
}

#[test]
fn max_tasks_bounds_a_cwl_plan_as_it_bounds_a_yaml_one() {
    let sb = workflow_sandbox();
    let out = sb.run(&["validate", "--max-tasks", "2", "wf.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("more than 2 tasks (step `say` scatters into 3 jobs)"),
        "{err}"
    );
    let out = sb.run(&["validate", "--max-tasks", "4", "wf.cwl", "job.yml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("more than 4 tasks (5 with the step that assembles the outputs)"),
        "{}",
        text(&out.stderr)
    );
    let out = sb.run(&["validate", "--max-tasks", "5", "wf.cwl", "job.yml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
