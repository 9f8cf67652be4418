//! Values along links: several sources merged (`merge_nested`,
//! `merge_flattened`), `pickValue` applied, defaults for nulls.

use super::{Link, LinkMerge, PickValue, Source};
use crate::error::{CwlError, Result};
use serde_json::Value;
use std::collections::HashMap;

/// The value of `link` given the values known so far.
pub fn resolve(link: &Link, values: &HashMap<Source, Value>) -> Result<Value> {
    let got: Vec<Value> = link
        .sources
        .iter()
        .map(|s| values.get(s).cloned().unwrap_or(Value::Null))
        .collect();
    let merged = if got.len() == 1 && !link.listed {
        got.into_iter().next().unwrap_or(Value::Null)
    } else if got.is_empty() {
        Value::Null
    } else {
        match link.merge {
            LinkMerge::Nested => Value::Array(got),
            LinkMerge::Flattened => {
                let mut out = Vec::new();
                for v in got {
                    match v {
                        Value::Array(items) => out.extend(items),
                        other => out.push(other),
                    }
                }
                Value::Array(out)
            }
        }
    };
    match link.pick {
        None => Ok(merged),
        Some(pick) => pick_value(pick, merged),
    }
}

/// Applies `pickValue` to a (merged) list.
pub fn pick_value(pick: PickValue, v: Value) -> Result<Value> {
    let items = match v {
        Value::Array(items) => items,
        other => vec![other],
    };
    let non_null: Vec<Value> = items.into_iter().filter(|v| !v.is_null()).collect();
    match pick {
        PickValue::FirstNonNull => non_null
            .into_iter()
            .next()
            .ok_or_else(|| CwlError::failed("pickValue first_non_null: every source is null")),
        PickValue::TheOnlyNonNull => match non_null.len() {
            1 => Ok(non_null.into_iter().next().unwrap_or(Value::Null)),
            0 => Err(CwlError::failed(
                "pickValue the_only_non_null: every source is null",
            )),
            n => Err(CwlError::failed(format!(
                "pickValue the_only_non_null: {n} sources are not null"
            ))),
        },
        PickValue::AllNonNull => Ok(Value::Array(non_null)),
    }
}
