//! The cloud executor against a real sshd (the "VM", this machine) and a
//! real S3 server: a task with inputs and outputs through the store, a
//! failing task, a missing output, cancellation of the remote process
//! group, and a new executor taking attempts back (see `support`).
mod support;

use std::time::Duration;
use support::{env, final_update, output, read, running, submit};
use twinflow_core::{AttemptStatus, Executor, RunRef};
use twinflow_store::ArtefactName;

const LIMIT: Duration = Duration::from_secs(60);

/// Processes of group `pgid` on the VM, zombies not counted (this
/// machine's pid 1 does not reap them).
async fn alive_in_group(env: &support::Env, pgid: &str) -> u32 {
    let out = env
        .vm(&format!("ps -o stat= -g {pgid} | grep -vc '^Z' || true"))
        .await;
    out.trim().parse().unwrap_or(u32::MAX)
}

/// Waits up to 10 s for group `pgid` to end; what is left of it.
async fn group_ends(env: &support::Env, pgid: &str) -> u32 {
    let mut left = alive_in_group(env, pgid).await;
    for _ in 0..50 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = alive_in_group(env, pgid).await;
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_task_on_the_vm_with_its_artefacts_through_the_store() {
    let Some(env) = env("roundtrip") else { return };
    let (ex, mut rx) = env.executor();
    let mut job = env.job(
        1,
        // The store's secret must not reach the task; its process group is
        // the runner's, which leads its own session.
        "test -z \"${AWS_SECRET_ACCESS_KEY:-}\"\n\
         wc -l < inputs/stands.csv | tr -d ' ' > richness.csv\n\
         mkdir -p maps && echo map > maps/a.txt\n\
         ps -o sid= -p $$ | tr -d ' ' > sid.txt\n\
         echo on the vm; echo to stderr >&2",
    );
    job.inputs = vec![env.input(7, "stands", "stands.csv", "a\nb\nc\n")];
    job.outputs = vec![output("richness", "richness.csv"), output("maps", "maps")];
    let workdir = job.workdir.clone();
    let (stdout, stderr) = (job.stdout.clone(), job.stderr.clone());
    let handle = submit(&ex, job).await;
    assert!(handle.0.starts_with("cloud:"), "{handle}");
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Exited(0), "{u:?}");

    // Outputs were fetched here, verified; logs came back.
    assert_eq!(read(&workdir.join("richness.csv")).trim(), "3");
    assert_eq!(read(&workdir.join("maps/a.txt")).trim(), "map");
    assert_eq!(read(&stdout).trim(), "on the vm");
    assert_eq!(read(&stderr).trim(), "to stderr");
    // The input went up under its producer's name, the outputs under the task's.
    let store = env.store();
    for (task, out) in [
        ("task-7", "stands"),
        ("task-1", "richness"),
        ("task-1", "maps"),
    ] {
        let name = ArtefactName::new(&env.run_id, task, out).expect("name");
        store.manifest(&name).await.expect("manifest in the store");
    }
    // On the VM: its own directory under the executor's workdir; the
    // runner led the task's session; the secrets file is gone.
    let ctl = handle.0.split_once('|').expect("handle").1.to_owned();
    let remote_wd = format!("{}/{}/work/bird/1", env.root, env.run_id);
    let sid = env.vm(&format!("cat {remote_wd}/sid.txt")).await;
    let pid = env.vm(&format!("cat {ctl}/pid")).await;
    assert_eq!(
        sid.trim(),
        pid.trim(),
        "the task runs in the runner's session"
    );
    let left = env.vm(&format!("ls -A {ctl}")).await;
    assert!(!left.contains("store.env"), "{left}");
    assert_eq!(env.ssh.connections(), 1, "every command on one connection");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_reports_its_status_and_sends_nothing() {
    let Some(env) = env("failed") else { return };
    let (ex, mut rx) = env.executor();
    let mut job = env.job(2, "echo partial > out.txt; echo bad >&2; exit 3");
    job.outputs = vec![output("out", "out.txt")];
    let stderr = job.stderr.clone();
    submit(&ex, job).await;
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Exited(3), "{u:?}");
    assert_eq!(read(&stderr).trim(), "bad");
    let name = ArtefactName::new(&env.run_id, "task-2", "out").expect("name");
    assert!(
        env.store().manifest(&name).await.is_err(),
        "a failed task's output is not sent"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_output_fails_the_task_and_names_it() {
    let Some(env) = env("missing") else { return };
    let (ex, mut rx) = env.executor();
    let mut job = env.job(3, "true");
    job.outputs = vec![output("richness", "richness.csv")];
    submit(&ex, job).await;
    let u = final_update(&mut rx, LIMIT).await;
    match &u.status {
        AttemptStatus::Error(e) => {
            assert!(e.contains("output `richness` was not written"), "{e}");
            assert!(e.contains("richness.csv"), "{e}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_the_whole_remote_process_group() {
    let Some(env) = env("cancel") else { return };
    let (ex, mut rx) = env.executor();
    let job = env.job(4, "sleep 300 & sleep 300");
    let key = job.key;
    let handle = submit(&ex, job).await;
    running(&mut rx, LIMIT).await;
    let ctl = handle.0.split_once('|').expect("handle").1.to_owned();
    let pid = env.vm(&format!("cat {ctl}/pid")).await.trim().to_owned();
    let group = alive_in_group(&env, &pid).await;
    assert!(
        group >= 3,
        "runner, sh and two sleeps in the group: {group}"
    );
    ex.cancel(key, &handle).await.expect("cancel");
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Cancelled, "{u:?}");
    assert_eq!(group_ends(&env, &pid).await, 0, "the group is gone");
    env.cleanup().await;
}

/// A twinflow killed mid-run (its executor and runtime gone without a
/// shutdown), then started again: the new executor finds one attempt
/// finished and one still running, follows both to their end, and ends an
/// attempt whose handle never reached the state store.
#[test]
fn a_new_executor_takes_back_its_attempts() {
    let Some(env) = env("reattach") else { return };
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    };
    let first = rt();
    let mut quick = env.job(5, "echo quick > out.txt");
    quick.outputs = vec![output("out", "out.txt")];
    let mut slow = env.job(6, "sleep 3; echo slow > out.txt");
    slow.outputs = vec![output("out", "out.txt")];
    let orphan = env.job(8, "sleep 300");
    let (quick_wd, slow_wd) = (quick.workdir.clone(), slow.workdir.clone());
    let keys = [quick.key, slow.key];
    let (handles, orphan_ctl) = first.block_on(async {
        let (ex, _rx) = env.executor();
        let h1 = submit(&ex, quick).await;
        let h2 = submit(&ex, slow).await;
        let h3 = submit(&ex, orphan).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let ctl = h3.0.split_once('|').expect("handle").1.to_owned();
        (vec![(keys[0], h1), (keys[1], h2)], ctl)
    });
    drop(first); // the process dies: its executor's loop with it

    let second = rt();
    second.block_on(async {
        let orphan_pid = env
            .vm(&format!("cat {orphan_ctl}/pid"))
            .await
            .trim()
            .to_owned();
        let group = alive_in_group(&env, &orphan_pid).await;
        assert!(group >= 2, "runner and sleep: {group}");
        let (ex, mut rx) = env.executor();
        let run_dir = env.run_dir();
        let run = RunRef {
            id: &env.run_id,
            dir: &run_dir,
        };
        let mut followed = ex.reattach(run, handles).await.expect("reattach");
        followed.sort();
        assert_eq!(followed, keys.to_vec());
        let mut ended = Vec::new();
        for _ in 0..2 {
            let u = final_update(&mut rx, LIMIT).await;
            assert_eq!(u.status, AttemptStatus::Exited(0), "{u:?}");
            ended.push(u.key);
        }
        ended.sort();
        assert_eq!(ended, keys.to_vec());
        assert_eq!(read(&quick_wd.join("out.txt")).trim(), "quick");
        assert_eq!(read(&slow_wd.join("out.txt")).trim(), "slow");
        assert_eq!(
            group_ends(&env, &orphan_pid).await,
            0,
            "the unrecorded attempt was ended"
        );
        env.cleanup().await;
    });
}

/// The executor's `prologue:` runs on the VM before each task, in its
/// directory, and what it exports reaches the task; a failing prologue
/// fails the attempt with a message saying so, and the task never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prologue_runs_on_the_vm_before_each_task() {
    let Some(env) = env("prologue") else { return };
    let mut settings = env.settings(twinflow_executor_cloud::forwarded_env());
    settings.prologue = Some("MODULE_LOADED=forest/2\nexport MODULE_LOADED".into());
    let (ex, mut rx) = env.executor_from(settings);
    assert!(ex.runs_prologue());
    let mut job = env.job(11, "echo \"$MODULE_LOADED\" > seen.txt");
    job.outputs = vec![output("seen", "seen.txt")];
    let workdir = job.workdir.clone();
    submit(&ex, job).await;
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.status, AttemptStatus::Exited(0), "{u:?}");
    assert_eq!(read(&workdir.join("seen.txt")).trim(), "forest/2");

    let mut settings = env.settings(twinflow_executor_cloud::forwarded_env());
    settings.prologue = Some("echo 'module: forest/9 not found' >&2; exit 4".into());
    let (ex, mut rx) = env.executor_from(settings);
    let job = env.job(12, "touch ran.txt");
    submit(&ex, job).await;
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(
        u.status,
        AttemptStatus::Error(
            "the executor's prologue exited with status 4 on the VM, so the task did not run: \
             module: forest/9 not found"
                .into()
        )
    );
    let wd = format!("{}/{}/work/bird/12", env.root, env.run_id);
    let left = env.vm(&format!("ls -A {wd}")).await;
    assert!(!left.contains("ran.txt"), "the task never ran: {left}");
    env.cleanup().await;
}
