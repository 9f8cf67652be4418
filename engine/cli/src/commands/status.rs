//! `twinflow status`: a run's summary (state, per-step counts, its first
//! failed and awaiting tasks), and, when asked, its tasks filtered by step,
//! state and name, in task order or another (`--order`, done by the daemon
//! or the store), a page at a time. Read through the daemon or the store
//! as `runs` and `logs` are ([`super::inspect`]); every answer is bounded,
//! whatever the run's size.

use super::inspect::{reader_for, when};
use crate::args::{DaemonArgs, StateArgs, StatusArgs};
use crate::exit;
use crate::output::Output;
use crate::term::shown;
use std::fmt::Write as _;
use twinflow_daemon::api::{DEFAULT_PAGE, MAX_PAGE, StatusSummary, TaskQuery};
use twinflow_engine::TaskRow;

pub(crate) fn status(
    out: &Output,
    state: &StateArgs,
    daemon: &DaemonArgs,
    run: Option<&str>,
    list: &StatusArgs,
    json: bool,
) -> u8 {
    let reader = match reader_for(out, state, daemon, run) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let summary = match reader.summary(out, run) {
        Ok(s) => s,
        Err(f) => return reader.report(out, f, run),
    };
    if json && list.summary {
        out.print(&format!(
            "{}\n",
            serde_json::to_string(&summary).unwrap_or_default()
        ));
        return exit::SUCCESS;
    }
    let order = list.order.unwrap_or_default();
    if let Some(after) = list.after.filter(|a| a.order != order) {
        out.error(&format!(
            "--after {after} is a position in order {}, not {order}: give --order {}",
            after.order, after.order
        ));
        return exit::INVALID;
    }
    let mut asked = TaskQuery {
        step: list.step.clone(),
        states: list.task_state.clone(),
        name: list.name.clone(),
        order,
        after: list.after,
        limit: None,
    };
    // JSON: one page (100 tasks unless --limit); text: every task asked
    // for, fetched a page at a time.
    let wanted = match list.limit {
        Some(n) => Some(usize::try_from(n).unwrap_or(MAX_PAGE)),
        None if json => Some(DEFAULT_PAGE),
        None => None,
    };
    let mut rows: Vec<TaskRow> = Vec::new();
    let mut next_after = None;
    if json || list.lists_tasks() {
        loop {
            let left = wanted.map_or(MAX_PAGE, |w| w.saturating_sub(rows.len()));
            asked.limit = Some(left.clamp(1, MAX_PAGE));
            let page = match reader.tasks(out, &summary.run.id, &asked) {
                Ok(p) => p,
                Err(f) => return reader.report(out, f, run),
            };
            rows.extend(page.tasks);
            next_after = page.next_after;
            let full = wanted.is_some_and(|w| rows.len() >= w);
            match next_after {
                Some(after) if !full => asked.after = Some(after),
                _ => break,
            }
        }
    }
    if json {
        let value = serde_json::json!({
            "run": summary.run,
            "steps": summary.steps,
            "tasks": rows,
            "next_after": next_after,
        });
        out.print(&format!("{value}\n"));
        return exit::SUCCESS;
    }
    let mut s = summary_text(&summary);
    if list.lists_tasks() {
        let _ = writeln!(s, "\ntasks:");
        for t in &rows {
            let secs = t.seconds.map(|x| format!("{x:.1} s")).unwrap_or_default();
            let _ = writeln!(s, "  {:<10} {:>8}  {}", t.state, secs, shown(&t.name));
        }
        if let Some(after) = next_after {
            let order = match after.order {
                twinflow_engine::TaskOrder::Id => String::new(),
                order => format!("--order {order} "),
            };
            let _ = writeln!(s, "  (more follow: add {order}--after {after})");
        }
    }
    out.print(&s);
    exit::SUCCESS
}

/// The summary as text: the run, its step table, its first failures and
/// awaiting tasks, with how many more there are.
fn summary_text(summary: &StatusSummary) -> String {
    let StatusSummary {
        run: info, steps, ..
    } = summary;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "run {} ({}): {}",
        shown(&info.id),
        shown(&info.workflow),
        info.state.as_str()
    );
    let _ = writeln!(
        s,
        "  created {} UTC, last change {} UTC",
        when(info.created_ms),
        when(info.updated_ms)
    );
    if let Some(file) = &info.file {
        let _ = writeln!(s, "  workflow file: {}", shown(file));
    }
    let _ = writeln!(s, "  files: {}", shown(&info.run_dir));
    let width = steps
        .iter()
        .map(|st| shown(&st.step).len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        s,
        "\n  {:<width$}  {:>6}  {:>6}  {:>7}  {:>6}  {:>6}  {:>7}  {:>7}  {:>9}",
        "step", "total", "done", "running", "queued", "failed", "skipped", "waiting", "cancelled"
    );
    for st in steps {
        let _ = writeln!(
            s,
            "  {:<width$}  {:>6}  {:>6}  {:>7}  {:>6}  {:>6}  {:>7}  {:>7}  {:>9}",
            shown(&st.step),
            st.total,
            st.succeeded,
            st.running + st.awaiting,
            st.queued + st.retrying,
            st.failed,
            st.skipped,
            st.waiting,
            st.cancelled
        );
    }
    let cached: u64 = steps.iter().map(|st| st.cached).sum();
    if cached > 0 {
        let _ = writeln!(s, "  ({cached} of the done tasks reused earlier results)");
    }
    let id = shown(&info.id);
    if !summary.failures.is_empty() {
        let _ = writeln!(s, "\nfailed tasks:");
        named(&mut s, &summary.failures, summary.failed, &id, "failed");
        let _ = writeln!(s, "  (twinflow logs {id} TASK shows a task's output)");
    }
    if !summary.awaiting_tasks.is_empty() {
        let _ = writeln!(s, "\nawaiting data (counted as running):");
        named(
            &mut s,
            &summary.awaiting_tasks,
            summary.awaiting,
            &id,
            "awaiting",
        );
    }
    if !summary.held.is_empty() {
        let _ = writeln!(
            s,
            "\nheld tasks ({}; `twinflow release {id} SELECTOR` lets them start):",
            summary.held.len()
        );
        for name in &summary.held {
            let _ = writeln!(s, "  {}", shown(name));
        }
    }
    if !summary.actions.is_empty() {
        let earlier = summary
            .action_count
            .saturating_sub(summary.actions.len() as u64);
        let _ = writeln!(s, "\noperator actions:");
        if earlier > 0 {
            let _ = writeln!(
                s,
                "  ({earlier} earlier ones: status --json lists the latest)"
            );
        }
        for a in &summary.actions {
            let _ = writeln!(
                s,
                "  #{} {} UTC by {}: {} {} ({} task(s))",
                a.seq,
                when(a.at_ms),
                shown(&a.by.user),
                a.kind.as_str(),
                shown(&a.selectors.join(" ")),
                a.tasks.len()
            );
        }
    }
    s
}

/// Lines `name: reason` for `shown_rows`, and how many more of `total`
/// there are.
fn named(s: &mut String, shown_rows: &[TaskRow], total: u64, id: &str, state: &str) {
    for t in shown_rows {
        let _ = writeln!(
            s,
            "  {}: {}",
            shown(&t.name),
            shown(t.reason.as_deref().unwrap_or(""))
        );
    }
    let more = total.saturating_sub(shown_rows.len() as u64);
    if more > 0 {
        let _ = writeln!(
            s,
            "  ... and {more} more (`twinflow status {id} --state {state}` lists them)"
        );
    }
}
