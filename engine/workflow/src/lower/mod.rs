//! Gives the written workflow its meaning: checks names, references, units,
//! the cycle and the step graph, applies `--param`, `--site` and `--local`,
//! and resolves every `${{ }}`. Reports all it finds; expansion into tasks
//! happens only when nothing was wrong.

pub(crate) mod code;
mod container;
pub(crate) mod executors;
mod gpus;
mod graph;
mod groups;
mod hooks;
mod model;
mod shape;
mod source_keys;
mod source_url;
mod sources;
mod steps;
mod templates;

use crate::cycle;
use crate::diag::{Diagnostic, Diags};
use crate::model::{ParamDoc, WorkflowDoc};
use crate::options::CompileOptions;
use crate::span::Span;
use crate::suggest::did_you_mean;
use std::collections::{HashMap, HashSet};
use twinflow_core::{
    CycleSpec, ExecutorSpec, ParamValue, StepId, StepSpec, Template, WaitSpec, WorkflowInfo,
};

pub(crate) use source_url::render as render_url;

/// A step ready for expansion.
#[derive(Debug)]
pub(crate) struct StepIr {
    pub(crate) spec: StepSpec,
    /// `run`, or for a source's step its URL.
    pub(crate) run: Template,
    pub(crate) name_span: Span,
    /// A source's step: `run` is a URL, its values percent-encoded (not
    /// shell-quoted).
    pub(crate) url: bool,
    /// The sources its `wait_for` names (their steps) and how it waits.
    pub(crate) waits: Vec<(StepId, WaitSpec)>,
}

/// The workflow ready for expansion.
#[derive(Debug)]
pub(crate) struct Lowered {
    pub(crate) info: WorkflowInfo,
    pub(crate) params: Vec<(String, ParamValue)>,
    pub(crate) cycle: Option<CycleSpec>,
    pub(crate) executors: Vec<ExecutorSpec>,
    pub(crate) steps: Vec<StepIr>,
    /// The workflow's `on:` hooks.
    pub(crate) hooks: Vec<twinflow_core::Hook>,
}

/// Names of steps, outputs, inputs, keys, params and executors.
pub(crate) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 128
}

/// Reports each key of `unknown` (the keys a two-form mapping such as
/// `pack:`, `gpus:` or a `wait_for` entry did not know) with a "did you
/// mean" among `known`; whether there were none.
pub(crate) fn report_unknown_keys(
    d: &mut Diags,
    unknown: &[crate::span::Spanned<String>],
    known: &[&str],
) -> bool {
    for key in unknown {
        let expected = known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = did_you_mean(&key.value, known.iter().copied())
            .unwrap_or_else(|| format!("expected one of {expected}"));
        d.at(
            "twinflow::unknown-key",
            key.span,
            format!("unknown key `{}`", key.value),
            "not a key here",
        )
        .set_help(Some(help));
    }
    unknown.is_empty()
}

pub(crate) fn check_name(d: &mut Diags, span: Span, what: &str, name: &str) -> bool {
    if is_name(name) {
        return true;
    }
    let odd = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    let shown: String = if name.chars().any(odd) {
        name.escape_default().collect()
    } else {
        name.to_owned()
    };
    d.at(
        "twinflow::bad-name",
        span,
        format!("`{shown}` is not a valid {what} name"),
        "invalid name",
    )
    .set_help(Some(
        "names start with a letter or `_` and contain letters, digits, `_` and `-` (at most 128)"
            .into(),
    ));
    false
}

/// Lowers a parsed workflow. `doc` may have holes where the file was wrong
/// (already reported in `d`).
pub(crate) fn lower(
    doc: &WorkflowDoc,
    d: &mut Diags,
    opts: &CompileOptions,
    default_name: &str,
) -> Option<Lowered> {
    if doc.version.value != 1 {
        d.at(
            "twinflow::version",
            doc.version.span,
            format!("unsupported workflow version {}", doc.version.value),
            "this twinflow reads version 1",
        )
        .set_help(Some("write `version: 1`".into()));
    }
    let name = match &doc.name {
        Some(n) => {
            check_name(d, n.span, "workflow", &n.value);
            n.value.clone()
        }
        None => default_name.to_owned(),
    };
    let params = lower_params(doc, d, opts);
    let cycle = lower_cycle(doc, d);
    let executors = executors::lower_all(doc, d, opts);
    let info = WorkflowInfo {
        name,
        description: doc.description.clone(),
        file: opts.file.clone(),
        dir: opts.workflow_dir.clone(),
        run_id: opts.run_id.clone(),
    };
    let sources = sources::lower_all(doc, d, &params, cycle.as_ref(), &opts.workflow_dir);
    let mut steps = steps::lower_all(doc, d, &params, &executors, &sources, &opts.workflow_dir);
    let hooks = hooks::lower(d, doc.on.as_ref(), None, &opts.workflow_dir);
    if !d.is_empty() {
        return None;
    }
    graph::check_cycles(&steps, doc, d);
    if !d.is_empty() {
        return None;
    }
    groups::check(&steps, doc, &executors, d);
    if !d.is_empty() {
        return None;
    }
    // Sources come last, so the workflow's steps and executors keep their
    // ids; a source is in no cycle and no group.
    let mut executors: Vec<ExecutorSpec> = executors.into_iter().map(|e| e.spec).collect();
    sources::append(
        &mut steps,
        &mut executors,
        sources.into_iter().flatten().collect(),
    );
    Some(Lowered {
        info,
        params,
        cycle,
        executors,
        steps,
        hooks,
    })
}

fn lower_params(
    doc: &WorkflowDoc,
    d: &mut Diags,
    opts: &CompileOptions,
) -> Vec<(String, ParamValue)> {
    let mut params = Vec::new();
    for (name, value) in doc.params.iter() {
        check_name(d, name.span, "parameter", &name.value);
        let value = match &value.value {
            ParamDoc::One(v) => ParamValue::One(v.clone()),
            ParamDoc::Many(items) => {
                if items.is_empty() {
                    d.at(
                        "twinflow::empty-list",
                        value.span,
                        format!("parameter `{}` is an empty list", name.value),
                        "no values",
                    )
                    .set_help(Some("give at least one value".into()));
                }
                let mut seen: HashMap<&str, Span> = HashMap::with_capacity(items.len());
                for item in items {
                    let first = *seen.entry(item.value.as_str()).or_insert(item.span);
                    if first != item.span {
                        d.at(
                            "twinflow::duplicate-value",
                            item.span,
                            format!(
                                "`{}` appears twice in parameter `{}`",
                                item.value, name.value
                            ),
                            "repeated",
                        )
                        .add_label(first, "first here")
                        .set_help(Some("each value makes its own tasks; list it once".into()));
                    }
                }
                ParamValue::Many(items.iter().map(|i| i.value.clone()).collect())
            }
        };
        params.push((name.value.clone(), value));
    }
    for (key, raw) in &opts.params {
        let Some((_, value)) = params.iter_mut().find(|(n, _)| n == key) else {
            let known: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
            let help = did_you_mean(key, known.iter().copied()).unwrap_or_else(|| {
                if known.is_empty() {
                    "this workflow declares no params".to_owned()
                } else {
                    format!("declared params: {}", known.join(", "))
                }
            });
            d.push(
                Diagnostic::new(
                    "twinflow::unknown-param",
                    format!("--param {key}={raw}: the workflow has no parameter `{key}`"),
                )
                .help(help),
            );
            continue;
        };
        if raw.contains('\0') {
            d.push(
                Diagnostic::new(
                    "twinflow::nul",
                    format!(
                        "--param {key}={}: the value holds a NUL character (`\\0`)",
                        raw.escape_default()
                    ),
                )
                .help("a NUL cannot be passed to a command or an environment variable; remove it"),
            );
            continue;
        }
        let new = match value {
            ParamValue::One(_) => ParamValue::One(raw.clone()),
            ParamValue::Many(_) => {
                ParamValue::Many(raw.split(',').map(|s| s.trim().to_owned()).collect())
            }
        };
        // A refused override is not applied, so the file is checked as written.
        if let ParamValue::Many(list) = &new {
            if raw.trim().is_empty() || list.iter().any(String::is_empty) {
                let message = if raw.trim().is_empty() {
                    format!("--param {key}={raw} gives `{key}` no values")
                } else {
                    format!("--param {key}={raw} has an empty value")
                };
                d.push(
                    Diagnostic::new("twinflow::empty-list", message)
                        .help(format!("`{key}` is a list: give values separated by commas, e.g. `--param {key}=a,b`")),
                );
                continue;
            }
            let mut seen = HashSet::with_capacity(list.len());
            if let Some(dup) = list.iter().find(|v| !seen.insert(v.as_str())) {
                d.push(
                    Diagnostic::new(
                        "twinflow::duplicate-value",
                        format!("--param {key}={raw} lists `{dup}` twice"),
                    )
                    .help("each value makes its own tasks; list it once"),
                );
                continue;
            }
        }
        *value = new;
    }
    params
}

fn lower_cycle(doc: &WorkflowDoc, d: &mut Diags) -> Option<CycleSpec> {
    let spanned = doc.cycle.as_ref()?;
    let c = spanned.value.0.as_ref()?;
    let start = cycle::parse_point(&c.start.value.0);
    let stop = cycle::parse_point(&c.stop.value.0);
    let step = cycle::parse_step(&c.step.value);
    let mut bad = false;
    for (result, span, what) in [
        (start.as_ref().err(), c.start.span, "start"),
        (stop.as_ref().err(), c.stop.span, "stop"),
    ] {
        if let Some(message) = result {
            d.at(
                "twinflow::bad-date",
                span,
                message.clone(),
                format!("invalid cycle {what}"),
            )
            .set_help(Some(
                "write a date like `2020-01-01` or a date-time like `2020-01-01T06:00`".into(),
            ));
            bad = true;
        }
    }
    if let Err(message) = &step {
        d.at(
            "twinflow::bad-duration",
            c.step.span,
            message.clone(),
            "invalid cycle step",
        )
        .set_help(Some(match cycle::iso_form(&c.step.value) {
            Some(iso) => format!("did you mean `{iso}`? A cycle step is an ISO 8601 duration"),
            None => "ISO 8601 durations: `P10Y`, `P1M`, `P7D`, `PT6H`, `P1DT12H`".into(),
        }));
        bad = true;
    }
    if let Some(r) = &c.runahead
        && r.value == 0
    {
        d.at(
            "twinflow::bad-runahead",
            r.span,
            "runahead must be at least 1",
            "zero would never run",
        )
        .set_help(Some("leave `runahead` out for no limit".into()));
    }
    if bad {
        return None;
    }
    let (Ok((start, t1)), Ok((stop, t2)), Ok((step, t3))) = (start, stop, step) else {
        return None;
    };
    if stop < start {
        d.at(
            "twinflow::bad-cycle",
            c.stop.span,
            format!(
                "the cycle stops ({}) before it starts ({})",
                c.stop.value.0, c.start.value.0
            ),
            "stop is before start",
        )
        .add_label(c.start.span, "start")
        .set_help(Some(
            "swap `start` and `stop`; `stop` is the last point, inclusive".into(),
        ));
        return None;
    }
    match cycle::points(start, stop, step, t1 || t2 || t3) {
        Ok(points) => Some(CycleSpec {
            start: c.start.value.0.clone(),
            stop: c.stop.value.0.clone(),
            step: c.step.value.clone(),
            runahead: c.runahead.as_ref().map(|r| r.value),
            points,
        }),
        Err(message) => {
            d.at(
                "twinflow::bad-cycle",
                spanned.span,
                message,
                "in this cycle",
            );
            None
        }
    }
}
