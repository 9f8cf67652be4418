//! The timeline (Gantt chart) of a run's tasks, one lane per executor.
//!
//! Up to [`MAX_BARS`] tasks each get a bar (packed into rows, greedy by
//! start time, coloured by step, a tooltip each). Past that, bars would make
//! the file large and the chart unreadable, so each lane shows instead how
//! many tasks of each step ran at once, averaged over [`BUCKETS`] time
//! buckets (a stacked area): the file size then no longer grows with the
//! task count.

use super::{esc, fmt_secs};
use crate::RunRecord;
use std::fmt::Write;
use twinflow_core::TaskId;

/// Most tasks drawn as bars.
pub(super) const MAX_BARS: usize = 3000;
/// Time buckets of the aggregated chart.
const BUCKETS: usize = 240;
const LABEL_W: f64 = 170.0;
const PLOT_W: f64 = 1000.0;
const AXIS_H: f64 = 26.0;

struct Span {
    task: TaskId,
    start: i64,
    end: i64,
    failed: bool,
}

/// The timeline's SVG and a sentence saying how it was drawn.
pub(super) fn svg(record: &RunRecord) -> (String, String) {
    let plan = &record.plan;
    let now = record
        .ended_ms()
        .unwrap_or_else(|| jiff::Timestamp::now().as_millisecond());
    let mut lanes: Vec<Vec<Span>> = (0..plan.executors.len()).map(|_| Vec::new()).collect();
    let mut cached = 0usize;
    for (t, row) in record.tasks.iter().enumerate() {
        let Some(row) = row else { continue };
        if row.cached_from.is_some() {
            cached += 1;
            continue;
        }
        let Some(start) = row.started_ms else {
            continue;
        };
        let end = row.finished_ms.unwrap_or(now).max(start);
        let lane = (row.executor as usize).min(lanes.len().saturating_sub(1));
        let Some(lane) = lanes.get_mut(lane) else {
            continue;
        };
        lane.push(Span {
            task: TaskId(t as u32),
            start,
            end,
            failed: row.state == twinflow_engine::TaskState::Failed,
        });
    }
    let drawn: usize = lanes.iter().map(Vec::len).sum();
    let t0 = lanes
        .iter()
        .flatten()
        .map(|s| s.start)
        .min()
        .unwrap_or(record.run.created_ms);
    let t1 = lanes
        .iter()
        .flatten()
        .map(|s| s.end)
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let scale = PLOT_W / (t1 - t0) as f64;
    let x = |ms: i64| LABEL_W + (ms - t0) as f64 * scale;
    let bars = drawn <= MAX_BARS;
    let mut body = String::new();
    let mut y = AXIS_H;
    for (e, lane) in lanes.iter_mut().enumerate() {
        if lane.is_empty() {
            continue;
        }
        let exec = &plan.executors[e];
        let label = format!("{} ({})", exec.name, exec.backend.kind().as_str());
        let lane_h = if bars {
            bar_lane(&mut body, record, lane, y, &x)
        } else {
            density_lane(&mut body, record, lane, y, t0, t1)
        };
        let _ = write!(
            body,
            r#"<text class="lane-label" x="6" y="{ty:.0}">{l}</text><text class="lane-sub" x="6" y="{sy:.0}">{n} tasks</text><line class="lane-sep" x1="0" x2="{w}" y1="{ly:.1}" y2="{ly:.1}"/>"#,
            ty = y + 14.0,
            sy = y + 28.0,
            l = esc(&label),
            n = lane.len(),
            w = LABEL_W + PLOT_W,
            ly = y + lane_h + 4.0,
        );
        y += lane_h.max(34.0) + 10.0;
    }
    let height = y + 4.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="timeline" class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {height:.0}" width="{w}" height="{height:.0}" role="img" aria-label="timeline of tasks per executor" data-mode="{mode}">"#,
        w = LABEL_W + PLOT_W + 10.0,
        mode = if bars { "bars" } else { "density" }
    );
    axis(&mut s, t0, t1, height);
    s.push_str(&body);
    s.push_str("</svg>");
    let mut note = if bars {
        format!(
            "{drawn} tasks, one bar each, packed into rows per executor; hover a bar for its task."
        )
    } else {
        format!(
            "{drawn} tasks: more than {MAX_BARS}, so each executor's lane shows how many tasks of each step ran at once (averaged over {BUCKETS} time slices) instead of one bar per task."
        )
    };
    if cached > 0 {
        let _ = write!(note, " {cached} tasks came from the cache and did not run.");
    }
    (s, note)
}

fn axis(s: &mut String, t0: i64, t1: i64, height: f64) {
    let secs = (t1 - t0) as f64 / 1000.0;
    let step = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0, 14400.0, 21600.0, 43200.0, 86400.0, 172_800.0, 604_800.0,
    ]
    .into_iter()
    .find(|st| secs / st <= 10.0)
    .unwrap_or(604_800.0);
    let mut t = 0.0;
    while t <= secs + 1e-9 {
        let px = LABEL_W + t / secs.max(1e-3) * PLOT_W;
        let _ = write!(
            s,
            r#"<line class="tick" x1="{px:.1}" x2="{px:.1}" y1="{a}" y2="{height:.0}"/><text class="tick-label" x="{px:.1}" y="14" text-anchor="middle">{l}</text>"#,
            a = AXIS_H - 6.0,
            l = fmt_secs(t)
        );
        t += step;
    }
}

/// Bars packed into rows; returns the lane's height.
fn bar_lane(
    s: &mut String,
    record: &RunRecord,
    lane: &mut [Span],
    top: f64,
    x: &dyn Fn(i64) -> f64,
) -> f64 {
    lane.sort_by_key(|sp| (sp.start, sp.end));
    let mut row_ends: Vec<i64> = Vec::new();
    let mut rows = Vec::with_capacity(lane.len());
    for sp in lane.iter() {
        let row = match row_ends.iter().position(|&end| end <= sp.start) {
            Some(r) => {
                row_ends[r] = sp.end;
                r
            }
            None => {
                row_ends.push(sp.end);
                row_ends.len() - 1
            }
        };
        rows.push(row);
    }
    let n = row_ends.len().max(1);
    let row_h = (240.0 / n as f64).clamp(2.0, 12.0);
    let gap = if row_h > 5.0 { 1.0 } else { 0.0 };
    for (sp, row) in lane.iter().zip(rows) {
        let plan = &record.plan;
        let step = plan.tasks()[sp.task.index()].step.index();
        let x0 = x(sp.start);
        let w = (x(sp.end) - x0).max(1.0);
        let _ = write!(
            s,
            r#"<rect class="task s{c}{f}" data-step="{st}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"><title>{name} · {d}{fail}</title></rect>"#,
            c = step % 10,
            f = if sp.failed { " failed" } else { "" },
            st = esc(&plan.steps[step].name),
            y = top + row as f64 * row_h,
            h = row_h - gap,
            name = esc(&plan.task_name(sp.task)),
            d = fmt_secs((sp.end - sp.start) as f64 / 1000.0),
            fail = if sp.failed { " · failed" } else { "" },
        );
    }
    n as f64 * row_h
}

/// Tasks running at once per step, stacked, per time bucket; returns the
/// lane's height.
fn density_lane(
    s: &mut String,
    record: &RunRecord,
    lane: &[Span],
    top: f64,
    t0: i64,
    t1: i64,
) -> f64 {
    let plan = &record.plan;
    let steps = plan.steps.len();
    let width = (t1 - t0) as f64 / BUCKETS as f64;
    // busy[bucket][step]: task-milliseconds in the bucket.
    let mut busy = vec![vec![0f64; steps]; BUCKETS];
    for sp in lane {
        let step = plan.tasks()[sp.task.index()].step.index();
        let first = (((sp.start - t0) as f64 / width) as usize).min(BUCKETS - 1);
        let last = (((sp.end - t0) as f64 / width) as usize).min(BUCKETS - 1);
        for (b, slot) in busy.iter_mut().enumerate().take(last + 1).skip(first) {
            let b0 = t0 as f64 + b as f64 * width;
            let overlap = (sp.end as f64).min(b0 + width) - (sp.start as f64).max(b0);
            if overlap > 0.0 {
                slot[step] += overlap;
            }
        }
    }
    let peak = busy
        .iter()
        .map(|b| b.iter().sum::<f64>() / width)
        .fold(0.0, f64::max)
        .max(1e-9);
    let height = 120.0;
    let col_w = PLOT_W / BUCKETS as f64;
    for (b, slot) in busy.iter().enumerate() {
        let mut y = top + height;
        for (step, ms) in slot.iter().enumerate() {
            let running = ms / width;
            if running <= 0.0 {
                continue;
            }
            let h = running / peak * height;
            y -= h;
            let _ = write!(
                s,
                r#"<rect class="task s{c}" data-step="{st}" x="{x:.1}" y="{y:.1}" width="{w:.2}" height="{h:.2}"><title>{st}: {running:.1} running</title></rect>"#,
                c = step % 10,
                st = esc(&plan.steps[step].name),
                x = LABEL_W + b as f64 * col_w,
                w = col_w,
            );
        }
    }
    let _ = write!(
        s,
        r#"<text class="lane-sub" x="6" y="{y:.0}">peak {peak:.0} at once</text>"#,
        y = top + 42.0
    );
    height
}
