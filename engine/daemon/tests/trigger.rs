//! Trigger and set through the daemon's `Client` on a daemon booted
//! in-process: a triggered task starts although its dependency is held,
//! with a warning naming it; set succeeded is refused (400) while the
//! declared output is missing and accepted once it is written by hand;
//! set failed fails a held task for good. The status lists the actions.
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
use twinflow_engine::{ActionKind, RunState, TaskState};

const FLOW: &str = r#"
version: 1
name: trig
executors: { here: { kind: local, slots: 4 } }
steps:
  first:
    run: sleep 0.5
  make:
    after: [first]
    run: exit 3
    outputs: { out: out.txt }
  use:
    needs: { x: make.out }
    run: test ! -e '${{ inputs.x }}'
  other:
    after: [first]
    run: 'true'
"#;

fn sel(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn trigger_and_set_through_the_client() {
    let daemon = Daemon::start_with(ServeOptions::default());
    let client = daemon.client();
    let file = daemon.workflow("trig.yaml", FLOW);
    let run = client.submit(&request(file)).await.expect("submit").run_id;
    client
        .act(&run, ActionKind::Hold, &sel(&["make", "other"]))
        .await
        .expect("hold");
    let report = client
        .act(&run, ActionKind::Trigger, &sel(&["use"]))
        .await
        .expect("trigger");
    assert_eq!(report.applied, ["use"]);
    assert!(
        report.warnings.iter().any(|w| w.contains("make")),
        "{report:?}"
    );
    let state = |name: &'static str| {
        let client = client.clone();
        let run = run.clone();
        async move {
            let status = client.status(&run).await.expect("status");
            status
                .tasks
                .iter()
                .filter(|t| t.name == name)
                .map(|t| t.state)
                .collect::<Vec<_>>()
        }
    };
    let wait = |name: &'static str, want: TaskState| {
        let state = &state;
        async move {
            let start = std::time::Instant::now();
            while state(name).await != [want] {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "{name} never {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // `use` ran with its input missing (its command checks it) and succeeded.
    wait("use", TaskState::Succeeded).await;
    client
        .act(&run, ActionKind::Release, &sel(&["make"]))
        .await
        .expect("release");
    wait("make", TaskState::Failed).await;
    let err = client
        .act(&run, ActionKind::SetSucceeded, &sel(&["make"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DaemonError::Refused { status: 400, message } if message.contains("out.txt")),
        "{err}"
    );
    let out = daemon
        .state()
        .join("runs")
        .join(&run)
        .join("work/make/0/out.txt");
    std::fs::write(&out, "by hand\n").expect("write the output by hand");
    client
        .act(&run, ActionKind::SetSucceeded, &sel(&["make"]))
        .await
        .expect("set succeeded");
    client
        .act(&run, ActionKind::SetFailed, &sel(&["other"]))
        .await
        .expect("set failed");
    // `other` was the last unfinished task: the run ends, failed.
    let start = std::time::Instant::now();
    loop {
        let status = client.status(&run).await.expect("status");
        if status.run.state != RunState::Running {
            assert_eq!(status.run.state, RunState::Failed);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state("make").await, [TaskState::Succeeded]);
    assert_eq!(state("use").await, [TaskState::Succeeded], "not run again");
    assert_eq!(state("other").await, [TaskState::Failed]);
    let status = client.status(&run).await.expect("status");
    let kinds: Vec<ActionKind> = status.actions.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            ActionKind::Hold,
            ActionKind::Trigger,
            ActionKind::Release,
            ActionKind::SetSucceeded,
            ActionKind::SetFailed
        ]
    );
}
