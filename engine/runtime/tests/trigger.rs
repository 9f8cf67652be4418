//! Triggering tasks and setting them by hand on a live run through
//! `Controller`, with the local executor: a triggered task runs now with
//! the inputs that exist (its missing ones named), a task set succeeded
//! passes the outputs found in its directory on to its dependents, one set
//! failed skips them.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test with a message"
)]

use twinflow_engine::{ActionKind, Outcome, RunEvent, RunHandle, RunOptions, StateStore};

#[expect(dead_code, reason = "the fixture's other helpers serve other tests")]
mod common;
use common::Fixture;
mod control_support;
use control_support::{action, plan};

/// `make` (after `gate`, so that it can be held before it starts) runs
/// `make_run` and declares `out.txt`; `use` logs what it was given, or
/// `missing`; `tail` (after `gate`) is held to keep the run live.
fn workflow(fx: &Fixture, make_run: &str) -> String {
    let log = fx.path("log").display().to_string();
    format!(
        "
version: 1
name: trigger
executors: {{ here: {{ kind: local, slots: 4 }} }}
steps:
  gate:
    executor: here
    run: sleep 1
  make:
    executor: here
    after: [gate]
    run: {make_run}
    outputs: {{ out: out.txt }}
  use:
    executor: here
    needs: {{ x: make.out }}
    run: if [ -e '${{{{ inputs.x }}}}' ]; then cat '${{{{ inputs.x }}}}' >> {log}; else echo missing >> {log}; fi
  tail:
    executor: here
    after: [gate]
    run: 'true'
"
    )
}

async fn until(run: &mut RunHandle, what: impl Fn(&RunEvent) -> bool) -> Vec<RunEvent> {
    let mut seen = Vec::new();
    loop {
        let event = run.next_event().await.unwrap();
        let done = what(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn succeeded(event: &RunEvent, task: &str) -> bool {
    matches!(event, RunEvent::TaskSucceeded { name, .. } if name == task)
}

fn log(fx: &Fixture) -> String {
    std::fs::read_to_string(fx.path("log")).unwrap_or_default()
}

#[tokio::test]
async fn a_triggered_task_runs_now_without_its_missing_input_and_not_again_later() {
    let fx = Fixture::new();
    let mut run = fx
        .engine
        .submit(
            plan(&workflow(&fx, "echo made > out.txt"), "trigger-1"),
            RunOptions::default(),
        )
        .await
        .unwrap();
    let control = run.controller();
    control
        .act(action(ActionKind::Hold, &["make"]))
        .await
        .unwrap();
    let report = control
        .act(action(ActionKind::Trigger, &["use"]))
        .await
        .unwrap();
    assert_eq!(report.applied, ["use"]);
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(report.warnings[0].contains("make"), "{report:?}");
    until(&mut run, |e| succeeded(e, "use")).await;
    assert_eq!(log(&fx), "missing\n", "it ran with the input missing");
    // A running or finished task is not triggered.
    let err = control
        .act(action(ActionKind::Trigger, &["use"]))
        .await
        .unwrap_err();
    assert!(err.is_bad_request(), "{err}");
    control
        .act(action(ActionKind::Release, &["make"]))
        .await
        .unwrap();
    until(&mut run, |e| succeeded(e, "make")).await;
    while run.next_event().await.is_some() {}
    let summary = run.wait().await.unwrap();
    assert_eq!(summary.outcome, Outcome::Succeeded, "{summary:?}");
    assert_eq!(log(&fx), "missing\n", "not run again once make succeeded");
    let store = StateStore::open(&fx.path("state")).unwrap();
    let note = store.task("trigger-1", "use").unwrap().unwrap().reason;
    let note = note.unwrap_or_default();
    assert!(note.starts_with("triggered by "), "{note}");
    assert!(
        note.contains("started without input `x` (output `out` of make)"),
        "{note}"
    );
}

#[tokio::test]
async fn set_succeeded_seals_the_outputs_made_by_hand_and_the_dependent_consumes_them() {
    let fx = Fixture::new();
    let mut run = fx
        .engine
        .submit(
            plan(&workflow(&fx, "exit 3"), "set-1"),
            RunOptions::default(),
        )
        .await
        .unwrap();
    let control = run.controller();
    control
        .act(action(ActionKind::Hold, &["tail"]))
        .await
        .unwrap();
    until(
        &mut run,
        |e| matches!(e, RunEvent::TaskSkipped { name, .. } if name == "use"),
    )
    .await;
    // Its output is not there yet: refused, naming the path.
    let err = control
        .act(action(ActionKind::SetSucceeded, &["make"]))
        .await
        .unwrap_err();
    assert!(err.is_bad_request(), "{err}");
    let out = fx.path("state/runs/set-1/work/make/0/out.txt");
    assert!(
        err.to_string().contains(&out.display().to_string()),
        "{err}"
    );
    std::fs::write(&out, "by hand\n").unwrap();
    let report = control
        .act(action(ActionKind::SetSucceeded, &["make"]))
        .await
        .unwrap();
    assert_eq!(report.applied, ["make"]);
    until(&mut run, |e| succeeded(e, "use")).await;
    assert_eq!(log(&fx), "by hand\n", "the dependent consumed it");
    control
        .act(action(ActionKind::Release, &["tail"]))
        .await
        .unwrap();
    while run.next_event().await.is_some() {}
    let summary = run.wait().await.unwrap();
    assert_eq!(summary.outcome, Outcome::Succeeded, "{summary:?}");
    let store = StateStore::open(&fx.path("state")).unwrap();
    let kinds: Vec<ActionKind> = store
        .actions("set-1")
        .unwrap()
        .iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ActionKind::Hold,
            ActionKind::SetSucceeded,
            ActionKind::Release
        ],
        "the refused one is not journalled"
    );
}

#[tokio::test]
async fn set_failed_skips_the_dependents() {
    let fx = Fixture::new();
    let mut run = fx
        .engine
        .submit(
            plan(&workflow(&fx, "echo made > out.txt"), "set-2"),
            RunOptions::default(),
        )
        .await
        .unwrap();
    let control = run.controller();
    control
        .act(action(ActionKind::Hold, &["make"]))
        .await
        .unwrap();
    // A running task is not set: kill it first.
    until(
        &mut run,
        |e| matches!(e, RunEvent::TaskSubmitted { name, .. } if name == "gate"),
    )
    .await;
    let err = control
        .act(action(ActionKind::SetSucceeded, &["gate"]))
        .await
        .unwrap_err();
    assert!(err.is_bad_request(), "{err}");
    assert!(err.to_string().contains("kill it first"), "{err}");
    let report = control
        .act(action(ActionKind::SetFailed, &["make"]))
        .await
        .unwrap();
    assert_eq!(report.applied, ["make"]);
    let events = until(&mut run, |e| matches!(e, RunEvent::RunFinished(_))).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::TaskSkipped { name, .. } if name == "use")),
        "{events:?}"
    );
    let summary = run.wait().await.unwrap();
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!(summary.failures.len(), 1);
    assert!(
        summary.failures[0].1.starts_with("set failed by "),
        "{summary:?}"
    );
    assert_eq!(log(&fx), "", "use never ran");
}

#[tokio::test]
async fn members_of_a_coupling_group_are_neither_triggered_nor_set() {
    let fx = Fixture::new();
    let yaml = "
version: 1
name: grouped
executors: { here: { kind: local, slots: 4 } }
steps:
  gate:
    run: sleep 1
  forest:
    group: fb
    after: [gate]
    run: 'true'
  beetle:
    group: fb
    run: 'true'
";
    let mut run = fx
        .engine
        .submit(plan(yaml, "grouped-1"), RunOptions::default())
        .await
        .unwrap();
    let control = run.controller();
    for kind in [
        ActionKind::Trigger,
        ActionKind::SetSucceeded,
        ActionKind::SetFailed,
    ] {
        let err = control.act(action(kind, &["forest"])).await.unwrap_err();
        assert!(err.is_bad_request(), "{err}");
        assert!(
            err.to_string().contains("member of a coupling group"),
            "{err}"
        );
    }
    while run.next_event().await.is_some() {}
    assert_eq!(run.wait().await.unwrap().outcome, Outcome::Succeeded);
}
