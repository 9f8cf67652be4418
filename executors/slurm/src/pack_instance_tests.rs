//! A pack under Apptainer in one instance: snapshots of the pack script and
//! a member's script, which packs share an instance, and the scripts run in
//! a real `/bin/sh` against a stand-in `apptainer` (Apptainer cannot be
//! installed here) that records its calls and runs what `exec
//! instance://NAME` is given in the `--pwd` directory with nothing but the
//! `APPTAINERENV_` variables: one `instance start` per pack, one `exec` per
//! member with its directory, environment, logs and status, and `instance
//! stop` at the end and on SIGTERM of the pack script.

use super::*;
use crate::containers::Containers;
use crate::group::render_pack_with;
use crate::script::{Wrapping, render_member_with};
use crate::script_tests_support::{busybox, members};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::time::{Duration, Instant};
use twinflow_core::{
    ContainerSpec, GpuVendor, ImageRef, JobInput, ResolvedImage, SlurmConfig, TaskId,
};
use twinflow_launch::HostUser;

const NAME: &str = "tf-r1-0-0-pack";

/// `docker://ghcr.io/biodt/hmsc:2` under Apptainer, pulled to `sif`.
fn hmsc(sif: &Path, options: &[&str]) -> StepContainer {
    let image = "docker://ghcr.io/biodt/hmsc:2";
    StepContainer {
        spec: ContainerSpec {
            image: image.to_owned(),
            runtime: Some(ContainerRuntime::Apptainer),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        },
        resolved: ResolvedImage {
            image: ImageRef::parse(image).unwrap(),
            runtime: ContainerRuntime::Apptainer,
            digest: format!("sha256:{}", "ab".repeat(32)),
            run_ref: sif.display().to_string(),
        },
        user: HostUser {
            uid: 1000,
            gid: 1000,
        },
        gpu_vendor: GpuVendor::Nvidia,
    }
}

/// Task `task` of step `s` under `run`, with its own `MEMBER` variable.
fn job(run: &Path, task: u32, script: &str) -> Job {
    let mut job = crate::script_tests_support::job(run, task, script);
    job.env.push(("MEMBER".to_owned(), format!("m{task}")));
    job
}

/// The pack script and the member scripts of `jobs` in `shared`, the
/// worker `worker`.
fn render(jobs: &[Job], shared: &PackContainer, worker: &Path) -> (String, Vec<String>) {
    let members = members(jobs);
    let how = Wrapping {
        shared: Some(shared),
        ..Wrapping::default()
    };
    let first = &jobs[0].stdout;
    let pack = render_pack_with(
        &members,
        &SlurmConfig::default(),
        worker,
        &first.with_extension("pack.json"),
        &first.with_extension("pack.log"),
        &how,
    )
    .unwrap();
    let scripts = members
        .iter()
        .map(|m| render_member_with(m.job, &m.status, &how).unwrap())
        .collect();
    (pack, scripts)
}

#[test]
fn an_apptainer_pack_starts_one_instance_and_execs_each_member_in_it() {
    let run = Path::new("/scratch/runs/r1");
    let mut jobs: Vec<Job> = (0..3).map(|i| job(run, i, "python3 fit.py")).collect();
    for j in &mut jobs {
        j.resources.gpus = 1;
    }
    jobs[1].inputs.push(JobInput {
        rel: "inputs/a.nc".to_owned(),
        producer: TaskId(9),
        output: "a".to_owned(),
        source: run.join("work/prep/0/a.nc"),
    });
    let c = hmsc(
        Path::new("/home/u/.cache/twinflow/images/sif-sha256-ab.sif"),
        &["--writable-tmpfs", "--cleanenv"],
    );
    // `--cleanenv` would hide the job's GPU variables: refused.
    let shared = PackContainer::new(&jobs[0], Arc::new(c.clone()));
    let members = members(&jobs);
    let err = shared.pack_lines(&members, "w").unwrap_err().to_string();
    assert!(
        err.contains("`--cleanenv` would hide the GPU variables"),
        "{err}"
    );
    let c = StepContainer {
        spec: ContainerSpec {
            options: vec!["--writable-tmpfs".to_owned()],
            ..c.spec
        },
        ..c
    };
    let shared = PackContainer::new(&jobs[0], Arc::new(c));
    let (pack, scripts) = render(&jobs, &shared, Path::new("/appl/twinflow"));
    assert_eq!(pack.matches("apptainer instance start").count(), 1);
    insta::assert_snapshot!("apptainer_pack", pack);
    insta::assert_snapshot!("apptainer_pack_member", scripts[1]);
}

#[test]
fn apptainer_packs_share_an_instance_and_podman_gpu_packs_keep_their_own_containers() {
    let run = Path::new("/r");
    let mut jobs: Vec<Job> = (0..2).map(|i| job(run, i, "true")).collect();
    let containers = Containers::default();
    containers.set(&["s".to_owned()], hmsc(Path::new("/i/h.sif"), &[]));
    let shared = PackContainer::of(&members(&jobs), &containers).expect("one instance");
    assert_eq!(shared.name, NAME);
    containers.set(&["s".to_owned()], busybox());
    assert!(PackContainer::of(&members(&jobs), &containers).is_some());
    for j in &mut jobs {
        j.resources.gpus = 1;
    }
    // Podman's shared container would not get the job's devices.
    assert!(PackContainer::of(&members(&jobs), &containers).is_none());
    containers.set(&["s".to_owned()], hmsc(Path::new("/i/h.sif"), &[]));
    assert!(PackContainer::of(&members(&jobs), &containers).is_some());
}

/// A stand-in `apptainer`: logs `start ARGS`, `exec OPTIONS instance://NAME`
/// and `stop ARGS` to `apptainer.log` beside it, keeps `instance.NAME` while
/// the instance runs, and runs an `exec`'s command in its `--pwd` with only
/// `PATH` and the `APPTAINERENV_` variables (prefix dropped).
const FAKE: &str = r#"#!/bin/sh
here=${0%/*}
log=$here/apptainer.log
last() { eval "printf '%s' \"\${$#}\""; }
case "$1 $2" in
"instance start")
  printf 'start %s\n' "$*" >>"$log"
  : >"$here/instance.$(last "$@")"
  exit 0 ;;
"instance stop")
  printf 'stop %s\n' "$*" >>"$log"
  rm -f "$here/instance.$(last "$@")"
  exit 0 ;;
esac
[ "$1" = exec ] || exit 2
shift
words= dir= name=
while [ $# -gt 0 ]; do
  case "$1" in
    --pwd=*) dir=${1#--pwd=} ;;
    instance://*) name=${1#instance://}; shift; break ;;
  esac
  words="$words $1"
  shift
done
printf 'exec%s instance://%s\n' "$words" "$name" >>"$log"
[ -e "$here/instance.$name" ] || { echo "no instance $name" >&2; exit 255; }
cd "$dir" || exit 255
vars=$(export -p | while IFS= read -r line; do
  case $line in "export APPTAINERENV_"*) printf 'export %s\n' "${line#export APPTAINERENV_}" ;; esac
done)
cd / && cd "$dir" || exit 255
exec env -i PATH="$PATH" /bin/sh -c 'eval "$1"; shift; exec "$@"' sh "$vars" "$@"
"#;

/// A run directory under `root` with `jobs`' directories, the SIF, a
/// `PATH` with the fake `apptainer` and the tools the scripts use, and the
/// pack script and member scripts written; the pack script's path and the
/// `PATH`.
fn stage(root: &Path, jobs: &[Job]) -> (PathBuf, PathBuf) {
    for j in jobs {
        std::fs::create_dir_all(&j.workdir).unwrap();
        std::fs::create_dir_all(j.stdout.parent().unwrap()).unwrap();
    }
    let sif = root.join("images/hmsc.sif");
    std::fs::create_dir_all(sif.parent().unwrap()).unwrap();
    std::fs::write(&sif, "sif").unwrap();
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["mv", "uname", "cat", "mkdir", "rm", "env", "sleep"] {
        let found = ["/bin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    let fake = bin.join("apptainer");
    std::fs::write(&fake, FAKE).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = hmsc(&sif, &["--writable-tmpfs"]);
    let shared = PackContainer::new(&jobs[0], Arc::new(c));
    // A stand-in worker that runs the members in order.
    let worker = root.join("worker");
    let members = members(jobs);
    let runs: Vec<String> = members
        .iter()
        .map(|m| format!("/bin/sh {}", m.script.display()))
        .collect();
    std::fs::write(&worker, format!("#!/bin/sh\n{}\nexit 0\n", runs.join("\n"))).unwrap();
    std::fs::set_permissions(&worker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (pack, scripts) = render(jobs, &shared, &worker);
    for (m, text) in members.iter().zip(scripts) {
        std::fs::write(&m.script, text).unwrap();
    }
    let path = root.join("pack.sbatch");
    std::fs::write(&path, pack).unwrap();
    (path, bin)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn members_run_in_one_instance_with_their_own_dir_env_logs_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let script = "printf '%s' \"$PWD\" >where; printf '%s' \"$MEMBER\" >who; \
                  echo \"out $MEMBER\"; echo \"err $MEMBER\" >&2; \
                  [ \"$MEMBER\" != m1 ] || exit 5";
    let jobs: Vec<Job> = (0..3).map(|i| job(root, i, script)).collect();
    let (pack, bin) = stage(root, &jobs);
    let out = std::process::Command::new("/bin/sh")
        .arg(&pack)
        .env("PATH", &bin)
        .env("MEMBER", "leaked from the host")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "the worker's status");
    let log = read(&bin.join("apptainer.log"));
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5, "{log}");
    assert!(
        lines[0].starts_with("start instance start --no-eval ")
            && lines[0].ends_with(&format!(
                " --writable-tmpfs {} {NAME}",
                root.join("images/hmsc.sif").display()
            )),
        "{log}"
    );
    for (i, j) in jobs.iter().enumerate() {
        let bind = format!(" --bind={0}:{0} ", j.workdir.display());
        assert!(lines[0].contains(&bind), "{bind}: {log}");
        assert_eq!(
            lines[i + 1],
            format!(
                "exec --no-eval --pwd={} instance://{NAME}",
                j.workdir.display()
            )
        );
        assert_eq!(
            read(&j.workdir.join("where")),
            j.workdir.display().to_string()
        );
        assert_eq!(read(&j.workdir.join("who")), format!("m{i}"));
        assert_eq!(read(&j.stdout), format!("out m{i}\n"));
        assert_eq!(read(&j.stderr), format!("err m{i}\n"));
        let status = if i == 1 { "5\n" } else { "0\n" };
        assert_eq!(read(&j.stdout.with_extension("status")), status, "task {i}");
    }
    assert_eq!(lines[4], format!("stop instance stop --force {NAME}"));
    assert!(!bin.join(format!("instance.{NAME}")).exists());
}

#[test]
fn a_terminated_pack_script_stops_its_instance() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let jobs = vec![job(root, 0, "sleep 30")];
    let (pack, bin) = stage(root, &jobs);
    let mut child = std::process::Command::new("/bin/sh")
        .arg(&pack)
        .env("PATH", &bin)
        .process_group(0)
        .spawn()
        .unwrap();
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let log = bin.join("apptainer.log");
    let started = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("\nexec ")) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the member never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGTERM to the pack script alone, as the slowest case of `scancel`
    // (which signals every process of the job).
    kill(group, Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let _ = killpg(group, Signal::SIGKILL);
    assert_eq!(status.code(), Some(143));
    let log = read(&log);
    assert!(
        log.ends_with(&format!("stop instance stop --force {NAME}\n")),
        "{log}"
    );
    assert!(!bin.join(format!("instance.{NAME}")).exists());
    assert!(
        !jobs[0].stdout.with_extension("status").exists(),
        "a killed task writes no status"
    );
}
