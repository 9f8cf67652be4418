//! Static checks before anything runs: every expression of a process is a
//! parameter reference twinflow evaluates natively, or the process is
//! refused as needing JavaScript (naming the field and its line), and
//! `ExpressionTool`s (JavaScript by definition) are refused the same way.

use crate::error::{CwlError, Result};
use crate::expr;
use crate::model::{Class, Process};
use serde_json::Value;

/// Fields that hold text, never expressions.
const PROSE: &[&str] = &[
    "baseCommand",
    "doc",
    "label",
    "id",
    "class",
    "default",
    "$namespaces",
    "$schemas",
    "cwlVersion",
];

/// Refuses `process` if it needs a JavaScript engine.
pub fn javascript(process: &Process) -> Result<()> {
    if process.class == Class::ExpressionTool {
        return Err(process.error(
            "class",
            CwlError::unsupported(
                "ExpressionTool: needs JavaScript (twinflow evaluates parameter references only)",
            ),
        ));
    }
    let js = process.js();
    let mut pointer = String::new();
    if let Some((at, text)) = find(&process.raw, js, &mut pointer) {
        let err = match js {
            expr::Js::Declared => CwlError::unsupported(format!("needs JavaScript: {text}")),
            expr::Js::NotDeclared => CwlError::invalid(format!(
                "`{text}` is not a parameter reference (JavaScript needs InlineJavascriptRequirement)"
            )),
        };
        return Err(process.error(at.trim_start_matches('/'), err));
    }
    Ok(())
}

fn find(v: &Value, js: expr::Js, pointer: &mut String) -> Option<(String, String)> {
    match v {
        Value::String(s) if expr::needs_javascript(s, js) => Some((pointer.clone(), s.clone())),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| {
            let len = pointer.len();
            pointer.push_str(&format!("/{i}"));
            let found = find(x, js, pointer);
            pointer.truncate(len);
            found
        }),
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !PROSE.contains(&k.as_str()))
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
