//! `twinflow worker` shares a packed job's GPUs out (real processes, no
//! Slurm, no GPUs: the job's device variables are given): tasks that run
//! side by side each get their own devices, never the same, and no more
//! run at once than there are shares.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test with a message"
)]

use std::collections::HashMap;
use std::path::Path;
use twinflow_core::{AttemptKey, Job, Resources, TaskId};
use twinflow_executor_slurm::worker::run_pack_with;

mod pack_files;
use pack_files::{status, write_pack};

fn job(dir: &Path, task: u32, script: &str, gpus: u32) -> Job {
    let workdir = dir.join(format!("work/{task}"));
    std::fs::create_dir_all(&workdir).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("t[{task}]"),
        script: script.to_owned(),
        env: vec![("N".to_owned(), task.to_string())],
        workdir,
        stdout: dir.join(format!("logs/{task}.0.out")),
        stderr: dir.join(format!("logs/{task}.0.err")),
        resources: Resources {
            gpus,
            ..Resources::default()
        },
        step: "t".to_owned(),
        pack: Some(twinflow_core::PackSpec::sequential(4)),
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

/// Each task takes a lock per device it was given (`mkdir` fails when a
/// task running at the same time holds it), records what it was given, and
/// waits until `together` tasks have started, so the pack must run them
/// side by side.
fn script(dir: &Path, together: usize) -> String {
    format!(
        r#"for d in $(echo "$CUDA_VISIBLE_DEVICES" | tr , ' '); do mkdir {locks}/$d || exit 7; done
echo "$CUDA_VISIBLE_DEVICES $SLURM_JOB_GPUS" > {seen}/$N
touch {started}/$N
for i in $(seq 100); do [ $(ls {started} | wc -l) -ge $(( ($N / {together} + 1) * {together} )) ] && break; sleep 0.05; done
sleep 0.2
for d in $(echo "$CUDA_VISIBLE_DEVICES" | tr , ' '); do rmdir {locks}/$d; done"#,
        locks = dir.join("locks").display(),
        seen = dir.join("seen").display(),
        started = dir.join("started").display(),
    )
}

#[test]
fn tasks_side_by_side_hold_their_own_gpus() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["locks", "seen", "started"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let script = script(dir.path(), 2);
    let jobs: Vec<Job> = (0..4).map(|t| job(dir.path(), t, &script, 2)).collect();
    let manifest = write_pack(dir.path(), &jobs);
    let vars: HashMap<&str, &str> = [
        ("CUDA_VISIBLE_DEVICES", "0,1,2,3"),
        ("SLURM_JOB_GPUS", "4,5,6,7"),
    ]
    .into();
    // Eight CPUs would let all four run at once; the GPUs hold two.
    run_pack_with(&manifest, 8, |k| vars.get(k).map(|v| (*v).to_owned())).unwrap();
    assert_eq!(
        jobs.iter().map(status).collect::<Vec<_>>(),
        [Some(0); 4],
        "no task found its devices taken"
    );
    let mut seen: Vec<String> = (0..4)
        .map(|t| {
            std::fs::read_to_string(dir.path().join(format!("seen/{t}")))
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["0,1 4,5", "0,1 4,5", "2,3 6,7", "2,3 6,7"]);
}

#[test]
fn without_device_variables_gpu_tasks_run_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let order = dir.path().join("order");
    let script = format!(
        "echo start $N >> {o}; sleep 0.2; echo end $N >> {o}",
        o = order.display()
    );
    let jobs: Vec<Job> = (0..3).map(|t| job(dir.path(), t, &script, 1)).collect();
    let manifest = write_pack(dir.path(), &jobs);
    run_pack_with(&manifest, 8, |_| None).unwrap();
    assert_eq!(
        std::fs::read_to_string(&order).unwrap(),
        "start 0\nend 0\nstart 1\nend 1\nstart 2\nend 2\n"
    );
}
