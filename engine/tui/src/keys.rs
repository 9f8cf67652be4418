//! The keys: each changes the model and may ask the daemon for something
//! ([`Request`]); [`HELP`] lists them (the `?` window and the docs).

use crate::fetch::Request;
use crate::model::{Dialog, Focus, Model, Screen, name_glob};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use twinflow_daemon::api::LogStream;
use twinflow_engine::ActionKind;

/// The keys and what they do, as the `?` window lists them.
pub const HELP: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit (the terminal is restored)"),
    ("?", "this help (any key closes it)"),
    ("j/k, Up/Down", "move"),
    ("Enter", "runs: open the run; steps: filter by the step"),
    ("Esc", "back to the runs (or close a window)"),
    ("Tab", "switch between steps and tasks"),
    ("n/p, PgDn/PgUp", "next / previous page of tasks"),
    ("g", "first page"),
    ("f", "filter by state (cycles)"),
    ("/", "filter by name glob (text alone: *text*)"),
    ("c", "clear the filters"),
    ("o", "order (by the daemon): id, longest, latest started"),
    ("s", "log: stdout / stderr"),
    ("Space", "mark / unmark a task"),
    ("a", "actions on the marked tasks, the task or the step"),
    ("r", "refresh now"),
];

/// Applies `key` to `model`; returns what to ask the daemon.
pub fn on_key(model: &mut Model, key: KeyEvent) -> Vec<Request> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        model.quit = true;
        return Vec::new();
    }
    if let Some(dialog) = model.dialog.take() {
        return on_dialog_key(model, dialog, key);
    }
    match key.code {
        KeyCode::Char('q') => {
            model.quit = true;
            Vec::new()
        }
        KeyCode::Char('?') => {
            model.dialog = Some(Dialog::Help);
            Vec::new()
        }
        KeyCode::Char('r') => model.refresh().into_iter().collect(),
        _ => match model.screen {
            Screen::Runs => on_runs_key(model, key),
            Screen::Run => on_run_key(model, key),
        },
    }
}

fn on_runs_key(model: &mut Model, key: KeyEvent) -> Vec<Request> {
    match key.code {
        KeyCode::Down | KeyCode::Char('j') => {
            model.runs_selected = (model.runs_selected + 1).min(model.runs.len().saturating_sub(1));
        }
        KeyCode::Up | KeyCode::Char('k') => {
            model.runs_selected = model.runs_selected.saturating_sub(1);
        }
        KeyCode::Enter => {
            if let Some(run) = model.runs.get(model.runs_selected) {
                let run = run.id.clone();
                // Answers to the log followed before stay ignored.
                let generation = model.log.generation + 1;
                *model = Model {
                    runs: std::mem::take(&mut model.runs),
                    runs_selected: model.runs_selected,
                    ..Model::new(Some(run))
                };
                model.log.generation = generation;
                return model.refresh().into_iter().collect();
            }
        }
        _ => {}
    }
    Vec::new()
}

/// A new task query: back to the first page.
fn requery(model: &mut Model) -> Vec<Request> {
    model.cursor = None;
    model.back.clear();
    model.task_selected = 0;
    model.page.clear();
    model.refresh().into_iter().collect()
}

fn on_run_key(model: &mut Model, key: KeyEvent) -> Vec<Request> {
    match key.code {
        KeyCode::Esc | KeyCode::Backspace => {
            model.screen = Screen::Runs;
            model.log.generation += 1;
            model.log.task = None;
            return vec![Request::Runs];
        }
        KeyCode::Tab | KeyCode::BackTab => {
            model.focus = match model.focus {
                Focus::Steps => Focus::Tasks,
                Focus::Tasks => Focus::Steps,
            };
        }
        KeyCode::Down | KeyCode::Char('j') => match model.focus {
            Focus::Steps => {
                let steps = model.summary.as_ref().map_or(0, |s| s.steps.len());
                model.step_selected = (model.step_selected + 1).min(steps.saturating_sub(1));
            }
            Focus::Tasks if model.task_selected + 1 < model.page.len() => {
                model.task_selected += 1;
            }
            Focus::Tasks => return next_page(model),
        },
        KeyCode::Up | KeyCode::Char('k') => match model.focus {
            Focus::Steps => model.step_selected = model.step_selected.saturating_sub(1),
            Focus::Tasks => model.task_selected = model.task_selected.saturating_sub(1),
        },
        KeyCode::Char('n') | KeyCode::PageDown => return next_page(model),
        KeyCode::Char('p') | KeyCode::PageUp => {
            if let Some(cursor) = model.back.pop() {
                model.cursor = cursor;
                model.task_selected = 0;
                return model.refresh().into_iter().collect();
            }
        }
        KeyCode::Char('g') | KeyCode::Home => return requery(model),
        KeyCode::Enter if model.focus == Focus::Steps => {
            let step = model.selected_step().map(str::to_owned);
            model.filter.step = if model.filter.step == step {
                None
            } else {
                step
            };
            model.focus = Focus::Tasks;
            return requery(model);
        }
        KeyCode::Char('f') => {
            model.filter.next_state();
            return requery(model);
        }
        KeyCode::Char('/') => {
            let input = model
                .filter
                .name
                .clone()
                .map(|n| n.trim_matches('*').to_owned())
                .unwrap_or_default();
            model.dialog = Some(Dialog::Filter { input });
        }
        KeyCode::Char('c') => {
            model.filter = Default::default();
            return requery(model);
        }
        KeyCode::Char('o') => {
            model.next_order();
            return requery(model);
        }
        KeyCode::Char('s') => {
            model.log.stream = match model.log.stream {
                LogStream::Stdout => LogStream::Stderr,
                LogStream::Stderr => LogStream::Stdout,
            };
            // Follow the other stream (the pane's task no longer matches).
            model.log.task = None;
            return model.follow().into_iter().collect();
        }
        KeyCode::Char(' ') if model.focus == Focus::Tasks => {
            if let Some(name) = model.selected_task().map(|t| t.name.clone())
                && !model.marked.remove(&name)
            {
                model.marked.insert(name);
            }
        }
        KeyCode::Char('a') => {
            if model.selectors().is_empty() {
                model.say("no task or step to act on", true);
            } else {
                model.dialog = Some(Dialog::Actions { selected: 0 });
            }
        }
        _ => {}
    }
    Vec::new()
}

fn next_page(model: &mut Model) -> Vec<Request> {
    match model.next {
        Some(next) => {
            model.back.push(model.cursor);
            model.cursor = Some(next);
            model.task_selected = 0;
            model.refresh().into_iter().collect()
        }
        None => Vec::new(),
    }
}

fn on_dialog_key(model: &mut Model, dialog: Dialog, key: KeyEvent) -> Vec<Request> {
    match dialog {
        Dialog::Help => {}
        Dialog::Actions { selected } => match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                model.dialog = Some(Dialog::Actions {
                    selected: (selected + 1).min(ActionKind::ALL.len().saturating_sub(1)),
                });
            }
            KeyCode::Up | KeyCode::Char('k') => {
                model.dialog = Some(Dialog::Actions {
                    selected: selected.saturating_sub(1),
                });
            }
            KeyCode::Enter => {
                if let Some(kind) = ActionKind::ALL.get(selected).copied() {
                    model.dialog = Some(Dialog::Confirm {
                        kind,
                        selectors: model.selectors(),
                    });
                }
            }
            _ => {}
        },
        Dialog::Confirm { kind, selectors } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                let Some(run) = model.summary.as_ref().map(|s| s.run.id.clone()) else {
                    model.say("no run to act on", true);
                    return Vec::new();
                };
                model.say(format!("{}: sent", kind.as_str()), false);
                return vec![Request::Act {
                    run,
                    kind,
                    selectors,
                }];
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                model.say(format!("{}: not sent", kind.as_str()), false);
            }
            _ => model.dialog = Some(Dialog::Confirm { kind, selectors }),
        },
        Dialog::Filter { mut input } => match key.code {
            KeyCode::Enter => {
                model.filter.name = name_glob(&input);
                return requery(model);
            }
            KeyCode::Esc => {}
            KeyCode::Backspace => {
                input.pop();
                model.dialog = Some(Dialog::Filter { input });
            }
            KeyCode::Char(c) => {
                input.push(c);
                model.dialog = Some(Dialog::Filter { input });
            }
            _ => model.dialog = Some(Dialog::Filter { input }),
        },
    }
    Vec::new()
}
