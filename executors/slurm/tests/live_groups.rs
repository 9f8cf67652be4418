//! A coupling group through the Slurm executor on the real local Slurm
//! (`deploy/dev/slurm-up`; `scripts/test` starts it and sets
//! `TWINFLOW_TEST_SLURM=1`): two members that each write a file to
//! `TWINFLOW_GROUP_DIR` and wait for the other's (they deadlock unless they
//! run at once) both succeed in ONE Slurm job; a failing member stops the
//! other's step. Without `TWINFLOW_TEST_SLURM=1` these tests say so and
//! return.
#![expect(clippy::unwrap_used, reason = "test")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinflow_core::{AttemptKey, AttemptStatus, Job, JobGroup, Resources, TaskId, Update};

mod support;
use support::{Recorder, executor, slurm_available};

/// Member `step` (task `task`) of instance `fb` sharing `dir/group`.
fn member(dir: &Path, step: &str, task: u32, script: &str) -> Job {
    let workdir = dir.join(format!("work-{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    let group = dir.join("group");
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("{step}[{task}]"),
        script: script.to_owned(),
        env: vec![
            ("TWINFLOW_GROUP".to_owned(), "fb".to_owned()),
            ("TWINFLOW_GROUP_DIR".to_owned(), group.display().to_string()),
            (
                "TWINFLOW_GROUP_MEMBERS".to_owned(),
                "forest beetle".to_owned(),
            ),
            ("TWINFLOW_GROUP_MEMBER".to_owned(), step.to_owned()),
        ],
        workdir,
        stdout: dir.join(format!("{task}.out")),
        stderr: dir.join(format!("{task}.err")),
        resources: Resources {
            cpus: 1,
            memory_bytes: Some(64 << 20),
            time_seconds: Some(120),
            ..Resources::default()
        },
        step: step.to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: Some(JobGroup {
            name: "fb".to_owned(),
            dir: group,
            members: vec!["forest".to_owned(), "beetle".to_owned()],
            member: step.to_owned(),
        }),
    }
}

/// Touches its name in the group directory and waits up to 20 s for the
/// other's.
const MEET: &str = "touch \"$TWINFLOW_GROUP_DIR/$TWINFLOW_GROUP_MEMBER\"\n\
for m in $TWINFLOW_GROUP_MEMBERS; do\n\
  i=0\n\
  while [ ! -e \"$TWINFLOW_GROUP_DIR/$m\" ]; do\n\
    i=$((i + 1)); [ $i -lt 200 ] || exit 9; sleep 0.1\n\
  done\n\
done\n\
echo \"$SLURM_JOB_ID\" > job-id";

/// The Slurm job of a handle (`slurm-pack:<job>:<status>`).
fn job_of(update: &Update) -> Option<String> {
    match &update.status {
        AttemptStatus::Submitted(h) => h.0.split(':').nth(1).map(str::to_owned),
        _ => None,
    }
}

#[tokio::test]
async fn two_members_meet_in_their_directory_inside_one_slurm_job() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jobs = vec![
        member(dir.path(), "forest", 0, MEET),
        member(dir.path(), "beetle", 1, MEET),
    ];
    let recorder = Arc::new(Recorder::default());
    let exec = executor(Arc::clone(&recorder));
    assert!(
        exec.submit_batch(jobs.clone())
            .await
            .iter()
            .all(Result::is_ok)
    );
    for j in &jobs {
        let status = recorder.final_status(j.key).await;
        assert_eq!(
            status,
            AttemptStatus::Exited(0),
            "{}: {}",
            j.name,
            std::fs::read_to_string(&j.stderr).unwrap_or_default()
        );
    }
    let submitted: Vec<String> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(job_of)
        .collect();
    assert_eq!(submitted.len(), 2, "{submitted:?}");
    assert_eq!(submitted[0], submitted[1], "the members share one job");
    let ids: Vec<String> = jobs
        .iter()
        .map(|j| std::fs::read_to_string(j.workdir.join("job-id")).unwrap())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0].trim(), submitted[0]);
    exec.shutdown().await;
}

#[tokio::test]
async fn a_failing_member_stops_the_others_step() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jobs = vec![
        member(dir.path(), "forest", 0, "sleep 2; exit 4"),
        member(dir.path(), "beetle", 1, "sleep 100"),
    ];
    let recorder = Arc::new(Recorder::default());
    let exec = executor(Arc::clone(&recorder));
    let start = Instant::now();
    assert!(
        exec.submit_batch(jobs.clone())
            .await
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(
        recorder.final_status(jobs[0].key).await,
        AttemptStatus::Exited(4)
    );
    let other = recorder.final_status(jobs[1].key).await;
    assert!(
        matches!(other, AttemptStatus::Exited(c) if c != 0),
        "{other:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the other ran on"
    );
    exec.shutdown().await;
}
