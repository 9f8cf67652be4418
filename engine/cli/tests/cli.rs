//! The `twinflow` binary as a user runs it: outputs and documented exit codes.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn forest_bird() -> PathBuf {
    repo().join("workflows/forest-bird/forest-bird.yaml")
}

fn twinflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twinflow")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twinflow-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

#[test]
fn validate_summarises_tasks_per_step_and_exits_0() {
    let o = twinflow(&["validate", forest_bird().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("workflow `forest-bird` is valid"), "{out}");
    assert!(out.contains("9 points, runahead 2"), "{out}");
    for line in [
        "climate-ingest             3",
        "forest-structure          81",
        "summary                    1",
        "total                    166",
    ] {
        assert!(out.contains(line), "missing `{line}` in\n{out}");
    }
}

#[test]
fn the_normative_example_validates_unchanged() {
    let shared = repo().join("../shared/spec/forest-bird.yaml");
    let o = twinflow(&["validate", shared.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("166"));
}

#[test]
fn an_invalid_workflow_exits_2_with_a_located_diagnostic() {
    let bad = write_temp(
        "bad.yaml",
        "version: 1\nsteps:\n  a:\n    run: echo\n    need: {}\n",
    );
    let o = twinflow(&["validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("unknown key `need`"), "{err}");
    assert!(err.contains("bad.yaml:5:5"), "{err}");
    assert!(err.contains("did you mean `needs`?"), "{err}");
    assert!(err.contains("could not compile"), "{err}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn missing_files_unknown_params_and_bad_arguments_exit_2() {
    let o = twinflow(&["validate", "/nonexistent/flow.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("failed to read workflow file `/nonexistent/flow.yaml`"));

    let fb = forest_bird();
    let o = twinflow(&["validate", fb.to_str().unwrap(), "--param", "climat=ssp126"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `climate`?"),
        "{}",
        stderr(&o)
    );

    let o = twinflow(&["validate", fb.to_str().unwrap(), "--param", "novalue"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("key=value"));

    let o = twinflow(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));

    let o = twinflow(&[
        "validate",
        fb.to_str().unwrap(),
        "--site",
        "/nonexistent/site.yaml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("failed to read site file"));
}

#[test]
fn param_overrides_change_the_plan() {
    let fb = forest_bird();
    let o = twinflow(&[
        "validate",
        fb.to_str().unwrap(),
        "-p",
        "climate=ssp126",
        "--param",
        "management=set-aside",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("total                     20"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn plan_json_is_the_documented_form() {
    let o = twinflow(&["plan", forest_bird().to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(json["format"], "twinflow.plan/v1");
    assert_eq!(json["tasks"].as_array().map(Vec::len), Some(166));
    assert_eq!(
        json["steps"][1]["needs"]["previous"],
        "forest-structure.stands@-1"
    );
    let cmd = json["tasks"][0]["command"].as_str().unwrap();
    assert!(
        cmd.contains("--scenario ssp126 --region south-finland --out drivers.csv"),
        "{cmd}"
    );
}

#[test]
fn plan_text_lists_commands_and_dependencies() {
    let o = twinflow(&["plan", forest_bird().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("#165 summary"), "{out}");
    assert!(out.contains("after: #84 #85"), "{out}");
    assert!(out.ends_with("166 tasks\n"));
}

#[test]
fn plan_shows_gpus_and_their_type() {
    let path = write_temp(
        "gpus.yaml",
        "version: 1\nexecutors:\n  hpc: { kind: slurm, gpu_vendor: amd }\nsteps:\n  train: { resources: { gpus: { count: 2, type: mi250x } }, run: \"true\" }\n",
    );
    let o = twinflow(&["plan", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("executor: hpc (slurm)  cpus=1 gpus=2 gpu_type=mi250x"),
        "{out}"
    );
    let o = twinflow(&["plan", path.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(json["tasks"][0]["resources"]["gpu_type"], "mi250x");
    assert_eq!(json["tasks"][0]["resources"]["gpus"], 2);
    assert_eq!(json["executors"]["hpc"]["gpu_vendor"], "amd");
}

#[test]
fn graphs_in_dot_and_mermaid() {
    let fb = forest_bird();
    let o = twinflow(&["graph", fb.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph \"forest-bird\""), "{dot}");
    assert!(
        dot.contains("s1 -> s1 [label=\"previous @-1\", style=dashed]"),
        "{dot}"
    );
    assert!(
        dot.contains("s2 -> s3 [label=\"richness (gather)\"]"),
        "{dot}"
    );

    let o = twinflow(&["graph", fb.to_str().unwrap(), "--format", "mermaid"]);
    let mermaid = stdout(&o);
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert!(mermaid.contains("s0 -->|\"drivers\"| s1"), "{mermaid}");

    let o = twinflow(&["graph", fb.to_str().unwrap(), "--tasks"]);
    let tasks = stdout(&o);
    assert_eq!(tasks.matches(" -> t165;").count(), 81);
}

#[test]
fn schema_and_completions_print() {
    let o = twinflow(&["schema"]);
    assert_eq!(o.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).expect("schema JSON");
    assert!(schema["properties"]["steps"].is_object());
    let o = twinflow(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("validate"));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["plan", "--help"],
        &["graph", "--help"],
        &["schema", "--help"],
        &["completions", "--help"],
    ] {
        let o = twinflow(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(stdout(&o).contains("Usage:"), "{args:?}");
    }
    let o = twinflow(&["--help"]);
    assert!(stdout(&o).contains("Exit codes"), "{}", stdout(&o));
}

/// Runs twinflow, killing it (and failing) if it takes more than 60 s. Its
/// output goes to files (a full pipe would stop it).
fn twinflow_within_a_minute(args: &[&str]) -> Output {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = write_temp(&format!("run-{run}.out"), "");
    let err = out.with_extension("err");
    let file = |p: &Path| std::fs::File::create(p).expect("output file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(file(&out))
        .stderr(file(&err))
        .spawn()
        .expect("run twinflow");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for twinflow") {
            break status;
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().expect("kill twinflow");
            child.wait().expect("reap twinflow");
            panic!("twinflow {args:?} did not finish within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out).expect("stdout"),
        stderr: std::fs::read(&err).expect("stderr"),
    }
}

#[test]
fn endless_and_blocking_files_are_refused_not_read() {
    let o = twinflow_within_a_minute(&["validate", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("workflow file `/dev/zero` is a character device, not a regular file"),
        "{}",
        stderr(&o)
    );
    let fifo = write_temp("unused.yaml", "").with_file_name("site-fifo.yaml");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let fb = forest_bird();
    let o = twinflow_within_a_minute(&[
        "validate",
        fb.to_str().unwrap(),
        "--site",
        fifo.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is a FIFO (named pipe), not a regular file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn many_errors_are_capped_and_counted() {
    let mut yaml = String::from("version: 1\nsteps:\n  a:\n    run: echo\n");
    for i in 0..300 {
        yaml.push_str(&format!("    key{i}: {i}\n"));
    }
    let bad = write_temp("many.yaml", &yaml);
    let o = twinflow_within_a_minute(&["validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.matches("unknown key").count(), 200, "{err}");
    assert!(
        err.contains("error: and 100 more errors (only the first 200 are shown)"),
        "{err}"
    );
    assert!(err.contains("due to 300 errors"), "{err}");
}
