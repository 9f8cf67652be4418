//! `twinflow graph`: the step or task graph as Graphviz dot or Mermaid.

use super::compile;
use crate::args::{CompileArgs, GraphFormat};
use crate::exit;
use crate::output::Output;
use std::fmt::Write as _;
use twinflow_core::TaskId;
use twinflow_workflow::Plan;

pub(crate) fn graph(out: &Output, args: &CompileArgs, tasks: bool, format: GraphFormat) -> u8 {
    match compile(out, args) {
        Ok(plan) => {
            let edges = if tasks {
                task_edges(&plan)
            } else {
                step_edges(&plan)
            };
            let nodes = if tasks {
                task_nodes(&plan)
            } else {
                step_nodes(&plan)
            };
            out.print(&match format {
                GraphFormat::Dot => dot(&plan.workflow.name, &nodes, &edges),
                GraphFormat::Mermaid => mermaid(&nodes, &edges),
            });
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

/// A node: id and label.
pub(crate) struct Node {
    id: String,
    label: String,
}

/// An edge: from, to, label, and whether it reaches back in the cycle.
pub(crate) struct Edge {
    from: String,
    to: String,
    label: String,
    earlier: bool,
}

fn step_nodes(plan: &Plan) -> Vec<Node> {
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let e = &plan.executors[s.executor.index()];
            Node {
                id: format!("s{i}"),
                label: format!(
                    "{}\\n{} on {}",
                    s.name,
                    crate::term::count(s.tasks.len() as u64, "task"),
                    e.name
                ),
            }
        })
        .collect()
}

fn step_edges(plan: &Plan) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        for input in &s.inputs {
            let mut label = input.name.clone();
            if input.gather {
                label.push_str(" (gather)");
            }
            if input.offset > 0 {
                let _ = write!(label, " @-{}", input.offset);
            }
            edges.push(Edge {
                from: format!("s{}", input.from_step),
                to: format!("s{i}"),
                label,
                earlier: input.offset > 0,
            });
        }
        for a in &s.after {
            edges.push(Edge {
                from: format!("s{}", a.step),
                to: format!("s{i}"),
                label: if a.offset > 0 {
                    format!("after @-{}", a.offset)
                } else {
                    "after".into()
                },
                earlier: a.offset > 0,
            });
        }
    }
    edges
}

fn task_nodes(plan: &Plan) -> Vec<Node> {
    (0..plan.task_count() as u32)
        .map(|i| Node {
            id: format!("t{i}"),
            label: plan.task_name(TaskId(i)),
        })
        .collect()
}

fn task_edges(plan: &Plan) -> Vec<Edge> {
    let mut edges = Vec::new();
    for i in 0..plan.task_count() as u32 {
        for d in plan.dependencies(TaskId(i)) {
            edges.push(Edge {
                from: format!("t{d}"),
                to: format!("t{i}"),
                label: String::new(),
                earlier: false,
            });
        }
    }
    edges
}

fn escape(label: &str) -> String {
    label.replace('"', "\\\"")
}

pub(crate) fn dot(name: &str, nodes: &[Node], edges: &[Edge]) -> String {
    let mut s = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
        escape(name)
    );
    for n in nodes {
        let _ = writeln!(s, "  {} [label=\"{}\"];", n.id, escape(&n.label));
    }
    for e in edges {
        let style = if e.earlier { ", style=dashed" } else { "" };
        if e.label.is_empty() {
            let _ = writeln!(s, "  {} -> {};", e.from, e.to);
        } else {
            let _ = writeln!(
                s,
                "  {} -> {} [label=\"{}\"{style}];",
                e.from,
                e.to,
                escape(&e.label)
            );
        }
    }
    s.push_str("}\n");
    s
}

pub(crate) fn mermaid(nodes: &[Node], edges: &[Edge]) -> String {
    let mut s = String::from("flowchart LR\n");
    for n in nodes {
        let label = n.label.replace("\\n", "<br/>").replace('"', "#quot;");
        let _ = writeln!(s, "  {}[\"{label}\"]", n.id);
    }
    for e in edges {
        let arrow = if e.earlier { "-.->" } else { "-->" };
        if e.label.is_empty() {
            let _ = writeln!(s, "  {} {arrow} {}", e.from, e.to);
        } else {
            let label = e.label.replace('"', "#quot;");
            let _ = writeln!(s, "  {} {arrow}|\"{label}\"| {}", e.from, e.to);
        }
    }
    s
}
