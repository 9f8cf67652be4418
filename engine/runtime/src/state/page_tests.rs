//! Pages of a run's tasks in each order: every task exactly once, in order,
//! with filters, and through the indexes.

use super::*;
use crate::state::StateStore;

/// A run of 3 steps (100, 80 and 70 tasks) in every state, with ties in
/// durations and start times, tasks running (also a new attempt after an
/// ended one) and tasks never started.
fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    store
        .conn
        .execute_batch(
            "INSERT INTO steps VALUES ('r', 0, 'prep', 0, 100), ('r', 1, 'sim', 100, 80),
                                      ('r', 2, 'post', 180, 70);
             INSERT INTO steps VALUES ('other', 0, 'prep', 0, 5);",
        )
        .unwrap();
    for task in 0..250u32 {
        let step = match task {
            0..100 => 0,
            100..180 => 1,
            _ => 2,
        };
        let state = TaskState::ALL[(task as usize * 7) % TaskState::ALL.len()];
        // Few distinct values: many ties.
        let started = (task % 9 != 0).then_some(1_000 + i64::from(task % 13) * 10);
        let finished = match (state, started) {
            (TaskState::Queued | TaskState::Running | TaskState::Awaiting, Some(s)) => {
                // Running; every third one a new attempt after an ended one.
                (task % 3 == 0).then_some(s - 5)
            }
            (_, Some(s)) => Some(s + i64::from(task % 5) * 100),
            (_, None) => None,
        };
        store
            .conn
            .execute(
                "INSERT INTO tasks (run_id, task, name, step, state, attempt, executor,
                                    started_ms, finished_ms)
                 VALUES ('r', ?1, ?2, ?3, ?4, 1, 0, ?5, ?6)",
                rusqlite::params![task, format!("t{task}"), step, state, started, finished],
            )
            .unwrap();
    }
    // Another run's tasks are never listed.
    store
        .conn
        .execute_batch(
            "INSERT INTO tasks (run_id, task, name, step, state, attempt, executor, started_ms)
             VALUES ('other', 0, 't0', 0, 'running', 1, 0, 1), ('other', 1, 't1', 0, 'failed', 1, 0, 2)",
        )
        .unwrap();
    (dir, store)
}

/// The tasks of `run` matching `filter`, in `order`, as the order's
/// documented rule says (computed here from the rows' times).
fn expected(store: &StateStore, filter: &TaskFilter, order: TaskOrder) -> Vec<u32> {
    type Row = (u32, u32, String, String, Option<i64>, Option<i64>);
    let rows: Vec<Row> = store
        .rows(
            "SELECT task, step, state, name, started_ms, finished_ms FROM tasks
             WHERE run_id = 'r' ORDER BY task",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    let glob = filter
        .name
        .as_deref()
        .map(|g| g.trim_matches('*').to_owned());
    let mut kept: Vec<Row> = rows
        .into_iter()
        .filter(|r| filter.step.is_none_or(|s| s == r.1))
        .filter(|r| filter.states.is_empty() || filter.states.iter().any(|s| s.as_str() == r.2))
        .filter(|r| glob.as_deref().is_none_or(|g| r.3.contains(g)))
        .collect();
    // (group, value, task): running first, then ended, then never started.
    let rank = |r: &Row| -> (u8, i64, u32) {
        match (order, r.4, r.5) {
            (TaskOrder::Id, _, _) => (0, 0, r.0),
            (_, None, _) => (2, 0, r.0),
            (TaskOrder::Latest, Some(s), _) => (0, -s, r.0),
            (TaskOrder::Longest, Some(s), Some(f)) if f >= s => (1, -(f - s), r.0),
            (TaskOrder::Longest, Some(s), _) => (0, s, r.0),
        }
    };
    kept.sort_by_key(rank);
    kept.into_iter().map(|r| r.0).collect()
}

/// Every page of `filter` in `order`, `size` at a time.
fn all_pages(store: &StateStore, filter: &TaskFilter, order: TaskOrder, size: usize) -> Vec<u32> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (rows, next) = store
            .task_page("r", filter, order, after, size)
            .unwrap()
            .unwrap();
        assert!(rows.len() <= size);
        seen.extend(rows.iter().map(|r| r.task));
        match next {
            Some(cursor) => {
                assert_eq!(rows.len(), size, "a full page before a cursor");
                assert_eq!(cursor.order, order);
                assert_eq!(Some(cursor.task), seen.last().copied());
                // Through its text, as a client sends it back.
                after = Some(cursor.to_string().parse().unwrap());
            }
            None => return seen,
        }
    }
}

#[test]
fn every_task_is_listed_once_in_each_order_with_filters() {
    let (_dir, store) = store();
    let filters = [
        TaskFilter::default(),
        TaskFilter {
            states: vec![TaskState::Succeeded],
            ..TaskFilter::default()
        },
        TaskFilter {
            states: vec![TaskState::Running, TaskState::Failed, TaskState::Queued],
            ..TaskFilter::default()
        },
        TaskFilter {
            step: Some(1),
            ..TaskFilter::default()
        },
        TaskFilter {
            step: Some(2),
            states: vec![TaskState::Retrying, TaskState::Awaiting],
            name: Some("t2*".to_owned()),
        },
        TaskFilter {
            name: Some("*1*".to_owned()),
            ..TaskFilter::default()
        },
    ];
    for order in TaskOrder::ALL {
        for filter in &filters {
            let want = expected(&store, filter, order);
            assert!(!want.is_empty(), "{filter:?}");
            for size in [1, 7, 100, 1000] {
                assert_eq!(
                    all_pages(&store, filter, order, size),
                    want,
                    "{order} {filter:?} pages of {size}"
                );
            }
        }
    }
    // The rules themselves, on a few tasks: running first (the earliest
    // started first), then the longest ended, then never started.
    let longest = expected(&store, &TaskFilter::default(), TaskOrder::Longest);
    let never: Vec<u32> = (0..250).filter(|t| t % 9 == 0).collect();
    assert_eq!(longest[longest.len() - never.len()..], never[..]);
}

#[test]
fn a_cursor_of_another_order_is_refused() {
    let (_dir, store) = store();
    let (_, next) = store
        .task_page("r", &TaskFilter::default(), TaskOrder::Longest, None, 10)
        .unwrap()
        .unwrap();
    let next = next.unwrap();
    let e = store
        .task_page(
            "r",
            &TaskFilter::default(),
            TaskOrder::Latest,
            Some(next),
            10,
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("page cursor `{next}` is a position in order longest, not latest")
    );
}

#[test]
fn a_cursor_goes_through_its_text_and_json() {
    let id = TaskCursor::after_task(41);
    assert_eq!(id.to_string(), "41");
    assert_eq!(serde_json::to_string(&id).unwrap(), "41");
    let keyed = TaskCursor {
        order: TaskOrder::Longest,
        key: -8_999_998_234_000_000,
        task: 7,
    };
    assert_eq!(keyed.to_string(), "longest:-8999998234000000:7");
    for cursor in [id, keyed] {
        assert_eq!(cursor.to_string().parse::<TaskCursor>(), Ok(cursor));
        let json = serde_json::to_string(&cursor).unwrap();
        assert_eq!(serde_json::from_str::<TaskCursor>(&json).unwrap(), cursor);
    }
    for bad in [
        "",
        "x",
        "longest:1",
        "sideways:1:2",
        "latest:x:2",
        "id:3:4",
        "-1",
    ] {
        assert!(bad.parse::<TaskCursor>().is_err(), "{bad}");
    }
}

#[test]
fn ordered_pages_sort_the_runs_rows_and_no_index_per_order_weighs_on_writes() {
    let (_dir, store) = store();
    let plan = |order: TaskOrder, step: Option<(u32, (u32, u32))>, name: Option<&str>| {
        let filter = TaskFilter {
            name: name.map(str::to_owned),
            ..TaskFilter::default()
        };
        let after = TaskCursor {
            order,
            key: 5,
            task: 5,
        };
        // The query `task_page` sends for one state after a cursor.
        let (tail, args) = page_tail(
            "r",
            &filter,
            step,
            order,
            Some(TaskState::Succeeded),
            Some(after),
            100,
        );
        store
            .rows(
                &format!("EXPLAIN QUERY PLAN SELECT task FROM tasks {tail}"),
                rusqlite::params_from_iter(args),
                |r| r.get::<_, String>(3),
            )
            .unwrap()
            .join("; ")
    };
    // Ordered pages of one state read the run's rows by primary key and
    // sort them (not row by row through the state index); no index keeps
    // the order keys (it would be updated on every task write, on the
    // dispatch path).
    for order in [TaskOrder::Longest, TaskOrder::Latest] {
        for (step, name) in [(None, None), (Some((1, (100, 80))), Some("t*"))] {
            let plan = plan(order, step, name);
            assert!(!plan.contains("tasks_by_state"), "{plan}");
            assert!(plan.contains("PRIMARY KEY (run_id=?"), "{plan}");
        }
    }
    let indexed: Vec<String> = store
        .rows(
            "SELECT name FROM pragma_index_info('tasks_by_state')
             UNION ALL SELECT il.name FROM pragma_index_list('tasks') AS il",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    assert!(
        !indexed
            .iter()
            .any(|n| n.contains("longest") || n.contains("latest")),
        "{indexed:?}"
    );
    let plan = plan(TaskOrder::Id, None, None);
    assert!(
        plan.contains("tasks_by_state (run_id=? AND state=? AND task>?)"),
        "{plan}"
    );
}
