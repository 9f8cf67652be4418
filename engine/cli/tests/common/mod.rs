//! What the command-line tests that drive a daemon share: running
//! `twinflow`, a foreground daemon, waiting, and reading a run's tasks.

#![expect(clippy::panic, reason = "test helpers fail the test with a message")]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `twinflow ARGS --state-dir STATE`, uncoloured.
pub(crate) fn twinflow(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("failed to run twinflow: {e}"))
}

/// `twinflow daemon run` in the foreground, as systemd would start it, once
/// it answers; its log goes to `log` if given.
pub(crate) fn daemon(state: &Path, log: Option<&Path>) -> Child {
    let err = match log {
        Some(path) => Stdio::from(
            std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        ),
        None => Stdio::null(),
    };
    let child = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["daemon", "run", "--state-dir"])
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("failed to spawn the daemon: {e}"));
    wait_until("the daemon to answer", Duration::from_secs(90), || {
        twinflow(state, &["daemon", "status"]).status.success()
    });
    child
}

/// Polls `done` every 100 ms; fails the test after `limit`.
pub(crate) fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Each task's (name, state, handle) from `status --json` (every task: up
/// to 10,000, one page; `--json` alone answers the first 100).
pub(crate) fn tasks(state: &Path, run: &str) -> Vec<(String, String, String)> {
    let o = twinflow(state, &["status", run, "--json", "--limit", "10000"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["tasks"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let s = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                    (s("name"), s("state"), s("handle"))
                })
                .collect()
        })
        .unwrap_or_default()
}
