//! The prologue in job scripts: snapshots of a plain job, an array and a
//! pack in a shared container with a prologue, and the scripts run in a
//! real `/bin/sh`: a prologue's export reaches the task (plain job, array
//! element), a failing prologue stops at its first failing command and
//! fails the task with its status and a message naming the executor, an
//! `exit 0` in it fails the task too.

use super::*;
use crate::group::{render_array_with, render_pack_with};
use crate::pack_container::PackContainer;
use crate::parse::parse_status_file;
use crate::script::{Wrapping, render_member_with, render_with};
use crate::script_tests_support::{busybox, members};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinflow_core::{Job, JobInput, SlurmConfig, TaskId};

/// Task `task`, which writes `$GREETING` to `greeting.txt`.
fn job(run: &Path, task: u32) -> Job {
    crate::script_tests_support::job(run, task, "printf '%s' \"$GREETING\" > greeting.txt")
}

const PROLOGUE: Prologue<'static> = Prologue {
    executor: "hpc",
    text: "module load python/3.12 # a comment\nexport GREETING=\"hello 'there'\"",
};

const RUN: &str = "/scratch/runs/r1";

#[test]
fn a_plain_job_runs_its_prologue_first_outside_its_container() {
    let c = busybox();
    let job = job(Path::new(RUN), 7);
    let how = Wrapping {
        container: Some(&c),
        shared: None,
        prologue: Some(&PROLOGUE),
    };
    let status = job.stdout.with_extension("status");
    insta::assert_snapshot!(render_with(&job, &SlurmConfig::default(), &status, &how).unwrap());
}

#[test]
fn an_array_runs_the_prologue_before_its_element() {
    let jobs: Vec<Job> = (0..2).map(|i| job(Path::new(RUN), i)).collect();
    let log = Path::new(RUN).join("logs/s/s.array-%A_%a.log");
    let script = render_array_with(
        &members(&jobs),
        &SlurmConfig::default(),
        &log,
        None,
        Some(&PROLOGUE),
    )
    .unwrap();
    insta::assert_snapshot!(script);
}

#[test]
fn a_pack_in_one_container_runs_the_prologue_then_starts_it_then_the_worker() {
    let mut jobs: Vec<Job> = (0..3).map(|i| job(Path::new(RUN), i)).collect();
    jobs[1].inputs.push(JobInput {
        rel: "inputs/a.nc".to_owned(),
        producer: TaskId(9),
        output: "a".to_owned(),
        source: Path::new(RUN).join("work/prep/0/a.nc"),
    });
    let shared = PackContainer::new(&jobs[0], Arc::new(busybox()));
    let members = members(&jobs);
    let how = Wrapping {
        container: None,
        shared: Some(&shared),
        prologue: Some(&PROLOGUE),
    };
    let first = &jobs[0].stdout;
    let script = render_pack_with(
        &members,
        &SlurmConfig::default(),
        Path::new("/appl/twinflow"),
        &first.with_extension("pack.json"),
        &first.with_extension("pack.log"),
        &how,
    )
    .unwrap();
    insta::assert_snapshot!(script);
    let member = render_member_with(&jobs[1], &members[1].status, &how).unwrap();
    insta::assert_snapshot!("pack_member_in_shared_container", member);
}

/// Writes `text` as `name` under `dir` and runs it with `/bin/sh` and
/// `env`; its exit code.
fn sh(dir: &Path, name: &str, text: &str, env: &[(&str, &str)]) -> Option<i32> {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::process::Command::new("/bin/sh")
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap()
        .status
        .code()
}

fn on_host(dir: &Path, task: u32) -> (Job, PathBuf) {
    let job = job(dir, task);
    std::fs::create_dir_all(&job.workdir).unwrap();
    std::fs::create_dir_all(job.stdout.parent().unwrap()).unwrap();
    let status = job.stdout.with_extension("status");
    (job, status)
}

#[test]
fn a_prologue_export_reaches_the_task_and_a_failure_fails_it_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let render = |job: &Job, status: &Path, text: &str| {
        let p = Prologue {
            executor: "hpc",
            text,
        };
        let how = Wrapping {
            prologue: Some(&p),
            ..Wrapping::default()
        };
        render_with(job, &SlurmConfig::default(), status, &how).unwrap()
    };
    // Exported by the prologue, seen by the task.
    let (job, status) = on_host(dir, 0);
    let text = render(&job, &status, "export GREETING=\"hi there\"\n");
    assert_eq!(sh(dir, "ok.sh", &text, &[]), Some(0));
    assert_eq!(
        std::fs::read_to_string(job.workdir.join("greeting.txt")).unwrap(),
        "hi there"
    );
    assert_eq!(
        std::fs::read_to_string(&status).unwrap().trim(),
        "0",
        "{text}"
    );

    // The first failing command ends it: nothing after it, no task.
    let (job, status) = on_host(dir, 1);
    let after = dir.join("after");
    let text = render(
        &job,
        &status,
        &format!("true\nsh -c 'exit 3'\ntouch {}", after.display()),
    );
    let code = sh(dir, "fail.sh", &text, &[]);
    assert_eq!(code, Some(3));
    assert_eq!(
        std::fs::read_to_string(&status)
            .ok()
            .as_deref()
            .and_then(parse_status_file),
        Some(3)
    );
    assert!(!after.exists(), "the prologue went on after a failure");
    assert!(!job.workdir.join("greeting.txt").exists(), "the task ran");

    // `exit 0` in the prologue ends it too: the task fails with 1.
    let (job, status) = on_host(dir, 2);
    let text = render(&job, &status, "exit 0");
    assert_eq!(sh(dir, "exit.sh", &text, &[]), Some(1));
    assert!(!job.workdir.join("greeting.txt").exists(), "the task ran");
}

#[test]
fn an_array_element_gets_the_prologue_export_or_its_failure() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let jobs: Vec<Job> = (0..2).map(|i| on_host(dir, i).0).collect();
    let members = members(&jobs);
    for m in &members {
        let how = Wrapping {
            prologue: Some(&PROLOGUE),
            ..Wrapping::default()
        };
        std::fs::write(
            &m.script,
            render_member_with(m.job, &m.status, &how).unwrap(),
        )
        .unwrap();
    }
    let log = dir.join("logs/s/array.log");
    let script = |text: &str| {
        let p = Prologue {
            executor: "hpc",
            text,
        };
        render_array_with(&members, &SlurmConfig::default(), &log, None, Some(&p)).unwrap()
    };
    let ok = script("export GREETING=element");
    assert_eq!(
        sh(dir, "a.sh", &ok, &[("SLURM_ARRAY_TASK_ID", "1")]),
        Some(0)
    );
    assert_eq!(
        std::fs::read_to_string(jobs[1].workdir.join("greeting.txt")).unwrap(),
        "element"
    );
    let failing = script("false");
    assert_eq!(
        sh(dir, "b.sh", &failing, &[("SLURM_ARRAY_TASK_ID", "0")]),
        Some(1)
    );
    assert!(
        !jobs[0].workdir.join("greeting.txt").exists(),
        "the task ran"
    );
    let err = std::fs::read_to_string(&jobs[0].stderr).unwrap();
    assert!(
        err.starts_with("twinflow: the prologue of executor `hpc` failed with status 1 on host ")
            && err.trim_end().ends_with("; the task did not run"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&members[0].status).unwrap().trim(),
        "1"
    );
}

#[test]
fn a_prologue_a_script_cannot_carry_is_refused() {
    let job = job(Path::new(RUN), 1);
    let p = Prologue {
        executor: "hpc",
        text: "module load a\r\nmodule load b",
    };
    let how = Wrapping {
        prologue: Some(&p),
        ..Wrapping::default()
    };
    let e = render_with(&job, &SlurmConfig::default(), Path::new("/s"), &how).unwrap_err();
    assert!(e.message().contains("prologue of executor `hpc`"), "{e}");
}
