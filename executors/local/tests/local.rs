//! The local executor against real processes: detachment from the terminal,
//! standard streams and their logs, environment, exit statuses and killing.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use twinflow_core::{
    AttemptKey, AttemptStatus, Executor, Job, Resources, TaskId, Update, UpdateSink,
};
use twinflow_executor_local::LocalExecutor;

#[derive(Debug)]
struct Sink(mpsc::UnboundedSender<Update>);

impl UpdateSink for Sink {
    fn send(&self, update: Update) {
        let _ = self.0.send(update);
    }
}

fn setup() -> (
    LocalExecutor,
    mpsc::UnboundedReceiver<Update>,
    tempfile::TempDir,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let exec = LocalExecutor::new("here", Arc::new(Sink(tx)), Duration::from_millis(300));
    (exec, rx, tempfile::tempdir().unwrap())
}

fn run_ref(id: &'static str) -> twinflow_core::RunRef<'static> {
    let dir: &'static std::path::Path = match id {
        "lost-run" => std::path::Path::new("/runs/lost-run"),
        _ => std::path::Path::new("/runs/some-run"),
    };
    twinflow_core::RunRef { id, dir }
}

fn job(dir: &std::path::Path, task: u32, script: &str) -> Job {
    Job {
        key: AttemptKey {
            task: TaskId(task),
            attempt: 0,
        },
        name: format!("t{task}"),
        script: script.to_owned(),
        env: vec![("TWINFLOW_TASK_NAME".into(), format!("t{task}"))],
        workdir: dir.to_owned(),
        stdout: dir.join(format!("{task}.out")),
        stderr: dir.join(format!("{task}.err")),
        resources: Resources::default(),
        step: "local".to_owned(),
        pack: None,
        launcher: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        group: None,
    }
}

async fn final_status(rx: &mut mpsc::UnboundedReceiver<Update>) -> AttemptStatus {
    loop {
        let update = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        if update.status.is_final() {
            return update.status;
        }
    }
}

fn session_of(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[3].to_owned()
}

#[tokio::test]
async fn a_task_runs_detached_with_its_own_session_streams_and_environment() {
    let (exec, mut rx, dir) = setup();
    let script = "echo $$ > pid; echo \"$TWINFLOW_TASK_NAME\"; readlink /proc/self/fd/0 > stdin; \
                  cat /proc/$$/stat > stat; echo oops >&2";
    exec.submit(job(dir.path(), 1, script)).await.unwrap();
    let status = final_status(&mut rx).await;
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(status, AttemptStatus::Exited(0), "{}", read("1.err"));
    assert_eq!(read("1.out"), "t1\n");
    assert_eq!(read("1.err"), "oops\n");
    assert_eq!(read("stdin").trim(), "/dev/null");
    // Its own session (so no controlling terminal) led by the shell itself.
    let pid = read("pid").trim().to_owned();
    let stat = read("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(fields[3], pid, "session id is the task's pid");
    assert_eq!(fields[2], pid, "process group id is the task's pid");
    assert_eq!(fields[4], "0", "no controlling terminal");
    assert_ne!(session_of("self"), pid);
}

#[tokio::test]
async fn exit_statuses_and_set_e_are_reported() {
    let (exec, mut rx, dir) = setup();
    exec.submit(job(dir.path(), 1, "false; echo unreachable"))
        .await
        .unwrap();
    assert_eq!(final_status(&mut rx).await, AttemptStatus::Exited(1));
    exec.submit(job(dir.path(), 2, "kill -SEGV $$"))
        .await
        .unwrap();
    assert_eq!(
        final_status(&mut rx).await,
        AttemptStatus::Signalled("killed by SIGSEGV".into())
    );
    // It wrote nothing, so it has no log files (created on the first byte).
    assert!(!dir.path().join("1.out").exists());
    assert!(!dir.path().join("1.err").exists());
}

#[tokio::test]
async fn logs_keep_every_byte_of_a_chatty_task_and_a_silent_one_leaves_none() {
    let (exec, mut rx, dir) = setup();
    // 3 MiB on stdout (many times a pipe's capacity) while stderr gets a
    // line per 64 KiB, then a last line on each after a pause.
    let script = "i=0; while [ $i -lt 48 ]; do head -c 65536 /dev/zero | tr '\\0' x; \
                  echo \"block $i\" >&2; i=$((i+1)); done; sleep 0.2; echo end; echo end >&2";
    exec.submit(job(dir.path(), 1, script)).await.unwrap();
    exec.submit(job(dir.path(), 2, ": silent")).await.unwrap();
    assert_eq!(final_status(&mut rx).await, AttemptStatus::Exited(0));
    assert_eq!(final_status(&mut rx).await, AttemptStatus::Exited(0));
    let out = std::fs::read(dir.path().join("1.out")).unwrap();
    assert_eq!(out.len(), 48 * 65536 + 4);
    assert!(out[..48 * 65536].iter().all(|&b| b == b'x'));
    assert!(out.ends_with(b"end\n"));
    let err = std::fs::read_to_string(dir.path().join("1.err")).unwrap();
    let expected: String = (0..48).map(|i| format!("block {i}\n")).collect();
    assert_eq!(err, expected + "end\n");
    assert!(!dir.path().join("2.out").exists());
    assert!(!dir.path().join("2.err").exists());
}

#[tokio::test]
async fn a_log_on_a_full_disk_fails_the_attempt_with_its_path_but_silence_does_not() {
    let (exec, mut rx, dir) = setup();
    // /dev/full takes the open and refuses every write with ENOSPC.
    let mut chatty = job(dir.path(), 1, "echo results; echo more");
    chatty.stdout = "/dev/full".into();
    exec.submit(chatty).await.unwrap();
    let AttemptStatus::Error(message) = final_status(&mut rx).await else {
        panic!("a lost log must not pass for success");
    };
    assert!(
        message.contains("failed to write its log /dev/full") && message.contains("No space left"),
        "{message}"
    );
    let mut silent = job(dir.path(), 2, "true");
    silent.stdout = "/dev/full".into();
    exec.submit(silent).await.unwrap();
    assert_eq!(final_status(&mut rx).await, AttemptStatus::Exited(0));
}

#[tokio::test]
async fn a_process_that_left_the_group_with_the_logs_open_does_not_hold_the_task() {
    let (exec, mut rx, dir) = setup();
    // The escapee keeps stdout open for 30 s; the task ends at once.
    let script = "setsid sh -c 'echo $$ > escapee; sleep 30' & sleep 0.2; echo done";
    exec.submit(job(dir.path(), 1, script)).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), final_status(&mut rx)).await;
    if let Ok(pid) = std::fs::read_to_string(dir.path().join("escapee")) {
        let pid = nix::unistd::Pid::from_raw(pid.trim().parse().unwrap());
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    }
    assert_eq!(status.expect("the end in time"), AttemptStatus::Exited(0));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("1.out")).unwrap(),
        "done\n"
    );
}

#[tokio::test]
async fn background_processes_die_with_their_task() {
    let (exec, mut rx, dir) = setup();
    exec.submit(job(dir.path(), 1, "sleep 60 & echo $! > child"))
        .await
        .unwrap();
    assert_eq!(final_status(&mut rx).await, AttemptStatus::Exited(0));
    let child = std::fs::read_to_string(dir.path().join("child")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "child still running: {stat}"
    );
}

#[tokio::test]
async fn cancel_and_shutdown_kill_the_group_even_when_it_ignores_sigterm() {
    let (exec, mut rx, dir) = setup();
    let handle = exec
        .submit(job(dir.path(), 1, "trap '' TERM; sleep 60 & wait"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    exec.cancel(
        AttemptKey {
            task: TaskId(1),
            attempt: 0,
        },
        &handle,
    )
    .await
    .unwrap();
    assert_eq!(final_status(&mut rx).await, AttemptStatus::Cancelled);

    exec.submit(job(dir.path(), 2, "trap '' TERM; sleep 60 & wait"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(exec.running(), 1);
    exec.shutdown().await;
    assert_eq!(exec.running(), 0);
}

#[tokio::test]
async fn submit_returns_before_the_task_starts_and_a_cancel_then_still_kills_it() {
    let (exec, mut rx, dir) = setup();
    // The dispatch loop is not held while the supervisor starts the shell.
    let handle = exec
        .submit(job(
            dir.path(),
            1,
            "echo $$ > pid; sleep 60.7; touch survived",
        ))
        .await
        .unwrap();
    assert_eq!(handle.0, "local-starting");
    // Cancelled before its start was reported: the signal follows the start.
    let key = AttemptKey {
        task: TaskId(1),
        attempt: 0,
    };
    exec.cancel(key, &handle).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let update = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        let last = update.status.is_final();
        seen.push(update.status);
        if last {
            break;
        }
    }
    assert_eq!(seen.last(), Some(&AttemptStatus::Cancelled), "{seen:?}");
    assert!(
        matches!(&seen[0], AttemptStatus::Submitted(h) if h.0.starts_with("pid:")),
        "{seen:?}"
    );
    assert_eq!(exec.running(), 0);
    assert!(!dir.path().join("survived").exists());
}

#[tokio::test]
async fn reattach_kills_an_orphan_but_not_a_reused_pid() {
    let (exec, mut rx, dir) = setup();
    // An orphan from "an earlier process": a detached sleep we started.
    exec.submit(job(dir.path(), 1, "sleep 60")).await.unwrap();
    let handle = started(&mut rx).await;
    let pid: u32 = handle.0.split(':').nth(1).unwrap().parse().unwrap();
    let wrong = twinflow_core::Handle(format!("pid:{}:1", std::process::id()));
    let key = AttemptKey {
        task: TaskId(1),
        attempt: 0,
    };
    let followed = exec
        .reattach(
            run_ref("some-run"),
            vec![(key, handle.clone()), (key, wrong)],
        )
        .await
        .unwrap();
    assert!(followed.is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "orphan survived: {stat}"
    );
    // The test process itself (a live pid with another start time) is untouched.
}

#[tokio::test]
async fn a_missing_working_directory_is_an_error_not_a_panic() {
    let (exec, mut rx, dir) = setup();
    let mut j = job(dir.path(), 1, "true");
    j.workdir = dir.path().join("nope");
    // Handed over at once; the failure to start follows as its status.
    exec.submit(j).await.unwrap();
    match final_status(&mut rx).await {
        AttemptStatus::Error(message) => assert!(
            message.contains("failed to start /bin/sh for t1") && message.contains("nope"),
            "{message}"
        ),
        other => panic!("not an error: {other:?}"),
    }
}

/// The `pid:START` handle of the first attempt that starts.
async fn started(rx: &mut mpsc::UnboundedReceiver<Update>) -> twinflow_core::Handle {
    loop {
        let update = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        if let AttemptStatus::Submitted(handle) = update.status {
            assert!(handle.0.starts_with("pid:"), "{handle}");
            return handle;
        }
    }
}

#[tokio::test]
async fn reattach_kills_tasks_of_the_run_whose_handle_was_never_recorded() {
    let (exec, _rx, _dir) = setup();
    // A task root of run `lost-run` this executor never heard of.
    let mut lost = std::process::Command::new("setsid")
        .args(["sh", "-c", "sleep 60"])
        .env("TWINFLOW_RUN_ID", "lost-run")
        .env("TWINFLOW_RUN_DIR", "/runs/lost-run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // And one of a run with the same id in another state directory, which
    // must survive.
    let mut other = std::process::Command::new("setsid")
        .args(["sh", "-c", "sleep 60"])
        .env("TWINFLOW_RUN_ID", "lost-run")
        .env("TWINFLOW_RUN_DIR", "/elsewhere/runs/lost-run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    exec.reattach(run_ref("lost-run"), Vec::new())
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(s) = lost.try_wait().unwrap() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the lost task was killed");
    assert!(!status.success());
    assert!(
        other.try_wait().unwrap().is_none(),
        "a task of the same run id in another state directory was touched"
    );
    // Its whole group (sh may have forked the sleep).
    let group = nix::unistd::Pid::from_raw(i32::try_from(other.id()).unwrap());
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = other.wait();
}

/// Every update until each of `tasks` has a final one.
async fn until_all_final(
    rx: &mut mpsc::UnboundedReceiver<Update>,
    tasks: usize,
) -> Vec<(u32, AttemptStatus)> {
    let mut seen = Vec::new();
    let mut done = 0;
    while done < tasks {
        let update = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an update in time")
            .expect("the sink is open");
        done += usize::from(update.status.is_final());
        seen.push((update.key.task.0, update.status));
    }
    seen
}

#[tokio::test]
async fn attempts_beyond_the_slots_wait_in_the_supervisor_and_start_as_one_ends() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let exec =
        LocalExecutor::new("here", Arc::new(Sink(tx)), Duration::from_millis(300)).with_slots(1);
    assert_eq!(exec.holds_ahead(), 1, "the runtime may hand it one more");
    let dir = tempfile::tempdir().unwrap();
    let stamp = |f: &str| format!("date +%s.%N > {f}; sleep 0.3; date +%s.%N > {f}.end");
    let jobs = vec![
        job(dir.path(), 1, &stamp("a")),
        job(dir.path(), 2, &stamp("b")),
        job(dir.path(), 3, "touch never"),
    ];
    let handles = exec.submit_batch(jobs).await;
    assert!(handles.iter().all(|h| h.is_ok()), "{handles:?}");
    // The third is cancelled while it waits: it never runs.
    exec.cancel(
        AttemptKey {
            task: TaskId(3),
            attempt: 0,
        },
        &twinflow_core::Handle("local-starting".to_owned()),
    )
    .await
    .unwrap();
    let seen = until_all_final(&mut rx, 3).await;
    let of = |t: u32| -> Vec<&AttemptStatus> {
        seen.iter()
            .filter(|(k, _)| *k == t)
            .map(|(_, s)| s)
            .collect()
    };
    assert_eq!(of(1).last(), Some(&&AttemptStatus::Exited(0)), "{seen:?}");
    assert!(!of(1).contains(&&AttemptStatus::Queued), "{seen:?}");
    assert_eq!(of(2)[0], &AttemptStatus::Queued, "{seen:?}");
    assert_eq!(of(2).last(), Some(&&AttemptStatus::Exited(0)), "{seen:?}");
    assert_eq!(of(3), [&AttemptStatus::Queued, &AttemptStatus::Cancelled]);
    let at = |f: &str| -> f64 {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(at("b") >= at("a.end"), "one slot: b began after a ended");
    assert!(!dir.path().join("never").exists());
    assert_eq!(exec.running(), 0);
}
