//! Scatter: the jobs of a scattered step (`dotproduct`,
//! `nested_crossproduct`, `flat_crossproduct`) and its outputs gathered
//! back into arrays of the matching shape.

use super::ScatterMethod;
use crate::error::{CwlError, Result};
use serde_json::{Map, Value};

/// The scatter jobs (each a full input object) and the result's dimensions.
pub type Jobs = (Vec<Map<String, Value>>, Vec<usize>);

/// The jobs of a step scattering `over` (input ids) in `inputs`, and the
/// dimensions of the result (one per scattered input for a nested
/// crossproduct, else one).
pub fn jobs(inputs: &Map<String, Value>, over: &[String], method: ScatterMethod) -> Result<Jobs> {
    let mut lists: Vec<&Vec<Value>> = Vec::with_capacity(over.len());
    for name in over {
        match inputs.get(name) {
            Some(Value::Array(items)) => lists.push(items),
            other => {
                return Err(CwlError::failed(format!(
                    "scatter over `{name}`: {} is not an array",
                    other.map_or_else(|| "nothing".to_owned(), Value::to_string)
                )));
            }
        }
    }
    match method {
        ScatterMethod::Dotproduct => {
            let n = lists.first().map_or(0, |l| l.len());
            if lists.iter().any(|l| l.len() != n) {
                let lens: Vec<String> = lists.iter().map(|l| l.len().to_string()).collect();
                return Err(CwlError::failed(format!(
                    "dotproduct scatter over arrays of lengths {}",
                    lens.join(", ")
                )));
            }
            let jobs = (0..n)
                .map(|i| {
                    let mut job = inputs.clone();
                    for (name, list) in over.iter().zip(&lists) {
                        job.insert(name.clone(), list[i].clone());
                    }
                    job
                })
                .collect();
            Ok((jobs, vec![n]))
        }
        ScatterMethod::NestedCrossproduct | ScatterMethod::FlatCrossproduct => {
            let mut jobs = vec![inputs.clone()];
            for (name, list) in over.iter().zip(&lists) {
                let mut next = Vec::with_capacity(jobs.len() * list.len());
                for job in &jobs {
                    for item in list.iter() {
                        let mut j = job.clone();
                        j.insert(name.clone(), item.clone());
                        next.push(j);
                    }
                }
                jobs = next;
            }
            let dims = if method == ScatterMethod::NestedCrossproduct {
                lists.iter().map(|l| l.len()).collect()
            } else {
                vec![jobs.len()]
            };
            Ok((jobs, dims))
        }
    }
}

/// Gathers per-job values (in job order) into nested arrays of `dims`.
pub fn gather(values: Vec<Value>, dims: &[usize]) -> Value {
    match dims {
        [] | [_] => Value::Array(values),
        [first, rest @ ..] => {
            let per: usize = rest.iter().product();
            let mut out = Vec::with_capacity(*first);
            let mut it = values.into_iter();
            for _ in 0..*first {
                let chunk: Vec<Value> = it.by_ref().take(per).collect();
                out.push(gather(chunk, rest));
            }
            Value::Array(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn dotproduct_pairs_elements_and_refuses_unequal_lengths() {
        let inputs = map(json!({"a": [1, 2], "b": ["x", "y"], "c": 0}));
        let over = ["a".to_owned(), "b".to_owned()];
        let (jobs, dims) = jobs(&inputs, &over, ScatterMethod::Dotproduct).unwrap_or_default();
        assert_eq!(dims, [2]);
        assert_eq!(jobs[1], map(json!({"a": 2, "b": "y", "c": 0})));
        let bad = map(json!({"a": [1], "b": ["x", "y"]}));
        assert!(super::jobs(&bad, &over, ScatterMethod::Dotproduct).is_err());
    }

    #[test]
    fn crossproducts_enumerate_first_input_outermost_and_nest_by_input() {
        let inputs = map(json!({"a": [1, 2], "b": ["x", "y", "z"]}));
        let over = ["a".to_owned(), "b".to_owned()];
        let (jobs, dims) =
            jobs(&inputs, &over, ScatterMethod::NestedCrossproduct).unwrap_or_default();
        assert_eq!((jobs.len(), dims.as_slice()), (6, [2, 3].as_slice()));
        assert_eq!(jobs[3], map(json!({"a": 2, "b": "x"})));
        let values: Vec<Value> = (0..6).map(|i| json!(i)).collect();
        assert_eq!(gather(values, &dims), json!([[0, 1, 2], [3, 4, 5]]));
        let (_, flat) =
            super::jobs(&inputs, &over, ScatterMethod::FlatCrossproduct).unwrap_or_default();
        assert_eq!(flat, [6]);
    }
}
