//! A real daemon booted in-process per test, in its own state directory,
//! driven through its [`Client`] (and, for the peer check, by another local
//! user).
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;
use twinflow_daemon::api::SubmitRequest;
use twinflow_daemon::{Client, DaemonError, DaemonPaths};

/// A daemon on its own thread and runtime; stops when dropped.
struct Daemon {
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), DaemonError>>>,
}

fn engine(state: &Path) -> twinflow_engine::Engine {
    twinflow_engine::Engine::builder()
        .state_dir(state)
        .executor(
            twinflow_core::ExecutorKind::Local,
            twinflow_executor_local::LocalFactory::default(),
        )
        .build()
        .expect("engine")
}

impl Daemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = dir.path().join("state");
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(twinflow_daemon::serve(engine(&state), async {
                let _ = stopped.await;
            }))
        });
        let daemon = Self {
            dir,
            stop: Some(stop),
            thread: Some(thread),
        };
        daemon.wait_for_socket();
        daemon
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn client(&self) -> Client {
        Client::for_state_dir(&self.state())
    }

    fn wait_for_socket(&self) {
        let socket = DaemonPaths::new(&self.state()).socket;
        for _ in 0..200 {
            if socket.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon never made {}", socket.display());
    }

    fn workflow(&self, name: &str, yaml: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).expect("write workflow");
        path.display().to_string()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn request(file: String) -> SubmitRequest {
    SubmitRequest {
        file,
        params: Vec::new(),
        site: None,
        local: false,
        no_cache: false,
        fail_fast: false,
    }
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
    let daemon = Daemon::start();
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
    assert_eq!(status["run"]["state"], "succeeded");
    assert_eq!(status["run"]["file"], file.as_str());
    let runs = client.runs().await.unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_workflows_are_refused_with_the_diagnostic() {
    let daemon = Daemon::start();
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
    let daemon = Daemon::start();
    let client = daemon.client();
    let file = daemon.workflow(
        "slow.yaml",
        "version: 1\nname: slow\nsteps:\n  wait:\n    for_each: { i: [1, 2] }\n    run: sleep 60\n",
    );
    let run = client.submit(&request(file)).await.unwrap();
    let mut events = client.events(&run.run_id).await.unwrap();
    let mut running = 0;
    while running < 2 {
        let event = events.next().await.unwrap().expect("an event");
        if event["event"] == "task-running" {
            running += 1;
        }
    }
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
    let daemon = Daemon::start();
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
    let daemon = Daemon::start();
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
}
