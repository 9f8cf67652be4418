//! Steps in a container on the cloud executor, against the sshd of
//! `deploy/dev/sshd-up` (the "VM", this machine, logged in as
//! `TWINFLOW_SSHD_USER`, root there: rootful podman), the S3 server of
//! `deploy/dev/s3-up` and the podman images of `deploy/dev/podman-up`
//! (`TWINFLOW_PODMAN_BUSYBOX`). Runs with `TWINFLOW_TEST_SSH=1`,
//! `TWINFLOW_TEST_S3=1` and `TWINFLOW_TEST_PODMAN=1` (`scripts/test` sets
//! them); otherwise says so and returns.
#![expect(clippy::expect_used, reason = "tests fail with a message")]
mod support;

use std::time::Duration;
use support::{Env, final_update, output, read, running, submit};
use twinflow_core::{AttemptStatus, ContainerRuntime, ContainerSpec, Executor, TaskId};
use twinflow_store::ArtefactName;

const LIMIT: Duration = Duration::from_secs(90);

/// The test's environment with a run id of its own (container names are
/// per run, task and attempt), or `None` without podman.
fn env(test: &str) -> Option<Env> {
    if std::env::var("TWINFLOW_TEST_PODMAN").as_deref() != Ok("1") {
        eprintln!(
            "skipped: TWINFLOW_TEST_PODMAN is not 1 (scripts/test runs deploy/dev/podman-up and sets it)"
        );
        return None;
    }
    let mut env = support::env(test)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    env.run_id = format!("ctr-{}-{nanos}", std::process::id());
    Some(env)
}

fn busybox() -> ContainerSpec {
    ContainerSpec {
        image: std::env::var("TWINFLOW_PODMAN_BUSYBOX").expect("TWINFLOW_PODMAN_BUSYBOX"),
        runtime: Some(ContainerRuntime::Podman),
        options: Vec::new(),
    }
}

/// The containers on the VM named `name`, stopped ones too.
async fn containers_named(env: &Env, name: &str) -> String {
    env.vm(&format!(
        "podman ps -a --filter 'name=^{name}$' --format '{{{{.Names}}}}'"
    ))
    .await
    .trim()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_in_an_image_runs_inside_it_on_the_vm_with_its_artefacts_through_the_store() {
    let Some(env) = env("ctr-roundtrip") else {
        return;
    };
    let mut settings = env.settings(twinflow_executor_cloud::forwarded_env());
    // Outside the container: podman is on the VM, not in the image.
    settings.prologue = Some("command -v podman > prologue.txt".into());
    let (ex, mut rx) = env.executor_from(settings);
    let resolved = ex
        .resolve_image(&busybox(), &["bird".to_owned()])
        .await
        .expect("resolve on the VM");
    assert!(resolved.digest.starts_with("sha256:"), "{resolved:?}");
    assert_eq!(resolved.runtime, ContainerRuntime::Podman);

    let mut job = env.job(
        31,
        // Inside the image (no podman, no /work of the host; busybox's sh),
        // its variables inside, its input read-only, the prologue's file seen.
        "test ! -e \"$(cat prologue.txt)\"\n\
         test -n \"$TWINFLOW_RUN_ID\"\n\
         test -z \"${AWS_SECRET_ACCESS_KEY:-}\"\n\
         if echo x >> inputs/stands.csv; then echo input writable >&2; exit 9; fi\n\
         wc -l < inputs/stands.csv | tr -d ' ' > richness.csv\n\
         echo \"$TWINFLOW_RUN_ID\" > run.txt\n\
         echo in the image",
    );
    job.inputs = vec![env.input(37, "stands", "stands.csv", "a\nb\nc\n")];
    job.outputs = vec![output("richness", "richness.csv"), output("run", "run.txt")];
    let workdir = job.workdir.clone();
    let stdout = job.stdout.clone();
    submit(&ex, job).await;
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Exited(0), "{u:?}");
    assert_eq!(read(&workdir.join("richness.csv")).trim(), "3");
    assert_eq!(read(&workdir.join("run.txt")).trim(), env.run_id);
    assert_eq!(read(&stdout).trim(), "in the image");
    let name = ArtefactName::new(&env.run_id, "task-31", "richness").expect("name");
    env.store()
        .manifest(&name)
        .await
        .expect("the output went through the store");
    let remote_wd = format!("{}/{}/work/bird/31", env.root, env.run_id);
    let podman = env.vm(&format!("cat {remote_wd}/prologue.txt")).await;
    assert!(podman.trim().ends_with("/podman"), "{podman}");
    let cname = twinflow_launch::container_name(&env.run_id, TaskId(31), 0);
    assert_eq!(containers_named(&env, &cname).await, "", "--rm removed it");
    assert_eq!(
        env.ssh.connections(),
        1,
        "resolution, launch and checks over one SSH connection"
    );

    // An exit status passes through the container unchanged.
    let job = env.job(32, "echo bad >&2; exit 3");
    let stderr = job.stderr.clone();
    submit(&ex, job).await;
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Exited(3), "{u:?}");
    assert_eq!(read(&stderr).trim(), "bad");
    env.cleanup().await;
}

/// A timeout is the runtime's cancel: a task that ignores SIGTERM inside
/// its container is stopped, and no container is left on the VM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_task_leaves_no_container_behind() {
    let Some(env) = env("ctr-timeout") else {
        return;
    };
    let (ex, mut rx) = env.executor();
    ex.resolve_image(&busybox(), &["bird".to_owned()])
        .await
        .expect("resolve on the VM");
    let job = env.job(33, "trap '' TERM; sleep 300");
    let key = job.key;
    let name = twinflow_launch::container_name(&env.run_id, TaskId(33), 0);
    let handle = submit(&ex, job).await;
    running(&mut rx, LIMIT).await;
    let mut there = String::new();
    for _ in 0..100 {
        there = containers_named(&env, &name).await;
        if !there.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(there, name, "the task runs in its container");
    ex.cancel(key, &handle).await.expect("cancel");
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Cancelled, "{u:?}");
    let mut left = there;
    for _ in 0..100 {
        left = containers_named(&env, &name).await;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(left, "", "no container outlives its task");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_or_runtime_the_vm_lacks_is_refused_at_submit() {
    let Some(env) = env("ctr-missing") else {
        return;
    };
    let (ex, _rx) = env.executor();
    let host = std::env::var("TWINFLOW_SSHD_HOST").expect("host");
    let missing = ContainerSpec {
        image: "localhost/twinflow-no-such-image:1".into(),
        ..busybox()
    };
    let e = ex
        .resolve_image(&missing, &["bird".to_owned()])
        .await
        .expect_err("no such image");
    for part in ["`localhost/twinflow-no-such-image:1`", "with podman", &host] {
        assert!(e.message.contains(part), "{part}: {e}");
    }
    let vm_has = env
        .vm("command -v apptainer >/dev/null && echo yes || echo no")
        .await;
    if vm_has.trim() == "no" {
        let other = ContainerSpec {
            image: "docker://busybox:1".into(),
            runtime: Some(ContainerRuntime::Apptainer),
            options: Vec::new(),
        };
        let e = ex
            .resolve_image(&other, &["bird".to_owned()])
            .await
            .expect_err("no apptainer on the VM");
        for part in [
            "`docker://busybox:1`",
            "with apptainer",
            &host,
            "apptainer is not installed",
        ] {
            assert!(e.message.contains(part), "{part}: {e}");
        }
    }
    env.cleanup().await;
}
