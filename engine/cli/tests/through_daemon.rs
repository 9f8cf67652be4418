//! `twinflow runs`, `status` and `logs` with and without a daemon: the same
//! output either way. The state store is held with exclusive locking (as on
//! NFS/Lustre: `TWINFLOW_STATE_LOCKING=exclusive`), so while the daemon runs
//! nothing but it can read the store: the commands must ask it. And the
//! same over the daemon's TCP listener (HTTPS), with its access file: the
//! token and the certificate's pin.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("mixed.yaml"), MIXED).expect("write workflow");
        Self { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_twinflow"));
        c.args(args)
            .env("TWINFLOW_STATE_DIR", self.state())
            .env("TWINFLOW_STATE_LOCKING", "exclusive")
            .env_remove("TWINFLOW_DAEMON")
            .env_remove("TWINFLOW_TOKEN_FILE")
            .env_remove("TWINFLOW_ACCESS_FILE")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run twinflow")
    }

    /// `twinflow daemon run` in the foreground; returns once it answers.
    fn daemon(&self) -> Foreground {
        let child = self
            .command(&["daemon", "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the daemon");
        let start = Instant::now();
        while !self.run(&["daemon", "status"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the daemon never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Foreground(child)
    }
}

/// A foreground daemon, killed if a test fails before it stops it.
struct Foreground(Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Stops the state directory's daemon (started in the background) when
/// dropped, also when a test fails.
struct StopOnDrop<'a>(&'a Sandbox);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["daemon", "stop"]);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a command printed, and how it exited.
fn seen(o: &Output) -> (Option<i32>, String, String) {
    (o.status.code(), text(&o.stdout), text(&o.stderr))
}

/// A step whose tasks write both streams, and one that fails; run twice,
/// the second run reuses the first one's `talk` results.
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

/// Two finished runs; their ids, oldest first.
fn two_runs(sandbox: &Sandbox) -> (String, String) {
    for _ in 0..2 {
        let o = sandbox.run(&["run", "mixed.yaml", "--local"]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "a task fails: {}",
            text(&o.stderr)
        );
    }
    let o = sandbox.run(&["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("runs JSON");
    let id = |i: usize| runs[i]["id"].as_str().expect("an id").to_owned();
    (id(1), id(0))
}

#[test]
fn runs_status_and_logs_print_the_same_with_and_without_a_daemon() {
    let sandbox = Sandbox::new();
    let (first, second) = two_runs(&sandbox);
    let status: serde_json::Value =
        serde_json::from_slice(&sandbox.run(&["status", &first, "--json"]).stdout)
            .expect("status JSON");
    let task = |prefix: &str| {
        status["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .find(|n| n.starts_with(prefix))
            .expect("a task")
            .to_owned()
    };
    let (talk, fail) = (task("talk"), task("fail"));
    let prefix = &first[..first.len() - 1];
    let commands: Vec<Vec<&str>> = vec![
        vec!["runs"],
        vec!["runs", "--json"],
        vec!["status"],
        vec!["status", "latest", "--json"],
        vec!["status", &first, "--tasks"],
        vec!["status", &first, "--json"],
        vec!["status", prefix],
        vec!["status", "nosuch-run"],
        vec!["logs", &first, &talk],
        vec!["logs", &second, &talk],
        vec!["logs", &second, &talk, "--stream", "stdout"],
        vec!["logs", "latest", &fail, "--stream", "stderr"],
        vec!["logs", &first, &talk, "--attempt", "7"],
        vec!["logs", &first, "nosuch-task"],
        vec!["logs", "nosuch-run", &talk],
        // `fail` wrote only to stderr: it has no stdout file, an empty log.
        vec!["logs", &first, &fail, "--stream", "stdout"],
        vec!["logs", &first, &fail],
    ];
    let direct: Vec<_> = commands.iter().map(|c| seen(&sandbox.run(c))).collect();
    // What these say (so that "the same" is not "the same nothing").
    assert_eq!(direct[0].0, Some(0));
    assert!(
        direct[0].1.contains(&first) && direct[0].1.contains(&second),
        "{}",
        direct[0].1
    );
    assert!(direct[4].1.contains("failed tasks:"), "{}", direct[4].1);
    assert!(
        direct[7].2.contains("no run `nosuch-run`"),
        "{}",
        direct[7].2
    );
    assert!(
        direct[8].1.starts_with("out ") && direct[8].1.contains("\nerr "),
        "{:?}",
        direct[8]
    );
    assert!(
        direct[8].2.contains("==> stdout of talk"),
        "{}",
        direct[8].2
    );
    assert!(
        direct[9]
            .2
            .contains(&format!("reused the result of run {first}")),
        "{}",
        direct[9].2
    );
    assert_eq!(direct[11].1, "about to fail\n");
    assert_eq!(direct[12].0, Some(2), "no attempt 7: {:?}", direct[12]);
    assert!(direct[12].2.contains("(no log at "), "{}", direct[12].2);
    assert!(
        direct[13]
            .2
            .contains("has no record of a task `nosuch-task`"),
        "{}",
        direct[13].2
    );
    assert_eq!(direct[15].0, Some(0), "{:?}", direct[15]);
    assert_eq!(direct[15].1, "");
    assert!(
        direct[16]
            .2
            .contains(&format!("==> stdout of {fail} (attempt 0): (empty)"))
            && direct[16].1 == "about to fail\n",
        "{:?}",
        direct[16]
    );

    let mut daemon = sandbox.daemon();
    // The daemon holds the store: a reader of its own is turned away.
    let err = twinflow_engine::StateStore::open(&sandbox.state())
        .expect_err("the store is held by the daemon");
    assert!(
        err.to_string()
            .contains("in use by another twinflow process"),
        "{err}"
    );
    for (command, before) in commands.iter().zip(&direct) {
        let after = seen(&sandbox.run(command));
        assert_eq!(&after, before, "twinflow {}", command.join(" "));
    }
    // The daemon carries a run on that store, and `status` sees it.
    let o = sandbox.run(&["submit", "mixed.yaml", "--local"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let third = text(&o.stdout).trim().to_owned();
    let o = sandbox.run(&["watch", &third]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let o = sandbox.run(&["status", &third]);
    assert!(text(&o.stdout).contains(": failed"), "{}", text(&o.stdout));
    let _ = sandbox.run(&["daemon", "stop"]);
    let _ = daemon.0.wait();
    // And without it the store is read again.
    let o = sandbox.run(&["runs"]);
    assert!(text(&o.stdout).contains(&third), "{}", text(&o.stdout));
}

/// The `tcp:` address `daemon status` prints.
fn tcp_address(sandbox: &Sandbox) -> String {
    let o = sandbox.run(&["daemon", "status"]);
    text(&o.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("tcp:").map(|a| a.trim().to_owned()))
        .expect("daemon status shows the tcp address")
}

/// The access file `token`, copied (mode 0600) to `to` with its first line
/// (the token) replaced by `token_line`, or as it is.
fn access_copy(token: &Path, to: &Path, token_line: Option<&str>) -> PathBuf {
    let text = std::fs::read_to_string(token).expect("read the access file");
    let text = match token_line {
        Some(line) => {
            let rest = text.split_once('\n').map_or("", |(_, rest)| rest);
            format!("{line}\n{rest}")
        }
        None => text,
    };
    std::fs::write(to, text).expect("write");
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    to.to_path_buf()
}

#[test]
fn over_tcp_the_commands_need_the_token_file() {
    let sandbox = Sandbox::new();
    let (first, _) = two_runs(&sandbox);
    let local = seen(&sandbox.run(&["status", &first]));
    let o = sandbox.run(&["daemon", "start", "--listen", "127.0.0.1:0"]);
    let _stop = StopOnDrop(&sandbox);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("tcp:"), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("https, certificate sha-256 "),
        "{}",
        text(&o.stderr)
    );
    let addr = tcp_address(&sandbox);
    let url = format!("tcp://{addr}");
    let token: PathBuf = sandbox.state().join("daemon/token");
    let mode = std::fs::metadata(&token)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // With the token (the state directory's token file by default, or named).
    let o = sandbox.run(&["status", &first, "--daemon", &url]);
    assert_eq!(seen(&o), local);
    let o = sandbox.run(&[
        "status",
        &first,
        "--daemon",
        &url,
        "--token-file",
        token.to_str().expect("utf-8"),
    ]);
    assert_eq!(seen(&o), local);
    let o = sandbox
        .command(&["status", &first])
        .env("TWINFLOW_DAEMON", &url)
        .env("TWINFLOW_TOKEN_FILE", &token)
        .output()
        .expect("run twinflow");
    assert_eq!(seen(&o), local);

    // From another login node: another state directory, the access file
    // alone (its address, token and pin), through --access-file or
    // $TWINFLOW_ACCESS_FILE.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let copy = access_copy(&token, &elsewhere.path().join("access"), None);
    let remote = |args: &[&str]| {
        sandbox
            .command(args)
            .env("TWINFLOW_STATE_DIR", elsewhere.path().join("state"))
            .output()
            .expect("run twinflow")
    };
    let o = remote(&[
        "status",
        &first,
        "--access-file",
        copy.to_str().expect("utf-8"),
    ]);
    assert_eq!(seen(&o), local);
    let o = sandbox
        .command(&["status", &first])
        .env("TWINFLOW_STATE_DIR", elsewhere.path().join("state"))
        .env("TWINFLOW_ACCESS_FILE", &copy)
        .output()
        .expect("run twinflow");
    assert_eq!(seen(&o), local);
    let o = remote(&[
        "daemon",
        "status",
        "--access-file",
        copy.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(&format!("asked:  tcp://{addr}")),
        "{}",
        text(&o.stdout)
    );
    // A copy pinning another certificate: refused naming both, exit 3.
    let pin = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("tls-sha256 "))
            .expect("a pin")
            .to_owned()
    };
    let real = pin(&std::fs::read_to_string(&token).expect("read"));
    let other = real.replacen(&real[..2], if &real[..2] == "00" { "11" } else { "00" }, 1);
    std::fs::write(
        &copy,
        std::fs::read_to_string(&token)
            .expect("read")
            .replace(&real, &other),
    )
    .expect("write");
    let o = remote(&["runs", "--access-file", copy.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&real) && text(&o.stderr).contains(&other),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    // A token file of before tls (the token alone): refused, not sent in clear.
    let first_line = std::fs::read_to_string(&token)
        .expect("read")
        .lines()
        .next()
        .expect("a token")
        .to_owned();
    std::fs::write(&copy, format!("{first_line}\n")).expect("write");
    let o = sandbox.run(&[
        "runs",
        "--daemon",
        &url,
        "--token-file",
        copy.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("pins no certificate"),
        "{}",
        text(&o.stderr)
    );

    // A wrong token: refused by the daemon (401), exit 3.
    let wrong = access_copy(
        &token,
        &sandbox.dir.path().join("wrong-token"),
        Some("not-the-token-not-the-token-not-the-token"),
    );
    let o = sandbox.run(&[
        "runs",
        "--daemon",
        &url,
        "--token-file",
        wrong.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("wrong token"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    // A token file others may read: not even sent.
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = sandbox.run(&[
        "runs",
        "--daemon",
        &url,
        "--token-file",
        wrong.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("mode 0644"), "{}", text(&o.stderr));
    // A daemon named but not answering: exit 3, no falling back to the store.
    let o = sandbox.run(&["runs", "--daemon", "tcp://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let o = sandbox.run(&["runs", "--daemon", "http://x"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("expected tcp://HOST:PORT"),
        "{}",
        text(&o.stderr)
    );

    let o = sandbox.run(&["daemon", "stop"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        Path::new(&token).exists(),
        "the token is kept for the next daemon"
    );
}

#[test]
fn the_token_is_rotated_from_the_command_line_and_runs_go_on() {
    let sandbox = Sandbox::new();
    let o = sandbox.run(&["daemon", "start"]);
    let _stop = StopOnDrop(&sandbox);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // No listener, no token to rotate: said, exit 2.
    let o = sandbox.run(&["daemon", "rotate-token"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no tcp listener"),
        "{}",
        text(&o.stderr)
    );
    let _ = sandbox.run(&["daemon", "stop"]);
    let o = sandbox.run(&["daemon", "start", "--listen", "127.0.0.1:0"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let token = sandbox.state().join("daemon/token");
    let old = access_copy(&token, &sandbox.dir.path().join("old-access"), None);
    let old = old.to_str().expect("utf-8");
    let token = token.to_str().expect("utf-8");
    std::fs::write(
        sandbox.dir.path().join("slow.yaml"),
        "version: 1\nname: slow\nsteps:\n  nap:\n    run: sleep 3; echo rested\n",
    )
    .expect("write workflow");
    let o = sandbox.run(&["submit", "slow.yaml", "--local", "--access-file", old]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();

    let o = sandbox.run(&["daemon", "rotate-token"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("the old one is refused from now on"),
        "{}",
        text(&o.stderr)
    );
    let o = sandbox.run(&["runs", "--access-file", old]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("wrong token"),
        "{}",
        text(&o.stderr)
    );
    // The new token works, and the run went on to its end.
    let o = sandbox.run(&["watch", &run, "--access-file", token]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = sandbox.run(&["status", &run, "--access-file", token]);
    assert!(text(&o.stdout).contains("succeeded"), "{}", text(&o.stdout));
}

#[test]
fn an_ambiguous_run_prefix_is_refused_with_its_candidates() {
    let sandbox = Sandbox::new();
    let (first, second) = two_runs(&sandbox);
    let ambiguous = |o: &Output, command: &[&str]| {
        let (code, _, err) = seen(o);
        assert_eq!(code, Some(2), "twinflow {}: {err}", command.join(" "));
        assert!(
            err.contains("run `mixed` is ambiguous: 2 runs begin with it")
                && err.contains(&first)
                && err.contains(&second),
            "twinflow {}: {err}",
            command.join(" ")
        );
    };
    let report = sandbox.dir.path().join("report.html");
    let report = report.to_str().expect("utf-8");
    for command in [
        vec!["status", "mixed"],
        vec!["logs", "mixed", "fail"],
        vec!["report", "mixed", "--out", report],
        vec!["run", "--resume=mixed", "mixed.yaml", "--local"],
    ] {
        ambiguous(&sandbox.run(&command), &command);
    }
    let _daemon = sandbox.daemon();
    for command in [
        vec!["status", "mixed"],
        vec!["logs", "mixed", "fail"],
        vec!["cancel", "mixed"],
        vec!["watch", "mixed"],
    ] {
        ambiguous(&sandbox.run(&command), &command);
    }
    // A unique prefix names its run through the daemon too (this one ended
    // before the daemon started: watching it tells how it ended). The ids
    // end in 4 random hex digits: when the two runs share the first 3 as
    // well, only the whole id is unique.
    let unique = match &second[..second.len() - 1] {
        short if first.starts_with(short) => second.as_str(),
        short => short,
    };
    let o = sandbox.run(&["watch", unique]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("run {second} FAILED")),
        "{}",
        text(&o.stderr)
    );
    let o = sandbox.run(&["cancel", unique]);
    assert!(
        text(&o.stderr).contains(&format!("run `{second}` is not running in this daemon")),
        "{}",
        text(&o.stderr)
    );
    let _ = sandbox.run(&["daemon", "stop"]);
}
