//! The model, keys and drawing at 80x24 on a `TestBackend`: what an
//! operator sees, and what each key asks the daemon.

use crate::fetch::{Request, Update};
use crate::keys::on_key;
use crate::model::{Dialog, Focus, Model, PAGE, Screen};
use crate::render::render;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use twinflow_daemon::api::{LogStream, StatusSummary, TaskPage, TaskQuery};
use twinflow_engine::{
    ActionKind, ActionReport, RunInfo, TaskCursor, TaskOrder, TaskRow, TaskState,
};

fn run_info(id: &str, state: &str, tasks: u64) -> RunInfo {
    serde_json::from_value(serde_json::json!({
        "id": id, "workflow": "wide", "file": null, "run_dir": "/runs/x",
        "state": state, "task_count": tasks, "created_ms": 0, "updated_ms": 0,
        "plan_digest": "d", "args": "", "host": "login1", "pid": 1, "pid_start": 0
    }))
    .expect("a run")
}

fn counts(step: &str, total: u64, ok: u64, running: u64, failed: u64) -> serde_json::Value {
    serde_json::json!({
        "step": step, "total": total, "waiting": total - ok - running - failed,
        "queued": 0, "running": running, "succeeded": ok, "cached": 0,
        "failed": failed, "skipped": 0, "cancelled": 0, "retrying": 0
    })
}

fn summary() -> StatusSummary {
    serde_json::from_value(serde_json::json!({
        "run": run_info("wide-20261207-0001", "running", 100_000),
        "steps": [
            counts("prepare", 1, 1, 0, 0),
            counts("simulate-ensemble-member", 99_998, 40_000, 16, 12),
            counts("gather", 1, 0, 0, 0),
        ],
        "failed": 12, "failures": [], "awaiting": 0, "awaiting_tasks": [],
        "held": ["simulate-ensemble-member[i=3]"], "live": true
    }))
    .expect("a summary")
}

fn task(id: u32, state: TaskState, seconds: Option<f64>) -> TaskRow {
    TaskRow {
        task: id,
        name: format!("simulate-ensemble-member[i={id}]"),
        step: 1,
        state,
        attempt: 1,
        handle: None,
        reason: None,
        cached_from: None,
        seconds,
    }
}

fn page(first: u32, n: u32, more: bool) -> TaskPage {
    TaskPage {
        run_id: "wide-20261207-0001".to_owned(),
        tasks: (first..first + n)
            .map(|i| {
                let state = match i % 3 {
                    0 => TaskState::Running,
                    1 => TaskState::Succeeded,
                    _ => TaskState::Failed,
                };
                task(i, state, Some(f64::from(i % 7)))
            })
            .collect(),
        next_after: more.then_some(TaskCursor::after_task(first + n - 1)),
    }
}

/// A model showing the run, with its first page and a log.
fn loaded() -> Model {
    let mut model = Model::new(Some("latest".to_owned()));
    let query = model.query();
    model.apply(Update::Run {
        summary: Ok(Box::new(summary())),
        page: Ok(page(1, PAGE as u32, true)),
        query,
    });
    let follow = model.follow();
    assert!(matches!(follow, Some(Request::Follow { .. })), "{follow:?}");
    model.apply(Update::Log {
        generation: model.log.generation,
        chunk: b"member 1: step 10 of 40\nmember 1: step 11 of 40\npartial".to_vec(),
    });
    model
}

fn screen(model: &Model, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|frame| render(model, frame)).expect("draw");
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(model: &mut Model, codes: &[KeyCode]) -> Vec<Request> {
    codes.iter().flat_map(|c| on_key(model, key(*c))).collect()
}

#[test]
fn the_run_screen_fits_80x24() {
    let model = loaded();
    let shown = screen(&model, 80, 24);
    insta::assert_snapshot!(shown);
    // Nothing essential cut off: the run, every step's counts, the task
    // table with a selected row, the log, the key hints.
    for needed in [
        "wide-20261207-0001",
        "40000/99998 ok",
        "12 fail",
        "1 held",
        "simulate-ensemble-member[i=1]",
        "succeeded",
        "member 1: step 11 of 40",
        "partial",
        "? help",
    ] {
        assert!(shown.contains(needed), "{needed} missing:\n{shown}");
    }
}

#[test]
fn the_runs_screen_and_help_fit_80x24() {
    let mut model = Model::new(None);
    model.apply(Update::Runs(Ok(vec![
        run_info("wide-20261207-0002", "running", 100_000),
        run_info("wide-20261207-0001", "failed", 10),
    ])));
    let shown = screen(&model, 80, 24);
    assert!(shown.contains("wide-20261207-0002"), "{shown}");
    assert!(shown.contains("failed"), "{shown}");
    press(&mut model, &[KeyCode::Char('?')]);
    let help = screen(&model, 80, 24);
    insta::assert_snapshot!(help);
    for (keys, _) in crate::keys::HELP {
        assert!(help.contains(keys), "{keys} missing:\n{help}");
    }
    // Any key closes the help; Enter opens the highlighted run and asks
    // for its summary and first page.
    press(&mut model, &[KeyCode::Char('x')]);
    assert_eq!(model.dialog, None);
    model.log.generation = 7;
    let asked = press(&mut model, &[KeyCode::Char('j'), KeyCode::Enter]);
    assert_eq!(model.screen, Screen::Run);
    assert!(
        model.log.generation > 7,
        "a log answer of the run left could show"
    );
    assert!(
        matches!(&asked[..], [Request::Run { run, .. }] if run == "wide-20261207-0001"),
        "{asked:?}"
    );
}

#[test]
fn filters_are_queries_to_the_daemon_never_a_full_load() {
    let mut model = loaded();
    let asked = press(&mut model, &[KeyCode::Char('f'), KeyCode::Char('f')]);
    let Some(Request::Run { query, .. }) = asked.last() else {
        panic!("no query: {asked:?}");
    };
    assert_eq!(query.states, vec![TaskState::Running]);
    assert_eq!(query.limit, Some(PAGE));
    // A name typed without glob characters matches names containing it.
    let asked = press(
        &mut model,
        &[
            KeyCode::Char('/'),
            KeyCode::Char('i'),
            KeyCode::Char('='),
            KeyCode::Char('4'),
            KeyCode::Enter,
        ],
    );
    let Some(Request::Run { query, .. }) = asked.last() else {
        panic!("no query: {asked:?}");
    };
    assert_eq!(query.name.as_deref(), Some("*i=4*"));
    assert_eq!(query.states, vec![TaskState::Running]);
    // The step pane: Enter filters by the highlighted step.
    let asked = press(&mut model, &[KeyCode::Tab, KeyCode::Down, KeyCode::Enter]);
    let Some(Request::Run { query, .. }) = asked.last() else {
        panic!("no query: {asked:?}");
    };
    assert_eq!(query.step.as_deref(), Some("simulate-ensemble-member"));
    assert_eq!(model.focus, Focus::Tasks);
    let shown = screen(&model, 80, 24);
    assert!(
        shown.contains("state=running step=simulate-ensemble-member name=*i=4*"),
        "{shown}"
    );
    // An answer to an older query is not shown.
    let stale = TaskQuery {
        limit: Some(PAGE),
        ..TaskQuery::default()
    };
    model.apply(Update::Run {
        summary: Ok(Box::new(summary())),
        page: Ok(page(500, 3, false)),
        query: stale,
    });
    assert!(model.page.is_empty(), "a stale page was shown");
    press(&mut model, &[KeyCode::Char('c')]);
    assert_eq!(model.filter, Default::default());
}

#[test]
fn pages_go_forward_and_back_by_the_daemons_cursor() {
    let mut model = loaded();
    let asked = press(&mut model, &[KeyCode::Char('n')]);
    let [Request::Run { query, .. }] = &asked[..] else {
        panic!("{asked:?}");
    };
    assert_eq!(query.after, Some(TaskCursor::after_task(PAGE as u32)));
    let asked = press(&mut model, &[KeyCode::Char('p')]);
    let [Request::Run { query, .. }] = &asked[..] else {
        panic!("{asked:?}");
    };
    assert_eq!(query.after, None);
    // Moving down past the last row asks for the next page.
    model.task_selected = PAGE - 1;
    let asked = press(&mut model, &[KeyCode::Down]);
    assert!(matches!(&asked[..], [Request::Run { .. }]), "{asked:?}");
}

#[test]
fn o_asks_the_daemon_for_the_tasks_in_the_next_order_from_the_first_page() {
    let mut model = loaded();
    // On the second page, with a filter.
    press(&mut model, &[KeyCode::Char('f'), KeyCode::Char('n')]);
    let asked = press(&mut model, &[KeyCode::Char('o')]);
    let [Request::Run { query, .. }] = &asked[..] else {
        panic!("{asked:?}");
    };
    assert_eq!(model.order, TaskOrder::Longest);
    assert_eq!(query.order, TaskOrder::Longest);
    assert_eq!(query.after, None, "an order starts at its first page");
    assert_eq!(query.states, vec![TaskState::Queued], "the filter is kept");
    // The daemon's answer is shown in its order, and its cursor pages on.
    let mut answer = page(1, PAGE as u32, false);
    answer.tasks.reverse();
    let cursor = TaskCursor {
        order: TaskOrder::Longest,
        key: -4_000,
        task: 1,
    };
    answer.next_after = Some(cursor);
    model.apply(Update::Run {
        summary: Ok(Box::new(summary())),
        page: Ok(answer),
        query: query.clone(),
    });
    let ids: Vec<u32> = model.page.iter().take(3).map(|t| t.task).collect();
    assert_eq!(ids, [PAGE as u32, PAGE as u32 - 1, PAGE as u32 - 2]);
    assert!(screen(&model, 80, 24).contains("sort longest"));
    let asked = press(&mut model, &[KeyCode::Char('n')]);
    let [Request::Run { query, .. }] = &asked[..] else {
        panic!("{asked:?}");
    };
    assert_eq!(
        (query.order, query.after),
        (TaskOrder::Longest, Some(cursor))
    );
    // Then latest, then back to task order.
    let asked = press(&mut model, &[KeyCode::Char('o')]);
    let [Request::Run { query, .. }] = &asked[..] else {
        panic!("{asked:?}");
    };
    assert_eq!((query.order, query.after), (TaskOrder::Latest, None));
    press(&mut model, &[KeyCode::Char('o')]);
    assert_eq!(model.order, TaskOrder::Id);
}

#[test]
fn an_action_goes_through_the_menu_and_a_confirmation() {
    let mut model = loaded();
    // Two tasks marked: the action applies to both.
    let asked = press(
        &mut model,
        &[
            KeyCode::Char(' '),
            KeyCode::Down,
            KeyCode::Char(' '),
            KeyCode::Char('a'),
        ],
    );
    assert!(asked.is_empty(), "{asked:?}");
    let menu = screen(&model, 80, 24);
    for kind in ActionKind::ALL {
        assert!(
            menu.contains(kind.as_str()),
            "{} missing:\n{menu}",
            kind.as_str()
        );
    }
    press(&mut model, &[KeyCode::Enter]);
    let Some(Dialog::Confirm { kind, selectors }) = model.dialog.clone() else {
        panic!("no confirmation: {:?}", model.dialog);
    };
    assert_eq!(kind, ActionKind::ALL[0]);
    assert_eq!(selectors.len(), 2);
    insta::assert_snapshot!(screen(&model, 80, 24));
    // n: nothing sent.
    assert!(press(&mut model, &[KeyCode::Char('n')]).is_empty());
    assert_eq!(model.dialog, None);
    // y: sent on the run's id.
    let asked = press(
        &mut model,
        &[
            KeyCode::Char('a'),
            KeyCode::Down,
            KeyCode::Enter,
            KeyCode::Char('y'),
        ],
    );
    assert_eq!(
        asked,
        vec![Request::Act {
            run: "wide-20261207-0001".to_owned(),
            kind: ActionKind::ALL[1],
            selectors,
        }]
    );
    model.apply(Update::Acted {
        kind: ActionKind::ALL[1],
        result: Ok(ActionReport {
            seq: 3,
            kind: ActionKind::ALL[1],
            applied: vec!["a".to_owned()],
            skipped: 1,
            taken_up: false,
            warnings: Vec::new(),
        }),
    });
    assert!(model.marked.is_empty());
    let shown = screen(&model, 80, 24);
    assert!(
        shown.contains("1 task(s) (action 3); 1 left as they are"),
        "{shown}"
    );
    // A trigger's warning is shown with its answer.
    model.apply(Update::Acted {
        kind: ActionKind::Trigger,
        result: Ok(ActionReport {
            seq: 4,
            kind: ActionKind::Trigger,
            applied: vec!["b".to_owned()],
            skipped: 0,
            taken_up: false,
            warnings: vec!["b starts although a did not succeed".to_owned()],
        }),
    });
    let shown = screen(&model, 120, 24);
    assert!(
        shown.contains("warning: b starts although a did not succeed"),
        "{shown}"
    );
    // The steps pane: the action applies to the step.
    press(&mut model, &[KeyCode::Tab, KeyCode::Down]);
    assert_eq!(
        model.selectors(),
        vec!["simulate-ensemble-member".to_owned()]
    );
}

#[test]
fn errors_of_the_daemon_show_in_the_status_line() {
    let mut model = loaded();
    model.apply(Update::Acted {
        kind: ActionKind::Hold,
        result: Err("run `x` is not running in this daemon".to_owned()),
    });
    let shown = screen(&model, 80, 24);
    assert!(
        shown
            .lines()
            .last()
            .is_some_and(|l| l.contains("hold: run `x` is not running")),
        "{shown}"
    );
    let mut model = Model::new(Some("nope".to_owned()));
    let query = model.query();
    model.apply(Update::Run {
        summary: Err("no run `nope`".to_owned()),
        page: Err("no run `nope`".to_owned()),
        query,
    });
    let shown = screen(&model, 80, 24);
    assert!(shown.contains("no run `nope`"), "{shown}");
    // Even a tiny terminal draws without a panic.
    for (w, h) in [(1, 1), (20, 5), (80, 24), (200, 60)] {
        let _ = screen(&loaded(), w, h);
    }
}

#[test]
fn the_log_pane_follows_the_highlighted_task_and_its_stream() {
    let mut model = loaded();
    let old = model.log.generation;
    // Another task: a new follow; chunks of the old one are dropped.
    press(&mut model, &[KeyCode::Down]);
    let Some(Request::Follow {
        task,
        stream,
        generation,
        ..
    }) = model.follow()
    else {
        panic!("no follow");
    };
    assert_eq!(task, "simulate-ensemble-member[i=2]");
    assert_eq!(stream, LogStream::Stdout);
    model.apply(Update::Log {
        generation: old,
        chunk: b"old\n".to_vec(),
    });
    assert!(model.log.lines.is_empty());
    model.apply(Update::LogEnd {
        generation,
        note: Some("no log yet".to_owned()),
    });
    assert!(screen(&model, 80, 24).contains("no log yet"));
    // The same task: no new follow.
    assert_eq!(model.follow(), None);
    let asked = press(&mut model, &[KeyCode::Char('s')]);
    assert!(
        matches!(
            &asked[..],
            [Request::Follow {
                stream: LogStream::Stderr,
                ..
            }]
        ),
        "{asked:?}"
    );
    // A long log keeps its newest lines only.
    for i in 0..2 * crate::model::LOG_LINES {
        model.log.push(format!("line {i}\n").as_bytes());
    }
    assert_eq!(model.log.lines.len(), crate::model::LOG_LINES);
}

#[test]
fn q_and_ctrl_c_quit_but_q_is_text_in_the_filter() {
    let mut model = loaded();
    press(&mut model, &[KeyCode::Char('/'), KeyCode::Char('q')]);
    assert!(!model.quit);
    assert_eq!(
        model.dialog,
        Some(Dialog::Filter {
            input: "q".to_owned()
        })
    );
    press(&mut model, &[KeyCode::Esc, KeyCode::Char('q')]);
    assert!(model.quit);
    let mut model = loaded();
    on_key(
        &mut model,
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    );
    assert!(model.quit);
}
