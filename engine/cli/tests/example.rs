//! The library's example (`examples/run_workflow.rs`) runs: compiled here as
//! a module, through the one `twinflow` dependency, against a temporary
//! state directory.

#[path = "../examples/run_workflow.rs"]
#[expect(dead_code, reason = "its main is the example's, not the test's")]
mod run_workflow;

#[tokio::test]
async fn the_rust_api_example_compiles_and_runs_a_workflow_locally() {
    let state = tempfile::tempdir().unwrap();
    let (summary, all) = run_workflow::run_in(state.path()).await.unwrap();
    assert_eq!(summary.outcome, twinflow::Outcome::Succeeded);
    assert_eq!((summary.ran, summary.cached), (3, 0));
    assert_eq!(all, "hello world\nhello twins\n");
    // The run is in the state directory, readable through the same crate.
    let store = twinflow::StateStore::open(state.path()).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, twinflow::RunState::Succeeded);
}
