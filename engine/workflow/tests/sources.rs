//! `sources:` and `wait_for:`: the plan a workflow with external data
//! compiles to (source steps after the workflow's, the fetch executor last,
//! one task per instance whose command is its URL, percent-encoded), how
//! consumers receive them, and data triggers.
#![expect(clippy::panic, reason = "test helpers fail the test with a message")]

use twinflow_core::{
    BackendConfig, FETCH_EXECUTOR, FetchConfig, Plan, PlanJson, SourceFormat, SourceScheme,
    SourceSpec, WaitSpec,
};
use twinflow_workflow::{CompileOptions, compile_str};

fn compile(yaml: &str) -> Plan {
    compile_with(yaml, &CompileOptions::default())
}

fn compile_with(yaml: &str, options: &CompileOptions) -> Plan {
    match compile_str("test.yaml", yaml, options) {
        Ok(plan) => plan,
        Err(e) => panic!("did not compile:\n{}", e.render(false)),
    }
}

fn command(plan: &Plan, name: &str) -> String {
    let id = plan
        .find_task(name)
        .unwrap_or_else(|| panic!("no task {name}"));
    plan.task(id).command.to_string()
}

fn deps(plan: &Plan, name: &str) -> Vec<String> {
    let id = plan
        .find_task(name)
        .unwrap_or_else(|| panic!("no task {name}"));
    plan.dependencies(id)
        .iter()
        .map(|d| plan.task_name(*d))
        .collect()
}

fn fetch(plan: &Plan) -> &FetchConfig {
    match &plan.executors.last().map(|e| &e.backend) {
        Some(BackendConfig::Fetch(f)) => f,
        other => panic!("the last executor is not the fetch executor: {other:?}"),
    }
}

fn source<'a>(plan: &'a Plan, name: &str) -> &'a SourceSpec {
    fetch(plan)
        .sources
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no source {name}"))
}

const WORKFLOW: &str = r#"
version: 1
name: sources-demo
params:
  country: FI
  region: north finland
cycle: { start: 2020-01-01, stop: 2022-01-01, step: P1Y }
sources:
  birds:
    url: gbif:download/0001234-210914110416597
  occ_query:
    url: "gbif:occurrence?taxonKey=212&country=${{ params.country }}"
    prepare_timeout: 12h
    endpoint: http://127.0.0.1:8080/v1
  tas:
    url: "https://data.example.org/tas/tas_${{ cycle.year }}.nc"
    format: netcdf
    max_size: 2GiB
  stands:
    url: s3://forest/stands/
    endpoint: http://127.0.0.1:7480
    region: us-east-1
    profile: ceph
  mask:
    url: "https://data.example.org/masks/${{ params.region }}/mask.csv"
    sha256: ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789
    refresh: 30d
  scenes:
    url: "stac+https://stac.example.org/search?collections=s2&datetime=${{ cycle.point }}"
    assets: [B04, B08]
    max_items: 10
steps:
  prepare:
    needs: { occ: sources.birds, mask: sources.mask }
    run: prep ${{ inputs.occ }} ${{ inputs.mask }} > out.csv
    outputs: { table: out.csv }
  model:
    cycling: true
    needs: { tas: sources.tas, table: prepare.table, prev: sources.tas@-1 }
    wait_for: [sources.tas, { source: sources.scenes, interval: 10m, timeout: 2d }]
    run: model ${{ inputs.tas }} ${{ inputs.prev }} ${{ inputs.table }}
  summary:
    needs: { all: sources.tas }
    wait_for: [{ source: sources.scenes, interval: 5m, timeout: 1d }]
    run: summarise ${{ inputs.all }}
"#;

#[test]
fn sources_become_steps_after_the_workflow_s_on_the_fetch_executor_last() {
    let plan = compile(WORKFLOW);
    let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prepare",
            "model",
            "summary",
            "sources.birds",
            "sources.occ_query",
            "sources.tas",
            "sources.stands",
            "sources.mask",
            "sources.scenes"
        ]
    );
    let executors: Vec<&str> = plan.executors.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(executors, ["local", FETCH_EXECUTOR]);
    for step in &plan.steps[3..] {
        assert_eq!(step.executor.index(), 1, "{}", step.name);
        assert_eq!(step.outputs.len(), 1);
        assert_eq!((step.retries, step.timeout_seconds), (0, None));
        assert!(step.inputs.is_empty() && step.after.is_empty() && step.for_each.is_empty());
    }
    let counts: Vec<usize> = plan.steps.iter().map(|s| s.tasks.len()).collect();
    assert_eq!(counts, [1, 3, 1, 1, 1, 3, 1, 1, 3]);
    // The workflow's own steps keep their task ids: sources come after.
    assert_eq!(plan.steps[0].tasks.start, 0);
    assert_eq!(plan.steps[3].tasks.start, 5);
}

/// Fails unless each `(task, command)` of `want` is that task's command.
fn assert_commands(plan: &Plan, want: &[(&str, &str)]) {
    for (task, cmd) in want {
        assert_eq!(command(plan, task), *cmd, "the command of {task}");
    }
}

#[test]
fn a_source_s_task_fetches_its_url_with_values_percent_encoded() {
    assert_commands(
        &compile(WORKFLOW),
        &[
            ("sources.birds", "gbif:download/0001234-210914110416597"),
            (
                "sources.mask",
                "https://data.example.org/masks/north%20finland/mask.csv",
            ),
            (
                "sources.occ_query",
                "gbif:occurrence?taxonKey=212&country=FI",
            ),
            (
                "sources.tas@2021-01-01",
                "https://data.example.org/tas/tas_2021.nc",
            ),
            (
                "sources.scenes@2022-01-01",
                "stac+https://stac.example.org/search?collections=s2&datetime=2022-01-01",
            ),
        ],
    );
}

#[test]
fn consumers_receive_sources_like_outputs() {
    let plan = compile(WORKFLOW);
    assert_commands(
        &plan,
        &[
            ("prepare", "prep inputs/occ inputs/mask.csv > out.csv"),
            (
                "model@2021-01-01",
                "model inputs/tas.nc inputs/prev.nc inputs/table.csv",
            ),
            (
                "model@2020-01-01",
                "model inputs/tas.nc '' inputs/table.csv",
            ),
            // A step that does not cycle gathers every instance of a
            // cycling source.
            (
                "summary",
                "summarise inputs/all/0.nc inputs/all/1.nc inputs/all/2.nc",
            ),
        ],
    );
    assert_eq!(
        deps(&plan, "model@2021-01-01"),
        [
            "prepare",
            "sources.tas@2020-01-01",
            "sources.tas@2021-01-01",
            "sources.scenes@2021-01-01"
        ]
    );
    assert_eq!(
        deps(&plan, "summary"),
        [
            "sources.tas@2020-01-01",
            "sources.tas@2021-01-01",
            "sources.tas@2022-01-01",
            "sources.scenes@2020-01-01",
            "sources.scenes@2021-01-01",
            "sources.scenes@2022-01-01"
        ]
    );
}

#[test]
fn source_specs_carry_scheme_shape_and_options() {
    let plan = compile(WORKFLOW);
    let birds = source(&plan, "birds");
    assert_eq!(
        (birds.scheme, birds.format, birds.directory),
        (SourceScheme::Gbif, SourceFormat::Dwca, true)
    );
    assert_eq!(birds.file_name, "birds");
    let q = source(&plan, "occ_query");
    assert_eq!(q.options.prepare_timeout_seconds, Some(12 * 3600));
    assert_eq!(
        q.options.endpoint.as_deref(),
        Some("http://127.0.0.1:8080/v1")
    );
    let tas = source(&plan, "tas");
    assert_eq!((tas.scheme, tas.directory), (SourceScheme::Http, false));
    assert_eq!(tas.file_name, "tas.nc");
    assert_eq!(tas.format, SourceFormat::Netcdf);
    assert_eq!(tas.options.max_size, Some(2 << 30));
    let stands = source(&plan, "stands");
    assert_eq!((stands.scheme, stands.directory), (SourceScheme::S3, true));
    assert_eq!(stands.options.profile.as_deref(), Some("ceph"));
    let mask = source(&plan, "mask");
    assert_eq!(mask.file_name, "mask.csv");
    assert_eq!(mask.refresh_seconds, Some(30 * 86_400));
    assert_eq!(
        mask.sha256.as_deref(),
        Some("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
    );
    let scenes = source(&plan, "scenes");
    assert_eq!(
        (scenes.scheme, scenes.directory),
        (SourceScheme::Stac, true)
    );
    assert_eq!(scenes.options.assets, ["B04", "B08"]);
    assert_eq!(scenes.options.max_items, Some(10));
}

#[test]
fn several_waits_take_the_shortest_interval_and_the_longest_timeout() {
    let plan = compile(WORKFLOW);
    assert_eq!(
        source(&plan, "scenes").wait,
        Some(WaitSpec {
            interval_seconds: 300,
            timeout_seconds: Some(2 * 86_400)
        })
    );
    assert_eq!(
        source(&plan, "tas").wait,
        Some(WaitSpec {
            interval_seconds: 60,
            timeout_seconds: None
        })
    );
    assert_eq!(source(&plan, "birds").wait, None);
}

#[test]
fn a_workflow_without_sources_has_no_fetch_executor() {
    let plan = compile("version: 1\nsteps:\n  a: { run: echo }\n");
    assert_eq!(plan.executors.len(), 1);
    assert!(!matches!(
        plan.executors[0].backend,
        BackendConfig::Fetch(_)
    ));
}

#[test]
fn local_rebinding_leaves_the_fetch_executor_alone() {
    let yaml = "version: 1
executors:
  hpc: { kind: slurm, partition: small }
sources:
  occ: { url: \"https://x.org/occ.csv\" }
steps:
  a: { executor: hpc, needs: { o: sources.occ }, run: \"cat ${{ inputs.o }}\" }
";
    let options = CompileOptions {
        local: true,
        ..CompileOptions::default()
    };
    let plan = compile_with(yaml, &options);
    let fetch = &plan.executors[1];
    assert_eq!(fetch.name, FETCH_EXECUTOR);
    assert_eq!(fetch.bound_by, None);
    assert!(matches!(fetch.backend, BackendConfig::Fetch(_)));
    assert_eq!(plan.executors[0].bound_by.as_deref(), Some("--local"));
    assert_eq!(command(&plan, "a"), "cat inputs/o.csv");
}

#[test]
fn after_a_source_orders_without_an_input() {
    let yaml = "version: 1
sources:
  occ: { url: \"https://x.org/occ.csv\" }
steps:
  a: { after: [sources.occ], run: echo }
";
    let plan = compile(yaml);
    assert_eq!(deps(&plan, "a"), ["sources.occ"]);
    assert_eq!(source(&plan, "occ").wait, None);
}

#[test]
fn the_plan_json_shows_source_steps_and_the_fetch_executor() {
    let plan = compile(WORKFLOW);
    let json = serde_json::to_value(PlanJson(&plan)).unwrap_or_default();
    assert_eq!(json["format"], "twinflow.plan/v1");
    let fetch = &json["executors"][FETCH_EXECUTOR];
    assert_eq!(fetch["kind"], "fetch");
    assert_eq!(fetch["sources"].as_array().map(Vec::len), Some(6));
    assert_eq!(fetch["sources"][2]["file_name"], "tas.nc");
    assert_eq!(fetch["sources"][5]["wait"]["interval_seconds"], 300);
    assert_eq!(json["steps"][5]["name"], "sources.tas");
    assert_eq!(json["steps"][5]["executor"], FETCH_EXECUTOR);
    assert_eq!(json["steps"][1]["needs"]["tas"], "sources.tas.tas");
    assert_eq!(json["steps"][1]["after"][0], "sources.tas");
}

#[test]
fn an_endpoint_takes_a_scalar_param_as_written_and_nothing_else() {
    let yaml = r#"
version: 1
name: e
params:
  gbif-api: https://api.gbif.org/v1
sources:
  occ:
    url: gbif:download/0001234-261207101010101
    endpoint: ${{ params.gbif-api }}
steps:
  a:
    needs: { o: sources.occ }
    run: ls ${{ inputs.o }}
"#;
    let plan = compile(yaml);
    assert_eq!(
        source(&plan, "occ").options.endpoint.as_deref(),
        Some("https://api.gbif.org/v1")
    );
    let options = CompileOptions {
        params: vec![("gbif-api".into(), "http://127.0.0.1:8080/gbif/v1/".into())],
        ..CompileOptions::default()
    };
    let plan = compile_with(yaml, &options);
    assert_eq!(
        source(&plan, "occ").options.endpoint.as_deref(),
        Some("http://127.0.0.1:8080/gbif/v1"),
        "substituted without percent-encoding, trailing slash dropped"
    );
    let bad = yaml.replace("${{ params.gbif-api }}", "${{ cycle.year }}");
    let err = compile_str("test.yaml", &bad, &CompileOptions::default())
        .expect_err("a cycle ref in an endpoint is refused")
        .render(false);
    assert!(err.contains("cannot be used in an endpoint"), "{err}");
}
