//! The committed JSON Schemas match the model types; regenerate with
//! `cargo run -p twinflow -- schema > schemas/workflow.v1.schema.json` (and
//! `schema --site > schemas/site.v1.schema.json`).

use twinflow_tests::repo_root;

fn committed(name: &str) -> serde_json::Value {
    let path = repo_root().join("schemas").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
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
    for key in ["for_each", "cycling", "needs", "after", "outputs", "run", "resources", "retries", "timeout", "env", "container", "executor"] {
        assert!(step[key].is_object(), "step key `{key}` missing from the schema");
    }
    assert_eq!(defs["StepDoc"]["additionalProperties"], false);
    assert_eq!(schema["required"], serde_json::json!(["version", "steps"]));
}
