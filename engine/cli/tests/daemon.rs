//! The daemon as a user drives it from the command line: start, submit,
//! watch, stop; and `kill -9` of the daemon while its Slurm jobs queue and
//! run, after which a new daemon takes them back without submitting any of
//! them twice; and of the daemon while a local task runs, whose orphan the
//! next daemon kills and runs again.

mod common;

use common::{daemon, tasks, text, twinflow, wait_until};
use std::path::PathBuf;
use std::time::Duration;

/// How long a daemon test waits for anything.
const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn start_submit_watch_and_stop_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let o = twinflow(&state, &["submit", "nowhere.yaml"]);
    assert_eq!(o.status.code(), Some(2), "a missing file is checked first");
    let file = dir.path().join("hello.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: hello\nsteps:\n  hi:\n    for_each: { i: [1, 2] }\n    run: echo hi ${{ i }}\n",
    )
    .expect("write workflow");
    let file = file.to_str().expect("utf-8");
    let o = twinflow(&state, &["submit", file]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "no daemon yet: {}",
        text(&o.stderr)
    );
    assert!(text(&o.stderr).contains("twinflow daemon start"));

    let o = twinflow(&state, &["daemon", "start"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["daemon", "start"]);
    assert!(
        text(&o.stderr).contains("already runs"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(&state, &["submit", file]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("succeeded in") && text(&o.stderr).contains(": 2 tasks, 2 ran"),
        "{}",
        text(&o.stderr)
    );
    let o = twinflow(&state, &["daemon", "stop"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = twinflow(&state, &["daemon", "status"]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn a_daemon_killed_with_sigkill_is_replaced_and_takes_its_slurm_jobs_back() {
    if std::env::var("TWINFLOW_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: TWINFLOW_TEST_SLURM is not 1 (scripts/test starts Slurm and sets it)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let state: PathBuf = dir.path().join("state");
    let file = dir.path().join("jobs.yaml");
    std::fs::write(
        &file,
        r#"
version: 1
name: daemon-jobs
executors: { hpc: { kind: slurm, partition: debug } }
steps:
  slow:
    executor: hpc
    for_each: { i: [1, 2, 3] }
    resources: { time: 2m }
    run: sleep 4; echo "$SLURM_ARRAY_JOB_ID" > ${{ outputs.job }}
    outputs: { job: job.txt }
  after:
    executor: hpc
    needs: { jobs: slow.job }
    resources: { time: 2m }
    run: cat ${{ inputs.jobs }} | sort -u | wc -l > ${{ outputs.n }}
    outputs: { n: n.txt }
"#,
    )
    .expect("write workflow");
    let mut first = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let mut before = Vec::new();
    wait_until("the three jobs to run in Slurm", LIMIT, || {
        before = tasks(&state, &run);
        before
            .iter()
            .filter(|(n, s, h)| n.starts_with("slow") && s == "running" && h.starts_with("slurm:"))
            .count()
            == 3
    });
    first.kill().expect("SIGKILL the daemon");
    let _ = first.wait();

    let mut second = daemon(&state, None);
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let after = tasks(&state, &run);
    for (name, _, handle) in before.iter().filter(|(n, _, _)| n.starts_with("slow")) {
        let now = after.iter().find(|(n, _, _)| n == name).expect("the task");
        assert_eq!(now.1, "succeeded", "{name}");
        assert_eq!(&now.2, handle, "{name} was submitted again");
    }
    // One array ran the three: each wrote the same array id.
    let status = twinflow(&state, &["status", &run, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let run_dir = v["run"]["run_dir"].as_str().expect("run dir").to_owned();
    let n = std::fs::read_to_string(format!("{run_dir}/work/after/0/n.txt")).expect("n.txt");
    assert_eq!(n.trim(), "1");
    let _ = second.kill();
    let _ = second.wait();
}

/// Whether `pid` runs (a zombie has exited).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Local tasks of a daemon killed with SIGKILL keep running under their
/// supervisor; the next daemon, started while the killed one is still an
/// unreaped zombie (which counts as dead), takes the run up, adopts the
/// running task and follows it to its end, and runs nothing twice.
#[test]
fn local_tasks_of_a_killed_daemon_are_adopted_by_the_next_and_run_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state: PathBuf = dir.path().join("state");
    let here = dir.path().display().to_string();
    let file = dir.path().join("local.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
version: 1
name: daemon-local
steps:
  quick:
    run: echo once >> {here}/quick.count; echo done > ${{{{ outputs.o }}}}
    outputs: {{ o: o.txt }}
  slow:
    after: [quick]
    run: |
      echo $$ >> {here}/slow.pid
      sleep 3
      echo $$ >> {here}/slow.done
"#
        ),
    )
    .expect("write workflow");
    let mut first = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let pid_file = dir.path().join("slow.pid");
    let mut pid = 0;
    wait_until("the slow task to start", LIMIT, || {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        pid != 0
    });
    // SIGKILL, and no wait: the daemon stays a zombie while the next starts.
    first.kill().expect("SIGKILL the daemon");
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid), "the task went down with the daemon");

    let mut second = daemon(&state, None);
    let o = twinflow(&state, &["watch", &run]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let _ = first.wait();
    let ran = std::fs::read_to_string(&pid_file).expect("slow.pid");
    assert_eq!(ran.lines().count(), 1, "slow ran again: {ran}");
    let done = std::fs::read_to_string(dir.path().join("slow.done")).expect("slow.done");
    assert_eq!(done.lines().count(), 1, "the adopted task ran to its end");
    let count = std::fs::read_to_string(dir.path().join("quick.count")).expect("quick.count");
    assert_eq!(count.lines().count(), 1, "the finished task ran again");
    let slow = tasks(&state, &run)
        .into_iter()
        .find(|(n, _, _)| n == "slow")
        .expect("the slow task");
    assert_eq!(slow.1, "succeeded");
    let _ = second.kill();
    let _ = second.wait();
}

/// A `watch` that starts after some tasks ended shows them as done (the
/// daemon's progress line), then follows the rest to the end.
#[test]
fn a_late_watch_starts_from_what_is_already_done() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state: PathBuf = dir.path().join("state");
    let gate = dir.path().join("gate");
    let file = dir.path().join("late.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: late\nsteps:\n  quick:\n    for_each: {{ i: [1, 2, 3] }}\n    run: 'true'\n  gated:\n    run: while [ ! -e {} ]; do sleep 0.1; done\n",
            gate.display()
        ),
    )
    .expect("write workflow");
    let mut d = daemon(&state, None);
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    wait_until("the quick tasks to succeed", LIMIT, || {
        tasks(&state, &run)
            .iter()
            .filter(|(n, s, _)| n.starts_with("quick") && s == "succeeded")
            .count()
            == 3
    });
    let watch = std::process::Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["watch", &run, "--state-dir"])
        .arg(&state)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn watch");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&gate, "").expect("open the gate");
    let o = watch.wait_with_output().expect("watch ends");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("3/4 tasks done so far"), "{err}");
    assert!(err.contains("step gated finished: 1/1"), "{err}");
    assert!(err.contains(": 4 tasks, 4 ran"), "{err}");
    let _ = d.kill();
    let _ = d.wait();
}

/// SIGTERM (what systemd sends) stops the daemon cleanly: it exits 0,
/// removes its socket, and a new one starts on the same state directory.
#[test]
fn sigterm_stops_the_daemon_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state: PathBuf = dir.path().join("state");
    let mut d = daemon(&state, None);
    let pid = i32::try_from(d.id()).expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM the daemon");
    let status = d.wait().expect("the daemon exits");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        !state.join("daemon/twinflow.sock").exists(),
        "the socket was left behind"
    );
    let o = twinflow(&state, &["daemon", "status"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let mut again = daemon(&state, None);
    let _ = again.kill();
    let _ = again.wait();
}

#[test]
fn the_listener_speaks_https_and_plain_http_needs_its_flag_and_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let access = state.join("daemon/token");
    let o = twinflow(&state, &["daemon", "start", "--listen-plain-http"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "needs --listen: {}",
        text(&o.stderr)
    );
    // HTTPS by default, also beyond this machine: no warning.
    let o = twinflow(&state, &["daemon", "start", "--listen", "0.0.0.0:0"]);
    let _ = twinflow(&state, &["daemon", "stop"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("https, certificate sha-256 "), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let file = std::fs::read_to_string(&access).expect("the access file");
    assert!(file.contains("\ntls-sha256 "), "{file}");
    // Plain http when asked: warned on the terminal and in the log, and
    // the access file says so.
    let o = twinflow(
        &state,
        &[
            "daemon",
            "start",
            "--listen",
            "0.0.0.0:0",
            "--listen-plain-http",
        ],
    );
    let _ = twinflow(&state, &["daemon", "stop"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("warning: listening on 0.0.0.0:") && err.contains("with plain http"),
        "{err}"
    );
    let log = std::fs::read_to_string(state.join("daemon/daemon.log")).expect("the log");
    assert!(
        log.contains("with plain http (--listen-plain-http)"),
        "{log}"
    );
    let file = std::fs::read_to_string(&access).expect("the access file");
    assert!(
        file.contains("\nplain-http yes") && !file.contains("tls-sha256"),
        "{file}"
    );
}

/// A local user other than the one running the tests (made if missing);
/// `None` unless the tests run as root.
fn second_user() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to act as a second user");
        return None;
    }
    let user = "twinflow-peer-test";
    let exists = std::process::Command::new("id")
        .arg(user)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let added = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                user,
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(added, "useradd {user}");
    }
    Some(user)
}

#[test]
fn another_user_is_told_the_daemon_is_not_theirs() {
    let Some(user) = second_user() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let mut daemon = daemon(&state, None);
    let as_other = || {
        std::process::Command::new("runuser")
            .args([
                "-u",
                user,
                "--",
                env!("CARGO_BIN_EXE_twinflow"),
                "runs",
                "--state-dir",
            ])
            .arg(&state)
            .env("NO_COLOR", "1")
            .output()
            .expect("run runuser")
    };
    // The socket's directory keeps the other user out, and the socket's
    // peer check refuses them once it is opened up: the same words.
    let shut = as_other();
    use std::os::unix::fs::PermissionsExt as _;
    let paths = twinflow_daemon::DaemonPaths::new(&state);
    for p in [dir.path(), &state, &paths.dir, &paths.socket] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let open = as_other();
    let _ = daemon.kill();
    let _ = daemon.wait();
    for o in [shut, open] {
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(
            err.contains("permission denied: the daemon belongs to another user"),
            "{err}"
        );
        assert!(!err.contains("start one"), "{err}");
    }
}
