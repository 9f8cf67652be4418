//! Reruns on a live run through `Controller`, with the local executor:
//! finished tasks run again as new attempts (never from the cache), their
//! consumers see the new outputs, and a running dependent is killed and
//! run again.
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

/// `make` counts its runs in `counter` and writes the count as its output;
/// `use` appends what it was given to `log` (after `pause` seconds);
/// `tail` (after `gate`) is held to keep the run live.
fn workflow(fx: &Fixture, pause: &str) -> String {
    let counter = fx.path("counter").display().to_string();
    let log = fx.path("log").display().to_string();
    format!(
        "
version: 1
name: rerun
executors: {{ here: {{ kind: local, slots: 4 }} }}
steps:
  make:
    executor: here
    run: n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}; echo $n > out.txt
    outputs: {{ out: out.txt }}
  use:
    executor: here
    needs: {{ x: make.out }}
    run: sleep {pause}; cat ${{{{ inputs.x }}}} >> {log}
  gate:
    executor: here
    run: sleep 1
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
    matches!(event, RunEvent::TaskSucceeded { name, cached_from: None, .. } if name == task)
}

#[tokio::test]
async fn a_rerun_really_runs_and_its_consumers_see_the_new_outputs() {
    let fx = Fixture::new();
    let mut run = fx
        .engine
        .submit(plan(&workflow(&fx, "0"), "rerun-1"), RunOptions::default())
        .await
        .unwrap();
    let control = run.controller();
    control
        .act(action(ActionKind::Hold, &["tail"]))
        .await
        .unwrap();
    until(&mut run, |e| succeeded(e, "use")).await;
    // A waiting (held) task is not rerun: refused, saying why.
    let err = control
        .act(action(ActionKind::Rerun, &["tail"]))
        .await
        .unwrap_err();
    assert!(err.is_bad_request());
    assert!(err.to_string().contains("none is finished"), "{err}");
    let report = control
        .act(action(ActionKind::RerunDownstream, &["make"]))
        .await
        .unwrap();
    assert_eq!(report.applied, ["make"]);
    let events = until(&mut run, |e| succeeded(e, "use")).await;
    let reset: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::TaskReset { name, was, by, .. } => {
                assert_eq!(was, "succeeded");
                assert!(by.starts_with("rerun by "), "{by}");
                Some(name.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(reset, ["make", "use"]);
    assert!(
        events.iter().any(|e| succeeded(e, "make")),
        "make ran again, not from the cache: {events:?}"
    );
    assert_eq!(
        std::fs::read_to_string(fx.path("log")).unwrap(),
        "1\n2\n",
        "the consumer saw the new output"
    );
    control
        .act(action(ActionKind::Release, &["tail"]))
        .await
        .unwrap();
    while run.next_event().await.is_some() {}
    let summary = run.wait().await.unwrap();
    assert_eq!(summary.outcome, Outcome::Succeeded);
    assert_eq!((summary.ran, summary.cached), (4, 0), "{summary:?}");
    let store = StateStore::open(&fx.path("state")).unwrap();
    let kinds: Vec<ActionKind> = store
        .actions("rerun-1")
        .unwrap()
        .iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ActionKind::Hold,
            ActionKind::RerunDownstream,
            ActionKind::Release
        ]
    );
}

#[tokio::test]
async fn a_rerun_kills_a_running_dependent_and_runs_it_again_on_the_new_output() {
    let fx = Fixture::new();
    let mut run = fx
        .engine
        .submit(plan(&workflow(&fx, "2"), "rerun-2"), RunOptions::default())
        .await
        .unwrap();
    let control = run.controller();
    control
        .act(action(ActionKind::Hold, &["tail"]))
        .await
        .unwrap();
    until(
        &mut run,
        |e| matches!(e, RunEvent::TaskRunning { step, .. } if *step == 1),
    )
    .await;
    // `use` runs on make's first output: rerunning make kills it.
    let report = control
        .act(action(ActionKind::Rerun, &["make"]))
        .await
        .unwrap();
    assert_eq!(report.applied, ["make"]);
    let events = until(&mut run, |e| succeeded(e, "use")).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::TaskReset { name, was, .. } if name == "use" && was == "running")),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, RunEvent::TaskFailed { .. })),
        "the killed dependent did not fail: {events:?}"
    );
    assert_eq!(
        std::fs::read_to_string(fx.path("log")).unwrap(),
        "2\n",
        "only the attempt on the new output finished"
    );
    control
        .act(action(ActionKind::Release, &["tail"]))
        .await
        .unwrap();
    while run.next_event().await.is_some() {}
    assert_eq!(run.wait().await.unwrap().outcome, Outcome::Succeeded);
}
