//! Rendered job scripts submitted to a real Slurm (the one
//! `deploy/dev/slurm-up` starts; `scripts/test` starts it and sets
//! `TWINFLOW_TEST_SLURM=1`), their states read back with the crate's parsers.
//! Without `TWINFLOW_TEST_SLURM=1` these tests say so and return.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinflow_core::{AttemptKey, AttemptStatus, Job, Resources, SlurmConfig, TaskId};
use twinflow_executor_slurm::parse::{
    JobId, JobRef, attempt_status, parse_sbatch_parsable, parse_squeue, parse_status_file,
};
use twinflow_executor_slurm::script::render;

fn slurm_available() -> bool {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts deploy/dev/slurm-up and sets it)"
    );
    false
}

fn job(dir: &Path, task: u32, script: &str) -> Job {
    let workdir = dir.join(format!("work-{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("live[{task}]"),
        script: script.to_owned(),
        env: vec![("GREETING".into(), "hello $(touch pwned) world".into())],
        workdir,
        stdout: dir.join(format!("{task}.out")),
        stderr: dir.join(format!("{task}.err")),
        resources: Resources {
            cpus: 1,
            memory_bytes: Some(64 << 20),
            time_seconds: Some(120),
            ..Resources::default()
        },
        step: "live".to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

fn submit(dir: &Path, job: &Job) -> (JobId, std::path::PathBuf) {
    let status = dir.join(format!("{}.status", job.key.task));
    let script = render(job, &SlurmConfig::default(), &status).expect("render");
    let path = dir.join(format!("{}.sbatch", job.key.task));
    std::fs::write(&path, script).unwrap();
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .expect("run sbatch");
    assert!(
        out.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        parse_sbatch_parsable(&String::from_utf8_lossy(&out.stdout)).expect("job id"),
        status,
    )
}

/// Polls one `squeue` for all the ids until each is in a final state.
fn wait_final(ids: &[JobId]) -> Vec<AttemptStatus> {
    let list: Vec<String> = ids.iter().map(|j| j.0.to_string()).collect();
    let start = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args([
                "-h",
                "-r",
                "-t",
                "all",
                "-j",
                &list.join(","),
                "-o",
                "%i|%T|%r",
            ])
            .output()
            .expect("run squeue");
        let rows = parse_squeue(&String::from_utf8_lossy(&out.stdout));
        let statuses: Vec<Option<AttemptStatus>> = ids
            .iter()
            .map(|id| {
                rows.iter()
                    .find(|r| r.id == JobRef::Job(*id))
                    .map(|r| attempt_status(&r.state, None))
            })
            .collect();
        if statuses
            .iter()
            .all(|s| s.as_ref().is_some_and(AttemptStatus::is_final))
        {
            return statuses.into_iter().map(Option::unwrap).collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "jobs not done: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn rendered_jobs_run_on_slurm_and_record_their_own_exit_status() {
    if !slurm_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("twinflow-slurm-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ok = job(&dir, 1, "echo \"$GREETING\" > greeting.txt; echo done");
    let bad = job(&dir, 2, "echo about to fail >&2; exit 3");
    let (ok_id, ok_status) = submit(&dir, &ok);
    let (bad_id, bad_status) = submit(&dir, &bad);
    let states = wait_final(&[ok_id, bad_id]);
    // squeue's view, mapped: COMPLETED, and FAILED (the code comes from the status file).
    assert_eq!(states[0], AttemptStatus::Exited(0));
    assert!(
        !matches!(states[1], AttemptStatus::Exited(0)),
        "{:?}",
        states[1]
    );
    // The jobs' own records, which do not depend on accounting.
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert_eq!(parse_status_file(&read(&ok_status)), Some(0));
    assert_eq!(parse_status_file(&read(&bad_status)), Some(3));
    assert_eq!(read(&dir.join("1.out")), "done\n");
    assert_eq!(read(&dir.join("2.err")), "about to fail\n");
    // Environment values arrive literally, never run by a shell.
    assert_eq!(
        read(&ok.workdir.join("greeting.txt")),
        "hello $(touch pwned) world\n"
    );
    assert!(!ok.workdir.join("pwned").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// An engine whose Slurm executor polls every 300 ms, with its state in `dir`.
fn slurm_engine(dir: &Path) -> twinflow_engine::Engine {
    twinflow_engine::Engine::builder()
        .state_dir(dir.join("state"))
        .executor(
            twinflow_core::ExecutorKind::Slurm,
            twinflow_executor_slurm::SlurmFactory::new(Duration::from_millis(300)),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_workflow_runs_on_slurm_through_the_engine() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"
version: 1
name: on-slurm
executors: { hpc: { kind: slurm, partition: debug, max_jobs: 4 } }
steps:
  gen:
    executor: hpc
    for_each: { i: [1, 2, 3] }
    resources: { cpus: 1, memory: 64MiB, time: 2m }
    run: echo ${{ i }} > ${{ outputs.n }}
    outputs: { n: n.txt }
  sum:
    executor: hpc
    needs: { all: gen.n }
    run: cat ${{ inputs.all }} | paste -sd+ - > ${{ outputs.expr }}
    outputs: { expr: expr.txt }
  broken:
    executor: hpc
    run: echo "no such model" >&2; exit 3
"#;
    let summary = run_yaml(dir.path(), "slurm-live", yaml).await;
    assert_eq!(summary.outcome, twinflow_engine::Outcome::Failed);
    assert_eq!(
        (summary.ran, summary.failed),
        (4, 1),
        "{:?}",
        summary.failures
    );
    assert_eq!(summary.failures[0].0, "broken");
    assert!(
        summary.failures[0]
            .1
            .starts_with("exited with status 3: no such model"),
        "{:?}",
        summary.failures
    );
    let expr = std::fs::read_to_string(summary.run_dir.join("work/sum/0/expr.txt")).unwrap();
    assert_eq!(expr, "1+2+3\n");
    // The journal holds Slurm job ids as handles.
    let store = twinflow_engine::StateStore::open(&dir.path().join("state")).unwrap();
    let task = store.task("slurm-live", "gen[i=1]").unwrap().unwrap();
    assert!(task.handle.unwrap_or_default().starts_with("slurm:"));
}

#[tokio::test]
async fn cancelling_a_run_cancels_its_slurm_jobs() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = slurm_engine(dir.path());
    let yaml = r#"
version: 1
name: cancel-on-slurm
executors: { hpc: { kind: slurm, partition: debug } }
steps:
  wait:
    executor: hpc
    for_each: { i: [1, 2] }
    resources: { time: 5m }
    run: sleep 300
"#;
    let options = twinflow_workflow::CompileOptions {
        run_id: "slurm-cancel".to_owned(),
        ..twinflow_workflow::CompileOptions::default()
    };
    let plan = twinflow_workflow::compile_str("cancel.yaml", yaml, &options).unwrap();
    let mut run = engine
        .submit(plan, twinflow_engine::RunOptions::default())
        .await
        .unwrap();
    // Both jobs run in Slurm (not only in twinflow's submission queue).
    let mut running = 0;
    while running < 2 {
        if let Some(twinflow_engine::RunEvent::TaskRunning { .. }) = run.next_event().await {
            running += 1;
        }
    }
    run.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(60), run.wait())
        .await
        .expect("the cancelled run ends")
        .unwrap();
    assert_eq!(summary.outcome, twinflow_engine::Outcome::Cancelled);
    assert_eq!(summary.cancelled, 2);
    // Slurm agrees: the run's jobs are CANCELLED.
    let store = twinflow_engine::StateStore::open(&dir.path().join("state")).unwrap();
    let ids: Vec<String> = store
        .tasks("slurm-cancel")
        .unwrap()
        .iter()
        .filter_map(|t| t.handle.as_deref()?.split(':').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2);
    // By job id: an array whose pending elements were all cancelled
    // folds back into one record of the array job.
    let mut bases: Vec<&str> = ids.iter().map(|i| i.split('_').next().unwrap()).collect();
    bases.dedup();
    let out = Command::new("squeue")
        .args([
            "-h",
            "-r",
            "-t",
            "all",
            "-j",
            &bases.join(","),
            "-o",
            "%i|%T|%r",
        ])
        .output()
        .unwrap();
    let rows = parse_squeue(&String::from_utf8_lossy(&out.stdout));
    assert!(
        !rows.is_empty(),
        "{ids:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rows.iter()
            .all(|r| r.state == twinflow_executor_slurm::parse::SlurmState::Cancelled),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_fan_out_goes_out_as_job_arrays_and_never_exceeds_max_jobs() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Every task counts the jobs of its step that Slurm holds (each array
    // element counts, as in Slurm's own limits), itself included.
    let yaml = r#"
version: 1
name: fan-on-slurm
executors: { hpc: { kind: slurm, partition: debug, max_jobs: 4 } }
steps:
  fanarray:
    executor: hpc
    for_each: { i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }
    resources: { cpus: 1, memory: 32MiB, time: 5m }
    run: |
      squeue -h -r -t PD,R,CG,CF,S -n tf-fanarray -o %i | wc -l > ${{ outputs.seen }}
      sleep 1
    outputs: { seen: seen.txt }
"#;
    let summary = run_yaml(dir.path(), "slurm-fan", yaml).await;
    assert_eq!(
        summary.outcome,
        twinflow_engine::Outcome::Succeeded,
        "{summary:?}"
    );
    let mut most = 0;
    for i in 0..10 {
        let seen =
            std::fs::read_to_string(summary.run_dir.join(format!("work/fanarray/{i}/seen.txt")))
                .unwrap();
        most = most.max(seen.trim().parse::<u32>().unwrap());
    }
    assert!(
        (1..=4).contains(&most),
        "max_jobs 4, yet a task saw {most} jobs"
    );
    // The first four went out as one array; the journal holds element handles.
    let store = twinflow_engine::StateStore::open(&dir.path().join("state")).unwrap();
    let handles: Vec<String> = store
        .tasks("slurm-fan")
        .unwrap()
        .into_iter()
        .filter_map(|t| t.handle)
        .collect();
    assert_eq!(handles.len(), 10);
    let array_of = |h: &str| {
        h.split(':')
            .nth(1)
            .and_then(|j| j.split_once('_'))
            .map(|(a, _)| a.to_owned())
    };
    let first = array_of(&handles[0]).expect("an array element handle");
    assert_eq!(
        handles[..4]
            .iter()
            .filter(|h| array_of(h).as_deref() == Some(&first))
            .count(),
        4,
        "{handles:?}"
    );
}

#[tokio::test]
async fn an_array_throttle_caps_the_elements_that_run_at_once() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Six one-cpu tasks on a node of 16 cpus: all six would run at once.
    // Each task counts the running elements of its own array twice, and
    // records what slurmctld says the array's throttle is.
    let yaml = r#"
version: 1
name: throttled
executors: { hpc: { kind: slurm, partition: debug, array_throttle: 2 } }
steps:
  thr:
    executor: hpc
    for_each: { i: [1, 2, 3, 4, 5, 6] }
    resources: { cpus: 1, memory: 32MiB, time: 5m }
    run: |
      running() { squeue -h -r -t R -j "$SLURM_ARRAY_JOB_ID" -o %i | wc -l; }
      running > ${{ outputs.seen }}
      sleep 2
      running >> ${{ outputs.seen }}
      scontrol show job "$SLURM_JOB_ID" | tr ' ' '\n' | { grep -m 1 '^ArrayTaskThrottle=' || true; } > ${{ outputs.throttle }}
    outputs: { seen: seen.txt, throttle: throttle.txt }
"#;
    let summary = run_yaml(dir.path(), "slurm-throttle", yaml).await;
    assert_eq!(
        summary.outcome,
        twinflow_engine::Outcome::Succeeded,
        "{summary:?}"
    );
    let work = |i: usize, file: &str| {
        std::fs::read_to_string(summary.run_dir.join(format!("work/thr/{i}/{file}"))).unwrap()
    };
    let most = (0..6)
        .flat_map(|i| {
            work(i, "seen.txt")
                .lines()
                .map(|n| n.trim().parse::<u32>().unwrap())
                .collect::<Vec<_>>()
        })
        .max();
    assert!(
        matches!(most, Some(1..=2)),
        "array_throttle 2, yet a task saw {most:?} elements running"
    );
    for i in 0..6 {
        assert_eq!(
            work(i, "throttle.txt").trim(),
            "ArrayTaskThrottle=2",
            "task {i}"
        );
    }
    // All six went out as one array, its elements waiting their turn.
    let store = twinflow_engine::StateStore::open(&dir.path().join("state")).unwrap();
    let arrays: std::collections::BTreeSet<String> = store
        .tasks("slurm-throttle")
        .unwrap()
        .into_iter()
        .filter_map(|t| t.handle)
        .filter_map(|h| {
            let job = h.split(':').nth(1)?.to_owned();
            Some(job.split_once('_')?.0.to_owned())
        })
        .collect();
    assert_eq!(arrays.len(), 1, "{arrays:?}");
    let script =
        std::fs::read_to_string(summary.run_dir.join("logs/thr/0.0.array.sbatch")).unwrap();
    assert!(script.contains("\n#SBATCH --array=0-5%2\n"), "{script}");
}

/// `user@host:port` of the test sshd, when `TWINFLOW_TEST_SSH=1` too.
fn sshd_target() -> Option<String> {
    if std::env::var("TWINFLOW_TEST_SSH").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SSH is not 1 (scripts/test starts deploy/dev/sshd-up)");
        return None;
    }
    let var = |k: &str| std::env::var(k).expect("the sshd env (TWINFLOW_SSHD_*)");
    Some(format!(
        "{}@{}:{}",
        var("TWINFLOW_SSHD_USER"),
        var("TWINFLOW_SSHD_HOST"),
        var("TWINFLOW_SSHD_PORT")
    ))
}

/// Runs `yaml` on the engine and returns its summary.
async fn run_yaml(dir: &Path, run_id: &str, yaml: &str) -> twinflow_engine::RunSummary {
    let options = twinflow_workflow::CompileOptions {
        run_id: run_id.to_owned(),
        ..twinflow_workflow::CompileOptions::default()
    };
    let plan = twinflow_workflow::compile_str("live.yaml", yaml, &options).unwrap();
    let run = slurm_engine(dir)
        .submit(plan, twinflow_engine::RunOptions::default())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(120), run.wait())
        .await
        .expect("the run ends")
        .unwrap()
}

const OVER_SSH: &str = r#"
version: 1
name: over-ssh
executors: { hpc: { kind: slurm, partition: debug, ssh: "TARGET"WORKDIR } }
steps:
  gen:
    executor: hpc
    for_each: { i: [1, 2] }
    resources: { time: 2m }
    run: |
      echo ${{ i }} > ${{ outputs.n }}
      pwd > where.txt
      echo "gen ${{ i }} on stderr" >&2
    outputs: { n: n.txt }
  sum:
    executor: hpc
    needs: { all: gen.n }
    resources: { time: 2m }
    run: cat ${{ inputs.all }} | paste -sd+ - > ${{ outputs.expr }}
    outputs: { expr: expr.txt }
"#;

#[tokio::test]
async fn a_workflow_runs_on_slurm_submitted_over_ssh() {
    if !slurm_available() {
        return;
    }
    let Some(target) = sshd_target() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = OVER_SSH.replace("TARGET", &target).replace("WORKDIR", "");
    let summary = run_yaml(dir.path(), "over-ssh", &yaml).await;
    assert_eq!(
        summary.outcome,
        twinflow_engine::Outcome::Succeeded,
        "{summary:?}"
    );
    let expr = std::fs::read_to_string(summary.run_dir.join("work/sum/0/expr.txt")).unwrap();
    assert_eq!(expr, "1+2\n");
    // No workdir: the cluster shares this file system, nothing is staged.
    let pwd = std::fs::read_to_string(summary.run_dir.join("work/gen/0/where.txt")).unwrap();
    assert_eq!(
        pwd.trim(),
        summary.run_dir.join("work/gen/0").display().to_string()
    );
}

#[tokio::test]
async fn over_ssh_with_a_workdir_files_are_staged_there_and_back() {
    if !slurm_available() {
        return;
    }
    let Some(target) = sshd_target() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("cluster-scratch");
    let yaml = OVER_SSH
        .replace("TARGET", &target)
        .replace("WORKDIR", &format!(", workdir: \"{}\"", remote.display()));
    let summary = run_yaml(dir.path(), "staged", &yaml).await;
    assert_staged(&summary, &remote.join("staged"));
}

#[tokio::test]
async fn on_the_login_node_a_workdir_is_where_jobs_run() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    let yaml = OVER_SSH.replace(
        "ssh: \"TARGET\"WORKDIR",
        &format!("workdir: \"{}\"", scratch.display()),
    );
    let summary = run_yaml(dir.path(), "scratch", &yaml).await;
    assert_staged(&summary, &scratch.join("scratch"));
}

/// The run's tasks ran under `there` (the run's directory on the cluster),
/// which got their inputs, and their outputs and logs came back.
fn assert_staged(summary: &twinflow_engine::RunSummary, there: &Path) {
    assert_eq!(
        summary.outcome,
        twinflow_engine::Outcome::Succeeded,
        "{summary:?}"
    );
    let pwd = std::fs::read_to_string(summary.run_dir.join("work/gen/0/where.txt")).unwrap();
    assert_eq!(pwd.trim(), there.join("work/gen/0").display().to_string());
    let inputs = there.join("work/sum/0/inputs/all");
    assert!(inputs.join("0.txt").is_file() && inputs.join("1.txt").is_file());
    let expr = std::fs::read_to_string(summary.run_dir.join("work/sum/0/expr.txt")).unwrap();
    assert_eq!(expr, "1+2\n");
    let err = std::fs::read_to_string(summary.run_dir.join("logs/gen/1.0.err")).unwrap();
    assert_eq!(err, "gen 2 on stderr\n");
}

#[tokio::test]
async fn an_unreachable_login_node_fails_the_tasks_with_a_clear_error() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let yaml = OVER_SSH
        .replace("TARGET", "nobody@127.0.0.1:1")
        .replace("WORKDIR", "");
    let summary = run_yaml(dir.path(), "unreachable", &yaml).await;
    assert_eq!(summary.outcome, twinflow_engine::Outcome::Failed);
    let (task, reason) = &summary.failures[0];
    assert!(task.starts_with("gen"), "{task}");
    assert!(reason.contains("nobody@127.0.0.1:1"), "{reason}");
}

/// Records every update it is sent.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<twinflow_core::Update>>);

impl twinflow_core::UpdateSink for Recorder {
    fn send(&self, update: twinflow_core::Update) {
        self.0.lock().unwrap().push(update);
    }
}

impl Recorder {
    fn statuses(&self, key: AttemptKey) -> Vec<AttemptStatus> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|u| u.key == key)
            .map(|u| u.status.clone())
            .collect()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[twinflow_core::Update]) -> bool) {
        let start = Instant::now();
        while !done(&self.0.lock().unwrap()) {
            assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn slurm_spec() -> twinflow_core::ExecutorSpec {
    twinflow_core::ExecutorSpec {
        name: "hpc".to_owned(),
        backend: twinflow_core::BackendConfig::Slurm(SlurmConfig {
            partition: Some("debug".to_owned()),
            ..SlurmConfig::default()
        }),
        prologue: None,
        env: Vec::new(),
        container_runtime: None,
        bound_by: None,
    }
}

/// A process that died after `sbatch` returned but before it stored the job
/// ids: its successor, given only the `slurm-queued:` handles, finds the
/// jobs by their comments and follows them, submitting nothing again; an
/// attempt whose job is gone but left its status file is reported ended; one
/// with neither is left to run again.
#[tokio::test]
async fn jobs_whose_ids_were_never_stored_are_found_again_not_resubmitted() {
    if !slurm_available() {
        return;
    }
    use twinflow_core::{ExecutorFactory as _, RunRef};
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<Job> = (0..3)
        .map(|t| {
            let mut j = job(dir.path(), t, "sleep 2; echo ok");
            j.step = "lostids".to_owned();
            j
        })
        .collect();
    let first = Arc::new(Recorder::default());
    let factory = twinflow_executor_slurm::SlurmFactory::new(Duration::from_millis(300));
    let exec = factory.create(&slurm_spec(), first.clone()).unwrap();
    let handles: Vec<twinflow_core::Handle> = exec
        .submit_batch(jobs.clone())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(handles.iter().all(|h| h.0.starts_with("slurm-queued:")));
    first
        .wait_for("the three went out as one array", |u| {
            u.iter()
                .filter(|u| matches!(u.status, AttemptStatus::Submitted(_)))
                .count()
                == 3
        })
        .await;
    // The first process dies here: its Submitted handles never reach the
    // journal. Two more attempts were journalled as queued: one ended long
    // ago (its status file is there), one never reached Slurm.
    let ended = job(dir.path(), 7, "true");
    std::fs::write(ended.stdout.with_extension("status"), "4\n").unwrap();
    let never = job(dir.path(), 8, "true");
    let queued = |j: &Job| {
        twinflow_core::Handle(format!(
            "slurm-queued:{}",
            j.stdout.with_extension("status").display()
        ))
    };
    let mut attempts: Vec<(AttemptKey, twinflow_core::Handle)> =
        jobs.iter().zip(handles).map(|(j, h)| (j.key, h)).collect();
    attempts.push((ended.key, queued(&ended)));
    attempts.push((never.key, queued(&never)));

    let second = Arc::new(Recorder::default());
    let factory = twinflow_executor_slurm::SlurmFactory::new(Duration::from_millis(300));
    let exec = factory.create(&slurm_spec(), second.clone()).unwrap();
    let run = RunRef {
        id: "lost-ids",
        dir: dir.path(),
    };
    let mut followed = exec.reattach(run, attempts).await.unwrap();
    followed.sort();
    let mut expected: Vec<AttemptKey> = jobs.iter().map(|j| j.key).collect();
    expected.push(ended.key);
    assert_eq!(
        followed, expected,
        "all but the one that never reached Slurm"
    );
    second
        .wait_for("the three jobs end", |u| {
            u.iter()
                .filter(|u| u.status == AttemptStatus::Exited(0))
                .count()
                == 3
        })
        .await;
    assert_eq!(second.statuses(ended.key), [AttemptStatus::Exited(4)]);
    assert!(second.statuses(never.key).is_empty());
    // Slurm ran each task once: one array of three elements.
    let comment = format!(
        "twinflow:array:{}",
        jobs[0].stdout.with_extension("status").display()
    );
    let out = Command::new("squeue")
        .args(["--me", "-h", "-r", "-t", "all", "-o", "%i|%k"])
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&out.stdout);
    let ours: Vec<&str> = rows.lines().filter(|l| l.ends_with(&comment)).collect();
    assert_eq!(ours.len(), 3, "{ours:?}");
    for j in &jobs {
        assert_eq!(std::fs::read_to_string(&j.stdout).unwrap(), "ok\n");
    }
}
