//! Coupling groups on the local executor, with real processes: members of
//! an instance start together (a rendezvous through `TWINFLOW_GROUP_DIR`
//! that fails unless both run at once), see the group variables, are
//! stopped and rerun as a whole when one fails, run per cycle point with
//! `@-1` needs between points, and are served from the cache only as a
//! whole instance.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::time::{Duration, Instant};
use twinflow_core::ExecutorKind;
use twinflow_engine::{Engine, Outcome, RunOptions, RunSummary};
use twinflow_executor_local::LocalFactory;
use twinflow_workflow::CompileOptions;

struct Fixture {
    dir: tempfile::TempDir,
    engine: Engine,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::builder()
            .state_dir(dir.path().join("state"))
            .executor(
                ExecutorKind::Local,
                LocalFactory {
                    grace: Duration::from_millis(300),
                    ..LocalFactory::default()
                },
            )
            .build()
            .unwrap();
        Self { dir, engine }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    async fn run(&self, yaml: &str, run_id: &str) -> RunSummary {
        let yaml = yaml.replace("$DIR", &self.dir.path().display().to_string());
        let options = CompileOptions {
            run_id: run_id.to_owned(),
            ..CompileOptions::default()
        };
        let plan = twinflow_workflow::compile_str("test.yaml", &yaml, &options)
            .unwrap_or_else(|e| panic!("{}", e.render(false)));
        let run = async {
            let mut handle = self
                .engine
                .submit(plan, RunOptions::default())
                .await
                .unwrap();
            while handle.next_event().await.is_some() {}
            handle.wait().await.unwrap()
        };
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .unwrap_or_else(|_| panic!("run {run_id} hung"))
    }
}

/// A member's script: counts its attempts in `$DIR/count-<member>`,
/// records its start time and its group variables, then meets the other
/// member in the group directory (each touches its name and waits up to
/// WAIT x 50 ms for the other's): it fails unless both run at the same time.
const MEET: &str = r#"
      n=$(cat $DIR/count-$TWINFLOW_GROUP_MEMBER 2>/dev/null || echo 0)
      echo $((n + 1)) > $DIR/count-$TWINFLOW_GROUP_MEMBER
      date +%s.%N > $DIR/start-$TWINFLOW_GROUP_MEMBER
      echo "$TWINFLOW_GROUP|$TWINFLOW_GROUP_MEMBERS|$TWINFLOW_GROUP_MEMBER|$TWINFLOW_GROUP_DIR" > $DIR/env-$TWINFLOW_GROUP_MEMBER
      HOOK
      touch "$TWINFLOW_GROUP_DIR/$TWINFLOW_GROUP_MEMBER"
      for m in $TWINFLOW_GROUP_MEMBERS; do [ "$m" = "$TWINFLOW_GROUP_MEMBER" ] || other=$m; done
      i=0
      while [ ! -e "$TWINFLOW_GROUP_DIR/$other" ]; do
        i=$((i + 1)); [ $i -le WAIT ] || { echo "no $other" >&2; exit 3; }; sleep 0.05
      done
      echo done > out.txt"#;

fn coupled(slots: u32, forest_hook: &str, beetle_hook: &str, retries: u32) -> String {
    // While `lone` (4 s) runs, a member started alone fails after 3 s.
    let meet = MEET.replace("WAIT", if slots == 2 { "60" } else { "200" });
    format!(
        "
version: 1
executors: {{ here: {{ kind: local, slots: {slots} }} }}
steps:
  lone:
    run: sleep 4
  forest:
    group: fb
    retries: {retries}
    timeout: 20s
    outputs: {{ out: out.txt }}
    run: |{}
  beetle:
    group: fb
    retries: {retries}
    timeout: 20s
    outputs: {{ out: out.txt }}
    run: |{}
",
        meet.replace("HOOK", forest_hook),
        meet.replace("HOOK", beetle_hook)
    )
}

fn read(f: &Fixture, name: &str) -> String {
    std::fs::read_to_string(f.path(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn members_start_together_only_when_both_fit_and_see_the_group_variables() {
    // 2 slots, and the executor holds 2 more ahead: while `lone` runs only
    // one member would start; the instance waits until both fit.
    let f = Fixture::new();
    let summary = f.run(&coupled(2, ":", ":", 0), "r1").await;
    assert_eq!(
        summary.outcome,
        Outcome::Succeeded,
        "{:?}",
        summary.failures
    );
    assert_eq!(summary.ran, 3);
    let start = |m: &str| read(&f, &format!("start-{m}")).parse::<f64>().unwrap();
    assert!(
        (start("forest") - start("beetle")).abs() < 1.0,
        "members start together"
    );
    let env = read(&f, "env-forest");
    let parts: Vec<&str> = env.split('|').collect();
    assert_eq!(parts[..3], ["fb", "forest beetle", "forest"]);
    assert_eq!(read(&f, "env-beetle").split('|').nth(2), Some("beetle"));
    let dir = std::path::Path::new(parts[3]);
    assert!(dir.starts_with(f.path("state")), "{}", dir.display());
    assert!(dir.ends_with("groups/fb/0/0"), "{}", dir.display());
    assert!(dir.join("forest").exists() && dir.join("beetle").exists());
    assert_eq!(read(&f, "env-beetle").split('|').nth(3), Some(parts[3]));
}

#[tokio::test]
async fn a_failing_member_stops_the_other_and_the_instance_runs_again() {
    // forest fails on its first attempt, once beetle's has begun (and
    // counted itself); beetle's first would wait 30 s.
    let f = Fixture::new();
    let started = Instant::now();
    let summary = f
        .run(
            &coupled(
                4,
                "[ $n -ge 1 ] || { while [ ! -e $DIR/count-beetle ]; do sleep 0.05; done; exit 1; }",
                "[ $n -ge 1 ] || sleep 30",
                1,
            ),
            "r1",
        )
        .await;
    assert_eq!(
        summary.outcome,
        Outcome::Succeeded,
        "{:?}",
        summary.failures
    );
    assert_eq!(read(&f, "count-forest"), "2");
    assert_eq!(read(&f, "count-beetle"), "2", "both members ran again");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "beetle's first attempt was stopped, not waited for"
    );

    // No retries left: both fail, and beetle says why it was stopped.
    let f = Fixture::new();
    let summary = f
        .run(
            &coupled(
                4,
                "while [ ! -e $DIR/count-beetle ]; do sleep 0.05; done; exit 1",
                "sleep 30",
                0,
            ),
            "r1",
        )
        .await;
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!(summary.failed, 2, "{:?}", summary.failures);
    let beetle = summary
        .failures
        .iter()
        .find(|(name, _)| name == "beetle")
        .map(|(_, why)| why.clone())
        .unwrap_or_default();
    assert!(beetle.contains("forest failed"), "{beetle}");
    assert_eq!(read(&f, "count-beetle"), "1");
}

#[tokio::test]
async fn an_instance_is_cached_only_as_a_whole() {
    let f = Fixture::new();
    let yaml = coupled(4, ":", ":", 0);
    assert_eq!(f.run(&yaml, "r1").await.ran, 3);
    let again = f.run(&yaml, "r2").await;
    assert_eq!((again.ran, again.cached), (0, 3));
    // beetle's command changed: forest's cached result is not used alone.
    let changed = coupled(4, ":", "true", 0);
    let third = f.run(&changed, "r3").await;
    assert_eq!(third.outcome, Outcome::Succeeded, "{:?}", third.failures);
    assert_eq!((third.ran, third.cached), (2, 1), "forest ran with beetle");
    assert_eq!(read(&f, "count-forest"), "2");
}

#[tokio::test]
async fn a_cycled_group_runs_one_instance_per_point_with_earlier_point_needs() {
    let f = Fixture::new();
    let yaml = r#"
version: 1
executors: { here: { kind: local, slots: 2 } }
cycle: { start: 2001-01-01, stop: 2003-01-01, step: P1Y }
steps:
  forest:
    group: fb
    cycling: true
    timeout: 20s
    needs: { damage: beetle.damage@-1 }
    outputs: { stands: stands.txt }
    run: |
      touch "$TWINFLOW_GROUP_DIR/forest"
      i=0; while [ ! -e "$TWINFLOW_GROUP_DIR/beetle" ]; do i=$((i+1)); [ $i -le 200 ] || exit 3; sleep 0.05; done
      echo "$TWINFLOW_CYCLE_YEAR $(cat ${{ inputs.damage }} 2>/dev/null)" > stands.txt
  beetle:
    group: fb
    cycling: true
    timeout: 20s
    needs: { stands: forest.stands@-1 }
    outputs: { damage: damage.txt }
    run: |
      touch "$TWINFLOW_GROUP_DIR/beetle"
      i=0; while [ ! -e "$TWINFLOW_GROUP_DIR/forest" ]; do i=$((i+1)); [ $i -le 200 ] || exit 3; sleep 0.05; done
      echo "d$TWINFLOW_CYCLE_YEAR" > damage.txt
"#;
    let summary = f.run(yaml, "r1").await;
    assert_eq!(
        summary.outcome,
        Outcome::Succeeded,
        "{:?}",
        summary.failures
    );
    assert_eq!(summary.ran, 6);
    let groups = summary.run_dir.join("groups/fb");
    for point in 0..3 {
        assert!(
            groups.join(format!("{point}/0/forest")).exists(),
            "point {point}"
        );
    }
    let last = std::fs::read_to_string(summary.run_dir.join("work/forest/2/stands.txt"))
        .unwrap_or_default();
    assert_eq!(
        last.trim(),
        "2003 d2002",
        "forest@2003 read beetle@2002's damage"
    );
}

#[tokio::test]
async fn a_member_in_a_container_is_refused_at_submit() {
    // The group directory is not bound into images yet, so the members
    // could not meet: refused rather than run apart.
    let f = Fixture::new();
    let yaml = "
version: 1
name: boxed-group
executors: { here: { kind: local, slots: 2, container_runtime: podman } }
steps:
  forest: { executor: here, group: fb, container: localhost/twinflow-busybox:1, run: 'true' }
  beetle: { executor: here, group: fb, run: 'true' }
";
    let options = CompileOptions {
        run_id: "r1".to_owned(),
        ..CompileOptions::default()
    };
    let plan = twinflow_workflow::compile_str("test.yaml", yaml, &options)
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let Err(e) = f.engine.submit(plan, RunOptions::default()).await else {
        panic!("a containerised group member was accepted");
    };
    let shown = e.to_string();
    assert!(
        shown.contains("step `forest` cannot run as written")
            && shown.contains("the group directory is not bound into the image"),
        "{shown}"
    );
}
