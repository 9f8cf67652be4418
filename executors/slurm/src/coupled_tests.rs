use super::*;
use crate::script::render_member;
use crate::script_tests_support::{job, members};
use std::path::PathBuf;
use twinflow_core::{JobGroup, Launcher, PackSpec};

const RUN: &str = "/scratch/runs/r1";

/// Member `task` of group `fb` (instance 0, attempt 0) of step `step`.
fn member(run: &Path, task: u32, step: &str, cpus: u32, mem_mib: Option<u64>, time: u64) -> Job {
    let mut j = job(run, task, &format!("./{step}.py"));
    j.step = step.to_owned();
    j.name = format!("{step}[scenario=calm]");
    j.stdout = run.join(format!("logs/{step}/{task}.0.out"));
    j.stderr = run.join(format!("logs/{step}/{task}.0.err"));
    j.resources = Resources {
        cpus,
        memory_bytes: mem_mib.map(|m| m * 1024 * 1024),
        time_seconds: Some(time),
        ..Resources::default()
    };
    j.group = Some(JobGroup {
        name: "fb".to_owned(),
        dir: run.join("groups/fb/0/0"),
        members: vec!["forest".to_owned(), "beetle".to_owned()],
        member: step.to_owned(),
    });
    j
}

fn pair(run: &Path) -> Vec<Job> {
    vec![
        member(run, 0, "forest", 2, Some(512), 120),
        member(run, 1, "beetle", 1, Some(256), 300),
    ]
}

#[test]
fn a_group_is_one_job_of_one_srun_step_per_member_sized_to_it() {
    let jobs = pair(Path::new(RUN));
    let log = jobs[0].stdout.with_extension("group.log");
    let config = SlurmConfig {
        partition: Some("small".to_owned()),
        ..SlurmConfig::default()
    };
    let script = render_group(&members(&jobs), &config, &log, None).unwrap();
    insta::assert_snapshot!(script);
    let prologue = Prologue {
        executor: "hpc",
        text: "module load python",
    };
    let with = render_group(&members(&jobs), &config, &log, Some(&prologue)).unwrap();
    assert!(
        with.contains("tf_main() {\n") && with.ends_with("module load python\nset +e\ntf_main\n")
    );
}

#[test]
fn memory_for_some_members_and_not_others_is_refused_and_none_asks_for_none() {
    let mut jobs = pair(Path::new(RUN));
    jobs[1].resources.memory_bytes = None;
    let log = PathBuf::from("/scratch/g.log");
    let err = render_group(&members(&jobs), &SlurmConfig::default(), &log, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("give `resources.memory` for some and not for others"),
        "{err}"
    );
    jobs[0].resources.memory_bytes = None;
    let script = render_group(&members(&jobs), &SlurmConfig::default(), &log, None).unwrap();
    assert!(!script.contains("--mem"), "{script}");
    // A member without a time limit: the job has none either.
    jobs[0].resources.time_seconds = None;
    let script = render_group(&members(&jobs), &SlurmConfig::default(), &log, None).unwrap();
    assert!(!script.contains("--time"), "{script}");
}

fn group_step(resources: Resources, launcher: Option<Launcher>, pack: Option<u32>) -> StepSpec {
    StepSpec {
        name: "forest".into(),
        description: None,
        executor: twinflow_core::ExecutorId(0),
        for_each: Vec::new(),
        cycling: false,
        inputs: Vec::new(),
        after: Vec::new(),
        outputs: Vec::new(),
        resources,
        retries: 0,
        timeout_seconds: None,
        pack: pack.map(|tasks| PackSpec { tasks, parallel: 1 }),
        launcher,
        group: Some("fb".into()),
        env: Vec::new(),
        container: None,
        model: None,
        code: Vec::new(),
        hooks: Vec::new(),
        tasks: 0..1,
    }
}

#[test]
fn groups_run_and_members_of_ranks_gpus_or_packs_are_refused() {
    let plain = group_step(Resources::default(), None, None);
    assert_eq!(shape_refusal(&plain), None);
    assert!(
        twinflow_core::default_shape_refusal(&plain).is_some(),
        "the default refuses groups"
    );
    let ranks = Resources {
        tasks: 4,
        ..Resources::default()
    };
    let why = shape_refusal(&group_step(ranks, None, None)).unwrap_or_default();
    assert!(why.contains("one `srun` step of one process"), "{why}");
    let why = shape_refusal(&group_step(
        Resources::default(),
        Some(Launcher::Mpirun),
        None,
    ))
    .unwrap_or_default();
    assert!(why.contains("`launcher:`"), "{why}");
    let gpus = Resources {
        gpus: 1,
        ..Resources::default()
    };
    let why = shape_refusal(&group_step(gpus, None, None)).unwrap_or_default();
    assert!(why.contains("does not give gpus"), "{why}");
    let why = shape_refusal(&group_step(Resources::default(), None, Some(3))).unwrap_or_default();
    assert!(why.contains("`pack: 3`"), "{why}");
}

/// Runs a group's script with a stand-in `srun` on `PATH` (it drops its
/// options and runs the rest), as the batch shell would.
fn run_group(dir: &Path, scripts: &[&str]) -> (Option<i32>, Vec<Option<String>>) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let srun = bin.join("srun");
    std::fs::write(
        &srun,
        "#!/bin/sh\nwhile [ \"${1#--}\" != \"$1\" ]; do shift; done\nexec \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&srun, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut jobs = pair(dir);
    for (j, s) in jobs.iter_mut().zip(scripts) {
        j.script = (*s).to_owned();
        let dir = j.group.as_ref().unwrap().dir.display().to_string();
        j.env.push(("TWINFLOW_GROUP_DIR".to_owned(), dir));
        std::fs::create_dir_all(&j.workdir).unwrap();
        std::fs::create_dir_all(j.stdout.parent().unwrap()).unwrap();
    }
    let ms = members(&jobs);
    for m in &ms {
        std::fs::write(&m.script, render_member(m.job, &m.status).unwrap()).unwrap();
    }
    let path = dir.join("group.sbatch");
    let log = dir.join("group.log");
    std::fs::write(
        &path,
        render_group(&ms, &SlurmConfig::default(), &log, None).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("sh")
        .arg(&path)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    let statuses = ms
        .iter()
        .map(|m| std::fs::read_to_string(&m.status).ok())
        .collect();
    (out.status.code(), statuses)
}

#[test]
fn members_run_at_once_and_meet_in_the_group_directory() {
    let tmp = tempfile::tempdir().unwrap();
    // Each waits up to 5 s for the other's file: only concurrent members
    // both succeed.
    let meet = |me: &str, other: &str| {
        format!(
            "touch \"$TWINFLOW_GROUP_DIR/{me}\"\ni=0\nwhile [ ! -e \"$TWINFLOW_GROUP_DIR/{other}\" ]; do\n\
             i=$((i + 1)); [ $i -lt 50 ] || exit 9; sleep 0.1\ndone"
        )
    };
    let (forest, beetle) = (meet("forest", "beetle"), meet("beetle", "forest"));
    let (code, statuses) = run_group(tmp.path(), &[&forest, &beetle]);
    let dir = tmp.path().join("groups/fb/0/0");
    assert_eq!(code, Some(0));
    assert_eq!(statuses, [Some("0\n".to_owned()), Some("0\n".to_owned())]);
    assert!(dir.join("forest").exists() && dir.join("beetle").exists());
}

#[test]
fn a_failing_member_stops_the_others_steps_and_each_gets_a_status() {
    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (code, statuses) = run_group(tmp.path(), &["sleep 1; exit 4", "sleep 60"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the other member was not stopped"
    );
    assert_eq!(code, Some(1));
    assert_eq!(statuses[0].as_deref(), Some("4\n"));
    let other = statuses[1]
        .as_deref()
        .and_then(crate::parse::parse_status_file);
    assert!(matches!(other, Some(c) if c != 0), "{statuses:?}");
}

#[test]
fn a_cancel_marker_stops_that_members_step() {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = pair(tmp.path());
    let cancel = marker(&jobs[1].stdout.with_extension("status"), ".cancel");
    std::fs::create_dir_all(cancel.parent().unwrap()).unwrap();
    std::fs::write(&cancel, "").unwrap();
    let (code, statuses) = run_group(tmp.path(), &["true", "sleep 60"]);
    assert_eq!(code, Some(1));
    assert_eq!(statuses[0].as_deref(), Some("0\n"));
    assert!(
        statuses[1].as_deref().is_some_and(|s| s != "0\n"),
        "{statuses:?}"
    );
}
