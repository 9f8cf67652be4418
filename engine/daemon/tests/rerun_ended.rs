//! A rerun of a run that has ended, through the daemon's `Client`: the
//! daemon takes the run up again with the rerun journalled and applied
//! first, so its tasks run as new attempts (never from the cache), with
//! their dependents when asked (`--downstream`); the run is live again and
//! its outcome is computed anew. Two reruns sent at once are both applied,
//! the run taken up once.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

#[expect(dead_code, reason = "the shared helpers serve other tests too")]
mod common;

use common::{Daemon, request, wait_for_end};
use twinflow_daemon::{Client, DaemonError, ServeOptions};
use twinflow_engine::{ActionKind, TaskState};

fn sel(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

/// The record of the task named `name`.
async fn row(client: &Client, run: &str, name: &str) -> twinflow_engine::TaskRow {
    let status = client.status(run).await.expect("status");
    status
        .tasks
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

/// (state, latest attempt) of the task named `name`.
async fn task(client: &Client, run: &str, name: &str) -> (TaskState, u32) {
    let t = row(client, run, name).await;
    (t.state, t.attempt)
}

const CHAIN: &str = r#"
version: 1
name: chain
executors: { here: { kind: local, slots: 4 } }
steps:
  make:
    run: sleep 1 && date +%s%N > ${{ outputs.out }}
    outputs: { out: out.txt }
  use:
    needs: { x: make.out }
    run: cat ${{ inputs.x }} > ${{ outputs.copy }}
    outputs: { copy: copy.txt }
  other:
    run: 'true'
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_takes_a_succeeded_run_up_again_with_its_dependents() {
    let daemon = Daemon::start_with(ServeOptions::default());
    let client = daemon.client();
    let file = daemon.workflow("chain.yaml", CHAIN);
    let run = client.submit(&request(file)).await.expect("submit").run_id;
    let last = wait_for_end(&client, &run).await;
    assert_eq!(last["outcome"], "succeeded", "{last}");
    let first_make = task(&client, &run, "make").await;

    let report = client
        .act(&run, ActionKind::RerunDownstream, &sel(&["make"]))
        .await
        .expect("a rerun of an ended run");
    assert!(report.taken_up, "{report:?}");
    assert_eq!(report.applied, ["make"]);
    let status = client.status(&run).await.expect("status");
    assert!(status.live, "the run is live again");
    assert_eq!(status.run.state.as_str(), "running");
    let last = wait_for_end(&client, &run).await;
    assert_eq!(last["outcome"], "succeeded", "{last}");
    let status = client.status(&run).await.expect("status");
    assert!(!status.live);
    assert_eq!(status.run.state.as_str(), "succeeded");
    let make = task(&client, &run, "make").await;
    assert_eq!(
        make,
        (TaskState::Succeeded, first_make.1 + 1),
        "a new attempt"
    );
    let used = task(&client, &run, "use").await;
    assert_eq!(used, (TaskState::Succeeded, first_make.1 + 1), "downstream");
    // A task the rerun does not reach is taken up as a resume takes it:
    // its result is reused, not run again.
    let other = row(&client, &run, "other").await;
    assert_eq!(other.state, TaskState::Succeeded);
    assert_eq!(
        other.cached_from.as_deref(),
        Some(run.as_str()),
        "{other:?}"
    );
    assert!(row(&client, &run, "make").await.cached_from.is_none());
    let kinds: Vec<ActionKind> = status.actions.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [ActionKind::RerunDownstream]);
    // Nothing finished selected: refused, and the run is left as it is.
    let err = client
        .act(&run, ActionKind::Rerun, &sel(&["nope"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaemonError::Refused { status: 400, .. }),
        "{err}"
    );
    assert!(!client.status(&run).await.expect("status").live);
    // Other actions still need a live run.
    let err = client
        .act(&run, ActionKind::Hold, &sel(&["make"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DaemonError::Refused { status: 404, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_ends_succeeded_after_its_input_is_fixed_and_rerun() {
    let daemon = Daemon::start_with(ServeOptions::default());
    let client = daemon.client();
    let fixed = daemon.dir.path().join("fixed");
    let yaml = format!(
        "version: 1\nname: fix\nsteps:\n  check:\n    run: test -f {}\n  after:\n    after: [check]\n    run: 'true'\n",
        fixed.display()
    );
    let file = daemon.workflow("fix.yaml", &yaml);
    let run = client.submit(&request(file)).await.expect("submit").run_id;
    let last = wait_for_end(&client, &run).await;
    assert_eq!(last["outcome"], "failed", "{last}");
    assert_eq!(task(&client, &run, "after").await.0, TaskState::Skipped);
    std::fs::write(&fixed, "").expect("fix the input");
    let report = client
        .act(&run, ActionKind::Rerun, &sel(&["check"]))
        .await
        .expect("rerun");
    assert!(report.taken_up);
    let last = wait_for_end(&client, &run).await;
    assert_eq!(last["outcome"], "succeeded", "{last}");
    assert_eq!(
        task(&client, &run, "check").await,
        (TaskState::Succeeded, 1)
    );
    assert_eq!(task(&client, &run, "after").await.0, TaskState::Succeeded);
    let status = client.status(&run).await.expect("status");
    assert_eq!(status.run.state.as_str(), "succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_reruns_of_an_ended_run_at_once_are_both_applied() {
    let daemon = Daemon::start_with(ServeOptions::default());
    let client = daemon.client();
    let yaml = "version: 1\nname: two\nsteps:\n  a:\n    run: sleep 1\n  b:\n    run: sleep 1\n";
    let file = daemon.workflow("two.yaml", yaml);
    let run = client.submit(&request(file)).await.expect("submit").run_id;
    wait_for_end(&client, &run).await;
    let (sa, sb) = (sel(&["a"]), sel(&["b"]));
    let (a, b) = tokio::join!(
        client.act(&run, ActionKind::Rerun, &sa),
        client.act(&run, ActionKind::Rerun, &sb),
    );
    let (a, b) = (a.expect("rerun a"), b.expect("rerun b"));
    assert!(a.taken_up != b.taken_up, "taken up once: {a:?} {b:?}");
    let last = wait_for_end(&client, &run).await;
    assert_eq!(last["outcome"], "succeeded", "{last}");
    // Each ran again (the one the second rerun reached may first have been
    // reused by the take-up, then rerun: a later attempt).
    for name in ["a", "b"] {
        let t = row(&client, &run, name).await;
        assert_eq!(t.state, TaskState::Succeeded, "{t:?}");
        assert!(t.attempt >= 1 && t.cached_from.is_none(), "{t:?}");
    }
    let status = client.status(&run).await.expect("status");
    assert_eq!(status.actions.len(), 2);
}

/// A rerun that reaches a run just taken up again, for a task that waits
/// there to get its earlier result back (its dependency reruns first), is
/// applied to it: it runs again rather than being reused.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_reaches_a_task_of_a_taken_up_run_before_its_result_is_back() {
    let daemon = Daemon::start_with(ServeOptions::default());
    let client = daemon.client();
    let yaml = "version: 1\nname: wait\nsteps:\n  a:\n    run: sleep 1\n  b:\n    after: [a]\n    run: 'true'\n";
    let file = daemon.workflow("wait.yaml", yaml);
    let run = client.submit(&request(file)).await.expect("submit").run_id;
    wait_for_end(&client, &run).await;
    let first = client
        .act(&run, ActionKind::Rerun, &sel(&["a"]))
        .await
        .expect("rerun a");
    assert!(first.taken_up);
    let second = client
        .act(&run, ActionKind::Rerun, &sel(&["b"]))
        .await
        .expect("rerun b, which waits for a");
    assert!(!second.taken_up);
    assert_eq!(second.applied, ["b"]);
    let last = wait_for_end(&client, &run).await;
    assert_eq!(last["outcome"], "succeeded", "{last}");
    let b = row(&client, &run, "b").await;
    assert_eq!((b.state, b.attempt), (TaskState::Succeeded, 1), "{b:?}");
    assert!(b.cached_from.is_none(), "b ran again: {b:?}");
}
