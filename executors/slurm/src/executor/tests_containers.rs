//! `resolve_image` and the job scripts of steps in a container, on a
//! scripted cluster: the image is resolved through the cluster's command
//! layer, and a plain job, the elements of an array and the members of a
//! pack all run inside it; no runtime, or one the cluster lacks, is refused.

use super::*;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use twinflow_core::{ContainerRuntime, ContainerSpec};

const WORKER: &str = "/appl/twinflow/bin/twinflow";
const ID: &str = "2babe0e6b50b0bb98e0df0fd0a1067189e300d11121aae3f279d9f29234dc6c7";

fn job(task: u32, step: &str, pack: Option<u32>) -> Job {
    Job {
        script: "cat /etc/os-release".to_owned(),
        env: vec![("TWINFLOW_RUN_ID".to_owned(), "r1".to_owned())],
        ..super::tests_support::job(task, step, pack)
    }
}

/// Runs every job to success at once, has `podman` (with one image) unless
/// `no_podman`, and keeps the files the executor writes and the commands
/// resolution ran.
#[derive(Debug, Default)]
struct Imaged {
    no_podman: bool,
    next_id: AtomicU32,
    written: Mutex<Vec<(PathBuf, String)>>,
    ran: Mutex<Vec<Vec<String>>>,
}

#[async_trait::async_trait]
impl Cluster for Imaged {
    async fn command(&self, program: &str, args: &[String]) -> Result<String, ExecutorError> {
        match program {
            "scontrol" => Ok("MaxArraySize = 1001\n".to_owned()),
            WORKER => Ok("twinflow 0.1.0\n".to_owned()),
            "sbatch" => Ok(format!("{}\n", 100 + self.next_id.fetch_add(1, SeqCst))),
            "squeue" => Ok(super::tests_support::squeue_all_completed(args)),
            _ => Ok(String::new()),
        }
    }

    async fn write_files(&self, files: Vec<(PathBuf, String)>) -> Result<(), ExecutorError> {
        lock(&self.written).extend(files);
        Ok(())
    }

    async fn read_files(&self, paths: Vec<PathBuf>) -> Vec<Option<String>> {
        super::tests_support::status_files_zero(&paths)
    }

    async fn output(&self, argv: Vec<String>) -> std::io::Result<twinflow_launch::CommandOutput> {
        lock(&self.ran).push(argv.clone());
        let ok = |stdout: &str| twinflow_launch::CommandOutput {
            status: Some(0),
            stdout: stdout.to_owned(),
            stderr: String::new(),
        };
        match argv.first().map(String::as_str) {
            Some("id") => Ok(ok("1000\n")),
            Some("podman") if !self.no_podman => Ok(ok(&format!("{ID}\n"))),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not found",
            )),
        }
    }
}

impl Imaged {
    fn scripts(&self, suffix: &str) -> Vec<String> {
        lock(&self.written)
            .iter()
            .filter(|(p, _)| p.display().to_string().ends_with(suffix))
            .map(|(_, t)| t.clone())
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

fn executor(cluster: Imaged) -> (SlurmExecutor, Arc<Imaged>, Arc<Recorder>) {
    let cluster = Arc::new(cluster);
    let recorder = Arc::new(Recorder::default());
    let config = SlurmConfig {
        twinflow: Some(WORKER.to_owned()),
        ..SlurmConfig::default()
    };
    let exec = SlurmExecutor::with_cluster_packing(
        config,
        recorder.clone(),
        cluster.clone(),
        Duration::from_millis(200),
        Source::Given(PathBuf::from(WORKER)),
    );
    (exec, cluster, recorder)
}

fn busybox(runtime: Option<ContainerRuntime>) -> ContainerSpec {
    ContainerSpec {
        image: "localhost/twinflow-busybox:1".to_owned(),
        runtime,
        options: Vec::new(),
    }
}

#[tokio::test]
async fn plain_jobs_arrays_and_pack_members_of_a_step_in_a_container_run_inside_it() {
    let (exec, cluster, recorder) = executor(Imaged::default());
    let steps = ["p".to_owned(), "a".to_owned(), "s".to_owned()];
    let resolved = exec
        .resolve_image(&busybox(Some(ContainerRuntime::Podman)), &steps)
        .await
        .unwrap();
    assert_eq!(resolved.digest, format!("sha256:{ID}"));
    assert_eq!(resolved.run_ref, ID);
    assert!(
        lock(&cluster.ran).iter().any(|a| a.starts_with(&[
            "podman".into(),
            "image".into(),
            "inspect".into()
        ])),
        "resolved on the cluster: {:?}",
        lock(&cluster.ran)
    );
    let mut jobs: Vec<Job> = (0..2).map(|t| job(t, "p", Some(2))).collect();
    jobs.extend((2..4).map(|t| job(t, "a", None)));
    jobs.push(job(4, "s", None));
    jobs.push(job(5, "host", None));
    assert!(exec.submit_batch(jobs).await.iter().all(Result::is_ok));
    for _ in 0..300 {
        if lock(&recorder.0)
            .iter()
            .filter(|u| u.status.is_final())
            .count()
            >= 6
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let inside = |text: &str| {
        text.contains(" --pull=never ")
            && text.contains(" --userns=keep-id ")
            && text.contains(&format!(" {ID} /bin/sh -e -c 'cat /etc/os-release'"))
    };
    let single = cluster.scripts("/s/4.0.sbatch");
    assert_eq!(single.len(), 1);
    assert!(inside(&single[0]), "{}", single[0]);
    assert!(single[0].contains("--name=tf-r1-4-0"), "{}", single[0]);
    // Array elements: each its own container.
    for member in ["/a/2.0.sh", "/a/3.0.sh"] {
        let script = cluster.scripts(member);
        assert_eq!(script.len(), 1, "{member}");
        assert!(inside(&script[0]), "{member}: {}", script[0]);
    }
    // Pack members: `exec` in the pack's one container, which the pack's
    // script starts with every member's task directory bound.
    let pack = cluster.scripts(".pack.sbatch");
    assert_eq!(pack.len(), 1);
    let name = "tf-r1-0-0-pack";
    assert!(
        pack[0].contains(&format!(
            "podman run --rm --init --pull=never --log-driver=none --name={name} --detach"
        )) && pack[0].contains(&format!(" {ID} /bin/sh -c 'read _'"))
            && pack[0].contains("--volume=/run/work/p/0:/run/work/p/0 ")
            && pack[0].contains("--volume=/run/work/p/1:/run/work/p/1 ")
            && pack[0].contains(&format!("podman rm -f --time=0 {name}")),
        "{}",
        pack[0]
    );
    for member in ["/p/0.0.sh", "/p/1.0.sh"] {
        let script = cluster.scripts(member);
        assert_eq!(script.len(), 1, "{member}");
        assert!(
            script[0].contains(&format!(" {name} /bin/sh -c "))
                && script[0].contains("podman exec --workdir=/run/work/p/")
                && !script[0].contains("podman run"),
            "{member}: {}",
            script[0]
        );
    }
    let host = cluster.scripts("/host/5.0.sbatch");
    assert!(!host[0].contains("podman"), "{}", host[0]);
}

#[tokio::test]
async fn no_runtime_or_one_the_cluster_lacks_is_refused() {
    let (exec, _, _) = executor(Imaged::default());
    let e = exec
        .resolve_image(&busybox(None), &["s".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "names no container runtime for it: set the step's `container: { runtime: … }` or \
         the executor's `container_runtime`"
    );
    let (exec, _, _) = executor(Imaged {
        no_podman: true,
        ..Imaged::default()
    });
    let e = exec
        .resolve_image(&busybox(Some(ContainerRuntime::Podman)), &["s".to_owned()])
        .await
        .unwrap_err();
    assert!(
        e.message.starts_with(
            "cannot run it: failed to resolve image `localhost/twinflow-busybox:1` with podman"
        ) && e.message.contains("not installed"),
        "{}",
        e.message
    );
}
