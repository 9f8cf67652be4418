//! The committed JSON Schemas match the model types; regenerate with
//! `cargo run -p twinflow -- schema > schemas/workflow.v1.schema.json` (and
//! `schema --site > schemas/site.v1.schema.json`).

use twinflow_tests::repo_root;

fn committed(name: &str) -> serde_json::Value {
    let path = repo_root().join("schemas").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

#[test]
fn workflow_schema_is_fresh() {
    assert!(
        committed("workflow.v1.schema.json") == twinflow_workflow::workflow_schema(),
        "schemas/workflow.v1.schema.json is stale: run `cargo run -p twinflow -- schema > schemas/workflow.v1.schema.json`"
    );
}

#[test]
fn site_schema_is_fresh() {
    assert!(
        committed("site.v1.schema.json") == twinflow_workflow::site_schema(),
        "schemas/site.v1.schema.json is stale: run `cargo run -p twinflow -- schema --site > schemas/site.v1.schema.json`"
    );
}

#[test]
fn schema_describes_the_language() {
    let schema = twinflow_workflow::workflow_schema();
    let defs = &schema["$defs"];
    let step = &defs["StepDoc"]["properties"];
    for key in [
        "for_each",
        "cycling",
        "needs",
        "after",
        "outputs",
        "run",
        "resources",
        "retries",
        "timeout",
        "env",
        "container",
        "executor",
    ] {
        assert!(
            step[key].is_object(),
            "step key `{key}` missing from the schema"
        );
    }
    assert_eq!(defs["StepDoc"]["additionalProperties"], false);
    assert_eq!(schema["required"], serde_json::json!(["version", "steps"]));
}

fn as_json(yaml: &str) -> serde_json::Value {
    serde_saphyr::from_str::<serde_json::Value>(yaml).expect("YAML parses")
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&committed(name))
        .expect("the committed schema is a valid JSON Schema")
}

#[test]
fn every_example_conforms_to_the_committed_schema() {
    let workflows = validator("workflow.v1.schema.json");
    let sites = validator("site.v1.schema.json");
    let mut files = twinflow_tests::yaml_files(&repo_root().join("workflows"));
    files.push(twinflow_tests::shared_dir().join("spec/forest-bird.yaml"));
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read example");
        let is_site = path.components().any(|c| c.as_os_str() == "sites");
        let v = if is_site { &sites } else { &workflows };
        let errors: Vec<String> = v
            .iter_errors(&as_json(&text))
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not conform: {errors:#?}",
            path.display()
        );
    }
}

#[test]
fn the_schema_flags_what_editors_should_flag() {
    let v = validator("workflow.v1.schema.json");
    let ok = "version: 1\nexecutors:\n  hpc: { kind: slurm, partition: small }\nsteps:\n  a: { executor: hpc, run: echo }\n";
    assert!(v.is_valid(&as_json(ok)));
    let gpus = "version: 1\nexecutors:\n  box: { kind: local, gpus: [0, 1], gpu_vendor: amd }\n  hpc: { kind: slurm, gpu_vendor: nvidia }\nsteps:\n  a: { executor: hpc, resources: { gpus: { count: 2, type: a100 } }, run: echo }\n  b: { executor: box, resources: { gpus: 2 }, run: echo }\n";
    assert!(v.is_valid(&as_json(gpus)));
    for bad in [
        "version: 2\nsteps:\n  a: { run: echo }\n",
        "version: 1\nstepz: {}\nsteps:\n  a: { run: echo }\n",
        "version: 1\nsteps:\n  a: { run: echo, need: {} }\n",
        "version: 1\nsteps:\n  a: { for_each: { k: [] }, run: echo }\n",
        "version: 1\nexecutors:\n  here: { kind: local, partition: small }\nsteps:\n  a: { run: echo }\n",
        "version: 1\nexecutors:\n  vm: { kind: cloud, ssh: u@h }\nsteps:\n  a: { run: echo }\n",
        "version: 1\nexecutors:\n  x: { kind: slurmm }\nsteps:\n  a: { run: echo }\n",
        "version: 1\nsteps:\n  a: { retries: many, run: echo }\n",
        "version: 1\nsteps:\n  a: { resources: { gpus: 0 }, run: echo }\n",
        "version: 1\nsteps:\n  a: { resources: { gpus: { count: 1, typ: a100 } }, run: echo }\n",
        "version: 1\nsteps:\n  a: { resources: { gpus: { count: 1, type: \"a:1\" } }, run: echo }\n",
        "version: 1\nexecutors:\n  hpc: { kind: slurm, gpus: [0] }\nsteps:\n  a: { run: echo }\n",
        "version: 1\nexecutors:\n  box: { kind: local, gpus: [0, 0] }\nsteps:\n  a: { run: echo }\n",
    ] {
        assert!(!v.is_valid(&as_json(bad)), "the schema accepts:\n{bad}");
    }
}

#[test]
fn the_schema_takes_parallel_shapes_and_flags_their_mistakes() {
    let v = validator("workflow.v1.schema.json");
    let ok = "version: 1
executors:
  hpc: { kind: slurm, partition: small, max_jobs: 50, user_max_jobs: 220 }
steps:
  ocean: { executor: hpc, resources: { cpus: 2, tasks: 256, nodes: 2, tasks_per_node: 128, exclusive: true }, launcher: srun, run: ./nemo }
  ensemble: { executor: hpc, pack: { tasks: 21, parallel: 7 }, launcher: none, run: ./landis }
  sequential: { executor: hpc, pack: 20, launcher: mpirun, run: ./x }
  forest: { executor: hpc, group: forest-beetle, run: ./forest }
  beetle: { executor: hpc, group: forest-beetle, run: ./beetle }
";
    assert!(
        v.is_valid(&as_json(ok)),
        "{:?}",
        v.validate(&as_json(ok)).err()
    );
    for bad in [
        "version: 1\nsteps:\n  a: { resources: { tasks: 0 }, run: echo }\n",
        "version: 1\nsteps:\n  a: { resources: { nodes: -1 }, run: echo }\n",
        "version: 1\nsteps:\n  a: { resources: { tasks_per_node: 0 }, run: echo }\n",
        "version: 1\nsteps:\n  a: { resources: { exclusive: 1 }, run: echo }\n",
        "version: 1\nsteps:\n  a: { launcher: mpiexec, run: echo }\n",
        "version: 1\nsteps:\n  a: { pack: { parallel: 2 }, run: echo }\n",
        "version: 1\nsteps:\n  a: { pack: { tasks: 4, paralel: 2 }, run: echo }\n",
        "version: 1\nsteps:\n  a: { pack: { tasks: 4, parallel: 0 }, run: echo }\n",
        "version: 1\nsteps:\n  a: { pack: 0, run: echo }\n",
        "version: 1\nsteps:\n  a: { group: [g], run: echo }\n",
        "version: 1\nexecutors:\n  here: { kind: local, user_max_jobs: 3 }\nsteps:\n  a: { run: echo }\n",
    ] {
        assert!(!v.is_valid(&as_json(bad)), "the schema accepts:\n{bad}");
    }
}

#[test]
fn the_schema_takes_sources_and_flags_their_mistakes() {
    let v = validator("workflow.v1.schema.json");
    let ok = "version: 1
cycle: { start: 2020-01-01, stop: 2021-01-01, step: P1Y }
sources:
  occ: { url: \"gbif:occurrence?taxonKey=1\", prepare_timeout: 12h, endpoint: \"http://127.0.0.1:8080/v1\" }
  tas: { url: \"https://x.org/tas_${{ cycle.year }}.nc\", format: netcdf, max_size: 2GiB, refresh: 30d }
  stands: { url: \"s3://forest/stands/\", endpoint: \"http://127.0.0.1:7480\", region: us-east-1, profile: ceph }
  scenes: { url: \"stac+https://stac.x/search?collections=s2\", assets: [B04], max_items: 10 }
steps:
  a: { cycling: true, needs: { t: sources.tas }, wait_for: [sources.tas, { source: sources.scenes, interval: 10m, timeout: 2d }], run: echo }
";
    assert!(
        v.is_valid(&as_json(ok)),
        "{:?}",
        v.validate(&as_json(ok)).err()
    );
    for bad in [
        "version: 1\nsources:\n  a: { url: \"ftp://x/y\" }\nsteps:\n  s: { run: echo }\n",
        "version: 1\nsources:\n  a: { url: \"https://x/y\", region: eu }\nsteps:\n  s: { run: echo }\n",
        "version: 1\nsources:\n  a: { url: \"s3://b/k\", assets: [x] }\nsteps:\n  s: { run: echo }\n",
        "version: 1\nsources:\n  a: { url: \"https://x/y\", sha256: abc }\nsteps:\n  s: { run: echo }\n",
        "version: 1\nsources:\n  a: { url: \"https://x/y\", sha265: abc }\nsteps:\n  s: { run: echo }\n",
        "version: 1\nsources:\n  a: { url: \"https://x/y\", format: netcfd }\nsteps:\n  s: { run: echo }\n",
        "version: 1\nsources:\n  a: { url: \"https://x/y\" }\nsteps:\n  s: { wait_for: [prepare], run: echo }\n",
        "version: 1\nsources:\n  a: { url: \"https://x/y\" }\nsteps:\n  s: { wait_for: [{ source: sources.a, intervall: 1m }], run: echo }\n",
    ] {
        assert!(!v.is_valid(&as_json(bad)), "the schema accepts:\n{bad}");
    }
}
