//! JSON Schemas of workflow and site files, generated from the model types
//! (`schemas/` holds the committed copies; a test keeps them fresh).

use crate::model::{SiteDoc, WorkflowDoc};

/// The JSON Schema of workflow files (language v1).
pub fn workflow_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(WorkflowDoc).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://twinflow.dev/schemas/workflow.v1.schema.json".into(),
        );
    }
    schema
}

/// The JSON Schema of site files (`--site`).
pub fn site_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(SiteDoc).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://twinflow.dev/schemas/site.v1.schema.json".into(),
        );
    }
    schema
}
