//! The launch of one attempt for each runtime × image kind × GPU case, as
//! argument vector, environment and script lines, snapshot-tested; and the
//! launches that are refused.

#![expect(clippy::unwrap_used, reason = "helpers of a test fail it")]

use std::ffi::OsString;
use std::path::PathBuf;
use twinflow_core::{ContainerRuntime, ImageRef};
use twinflow_launch::{
    ContainerLaunch, GpuBinding, GpuDevices, GpuVendor, HostUser, Launch, LaunchSpec, Network,
    ResolvedImage, launch,
};

const WORKDIR: &str = "/scratch/tf/runs/r-1/work/forest/3";
const ID: &str = "2babe0e6b50b0bb98e0df0fd0a1067189e300d11121aae3f279d9f29234dc6c7";
const D: &str = "sha256:67323df64dd290b976ddb9d3d42d71d76da746eb18472cc31bb365385e9584ad";

fn inputs() -> Vec<PathBuf> {
    [
        // Another task's output: bound read-only.
        "/scratch/tf/runs/r-1/work/climate/0/drivers.csv",
        // Its own (hard-linked) input: under the task directory, no bind.
        "/scratch/tf/runs/r-1/work/forest/3/inputs/previous.csv",
        // A directory and a file inside it: one bind.
        "/scratch/tf/runs/r-1/work/forest/2/stands",
        "/scratch/tf/runs/r-1/work/forest/2/stands/a.csv",
        // Twice: one bind.
        "/scratch/tf/runs/r-1/work/climate/0/drivers.csv",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

fn env() -> Vec<(String, String)> {
    vec![
        ("TWINFLOW_RUN_ID".into(), "r-1".into()),
        (
            "TWINFLOW_PARAM_LABEL".into(),
            "it's $(date)\nand `x`".into(),
        ),
        ("OMP_NUM_THREADS".into(), "4".into()),
    ]
}

/// Renders a launch: argv one word a line (Debug, so newlines show), env,
/// working directory, container name, script lines.
fn render(l: &Launch) -> String {
    let mut out = String::from("argv:\n");
    for w in &l.argv {
        out.push_str(&format!("  {:?}\n", w.to_string_lossy()));
    }
    out.push_str("env:\n");
    for (k, v) in &l.env {
        out.push_str(&format!("  {k}={v:?}\n"));
    }
    out.push_str(&format!("workdir: {}\n", l.workdir.display()));
    out.push_str(&format!("container: {:?}\n", l.container));
    out.push_str("script lines:\n");
    for line in l.script_lines().unwrap() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

struct Case {
    runtime: Option<ContainerRuntime>,
    image: &'static str,
    resolved: bool,
    gpus: Option<GpuBinding>,
    uid: u32,
    network: Network,
    options: Vec<String>,
}

impl Case {
    fn new(runtime: Option<ContainerRuntime>, image: &'static str) -> Self {
        Self {
            runtime,
            image,
            resolved: false,
            gpus: None,
            uid: 0,
            network: Network::Host,
            options: Vec::new(),
        }
    }

    fn run(&self) -> Result<Launch, twinflow_launch::LaunchError> {
        let image = ImageRef::parse(self.image).unwrap();
        let runtime = self.runtime.unwrap_or(ContainerRuntime::Podman);
        let resolved = ResolvedImage {
            image: image.clone(),
            runtime,
            digest: D.into(),
            run_ref: match runtime {
                ContainerRuntime::Podman | ContainerRuntime::Docker => ID.into(),
                _ => format!("/scratch/images/{}.sif", D.replace(':', "-")),
            },
        };
        let container = ContainerLaunch {
            runtime,
            image: &image,
            resolved: self.resolved.then_some(&resolved),
            options: &self.options,
            name: "tf-r-1-12-0",
            network: &self.network,
            user: HostUser {
                uid: self.uid,
                gid: self.uid,
            },
        };
        let inputs = inputs();
        let env = env();
        let workdir = PathBuf::from(WORKDIR);
        launch(&LaunchSpec {
            script: "landis run scenario.txt > out.csv",
            workdir: &workdir,
            inputs: &inputs,
            env: &env,
            gpus: self.gpus.as_ref(),
            container: self.runtime.map(|_| &container),
        })
    }
}

fn nvidia() -> Option<GpuBinding> {
    Some(GpuBinding {
        vendor: GpuVendor::Nvidia,
        devices: GpuDevices::Ids(vec![1, 3]),
    })
}

fn amd() -> Option<GpuBinding> {
    Some(GpuBinding {
        vendor: GpuVendor::Amd,
        devices: GpuDevices::Ids(vec![2]),
    })
}

/// Devices as the batch system allocated them to the job.
fn allocated(vendor: GpuVendor) -> Option<GpuBinding> {
    Some(GpuBinding {
        vendor,
        devices: GpuDevices::Allocated,
    })
}

const PODMAN: Option<ContainerRuntime> = Some(ContainerRuntime::Podman);
const DOCKER: Option<ContainerRuntime> = Some(ContainerRuntime::Docker);
const APPTAINER: Option<ContainerRuntime> = Some(ContainerRuntime::Apptainer);
const SINGULARITY: Option<ContainerRuntime> = Some(ContainerRuntime::Singularity);

#[test]
fn launches() {
    let cases: Vec<(&str, Case)> = vec![
        ("host", Case::new(None, "python:3")),
        (
            "host_nvidia",
            Case {
                gpus: nvidia(),
                ..Case::new(None, "python:3")
            },
        ),
        (
            "host_amd",
            Case {
                gpus: amd(),
                ..Case::new(None, "python:3")
            },
        ),
        (
            "podman_docker_ref",
            Case::new(PODMAN, "docker://ghcr.io/biodt/landis:7"),
        ),
        (
            "podman_docker_ref_resolved",
            Case {
                resolved: true,
                ..Case::new(PODMAN, "docker://ghcr.io/biodt/landis:7")
            },
        ),
        (
            "podman_local",
            Case::new(PODMAN, "localhost/twinflow-python:1"),
        ),
        (
            "podman_local_resolved_nvidia_user_network_options",
            Case {
                resolved: true,
                gpus: nvidia(),
                uid: 1000,
                network: Network::None,
                options: vec!["--memory=2g".into(), "--cap-add=SYS_PTRACE".into()],
                ..Case::new(PODMAN, "localhost/twinflow-python:1")
            },
        ),
        (
            "podman_amd",
            Case {
                gpus: amd(),
                ..Case::new(PODMAN, "python:3.12-slim")
            },
        ),
        (
            "docker_resolved_nvidia_user",
            Case {
                resolved: true,
                gpus: nvidia(),
                uid: 1000,
                network: Network::Named("twins".into()),
                ..Case::new(DOCKER, "python:3.12-slim")
            },
        ),
        (
            "apptainer_docker_ref",
            Case::new(APPTAINER, "docker://ghcr.io/biodt/landis:7"),
        ),
        (
            "apptainer_docker_ref_resolved_nvidia",
            Case {
                resolved: true,
                gpus: nvidia(),
                ..Case::new(APPTAINER, "docker://ghcr.io/biodt/landis:7")
            },
        ),
        (
            "apptainer_oras",
            Case::new(APPTAINER, "oras://ghcr.io/biodt/hmsc:2"),
        ),
        (
            "apptainer_sif_amd_options_network",
            Case {
                gpus: amd(),
                network: Network::None,
                options: vec!["--cleanenv".into(), "--contain".into()],
                ..Case::new(APPTAINER, "/scratch/images/landis.sif")
            },
        ),
        (
            "host_allocated_nvidia",
            Case {
                gpus: allocated(GpuVendor::Nvidia),
                ..Case::new(None, "python:3")
            },
        ),
        (
            "podman_allocated_nvidia",
            Case {
                resolved: true,
                gpus: allocated(GpuVendor::Nvidia),
                ..Case::new(PODMAN, "localhost/twinflow-python:1")
            },
        ),
        (
            "docker_allocated_amd",
            Case {
                resolved: true,
                gpus: allocated(GpuVendor::Amd),
                uid: 1000,
                ..Case::new(DOCKER, "python:3.12-slim")
            },
        ),
        (
            "apptainer_allocated_nvidia",
            Case {
                resolved: true,
                gpus: allocated(GpuVendor::Nvidia),
                ..Case::new(APPTAINER, "docker://ghcr.io/biodt/landis:7")
            },
        ),
        (
            "singularity_allocated_amd",
            Case {
                gpus: allocated(GpuVendor::Amd),
                ..Case::new(SINGULARITY, "/scratch/images/landis.sif")
            },
        ),
        (
            "singularity_sif_resolved",
            Case {
                resolved: true,
                ..Case::new(SINGULARITY, "/scratch/images/landis.sif")
            },
        ),
    ];
    for (name, case) in cases {
        let launch = case.run().unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_snapshot!(name, render(&launch));
    }
}

#[test]
fn refusals_name_what_is_refused() {
    let refused = |case: Case| case.run().unwrap_err().to_string();
    assert_eq!(
        refused(Case::new(PODMAN, "oras://ghcr.io/a/b:1")),
        "podman cannot run image `oras://ghcr.io/a/b:1`: oras:// and .sif images need apptainer or singularity"
    );
    assert_eq!(
        refused(Case::new(DOCKER, "/a/b.sif")),
        "docker cannot run image `/a/b.sif`: oras:// and .sif images need apptainer or singularity"
    );
    assert_eq!(
        refused(Case::new(APPTAINER, "localhost/x:1")),
        "apptainer cannot run image `localhost/x:1` from podman's local store: use a .sif file or docker://"
    );
    assert_eq!(
        refused(Case::new(APPTAINER, "images/x.sif")),
        "the image path `images/x.sif` is relative; resolve it to an absolute path first"
    );
    assert_eq!(
        refused(Case {
            options: vec!["--name=mine".into()],
            ..Case::new(PODMAN, "python:3")
        }),
        "the container option `--name=mine` sets what twinflow sets itself for podman (--name, --rm, --detach, -d, --workdir, -w, --init, --pull)"
    );
    for hiding in ["--cleanenv", "-e", "--containall", "-C"] {
        assert_eq!(
            refused(Case {
                gpus: allocated(GpuVendor::Amd),
                options: vec![hiding.into()],
                ..Case::new(APPTAINER, "docker://a")
            }),
            format!(
                "the container option `{hiding}` would hide the GPU variables the batch system set (ROCR_VISIBLE_DEVICES, HIP_VISIBLE_DEVICES) from the task"
            )
        );
    }
    // With devices of its own the task's variables are set explicitly.
    assert!(
        Case {
            gpus: amd(),
            options: vec!["--cleanenv".into()],
            ..Case::new(APPTAINER, "docker://a")
        }
        .run()
        .is_ok()
    );
    assert!(
        refused(Case {
            options: vec!["--pwd".into(), "/".into()],
            ..Case::new(APPTAINER, "docker://a")
        })
        .starts_with("the container option `--pwd` sets what twinflow sets itself for apptainer")
    );
}

#[test]
fn a_resolution_for_another_runtime_or_image_is_refused() {
    let image = ImageRef::parse("python:3").unwrap();
    let other = ImageRef::parse("python:4").unwrap();
    let resolved = ResolvedImage {
        image: image.clone(),
        runtime: ContainerRuntime::Docker,
        digest: D.into(),
        run_ref: ID.into(),
    };
    let mut c = ContainerLaunch {
        runtime: ContainerRuntime::Podman,
        image: &image,
        resolved: Some(&resolved),
        options: &[],
        name: "n",
        network: &Network::Host,
        user: HostUser { uid: 0, gid: 0 },
    };
    let workdir = PathBuf::from("/w");
    let run = |c: &ContainerLaunch<'_>| {
        launch(&LaunchSpec {
            script: "true",
            workdir: &workdir,
            inputs: &[],
            env: &[],
            gpus: None,
            container: Some(c),
        })
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        run(&c),
        "image `docker://python:3` was resolved for docker, not for podman"
    );
    c.runtime = ContainerRuntime::Docker;
    c.image = &other;
    assert_eq!(
        run(&c),
        "the resolution of image `docker://python:4` is for image `docker://python:3`"
    );
}

#[test]
fn paths_and_names_the_runtimes_cannot_carry_are_refused() {
    let image = ImageRef::parse("docker://a").unwrap();
    let refused = |runtime, workdir: &str, inputs: &[&str], env: &[(&str, &str)]| {
        let c = ContainerLaunch {
            runtime,
            image: &image,
            resolved: None,
            options: &[],
            name: "n",
            network: &Network::Host,
            user: HostUser { uid: 0, gid: 0 },
        };
        let workdir = PathBuf::from(workdir);
        let inputs: Vec<PathBuf> = inputs.iter().map(PathBuf::from).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        launch(&LaunchSpec {
            script: "true",
            workdir: &workdir,
            inputs: &inputs,
            env: &env,
            gpus: None,
            container: Some(&c),
        })
        .unwrap_err()
        .to_string()
    };
    use ContainerRuntime::{Apptainer, Podman};
    assert_eq!(
        refused(Podman, "w", &[], &[]),
        "the working directory w is not an absolute path without `.` or `..`"
    );
    assert_eq!(
        refused(Podman, "/w", &["/a/../b"], &[]),
        "the input /a/../b is not an absolute path without `.` or `..`"
    );
    assert_eq!(
        refused(Podman, "/w", &["/a:b"], &[]),
        "the bind source `/a:b` holds `:`, which podman's --volume cannot carry"
    );
    assert_eq!(
        refused(Apptainer, "/w", &["/a,b"], &[]),
        "the bind source `/a,b` holds `:` or `,`, which apptainer's --bind cannot carry"
    );
    assert_eq!(
        refused(Podman, "/w", &[], &[("A-B", "1")]),
        "the environment variable name \"A-B\" is not a shell variable name"
    );
    assert_eq!(
        refused(Apptainer, "/w", &[], &[("A", "x\0y")]),
        "the value of A holds a NUL byte"
    );
}

#[test]
fn a_non_utf8_word_has_no_script_line() {
    use std::os::unix::ffi::OsStringExt;
    let l = Launch {
        argv: vec![OsString::from_vec(vec![0xff])],
        env: Vec::new(),
        workdir: PathBuf::from("/w"),
        container: None,
    };
    assert_eq!(
        l.script_lines().unwrap_err().to_string(),
        "the argument \"\\xFF\" is not valid utf-8"
    );
}
