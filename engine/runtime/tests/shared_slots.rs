//! Runs of one engine whose local executors share a pool of cores (the
//! daemon): together they never run more tasks than the pool has, each
//! finishes, a task waiting for a core is not timed out while it waits, and
//! the members of a coupling-group instance take their cores together.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use twinflow_core::ExecutorKind;
use twinflow_engine::{Engine, Outcome, RunOptions};
use twinflow_executor_local::{LocalFactory, SlotPool};
use twinflow_workflow::CompileOptions;

fn engine(dir: &Path, cores: u32) -> Engine {
    Engine::builder()
        .state_dir(dir.join("state"))
        .executor(
            ExecutorKind::Local,
            LocalFactory::default().with_pool(SlotPool::new(cores)),
        )
        .build()
        .unwrap()
}

fn plan(yaml: &str, dir: &Path, run_id: &str) -> twinflow_core::Plan {
    let yaml = yaml
        .replace("$DIR", &dir.display().to_string())
        .replace("$RUN", run_id);
    let options = CompileOptions {
        run_id: run_id.to_owned(),
        ..CompileOptions::default()
    };
    twinflow_workflow::compile_str("test.yaml", &yaml, &options)
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
}

/// Three tasks (two slots each run) that record when they ran.
const STAMPED: &str = "
version: 1
name: stamped
executors: { here: { kind: local, slots: 2 } }
steps:
  work:
    executor: here
    for_each: { i: [0, 1, 2] }
    run: |
      echo \"start $(date +%s%N)\" >> $DIR/$RUN-${{ i }}.log
      sleep 0.3
      echo \"end $(date +%s%N)\" >> $DIR/$RUN-${{ i }}.log
";

/// (start, end) in nanoseconds of every task of `runs`.
fn intervals(dir: &Path, runs: &[&str]) -> Vec<(u128, u128)> {
    let mut all = Vec::new();
    for run in runs {
        for i in 0..3 {
            let text = std::fs::read_to_string(dir.join(format!("{run}-{i}.log"))).unwrap();
            let stamp = |what: &str| -> u128 {
                text.lines()
                    .find_map(|l| l.strip_prefix(what))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            };
            all.push((stamp("start "), stamp("end ")));
        }
    }
    all
}

#[tokio::test]
async fn two_runs_on_one_core_take_turns_and_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), 1);
    let a = engine
        .submit(plan(STAMPED, dir.path(), "a"), RunOptions::default())
        .await
        .unwrap();
    let b = engine
        .submit(plan(STAMPED, dir.path(), "b"), RunOptions::default())
        .await
        .unwrap();
    let (a, b) = tokio::join!(a.wait(), b.wait());
    assert_eq!(a.unwrap().outcome, Outcome::Succeeded);
    assert_eq!(b.unwrap().outcome, Outcome::Succeeded);
    let mut all = intervals(dir.path(), &["a", "b"]);
    all.sort_unstable();
    for pair in all.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two tasks ran at once on a pool of one core: {pair:?}"
        );
    }
}

#[tokio::test]
async fn a_task_waiting_for_a_core_is_not_timed_out_while_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), 1);
    let busy = plan(
        "
version: 1
name: busy
steps:
  hold:
    run: sleep 3
",
        dir.path(),
        "busy",
    );
    let quick = plan(
        "
version: 1
name: quick
steps:
  quick:
    timeout: 2s
    run: touch $DIR/quick-ran
",
        dir.path(),
        "quick",
    );
    let busy = engine.submit(busy, RunOptions::default()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let quick = engine.submit(quick, RunOptions::default()).await.unwrap();
    let quick = quick.wait().await.unwrap();
    assert_eq!(
        quick.outcome,
        Outcome::Succeeded,
        "waited 3 s for the core with a 2 s timeout: {:?}",
        quick.failures
    );
    assert!(dir.path().join("quick-ran").exists());
    assert_eq!(busy.wait().await.unwrap().outcome, Outcome::Succeeded);
}

/// A member meets the other in the group directory, waiting up to 2 s.
const MEETING: &str = r#"
version: 1
executors: { here: { kind: local, slots: 2 } }
steps:
  forest:
    group: fb
    timeout: 20s
    run: |
      touch "$TWINFLOW_GROUP_DIR/forest"
      i=0; while [ ! -e "$TWINFLOW_GROUP_DIR/beetle" ]; do i=$((i+1)); [ $i -le 40 ] || exit 3; sleep 0.05; done
  beetle:
    group: fb
    timeout: 20s
    run: |
      touch "$TWINFLOW_GROUP_DIR/beetle"
      i=0; while [ ! -e "$TWINFLOW_GROUP_DIR/forest" ]; do i=$((i+1)); [ $i -le 40 ] || exit 3; sleep 0.05; done
"#;

#[tokio::test]
async fn a_group_takes_the_pools_cores_together_not_one_member_first() {
    // Another run holds one of the two cores for 3 s: the group's members
    // wait for both, then start together (one alone would give up after 2 s).
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), 2);
    let busy = "
version: 1
executors: { here: { kind: local, slots: 1 } }
steps:
  busy: { run: sleep 3 }
";
    let mut first = engine
        .submit(plan(busy, dir.path(), "busy"), RunOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut group = engine
        .submit(plan(MEETING, dir.path(), "group"), RunOptions::default())
        .await
        .unwrap();
    while group.next_event().await.is_some() {}
    let summary = group.wait().await.unwrap();
    assert_eq!(
        summary.outcome,
        Outcome::Succeeded,
        "{:?}",
        summary.failures
    );
    while first.next_event().await.is_some() {}
    assert_eq!(first.wait().await.unwrap().outcome, Outcome::Succeeded);
}
