//! A rerun that takes an ended run up again (`RunOptions::rerun`), when
//! the process dies right after journalling it, before its dispatch loop
//! ran at all: the next resume is decided by the journal. The rerun's
//! task really runs, as a new attempt, even when another run of the same
//! workflow holds a matching result in the cache.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test with a message"
)]

use twinflow_engine::{ActionKind, Outcome, RunOptions, StateStore};

mod common;
use common::Fixture;
mod control_support;
use control_support::{action, plan};

const FLOW: &str = "
version: 1
name: ended
executors: { here: { kind: local, slots: 2 } }
steps:
  make:
    executor: here
    run: echo made > out.txt
    outputs: { out: out.txt }
  use:
    executor: here
    needs: { x: make.out }
    run: cat ${{ inputs.x }}
";

#[test]
fn a_rerun_journalled_before_a_crash_is_applied_by_the_next_resume() {
    let fx = Fixture::new();
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // Two runs of the same workflow: the second reuses the first's results.
    let runtime = rt();
    for id in ["r1", "r2"] {
        let (summary, _) = runtime.block_on(fx.run_all(plan(FLOW, id), RunOptions::default()));
        assert_eq!(summary.outcome, Outcome::Succeeded);
    }
    drop(runtime);
    // Take r1 up for a rerun of `make` (the cache now names r2's reuse of
    // its result), and die before its loop runs: a current-thread runtime
    // dropped right after `submit` never polls it.
    let crashed = rt();
    let handle = crashed
        .block_on(fx.engine.submit(
            plan(FLOW, "r1"),
            RunOptions {
                resume: true,
                rerun: Some(action(ActionKind::Rerun, &["make"])),
                ..RunOptions::default()
            },
        ))
        .unwrap();
    let report = handle.taken_up_by().cloned().unwrap();
    assert!(report.taken_up);
    assert_eq!(report.applied, ["make"]);
    drop(handle);
    drop(crashed);
    // The process "died": its record names another process start.
    let db = fx.path("state").join(twinflow_engine::DB_FILE);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE runs SET pid_start = pid_start + 1 WHERE id = 'r1'",
            [],
        )
        .unwrap();
    let store = StateStore::open(&fx.path("state")).unwrap();
    assert_eq!(
        store.run("r1").unwrap().unwrap().state.as_str(),
        "interrupted"
    );
    drop(store);
    // The next resume applies the journalled rerun: `make` runs (not
    // reused from r2's), `use` sees its output.
    let (summary, _) = rt().block_on(fx.run_all(
        plan(FLOW, "r1"),
        RunOptions {
            resume: true,
            ..RunOptions::default()
        },
    ));
    assert_eq!(summary.outcome, Outcome::Succeeded);
    let store = StateStore::open(&fx.path("state")).unwrap();
    let make = store.task("r1", "make").unwrap().unwrap();
    assert_eq!(make.state.as_str(), "succeeded");
    assert!(make.cached_from.is_none(), "make ran: {make:?}");
    assert!(make.attempt >= 1, "a new attempt: {make:?}");
    assert_eq!(store.actions("r1").unwrap().len(), 1, "journalled once");
    assert_eq!(
        store.run("r1").unwrap().unwrap().state.as_str(),
        "succeeded"
    );
}
