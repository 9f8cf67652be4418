use super::*;
use crate::spec::{SPEC_FORMAT, SpecContainer, SpecFile};

fn spec(dir: &Path, script: &str) -> TaskSpec {
    TaskSpec {
        format: SPEC_FORMAT.to_owned(),
        name: "bird[1]".into(),
        store: "s3://b/p".into(),
        run: "run-1".into(),
        script: script.into(),
        env: vec![("TWINFLOW_RUN_ID".into(), "run-1".into())],
        hidden: Vec::new(),
        workdir: dir.join("work").display().to_string(),
        stdout: dir.join("1.0.out").display().to_string(),
        stderr: dir.join("1.0.err").display().to_string(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        store_patience_s: 1,
        container: None,
        prologue: None,
        mpirun: 0,
    }
}

fn busybox() -> SpecContainer {
    SpecContainer {
        runtime: "podman".into(),
        image: "localhost/twinflow-busybox:1".into(),
        digest: format!("sha256:{}", "a".repeat(64)),
        run_ref: "b".repeat(64),
        options: vec!["--memory=1g".into()],
        name: "tf-run-1-1-0".into(),
        uid: 0,
        gid: 0,
    }
}

fn words(p: &Planned) -> Vec<String> {
    p.argv
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_container_task_runs_inside_its_image_with_its_inputs_bound_read_only() {
    let ctl = Path::new("/vm/tf/run-1/logs/bird/1.0.cloud");
    let mut s = spec(Path::new("/vm/tf/run-1"), "echo hi");
    s.container = Some(busybox());
    s.inputs = vec![SpecFile {
        rel: "inputs/stands.csv".into(),
        task: "task-7".into(),
        output: "stands".into(),
    }];
    let p = plan(&s, ctl).expect("plan");
    let w = words(&p);
    let b = "b".repeat(64);
    let expected: Vec<String> = [
        "podman",
        "run",
        "--rm",
        "--init",
        "--pull=never",
        "--log-driver=none",
        "--name=tf-run-1-1-0",
        "--workdir=/vm/tf/run-1/work",
        "--network=host",
        "--security-opt=label=disable",
        "--volume=/vm/tf/run-1/work:/vm/tf/run-1/work",
        "--volume=/vm/tf/run-1/logs/bird/1.0.cloud/staged:/vm/tf/run-1/logs/bird/1.0.cloud/staged:ro",
        "--env=TWINFLOW_RUN_ID=run-1",
        "--memory=1g",
        &b,
        "/bin/sh",
        "-e",
        "-c",
        "echo hi",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(w, expected);
    assert!(p.env.is_empty(), "the task's variables are --env arguments");
    assert_eq!(
        p.container,
        Some((ContainerRuntime::Podman, "tf-run-1-1-0".to_owned()))
    );
}

#[test]
fn the_prologue_runs_before_the_command_which_it_execs() {
    let ctl = Path::new("/c");
    let mut s = spec(Path::new("/vm"), "echo hi");
    s.container = Some(busybox());
    s.prologue = Some("module load x".into());
    let w = words(&plan(&s, ctl).expect("plan"));
    assert_eq!(&w[..3], ["/bin/sh", "-c", PROLOGUE]);
    assert_eq!(
        &w[3..6],
        ["twinflow-prologue", "/c/prologue.done", "module load x"]
    );
    assert_eq!(&w[6..8], ["podman", "run"]);
}

#[test]
fn a_bad_container_part_is_refused_never_run_on_the_host() {
    let mut s = spec(Path::new("/vm"), "true");
    let mut c = busybox();
    c.runtime = "lxc".into();
    s.container = Some(c);
    let e = plan(&s, Path::new("/c")).err().unwrap_or_default();
    assert_eq!(e, "`lxc` is not a container runtime");
    let mut c = busybox();
    c.options = vec!["--name=x".into()];
    s.container = Some(c);
    let e = plan(&s, Path::new("/c")).err().unwrap_or_default();
    assert!(
        e.starts_with("cannot run in container `localhost/twinflow-busybox:1` with podman: the container option `--name=x`"),
        "{e}"
    );
}

/// The prologue and the task in a real `/bin/sh`: what the prologue
/// exports reaches the task, a failing prologue fails the attempt with a
/// message and the task never runs, an exit status passes unchanged.
#[test]
fn prologues_run_for_real() {
    let Ok(dir) = tempfile::tempdir() else { return };
    let root = dir.path();
    let ctl = root.join("ctl");
    std::fs::create_dir_all(&ctl).ok();
    let mut s = spec(root, "echo \"$FROM_PROLOGUE\" > seen.txt; exit 3");
    std::fs::create_dir_all(&s.workdir).ok();
    let workdir = PathBuf::from(&s.workdir);
    s.prologue = Some("FROM_PROLOGUE='it ran'\nexport FROM_PROLOGUE".into());
    let r = run(&s, &ctl, &workdir);
    assert_eq!(r.map(|r| r.status), Ok(Some(3)));
    let seen = std::fs::read_to_string(workdir.join("seen.txt")).unwrap_or_default();
    assert_eq!(seen.trim(), "it ran");

    std::fs::remove_file(workdir.join("seen.txt")).ok();
    std::fs::remove_file(ctl.join("prologue.done")).ok();
    s.prologue = Some("echo loading >&2\necho 'module: no such module' >&2; false\necho no".into());
    let e = run(&s, &ctl, &workdir).err().unwrap_or_default();
    assert_eq!(
        e,
        "the executor's prologue exited with status 1 on the VM, so the task did not run: \
         module: no such module"
    );
    assert!(!workdir.join("seen.txt").exists(), "the task never ran");
}

#[test]
fn ranks_run_under_mpirun_after_the_prologue_with_open_mpi_settings_the_task_may_override() {
    let ctl = Path::new("/vm/tf/run-1/logs/bird/1.0.cloud");
    let mut s = spec(Path::new("/vm/tf/run-1"), "echo hi");
    s.mpirun = 3;
    s.prologue = Some("module load openmpi".into());
    s.env
        .push(("OMPI_MCA_hwloc_base_binding_policy".into(), "core".into()));
    let p = plan(&s, ctl).expect("plan");
    let w = words(&p);
    assert_eq!(w[..4], ["/bin/sh", "-c", PROLOGUE, "twinflow-prologue"]);
    assert_eq!(
        w[6..],
        ["mpirun", "-np", "3", "/bin/sh", "-e", "-c", "echo hi"]
    );
    let binding: Vec<&str> = p
        .env
        .iter()
        .filter(|(k, _)| k == "OMPI_MCA_hwloc_base_binding_policy")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(binding, ["core"], "the task's own value wins, once");
    assert!(
        p.env
            .iter()
            .any(|(k, v)| k == "OMPI_MCA_rmaps_base_oversubscribe" && v == "1")
    );
    // The spec carries the ranks; an older spec without them runs once.
    let text = serde_json::to_string(&s).unwrap_or_default();
    assert!(text.contains("\"mpirun\":3"), "{text}");
    s.mpirun = 0;
    let text = serde_json::to_string(&s).unwrap_or_default();
    assert!(!text.contains("mpirun"), "{text}");
}

/// The runner's `mpirun` for real (Open MPI, `TWINFLOW_TEST_MPI=1`): each
/// of 3 ranks runs the script in the task directory.
#[test]
fn ranks_run_for_real_under_mpirun() {
    if std::env::var("TWINFLOW_TEST_MPI").as_deref() != Ok("1") {
        eprintln!("skipped: needs TWINFLOW_TEST_MPI=1 and Open MPI");
        return;
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    let root = dir.path();
    let ctl = root.join("ctl");
    std::fs::create_dir_all(&ctl).ok();
    let mut s = spec(
        root,
        "echo \"$OMPI_COMM_WORLD_SIZE\" > rank.$OMPI_COMM_WORLD_RANK",
    );
    s.mpirun = 3;
    std::fs::create_dir_all(&s.workdir).ok();
    let workdir = PathBuf::from(&s.workdir);
    let r = run(&s, &ctl, &workdir);
    let err = std::fs::read_to_string(&s.stderr).unwrap_or_default();
    assert_eq!(r.map(|r| r.status), Ok(Some(0)), "stderr: {err}");
    for rank in 0..3 {
        let seen = std::fs::read_to_string(workdir.join(format!("rank.{rank}")));
        assert_eq!(seen.unwrap_or_default().trim(), "3", "rank {rank}");
    }
}
