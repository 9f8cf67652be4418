//! A step's model crate (`model:`) inside a provenance crate: the crate's
//! software entity (its root's `mainEntity`, else its root) becomes the
//! step's tool, with the entities it refers to (authors, licence, language)
//! brought along under ids that cannot clash: `#x` becomes `#model-<dir>-x`,
//! a relative path `p` becomes `models/<dir>/p`, absolute URIs stay.

use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::path::Path;

/// Largest metadata file read (as the compiler's check).
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// A model crate, ready to merge.
#[derive(Debug)]
pub(crate) struct ModelEntities {
    /// The tool: the crate's software entity, with `@id` `tool_id`.
    pub tool: Map<String, Value>,
    /// Entities the tool refers to, renamed.
    pub context: Vec<Value>,
}

/// Reads the crate in `dir`, whose files are copied to `models/<name>/`.
/// `None` when its metadata cannot be read (the compiler checked it; it may
/// have changed since): the step then gets a plain tool.
pub(crate) fn read(dir: &Path, name: &str, tool_id: &str) -> Option<ModelEntities> {
    let file = dir.join("ro-crate-metadata.json");
    if std::fs::metadata(&file).ok()?.len() > MAX_METADATA_BYTES {
        return None;
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).ok()?).ok()?;
    let graph = json.get("@graph")?.as_array()?;
    let by_id = |id: &str| graph.iter().find(|e| e["@id"].as_str() == Some(id));
    let root_id = by_id("ro-crate-metadata.json")?["about"]["@id"].as_str()?;
    let root = by_id(root_id)?;
    let main = root["mainEntity"]["@id"]
        .as_str()
        .and_then(by_id)
        .unwrap_or(root);
    let rename = |id: &str| -> String {
        if let Some(frag) = id.strip_prefix('#') {
            format!("#model-{name}-{frag}")
        } else if id.contains("://") || id.starts_with("mailto:") || id.starts_with("urn:") {
            id.to_owned()
        } else if id == "./" {
            format!("models/{name}/")
        } else {
            format!("models/{name}/{}", id.trim_start_matches("./"))
        }
    };
    let mut tool = Map::new();
    let mut wanted: Vec<String> = Vec::new();
    for (key, value) in main.as_object()? {
        if key == "@id" || key == "@type" {
            continue;
        }
        tool.insert(key.clone(), rewrite(value, &rename, &mut wanted));
    }
    tool.insert("@id".into(), json!(tool_id));
    tool.insert("@type".into(), software_type(&main["@type"]));
    if main["@id"].as_str() != Some(root_id) {
        // The crate itself, as a data entity of ours.
        tool.insert(
            "subjectOf".into(),
            json!({ "@id": format!("models/{name}/") }),
        );
    }
    let mut context = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(original) = wanted.pop() {
        if !seen.insert(original.clone()) || context.len() > 200 {
            continue;
        }
        let Some(entity) = by_id(&original).and_then(Value::as_object) else {
            continue;
        };
        if original == root_id || original == main["@id"].as_str().unwrap_or_default() {
            continue;
        }
        let mut copy = Map::new();
        for (key, value) in entity {
            let value = if key == "@id" {
                json!(rename(&original))
            } else {
                rewrite(value, &rename, &mut wanted)
            };
            copy.insert(key.clone(), value);
        }
        context.push(Value::Object(copy));
    }
    Some(ModelEntities { tool, context })
}

/// The tool's types: the model's, if it says it is software, else
/// `SoftwareSourceCode`.
fn software_type(types: &Value) -> Value {
    let list: Vec<&str> = match types {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let software: Vec<&str> = list
        .into_iter()
        .filter(|t| {
            matches!(
                *t,
                "SoftwareApplication" | "SoftwareSourceCode" | "ComputationalWorkflow"
            )
        })
        .collect();
    match software.as_slice() {
        [] => json!("SoftwareSourceCode"),
        [one] => json!(one),
        many => json!(many),
    }
}

/// `value` with every `{"@id": ...}` renamed, noting the originals.
fn rewrite(value: &Value, rename: &dyn Fn(&str) -> String, wanted: &mut Vec<String>) -> Value {
    match value {
        Value::Object(obj) if obj.len() == 1 && obj.contains_key("@id") => {
            let id = obj["@id"].as_str().unwrap_or_default();
            wanted.push(id.to_owned());
            json!({ "@id": rename(id) })
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| rewrite(v, rename, wanted)).collect())
        }
        other => other.clone(),
    }
}

/// The regular files of a model crate (relative paths), at most `max_files`
/// and `max_bytes` in all, symbolic links not followed.
pub(crate) fn files(dir: &Path, max_files: usize, max_bytes: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push((entry.path(), child));
            } else if kind.is_file() {
                let size = entry.metadata().map_or(0, |m| m.len());
                if out.len() >= max_files || total + size > max_bytes {
                    continue;
                }
                total += size;
                out.push(child);
            }
        }
    }
    out.sort();
    out
}
