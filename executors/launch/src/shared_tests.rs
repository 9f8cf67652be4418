//! The argument vectors of a shared container: the start with the union of
//! the tasks' binds, a task's `exec`, the killer and the stop; Apptainer is
//! refused (it shares an instance, see `instance_tests.rs`).

use super::*;
use crate::spec::{HostUser, Network};
use twinflow_core::ImageRef;

fn words(argv: &[OsString]) -> Vec<String> {
    argv.iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect()
}

fn with_container<T>(runtime: ContainerRuntime, f: impl FnOnce(&ContainerLaunch<'_>) -> T) -> T {
    let image = ImageRef::parse("localhost/twinflow-busybox:1").unwrap();
    let options = vec!["--cap-drop=ALL".to_owned()];
    let c = ContainerLaunch {
        runtime,
        image: &image,
        resolved: None,
        options: &options,
        name: "tf-r1-4-0-pack",
        network: &Network::Host,
        user: HostUser {
            uid: 1000,
            gid: 1000,
        },
    };
    f(&c)
}

#[test]
fn the_start_binds_every_task_directory_once_and_inputs_outside_them_read_only() {
    let rw: Vec<PathBuf> = [
        "/r/work/s/1",
        "/r/work/s/0",
        "/r/logs/s/4.0.pack.d",
        "/r/work/s/0",
    ]
    .map(PathBuf::from)
    .to_vec();
    let ro: Vec<PathBuf> = [
        "/r/work/p/0/a.nc",
        "/r/work/s/1/inputs/own.nc",
        "/r/work/p/0/a.nc",
        "/data/dir",
        "/data/dir/inner.nc",
    ]
    .map(PathBuf::from)
    .to_vec();
    let argv = with_container(ContainerRuntime::Podman, |c| {
        start_shared(&SharedSpec {
            container: c,
            rw: &rw,
            ro: &ro,
        })
        .unwrap()
    });
    assert_eq!(
        words(&argv).join(" "),
        "podman run --rm --init --log-driver=none --name=tf-r1-4-0-pack --detach --interactive \
         --network=host --security-opt=label=disable --userns=keep-id \
         --volume=/r/logs/s/4.0.pack.d:/r/logs/s/4.0.pack.d \
         --volume=/r/work/s/0:/r/work/s/0 --volume=/r/work/s/1:/r/work/s/1 \
         --volume=/data/dir:/data/dir:ro --volume=/r/work/p/0/a.nc:/r/work/p/0/a.nc:ro \
         --cap-drop=ALL localhost/twinflow-busybox:1 /bin/sh -c read _"
    );
}

#[test]
fn a_task_execs_with_its_own_directory_environment_and_pid_file() {
    let env = vec![("A".to_owned(), "it's $(x)".to_owned())];
    let task = SharedTask {
        script: "echo hi\nexit 3",
        workdir: Path::new("/r/work/s/1"),
        env: &env,
        pid_file: Path::new("/r/logs/s/4.0.pack.d/5.0.pid"),
    };
    let l = exec_shared(ContainerRuntime::Podman, "tf-r1-4-0-pack", &task).unwrap();
    assert_eq!(
        words(&l.argv),
        [
            "podman",
            "exec",
            "--workdir=/r/work/s/1",
            "--env=A=it's $(x)",
            "tf-r1-4-0-pack",
            "/bin/sh",
            "-c",
            WRAPPER,
            "sh",
            "/r/logs/s/4.0.pack.d/5.0.pid",
            "echo hi\nexit 3",
        ]
    );
    assert_eq!(l.workdir, Path::new("/r/work/s/1"));
    let kill = kill_shared_task(
        ContainerRuntime::Docker,
        "n",
        Path::new("/r/logs/s/4.0.pack.d/5.0.pid"),
    )
    .unwrap();
    assert_eq!(
        words(&kill),
        [
            "docker",
            "exec",
            "n",
            "/bin/sh",
            "-c",
            KILLER,
            "sh",
            "/r/logs/s/4.0.pack.d/5.0.pid"
        ]
    );
    assert_eq!(
        words(&stop_shared(ContainerRuntime::Podman, "n")),
        ["podman", "rm", "-f", "--time=0", "n"]
    );
    assert_eq!(
        words(&stop_shared(ContainerRuntime::Docker, "n")),
        ["docker", "rm", "-f", "n"]
    );
}

#[test]
fn apptainer_bad_paths_and_owned_options_are_refused() {
    let rw = vec![PathBuf::from("/r/work/s/0")];
    let e = with_container(ContainerRuntime::Apptainer, |c| {
        start_shared(&SharedSpec {
            container: c,
            rw: &rw,
            ro: &[],
        })
        .unwrap_err()
    });
    assert_eq!(
        e.message(),
        "apptainer shares an instance, not a container: see start_instance"
    );
    let relative = vec![PathBuf::from("work/s/0")];
    let e = with_container(ContainerRuntime::Podman, |c| {
        start_shared(&SharedSpec {
            container: c,
            rw: &relative,
            ro: &[],
        })
        .unwrap_err()
    });
    assert!(e.message().contains("work/s/0"), "{e}");
    let image = ImageRef::parse("localhost/x:1").unwrap();
    let options = vec!["--detach".to_owned()];
    let c = ContainerLaunch {
        runtime: ContainerRuntime::Podman,
        image: &image,
        resolved: None,
        options: &options,
        name: "n",
        network: &Network::Host,
        user: HostUser { uid: 0, gid: 0 },
    };
    let e = start_shared(&SharedSpec {
        container: &c,
        rw: &rw,
        ro: &[],
    })
    .unwrap_err();
    assert!(e.message().contains("`--detach`"), "{e}");
    let task = SharedTask {
        script: "true",
        workdir: Path::new("/r/work/s/0"),
        env: &[],
        pid_file: Path::new("pid"),
    };
    assert!(exec_shared(ContainerRuntime::Podman, "n", &task).is_err());
}
