//! Operator actions on a live run through `Controller`: hold, release and
//! kill with the local executor, each journalled in the state store.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test with a message"
)]

use std::time::Duration;
use twinflow_engine::{
    ActionKind, Actor, ControlError, Outcome, RunEvent, RunOptions, StateStore, TaskState,
};

#[expect(dead_code, reason = "the fixture's other helpers serve other tests")]
mod common;
use common::Fixture;
mod control_support;
use control_support::{action, plan};

const HOLD: &str = "
version: 1
name: control
executors: { here: { kind: local, slots: 4 } }
steps:
  first:
    executor: here
    run: sleep 0.5
  late:
    executor: here
    after: [first]
    for_each: { k: [a, b] }
    run: 'true'
  other:
    executor: here
    run: sleep 0.8
";

#[tokio::test]
async fn a_held_step_waits_while_others_finish_until_released() {
    let fx = Fixture::new();
    let mut run = fx
        .engine
        .submit(plan(HOLD, "hold-1"), RunOptions::default())
        .await
        .unwrap();
    let control = run.controller();
    let report = control
        .act(action(ActionKind::Hold, &["late"]))
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 2);
    // A selector that matches nothing is refused; nothing is journalled.
    let err = control
        .act(action(ActionKind::Hold, &["nope*"]))
        .await
        .unwrap_err();
    assert!(err.is_bad_request(), "{err}");
    let mut others = 0;
    while others < 2 {
        match run.next_event().await.unwrap() {
            RunEvent::TaskSucceeded { name, .. } => {
                assert!(!name.starts_with("late"), "{name} ran while held");
                others += 1;
            }
            RunEvent::TaskSubmitted { name, .. } => {
                assert!(!name.starts_with("late"), "{name} started while held")
            }
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Released: the run completes.
    let report = control
        .act(action(ActionKind::Release, &["late[*]"]))
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 2);
    while run.next_event().await.is_some() {}
    assert_eq!(run.wait().await.unwrap().outcome, Outcome::Succeeded);
    let store = StateStore::open(&fx.path("state")).unwrap();
    let actions = store.actions("hold-1").unwrap();
    let kinds: Vec<ActionKind> = actions.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [ActionKind::Hold, ActionKind::Release]);
    assert_eq!(actions[0].by, Actor::current());
    assert_eq!(actions[0].selectors, ["late"]);
    assert!(store.held_tasks("hold-1").unwrap().is_empty());
    // The run is over: an action is refused as not live.
    assert!(matches!(
        control.act(action(ActionKind::Hold, &["late"])).await,
        Err(ControlError::NotLive(_))
    ));
}

#[tokio::test]
async fn a_killed_task_fails_for_good_and_its_dependents_are_skipped() {
    let fx = Fixture::new();
    let yaml = "
version: 1
name: control
executors: { here: { kind: local } }
steps:
  long:
    executor: here
    retries: 2
    run: sleep 30
  after:
    executor: here
    after: [long]
    run: 'true'
";
    let mut run = fx
        .engine
        .submit(plan(yaml, "kill-1"), RunOptions::default())
        .await
        .unwrap();
    let control = run.controller();
    loop {
        if let RunEvent::TaskRunning { .. } = run.next_event().await.unwrap() {
            break;
        }
    }
    // Nothing to release: refused, naming why.
    let err = control
        .act(action(ActionKind::Release, &["long"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("none is held"), "{err}");
    let started = std::time::Instant::now();
    control
        .act(action(ActionKind::Kill, &["long"]))
        .await
        .unwrap();
    let mut skipped = Vec::new();
    while let Some(event) = run.next_event().await {
        if let RunEvent::TaskSkipped { name, .. } = event {
            skipped.push(name);
        }
    }
    let summary = run.wait().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "not retried");
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!(skipped, ["after"]);
    assert!(
        summary.failures[0].1.starts_with("killed by "),
        "{:?}",
        summary.failures
    );

    // A kill is for good across a resume too: the killed task does not run
    // again and its dependent stays skipped (the run ends failed at once).
    let started = std::time::Instant::now();
    let mut resumed = fx
        .engine
        .submit(
            plan(yaml, "kill-1"),
            RunOptions {
                resume: true,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    while let Some(event) = resumed.next_event().await {
        assert!(
            !matches!(event, RunEvent::TaskSubmitted { .. }),
            "a killed task or its dependent ran again: {event:?}"
        );
    }
    assert_eq!(resumed.wait().await.unwrap().outcome, Outcome::Failed);
    assert!(started.elapsed() < Duration::from_secs(10));
    let store = StateStore::open(&fx.path("state")).unwrap();
    let states: Vec<(String, TaskState)> = store
        .tasks("kill-1")
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.state))
        .collect();
    assert_eq!(
        states,
        [
            ("long".to_owned(), TaskState::Failed),
            ("after".to_owned(), TaskState::Skipped)
        ]
    );
}

#[tokio::test]
async fn actions_sent_together_are_each_taken_against_the_state_the_one_before_left() {
    let fx = Fixture::new();
    let mut run = fx
        .engine
        .submit(plan(HOLD, "together-1"), RunOptions::default())
        .await
        .unwrap();
    let control = run.controller();
    // Sent at once, before the run reads either: the release must find the
    // task held by the hold before it, and the selection sees both.
    let (hold, release, held_again, selection) = tokio::join!(
        control.act(action(ActionKind::Hold, &["late[k=a]"])),
        control.act(action(ActionKind::Release, &["late[k=a]"])),
        control.act(action(ActionKind::Hold, &["late[k=b]"])),
        control.select(vec!["late".to_owned()]),
    );
    assert_eq!(hold.unwrap().applied, ["late[k=a]"]);
    assert_eq!(release.unwrap().applied, ["late[k=a]"]);
    assert_eq!(held_again.unwrap().applied, ["late[k=b]"]);
    let held: Vec<(String, bool)> = selection
        .unwrap()
        .tasks
        .into_iter()
        .map(|t| (t.name, t.held))
        .collect();
    assert_eq!(
        held,
        [
            ("late[k=a]".to_owned(), false),
            ("late[k=b]".to_owned(), true)
        ]
    );
    control
        .act(action(ActionKind::Release, &["late[k=b]"]))
        .await
        .unwrap();
    while run.next_event().await.is_some() {}
    assert_eq!(run.wait().await.unwrap().outcome, Outcome::Succeeded);
}
