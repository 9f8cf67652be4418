//! Static checks of a process's expressions before anything runs, naming
//! the field and its line: under `InlineJavascriptRequirement` every
//! JavaScript expression must parse (it is compiled, not run); without it
//! every `$(...)` must be a parameter reference, since JavaScript needs the
//! requirement.

use crate::error::{CwlError, Result};
use crate::expr::{self, ExprError};
use crate::model::Process;
use serde_json::Value;

/// Fields that hold text, never expressions, and fields checked elsewhere
/// (`expressionLib` is JavaScript itself; an inline `run` process is
/// checked on its own, under its own requirements).
const SKIPPED: &[&str] = &[
    "baseCommand",
    "doc",
    "label",
    "id",
    "class",
    "default",
    "$namespaces",
    "$schemas",
    "cwlVersion",
    "expressionLib",
    "run",
];

/// Refuses `process` if one of its expressions is broken JavaScript, or is
/// JavaScript without InlineJavascriptRequirement (an invalid document).
pub fn javascript(process: &Process) -> Result<()> {
    let js = process.js();
    let mut pointer = String::new();
    if let Some((at, err)) = find(&process.raw, js, &mut pointer) {
        let err = match err {
            ExprError::Invalid { expr, .. } if js == expr::Js::NotDeclared => {
                CwlError::invalid(format!(
                    "`{expr}` is not a parameter reference (JavaScript needs InlineJavascriptRequirement)"
                ))
            }
            other => CwlError::invalid(other.to_string()),
        };
        return Err(process.error(at.trim_start_matches('/'), err));
    }
    Ok(())
}

/// The first expression of `v` that fails [`expr::check`], and where.
fn find(v: &Value, js: expr::Js, pointer: &mut String) -> Option<(String, ExprError)> {
    match v {
        // Unterminated text is reported when (and if) the field is evaluated.
        Value::String(s) => match expr::check(s, js) {
            Err(ExprError::Syntax { .. }) | Ok(()) => None,
            Err(e) => Some((pointer.clone(), e)),
        },
        Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| {
            let len = pointer.len();
            pointer.push_str(&format!("/{i}"));
            let found = find(x, js, pointer);
            pointer.truncate(len);
            found
        }),
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !SKIPPED.contains(&k.as_str()))
            .find_map(|(k, x)| {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(k);
                let found = find(x, js, pointer);
                pointer.truncate(len);
                found
            }),
        _ => None,
    }
}
