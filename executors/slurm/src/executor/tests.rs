use super::*;
use twinflow_core::{Resources, TaskId};

fn job(task: u32, step: &str, time: Option<u64>, pack: Option<u32>) -> Job {
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
            time_seconds: time,
            ..Resources::default()
        },
        step: step.to_owned(),
        pack,
    }
}

/// Each unit as a letter and its task ids.
fn shapes(units: &[Unit]) -> Vec<(char, Vec<u32>)> {
    units
        .iter()
        .map(|u| match u {
            Unit::Single(j) => ('s', vec![j.key.task.0]),
            Unit::Array(js) => ('a', js.iter().map(|j| j.key.task.0).collect()),
            Unit::Pack(js) => ('p', js.iter().map(|j| j.key.task.0).collect()),
        })
        .collect()
}

#[test]
fn tasks_of_one_step_with_the_same_resources_become_arrays_chunked_by_max_array_size() {
    let mut jobs: Vec<Job> = (0..5).map(|t| job(t, "a", Some(600), None)).collect();
    jobs.push(job(5, "b", Some(600), None));
    jobs.push(job(6, "a", Some(900), None));
    let u = units(jobs, 3, true);
    assert_eq!(
        shapes(&u),
        [
            ('a', vec![0, 1, 2]),
            ('a', vec![3, 4]),
            ('s', vec![5]),
            ('s', vec![6])
        ]
    );
}

#[test]
fn pack_n_and_short_tasks_are_packed_only_with_a_worker() {
    let jobs = || -> Vec<Job> {
        let mut v: Vec<Job> = (0..5).map(|t| job(t, "p", Some(3600), Some(2))).collect();
        v.extend((5..8).map(|t| job(t, "short", Some(30), None)));
        v.push(job(8, "one", Some(30), Some(1)));
        v.push(job(9, "one", Some(30), Some(1)));
        v
    };
    assert_eq!(
        shapes(&units(jobs(), 1000, true)),
        [
            ('p', vec![0, 1]),
            ('p', vec![2, 3]),
            ('s', vec![4]),
            ('p', vec![5, 6, 7]),
            ('a', vec![8, 9]),
        ]
    );
    assert_eq!(
        shapes(&units(jobs(), 1000, false)),
        [
            ('a', vec![0, 1, 2, 3, 4]),
            ('a', vec![5, 6, 7]),
            ('a', vec![8, 9]),
        ]
    );
}

#[test]
fn automatic_packs_hold_about_ten_minutes_of_work() {
    assert_eq!(pack_size(&job(0, "s", Some(30), None), true), 20);
    assert_eq!(pack_size(&job(0, "s", Some(1), None), true), 100);
    assert_eq!(pack_size(&job(0, "s", Some(59), None), true), 10);
    assert_eq!(pack_size(&job(0, "s", Some(60), None), true), 1);
    assert_eq!(pack_size(&job(0, "s", None, None), true), 1);
    assert_eq!(pack_size(&job(0, "s", Some(30), None), false), 1);
}

#[test]
fn handles_round_trip_with_paths_holding_colons() {
    let status = Path::new("/scratch/a:b/0.0.status");
    for (job, packed, text) in [
        (
            JobRef::Job(JobId(42)),
            false,
            "slurm:42:/scratch/a:b/0.0.status",
        ),
        (
            JobRef::ArrayTask {
                array: JobId(42),
                task: 7,
            },
            false,
            "slurm:42_7:/scratch/a:b/0.0.status",
        ),
        (
            JobRef::Job(JobId(9)),
            true,
            "slurm-pack:9:/scratch/a:b/0.0.status",
        ),
    ] {
        let h = handle_of(&job, status, packed);
        assert_eq!(h.0, text);
        assert_eq!(
            parse_handle(&h),
            Some(Parsed::Job {
                job,
                status: status.to_owned(),
                packed
            })
        );
    }
    assert_eq!(
        parse_handle(&Handle("slurm-queued:/x/0.0.status".into())),
        Some(Parsed::Queued {
            status: PathBuf::from("/x/0.0.status")
        })
    );
    assert_eq!(parse_handle(&Handle("pid:1:2".into())), None);
}
