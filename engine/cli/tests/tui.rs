//! `twinflow tui` in a real terminal: tmux at 80x24 (`send-keys`,
//! `capture-pane`) over a daemon carrying a run with a long task. The run
//! is listed, its step progress shows, a name filter narrows the table, the
//! log pane shows a task's output, a hold through the confirmation really
//! holds the task (as `status` says), `q` quits with exit 0; and over the
//! daemon's TCP listener the run is listed too.
//!
//! Skipped with a message when tmux is missing, unless
//! `TWINFLOW_TEST_TMUX=1` (scripts/test), where that fails.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

#[expect(dead_code, reason = "this test starts its daemon with a TCP listener")]
mod common;

use common::{text, twinflow, wait_until};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// A tmux server of this test's own (`tmux -L NAME`), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, command: &str) -> Self {
        let tmux = Self {
            socket: format!("twinflow-tui-{}-{name}", std::process::id()),
        };
        let o = tmux.cmd(&["new-session", "-d", "-x", "80", "-y", "24", command]);
        assert!(o.status.success(), "tmux: {}", text(&o.stderr));
        tmux
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            let o = self.cmd(&["send-keys", key]);
            assert!(o.status.success(), "send-keys {key}: {}", text(&o.stderr));
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn screen(&self) -> String {
        text(&self.cmd(&["capture-pane", "-p"]).stdout)
    }

    /// Waits until the screen shows what `ok` accepts; fails with the screen.
    fn until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let start = std::time::Instant::now();
        while start.elapsed() < LIMIT {
            last = self.screen();
            if ok(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("never: {what}; the screen:\n{last}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn have_tmux() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("TWINFLOW_TEST_TMUX").is_none(),
            "TWINFLOW_TEST_TMUX is set but tmux is missing (scripts/setup installs it)"
        );
        eprintln!("skipped: tmux is missing (apt-get install tmux; scripts/setup does)");
    }
    found
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The command line tmux runs: the TUI, then its exit code, then a pause so
/// the pane stays to be read.
fn tui_command(state: &Path, args: &[&str]) -> String {
    let mut words = vec![
        env!("CARGO_BIN_EXE_twinflow").to_owned(),
        "tui".to_owned(),
        "--state-dir".to_owned(),
        state.display().to_string(),
    ];
    words.extend(args.iter().map(|a| (*a).to_owned()));
    let line: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
    format!("{}; echo tui-exit=$?; sleep 60", line.join(" "))
}

/// The held tasks `status --summary --json` reports.
fn held(state: &Path, run: &str) -> Vec<String> {
    let o = twinflow(state, &["status", run, "--summary", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["held"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_tui_lists_filters_follows_and_holds_in_tmux() {
    if !have_tmux() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("tuidemo.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: tuidemo\nsteps:\n  slow:\n    run: 'echo hello-from-slow; sleep 120'\n  \
         quick:\n    for_each: { i: [1, 2, 3, 4, 5] }\n    run: 'echo quick-out-${{ i }}'\n  \
         late:\n    after: [slow]\n    run: 'true'\n",
    )
    .expect("write workflow");
    // A daemon with a TCP listener besides its socket.
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["daemon", "run", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the daemon");
    wait_until("the daemon to answer", LIMIT, || {
        twinflow(&state, &["daemon", "status"]).status.success()
    });
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    wait_until("slow to run and quick to finish", LIMIT, || {
        let tasks = common::tasks(&state, &run);
        tasks.iter().any(|(n, s, _)| n == "slow" && s == "running")
            && tasks
                .iter()
                .filter(|(n, s, _)| n.starts_with("quick") && s == "succeeded")
                .count()
                == 5
    });

    let tmux = Tmux::start("socket", &tui_command(&state, &[]));
    // The runs screen lists the run; Enter opens it: per-step progress.
    tmux.until("the run listed", |s| {
        s.contains(&run) && s.contains("tuidemo")
    });
    tmux.keys(&["Enter"]);
    let shown = tmux.until("the step progress", |s| {
        s.contains("5/5 ok") && s.contains("0/1 ok 1 run")
    });
    // Nothing cut off at 80x24: the key hints at the bottom, the table's
    // columns, every step.
    assert!(shown.contains("? help"), "{shown}");
    assert!(shown.contains("state") && shown.contains("late"), "{shown}");
    // The first task (slow) is highlighted: the log pane follows it.
    tmux.until("slow's output in the log pane", |s| {
        s.contains("stdout of slow") && s.contains("hello-from-slow")
    });
    // A name filter narrows the table (done by the daemon).
    tmux.keys(&["/", "q", "u", "i", "c", "k", "Enter"]);
    let shown = tmux.until("the filtered table", |s| {
        s.contains("name=*quick*") && s.contains("quick[i=5]")
    });
    assert!(
        !shown
            .lines()
            .any(|l| l.contains("slow") && l.contains("running")),
        "slow still listed:\n{shown}"
    );
    tmux.until("quick[i=1]'s output in the log pane", |s| {
        s.contains("quick-out-1")
    });
    // Clear the filter; slow is the first row again: hold it through the
    // action menu and its confirmation.
    tmux.keys(&["c"]);
    tmux.until("the table unfiltered", |s| {
        s.contains("[all]") && s.lines().any(|l| l.contains('>') && l.contains("slow"))
    });
    let hold = twinflow_engine::ActionKind::ALL
        .iter()
        .position(|k| *k == twinflow_engine::ActionKind::Hold)
        .expect("hold is an action");
    tmux.keys(&["a"]);
    tmux.until("the action menu", |s| {
        s.contains("rerun") && s.contains("on slow")
    });
    for _ in 0..hold {
        tmux.keys(&["Down"]);
    }
    tmux.keys(&["Enter"]);
    tmux.until("the confirmation", |s| s.contains("hold slow?"));
    assert!(held(&state, &run).is_empty(), "held before confirming");
    tmux.keys(&["y"]);
    tmux.until("the hold reported", |s| {
        s.contains("hold: 1 task(s)") && s.contains("running held")
    });
    assert_eq!(held(&state, &run), ["slow"]);
    // `?` shows the keys; q closes... any key closes help, then q quits.
    tmux.keys(&["?"]);
    tmux.until("the help", |s| s.contains("keys (any key closes)"));
    tmux.keys(&["x", "q"]);
    tmux.until("the TUI to exit 0", |s| s.contains("tui-exit=0"));
    drop(tmux);

    // Over TCP with the token (as from another login node).
    let o = twinflow(&state, &["daemon", "status"]);
    let addr = text(&o.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("tcp:").map(|a| a.trim().to_owned()))
        .unwrap_or_else(|| panic!("no tcp address: {}", text(&o.stdout)));
    let url = format!("tcp://{addr}");
    let tmux = Tmux::start("tcp", &tui_command(&state, &["--daemon", &url, &run]));
    tmux.until("the run over TCP", |s| {
        s.contains(&run) && s.contains("5/5 ok") && s.contains("running held")
    });
    tmux.keys(&["q"]);
    tmux.until("the TUI to exit 0", |s| s.contains("tui-exit=0"));
    drop(tmux);

    let _ = twinflow(&state, &["cancel", &run]);
    let _ = twinflow(&state, &["daemon", "stop"]);
    let _ = daemon.wait();
}

#[test]
fn without_a_daemon_the_tui_says_so_before_taking_the_screen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = twinflow(&dir.path().join("state"), &["tui"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("daemon"), "{}", text(&o.stderr));
    assert!(
        o.stdout.is_empty(),
        "drew on a terminal: {}",
        text(&o.stdout)
    );
}
