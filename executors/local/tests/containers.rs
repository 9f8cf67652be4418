//! Steps in a container on the local executor, through its real supervisor
//! process and real podman (`deploy/dev/podman-up`), skipped unless
//! `TWINFLOW_TEST_PODMAN=1`: the task directory bound and written, an input
//! read through its staged symbolic link, the environment arriving
//! literally, exit statuses unchanged, cancel and shutdown leaving no
//! container (`podman ps -a`), a restarted executor removing the container
//! of an attempt whose supervisor died, and an image that does not exist
//! refused naming the image, the runtime and the host.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{
    AttemptStatus, ContainerRuntime, ContainerSpec, Executor, Job, JobInput, Resources, RunRef,
    TaskId, Update,
};
use twinflow_executor_local::LocalExecutor;

mod support;
use support::{key, supervised};

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

fn executor() -> (LocalExecutor, mpsc::UnboundedReceiver<Update>) {
    supervised("here", Duration::from_millis(500))
}

fn spec(image: &str) -> ContainerSpec {
    ContainerSpec {
        image: image.to_owned(),
        runtime: Some(ContainerRuntime::Podman),
        options: Vec::new(),
    }
}

/// A run id no other test (or earlier run of this one) uses.
fn run_id(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("lc-{tag}-{}-{nanos}", std::process::id())
}

fn job(run_dir: &Path, run: &str, task: u32, script: &str) -> Job {
    let workdir = run_dir.join(format!("work{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    Job {
        key: key(task),
        name: format!("boxed[{task}]"),
        script: script.to_owned(),
        env: vec![
            ("TWINFLOW_RUN_ID".into(), run.to_owned()),
            ("TWINFLOW_RUN_DIR".into(), run_dir.display().to_string()),
        ],
        stdout: workdir.join("out"),
        stderr: workdir.join("err"),
        workdir,
        resources: Resources::default(),
        step: "boxed".to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

async fn final_status(rx: &mut mpsc::UnboundedReceiver<Update>, task: u32) -> AttemptStatus {
    loop {
        let update = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        if update.key == key(task) && update.status.is_final() {
            return update.status;
        }
    }
}

async fn running(rx: &mut mpsc::UnboundedReceiver<Update>, task: u32) {
    loop {
        let update = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        if update.key == key(task) && update.status == AttemptStatus::Running {
            return;
        }
        assert!(!update.status.is_final(), "{update:?}");
    }
}

/// The containers (any state) whose name starts with `prefix`.
fn containers(prefix: &str) -> Vec<String> {
    let out = Command::new("podman")
        .args(["ps", "-a", "--format={{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Waits until the attempt's container is running.
async fn container_up(name: &str) {
    for _ in 0..200 {
        let out = Command::new("podman")
            .args(["ps", "--format={{.Names}}"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|n| n == name)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("container {name} never ran");
}

#[tokio::test]
async fn a_task_in_a_container_sees_its_dir_inputs_and_env_and_keeps_its_exit_status() {
    if !enabled() {
        return;
    }
    let (exec, mut rx) = executor();
    let resolved = exec
        .resolve_image(&spec(&busybox()), &["boxed".to_owned()])
        .await
        .unwrap();
    assert!(resolved.digest.starts_with("sha256:"), "{resolved:?}");
    let dir = tempfile::tempdir().unwrap();
    let run = run_id("io");
    // An input outside the task directory, staged as a symbolic link.
    let data = tempfile::tempdir().unwrap();
    let source = data.path().join("in.csv");
    std::fs::write(&source, "1,2,3\n").unwrap();
    let literal = "it's \"quoted\" $(touch /pwned) `id` $HOME";
    let mut j = job(
        dir.path(),
        &run,
        1,
        "test ! -e /pwned; cat inputs/in.csv > copy.csv; printf '%s' \"$ODD\" > odd.txt; \
         pwd > pwd.txt; ! (echo x >> inputs/in.csv) 2>/dev/null; echo to-stderr >&2; exit 3",
    );
    j.env.push(("ODD".to_owned(), literal.to_owned()));
    std::fs::create_dir_all(j.workdir.join("inputs")).unwrap();
    std::os::unix::fs::symlink(&source, j.workdir.join("inputs/in.csv")).unwrap();
    j.inputs.push(JobInput {
        rel: "inputs/in.csv".to_owned(),
        producer: TaskId(0),
        output: "o".to_owned(),
        source: source.clone(),
    });
    let workdir = j.workdir.clone();
    exec.submit(j).await.unwrap();
    assert_eq!(final_status(&mut rx, 1).await, AttemptStatus::Exited(3));
    let read = |name: &str| std::fs::read_to_string(workdir.join(name)).unwrap();
    assert_eq!(read("copy.csv"), "1,2,3\n");
    assert_eq!(read("odd.txt"), literal);
    assert_eq!(read("pwd.txt").trim_end(), workdir.display().to_string());
    assert_eq!(read("err"), "to-stderr\n");
    assert_eq!(std::fs::read_to_string(&source).unwrap(), "1,2,3\n");
    assert_eq!(containers(&format!("tf-{run}")), Vec::<String>::new());
    exec.shutdown().await;
}

#[tokio::test]
async fn cancel_and_shutdown_leave_no_container_even_when_the_task_ignores_sigterm() {
    if !enabled() {
        return;
    }
    let (exec, mut rx) = executor();
    exec.resolve_image(&spec(&busybox()), &["boxed".to_owned()])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = run_id("stop");
    let stubborn = "trap '' TERM; sleep 600 & wait; sleep 600";
    let handle = exec
        .submit(job(dir.path(), &run, 1, stubborn))
        .await
        .unwrap();
    running(&mut rx, 1).await;
    container_up(&format!("tf-{run}-1-0")).await;
    // A cancel is also what a timeout sends.
    exec.cancel(key(1), &handle).await.unwrap();
    assert_eq!(final_status(&mut rx, 1).await, AttemptStatus::Cancelled);
    assert_eq!(containers(&format!("tf-{run}-1-")), Vec::<String>::new());

    // The engine stopping (the end of a run, Ctrl-C).
    exec.submit(job(dir.path(), &run, 2, stubborn))
        .await
        .unwrap();
    running(&mut rx, 2).await;
    container_up(&format!("tf-{run}-2-0")).await;
    exec.shutdown().await;
    assert_eq!(containers(&format!("tf-{run}-")), Vec::<String>::new());
}

#[tokio::test]
async fn a_restarted_executor_removes_the_container_of_an_attempt_it_cannot_adopt() {
    if !enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = run_id("resume");
    let (exec, mut rx) = executor();
    exec.resolve_image(&spec(&busybox()), &["boxed".to_owned()])
        .await
        .unwrap();
    exec.submit(job(dir.path(), &run, 1, "sleep 600"))
        .await
        .unwrap();
    running(&mut rx, 1).await;
    let name = format!("tf-{run}-1-0");
    container_up(&name).await;
    // The supervisor dies (named by its record file, PID-START-N.rec).
    let records = dir.path().join("local/here");
    let file = std::fs::read_dir(&records)
        .unwrap()
        .flatten()
        .next()
        .expect("a record file");
    let pid = file
        .file_name()
        .to_string_lossy()
        .split('-')
        .next()
        .unwrap()
        .to_owned();
    let record = std::fs::read_to_string(file.path()).unwrap();
    assert!(
        record.contains(&format!("C 1 0 podman {name}\n")),
        "{record}"
    );
    Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    drop(exec);
    drop(rx);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        containers(&name),
        std::slice::from_ref(&name),
        "it outlived its supervisor"
    );

    let (exec, _rx) = executor();
    let followed = exec
        .reattach(
            RunRef {
                id: &run,
                dir: dir.path(),
            },
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(followed.is_empty(), "{followed:?}");
    assert_eq!(containers(&name), Vec::<String>::new());
    exec.shutdown().await;
}

#[tokio::test]
async fn an_image_that_does_not_exist_is_refused_naming_image_runtime_and_host() {
    if !enabled() {
        return;
    }
    let (exec, _rx) = executor();
    let e = exec
        .resolve_image(
            &spec("localhost/twinflow-no-such-image:1"),
            &["boxed".to_owned()],
        )
        .await
        .unwrap_err();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        e.message.starts_with(&format!(
            "cannot run it: failed to resolve image `localhost/twinflow-no-such-image:1` with \
             podman on host `{}`",
            host.trim()
        )),
        "{e}"
    );
}
