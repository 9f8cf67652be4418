//! A workflow whose steps run in a container on the local executor, with
//! real podman (`deploy/dev/podman-up`), skipped unless
//! `TWINFLOW_TEST_PODMAN=1`: the output of one step reaches the next
//! through the binds, the image's digest is recorded (`image-resolved`)
//! and keys the cache, and no container is left, also after a timeout of a
//! task that ignores SIGTERM.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test with a message"
)]

use twinflow_engine::RunOptions;
use twinflow_workflow::CompileOptions;

mod common;
use common::Fixture;

fn enabled() -> bool {
    if std::env::var("TWINFLOW_TEST_PODMAN").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: needs TWINFLOW_TEST_PODMAN=1 and deploy/dev/podman-up");
    false
}

fn busybox() -> String {
    std::env::var("TWINFLOW_PODMAN_BUSYBOX")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "localhost/twinflow-busybox:1".into())
}

fn plan(run_id: &str) -> twinflow_core::Plan {
    let yaml = "
version: 1
name: boxed-local
executors: { here: { kind: local, container_runtime: podman } }
steps:
  make:
    executor: here
    container: IMAGE
    run: test -e /bin/busybox && echo 21 > ${{ outputs.n }}
    outputs: { n: n.txt }
  double:
    executor: here
    container: IMAGE
    needs: { n: make.n }
    run: echo $(( $(cat ${{ inputs.n }}) * 2 )) > ${{ outputs.d }}
    outputs: { d: d.txt }
"
    .replace("IMAGE", &busybox());
    let options = CompileOptions {
        run_id: run_id.to_owned(),
        ..CompileOptions::default()
    };
    twinflow_workflow::compile_str("boxed.yaml", &yaml, &options).unwrap()
}

/// The text of the first file named `name` under `dir`.
fn find(dir: &std::path::Path, name: &str) -> Option<String> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(text) = find(&path, name) {
                return Some(text);
            }
        } else if entry.file_name() == name {
            return std::fs::read_to_string(path).ok();
        }
    }
    None
}

#[tokio::test]
async fn steps_in_a_container_run_in_it_record_its_digest_and_leave_no_container() {
    if !enabled() {
        return;
    }
    let f = Fixture::new();
    let run_id = format!("boxed-{}", std::process::id());
    let (summary, _) = f.run_all(plan(&run_id), RunOptions::default()).await;
    assert_eq!((summary.ran, summary.failed), (2, 0), "{summary:?}");
    assert!(summary.run_dir.starts_with(f.path("state")), "{summary:?}");
    assert_eq!(find(&summary.run_dir, "d.txt").as_deref(), Some("42\n"));
    let id = std::process::Command::new("podman")
        .args([
            "image",
            "inspect",
            "--format=sha256:{{.Id}}{{range .RepoDigests}} {{.}}{{end}}",
            &busybox(),
        ])
        .output()
        .unwrap();
    let id = String::from_utf8(id.stdout).unwrap();
    let images = f.engine.read_state(|s| s.run_images(&run_id).unwrap());
    assert_eq!(images.len(), 2, "{images:?}");
    for image in &images {
        assert_eq!(image.runtime, "podman");
        // The image's id or one of its repository digests (`NAME@sha256:…`).
        let known = id
            .split_whitespace()
            .any(|d| d == image.digest || d.ends_with(&format!("@{}", image.digest)));
        assert!(known && image.digest.len() == 71, "{image:?} not in {id}");
    }
    let again = format!("{run_id}-again");
    let (cached, _) = f.run_all(plan(&again), RunOptions::default()).await;
    assert_eq!((cached.ran, cached.cached), (0, 2), "same image: cached");
    let left = std::process::Command::new("podman")
        .args(["ps", "-a", "--format={{.Names}}"])
        .output()
        .unwrap();
    let left = String::from_utf8(left.stdout).unwrap();
    assert!(
        !left.lines().any(|n| n.starts_with(&format!("tf-{run_id}"))),
        "{left}"
    );
}

#[tokio::test]
async fn a_timeout_removes_the_container_of_a_task_that_ignores_sigterm() {
    if !enabled() {
        return;
    }
    let f = Fixture::new();
    let run_id = format!("boxed-timeout-{}", std::process::id());
    let yaml = "
version: 1
name: boxed-timeout
executors: { here: { kind: local } }
steps:
  hang:
    executor: here
    container: { image: IMAGE, runtime: podman }
    timeout: 3s
    run: trap '' TERM; sleep 600 & wait; sleep 600
"
    .replace("IMAGE", &busybox());
    let options = CompileOptions {
        run_id: run_id.clone(),
        ..CompileOptions::default()
    };
    let plan = twinflow_workflow::compile_str("hang.yaml", &yaml, &options).unwrap();
    let started = std::time::Instant::now();
    let (summary, _) = f.run_all(plan, RunOptions::default()).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(summary.failures[0].1, "timed out after 3 s and was killed");
    assert!(summary.run_dir.starts_with(f.path("state")), "{summary:?}");
    let left = std::process::Command::new("podman")
        .args(["ps", "-a", "--format={{.Names}}"])
        .output()
        .unwrap();
    let left = String::from_utf8(left.stdout).unwrap();
    assert!(
        !left
            .lines()
            .any(|n| n.starts_with(&format!("tf-{run_id}-"))),
        "{left}"
    );
}
