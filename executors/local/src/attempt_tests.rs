//! Tests of `attempt.rs`: the extra fields round trip on the wire, and the
//! command the supervisor spawns for a container, GPUs and a prologue.

use super::*;
use crate::wire::Request;

fn plain() -> Launch {
    Launch {
        key: (3, 1),
        cost: 1,
        slots: 0,
        script: "echo hi > out".to_owned(),
        env: vec![
            ("TWINFLOW_RUN_ID".to_owned(), "r1".to_owned()),
            ("A".to_owned(), "x y".to_owned()),
        ],
        workdir: "/runs/r1/t3".into(),
        stdout: "/runs/r1/t3/out".into(),
        stderr: "/runs/r1/t3/err".into(),
        extra: Box::default(),
    }
}

fn boxed() -> Container {
    Container {
        runtime: ContainerRuntime::Podman,
        image: "localhost/twinflow-busybox:1".to_owned(),
        digest: "sha256:ab".to_owned(),
        run_ref: "0123".to_owned(),
        options: vec!["--memory=1g".to_owned()],
        name: "tf-r1-3-1".to_owned(),
        uid: 0,
        gid: 0,
    }
}

fn words(argv: &[OsString]) -> Vec<&str> {
    argv.iter().map(|a| a.to_str().unwrap()).collect()
}

#[test]
fn a_start_request_with_extras_round_trips_and_a_plain_one_stays_kind_1() {
    let mut launch = plain();
    let mut out = Vec::new();
    Request::Spawn(launch.clone()).encode(&mut out);
    assert_eq!(out[4], 1, "a plain attempt is the old request");
    *launch.extra = Extra {
        prologue: Some("export X=1".to_owned()),
        gpus: Gpus {
            count: 2,
            devices: vec![0, 3, 5],
            vendor: GpuVendor::Amd,
        },
        inputs: vec!["/data/in.csv".into()],
        container: Some(boxed()),
        mpirun: 0,
    };
    let request = Request::Spawn(launch);
    let mut out = Vec::new();
    request.encode(&mut out);
    assert_eq!(out[4], 4);
    assert_eq!(Request::decode(&out[4..]).unwrap(), request);
}

#[test]
fn a_container_attempt_spawns_the_runtime_with_the_task_env_on_the_host_too() {
    let mut launch = plain();
    launch.extra.container = Some(boxed());
    launch.extra.inputs = vec!["/data/in.csv".into()];
    let c = command(&launch, &[]).unwrap();
    assert_eq!(
        words(&c.argv),
        [
            "podman",
            "run",
            "--rm",
            "--init",
            "--pull=never",
            "--log-driver=none",
            "--name=tf-r1-3-1",
            "--workdir=/runs/r1/t3",
            "--network=host",
            "--security-opt=label=disable",
            "--volume=/runs/r1/t3:/runs/r1/t3",
            "--volume=/data/in.csv:/data/in.csv:ro",
            "--env=TWINFLOW_RUN_ID=r1",
            "--env=A=x y",
            "--memory=1g",
            "0123",
            "/bin/sh",
            "-e",
            "-c",
            "echo hi > out"
        ]
    );
    assert_eq!(
        c.env, launch.env,
        "the run's id finds the runtime's process"
    );
    assert_eq!(
        c.container,
        Some(("podman".to_owned(), "tf-r1-3-1".to_owned()))
    );
}

#[test]
fn gpus_on_the_host_are_variables_and_a_prologue_wraps_the_command_unpasted() {
    let mut launch = plain();
    launch
        .env
        .push(("CUDA_VISIBLE_DEVICES".to_owned(), "0".to_owned()));
    launch.extra.gpus = Gpus {
        count: 2,
        devices: vec![0, 1, 2, 3],
        vendor: GpuVendor::Nvidia,
    };
    launch.extra.prologue = Some("module load x".to_owned());
    let c = command(&launch, &[1, 3]).unwrap();
    let w = words(&c.argv);
    assert_eq!(&w[..2], ["/bin/sh", "-c"]);
    assert!(w[2].contains("\nmodule load x\n"), "{}", w[2]);
    assert!(w[2].ends_with("exec \"$@\"\n"), "{}", w[2]);
    assert_eq!(
        &w[3..],
        ["twinflow-prologue", "/bin/sh", "-e", "-c", "echo hi > out"]
    );
    let cuda: Vec<&str> = c
        .env
        .iter()
        .filter(|(k, _)| k == "CUDA_VISIBLE_DEVICES")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cuda, ["1,3"], "the devices handed out win, once");
    assert_eq!(c.container, None);
}

#[test]
fn a_launch_that_cannot_be_built_fails_the_attempt_naming_the_image() {
    let mut launch = plain();
    let mut c = boxed();
    c.options = vec!["--name=mine".to_owned()];
    launch.extra.container = Some(c);
    let why = command(&launch, &[]).unwrap_err();
    assert!(
        why.starts_with("cannot run it in container `localhost/twinflow-busybox:1`: the container option `--name=mine`"),
        "{why}"
    );
}

#[test]
fn stopping_a_container_is_kill_then_rm() {
    let w = stop_argv("podman", "tf-a-1-0", Signal::SIGTERM);
    assert_eq!(words(&w), ["podman", "kill", "--signal=TERM", "tf-a-1-0"]);
    let w = stop_argv("podman", "tf-a-1-0", Signal::SIGKILL);
    assert_eq!(words(&w), ["podman", "rm", "-f", "--time=0", "tf-a-1-0"]);
    let w = stop_argv("docker", "tf-a-1-0", Signal::SIGKILL);
    assert_eq!(words(&w), ["docker", "rm", "-f", "tf-a-1-0"]);
}

#[test]
fn an_apptainer_attempt_with_gpus_passes_its_variables_by_environment() {
    let mut launch = plain();
    let mut c = boxed();
    c.runtime = ContainerRuntime::Apptainer;
    c.image = "/images/model.sif".to_owned();
    c.run_ref = "/images/model.sif".to_owned();
    c.options = Vec::new();
    launch.extra.container = Some(c);
    launch.extra.gpus = Gpus {
        count: 1,
        devices: vec![0, 1],
        vendor: GpuVendor::Nvidia,
    };
    let c = command(&launch, &[1]).unwrap();
    assert_eq!(
        words(&c.argv),
        [
            "apptainer",
            "exec",
            "--no-eval",
            "--pwd=/runs/r1/t3",
            "--bind=/runs/r1/t3:/runs/r1/t3",
            "--nv",
            "/images/model.sif",
            "/bin/sh",
            "-e",
            "-c",
            "echo hi > out"
        ]
    );
    let env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        env,
        [
            "TWINFLOW_RUN_ID=r1",
            "A=x y",
            "APPTAINERENV_TWINFLOW_RUN_ID=r1",
            "APPTAINERENV_A=x y",
            "APPTAINERENV_CUDA_VISIBLE_DEVICES=1"
        ]
    );
    assert_eq!(c.container, None, "its processes go with its group");
}

#[test]
fn ranks_are_kind_5_and_run_under_mpirun_after_the_prologue_with_open_mpi_settings() {
    let mut launch = plain();
    launch.extra.mpirun = 4;
    launch.extra.prologue = Some("module load openmpi".to_owned());
    // The step's own value of an Open MPI setting wins.
    launch.env.push((
        "OMPI_MCA_hwloc_base_binding_policy".to_owned(),
        "core".to_owned(),
    ));
    let request = Request::Spawn(launch.clone());
    let mut out = Vec::new();
    request.encode(&mut out);
    assert_eq!(out[4], 5, "an older supervisor refuses it");
    assert_eq!(Request::decode(&out[4..]).unwrap(), request);
    let c = command(&launch, &[]).unwrap();
    let w = words(&c.argv);
    assert_eq!(&w[..2], ["/bin/sh", "-c"]);
    assert!(w[2].contains("\nmodule load openmpi\n"), "{}", w[2]);
    assert_eq!(
        &w[3..],
        [
            "twinflow-prologue",
            "mpirun",
            "-np",
            "4",
            "/bin/sh",
            "-e",
            "-c",
            "echo hi > out"
        ]
    );
    let env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert!(
        env.contains(&"OMPI_MCA_rmaps_base_oversubscribe=1".to_owned()),
        "{env:?}"
    );
    assert!(
        env.contains(&"OMPI_MCA_hwloc_base_binding_policy=core".to_owned()),
        "{env:?}"
    );
    assert!(
        !env.contains(&"OMPI_MCA_hwloc_base_binding_policy=none".to_owned()),
        "{env:?}"
    );
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    assert_eq!(
        env.contains(&"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1".to_owned()),
        root,
        "{env:?}"
    );
}

#[test]
fn ranks_in_apptainer_are_one_container_per_rank_under_mpirun_on_the_host() {
    let mut launch = plain();
    let mut c = boxed();
    c.runtime = ContainerRuntime::Apptainer;
    c.image = "/images/model.sif".to_owned();
    c.run_ref = "/images/model.sif".to_owned();
    c.options = Vec::new();
    launch.extra.container = Some(c);
    launch.extra.mpirun = 2;
    let c = command(&launch, &[]).unwrap();
    assert_eq!(
        &words(&c.argv)[..5],
        ["mpirun", "-np", "2", "apptainer", "exec"]
    );
    assert_eq!(c.container, None);
}
