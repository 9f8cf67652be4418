//! Reading CWL documents and job objects: YAML or JSON text to a JSON value
//! that remembers the line of every node, with `$import` and `$include`
//! resolved and `$graph` documents split by id.

use crate::error::{CwlError, Result};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinflow_workflow::node::{self, Node, NodeKind};

/// The line of each node of a document, by JSON pointer (`/inputs/0/type`).
#[derive(Debug, Default)]
pub struct Lines {
    by_pointer: HashMap<String, usize>,
}

impl Lines {
    /// The 1-based line of the node at `pointer`, or of its nearest ancestor
    /// that has one.
    pub fn of(&self, pointer: &str) -> Option<usize> {
        let mut p = pointer;
        loop {
            if let Some(line) = self.by_pointer.get(p) {
                return Some(*line);
            }
            let cut = p.rfind('/')?;
            p = &p[..cut];
        }
    }
}

/// A document as read: its absolute path, value and line table.
#[derive(Debug)]
pub struct Document {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Its content, `$import`/`$include` resolved.
    pub value: Value,
    /// Lines of its nodes.
    pub lines: Lines,
}

impl Document {
    /// The directory relative references are resolved against.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// An error at the node `pointer` of this document.
    pub fn error_at(&self, pointer: &str, err: CwlError) -> CwlError {
        err.in_file(&self.path).at_line(self.lines.of(pointer))
    }
}

/// Largest document accepted, in bytes (as for workflow files).
const MAX_BYTES: u64 = node::MAX_SOURCE_BYTES as u64;

/// Reads a document or job file: YAML or JSON.
pub fn read(path: &Path) -> Result<Arc<Document>> {
    let abs = absolute(path)?;
    let text = read_text(&abs)?;
    let tree = node::parse(&text)
        .map_err(|e| CwlError::invalid(format!("not valid YAML: {e}")).in_file(&abs))?;
    let starts = line_starts(&text);
    let mut lines = Lines::default();
    let value = to_value(&tree, &starts, &mut String::new(), &mut lines);
    let dir = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let value = resolve_directives(value, &dir, 0).map_err(|e| e.in_file(&abs))?;
    Ok(Arc::new(Document {
        path: abs,
        value,
        lines,
    }))
}

/// `path` made absolute against the current directory (not canonicalised:
/// a symlinked suite keeps the names the user gave).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| CwlError::io("cannot resolve", path, &e))
}

fn read_text(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| CwlError::io("cannot read", path, &e))?;
    if meta.len() > MAX_BYTES {
        return Err(CwlError::invalid(format!(
            "{} is {} bytes, more than the {MAX_BYTES} accepted",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| CwlError::io("cannot read", path, &e))
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn line_of(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|s| *s <= offset)
}

fn to_value(node: &Node, starts: &[usize], pointer: &mut String, lines: &mut Lines) -> Value {
    lines
        .by_pointer
        .insert(pointer.clone(), line_of(starts, node.span.start));
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(*b),
        NodeKind::Int(i) => Value::from(*i),
        NodeKind::UInt(u) => Value::from(*u),
        NodeKind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        NodeKind::Str(s) => Value::String(s.clone()),
        NodeKind::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                out.push(to_value(item, starts, pointer, lines));
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        NodeKind::Map(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let key = match &key.kind {
                    NodeKind::Str(s) => s.clone(),
                    NodeKind::Int(i) => i.to_string(),
                    NodeKind::UInt(u) => u.to_string(),
                    NodeKind::Bool(b) => b.to_string(),
                    NodeKind::Float(f) => f.to_string(),
                    _ => String::new(),
                };
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                let v = to_value(value, starts, pointer, lines);
                pointer.truncate(len);
                out.insert(key, v);
            }
            Value::Object(out)
        }
    }
}

/// Deepest `$import` nesting followed (a cycle of imports ends here).
const MAX_IMPORT_DEPTH: u32 = 16;

/// Replaces `{$import: file}` by the file's content and `{$include: file}`
/// by its text, recursively, relative to `dir`.
fn resolve_directives(value: Value, dir: &Path, depth: u32) -> Result<Value> {
    match value {
        Value::Object(map) => {
            if map.len() == 1 {
                if let Some(Value::String(target)) = map.get("$include") {
                    let path = dir.join(strip_file_scheme(target));
                    return read_text(&path).map(Value::String);
                }
                if let Some(Value::String(target)) = map.get("$import") {
                    if depth >= MAX_IMPORT_DEPTH {
                        return Err(CwlError::invalid(format!(
                            "$import of {target} nested more than {MAX_IMPORT_DEPTH} deep (a cycle?)"
                        )));
                    }
                    let path = dir.join(strip_file_scheme(target));
                    let (file, _fragment) = split_fragment(&path);
                    let text = read_text(&file)?;
                    let tree = node::parse(&text).map_err(|e| {
                        CwlError::invalid(format!("not valid YAML: {e}")).in_file(&file)
                    })?;
                    let starts = line_starts(&text);
                    let v = to_value(&tree, &starts, &mut String::new(), &mut Lines::default());
                    let sub = file.parent().unwrap_or(Path::new("/")).to_path_buf();
                    return resolve_directives(v, &sub, depth + 1);
                }
            }
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k, resolve_directives(v, dir, depth)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .into_iter()
            .map(|v| resolve_directives(v, dir, depth))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array),
        other => Ok(other),
    }
}

/// `file:///a/b` as `/a/b`; anything else unchanged.
pub fn strip_file_scheme(s: &str) -> &str {
    s.strip_prefix("file://").unwrap_or(s)
}

/// Splits `a.cwl#frag` into the file and the fragment.
pub fn split_fragment(path: &Path) -> (PathBuf, Option<String>) {
    let text = path.to_string_lossy();
    match text.rsplit_once('#') {
        Some((file, frag)) => (PathBuf::from(file), Some(frag.to_owned())),
        None => (path.to_path_buf(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_by_pointer_and_by_nearest_ancestor() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| CwlError::io("tempdir", Path::new("/tmp"), &e))?;
        let file = dir.path().join("t.cwl");
        std::fs::write(
            &file,
            "class: CommandLineTool\ninputs:\n  x:\n    type: File\n",
        )
        .map_err(|e| CwlError::io("write", &file, &e))?;
        let doc = read(&file)?;
        assert_eq!(doc.lines.of("/inputs/x/type"), Some(4));
        assert_eq!(doc.lines.of("/inputs/x/type/nothing"), Some(4));
        assert_eq!(doc.lines.of("/class"), Some(1));
        Ok(())
    }

    #[test]
    fn import_and_include_are_replaced_relative_to_the_document() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| CwlError::io("tempdir", Path::new("/tmp"), &e))?;
        let w = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).map_err(|e| CwlError::io("write", &p, &e))
        };
        w(
            "main.cwl",
            "a: {$import: sub.yml}\nb: {$include: text.txt}\n",
        )?;
        w("sub.yml", "x: [1, 2]\n")?;
        w("text.txt", "hello\n")?;
        let doc = read(&dir.path().join("main.cwl"))?;
        assert_eq!(doc.value["a"]["x"][1], 2);
        assert_eq!(doc.value["b"], "hello\n");
        Ok(())
    }

    #[test]
    fn an_import_cycle_is_an_error_not_a_stack_overflow() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| CwlError::io("tempdir", Path::new("/tmp"), &e))?;
        let p = dir.path().join("loop.yml");
        std::fs::write(&p, "a: {$import: loop.yml}\n")
            .map_err(|e| CwlError::io("write", &p, &e))?;
        let err = read(&p).err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("nested more than")));
        Ok(())
    }
}
