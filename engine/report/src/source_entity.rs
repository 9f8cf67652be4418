//! A fetched source in the provenance crate: the data entity of a source
//! task's output gets where it came from (`url`, `contentUrl`), when
//! (`sdDatePublished`, RO-Crate's "date the entity was retrieved") and how
//! to cite it (a GBIF download's DOI), from the [`SourceRecord`] the fetch
//! executor left beside it.

use serde_json::{Value, json};
use std::path::Path;
use twinflow_core::{SOURCE_RECORD_FILE, SourceRecord};

/// Adds the record's properties to `entity`, the data entity of the
/// output at `artefact` (an absolute path in the source task's working
/// directory); a citation that names a DOI also becomes a contextual
/// entity in `graph`. Without a readable record the entity stays as it is
/// (a run whose task directory was removed), marked as such.
pub(crate) fn describe(entity: &mut Value, artefact: &Path, graph: &mut Vec<Value>) {
    let Some(record) = record_beside(artefact) else {
        entity["description"] = json!("fetched from an external source whose record is gone");
        return;
    };
    if record.directory {
        // RO-Crate's data entity for a directory.
        entity["@type"] = json!("Dataset");
    }
    entity["url"] = json!(record.url);
    entity["contentUrl"] = json!(record.content_url);
    entity["sdDatePublished"] = json!(record.retrieved_at);
    let Some(citation) = record.citation else {
        return;
    };
    match doi_url(&citation) {
        Some(doi) => {
            entity["citation"] = json!({ "@id": doi });
            graph.push(json!({
                "@id": doi,
                "@type": "CreativeWork",
                "name": citation,
            }));
        }
        None => entity["citation"] = json!(citation),
    }
}

/// The record the fetch executor left beside the output at `artefact`
/// (an absolute path in a source task's working directory), if readable.
pub(crate) fn record_beside(artefact: &Path) -> Option<SourceRecord> {
    let path = artefact.parent()?.join(SOURCE_RECORD_FILE);
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `https://doi.org/...` URL a citation names, if any.
fn doi_url(citation: &str) -> Option<String> {
    let at = citation.find("https://doi.org/")?;
    let rest = &citation[at..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ')' | ']' | ','))
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches('.').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(citation: Option<&str>) -> SourceRecord {
        SourceRecord {
            format: SourceRecord::FORMAT,
            url: "gbif:download/0001234-250101000000000".to_owned(),
            content_url: "https://api.gbif.org/v1/occurrence/download/request/0001234.zip"
                .to_owned(),
            sha256: "ab".repeat(32),
            size: 42,
            retrieved_at: "2026-12-07T10:00:00Z".to_owned(),
            directory: true,
            citation: citation.map(str::to_owned),
        }
    }

    #[test]
    fn a_source_entity_carries_its_url_retrieval_time_and_doi() {
        let dir = tempfile::tempdir().unwrap();
        let text = serde_json::to_vec(&record(Some(
            "GBIF.org (7 December 2026) GBIF Occurrence Download https://doi.org/10.15468/dl.abcd12.",
        )))
        .unwrap();
        std::fs::write(dir.path().join(SOURCE_RECORD_FILE), text).unwrap();
        let mut entity = json!({ "@id": "files/x", "@type": "File" });
        let mut graph = Vec::new();
        describe(&mut entity, &dir.path().join("birds"), &mut graph);
        assert_eq!(entity["url"], "gbif:download/0001234-250101000000000");
        assert_eq!(
            entity["@type"], "Dataset",
            "an unpacked archive is a directory"
        );
        assert_eq!(entity["sdDatePublished"], "2026-12-07T10:00:00Z");
        assert_eq!(
            entity["citation"]["@id"],
            "https://doi.org/10.15468/dl.abcd12"
        );
        assert_eq!(graph.len(), 1);
        assert_eq!(graph[0]["@type"], "CreativeWork");
    }

    #[test]
    fn without_a_record_the_entity_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut entity = json!({ "@id": "files/x" });
        let mut graph = Vec::new();
        describe(&mut entity, &dir.path().join("birds"), &mut graph);
        assert!(entity.get("contentUrl").is_none());
        assert!(entity["description"].as_str().unwrap().contains("gone"));
        assert!(graph.is_empty());
    }
}
