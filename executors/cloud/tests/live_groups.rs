//! Coupling groups on the cloud executor, against the sshd of
//! `deploy/dev/sshd-up` (the "VM") and the S3 server of `deploy/dev/s3-up`:
//! the members of one instance, submitted in one batch, run at once and
//! meet in their group directory on the VM; a member that fails leaves the
//! others to the runtime's cancel, which ends them. Runs with
//! `TWINFLOW_TEST_SSH=1` and `TWINFLOW_TEST_S3=1` (`scripts/test` sets
//! them); otherwise says so and returns.
#[expect(dead_code, reason = "these tests use part of the shared helpers")]
mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::{Env, env, final_update, output, read, running};
use twinflow_core::{AttemptStatus, Executor, Job, JobGroup};

const LIMIT: Duration = Duration::from_secs(60);

/// Member `step` (task `task`) of instance 0, attempt 0, of group `fb`
/// whose members are `forest` and `beetle`, with the variables the runtime
/// sets: its group directory is the one under the run directory HERE (not
/// created: only the VM's may be used).
fn member(env: &Env, task: u32, step: &str, script: &str) -> Job {
    let mut job = env.job(task, script);
    let dir = env.run_dir().join("groups/fb/0/0");
    job.step = step.to_owned();
    job.name = format!("{step}[0]");
    job.env.extend([
        ("TWINFLOW_GROUP".to_owned(), "fb".to_owned()),
        ("TWINFLOW_GROUP_DIR".to_owned(), dir.display().to_string()),
        (
            "TWINFLOW_GROUP_MEMBERS".to_owned(),
            "forest beetle".to_owned(),
        ),
        ("TWINFLOW_GROUP_MEMBER".to_owned(), step.to_owned()),
    ]);
    job.group = Some(JobGroup {
        name: "fb".into(),
        dir,
        members: vec!["forest".into(), "beetle".into()],
        member: step.into(),
    });
    job
}

/// Writes this member's file in the group directory, then waits (up to
/// 20 s, else exit 9) for `other`'s: succeeds only if both run at once.
fn rendezvous(other: &str) -> String {
    format!(
        "d=\"$TWINFLOW_GROUP_DIR\"\n\
         echo \"$TWINFLOW_GROUP_DIR\" > seen.txt\n\
         ls -A \"$d\" >> seen.txt\n\
         echo \"from $TWINFLOW_GROUP_MEMBER\" > \"$d/$TWINFLOW_GROUP_MEMBER.txt\"\n\
         i=0\n\
         while [ ! -s \"$d/{other}.txt\" ]; do\n\
           i=$((i+1)); [ \"$i\" -le 200 ] || exit 9; sleep 0.1\n\
         done\n\
         cat \"$d/{other}.txt\" >> seen.txt"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_start_together_and_meet_in_their_directory_on_the_vm() {
    let Some(env) = env("groups") else { return };
    let (ex, mut rx) = env.executor();
    // What an earlier launch of this attempt left there is cleared.
    let vm_dir = format!("{}/{}/groups/fb/0/0", env.root, env.run_id);
    env.vm(&format!("mkdir -p {vm_dir} && touch {vm_dir}/stale"))
        .await;
    let mut forest = member(&env, 1, "forest", &rendezvous("beetle"));
    let mut beetle = member(&env, 2, "beetle", &rendezvous("forest"));
    forest.outputs = vec![output("seen", "seen.txt")];
    beetle.outputs = vec![output("seen", "seen.txt")];
    let wds = [forest.workdir.clone(), beetle.workdir.clone()];
    let handles = ex.submit_batch(vec![forest, beetle]).await;
    assert!(handles.iter().all(Result::is_ok), "{handles:?}");
    let mut ended = HashMap::new();
    for _ in 0..2 {
        let u = final_update(&mut rx, LIMIT).await;
        ended.insert(u.key.task.0, u.status);
    }
    for (task, wd) in [1, 2].into_iter().zip(&wds) {
        let seen = read(&wd.join("seen.txt"));
        assert_eq!(
            ended.get(&task),
            Some(&AttemptStatus::Exited(0)),
            "task {task}: {seen}"
        );
        let mut lines = seen.lines();
        assert_eq!(lines.next(), Some(vm_dir.as_str()), "{seen}");
        assert!(!seen.contains("stale"), "{seen}");
    }
    assert!(read(&wds[0].join("seen.txt")).ends_with("from beetle\n"));
    assert!(read(&wds[1].join("seen.txt")).ends_with("from forest\n"));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_member_leaves_the_other_to_the_runtimes_cancel() {
    let Some(env) = env("group-fail") else { return };
    let (ex, mut rx) = env.executor();
    let forest = member(&env, 3, "forest", "sleep 2; exit 4");
    let beetle = member(&env, 4, "beetle", "sleep 300");
    let beetle_key = beetle.key;
    let handles = ex.submit_batch(vec![forest, beetle]).await;
    let beetle_handle = handles[1].clone().expect("beetle submitted");
    // Both run, then forest fails while beetle still runs.
    let mut started = Vec::new();
    let failed = loop {
        let u = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("no update in time")
            .expect("sink closed");
        match u.status {
            AttemptStatus::Running => started.push(u.key.task.0),
            _ => break u,
        }
    };
    assert_eq!(failed.key.task.0, 3, "{failed:?}");
    assert_eq!(failed.status, AttemptStatus::Exited(4), "{failed:?}");
    if !started.contains(&4) {
        running(&mut rx, LIMIT).await;
    }
    // The runtime then cancels the other member: it ends.
    let ctl = beetle_handle
        .0
        .split_once('|')
        .expect("handle")
        .1
        .to_owned();
    let pid = env.vm(&format!("cat {ctl}/pid")).await.trim().to_owned();
    ex.cancel(beetle_key, &beetle_handle).await.expect("cancel");
    let u = final_update(&mut rx, LIMIT).await;
    assert_eq!(u.key, beetle_key, "{u:?}");
    assert_eq!(u.status, AttemptStatus::Cancelled, "{u:?}");
    let left = env
        .vm(&format!("ps -o stat= -g {pid} | grep -vc '^Z' || true"))
        .await;
    assert_eq!(left.trim(), "0", "beetle's processes are gone");
    env.cleanup().await;
}
