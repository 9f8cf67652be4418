//! The windows drawn over the screen: keyboard help, the action menu
//! (built from [`ActionKind::ALL`]), the confirmation of an action, and
//! the name filter's input line.

use crate::keys::HELP;
use crate::model::{Dialog, Model};
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use twinflow_engine::ActionKind;

/// A rectangle of at most `width` x `height` in the middle of `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

fn window(frame: &mut Frame<'_>, area: Rect, title: &str, lines: Vec<Line<'_>>) {
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(title.to_owned())),
        area,
    );
}

/// What the selectors of an action are, in a line.
fn targets(selectors: &[String]) -> String {
    match selectors {
        [one] => one.clone(),
        many => format!("{} tasks ({}, ...)", many.len(), many[0]),
    }
}

/// Draws the model's window, if it has one.
pub(crate) fn render(model: &Model, frame: &mut Frame<'_>) {
    let area = frame.area();
    match &model.dialog {
        None => {}
        Some(Dialog::Help) => {
            let lines: Vec<Line<'_>> = HELP
                .iter()
                .map(|(keys, what)| Line::raw(format!("{keys:<15} {what}")))
                .collect();
            let height = lines.len() as u16 + 2;
            window(
                frame,
                centered(area, 70, height),
                " keys (any key closes) ",
                lines,
            );
        }
        Some(Dialog::Actions { selected }) => {
            let on = targets(&model.selectors());
            let mut lines = vec![Line::raw(format!("on {on}")), Line::raw("")];
            lines.extend(ActionKind::ALL.iter().enumerate().map(|(i, kind)| {
                let style = if i == *selected {
                    Style::new().add_modifier(Modifier::REVERSED)
                } else {
                    Style::new()
                };
                Line::styled(format!(" {} ", kind.as_str()), style)
            }));
            lines.push(Line::raw(""));
            lines.push(Line::raw("Enter choose  Esc close"));
            let height = lines.len() as u16 + 2;
            window(frame, centered(area, 50, height), " action ", lines);
        }
        Some(Dialog::Confirm { kind, selectors }) => {
            let lines = vec![
                Line::raw(format!("{} {}?", kind.as_str(), targets(selectors))),
                Line::raw(""),
                Line::raw("y: yes, send it   n/Esc: no"),
            ];
            window(frame, centered(area, 60, 6), " confirm ", lines);
        }
        Some(Dialog::Filter { input }) => {
            let lines = vec![
                Line::raw(format!("name: {input}_")),
                Line::raw("glob (* ? [..]) or text; Enter apply, Esc cancel"),
            ];
            window(frame, centered(area, 60, 4), " filter by name ", lines);
        }
    }
}
