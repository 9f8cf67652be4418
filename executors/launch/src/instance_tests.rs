//! The argument vectors of a shared Apptainer/Singularity instance,
//! snapshot-tested: the start with the union of the tasks' binds, GPU and
//! network flags and options, a task's `exec` with its own directory and
//! variables and the environment options, the stop; and what is refused.

use super::*;
use crate::resolve::ResolvedImage;
use crate::spec::{GpuDevices, HostUser, Network};
use std::path::PathBuf;
use twinflow_core::{GpuVendor, ImageRef};

const NAME: &str = "tf-r1-4-0-pack";

/// Argument vector one word a line (Debug, so newlines show).
fn words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|w| format!("  {:?}\n", w.to_string_lossy()))
        .collect()
}

/// A launch: its words, its variables, its directory, its script lines.
fn render(l: &Launch) -> String {
    let mut out = format!("argv:\n{}env:\n", words(&l.argv));
    for (k, v) in &l.env {
        out.push_str(&format!("  {k}={v:?}\n"));
    }
    out.push_str(&format!(
        "workdir: {}\nscript lines:\n",
        l.workdir.display()
    ));
    for line in l.script_lines().unwrap() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn rw() -> Vec<PathBuf> {
    ["/r/work/s/1", "/r/work/s/0", "/r/work/s/0"]
        .map(PathBuf::from)
        .to_vec()
}

fn ro() -> Vec<PathBuf> {
    [
        "/r/work/p/0/a.nc",
        "/r/work/s/1/inputs/own.nc",
        "/data/dir",
        "/data/dir/inner.nc",
    ]
    .map(PathBuf::from)
    .to_vec()
}

/// `f` given a container of `runtime` running `image` resolved to
/// `run_ref`, with `options` and `network`, named [`NAME`].
fn with<T>(
    runtime: ContainerRuntime,
    options: &[&str],
    network: Network,
    f: impl FnOnce(&ContainerLaunch<'_>) -> T,
) -> T {
    let image = ImageRef::parse("docker://ghcr.io/biodt/hmsc:2").unwrap();
    let resolved = ResolvedImage {
        image: image.clone(),
        runtime,
        digest: format!("sha256:{}", "ab".repeat(32)),
        run_ref: "/home/u/.cache/twinflow/images/sif-sha256-ab.sif".to_owned(),
    };
    let options: Vec<String> = options.iter().map(|o| (*o).to_owned()).collect();
    let c = ContainerLaunch {
        runtime,
        image: &image,
        resolved: Some(&resolved),
        options: &options,
        name: NAME,
        network: &network,
        user: HostUser {
            uid: 1000,
            gid: 1000,
        },
    };
    f(&c)
}

fn env() -> Vec<(String, String)> {
    vec![
        ("TWINFLOW_TASK".to_owned(), "s[i=1]".to_owned()),
        ("LABEL".to_owned(), "it's $(date)\nand `x`".to_owned()),
    ]
}

#[test]
fn apptainer_starts_one_instance_with_every_bind_its_gpus_and_options() {
    let allocated = GpuBinding {
        vendor: GpuVendor::Nvidia,
        devices: GpuDevices::Allocated,
    };
    let options = [
        "--writable-tmpfs",
        "--env",
        "OMP_PROC_BIND=close",
        "--env-file=/p/env",
    ];
    let (rw, ro, env) = (rw(), ro(), env());
    let (start, exec, stop) = with(ContainerRuntime::Apptainer, &options, Network::Host, |c| {
        let start = start_instance(
            &SharedSpec {
                container: c,
                rw: &rw,
                ro: &ro,
            },
            Some(&allocated),
        )
        .unwrap();
        let task = InstanceTask {
            script: "echo hi\nexit 3",
            workdir: Path::new("/r/work/s/1"),
            env: &env,
            gpus: Some(&allocated),
        };
        let exec = exec_instance(c, &task).unwrap();
        (start, exec, stop_instance(c.runtime, c.name).unwrap())
    });
    insta::assert_snapshot!(
        "apptainer_instance",
        format!(
            "start:\n{}exec:\n{}stop:\n{}",
            words(&start),
            render(&exec),
            words(&stop)
        )
    );
    assert_eq!(exec.container, None, "killed by its process group");
}

#[test]
fn singularity_contained_instance_cleans_each_task_s_environment() {
    let ids = GpuBinding {
        vendor: GpuVendor::Amd,
        devices: GpuDevices::Ids(vec![2, 3]),
    };
    let (rw, ro, env) = (rw(), ro(), env());
    let (start, exec, stop) = with(
        ContainerRuntime::Singularity,
        &["--containall", "-e"],
        Network::Named("cni0".to_owned()),
        |c| {
            let start = start_instance(
                &SharedSpec {
                    container: c,
                    rw: &rw,
                    ro: &ro,
                },
                Some(&ids),
            )
            .unwrap();
            let task = InstanceTask {
                script: "true",
                workdir: Path::new("/r/work/s/0"),
                env: &env,
                gpus: Some(&ids),
            };
            let exec = exec_instance(c, &task).unwrap();
            (start, exec, stop_instance(c.runtime, c.name).unwrap())
        },
    );
    insta::assert_snapshot!(
        "singularity_instance",
        format!(
            "start:\n{}exec:\n{}stop:\n{}",
            words(&start),
            render(&exec),
            words(&stop)
        )
    );
}

#[test]
fn podman_bad_names_owned_options_hidden_gpus_and_bad_paths_are_refused() {
    let (rw, ro) = (rw(), ro());
    let start = |c: &ContainerLaunch<'_>, gpus: Option<&GpuBinding>| {
        start_instance(
            &SharedSpec {
                container: c,
                rw: &rw,
                ro: &ro,
            },
            gpus,
        )
    };
    let e = with(ContainerRuntime::Podman, &[], Network::Host, |c| {
        start(c, None).unwrap_err()
    });
    assert_eq!(
        e.message(),
        "podman has no instances: tasks share a podman container through start_shared"
    );
    assert!(stop_instance(ContainerRuntime::Docker, NAME).is_err());
    let e = with(
        ContainerRuntime::Apptainer,
        &["--pwd=/x"],
        Network::Host,
        |c| start(c, None).unwrap_err(),
    );
    assert!(e.message().contains("`--pwd=/x`"), "{e}");
    let allocated = GpuBinding {
        vendor: GpuVendor::Amd,
        devices: GpuDevices::Allocated,
    };
    let e = with(
        ContainerRuntime::Apptainer,
        &["--cleanenv"],
        Network::Host,
        |c| start(c, Some(&allocated)).unwrap_err(),
    );
    assert!(
        e.message()
            .contains("`--cleanenv` would hide the GPU variables"),
        "{e}"
    );
    let e = stop_instance(ContainerRuntime::Apptainer, "a b").unwrap_err();
    assert!(e.message().contains("`a b` is not an instance name"), "{e}");
    let e = with(ContainerRuntime::Apptainer, &[], Network::Host, |c| {
        let task = InstanceTask {
            script: "true",
            workdir: Path::new("work/s/0"),
            env: &[],
            gpus: None,
        };
        exec_instance(c, &task).unwrap_err()
    });
    assert!(e.message().contains("work/s/0"), "{e}");
    let bad_env = vec![("A-B".to_owned(), "1".to_owned())];
    let e = with(ContainerRuntime::Apptainer, &[], Network::Host, |c| {
        let task = InstanceTask {
            script: "true",
            workdir: Path::new("/r/work/s/0"),
            env: &bad_env,
            gpus: None,
        };
        exec_instance(c, &task).unwrap_err()
    });
    assert!(e.message().contains("\"A-B\""), "{e}");
}
