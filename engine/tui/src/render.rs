//! Drawing: a pure function of the [`Model`] into a ratatui frame (tested
//! on a `TestBackend`). The windows over it are in [`crate::dialogs`].

use crate::dialogs;
use crate::model::{Focus, Model, Screen};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
use twinflow_engine::{StepCounts, TaskState};

/// At most this many step rows show (the rest are counted).
const STEP_ROWS: usize = 4;

/// Draws the whole screen.
pub fn render(model: &Model, frame: &mut Frame<'_>) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_header(model, frame, header);
    match model.screen {
        Screen::Runs => render_runs(model, frame, body),
        Screen::Run => render_run(model, frame, body),
    }
    render_footer(model, frame, footer);
    dialogs::render(model, frame);
}

fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

fn render_header(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let mut spans = vec![Span::styled(
        "twinflow",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    match (model.screen, &model.summary) {
        (Screen::Run, Some(s)) => {
            let done: u64 = s
                .steps
                .iter()
                .map(|c| c.succeeded + c.failed + c.skipped + c.cancelled)
                .sum();
            spans.push(Span::raw(format!(
                " {} {}{} {done}/{} done",
                s.run.id,
                s.run.state.as_str(),
                if s.live { " live" } else { "" },
                s.run.task_count
            )));
            if s.failed > 0 {
                spans.push(Span::styled(
                    format!(" {} failed", s.failed),
                    Style::new().fg(Color::Red),
                ));
            }
            if !s.held.is_empty() {
                spans.push(Span::styled(
                    format!(" {} held", s.held.len()),
                    Style::new().fg(Color::Yellow),
                ));
            }
        }
        (Screen::Run, None) => spans.push(Span::raw(format!(
            " {} (loading)",
            model.run.as_deref().unwrap_or("latest")
        ))),
        (Screen::Runs, _) => spans.push(Span::raw(format!(" runs ({})", model.runs.len()))),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_footer(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let line = match &model.message {
        Some(m) if m.error => Line::styled(m.text.clone(), Style::new().fg(Color::Red)),
        Some(m) => Line::raw(m.text.clone()),
        None => Line::raw(match model.screen {
            Screen::Runs => "Enter open  j/k move  r refresh  ? help  q quit",
            Screen::Run => "a act  / name  f state  o sort  Tab pane  Esc runs  ? help  q quit",
        }),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn render_runs(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let rows = model.runs.iter().map(|r| {
        Row::new(vec![
            r.id.clone(),
            r.workflow.clone(),
            r.state.as_str().to_owned(),
            r.task_count.to_string(),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(11),
            Constraint::Length(8),
        ],
    )
    .header(Row::new(vec!["run", "workflow", "state", "tasks"]).style(bold()))
    .row_highlight_style(selected())
    .highlight_symbol(">")
    .block(Block::new().borders(Borders::ALL).title(" runs "));
    let mut state =
        TableState::new().with_selected((!model.runs.is_empty()).then_some(model.runs_selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

fn render_run(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let steps = model.summary.as_ref().map_or(0, |s| s.steps.len());
    let step_rows = steps.clamp(1, STEP_ROWS) as u16 + u16::from(steps > STEP_ROWS);
    let log_rows = (area.height / 4).max(4);
    let [steps_area, tasks_area, log_area] = Layout::vertical([
        Constraint::Length(step_rows + 2),
        Constraint::Min(4),
        Constraint::Length(log_rows),
    ])
    .areas(area);
    render_steps(model, frame, steps_area);
    render_tasks(model, frame, tasks_area);
    render_log(model, frame, log_area);
}

fn pane(title: String, focused: bool) -> Block<'static> {
    let block = Block::new().borders(Borders::ALL).title(title);
    if focused {
        block.border_style(Style::new().fg(Color::Cyan))
    } else {
        block
    }
}

/// `[#####-----]`: the share of a step's tasks that finished.
fn bar(counts: &StepCounts, width: usize) -> String {
    let done = counts.succeeded + counts.failed + counts.skipped + counts.cancelled;
    let filled = if counts.total == 0 {
        0
    } else {
        ((done as f64 / counts.total as f64) * width as f64).round() as usize
    };
    let filled = filled.min(width);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

fn render_steps(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let focused = model.focus == Focus::Steps;
    let block = pane(" steps ".to_owned(), focused);
    let Some(summary) = &model.summary else {
        frame.render_widget(Paragraph::new("loading").block(block), area);
        return;
    };
    let inner = usize::from(area.width.saturating_sub(2));
    let name_w = summary
        .steps
        .iter()
        .map(|s| s.step.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 20);
    // Counts first: the bar takes what is left of the line.
    let counts = |s: &StepCounts| {
        format!(
            "{}/{} ok {} run {} fail",
            s.succeeded,
            s.total,
            s.running + s.queued,
            s.failed
        )
    };
    let counts_w = summary
        .steps
        .iter()
        .map(|s| counts(s).len())
        .max()
        .unwrap_or(0);
    let bar_w = inner.saturating_sub(name_w + counts_w + 5).clamp(4, 30);
    // The window of steps around the highlighted one.
    let first = model
        .step_selected
        .saturating_sub(STEP_ROWS.saturating_sub(1))
        .min(summary.steps.len().saturating_sub(STEP_ROWS));
    let mut lines: Vec<Line<'_>> = summary
        .steps
        .iter()
        .enumerate()
        .skip(first)
        .take(STEP_ROWS)
        .map(|(i, s)| {
            let filter = if model.filter.step.as_deref() == Some(s.step.as_str()) {
                "*"
            } else {
                " "
            };
            let pointer = if focused && i == model.step_selected {
                ">"
            } else {
                ""
            };
            let text = format!(
                "{pointer}{filter}{:<name_w$} {} {}",
                truncate(&s.step, name_w),
                bar(s, bar_w),
                counts(s),
            );
            let style = if focused && i == model.step_selected {
                selected()
            } else if s.failed > 0 {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            Line::styled(text, style)
        })
        .collect();
    if summary.steps.len() > STEP_ROWS {
        lines.push(Line::raw(format!(
            " ({} steps; Tab, then j/k)",
            summary.steps.len()
        )));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(width.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

fn state_style(state: TaskState) -> Style {
    match state {
        TaskState::Failed | TaskState::Lost => Style::new().fg(Color::Red),
        TaskState::Running | TaskState::Queued | TaskState::Retrying => {
            Style::new().fg(Color::Cyan)
        }
        TaskState::Succeeded => Style::new().fg(Color::Green),
        _ => Style::new().fg(Color::Yellow),
    }
}

fn render_tasks(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let held: std::collections::HashSet<&str> = model
        .summary
        .as_ref()
        .map(|s| s.held.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let rows = model.page.iter().map(|t| {
        let mark = if model.marked.contains(&t.name) {
            "+"
        } else {
            " "
        };
        let state = if held.contains(t.name.as_str()) {
            format!("{} held", t.state.as_str())
        } else {
            t.state.as_str().to_owned()
        };
        Row::new(vec![
            Span::raw(mark),
            Span::raw(t.task.to_string()),
            Span::raw(t.name.clone()),
            Span::styled(state, state_style(t.state)),
            Span::raw(t.attempt.to_string()),
            Span::raw(t.seconds.map(|s| format!("{s:.1}s")).unwrap_or_default()),
        ])
    });
    let page = model.back.len() + 1;
    let more = if model.next.is_some() { "+" } else { "" };
    let title = format!(
        " tasks p{page}{more} [{}] sort {} ",
        model.filter.describe(),
        model.order.as_str()
    );
    if model.page.is_empty() {
        let empty = if model.summary.is_none() {
            "loading"
        } else {
            "no task matches (tasks get a row once launched)"
        };
        frame.render_widget(
            Paragraph::new(empty).block(pane(title, model.focus == Focus::Tasks)),
            area,
        );
        return;
    }
    let table = Table::new(
        rows,
        [
            Constraint::Length(1),
            Constraint::Length(6),
            Constraint::Fill(1),
            Constraint::Length(15),
            Constraint::Length(3),
            Constraint::Length(8),
        ],
    )
    .column_spacing(1)
    .header(Row::new(vec!["", "id", "name", "state", "try", "time"]).style(bold()))
    .row_highlight_style(if model.focus == Focus::Tasks {
        selected()
    } else {
        Style::new()
    })
    .highlight_symbol(">")
    .block(pane(title, model.focus == Focus::Tasks));
    let mut state = TableState::new().with_selected(Some(model.task_selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn render_log(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let log = &model.log;
    let title = match &log.task {
        Some(task) => format!(" {} of {} ", log.stream.as_str(), task),
        None => format!(" {} (select a task) ", log.stream.as_str()),
    };
    let rows = usize::from(area.height.saturating_sub(2));
    let mut lines: Vec<Line<'_>> = Vec::new();
    let tail_rows = rows.saturating_sub(usize::from(log.note.is_some()));
    lines.extend(log.tail(tail_rows).into_iter().map(Line::raw));
    if let Some(note) = &log.note {
        lines.push(Line::styled(
            note.clone(),
            Style::new().add_modifier(Modifier::DIM),
        ));
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(title)),
        area,
    );
}
