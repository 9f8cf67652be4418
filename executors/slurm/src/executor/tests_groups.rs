//! How the members of coupling-group instances become submissions.

use super::tests::{job, shapes};
use super::*;
use twinflow_core::JobGroup;

fn member(task: u32, step: &str, instance: u32, attempt: u32) -> Job {
    let mut j = job(task, step, Some(30), None);
    j.group = Some(JobGroup {
        name: "fb".to_owned(),
        dir: PathBuf::from(format!("/run/groups/fb/{instance}/{attempt}")),
        members: vec!["forest".to_owned(), "beetle".to_owned()],
        member: step.to_owned(),
    });
    j
}

#[test]
fn the_members_of_an_instance_go_out_as_one_job_never_packed_or_arrayed() {
    let worker = PathBuf::from("/bin/twinflow");
    let jobs = vec![
        member(0, "forest", 0, 0),
        member(1, "forest", 1, 0),
        job(9, "lone", Some(30), None),
        member(4, "beetle", 0, 0),
        member(5, "beetle", 1, 0),
        member(6, "forest", 0, 1),
        job(10, "lone", Some(30), None),
    ];
    // Short tasks of one step are packed, but members never are; each
    // instance attempt is one job of its own.
    assert_eq!(
        shapes(&units(jobs, 1000, Some(&worker))),
        [
            ('g', vec![0, 4]),
            ('g', vec![1, 5]),
            ('g', vec![6]),
            ('p', vec![9, 10]),
        ]
    );
    assert_eq!(Unit::Group(vec![member(0, "forest", 0, 0)]).cost(), 1);
    assert_eq!(pack_size(&member(0, "forest", 0, 0), true), 1);
}
