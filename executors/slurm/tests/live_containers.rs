//! Tasks in a podman container on the real local Slurm (`deploy/dev/slurm-up`
//! and `deploy/dev/podman-up`, both started by `scripts/test`, which sets
//! `TWINFLOW_TEST_SLURM=1` and `TWINFLOW_TEST_PODMAN=1`): a workflow whose
//! steps run in `localhost/twinflow-busybox:1` goes out as a job array and
//! a plain job, its tasks run inside the image (no `/etc/debian_version`,
//! which the Debian host has), read their inputs through the binds, seal
//! their outputs, pass a failing exit status through, and leave no
//! container behind; the digest is recorded, reused while it holds and a
//! re-tagged image runs the tasks again; a cancelled task whose script
//! ignores SIGTERM leaves no container either.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test"
)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn available() -> bool {
    let on = |v: &str| std::env::var(v).as_deref() == Ok("1");
    if on("TWINFLOW_TEST_SLURM") && on("TWINFLOW_TEST_PODMAN") {
        return true;
    }
    eprintln!(
        "skipped: TWINFLOW_TEST_SLURM and TWINFLOW_TEST_PODMAN are not both 1 \
         (scripts/test starts deploy/dev/slurm-up and deploy/dev/podman-up and sets them)"
    );
    false
}

fn podman(args: &[&str]) -> String {
    let out = Command::new("podman").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Containers whose name holds `part`, running or not.
fn containers(part: &str) -> Vec<String> {
    podman(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .filter(|n| n.contains(part))
        .map(str::to_owned)
        .collect()
}

fn engine(dir: &Path) -> twinflow_engine::Engine {
    twinflow_engine::Engine::builder()
        .state_dir(dir.join("state"))
        .executor(
            twinflow_core::ExecutorKind::Slurm,
            twinflow_executor_slurm::SlurmFactory::new(Duration::from_millis(300)),
        )
        .build()
        .unwrap()
}

fn plan(yaml: &str, run_id: &str) -> twinflow_core::Plan {
    let options = twinflow_workflow::CompileOptions {
        run_id: run_id.to_owned(),
        ..twinflow_workflow::CompileOptions::default()
    };
    twinflow_workflow::compile_str("boxed.yaml", yaml, &options)
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
}

async fn run(dir: &Path, yaml: &str, run_id: &str) -> twinflow_engine::RunSummary {
    let handle = engine(dir)
        .submit(plan(yaml, run_id), twinflow_engine::RunOptions::default())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(180), handle.wait())
        .await
        .expect("the run ends")
        .unwrap()
}

const BOXED: &str = r#"
version: 1
name: boxed
executors: { hpc: { kind: slurm, partition: debug, container_runtime: podman } }
steps:
  gen:
    executor: hpc
    for_each: { i: [1, 2] }
    container: IMAGE
    resources: { time: 2m }
    run: |
      test ! -e /etc/debian_version
      test -x /bin/busybox
      echo ${{ i }} > ${{ outputs.n }}
    outputs: { n: n.txt }
  sum:
    executor: hpc
    needs: { all: gen.n }
    container: { image: IMAGE, runtime: podman }
    resources: { time: 2m }
    run: |
      test ! -e /etc/debian_version
      cat ${{ inputs.all }} | paste -sd+ - > ${{ outputs.expr }}
    outputs: { expr: expr.txt }
  broken:
    executor: hpc
    container: IMAGE
    resources: { time: 2m }
    run: echo "inside, failing" >&2; exit 3
"#;

#[tokio::test]
async fn a_workflow_runs_in_podman_on_slurm_and_a_new_image_digest_runs_it_again() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A tag of this test's own, moved to another image below.
    let image = format!("localhost/tf-live-boxed-{}:1", std::process::id());
    podman(&["tag", "localhost/twinflow-busybox:1", &image]);
    let _untag = Untag(image.clone());
    let yaml = BOXED.replace("IMAGE", &image);

    let first = run(dir.path(), &yaml, "boxed-1").await;
    assert_eq!(first.outcome, twinflow_engine::Outcome::Failed);
    assert_eq!((first.ran, first.failed), (3, 1), "{:?}", first.failures);
    assert_eq!(first.failures[0].0, "broken");
    assert!(
        first.failures[0]
            .1
            .starts_with("exited with status 3: inside, failing"),
        "{:?}",
        first.failures
    );
    let expr = std::fs::read_to_string(first.run_dir.join("work/sum/0/expr.txt")).unwrap();
    assert_eq!(expr, "1+2\n");
    assert_eq!(containers("tf-boxed-"), Vec::<String>::new());
    let store = twinflow_engine::StateStore::open(&dir.path().join("state")).unwrap();
    let images = store.run_images("boxed-1").unwrap();
    assert_eq!(images.len(), 3, "{images:?}");
    let digest = images[0].digest.clone();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(
        images
            .iter()
            .all(|i| i.digest == digest && i.runtime == "podman")
    );
    // The image's repository digest, else its id.
    let known = podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.RepoDigests}}",
        &image,
    ]);
    let hex = digest.trim_start_matches("sha256:");
    assert!(known.contains(hex), "{digest} is not among {known}");

    // Unchanged: the sealed results are reused.
    let again = run(dir.path(), &yaml, "boxed-2").await;
    assert_eq!((again.ran, again.cached), (0, 3), "{:?}", again.failures);

    // The tag now names another image: everything in it runs again.
    let builder = format!("tf-live-retag-{}", std::process::id());
    podman(&[
        "run",
        "--name",
        &builder,
        &image,
        "/bin/sh",
        "-c",
        "echo 2 > /marker",
    ]);
    podman(&["commit", "--quiet", &builder, &image]);
    podman(&["rm", "-f", &builder]);
    let retagged = run(dir.path(), &yaml, "boxed-3").await;
    assert_eq!(
        (retagged.ran, retagged.cached),
        (3, 0),
        "{:?}",
        retagged.failures
    );
    let images = store.run_images("boxed-3").unwrap();
    assert_ne!(images[0].digest, digest);
}

/// Removes the test's own tag (and the image committed under it) however
/// the test ends.
struct Untag(String);

impl Drop for Untag {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

#[tokio::test]
async fn a_cancelled_task_whose_script_ignores_sigterm_leaves_no_container() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"
version: 1
name: stubborn
executors: { hpc: { kind: slurm, partition: debug } }
steps:
  hang:
    executor: hpc
    container: { image: localhost/twinflow-busybox:1, runtime: podman }
    resources: { time: 5m }
    run: |
      trap '' TERM
      touch started
      sleep 300 & wait; sleep 300
"#;
    let mut handle = engine(dir.path())
        .submit(
            plan(yaml, "stubborn-1"),
            twinflow_engine::RunOptions::default(),
        )
        .await
        .unwrap();
    let started = handle.run_dir().join("work/hang/0/started");
    let since = Instant::now();
    while containers("tf-stubborn-1-").is_empty() || !started.exists() {
        assert!(since.elapsed() < Duration::from_secs(60), "never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    handle.cancel();
    while handle.next_event().await.is_some() {}
    let summary = handle.wait().await.unwrap();
    assert_eq!(summary.outcome, twinflow_engine::Outcome::Cancelled);
    // Slurm gives the job KillWait (5 s here) between SIGTERM and SIGKILL.
    let since = Instant::now();
    while !containers("tf-stubborn-1-").is_empty() {
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "the container outlived its job: {:?}",
            containers("tf-stubborn-1-")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// With a `workdir`, the jobs run on the staged copies: the container binds
/// the task directory there and the inputs' sources as uploaded there.
#[tokio::test]
async fn with_a_workdir_the_container_runs_on_the_staged_copies() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    let yaml = format!(
        r#"
version: 1
name: staged
executors: {{ hpc: {{ kind: slurm, partition: debug, container_runtime: podman, workdir: "{}" }} }}
steps:
  gen:
    executor: hpc
    for_each: {{ i: [1, 2] }}
    container: localhost/twinflow-busybox:1
    resources: {{ time: 2m }}
    run: echo ${{{{ i }}}} > ${{{{ outputs.n }}}}
    outputs: {{ n: n.txt }}
  sum:
    executor: hpc
    needs: {{ all: gen.n }}
    container: localhost/twinflow-busybox:1
    resources: {{ time: 2m }}
    run: |
      test ! -e /etc/debian_version
      pwd > where.txt
      cat ${{{{ inputs.all }}}} | paste -sd+ - > ${{{{ outputs.expr }}}}
    outputs: {{ expr: expr.txt }}
"#,
        scratch.display()
    );
    let summary = run(dir.path(), &yaml, "staged-1").await;
    assert_eq!(
        summary.outcome,
        twinflow_engine::Outcome::Succeeded,
        "{:?}",
        summary.failures
    );
    let expr = std::fs::read_to_string(summary.run_dir.join("work/sum/0/expr.txt")).unwrap();
    assert_eq!(expr, "1+2\n");
    let pwd = std::fs::read_to_string(summary.run_dir.join("work/sum/0/where.txt")).unwrap();
    assert_eq!(
        pwd.trim(),
        scratch.join("staged-1/work/sum/0").display().to_string()
    );
}
