//! The wrapped command line run by real podman (`deploy/dev/podman-up`),
//! skipped unless `TWINFLOW_TEST_PODMAN=1`: a bind-mounted task directory,
//! a symlinked input from outside it, the environment inside, exit codes
//! unchanged, and a `--init` container gone after `podman kill` by name.

#![expect(clippy::unwrap_used, reason = "helpers of a test fail it")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use twinflow_core::{ContainerRuntime, ImageRef, TaskId};
use twinflow_launch::{
    ContainerLaunch, HostUser, ImageResolver, Launch, LaunchSpec, LocalRunner, Network,
    PodmanResolver, ResolvedImage, container_name, launch,
};

fn enabled() -> bool {
    if std::env::var("TWINFLOW_TEST_PODMAN").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: needs TWINFLOW_TEST_PODMAN=1 and deploy/dev/podman-up");
    false
}

fn image() -> ImageRef {
    let name = std::env::var("TWINFLOW_PODMAN_BUSYBOX")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "localhost/twinflow-busybox:1".into());
    ImageRef::parse(&name).unwrap()
}

fn user() -> HostUser {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    HostUser {
        uid: id("-u"),
        gid: id("-g"),
    }
}

fn wrapped(
    resolved: &ResolvedImage,
    name: &str,
    workdir: &Path,
    inputs: &[PathBuf],
    env: &[(String, String)],
    script: &str,
) -> Launch {
    let c = ContainerLaunch {
        runtime: ContainerRuntime::Podman,
        image: &resolved.image,
        resolved: Some(resolved),
        options: &[],
        name,
        network: &Network::Host,
        user: user(),
    };
    launch(&LaunchSpec {
        script,
        workdir,
        inputs,
        env,
        gpus: None,
        container: Some(&c),
    })
    .unwrap()
}

fn command(l: &Launch) -> Command {
    let mut cmd = Command::new(&l.argv[0]);
    cmd.args(&l.argv[1..])
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&l.workdir)
        .stdin(Stdio::null());
    cmd
}

fn exists(name: &str) -> bool {
    Command::new("podman")
        .args(["container", "exists", name])
        .status()
        .unwrap()
        .success()
}

#[test]
fn a_task_runs_in_the_image_with_its_files_env_and_exit_status() {
    if !enabled() {
        return;
    }
    let resolver = PodmanResolver::new(ContainerRuntime::Podman, LocalRunner::new());
    let resolved = resolver.resolve(&image()).unwrap();
    assert!(resolved.digest.starts_with("sha256:"), "{resolved:?}");

    // A producer's output outside the task directory, staged as a symlink.
    let producer = tempfile::tempdir().unwrap();
    let source = producer.path().canonicalize().unwrap().join("drivers.csv");
    std::fs::write(&source, "year,t\n2020,8.5\n").unwrap();
    let task = tempfile::tempdir().unwrap();
    let workdir = task.path().canonicalize().unwrap();
    std::fs::create_dir(workdir.join("inputs")).unwrap();
    std::os::unix::fs::symlink(&source, workdir.join("inputs/drivers.csv")).unwrap();

    let value = "it's $(echo pwned) `x`\nsecond line";
    let env = vec![
        ("TWINFLOW_RUN_ID".to_owned(), "r-live".to_owned()),
        ("TWINFLOW_PARAM_LABEL".to_owned(), value.to_owned()),
    ];
    let name = container_name("r-live", TaskId(1), 0);
    let script = "cp inputs/drivers.csv out.csv\n\
                  printf '%s' \"$TWINFLOW_PARAM_LABEL\" > label.txt\n\
                  pwd > pwd.txt\n\
                  echo to-stderr >&2\n\
                  exit 3";
    let l = wrapped(
        &resolved,
        &name,
        &workdir,
        std::slice::from_ref(&source),
        &env,
        script,
    );
    let out = command(&l).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.trim(), "to-stderr");
    assert_eq!(
        std::fs::read_to_string(workdir.join("out.csv")).unwrap(),
        "year,t\n2020,8.5\n"
    );
    assert_eq!(
        std::fs::read_to_string(workdir.join("label.txt")).unwrap(),
        value
    );
    assert_eq!(
        std::fs::read_to_string(workdir.join("pwd.txt"))
            .unwrap()
            .trim(),
        workdir.to_str().unwrap()
    );
    // The input is bound read-only.
    let l = wrapped(
        &resolved,
        &container_name("r-live", TaskId(1), 1),
        &workdir,
        std::slice::from_ref(&source),
        &env,
        "echo changed > inputs/drivers.csv",
    );
    let out = command(&l).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&source).unwrap(),
        "year,t\n2020,8.5\n"
    );
    assert!(!exists(&name), "--rm left {name}");
}

#[test]
fn a_killed_init_container_is_gone_and_reports_the_signal() {
    if !enabled() {
        return;
    }
    let resolver = PodmanResolver::new(ContainerRuntime::Podman, LocalRunner::new());
    let resolved = resolver.resolve(&image()).unwrap();
    let task = tempfile::tempdir().unwrap();
    let workdir = task.path().canonicalize().unwrap();
    let name = container_name("r-live-kill", TaskId(7), 2);
    // A child that ignores nothing and a grandchild: both must go.
    let l = wrapped(
        &resolved,
        &name,
        &workdir,
        &[],
        &[],
        "sleep 300 & sleep 300",
    );
    let mut child = command(&l)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !exists(&name) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Command::new("podman")
        .args(["kill", "--signal=TERM", &name])
        .output()
        .unwrap();
    assert!(
        killed.status.success(),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let status = child.wait().unwrap();
    // catatonit hands SIGTERM to the script, which dies of it: 128 + 15.
    assert_eq!(status.code(), Some(143));
    let start = Instant::now();
    while exists(&name) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name} outlived its task"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One shared container, three tasks side by side through `exec`: each
/// has its own directory, environment, output and exit status; killing
/// one (its `.stop` marker, then the killer) ends it and its child while
/// the others go on; a task stopped before it started never runs; the
/// stop removes the container and everything in it.
#[test]
fn tasks_in_a_shared_container_keep_their_own_status_and_die_alone() {
    use twinflow_launch::{
        SharedSpec, SharedTask, exec_shared, kill_shared_task, start_shared, stop_shared,
    };
    if !enabled() {
        return;
    }
    let resolver = PodmanResolver::new(ContainerRuntime::Podman, LocalRunner::new());
    let resolved = resolver.resolve(&image()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    let dirs: Vec<PathBuf> = (0..4).map(|i| root.join(format!("work/{i}"))).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let pids = root.join("pack.d");
    std::fs::create_dir_all(&pids).unwrap();
    let name = format!("tf-r-live-shared-{}", std::process::id());
    let mut rw = dirs.clone();
    rw.push(pids.clone());
    let c = ContainerLaunch {
        runtime: ContainerRuntime::Podman,
        image: &resolved.image,
        resolved: Some(&resolved),
        options: &[],
        name: &name,
        network: &Network::Host,
        user: user(),
    };
    let start = start_shared(&SharedSpec {
        container: &c,
        rw: &rw,
        ro: &[],
    })
    .unwrap();
    let out = Command::new(&start[0]).args(&start[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stop = stop_shared(ContainerRuntime::Podman, &name);
    let _stop = Defer(stop.clone());
    let env = |i: usize| vec![("N".to_owned(), i.to_string())];
    let pid = |i: usize| pids.join(format!("{i}.pid"));
    let run = |i: usize, script: &str| {
        let env = env(i);
        let pid = pid(i);
        let l = exec_shared(
            ContainerRuntime::Podman,
            &name,
            &SharedTask {
                script,
                workdir: &dirs[i],
                env: &env,
                pid_file: &pid,
            },
        )
        .unwrap();
        command(&l)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let ok = run(0, "echo \"$N\" > n.txt; pwd; exit 0");
    let failing = run(1, "echo \"failing $N\" >&2; exit 4");
    let victim = run(2, "sleep 300 & touch started; sleep 300");
    // Stopped before it started: it never runs.
    std::fs::write(pids.join("3.pid.stop"), "").unwrap();
    let never = run(3, "touch ran");
    let since = Instant::now();
    while !dirs[2].join("started").exists() {
        assert!(since.elapsed() < Duration::from_secs(30), "never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(pids.join("2.pid.stop"), "").unwrap();
    let kill = kill_shared_task(ContainerRuntime::Podman, &name, &pid(2)).unwrap();
    let out = Command::new(&kill[0]).args(&kill[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let victim = victim.wait_with_output().unwrap();
    assert_eq!(victim.status.code(), Some(137));
    let never = never.wait_with_output().unwrap();
    assert_eq!(never.status.code(), Some(143));
    assert!(!dirs[3].join("ran").exists());
    let ok = ok.wait_with_output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        dirs[0].to_str().unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("n.txt")).unwrap(),
        "0\n"
    );
    let failing = failing.wait_with_output().unwrap();
    assert_eq!(failing.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&failing.stderr).trim(), "failing 1");
    // Nothing of the killed task is left in the container; the container is.
    let ps = Command::new("podman")
        .args(["top", &name, "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(!ps.contains("sleep 300"), "{ps}");
    assert!(exists(&name));
    let out = Command::new(&stop[0]).args(&stop[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!exists(&name));
}

/// Runs an argument vector when dropped (the stop, however the test ends).
struct Defer(Vec<std::ffi::OsString>);

impl Drop for Defer {
    fn drop(&mut self) {
        let _ = Command::new(&self.0[0]).args(&self.0[1..]).output();
    }
}
