//! `model:`: a step's model packaged as an RO-Crate directory. The compiler
//! checks that the directory exists and holds an `ro-crate-metadata.json`
//! with a metadata descriptor and a root data entity; what the crate says
//! (name, version, authors, licence) is read when a provenance crate is
//! written.

use crate::diag::Diags;
use crate::read::{ReadError, read_bounded};
use crate::span::Spanned;
use std::path::{Path, PathBuf};

/// The metadata file every RO-Crate directory holds.
pub(crate) const METADATA_FILE: &str = "ro-crate-metadata.json";

/// The largest metadata file read (a model crate describes a model, not data).
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// The crate directory `model` names, resolved against the workflow's
/// directory, or a diagnostic at its span.
pub(super) fn check(
    d: &mut Diags,
    model: &Spanned<String>,
    workflow_dir: &Path,
) -> Option<PathBuf> {
    let text = model.value.trim();
    if text.is_empty() || text.contains("${{") {
        d.at(
            "twinflow::bad-model",
            model.span,
            format!("`{}` is not a directory path", model.value),
            "not a path",
        )
        .set_help(Some(
            "name the model's RO-Crate directory, relative to the workflow file: `model: twins/bird-crate`"
                .into(),
        ));
        return None;
    }
    let joined = workflow_dir.join(text);
    let dir = std::path::absolute(&joined).unwrap_or(joined);
    // Messages name the path as written (relative to the workflow file's
    // directory), so that they read the same on every machine.
    let problem = match std::fs::metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some((
            format!("model crate `{text}` does not exist next to the workflow file"),
            "no such directory",
        )),
        Err(e) => Some((
            format!("model crate `{text}` cannot be read: {e}"),
            "unreadable",
        )),
        Ok(meta) if !meta.is_dir() => Some((
            format!("model crate `{text}` is not a directory"),
            "not a directory",
        )),
        Ok(_) => metadata_problem(
            &dir.join(METADATA_FILE),
            &Path::new(text).join(METADATA_FILE).display().to_string(),
        )
        .map(|p| (p, "not an RO-Crate")),
    };
    match problem {
        None => Some(dir),
        Some((message, label)) => {
            d.at("twinflow::bad-model", model.span, message, label)
                .set_help(Some(format!(
                    "a model crate is a directory with an `{METADATA_FILE}` (RO-Crate 1.1): \
                     a metadata descriptor about `./` and a root Dataset naming the model"
                )));
            None
        }
    }
}

/// What is wrong with a crate's metadata file, if anything.
fn metadata_problem(file: &Path, shown: &str) -> Option<String> {
    let bytes = match read_bounded(file, MAX_METADATA_BYTES) {
        Ok(bytes) => bytes,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!("{shown} is missing"));
        }
        Err(e) => return Some(e.describe(shown)),
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => return Some(format!("{shown} is not UTF-8")),
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(json) => json,
        Err(e) => return Some(format!("{shown} is not JSON: {e}")),
    };
    let Some(graph) = json.get("@graph").and_then(|g| g.as_array()) else {
        return Some(format!("{shown} has no `@graph` array"));
    };
    let id_of = |v: &serde_json::Value| v.get("@id").and_then(|i| i.as_str()).map(str::to_owned);
    let Some(descriptor) = graph
        .iter()
        .find(|e| id_of(e).as_deref() == Some(METADATA_FILE))
    else {
        return Some(format!(
            "{shown} has no metadata descriptor (an entity with \"@id\": \"{METADATA_FILE}\")"
        ));
    };
    let Some(root) = descriptor.get("about").and_then(id_of) else {
        return Some(format!(
            "{shown}: the metadata descriptor has no `about` naming the root data entity"
        ));
    };
    if !graph
        .iter()
        .any(|e| id_of(e).as_deref() == Some(root.as_str()))
    {
        return Some(format!(
            "{shown}: the root data entity `{root}` is not in `@graph`"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::write(dir.join(METADATA_FILE), text).unwrap();
        dir.join(METADATA_FILE)
    }

    #[test]
    fn a_minimal_crate_passes_and_broken_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            r#"{"@graph":[{"@id":"ro-crate-metadata.json","about":{"@id":"./"}},{"@id":"./","@type":"Dataset"}]}"#,
        );
        assert_eq!(metadata_problem(&file, "m"), None);
        write(dir.path(), "{not json");
        assert!(
            metadata_problem(&file, "m")
                .unwrap()
                .contains("is not JSON")
        );
        write(dir.path(), r#"{"@graph":[{"@id":"./"}]}"#);
        assert!(
            metadata_problem(&file, "m")
                .unwrap()
                .contains("no metadata descriptor")
        );
        write(
            dir.path(),
            r#"{"@graph":[{"@id":"ro-crate-metadata.json","about":{"@id":"./"}}]}"#,
        );
        assert!(
            metadata_problem(&file, "m")
                .unwrap()
                .contains("is not in `@graph`")
        );
        std::fs::remove_file(&file).unwrap();
        assert!(metadata_problem(&file, "m").unwrap().contains("is missing"));
    }

    #[test]
    fn a_fifo_as_metadata_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(METADATA_FILE);
        let status = std::process::Command::new("mkfifo")
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            metadata_problem(&file, "m").unwrap(),
            "m is a FIFO (named pipe), not a regular file"
        );
    }
}
