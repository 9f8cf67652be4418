//! What the scripted-cluster tests share: a task's job (`true`, no env), and
//! the cluster's answers: an `squeue -j LIST` where every job (and eight
//! array elements of each) has completed, and status files that all say 0.

use std::path::PathBuf;
use twinflow_core::{AttemptKey, Job, Resources, TaskId};

/// Task `task` of `step`, attempt 0, running `true` in
/// `/run/work/STEP/TASK`, packed by `pack`.
pub(super) fn job(task: u32, step: &str, pack: Option<u32>) -> Job {
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("{step}[{task}]"),
        script: "true".to_owned(),
        env: Vec::new(),
        workdir: PathBuf::from(format!("/run/work/{step}/{task}")),
        stdout: PathBuf::from(format!("/run/logs/{step}/{task}.0.out")),
        stderr: PathBuf::from(format!("/run/logs/{step}/{task}.0.err")),
        resources: Resources {
            time_seconds: Some(600),
            ..Resources::default()
        },
        step: step.to_owned(),
        pack: pack.map(twinflow_core::PackSpec::sequential),
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

/// `squeue` output for the job list after `-j`: each job and its elements
/// 0..8 COMPLETED.
pub(super) fn squeue_all_completed(args: &[String]) -> String {
    let ids = args
        .iter()
        .skip_while(|a| *a != "-j")
        .nth(1)
        .cloned()
        .unwrap_or_default();
    let mut out = String::new();
    for id in ids.split(',') {
        out.push_str(&format!("{id}|COMPLETED|None\n"));
        for i in 0..8 {
            out.push_str(&format!("{id}_{i}|COMPLETED|None\n"));
        }
    }
    out
}

/// Every `.status` file says exit 0; other files are missing.
pub(super) fn status_files_zero(paths: &[PathBuf]) -> Vec<Option<String>> {
    paths
        .iter()
        .map(|p| {
            p.extension()
                .is_some_and(|e| e == "status")
                .then(|| "0\n".to_owned())
        })
        .collect()
}
