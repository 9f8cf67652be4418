//! Snapshots of every rendered shape (srun, mpirun, none, whole nodes,
//! ranks per node, arrays of MPI tasks), the launch line run by `sh` with
//! stand-ins for `srun` and `mpirun`, and the shapes the executor refuses.

use super::*;
use crate::group::render_array;
use crate::script::{render, render_member};
use crate::script_tests_support::{busybox, job as base_job, members};
use std::path::{Path, PathBuf};
use twinflow_core::{ContainerRuntime, ContainerSpec, SlurmConfig};

const RUN: &str = "/scratch/tf/runs/r-20261201-0001";

fn job(task: u32, tasks: u32, launcher: Option<Launcher>) -> Job {
    let mut j = base_job(
        Path::new(RUN),
        task,
        "./ocean --ranks \"$SLURM_NTASKS\" > \"out-$SLURM_PROCID.txt\"",
    );
    j.resources = Resources {
        cpus: 2,
        tasks,
        time_seconds: Some(600),
        ..Resources::default()
    };
    j.launcher = launcher;
    j
}

fn rendered(j: &Job) -> String {
    render(
        j,
        &SlurmConfig::default(),
        &j.stdout.with_extension("status"),
    )
    .unwrap()
}

#[test]
fn several_ranks_default_to_srun_one_step_with_each_ranks_cpus() {
    let j = job(1, 4, None);
    let script = rendered(&j);
    assert!(script.contains("\n#SBATCH --ntasks=4\n#SBATCH --cpus-per-task=2\n"));
    assert!(script.contains(" && srun --ntasks=4 --cpus-per-task=2 --export=ALL /bin/sh -e -c "));
    insta::assert_snapshot!(script);
}

#[test]
fn mpirun_starts_the_ranks_under_the_allocation() {
    let script = rendered(&job(2, 4, Some(Launcher::Mpirun)));
    assert!(script.contains(" && mpirun -np 4 /bin/sh -e -c "));
    insta::assert_snapshot!(script);
}

#[test]
fn launcher_none_runs_the_command_once_with_the_allocation() {
    let mut j = job(3, 8, Some(Launcher::None));
    j.resources.nodes = Some(2);
    let script = rendered(&j);
    assert!(script.contains("\n#SBATCH --nodes=2\n#SBATCH --ntasks=8\n"));
    let run = script.lines().find(|l| l.starts_with("cd -- ")).unwrap();
    assert!(run.contains(" && /bin/sh -e -c "), "{run}");
    assert!(!script.contains("srun") && !script.contains("mpirun"));
    insta::assert_snapshot!(script);
}

#[test]
fn whole_nodes_and_ranks_per_node() {
    let mut j = job(4, 8, None);
    j.resources.nodes = Some(2);
    j.resources.tasks_per_node = Some(4);
    j.resources.exclusive = true;
    j.resources.memory_bytes = Some(4 << 30);
    let script = rendered(&j);
    assert!(script.contains(
        "\n#SBATCH --nodes=2\n#SBATCH --ntasks=8\n#SBATCH --ntasks-per-node=4\n#SBATCH --exclusive\n#SBATCH --cpus-per-task=2\n"
    ));
    insta::assert_snapshot!(script);
}

#[test]
fn exclusive_alone_is_a_whole_node_for_one_process() {
    let mut j = job(5, 1, None);
    j.resources.exclusive = true;
    let script = rendered(&j);
    assert!(script.contains("\n#SBATCH --exclusive\n"));
    assert!(!script.contains("--ntasks"), "{script}");
    assert!(!script.contains("srun"), "{script}");
    insta::assert_snapshot!(script);
}

#[test]
fn one_process_renders_as_before() {
    let script = rendered(&base_job(Path::new(RUN), 6, "echo hi"));
    for word in ["--nodes", "--ntasks", "--exclusive", "srun", "mpirun"] {
        assert!(!script.contains(word), "{word} in {script}");
    }
}

#[test]
fn an_array_of_mpi_tasks_sizes_each_element_and_launches_in_each_member() {
    let jobs: Vec<Job> = (0..3)
        .map(|i| job(10 + i, 4, Some(Launcher::Mpirun)))
        .collect();
    let m = members(&jobs);
    let log = Path::new(RUN).join("logs/s/s.array-%A_%a.log");
    let array = render_array(&m, &SlurmConfig::default(), &log, None).unwrap();
    assert!(array.contains("\n#SBATCH --ntasks=4\n#SBATCH --cpus-per-task=2\n"));
    insta::assert_snapshot!("array_of_mpi_tasks", array);
    let member = render_member(&jobs[1], &m[1].status).unwrap();
    assert!(member.contains(" && mpirun -np 4 /bin/sh -e -c "));
    insta::assert_snapshot!("array_member_of_mpi_task", member);
}

#[test]
fn zero_ranks_or_nodes_are_refused_naming_the_task() {
    for (tasks, nodes, per_node, what) in [
        (0, None, None, "0 ranks"),
        (2, Some(0), None, "0 nodes"),
        (2, None, Some(0), "0 ranks per node"),
    ] {
        let mut j = job(7, tasks, None);
        j.resources.nodes = nodes;
        j.resources.tasks_per_node = per_node;
        let e = render(&j, &SlurmConfig::default(), Path::new("/s"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(what) && e.contains("s[i=7]"), "{e}");
    }
}

#[test]
fn a_launcher_in_a_container_is_refused_by_the_script_too() {
    let j = job(8, 2, None);
    let c = busybox();
    let e = crate::script::render_in(&j, &SlurmConfig::default(), Path::new("/s"), Some(&c))
        .unwrap_err()
        .to_string();
    assert!(e.contains("s[i=8]") && e.contains("launcher: srun"), "{e}");
    let mut none = j.clone();
    none.launcher = Some(Launcher::None);
    crate::script::render_in(&none, &SlurmConfig::default(), Path::new("/s"), Some(&c))
        .expect("launcher none runs once inside the container");
}

fn step(resources: Resources, launcher: Option<Launcher>) -> StepSpec {
    StepSpec {
        name: "ocean".into(),
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
        pack: None,
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
fn the_executor_accepts_ranks_nodes_and_launchers_the_default_refuses() {
    let shapes = [
        (
            Resources {
                tasks: 4,
                ..Resources::default()
            },
            None,
        ),
        (
            Resources {
                tasks: 8,
                nodes: Some(2),
                tasks_per_node: Some(4),
                exclusive: true,
                ..Resources::default()
            },
            Some(Launcher::Mpirun),
        ),
        (Resources::default(), Some(Launcher::Srun)),
        (
            Resources {
                tasks: 4,
                ..Resources::default()
            },
            Some(Launcher::None),
        ),
    ];
    for (r, l) in shapes {
        let s = step(r, l);
        assert!(
            twinflow_core::default_shape_refusal(&s).is_some(),
            "the default refuses {s:?}"
        );
        assert_eq!(shape_refusal(&s), None, "{s:?}");
    }
    assert_eq!(shape_refusal(&step(Resources::default(), None)), None);
}

#[test]
fn parallel_tasks_in_a_pack_or_launched_in_a_container_are_refused() {
    let four = Resources {
        tasks: 4,
        ..Resources::default()
    };
    let mut packed = step(four.clone(), None);
    packed.pack = Some(twinflow_core::PackSpec {
        tasks: 8,
        parallel: 1,
    });
    let why = shape_refusal(&packed).unwrap();
    assert!(why.contains("pack: 8") && why.contains("ranks"), "{why}");
    // `pack: 1` is no pack.
    packed.pack = Some(twinflow_core::PackSpec {
        tasks: 1,
        parallel: 1,
    });
    assert_eq!(shape_refusal(&packed), None);

    let mut contained = step(four, None);
    contained.container = Some(ContainerSpec {
        image: "ocean:1".to_owned(),
        runtime: Some(ContainerRuntime::Apptainer),
        options: Vec::new(),
    });
    let why = shape_refusal(&contained).unwrap();
    assert!(
        why.contains("launcher: srun") && why.contains("container"),
        "{why}"
    );
    contained.launcher = Some(Launcher::Mpirun);
    assert!(
        shape_refusal(&contained)
            .unwrap()
            .contains("launcher: mpirun")
    );
    contained.launcher = Some(Launcher::None);
    assert_eq!(shape_refusal(&contained), None);

    let mut zero = step(Resources::default(), None);
    zero.resources.tasks = 0;
    assert!(shape_refusal(&zero).unwrap().contains("0 ranks"));
}

#[test]
fn the_shape_reads_in_messages() {
    let mut j = job(9, 2, None);
    j.resources.nodes = Some(2);
    assert_eq!(
        describe(&j).as_deref(),
        Some("2 nodes, 2 ranks of 2 cpus, launcher srun")
    );
    assert_eq!(describe(&base_job(Path::new(RUN), 1, "true")), None);
}

/// A stand-in for `srun` or `mpirun` on `PATH`: runs the command after
/// its options once per rank (`SLURM_PROCID` or `OMPI_COMM_WORLD_RANK`
/// set) and exits with the highest status, as srun does.
fn fake_launcher(bin: &Path, name: &str, rank_var: &str) {
    let text = format!(
        "#!/bin/sh\n\
         n=1\n\
         while [ $# -gt 0 ]; do case \"$1\" in\n\
         --ntasks=*) n=${{1#--ntasks=}}; shift ;;\n\
         -np) n=$2; shift 2 ;;\n\
         -*) shift ;;\n\
         *) break ;;\n\
         esac; done\n\
         worst=0; i=0\n\
         while [ $i -lt $n ]; do {rank_var}=$i \"$@\"; s=$?; [ $s -gt $worst ] && worst=$s; i=$((i+1)); done\n\
         echo \"{name} ran $n\" >&2\n\
         exit $worst\n"
    );
    let path = bin.join(name);
    std::fs::write(&path, text).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .status()
        .unwrap();
}

/// Runs the rendered script of `j` under `sh` with the stand-ins first on
/// `PATH`; its exit code and status file.
fn run_with_fakes(dir: &Path, j: &Job) -> (Option<i32>, String) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    fake_launcher(&bin, "srun", "SLURM_PROCID");
    fake_launcher(&bin, "mpirun", "OMPI_COMM_WORLD_RANK");
    let status = dir.join("status");
    let script = dir.join("job.sh");
    std::fs::write(
        &script,
        render(j, &SlurmConfig::default(), &status).unwrap(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .arg(&script)
        .env("PATH", path)
        .output()
        .unwrap();
    (
        out.status.code(),
        std::fs::read_to_string(&status).unwrap_or_default(),
    )
}

#[test]
fn the_script_runs_once_per_rank_and_the_job_records_the_launchers_status() {
    let dir = tempfile::tempdir().unwrap();
    for (launcher, var) in [
        (Launcher::Srun, "SLURM_PROCID"),
        (Launcher::Mpirun, "OMPI_COMM_WORLD_RANK"),
    ] {
        let work: PathBuf = dir.path().join(format!("work-{}", launcher.as_str()));
        std::fs::create_dir_all(&work).unwrap();
        let mut j = job(11, 3, Some(launcher));
        j.workdir = work.clone();
        j.env.push(("VALUE".to_owned(), "it's $(nope)".to_owned()));
        j.script =
            format!("printf '%s' \"$VALUE\" > \"rank-${var}\"\n[ \"${var}\" != 1 ] || exit 5");
        let (code, status) = run_with_fakes(dir.path(), &j);
        assert_eq!(code, Some(5), "{launcher:?}");
        assert_eq!(status, "5\n", "written once, by the batch shell");
        for rank in 0..3 {
            let seen = std::fs::read_to_string(work.join(format!("rank-{rank}"))).unwrap();
            assert_eq!(seen, "it's $(nope)", "rank {rank} under {launcher:?}");
        }
    }
}
