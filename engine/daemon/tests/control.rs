//! Operator actions through the daemon's `Client` on a daemon booted
//! in-process: hold keeps a step from starting while the rest finishes,
//! release lets the run complete, kill stops a running task and skips its
//! dependents; refusals come back as 400 (bad selector, nothing applies)
//! and 404 (a run the daemon does not carry). The status shows held tasks
//! and the action log.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

#[expect(dead_code, reason = "the shared helpers serve other tests too")]
mod common;

use common::{Daemon, request};
use std::time::Duration;
use twinflow_daemon::{DaemonError, ServeOptions};
use twinflow_engine::{ActionKind, TaskState};

const FLOW: &str = r#"
version: 1
name: control
executors: { here: { kind: local, slots: 4 } }
steps:
  first:
    run: sleep 0.5
  late:
    after: [first]
    for_each: { i: [1, 2] }
    run: 'true'
  long:
    run: sleep 60
  after-long:
    after: [long]
    run: 'true'
"#;

fn sel(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_release_and_kill_through_the_client() {
    let daemon = Daemon::start_with(ServeOptions::default());
    let client = daemon.client();
    let file = daemon.workflow("control.yaml", FLOW);
    let run = client.submit(&request(file)).await.expect("submit").run_id;
    let held = client
        .act(&run, ActionKind::Hold, &sel(&["late"]))
        .await
        .expect("hold");
    assert_eq!(held.applied.len(), 2);
    let err = client
        .act(&run, ActionKind::Kill, &sel(&["nope"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaemonError::Refused { status: 400, .. }),
        "{err}"
    );
    let err = client
        .act("no-such-run", ActionKind::Hold, &sel(&["late"]))
        .await
        .unwrap_err();
    // Named as every route names runs: an unknown one is not found.
    assert!(matches!(err, DaemonError::NotFound(_)), "{err}");
    // `first` ends and `long` runs; the held tasks do not start.
    let state = |name: &'static str| {
        let client = client.clone();
        let run = run.clone();
        async move {
            let status = client.status(&run).await.expect("status");
            status
                .tasks
                .iter()
                .filter(|t| t.name.starts_with(name))
                .map(|t| t.state)
                .collect::<Vec<_>>()
        }
    };
    let start = std::time::Instant::now();
    while state("first").await != [TaskState::Succeeded]
        || state("long").await != [TaskState::Running]
    {
        assert!(start.elapsed() < Duration::from_secs(60), "never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(state("late").await.is_empty(), "a held task started");
    let status = client.status(&run).await.expect("status");
    assert_eq!(status.held.len(), 2, "{:?}", status.held);
    assert_eq!(status.actions.len(), 1);
    assert_eq!(status.actions[0].kind, ActionKind::Hold);
    // Kill the long task; release the held step; the run ends failed.
    client
        .act(&run, ActionKind::Kill, &sel(&["long"]))
        .await
        .expect("kill");
    client
        .act(&run, ActionKind::Release, &sel(&["late[*]"]))
        .await
        .expect("release");
    let mut events = client.events(&run).await.expect("events");
    let mut last = serde_json::Value::Null;
    while let Some(event) = events.next().await.expect("event") {
        last = event;
    }
    assert_eq!(last["outcome"], "failed", "{last}");
    assert_eq!(
        state("late").await,
        [TaskState::Succeeded, TaskState::Succeeded]
    );
    assert_eq!(state("long").await, [TaskState::Failed]);
    assert_eq!(state("after-long").await, [TaskState::Skipped]);
    let status = client.status(&run).await.expect("status");
    let kinds: Vec<ActionKind> = status.actions.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [ActionKind::Hold, ActionKind::Kill, ActionKind::Release]
    );
    assert!(status.held.is_empty());
}
