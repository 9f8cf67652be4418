//! The language's rules, checked on small workflows: instance naming, the
//! matching rule (single, gather, `@-k`), substitution with quoting, env,
//! `--param`, `--site` and `--local`.
#![expect(clippy::panic, reason = "test helpers fail the test with a message")]

use twinflow_core::{BackendConfig, Plan, TaskId};
use twinflow_workflow::{CompileOptions, SiteSource, compile_str};

fn compile(yaml: &str) -> Plan {
    compile_with(yaml, &CompileOptions::default())
}

fn compile_with(yaml: &str, options: &CompileOptions) -> Plan {
    match compile_str("test.yaml", yaml, options) {
        Ok(plan) => plan,
        Err(e) => panic!("did not compile:\n{}", e.render(false)),
    }
}

fn id(plan: &Plan, name: &str) -> TaskId {
    plan.find_task(name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

fn dep_names(plan: &Plan, name: &str) -> Vec<String> {
    plan.dependencies(id(plan, name))
        .iter()
        .map(|d| plan.task_name(*d))
        .collect()
}

fn command(plan: &Plan, name: &str) -> String {
    plan.task(id(plan, name)).command.to_string()
}

const FOREST_BIRD: &str = include_str!("../../../workflows/forest-bird/forest-bird.yaml");

/// The demo workflow compiled as from its file's directory (its `model:`
/// crate is found relative to it).
fn forest_bird(mut options: CompileOptions) -> Plan {
    options.workflow_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/forest-bird");
    compile_with(FOREST_BIRD, &options)
}

#[test]
fn forest_bird_has_the_brief_s_task_counts_and_edges() {
    let plan = forest_bird(CompileOptions::default());
    let counts: Vec<usize> = plan.steps.iter().map(|s| s.tasks.len()).collect();
    assert_eq!(counts, [3, 81, 81, 1]);
    // The first decade has no previous state: only the climate driver.
    let first = "forest-structure[climate=ssp245,management=set-aside]@2020-01-01";
    assert_eq!(dep_names(&plan, first), ["climate-ingest[climate=ssp245]"]);
    assert!(command(&plan, first).contains("--state ''"));
    // Later decades need their own previous decade and their climate.
    let later = "forest-structure[climate=ssp245,management=set-aside]@2030-01-01";
    assert_eq!(
        dep_names(&plan, later),
        [
            "climate-ingest[climate=ssp245]",
            "forest-structure[climate=ssp245,management=set-aside]@2020-01-01"
        ]
    );
    assert!(command(&plan, later).contains("--state inputs/previous.csv"));
    // The bird model of a point gets the forest of the same point.
    let bird = "bird-biodiversity[climate=ssp585,management=extended-rotation]@2100-01-01";
    assert_eq!(
        dep_names(&plan, bird),
        ["forest-structure[climate=ssp585,management=extended-rotation]@2100-01-01"]
    );
    // The summary gathers all 81, in declaration order, cycle point innermost.
    let summary = plan.find_task("summary").unwrap();
    assert_eq!(plan.dependencies(summary).len(), 81);
    let input = plan.inputs(summary).next().unwrap();
    assert!(input.spec.gather);
    let names: Vec<String> = input.producers.iter().map(|p| plan.task_name(*p)).collect();
    assert_eq!(
        names[0],
        "bird-biodiversity[climate=ssp126,management=business-as-usual]@2020-01-01"
    );
    assert_eq!(
        names[1],
        "bird-biodiversity[climate=ssp126,management=business-as-usual]@2030-01-01"
    );
    assert_eq!(
        names[80],
        "bird-biodiversity[climate=ssp585,management=set-aside]@2100-01-01"
    );
    let paths = plan.input_paths(&input);
    assert_eq!(paths[0], "inputs/richness/0.csv");
    assert!(command(&plan, "summary").contains("inputs/richness/80.csv"));
    assert_eq!(plan.cycle.as_ref().unwrap().runahead, Some(2));
}

#[test]
fn gather_over_a_key_the_consumer_lacks_and_match_on_shared_keys() {
    let plan = compile(
        r#"
version: 1
steps:
  sim:
    for_each: { member: [a, b, c], region: [north, south] }
    run: echo > ${{ outputs.out }}
    outputs: { out: out.nc }
  stats:
    for_each: { region: [south, north] }
    needs: { members: sim.out }
    run: stats ${{ inputs.members }}
"#,
    );
    assert_eq!(
        dep_names(&plan, "stats[region=north]"),
        [
            "sim[member=a,region=north]",
            "sim[member=b,region=north]",
            "sim[member=c,region=north]"
        ]
    );
    assert_eq!(
        command(&plan, "stats[region=south]"),
        "stats inputs/members/0.nc inputs/members/1.nc inputs/members/2.nc"
    );
}

#[test]
fn offsets_reach_k_points_back_and_are_absent_before() {
    let plan = compile(
        r#"
version: 1
cycle: { start: 2000-01-01, stop: 2000-01-05, step: P1D }
steps:
  model:
    cycling: true
    needs: { restart: model.state@-2 }
    after: [model@-1]
    run: run --restart ${{ inputs.restart }} --day ${{ cycle.day }} --at ${{ cycle.point }}
    outputs: { state: state.bin }
"#,
    );
    assert_eq!(dep_names(&plan, "model@2000-01-01"), Vec::<String>::new());
    assert_eq!(dep_names(&plan, "model@2000-01-02"), ["model@2000-01-01"]);
    assert_eq!(
        dep_names(&plan, "model@2000-01-03"),
        ["model@2000-01-01", "model@2000-01-02"]
    );
    assert_eq!(
        command(&plan, "model@2000-01-01"),
        "run --restart '' --day 1 --at 2000-01-01"
    );
    assert_eq!(
        command(&plan, "model@2000-01-05"),
        "run --restart inputs/restart.bin --day 5 --at 2000-01-05"
    );
}

#[test]
fn non_cycling_consumer_gathers_every_point() {
    let plan = compile(
        r#"
version: 1
cycle: { start: 2020-01-01, stop: 2022-01-01, step: P1Y }
steps:
  year:
    cycling: true
    run: echo ${{ cycle.year }} > ${{ outputs.o }}
    outputs: { o: o.txt }
  all:
    needs: { years: year.o }
    run: cat ${{ inputs.years }}
"#,
    );
    assert_eq!(plan.dependencies(id(&plan, "all")).len(), 3);
    assert_eq!(command(&plan, "year@2021-01-01"), "echo 2021 > o.txt");
}

#[test]
fn values_are_shell_quoted_and_lists_become_words() {
    let mut options = CompileOptions::default();
    options
        .params
        .push(("greeting".into(), "it's $(rm -rf ~)".into()));
    options
        .params
        .push(("names".into(), "ann,bob smith".into()));
    let plan = compile_with(
        r#"
version: 1
params:
  greeting: hello
  names: [x]
steps:
  say:
    run: echo ${{ params.greeting }} to ${{ params.names }} from ${{ task.name }}
"#,
        &options,
    );
    assert_eq!(
        command(&plan, "say"),
        r#"echo 'it'\''s $(rm -rf ~)' to ann 'bob smith' from say"#
    );
}

#[test]
fn for_each_from_a_param_follows_its_override() {
    let mut options = CompileOptions::default();
    options
        .params
        .push(("climate".into(), "ssp126,ssp585".into()));
    let plan = forest_bird(options.clone());
    let counts: Vec<usize> = plan.steps.iter().map(|s| s.tasks.len()).collect();
    assert_eq!(counts, [2, 54, 54, 1]);
}

#[test]
fn env_merges_workflow_executor_and_step_and_describes_the_task() {
    let plan = compile(
        r#"
version: 1
env: { A: workflow, B: workflow }
cycle: { start: 2020-01-01, stop: 2020-01-01, step: P1Y }
executors:
  here: { kind: local, env: { B: executor, C: executor } }
steps:
  s:
    for_each: { k: [v1] }
    cycling: true
    env: { C: "step ${{ k }} ${{ cycle.year }}" }
    run: "true"
"#,
    );
    let env = plan.task_env(id(&plan, "s[k=v1]@2020-01-01"));
    let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("A"), Some("workflow"));
    assert_eq!(get("B"), Some("executor"));
    assert_eq!(get("C"), Some("step v1 2020"));
    assert_eq!(get("TWINFLOW_KEY_K"), Some("v1"));
    assert_eq!(get("TWINFLOW_CYCLE_YEAR"), Some("2020"));
    assert_eq!(get("TWINFLOW_TASK_NAME"), Some("s[k=v1]@2020-01-01"));
}

#[test]
fn site_files_rebind_roles_and_local_binds_everything_locally() {
    let site = SiteSource {
        name: "lumi.yaml".into(),
        text: "version: 1\nexecutors:\n  hpc: { kind: slurm, partition: standard-g, account: project_1, ssh: alice@lumi.example.org, array_throttle: 50, twinflow: /appl/twinflow/bin/twinflow }\n".into(),
    };
    let options = CompileOptions {
        site: Some(site),
        ..CompileOptions::default()
    };
    let plan = forest_bird(options.clone());
    let hpc = plan.executors.iter().find(|e| e.name == "hpc").unwrap();
    let BackendConfig::Slurm(slurm) = &hpc.backend else {
        panic!("not slurm")
    };
    assert_eq!(slurm.partition.as_deref(), Some("standard-g"));
    assert_eq!(slurm.array_throttle, Some(50));
    assert_eq!(
        slurm.twinflow.as_deref(),
        Some("/appl/twinflow/bin/twinflow")
    );
    assert_eq!(
        slurm.ssh.as_ref().unwrap().to_string(),
        "alice@lumi.example.org"
    );
    assert_eq!(hpc.bound_by.as_deref(), Some("lumi.yaml"));

    let options = CompileOptions {
        local: true,
        ..CompileOptions::default()
    };
    let plan = forest_bird(options.clone());
    assert!(
        plan.executors
            .iter()
            .all(|e| matches!(e.backend, BackendConfig::Local(_))
                && e.bound_by.as_deref() == Some("--local"))
    );
}

#[test]
fn a_workflow_without_executors_runs_locally_and_names_default_to_the_file() {
    let plan = compile("version: 1\nsteps:\n  hello:\n    run: echo hi\n");
    assert_eq!(plan.workflow.name, "test");
    assert_eq!(plan.executors.len(), 1);
    assert_eq!(plan.executors[0].name, "local");
    assert_eq!(plan.task_name(TaskId(0)), "hello");
}

#[test]
fn resources_retries_and_timeouts_are_in_plain_units() {
    let plan = compile(
        r#"
version: 1
executors:
  hpc: { kind: slurm }
steps:
  big:
    resources: { cpus: 4, memory: 8GiB, time: "01:30:00", gpus: 1 }
    retries: 2
    timeout: 2h
    run: "true"
"#,
    );
    let step = &plan.steps[0];
    assert_eq!(step.resources.cpus, 4);
    assert_eq!(step.resources.memory_bytes, Some(8 << 30));
    assert_eq!(step.resources.time_seconds, Some(5400));
    assert_eq!(step.resources.gpus, 1);
    assert_eq!((step.retries, step.timeout_seconds), (2, Some(7200)));
}

#[test]
fn every_error_of_a_file_is_reported_at_once() {
    let err = compile_str(
        "multi.yaml",
        r#"
version: 1
steps:
  a:
    runn: echo
    run: echo ${{ params.nope }}
  b:
    needs: { x: a.missing }
    run: "true"
    retries: many
  c:
    resources: { memory: 8 }
    run: "true"
"#,
        &CompileOptions::default(),
    )
    .unwrap_err();
    let codes: Vec<&str> = err.diagnostics.iter().map(|d| d.code()).collect();
    assert_eq!(
        codes,
        [
            "twinflow::unknown-key",
            "twinflow::unknown-expression",
            "twinflow::wrong-type",
            "twinflow::bad-memory"
        ],
        "{}",
        err.render(false)
    );
}

#[test]
fn plan_json_is_stable_and_complete() {
    let plan = forest_bird(CompileOptions::default());
    let json = serde_json::to_value(twinflow_core::PlanJson(&plan)).unwrap();
    assert_eq!(json["format"], "twinflow.plan/v1");
    assert_eq!(json["task_count"], 166);
    assert_eq!(json["executors"]["hpc"]["kind"], "slurm");
    assert_eq!(
        json["executors"]["cloud"]["store"]["bucket"],
        "dtwin-artefacts"
    );
    let task = &json["tasks"][12];
    assert_eq!(
        task["name"],
        "forest-structure[climate=ssp126,management=extended-rotation]@2020-01-01"
    );
    assert_eq!(task["for_each"]["management"], "extended-rotation");
    assert_eq!(task["cycle_point"], "2020-01-01");
    assert_eq!(task["executor"], "hpc");
    assert_eq!(task["resources"]["memory_bytes"], 8u64 << 30);
    assert_eq!(task["dependencies"], serde_json::json!([0]));
    assert_eq!(task["inputs"]["drivers"]["paths"][0], "inputs/drivers.csv");
    assert_eq!(task["inputs"]["previous"]["paths"], serde_json::json!([]));
    assert_eq!(task["outputs"]["stands"], "stands.csv");
    assert_eq!(json["tasks"][165]["inputs"]["richness"]["gather"], true);
}

#[test]
fn every_repeat_of_a_param_value_points_at_its_first_occurrence() {
    let text = "version: 1\nparams:\n  p: [a, b, a, a]\nsteps:\n  s:\n    run: \"true\"\n";
    let err = compile_str("dup.yaml", text, &CompileOptions::default()).unwrap_err();
    let first = text.find("a,").unwrap();
    assert_eq!(err.diagnostics.len(), 2, "{}", err.render(false));
    for d in &err.diagnostics {
        assert_eq!(d.code(), "twinflow::duplicate-value");
        let labels: Vec<_> = miette::Diagnostic::labels(d).unwrap().collect();
        assert_eq!(labels[1].offset(), first, "{}", d.render(false));
        assert_eq!(labels[1].label(), Some("first here"));
    }
}

#[test]
fn a_relative_sif_on_this_machine_is_taken_from_the_workflow_dir_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    std::fs::write(dir.path().join("images/model.sif"), b"SIF").unwrap();
    let yaml = "
version: 1
name: boxed
executors: { here: { kind: local, container_runtime: apptainer } }
steps:
  a:
    executor: here
    container: images/model.sif
    run: echo a
  b:
    executor: here
    container: { image: localhost/model:1, runtime: podman }
    run: echo b
";
    let options = CompileOptions {
        workflow_dir: dir.path().to_path_buf(),
        ..CompileOptions::default()
    };
    let plan = compile_with(yaml, &options);
    let image = |name: &str| {
        let step = plan.steps.iter().find(|s| s.name == name).unwrap();
        step.container.as_ref().unwrap().image.clone()
    };
    let expected = dir.path().join("images/model.sif");
    assert_eq!(image("a"), expected.display().to_string());
    assert_eq!(image("b"), "localhost/model:1");

    std::fs::remove_file(&expected).unwrap();
    let err = compile_str("test.yaml", yaml, &options).unwrap_err();
    let shown = err.render(false);
    assert!(shown.contains("twinflow::missing-image"), "{shown}");
    assert!(shown.contains(&expected.display().to_string()), "{shown}");
}
