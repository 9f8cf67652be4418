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

/// A cluster that took a group job (55, comment and manifest as the
/// executor writes them) whose id the runtime never stored.
#[derive(Debug)]
struct LostGroup;

const FOREST: &str = "/run/logs/forest/0.0.status";
const BEETLE: &str = "/run/logs/beetle/4.0.status";

#[async_trait::async_trait]
impl Cluster for LostGroup {
    async fn command(&self, program: &str, args: &[String]) -> Result<String, ExecutorError> {
        Ok(match program {
            "squeue" if args.iter().any(|a| a == "--me") => {
                format!("55|twinflow:group:{FOREST}\n")
            }
            "squeue" => "55|RUNNING|None\n".to_owned(),
            _ => String::new(),
        })
    }

    async fn write_files(&self, _: Vec<(PathBuf, String)>) -> Result<(), ExecutorError> {
        Ok(())
    }

    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
        paths
            .iter()
            .map(|p| {
                (p == &crate::recover::manifest_path("group", std::path::Path::new(FOREST))).then(
                    || {
                        format!(
                            r#"{{"format":"twinflow.pack/v1","cpus_per_task":1,"tasks":[
                            {{"script":"/s/f","status":"{FOREST}"}},
                            {{"script":"/s/b","status":"{BEETLE}"}}]}}"#
                        )
                    },
                )
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Update>>);

impl UpdateSink for Recorder {
    fn send(&self, update: Update) {
        lock(&self.0).push(update);
    }
}

/// The daemon died between `sbatch` and storing the group job's id: the
/// next one finds the job by its comment, follows both members, and gives
/// the runtime their real handles (so that cancel and a later restart
/// reach the job instead of a queue it no longer has).
#[tokio::test]
async fn members_of_a_group_job_found_by_its_comment_get_their_real_handles() {
    let recorder = Arc::new(Recorder::default());
    let exec = SlurmExecutor::with_cluster(
        SlurmConfig::default(),
        recorder.clone(),
        Arc::new(LostGroup),
        Duration::from_secs(3600),
    );
    let key = |task| AttemptKey {
        task: twinflow_core::TaskId(task),
        attempt: 0,
    };
    let queued = |status: &str| Handle(format!("slurm-queued:{status}"));
    let run = twinflow_core::RunRef {
        id: "r",
        dir: std::path::Path::new("/run"),
    };
    let mut followed = exec
        .reattach(
            run,
            vec![(key(0), queued(FOREST)), (key(4), queued(BEETLE))],
        )
        .await
        .expect("reattach");
    followed.sort();
    assert_eq!(followed, [key(0), key(4)]);
    let updates = lock(&recorder.0).clone();
    for (task, status) in [(0, FOREST), (4, BEETLE)] {
        let real = AttemptStatus::Submitted(Handle(format!("slurm-pack:55:{status}")));
        assert!(
            updates
                .iter()
                .any(|u| u.key == key(task) && u.status == real),
            "task {task}: {updates:?}"
        );
    }
    exec.shutdown().await;
}
