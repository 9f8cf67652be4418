//! Packed jobs in containers and executor prologues on the local Slurm and
//! podman, through the `twinflow` binary (its `worker` command runs each
//! pack). Needs `TWINFLOW_TEST_SLURM=1` and `TWINFLOW_TEST_PODMAN=1`, which
//! `scripts/test` sets after `deploy/dev/slurm-up` and `deploy/dev/podman-up`.
//!
//! Containers are counted by podman's own `start` events since the test
//! began whose name starts with `tf-<run id>-`: the run id is new, so
//! nothing else can match, and a run whose tasks ran on the host (or one
//! container each) gives another count.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

#[expect(dead_code, reason = "these tests need no daemon")]
mod common;

use common::twinflow;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

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

/// podman's clock, for `podman events --since`.
fn podman_now() -> String {
    let out = Command::new("date")
        .arg("+%Y-%m-%dT%H:%M:%S%:z")
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Names of the containers started since `since` whose name starts with
/// `prefix`, one per start.
fn started(since: &str, prefix: &str) -> Vec<String> {
    let out = Command::new("podman")
        .args([
            "events",
            "--stream=false",
            "--since",
            since,
            "--filter",
            "event=start",
            "--format",
            "{{.Name}}",
        ])
        .output()
        .expect("podman events");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Containers whose name starts with `prefix`, running or not.
fn left(prefix: &str) -> Vec<String> {
    let out = Command::new("podman")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Runs `yaml` (`--no-cache`); its exit code, stderr, run directory and id.
fn run(state: &Path, yaml: &str) -> (Option<i32>, String, String, String) {
    let file = state.join("flow.yaml");
    std::fs::write(&file, yaml).expect("write workflow");
    let o = twinflow(state, &["run", "--no-cache", file.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let status = twinflow(state, &["status", "--json", "--limit", "10000"]);
    let status: serde_json::Value =
        serde_json::from_slice(&status.stdout).unwrap_or(serde_json::Value::Null);
    let run_dir = status["run"]["run_dir"]
        .as_str()
        .expect("run_dir")
        .to_owned();
    let id = status["run"]["id"].as_str().expect("run id").to_owned();
    (o.status.code(), err, run_dir, id)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).expect(path)
}

const PACK: &str = r#"
version: 1
name: boxedpack
executors: { hpc: { kind: slurm, partition: debug, container_runtime: podman } }
steps:
  many:
    executor: hpc
    for_each: { i: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19] }
    pack: 20
    container: localhost/twinflow-busybox:1
    resources: { cpus: 1, time: 1m }
    run: |
      test ! -e /etc/debian_version
      test -x /bin/busybox
      echo "${{ i }} $N $(pwd)" > ${{ outputs.o }}
      echo "err of ${{ i }}" >&2
      if [ ${{ i }} = 7 ]; then exit 5; fi
    env: { N: "n${{ i }}" }
    outputs: { o: o.txt }
"#;

#[test]
fn a_pack_of_twenty_tasks_sharing_an_image_starts_one_container() {
    if !available() {
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let since = podman_now();
    let (code, err, run_dir, id) = run(state.path(), PACK);
    assert_ne!(code, Some(0), "task 7 fails: {err}");
    assert!(err.contains("exited with status 5"), "{err}");
    let prefix = format!("tf-{id}-");
    let starts = started(&since, &prefix);
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert!(starts[0].ends_with("-pack"), "{starts:?}");
    assert_eq!(
        left(&prefix),
        Vec::<String>::new(),
        "a container outlived its job"
    );
    for i in 0..20 {
        let status = read(&format!("{run_dir}/logs/many/{i}.0.status"));
        let want = if i == 7 { "5" } else { "0" };
        assert_eq!(status.trim(), want, "task {i}");
        let e = read(&format!("{run_dir}/logs/many/{i}.0.err"));
        assert_eq!(e.trim(), format!("err of {i}"), "task {i}");
        if i == 7 {
            continue;
        }
        let o = read(&format!("{run_dir}/work/many/{i}/o.txt"));
        let words: Vec<&str> = o.split_whitespace().collect();
        assert_eq!(words[0], i.to_string());
        assert_eq!(words[1], format!("n{i}"), "its own environment");
        assert_eq!(
            words[2],
            format!("{run_dir}/work/many/{i}"),
            "its own directory"
        );
    }
    // One Slurm job, a pack: every handle is `slurm-pack:<the job>:…`.
    let status = twinflow(state.path(), &["status", "--json", "--limit", "10000"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let mut jobs = BTreeSet::new();
    for t in status["tasks"].as_array().expect("tasks") {
        let handle = t["handle"].as_str().unwrap_or_default();
        assert!(handle.starts_with("slurm-pack:"), "{t}");
        jobs.insert(handle.split(':').nth(1).unwrap_or_default().to_owned());
    }
    assert_eq!(jobs.len(), 1, "one Slurm job: {jobs:?}");
}

const TWO_IMAGES: &str = r#"
version: 1
name: twoimages
executors: { hpc: { kind: slurm, partition: debug, container_runtime: podman } }
steps:
  small:
    executor: hpc
    for_each: { i: [1, 2, 3] }
    pack: 3
    container: localhost/twinflow-busybox:1
    resources: { time: 1m }
    run: test ! -e /etc/debian_version && echo busybox > ${{ outputs.o }}
    outputs: { o: o.txt }
  debian:
    executor: hpc
    for_each: { i: [1, 2, 3] }
    pack: 3
    container: localhost/twinflow-python:1
    resources: { time: 1m }
    run: python3 -c 'print("python")' > ${{ outputs.o }}
    outputs: { o: o.txt }
"#;

#[test]
fn two_packs_in_two_images_start_one_container_each() {
    if !available() {
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let since = podman_now();
    let (code, err, run_dir, id) = run(state.path(), TWO_IMAGES);
    assert_eq!(code, Some(0), "{err}");
    let prefix = format!("tf-{id}-");
    let starts = started(&since, &prefix);
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(starts.iter().all(|n| n.ends_with("-pack")), "{starts:?}");
    assert_eq!(left(&prefix), Vec::<String>::new());
    for i in 0..3 {
        assert_eq!(
            read(&format!("{run_dir}/work/small/{i}/o.txt")),
            "busybox\n"
        );
        assert_eq!(
            read(&format!("{run_dir}/work/debian/{i}/o.txt")),
            "python\n"
        );
    }
}

const PROLOGUE: &str = r#"
version: 1
name: prologued
executors:
  hpc: { kind: slurm, partition: debug, prologue: "export FROM_PROLOGUE=\"set by $(echo prologue)\"" }
  broken: { kind: slurm, partition: debug, prologue: "echo loading; false; echo not reached" }
steps:
  alone:
    executor: hpc
    resources: { time: 2m }
    run: echo "$FROM_PROLOGUE" > ${{ outputs.o }}
    outputs: { o: o.txt }
  packed:
    executor: hpc
    for_each: { i: [1, 2] }
    pack: 2
    resources: { time: 1m }
    run: echo "$FROM_PROLOGUE" > ${{ outputs.o }}
    outputs: { o: o.txt }
  failing:
    executor: broken
    resources: { time: 2m }
    run: touch ran
"#;

#[test]
fn a_prologue_export_reaches_plain_and_packed_tasks_and_its_failure_fails_the_task() {
    if !available() {
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let (code, err, run_dir, _) = run(state.path(), PROLOGUE);
    assert_ne!(code, Some(0), "{err}");
    assert_eq!(
        read(&format!("{run_dir}/work/alone/0/o.txt")),
        "set by prologue\n"
    );
    for i in 0..2 {
        assert_eq!(
            read(&format!("{run_dir}/work/packed/{i}/o.txt")),
            "set by prologue\n"
        );
    }
    assert!(
        err.contains("exited with status 1: twinflow: the prologue of executor `broken` failed with status 1 on host "),
        "{err}"
    );
    assert!(!Path::new(&format!("{run_dir}/work/failing/0/ran")).exists());
}
