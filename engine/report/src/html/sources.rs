//! The report's "Sources" section: each external data source instance of
//! the run (a task of the fetch executor), what became of it — the URL it
//! came from, its size, digest and retrieval time, its citation — or what
//! it still awaits (a data trigger).

use super::{esc, fmt_bytes};
use crate::record::RunRecord;
use crate::source_entity::record_beside;
use std::fmt::Write;
use twinflow_core::{ExecutorKind, TaskId};

/// Writes the section, or nothing when the workflow has no sources.
pub(super) fn section(h: &mut String, record: &RunRecord) {
    let plan = &record.plan;
    let tasks: Vec<TaskId> = (0..plan.task_count() as u32)
        .map(TaskId)
        .filter(|&t| plan.executor_of(t).backend.kind() == ExecutorKind::Fetch)
        .collect();
    if tasks.is_empty() {
        return;
    }
    let _ = write!(
        h,
        r#"<section id="sources-section"><h2>Sources <span class="count">{}</span></h2><table class="steps"><thead><tr><th>source</th><th>state</th><th>URL</th><th>bytes</th><th>sha256</th><th>retrieved</th><th>citation</th></tr></thead><tbody>"#,
        tasks.len()
    );
    for task in tasks {
        let name = plan.task_name(task);
        let row = record.tasks.get(task.index()).and_then(Option::as_ref);
        let state = row.map_or("not started", |r| r.state.as_str());
        let fetched = record
            .artefacts
            .get(task.index())
            .and_then(|a| a.first())
            .and_then(|a| record_beside(std::path::Path::new(&a.path)));
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}",
            esc(&name),
            esc(state)
        );
        if let Some(reason) = row.and_then(|r| r.reason.as_deref()) {
            let _ = write!(h, r#"<br><span class="note">{}</span>"#, esc(reason));
        }
        h.push_str("</td>");
        match fetched {
            Some(f) => {
                let _ = write!(
                    h,
                    "<td><code>{url}</code>{via}</td><td>{size}</td><td><code>{sha}</code></td><td>{at}</td><td>{cite}</td></tr>",
                    url = esc(&f.url),
                    via = if f.content_url == f.url {
                        String::new()
                    } else {
                        format!("<br>from <code>{}</code>", esc(&f.content_url))
                    },
                    size = fmt_bytes(f.size),
                    sha = esc(f.sha256.get(..16).unwrap_or(&f.sha256)),
                    at = esc(&f.retrieved_at),
                    cite = esc(f.citation.as_deref().unwrap_or("")),
                );
            }
            None => {
                let _ = write!(
                    h,
                    r#"<td><code>{}</code></td><td colspan="4"></td></tr>"#,
                    esc(&plan.task(task).command)
                );
            }
        }
    }
    h.push_str("</tbody></table></section>");
}
