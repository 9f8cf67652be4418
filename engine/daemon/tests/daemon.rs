//! A real daemon booted in-process per test, in its own state directory,
//! driven through its [`Client`] (and, for the peer check, by another local
//! user). None of these daemons listens on TCP (`tcp.rs` tests that).
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

mod common;

use common::{Daemon, engine, request, tcp_ports_listened_on, wait_for_end};
use std::path::Path;
use twinflow_daemon::api::{LogStream, NotFound};
use twinflow_daemon::{Client, DaemonError, DaemonPaths, ServeOptions};

/// A daemon on its Unix socket only.
fn start() -> Daemon {
    Daemon::start_with(ServeOptions::default())
}

const TWO_STEPS: &str = r#"
version: 1
name: two-steps
executors: { here: { kind: local, slots: 2 } }
steps:
  gen:
    for_each: { i: [1, 2, 3] }
    run: echo ${{ i }} > ${{ outputs.n }}
    outputs: { n: n.txt }
  sum:
    needs: { all: gen.n }
    run: cat ${{ inputs.all }} | paste -sd+ - > ${{ outputs.total }}
    outputs: { total: total.txt }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_submitted_run_goes_on_in_the_daemon_and_is_watched_to_its_end() {
    let daemon = start();
    let client = daemon.client();
    let ping = client.ping().await.unwrap();
    assert_eq!(ping.pid, std::process::id());
    let file = daemon.workflow("two.yaml", TWO_STEPS);
    let run = client.submit(&request(file.clone())).await.unwrap();
    assert!(run.run_id.starts_with("two-"), "{}", run.run_id);
    let mut events = client.events(&run.run_id).await.unwrap();
    let mut last = serde_json::Value::Null;
    while let Some(event) = events.next().await.unwrap() {
        last = event;
    }
    assert_eq!(last["event"], "run-finished", "{last}");
    assert_eq!(last["outcome"], "succeeded", "{last}");
    // A watcher who comes after the end gets the end.
    let mut late = client.events(&run.run_id).await.unwrap();
    assert_eq!(late.next().await.unwrap(), Some(last));
    assert_eq!(late.next().await.unwrap(), None);
    let total = std::fs::read_to_string(Path::new(&run.run_dir).join("work/sum/0/total.txt"));
    assert_eq!(total.unwrap(), "1+2+3\n");
    let status = client.status(&run.run_id).await.unwrap();
    assert_eq!(status.run.state.as_str(), "succeeded");
    assert_eq!(status.run.file.as_deref(), Some(file.as_str()));
    assert!(!status.live, "it ended");
    let runs = client.runs().await.unwrap();
    assert_eq!(runs.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_workflows_are_refused_with_the_diagnostic() {
    let daemon = start();
    let file = daemon.workflow(
        "bad.yaml",
        "version: 1\nname: bad\nsteps: { a: { rn: x } }\n",
    );
    let err = daemon.client().submit(&request(file)).await.unwrap_err();
    let DaemonError::Refused { status, message } = err else {
        panic!("{err}");
    };
    assert_eq!(status, 400);
    assert!(message.contains("rn"), "{message}");
    let err = daemon
        .client()
        .submit(&request("relative.yaml".to_owned()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an absolute path"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_ends_cancelled() {
    let daemon = start();
    let client = daemon.client();
    let file = daemon.workflow(
        "slow.yaml",
        "version: 1\nname: slow\nsteps:\n  wait:\n    for_each: { i: [1, 2] }\n    run: sleep 60\n",
    );
    let run = client.submit(&request(file)).await.unwrap();
    let mut events = client.events(&run.run_id).await.unwrap();
    // A watcher gets `run-started` and what follows its subscription: the
    // tasks may have started before, so the store says when both run.
    wait_until_running(&client, &run.run_id, 2).await;
    client.cancel(&run.run_id).await.unwrap();
    let mut last = serde_json::Value::Null;
    while let Some(event) = events.next().await.unwrap() {
        last = event;
    }
    assert_eq!(last["outcome"], "cancelled", "{last}");
    let err = client.cancel(&run.run_id).await.unwrap_err();
    assert!(err.to_string().contains("is not running"), "{err}");
}

#[test]
fn two_daemons_never_share_a_state_directory() {
    let daemon = start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(twinflow_daemon::serve(engine(&daemon.state()), async {}))
        .unwrap_err();
    let DaemonError::AlreadyRunning { pid, .. } = err else {
        panic!("{err}");
    };
    assert_eq!(pid, std::process::id());
    let paths = DaemonPaths::new(&daemon.state());
    assert_eq!(
        twinflow_daemon::running_pid(&paths),
        Some(std::process::id())
    );
    drop(daemon);
    assert_eq!(twinflow_daemon::running_pid(&paths), None);
}

#[tokio::test]
async fn without_a_daemon_the_client_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::for_state_dir(dir.path()).ping().await.unwrap_err();
    assert!(matches!(err, DaemonError::NotRunning { .. }), "{err}");
    assert!(err.to_string().contains("twinflow daemon start"), "{err}");
}

/// Another local user reaches the socket (its directory opened up for the
/// test) and is refused by the peer check. Needs root, to add the user and
/// run as it.
#[test]
fn another_user_is_refused_even_when_the_socket_is_reachable() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to act as a second user");
        return;
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
            .expect("run useradd");
        assert!(added.success(), "useradd {user}");
    }
    let daemon = start();
    let paths = DaemonPaths::new(&daemon.state());
    use std::os::unix::fs::PermissionsExt as _;
    for p in [
        daemon.dir.path().to_path_buf(),
        daemon.state(),
        paths.dir.clone(),
        paths.socket.clone(),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({:?})\n\
         s.sendall(b'GET /v1/ping HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n\
         print(s.recv(4096).decode())\n",
        paths.socket.display().to_string()
    );
    let out = std::process::Command::new("runuser")
        .args(["-u", user, "--", "python3", "-c", &script])
        .output()
        .expect("run runuser");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.starts_with("HTTP/1.1 403"),
        "{answer}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answer.contains("serves only uid 0"), "{answer}");
    assert!(
        answer.contains("permission denied: the daemon belongs to another user"),
        "{answer}"
    );
}

/// A failing step, a step that writes to both streams, run twice so the
/// second run reuses the first one's results.
const MIXED: &str = r#"
version: 1
name: mixed
executors: { here: { kind: local, slots: 2 } }
steps:
  talk:
    for_each: { i: [1, 2] }
    run: echo out ${{ i }}; echo err ${{ i }} >&2; echo ${{ i }} > ${{ outputs.n }}
    outputs: { n: n.txt }
  fail:
    run: echo about to fail >&2; exit 3
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_read_routes_answer_what_the_store_says() {
    let daemon = start();
    let client = daemon.client();
    let file = daemon.workflow("mixed.yaml", MIXED);
    let first = client.submit(&request(file.clone())).await.unwrap();
    assert_eq!(
        wait_for_end(&client, &first.run_id).await["outcome"],
        "failed"
    );
    let second = client.submit(&request(file)).await.unwrap();
    assert_eq!(
        wait_for_end(&client, &second.run_id).await["outcome"],
        "failed"
    );

    // The daemon's answers are the store's rows, as a reader of the store
    // computes them (the store is in WAL mode here, so it can be opened
    // beside the daemon).
    let store = twinflow_engine::StateStore::open(&daemon.state()).unwrap();
    let runs = client.runs().await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].id, second.run_id, "newest first");
    assert_eq!(
        json(&runs),
        json(&twinflow_daemon::query::runs(&store).unwrap())
    );
    let status = client.status(&first.run_id).await.unwrap();
    let direct = twinflow_daemon::query::status(&store, Some(&first.run_id)).unwrap();
    assert_eq!(json(&status), json(&direct));
    assert_eq!(status.steps.len(), 2);
    assert_eq!((status.steps[0].succeeded, status.steps[1].failed), (2, 1));
    let failed: Vec<_> = status
        .tasks
        .iter()
        .filter(|t| t.state == twinflow_engine::TaskState::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", status.tasks);
    // `latest` and a unique prefix name runs too.
    assert_eq!(client.status("latest").await.unwrap().run.id, second.run_id);
    let prefix = &first.run_id[..first.run_id.len() - 1];
    if runs.iter().filter(|r| r.id.starts_with(prefix)).count() == 1 {
        assert_eq!(client.status(prefix).await.unwrap().run.id, first.run_id);
    }

    // Logs: where they are, then their bytes.
    let talk = status
        .tasks
        .iter()
        .find(|t| t.name.starts_with("talk") && t.name.contains("i=2"))
        .expect("the talk task with i=2")
        .name
        .clone();
    let logs = client.task_logs(&first.run_id, &talk, None).await.unwrap();
    assert_eq!(logs.run_id, first.run_id);
    assert!(logs.reused_from.is_empty());
    assert_eq!(logs.attempt, 0, "the first attempt");
    let read_all = |run: String, stream| {
        let client = client.clone();
        let talk = talk.clone();
        async move {
            let mut reader = client.log(&run, &talk, stream, None).await.unwrap();
            let mut bytes = Vec::new();
            while let Some(chunk) = reader.next().await.unwrap() {
                bytes.extend_from_slice(&chunk);
            }
            String::from_utf8(bytes).unwrap()
        }
    };
    assert_eq!(
        read_all(first.run_id.clone(), LogStream::Stdout).await,
        "out 2\n"
    );
    assert_eq!(
        read_all(first.run_id.clone(), LogStream::Stderr).await,
        "err 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(&logs.stdout).unwrap(),
        "out 2\n",
        "the path it names is the file"
    );
    // The second run reused the first's result: its logs are the first's.
    let reused = client.task_logs(&second.run_id, &talk, None).await.unwrap();
    assert_eq!(reused.reused_from, vec![first.run_id.clone()]);
    assert_eq!(reused.stdout, logs.stdout);
    assert_eq!(
        read_all(second.run_id.clone(), LogStream::Stdout).await,
        "out 2\n"
    );
    assert_eq!(
        reused,
        twinflow_daemon::query::task_logs(&store, &second.run_id, &talk, None).unwrap()
    );

    // What is not there is a NotFound that says what.
    let not_found = |e: DaemonError| match e {
        DaemonError::NotFound(nf) => nf,
        e => panic!("not a NotFound: {e}"),
    };
    assert_eq!(
        not_found(client.status("nosuch").await.unwrap_err()),
        NotFound::Run {
            run: "nosuch".to_owned()
        }
    );
    assert_eq!(
        not_found(
            client
                .task_logs(&first.run_id, "nosuch", None)
                .await
                .unwrap_err()
        ),
        NotFound::Task {
            run: first.run_id.clone(),
            task: "nosuch".to_owned()
        }
    );
    let missing = not_found(
        client
            .log(&first.run_id, &talk, LogStream::Stdout, Some(9))
            .await
            .unwrap_err(),
    );
    let NotFound::Log { path, reason } = missing else {
        panic!("{missing:?}");
    };
    assert!(path.ends_with(".9.out"), "{path}");
    assert!(reason.contains("No such file"), "{reason}");
}

#[tokio::test]
async fn with_no_runs_latest_is_not_found() {
    let daemon = start();
    let err = daemon.client().status("latest").await.unwrap_err();
    assert!(
        matches!(err, DaemonError::NotFound(NotFound::NoRuns)),
        "{err}"
    );
    assert!(daemon.client().runs().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_log_query_is_refused() {
    let daemon = start();
    let socket = DaemonPaths::new(&daemon.state()).socket;
    let answer = raw_unix_get(&socket, "/v1/runs/x/logs/y?stream=both").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("expected stdout or stderr"), "{answer}");
}

async fn raw_unix_get(socket: &Path, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn without_listen_nothing_listens_on_tcp_and_no_token_is_made() {
    let before = tcp_ports_listened_on();
    let daemon = start();
    let ping = daemon.client().ping().await.unwrap();
    assert_eq!(ping.listen, None);
    assert_eq!(tcp_ports_listened_on(), before, "the daemon listens on tcp");
    assert!(before.is_empty(), "this test process listens on {before:?}");
    assert!(!DaemonPaths::new(&daemon.state()).token.exists());
}

/// A value as JSON text, to compare answers whole.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serialise")
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_cuts_off_watchers_instead_of_waiting_for_their_runs() {
    let daemon = start();
    let client = daemon.client();
    let file = daemon.workflow(
        "slow.yaml",
        "version: 1\nname: slow\nsteps:\n  wait:\n    run: sleep 60\n",
    );
    let run = client.submit(&request(file)).await.unwrap();
    let mut events = client.events(&run.run_id).await.unwrap();
    let first = events.next().await.unwrap().expect("an event");
    assert_eq!(first["event"], "run-started", "{first}");
    wait_until_running(&client, &run.run_id, 1).await;
    // Dropping the daemon stops it and waits for its thread; the run has
    // a minute to go, and its watcher must not keep the daemon up for it.
    let stopped = tokio::task::spawn_blocking(move || drop(daemon));
    tokio::time::timeout(std::time::Duration::from_secs(30), stopped)
        .await
        .expect("the daemon stopped although a watcher was connected")
        .unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match events.next().await {
                Ok(Some(_)) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("the watcher's stream ended");
    assert!(!matches!(end, Ok(Some(_))), "{end:?}");
}

/// Waits until `n` tasks of the run's first step run, as the store says.
async fn wait_until_running(client: &Client, run: &str, n: u64) {
    for _ in 0..600 {
        let status = client.status(run).await.expect("status");
        if status.steps.first().is_some_and(|s| s.running == n) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{n} tasks of {run} never ran");
}
