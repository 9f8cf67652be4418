//! The step graph: one node per step (not per task, so it stays readable
//! for any number of tasks) with its task counts by outcome, and one edge
//! per `needs`/`after` between steps, labelled with the input and `@-k`.
//! Layered left to right by longest path; drawn as inline SVG.

use super::esc;
use super::stats::StepStats;
use std::fmt::Write;
use twinflow_core::Plan;

const NODE_W: usize = 210;
const NODE_H: usize = 64;
const GAP_X: usize = 120;
const GAP_Y: usize = 34;
const PAD: usize = 20;

/// The SVG of the step graph.
pub(super) fn svg(plan: &Plan, stats: &[StepStats]) -> String {
    let n = plan.steps.len();
    // Layer = longest path from a source (edges with offset 0 only: `@-k`
    // edges go back in time and may point to the same step).
    let mut layer = vec![0usize; n];
    let forward: Vec<(usize, usize)> = plan
        .steps
        .iter()
        .enumerate()
        .flat_map(|(i, step)| {
            let inputs = step
                .inputs
                .iter()
                .filter(|inp| inp.offset == 0)
                .map(move |inp| (inp.from_step.index(), i));
            let after = step
                .after
                .iter()
                .filter(|a| a.offset == 0)
                .map(move |a| (a.step.index(), i));
            inputs.chain(after).collect::<Vec<_>>()
        })
        .filter(|(from, to)| from != to)
        .collect();
    // Same-point edges form a DAG (the compiler checks): n rounds settle it.
    for _ in 0..n {
        let mut changed = false;
        for &(from, to) in &forward {
            if layer[to] < layer[from] + 1 {
                layer[to] = layer[from] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let layers = layer.iter().max().map_or(1, |m| m + 1);
    let mut row = vec![0usize; n];
    let mut per_layer = vec![0usize; layers];
    for i in 0..n {
        row[i] = per_layer[layer[i]];
        per_layer[layer[i]] += 1;
    }
    let rows = per_layer.iter().copied().max().unwrap_or(1);
    let width = PAD * 2 + layers * NODE_W + (layers - 1) * GAP_X;
    let height = PAD * 2 + rows * NODE_H + (rows.saturating_sub(1)) * GAP_Y + 30;
    let pos = |i: usize| {
        let x = PAD + layer[i] * (NODE_W + GAP_X);
        let offset = (rows - per_layer[layer[i]]) * (NODE_H + GAP_Y) / 2;
        let y = PAD + 16 + offset + row[i] * (NODE_H + GAP_Y);
        (x, y)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="step-graph" class="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="step graph">"#
    );
    s.push_str(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#667"/></marker></defs>"##,
    );
    for (i, step) in plan.steps.iter().enumerate() {
        let edges = step
            .inputs
            .iter()
            .map(|inp| {
                (
                    inp.from_step.index(),
                    inp.offset,
                    inp.name.as_str(),
                    inp.gather,
                )
            })
            .chain(
                step.after
                    .iter()
                    .map(|a| (a.step.index(), a.offset, "after", false)),
            );
        for (from, offset, label, gather) in edges {
            let (tx, ty) = pos(i);
            let mut label = label.to_owned();
            if offset > 0 {
                let _ = write!(label, " @-{offset}");
            }
            if gather {
                label.push_str(" (gather)");
            }
            if from == i {
                // A step fed by its own earlier cycle points: a loop above it.
                let (x0, x1, y) = (tx + NODE_W / 2 - 30, tx + NODE_W / 2 + 30, ty);
                let _ = write!(
                    s,
                    r#"<path class="edge" d="M{x0},{y} C{x0},{a} {x1},{a} {x1},{y}" marker-end="url(#arrow)"/><text class="edge-label" x="{cx}" y="{ly}" text-anchor="middle">{l}</text>"#,
                    a = y.saturating_sub(34),
                    cx = tx + NODE_W / 2,
                    ly = y.saturating_sub(26),
                    l = esc(&label)
                );
                continue;
            }
            let (fx, fy) = pos(from);
            let (x0, y0) = (fx + NODE_W, fy + NODE_H / 2);
            let (x1, y1) = (tx, ty + NODE_H / 2);
            let mx = (x0 + x1) / 2;
            let _ = write!(
                s,
                r#"<path class="edge" d="M{x0},{y0} C{mx},{y0} {mx},{y1} {x1},{y1}" marker-end="url(#arrow)"/><text class="edge-label" x="{mx}" y="{ly}" text-anchor="middle">{l}</text>"#,
                ly = (y0 + y1) / 2 - 4,
                l = esc(&label)
            );
        }
    }
    for (i, step) in plan.steps.iter().enumerate() {
        let (x, y) = pos(i);
        let st = &stats[i];
        let _ = write!(
            s,
            r#"<g class="node" data-step="{name}" tabindex="0"><title>{name}: {total} tasks, {ok} succeeded ({cached} cached), {failed} failed, {skipped} skipped</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8"/><text class="node-name" x="{tx}" y="{ny}">{name}</text><text class="node-sub" x="{tx}" y="{sy}">{total} tasks · {exec}</text>"#,
            name = esc(&step.name),
            total = st.total,
            ok = st.succeeded,
            cached = st.cached,
            failed = st.failed,
            skipped = st.skipped,
            tx = x + 10,
            ny = y + 22,
            sy = y + 40,
            exec = esc(&st.executor),
        );
        // Outcome bar: succeeded, cached, failed, skipped, other.
        let bar_w = NODE_W - 20;
        let mut bx = x + 10;
        let total = st.total.max(1);
        for (count, class) in [
            (st.succeeded - st.cached, "ok"),
            (st.cached, "cached"),
            (st.failed, "failed"),
            (st.skipped, "skipped"),
            (st.other(), "other"),
        ] {
            if count == 0 {
                continue;
            }
            let w = (bar_w * count).div_ceil(total).max(2);
            let _ = write!(
                s,
                r#"<rect class="bar {class}" x="{bx}" y="{by}" width="{w}" height="8"/>"#,
                by = y + NODE_H - 16
            );
            bx += w;
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}
