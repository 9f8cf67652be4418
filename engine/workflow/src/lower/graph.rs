//! The step graph: refuses cycles (other than through `@-k`), naming them in full.

use super::StepIr;
use crate::de::Lenient;
use crate::diag::Diags;
use crate::model::WorkflowDoc;
use crate::span::Span;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Builds producer -> consumer edges of the same cycle point.
pub(super) fn step_graph(steps: &[StepIr]) -> DiGraph<usize, ()> {
    let mut g = DiGraph::with_capacity(steps.len(), steps.len());
    let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| g.add_node(i)).collect();
    for (i, s) in steps.iter().enumerate() {
        let producers = s
            .spec
            .inputs
            .iter()
            .filter(|x| x.offset == 0)
            .map(|x| x.from_step.index())
            .chain(
                s.spec
                    .after
                    .iter()
                    .filter(|a| a.offset == 0)
                    .map(|a| a.step.index()),
            );
        for p in producers {
            if p < nodes.len() {
                g.update_edge(nodes[p], nodes[i], ());
            }
        }
    }
    g
}

/// Where consumer `c` refers to producer `p` (a `needs` value or `after` item).
pub(super) fn reference_span(doc: &WorkflowDoc, steps: &[StepIr], c: usize, p: usize) -> Span {
    reference(doc, steps, c, p).map_or(steps[c].name_span, |(span, _)| span)
}

/// The span and text of the reference from consumer `c` to producer `p`.
fn reference(doc: &WorkflowDoc, steps: &[StepIr], c: usize, p: usize) -> Option<(Span, String)> {
    let producer = &steps[p].spec.name;
    let doc_step = doc
        .steps
        .value
        .iter()
        .find(|(n, _)| n.value == steps[c].spec.name)
        .and_then(|(_, s)| match &s.value {
            Lenient(Some(step)) => Some(step),
            Lenient(None) => None,
        });
    let refers = |text: &str| {
        text.split(['.', '@']).next() == Some(producer.as_str()) && !text.contains("@-")
    };
    doc_step.and_then(|s| {
        s.needs
            .iter()
            .map(|(_, v)| v)
            .chain(s.after.iter())
            .find(|v| refers(&v.value))
            .map(|v| (v.span, v.value.clone()))
    })
}

pub(crate) fn check_cycles(steps: &[StepIr], doc: &WorkflowDoc, d: &mut Diags) {
    let g = step_graph(steps);
    for scc in kosaraju_scc(&g) {
        let self_loop = scc.len() == 1 && g.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        if self_loop {
            let i = g[scc[0]];
            let name = &steps[i].spec.name;
            let (span, text) =
                reference(doc, steps, i, i).unwrap_or((steps[i].name_span, name.clone()));
            d.at(
                "twinflow::cycle",
                span,
                format!("step `{name}` depends on itself at the same cycle point"),
                "refers to its own step",
            )
            .set_help(Some(format!(
                "to use the previous cycle point's result, write `{}@-1`",
                text.trim()
            )));
            continue;
        }
        let path = cycle_path(&g, &scc);
        let names: Vec<&str> = path.iter().map(|&i| steps[i].spec.name.as_str()).collect();
        let first = reference_span(doc, steps, path[1 % path.len()], path[0]);
        let diag = d.at(
            "twinflow::cycle",
            first,
            format!("dependency cycle: {}", cycle_text(&names)),
            format!("`{}` needs `{}`", names[1 % names.len()], names[0]),
        );
        // A label per link, up to a limit: each label makes the rendering
        // longer for all the others.
        for w in 1..path.len().min(MAX_CYCLE_LABELS) {
            let (p, c) = (path[w], path[(w + 1) % path.len()]);
            diag.add_label(
                reference_span(doc, steps, c, p),
                format!("`{}` needs `{}`", steps[c].spec.name, steps[p].spec.name),
            );
        }
        diag.set_help(Some(
            "break the cycle, or refer to an earlier cycle point with `@-1`".into(),
        ));
    }
}

/// The most links of a dependency cycle labelled in the source.
const MAX_CYCLE_LABELS: usize = 12;

/// `a -> b -> c -> a`; a long cycle shows its first steps, how many are left
/// out, and its last.
fn cycle_text(names: &[&str]) -> String {
    const SHOWN: usize = 12;
    let mut shown: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    if names.len() > SHOWN + 1 {
        shown.truncate(SHOWN);
        shown.push(format!("... {} more ...", names.len() - SHOWN - 1));
        shown.push(names[names.len() - 1].to_owned());
    }
    shown.push(names[0].to_owned());
    shown.join(" -> ")
}

/// The shortest cycle through the first step of the set, in dependency order.
fn cycle_path(g: &DiGraph<usize, ()>, scc: &[NodeIndex]) -> Vec<usize> {
    let start = scc.iter().copied().min_by_key(|n| g[*n]).unwrap_or(scc[0]);
    let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
    let mut parent: std::collections::HashMap<NodeIndex, NodeIndex> =
        std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    'search: while let Some(n) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = g.neighbors(n).filter(|m| members.contains(m)).collect();
        next.sort_by_key(|m| g[*m]);
        for m in next {
            if m == start {
                parent.insert(start, n);
                break 'search;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(m) {
                e.insert(n);
                queue.push_back(m);
            }
        }
    }
    let mut path = vec![start];
    let mut current = start;
    while let Some(&p) = parent.get(&current) {
        if p == start || path.len() > scc.len() {
            break;
        }
        path.push(p);
        current = p;
    }
    path.reverse();
    path.rotate_right(1);
    path.into_iter().map(|n| g[n]).collect()
}
