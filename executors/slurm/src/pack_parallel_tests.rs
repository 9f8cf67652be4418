use super::*;
use crate::group::{pack_manifest, render_pack};
use std::path::Path;
use twinflow_core::{AttemptKey, SlurmConfig, TaskId};

const RUN: &str = "/scratch/tf/runs/r-20261125-0001";

fn job(i: u32, pack: PackSpec, launcher: Option<Launcher>) -> Job {
    let logs = Path::new(RUN).join("logs/landis");
    Job {
        key: AttemptKey {
            task: TaskId(10 + i),
            attempt: 0,
        },
        name: format!("landis[scenario={i}]"),
        script: "landis scenario.txt".to_owned(),
        env: vec![("SCENARIO".to_owned(), i.to_string())],
        workdir: Path::new(RUN).join(format!("work/landis/{i}")),
        stdout: logs.join(format!("{i}.0.out")),
        stderr: logs.join(format!("{i}.0.err")),
        resources: Resources {
            cpus: 2,
            memory_bytes: Some(3 << 30),
            time_seconds: Some(1800),
            ..Resources::default()
        },
        step: "landis".to_owned(),
        pack: Some(pack),
        launcher,
        group: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    }
}

fn members(jobs: &[Job]) -> Vec<Member<'_>> {
    jobs.iter()
        .map(|job| Member {
            job,
            script: job.stdout.with_extension("sh"),
            status: job.stdout.with_extension("status"),
        })
        .collect()
}

fn config() -> SlurmConfig {
    SlurmConfig {
        partition: Some("largemem".to_owned()),
        account: Some("project_465000001".to_owned()),
        ..SlurmConfig::default()
    }
}

fn pack(jobs: &[Job]) -> String {
    let first = &jobs[0].stdout;
    render_pack(
        &members(jobs),
        &config(),
        Path::new("/appl/twinflow/bin/twinflow"),
        &first.with_extension("pack.json"),
        &first.with_extension("pack.log"),
    )
    .unwrap()
}

fn sbatch_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .filter(|l| {
            ["--nodes", "--ntasks", "--cpus", "--mem", "--time"]
                .iter()
                .any(|o| l.starts_with(&format!("#SBATCH {o}")))
        })
        .collect()
}

#[test]
fn parallel_pack_of_seven_tasks_three_at_a_time() {
    let spec = PackSpec {
        tasks: 7,
        parallel: 3,
    };
    let jobs: Vec<Job> = (0..7).map(|i| job(i, spec, None)).collect();
    insta::assert_snapshot!(pack(&jobs));
    insta::assert_snapshot!("parallel_pack_manifest", pack_manifest(&members(&jobs)));
}

#[test]
fn the_allocation_holds_k_tasks_for_ceil_n_over_k_task_times() {
    let spec = PackSpec {
        tasks: 21,
        parallel: 7,
    };
    let jobs: Vec<Job> = (0..21).map(|i| job(i, spec, None)).collect();
    // 21 tasks, 7 at a time: 3 waves of 30 minutes.
    assert_eq!(
        sbatch_lines(&pack(&jobs)),
        [
            "#SBATCH --nodes=1",
            "#SBATCH --ntasks=7",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --mem=21504M",
            "#SBATCH --time=0-01:30:00",
        ]
    );
    // The last pack of a step may hold fewer tasks than `parallel`: it
    // asks for no more than it runs.
    assert_eq!(
        sbatch_lines(&pack(&jobs[..2])),
        [
            "#SBATCH --nodes=1",
            "#SBATCH --ntasks=2",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --mem=6144M",
            "#SBATCH --time=0-00:30:00",
        ]
    );
    // 8 tasks, 3 at a time: 3 waves.
    assert_eq!(time_limit(&jobs[0], 8, 3), Some(5400));
    let mut untimed = jobs[0].clone();
    untimed.resources.time_seconds = None;
    assert_eq!(time_limit(&untimed, 8, 3), None);
    // A sequential pack keeps one task's resources for the sum of times.
    let seq: Vec<Job> = (0..3)
        .map(|i| job(i, PackSpec::sequential(3), None))
        .collect();
    assert_eq!(
        sbatch_lines(&pack(&seq)),
        [
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --mem=3072M",
            "#SBATCH --time=0-01:30:00",
        ]
    );
    let manifest: serde_json::Value = serde_json::from_str(&pack_manifest(&members(&seq))).unwrap();
    for field in ["parallel", "launch", "task_seconds", "time_seconds"] {
        assert!(manifest.get(field).is_none(), "{field}: {manifest}");
    }
}

#[test]
fn each_task_is_an_srun_step_or_under_launcher_none_a_process() {
    let spec = PackSpec {
        tasks: 4,
        parallel: 2,
    };
    let default = job(0, spec, None);
    assert_eq!(
        step_launch(&default),
        [
            "srun",
            "--exact",
            "--quiet",
            "--nodes=1",
            "--ntasks=1",
            "--cpus-per-task=2",
            "--mem=3072M",
            "--export=ALL"
        ]
    );
    assert_eq!(
        step_launch(&job(0, spec, Some(Launcher::Srun))),
        step_launch(&default)
    );
    assert!(step_launch(&job(0, spec, Some(Launcher::None))).is_empty());
    let jobs: Vec<Job> = (0..4).map(|i| job(i, spec, Some(Launcher::None))).collect();
    let manifest: serde_json::Value =
        serde_json::from_str(&pack_manifest(&members(&jobs))).unwrap();
    assert_eq!(manifest["parallel"], 2);
    assert!(manifest.get("launch").is_none(), "{manifest}");
    assert_eq!(manifest["task_seconds"], 1800);
    assert_eq!(manifest["time_seconds"], 3600);
}

fn step(
    resources: Resources,
    launcher: Option<Launcher>,
    pack: PackSpec,
) -> twinflow_core::StepSpec {
    twinflow_core::StepSpec {
        name: "landis".to_owned(),
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
        pack: Some(pack),
        launcher,
        group: None,
        env: Vec::new(),
        container: None,
        model: None,
        code: Vec::new(),
        hooks: Vec::new(),
        tasks: 0..1,
    }
}

#[test]
fn the_executor_runs_parallel_packs_of_one_process_tasks_and_refuses_the_rest() {
    let spec = PackSpec {
        tasks: 12,
        parallel: 4,
    };
    let one = Resources::default();
    for launcher in [None, Some(Launcher::None), Some(Launcher::Srun)] {
        let s = step(one.clone(), launcher, spec);
        assert!(
            twinflow_core::default_shape_refusal(&s).is_some(),
            "the default refuses {launcher:?}"
        );
        assert_eq!(crate::ranks::shape_refusal(&s), None, "{launcher:?}");
    }
    let ranks = Resources {
        tasks: 4,
        ..Resources::default()
    };
    let gpus = Resources {
        gpus: 1,
        ..Resources::default()
    };
    for (s, words) in [
        (step(ranks, None, spec), "several ranks"),
        (step(one.clone(), Some(Launcher::Mpirun), spec), "mpirun"),
        (step(gpus, None, spec), "GPUs"),
    ] {
        let why = crate::ranks::shape_refusal(&s).unwrap();
        assert!(
            why.contains(words) && why.contains("`pack: {tasks: 12, parallel: 4}`"),
            "{why}"
        );
    }
    // A one-rank `launcher: srun` task is packed only in a parallel pack.
    assert!(packable(&one, Some(Launcher::Srun), Some(spec)));
    assert!(!packable(
        &one,
        Some(Launcher::Srun),
        Some(PackSpec::sequential(12))
    ));
}
