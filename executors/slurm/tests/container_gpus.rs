//! Job scripts of tasks that run in a container and ask for GPUs: the
//! runtime's flags for the executor's `gpu_vendor` and the devices Slurm
//! allocated (no GPUs here: snapshots of the scripts).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use twinflow_core::{
    AttemptKey, ContainerRuntime, ContainerSpec, GpuVendor, ImageRef, Job, ResolvedImage,
    Resources, SlurmConfig, TaskId,
};
use twinflow_executor_slurm::containers::StepContainer;
use twinflow_executor_slurm::script::{render_in, render_member_in};
use twinflow_launch::HostUser;

const RUN: &str = "/scratch/runs/gpu-1";

fn job(gpus: u32) -> Job {
    let logs = Path::new(RUN).join("logs/train");
    Job {
        key: AttemptKey {
            task: TaskId(5),
            attempt: 0,
        },
        name: "train[i=5]".to_owned(),
        script: "python3 train.py".to_owned(),
        env: vec![("TWINFLOW_RUN_ID".to_owned(), "gpu-1".to_owned())],
        workdir: Path::new(RUN).join("work/train/5"),
        stdout: logs.join("5.0.out"),
        stderr: logs.join("5.0.err"),
        resources: Resources {
            gpus,
            ..Resources::default()
        },
        step: "train".to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

fn container(
    runtime: ContainerRuntime,
    image: &str,
    run_ref: &str,
    vendor: GpuVendor,
    options: &[&str],
) -> StepContainer {
    StepContainer {
        spec: ContainerSpec {
            image: image.to_owned(),
            runtime: Some(runtime),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        },
        resolved: ResolvedImage {
            image: ImageRef::parse(image).unwrap(),
            runtime,
            digest: format!("sha256:{}", "ab".repeat(32)),
            run_ref: run_ref.to_owned(),
        },
        user: HostUser {
            uid: 1000,
            gid: 1000,
        },
        gpu_vendor: vendor,
    }
}

fn status(job: &Job) -> PathBuf {
    job.stdout.with_extension("status")
}

#[test]
fn a_gpu_job_under_apptainer_gets_nv_and_its_allocation() {
    let c = container(
        ContainerRuntime::Apptainer,
        "docker://ghcr.io/biodt/hmsc:2",
        "/home/u/.cache/twinflow/images/sif-sha256-ab.sif",
        GpuVendor::Nvidia,
        &[],
    );
    let j = job(2);
    let script = render_in(&j, &SlurmConfig::default(), &status(&j), Some(&c)).unwrap();
    assert!(script.contains("\n#SBATCH --gpus=2\n"), "{script}");
    assert!(script.contains(" --nv "), "{script}");
    insta::assert_snapshot!(script);
    // Without GPUs: no flag.
    let j = job(0);
    let script = render_in(&j, &SlurmConfig::default(), &status(&j), Some(&c)).unwrap();
    assert!(!script.contains("--nv"), "{script}");
}

#[test]
fn an_amd_gpu_member_under_podman_gets_the_devices_and_the_job_s_variables() {
    let c = container(
        ContainerRuntime::Podman,
        "localhost/twinflow-python:1",
        &"cd".repeat(32),
        GpuVendor::Amd,
        &[],
    );
    let j = job(1);
    let script = render_member_in(&j, &status(&j), Some(&c)).unwrap();
    for word in [
        "--device=/dev/kfd",
        "--device=/dev/dri",
        "--env=ROCR_VISIBLE_DEVICES",
        "--env=HIP_VISIBLE_DEVICES",
    ] {
        assert!(script.contains(&format!(" {word} ")), "{word}: {script}");
    }
    insta::assert_snapshot!(script);
}

#[test]
fn an_nvidia_gpu_job_under_podman_gets_cdi_and_the_job_s_variable() {
    let c = container(
        ContainerRuntime::Podman,
        "localhost/twinflow-python:1",
        &"cd".repeat(32),
        GpuVendor::Nvidia,
        &[],
    );
    let j = job(4);
    let script = render_in(&j, &SlurmConfig::default(), &status(&j), Some(&c)).unwrap();
    assert!(
        script.contains(" --device=nvidia.com/gpu=all --env=CUDA_VISIBLE_DEVICES "),
        "{script}"
    );
}

#[test]
fn an_option_that_hides_the_job_s_gpu_variables_is_refused() {
    let c = container(
        ContainerRuntime::Apptainer,
        "docker://ghcr.io/biodt/hmsc:2",
        "/home/u/.cache/twinflow/images/sif-sha256-ab.sif",
        GpuVendor::Amd,
        &["--cleanenv"],
    );
    let j = job(1);
    let err = render_in(&j, &SlurmConfig::default(), &status(&j), Some(&c))
        .unwrap_err()
        .to_string();
    assert!(err.contains("train[i=5]"), "{err}");
    assert!(
        err.contains("`--cleanenv` would hide the GPU variables"),
        "{err}"
    );
    // Without GPUs the option is the step's business.
    let j = job(0);
    assert!(render_in(&j, &SlurmConfig::default(), &status(&j), Some(&c)).is_ok());
}
