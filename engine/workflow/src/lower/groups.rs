//! Coupling groups (`group: NAME`): the steps of one group run together,
//! one group instance per shared `for_each` coordinate and cycle point. The
//! compiler checks that an instance is well defined and can start at all:
//! its members run on one executor, share the same `for_each` keys and
//! values and cycling, do not wait for each other at the same cycle point
//! (directly or through other steps; `@-k` on earlier points is fine), and
//! fit together into a local executor's slots.

use super::StepIr;
use super::executors::ExecIr;
use super::graph::{reference_span, step_graph};
use crate::de::Lenient;
use crate::diag::Diags;
use crate::model::WorkflowDoc;
use crate::span::Span;
use crate::suggest::{did_you_mean, list};
use petgraph::algo::has_path_connecting;
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet};
use twinflow_core::BackendConfig;

/// Checks every coupling group of `steps` (all lowered without errors).
pub(crate) fn check(steps: &[StepIr], doc: &WorkflowDoc, executors: &[ExecIr], d: &mut Diags) {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in steps.iter().enumerate() {
        if let Some(g) = &s.spec.group {
            groups.entry(g.as_str()).or_default().push(i);
        }
    }
    let span_of = |i: usize| group_span(doc, &steps[i].spec.name).unwrap_or(steps[i].name_span);
    let graph = step_graph(steps);
    for (name, members) in &groups {
        let first = members[0];
        if members.len() == 1 {
            let others = groups.keys().copied().filter(|g| g != name);
            let help = did_you_mean(name, others).unwrap_or_else(|| {
                "a coupling group is two or more steps that run together: give the others the same `group`, or drop `group`".to_owned()
            });
            d.at(
                "twinflow::lonely-group",
                span_of(first),
                format!(
                    "group `{name}` has only one step (`{}`)",
                    steps[first].spec.name
                ),
                "no other step is in this group",
            )
            .set_help(Some(help));
            continue;
        }
        if !same_shape(steps, name, members, &span_of, d) {
            continue;
        }
        if !no_waits_inside(steps, doc, &graph, name, members, d) {
            continue;
        }
        fits_slots(steps, executors, name, members, &span_of, d);
    }
}

/// Where step `step` writes its `group:`.
fn group_span(doc: &WorkflowDoc, step: &str) -> Option<Span> {
    doc.steps
        .value
        .iter()
        .find(|(n, _)| n.value == step)
        .and_then(|(_, s)| match &s.value {
            Lenient(Some(s)) => s.group.as_ref().map(|g| g.span),
            Lenient(None) => None,
        })
}

/// `for_each` keys with their values, as sets.
fn keys(s: &StepIr) -> BTreeMap<&str, BTreeSet<&str>> {
    s.spec
        .for_each
        .iter()
        .map(|k| {
            (
                k.name.as_str(),
                k.values.iter().map(String::as_str).collect(),
            )
        })
        .collect()
}

fn shown_keys(k: &BTreeMap<&str, BTreeSet<&str>>) -> String {
    if k.is_empty() {
        return "no `for_each`".to_owned();
    }
    k.iter()
        .map(|(name, values)| format!("{name}: [{}]", list(values.iter().copied())))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Members run on one executor and have the same `for_each` keys and
/// values and the same cycling, so that each instance has one task of each.
fn same_shape(
    steps: &[StepIr],
    name: &str,
    members: &[usize],
    span_of: &dyn Fn(usize) -> Span,
    d: &mut Diags,
) -> bool {
    let first = &steps[members[0]];
    let first_keys = keys(first);
    let mut ok = true;
    for &m in &members[1..] {
        let s = &steps[m];
        if s.spec.executor != first.spec.executor {
            d.at(
                "twinflow::group-executors",
                span_of(m),
                format!(
                    "steps `{}` and `{}` of group `{name}` run on different executors",
                    first.spec.name, s.spec.name
                ),
                "on another executor than the group's first step",
            )
            .add_label(span_of(members[0]), "the group's first step")
            .set_help(Some(
                "a group instance starts as one unit on one executor: give its steps the same `executor`"
                    .into(),
            ));
            ok = false;
            continue;
        }
        let mine = keys(s);
        if mine != first_keys {
            d.at(
                "twinflow::group-keys",
                span_of(m),
                format!(
                    "steps `{}` and `{}` of group `{name}` run over different `for_each` ({} / {})",
                    first.spec.name,
                    s.spec.name,
                    shown_keys(&first_keys),
                    shown_keys(&mine)
                ),
                "other for_each keys or values",
            )
            .add_label(span_of(members[0]), "the group's first step")
            .set_help(Some(
                "one group instance runs per shared coordinate: give the group's steps the same for_each keys and values"
                    .into(),
            ));
            ok = false;
            continue;
        }
        if s.spec.cycling != first.spec.cycling {
            let (cycles, not) = if first.spec.cycling {
                (&first.spec.name, &s.spec.name)
            } else {
                (&s.spec.name, &first.spec.name)
            };
            d.at(
                "twinflow::group-cycling",
                span_of(m),
                format!(
                    "in group `{name}`, `{cycles}` cycles but `{not}` does not"
                ),
                "cycles differently from the group's first step",
            )
            .add_label(span_of(members[0]), "the group's first step")
            .set_help(Some(
                "one group instance runs per cycle point: give the group's steps the same `cycling`"
                    .into(),
            ));
            ok = false;
        }
    }
    ok
}

/// No member waits for another at the same cycle point (a `needs` or
/// `after` without `@-k`, directly or through other steps): the members of
/// an instance start together, so such a wait could never end.
fn no_waits_inside(
    steps: &[StepIr],
    doc: &WorkflowDoc,
    graph: &petgraph::graph::DiGraph<usize, ()>,
    name: &str,
    members: &[usize],
    d: &mut Diags,
) -> bool {
    for &producer in members {
        for &consumer in members {
            if producer == consumer {
                continue;
            }
            let (p, c) = (NodeIndex::new(producer), NodeIndex::new(consumer));
            if !has_path_connecting(graph, p, c, None) {
                continue;
            }
            let (ps, cs) = (&steps[producer].spec.name, &steps[consumer].spec.name);
            let direct = graph.contains_edge(p, c);
            let (span, how) = if direct {
                (
                    reference_span(doc, steps, consumer, producer),
                    String::new(),
                )
            } else {
                (
                    group_span(doc, cs).unwrap_or(steps[consumer].name_span),
                    " through other steps".to_owned(),
                )
            };
            d.at(
                "twinflow::need-in-group",
                span,
                format!(
                    "`{cs}` waits for `{ps}`{how} at the same cycle point, but both are in group `{name}`, whose steps run at the same time"
                ),
                "a wait inside a group instance",
            )
            .set_help(Some(format!(
                "steps of a group exchange data while they run, through `$TWINFLOW_GROUP_DIR`; to use `{ps}`'s result of an earlier point, write `@-1`, or take `{cs}` out of the group"
            )));
            return false;
        }
    }
    true
}

/// On a local executor with `slots`, the members of an instance fit into
/// them together (`cpus x tasks` each), or the instance could never start.
fn fits_slots(
    steps: &[StepIr],
    executors: &[ExecIr],
    name: &str,
    members: &[usize],
    span_of: &dyn Fn(usize) -> Span,
    d: &mut Diags,
) {
    let first = &steps[members[0]];
    let Some(exec) = executors.get(first.spec.executor.index()) else {
        return;
    };
    let BackendConfig::Local(local) = &exec.spec.backend else {
        return;
    };
    let Some(slots) = local.slots else {
        return;
    };
    let sizes: Vec<(&str, u64)> = members
        .iter()
        .map(|&m| {
            let r = &steps[m].spec.resources;
            (
                steps[m].spec.name.as_str(),
                u64::from(r.cpus) * u64::from(r.tasks),
            )
        })
        .collect();
    let total: u64 = sizes.iter().map(|(_, n)| n).sum();
    if total <= u64::from(slots) {
        return;
    }
    let parts: Vec<String> = sizes.iter().map(|(s, n)| format!("`{s}` {n}")).collect();
    d.at(
        "twinflow::group-too-big",
        span_of(members[members.len() - 1]),
        format!(
            "group `{name}` needs {total} cpus at once ({}), but executor `{}` has {slots} slots",
            parts.join(", "),
            exec.spec.name
        ),
        "the group's members together",
    )
    .set_help(Some(format!(
        "the steps of a group instance start together: raise `slots` of `{}` to {total}, or ask for fewer `cpus`",
        exec.spec.name
    )));
}
