//! The HTML run report: one self-contained file (inline CSS, JS and SVG; no
//! network) a person opens in a browser. It stays usable for runs of many
//! thousands of tasks: the graph is drawn per step, the timeline turns from
//! bars into per-step concurrency past [`timeline::MAX_BARS`] tasks, and the
//! failure and artefact lists are capped (with per-step totals for all).

mod graph;
mod sources;
mod stats;
mod timeline;

use crate::ReportError;
use crate::record::{RunRecord, rfc3339, tail};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use twinflow_core::TaskId;

/// How much of a large run to list.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Failed tasks shown with their log tails.
    pub max_failures: usize,
    /// Lines of each log tail.
    pub log_lines: usize,
    /// Artefact rows listed (totals per step cover all of them).
    pub max_artefacts: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            max_failures: 50,
            log_lines: 20,
            max_artefacts: 1000,
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether the timeline drew one bar per task (else per-step concurrency).
    pub timeline_bars: bool,
}

/// Writes the report of `record` to the file `out`.
pub fn write_report(
    record: &RunRecord,
    out: &Path,
    options: &ReportOptions,
) -> Result<ReportSummary, ReportError> {
    let html = render(record, options);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(ReportError::io(parent))?;
    }
    std::fs::write(out, &html).map_err(ReportError::io(out))?;
    Ok(ReportSummary {
        path: out.to_owned(),
        bytes: html.len() as u64,
        timeline_bars: html.contains(r#"data-mode="bars""#),
    })
}

/// The page.
pub(crate) fn render(record: &RunRecord, options: &ReportOptions) -> String {
    let plan = &record.plan;
    let run = &record.run;
    let stats = stats::step_stats(record);
    let (timeline_svg, timeline_note) = timeline::svg(record);
    let mut h = String::with_capacity(256 * 1024);
    let title = format!("twinflow run {} — {}", run.id, plan.workflow.name);
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{t}</title><style>{css}</style></head><body><header><h1>{wf} <span class="state {state}">{state}</span></h1><p class="run-id">run <code>{id}</code></p>"#,
        t = esc(&title),
        css = include_str!("page.css"),
        wf = esc(&plan.workflow.name),
        state = run.state.as_str(),
        id = esc(&run.id),
    );
    if let Some(d) = &plan.workflow.description {
        let _ = write!(h, r#"<p class="description">{}</p>"#, esc(d));
    }
    let total: usize = stats.iter().map(|s| s.total).sum();
    let sum = |f: fn(&stats::StepStats) -> usize| stats.iter().map(f).sum::<usize>();
    let ran: f64 = stats.iter().flat_map(|s| s.durations.iter()).sum();
    let wall = record
        .ended_ms()
        .map(|end| fmt_secs((end - run.created_ms) as f64 / 1000.0))
        .unwrap_or_else(|| "still running".to_owned());
    let _ = write!(
        h,
        r#"<dl class="facts"><div><dt>tasks</dt><dd>{total}</dd></div><div><dt>succeeded</dt><dd>{ok}</dd></div><div><dt>cached</dt><dd>{cached}</dd></div><div><dt>failed</dt><dd class="{fc}">{failed}</dd></div><div><dt>skipped</dt><dd>{skipped}</dd></div><div><dt>wall time</dt><dd>{wall}</dd></div><div><dt>task time</dt><dd>{ran}</dd></div><div><dt>started</dt><dd>{start}</dd></div><div><dt>host</dt><dd>{host}</dd></div><div><dt>workflow file</dt><dd><code>{file}</code></dd></div></dl>"#,
        ok = sum(|s| s.succeeded),
        cached = sum(|s| s.cached),
        failed = sum(|s| s.failed),
        fc = if sum(|s| s.failed) > 0 { "bad" } else { "" },
        skipped = sum(|s| s.skipped),
        ran = fmt_secs(ran),
        start = rfc3339(run.created_ms),
        host = esc(&run.host),
        file = esc(run.file.as_deref().unwrap_or("")),
    );
    if !plan.params.is_empty() {
        h.push_str(r#"<p class="params">"#);
        for (name, value) in &plan.params {
            let _ = write!(
                h,
                "<span><b>{}</b> = {}</span> ",
                esc(name),
                esc(&value.as_slice().join(", "))
            );
        }
        h.push_str("</p>");
    }
    h.push_str("</header><main>");

    let _ = write!(
        h,
        r#"<section id="graph-section"><h2>Step graph</h2><p class="note">One box per step ({n} steps, {total} tasks); the bar shows its tasks' outcomes. Click a step to highlight its tasks in the timeline.</p><div class="scroll">{svg}</div><p class="legend"><span class="sw ok"></span>succeeded <span class="sw cached"></span>cached <span class="sw failed"></span>failed <span class="sw skipped"></span>skipped <span class="sw other"></span>not finished</p></section>"#,
        n = plan.steps.len(),
        svg = graph::svg(plan, &stats),
    );
    let _ = write!(
        h,
        r#"<section id="timeline-section"><h2>Timeline</h2><p class="note">{note}</p><div class="scroll">{timeline_svg}</div><p class="legend">"#,
        note = esc(&timeline_note),
    );
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = write!(
            h,
            r#"<span class="sw s{}"></span>{} "#,
            i % 10,
            esc(&step.name)
        );
    }
    h.push_str("</p></section>");

    steps_table(&mut h, record, &stats);
    failures(&mut h, record, options);
    sources::section(&mut h, record);
    h.push_str(&crate::operator::section(&record.actions, esc));
    artefacts(&mut h, record, &stats, options);

    let _ = write!(
        h,
        r#"</main><footer>Written by twinflow {v} at {now}. Self-contained: no network access.</footer><script>{js}</script></body></html>"#,
        v = env!("CARGO_PKG_VERSION"),
        now = rfc3339(jiff::Timestamp::now().as_millisecond()),
        js = include_str!("page.js"),
    );
    h
}

fn steps_table(h: &mut String, record: &RunRecord, stats: &[stats::StepStats]) {
    h.push_str(r#"<section id="steps-section"><h2>Steps</h2><table class="steps"><thead><tr><th>step</th><th>executor</th><th>tasks</th><th>succeeded</th><th>cached</th><th>failed</th><th>skipped</th><th>not finished</th><th>min</th><th>median</th><th>max</th><th>total</th><th>files</th><th>bytes</th></tr></thead><tbody>"#);
    for (step, st) in record.plan.steps.iter().zip(stats) {
        let q = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), fmt_secs);
        let _ = write!(
            h,
            r#"<tr data-step="{name}"><td><code>{name}</code></td><td>{exec}</td><td>{total}</td><td>{ok}</td><td>{cached}</td><td class="{fc}">{failed}</td><td>{skipped}</td><td>{other}</td><td>{min}</td><td>{med}</td><td>{max}</td><td>{sum}</td><td>{files}</td><td>{bytes}</td></tr>"#,
            name = esc(&step.name),
            exec = esc(&st.executor),
            total = st.total,
            ok = st.succeeded,
            cached = st.cached,
            failed = st.failed,
            fc = if st.failed > 0 { "bad" } else { "" },
            skipped = st.skipped,
            other = st.other(),
            min = q(st.quantile(0.0)),
            med = q(st.quantile(0.5)),
            max = q(st.quantile(1.0)),
            sum = fmt_secs(st.durations.iter().sum()),
            files = st.files,
            bytes = fmt_bytes(st.bytes),
        );
    }
    h.push_str("</tbody></table><p class=\"note\">Durations are of the tasks that ran (cached ones excluded), from launch to end of their latest attempt.</p></section>");
}

fn failures(h: &mut String, record: &RunRecord, options: &ReportOptions) {
    let failed: Vec<TaskId> = record
        .tasks
        .iter()
        .flatten()
        .filter(|t| t.state == twinflow_engine::TaskState::Failed)
        .map(|t| TaskId(t.task))
        .collect();
    let _ = write!(
        h,
        r#"<section id="failures-section"><h2>Failures <span class="count">{}</span></h2>"#,
        failed.len()
    );
    if failed.is_empty() {
        h.push_str(r#"<p class="note">No task failed.</p></section>"#);
        return;
    }
    for &task in failed.iter().take(options.max_failures) {
        let Some(row) = &record.tasks[task.index()] else {
            continue;
        };
        let _ = write!(
            h,
            r#"<details class="failure" open><summary><code>{name}</code> · attempt {a}{handle}</summary><p class="reason">{reason}</p>"#,
            name = esc(&record.plan.task_name(task)),
            a = row.attempt,
            handle = row
                .handle
                .as_ref()
                .map(|hd| format!(" · handle <code>{}</code>", esc(hd)))
                .unwrap_or_default(),
            reason = esc(row.reason.as_deref().unwrap_or("")),
        );
        if let Some((stdout, stderr)) = record.log_paths(task) {
            for (label, path) in [("stderr", stderr), ("stdout", stdout)] {
                if let Some(text) = tail(&path, options.log_lines) {
                    let _ = write!(
                        h,
                        r#"<p class="log-label">{label}, last lines (<code>{p}</code>)</p><pre class="log">{t}</pre>"#,
                        p = esc(&path.display().to_string()),
                        t = esc(&text)
                    );
                }
            }
        }
        h.push_str("</details>");
    }
    if failed.len() > options.max_failures {
        let _ = write!(
            h,
            r#"<p class="note">{} more failed tasks are not shown; <code>twinflow status {}</code> lists them.</p>"#,
            failed.len() - options.max_failures,
            esc(&record.run.id)
        );
    }
    h.push_str("</section>");
}

fn artefacts(
    h: &mut String,
    record: &RunRecord,
    stats: &[stats::StepStats],
    options: &ReportOptions,
) {
    let count: usize = stats.iter().map(|s| s.files).sum();
    let bytes: u64 = stats.iter().map(|s| s.bytes).sum();
    let _ = write!(
        h,
        r#"<section id="artefacts-section"><h2>Artefacts <span class="count">{count}</span></h2><p class="note">{count} sealed files, {b} in all. <input id="artefact-filter" type="search" placeholder="filter by task or file" aria-label="filter artefacts"></p><table class="artefacts"><thead><tr><th>task</th><th>output</th><th>path</th><th>size</th><th>sha256</th></tr></thead><tbody>"#,
        b = fmt_bytes(bytes)
    );
    let run_dir = record.run_dir();
    let mut shown = 0usize;
    'tasks: for (t, files) in record.artefacts.iter().enumerate() {
        for a in files {
            if shown >= options.max_artefacts {
                break 'tasks;
            }
            shown += 1;
            let path = Path::new(&a.path);
            let rel = path.strip_prefix(&run_dir).unwrap_or(path);
            let _ = write!(
                h,
                r#"<tr><td><code>{task}</code></td><td>{out}</td><td><code>{p}</code></td><td class="num">{size}</td><td><code title="{sha}">{short}…</code></td></tr>"#,
                task = esc(&record.plan.task_name(TaskId(t as u32))),
                out = esc(&a.output),
                p = esc(&rel.display().to_string()),
                size = fmt_bytes(a.size),
                sha = esc(&a.sha256),
                short = esc(a.sha256.get(..16).unwrap_or(&a.sha256)),
            );
        }
    }
    h.push_str("</tbody></table>");
    if count > shown {
        let _ = write!(
            h,
            r#"<p class="note">The first {shown} of {count} files are listed; the provenance crate (<code>twinflow provenance {}</code>) holds them all.</p>"#,
            esc(&record.run.id)
        );
    }
    let _ = write!(
        h,
        r#"<p class="note">Paths are relative to the run directory <code>{}</code>.</p></section>"#,
        esc(&record.run.run_dir)
    );
}

/// HTML-escapes text (also for attribute values).
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `0.25 s`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub(crate) fn fmt_secs(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.2} s")
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        let s = secs.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (secs / 60.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

/// `512 B`, `1.5 KiB`, `3.2 MiB`.
pub(crate) fn fmt_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(fmt_secs(0.25), "0.25 s");
        assert_eq!(fmt_secs(125.0), "2 min 05 s");
        assert_eq!(fmt_secs(7380.0), "2 h 03 min");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
    }
}
