//! Event hooks (`on:`) end to end, through the `twinflow` binary on the
//! local executor: `failure`, `retry`, `success` and `finished` fire with
//! the event as JSON on standard input and in `TWINFLOW_EVENT_*` variables,
//! a slow hook neither delays the run nor outlives its timeout, a failing
//! hook is shown and logged without failing the run, and a webhook reaches
//! twinflow-devserver with the headers of its file, which no log holds.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

#[expect(dead_code, reason = "these tests need no daemon")]
mod common;

use common::{text, twinflow};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Writes `yaml` as `flow.yaml` in `dir`; its path.
fn workflow(dir: &Path, yaml: &str) -> String {
    let file = dir.join("flow.yaml");
    std::fs::write(&file, yaml).expect("write workflow");
    file.to_str().expect("utf-8").to_owned()
}

/// The run directory the `run-started` event of `--json` output names.
fn run_dir(stdout: &str) -> PathBuf {
    let started = events(stdout)
        .into_iter()
        .find(|e| e["event"] == "run-started")
        .unwrap_or_else(|| panic!("no run-started in {stdout}"));
    PathBuf::from(started["run_dir"].as_str().expect("run_dir"))
}

fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn json_file(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const EVENTS: &str = r#"
version: 1
name: hooked
executors: { here: { kind: local, slots: 2 } }
on:
  failure:
    run: cat > failure.json; env | grep '^TWINFLOW_EVENT_' | sort > failure.env
  retry: { run: 'cat > "retry-$TWINFLOW_EVENT_ATTEMPT.json"' }
  success: { run: 'cat > "success-$TWINFLOW_EVENT_TASK_ID.json"' }
  finished:
    - run: cat >> finished.jsonl; echo >> finished.jsonl
steps:
  flaky:
    retries: 2
    run: echo "no forcing file" >&2; exit 3
  good:
    for_each: { n: [1, 2] }
    run: echo ${{ n }}
    on:
      success: { run: 'touch "step-success-$TWINFLOW_EVENT_TASK_ID"' }
"#;

#[test]
fn task_and_run_events_fire_their_hooks_with_the_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(dir.path(), EVENTS);
    let o = twinflow(&state, &["run", &file, "--json"]);
    let stdout = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the task fails: {stdout}{}",
        text(&o.stderr)
    );
    let run = run_dir(&stdout);
    let run_id = run.file_name().and_then(|n| n.to_str()).expect("run id");

    // `failure` once, for the last attempt, on stdin and in variables.
    let failure = json_file(&run.join("failure.json"));
    assert_eq!(failure["format"], "twinflow.hook-event/v1");
    assert_eq!(failure["kind"], "failure");
    assert_eq!(failure["run_id"], run_id);
    assert_eq!(failure["workflow"], "hooked");
    assert_eq!(failure["task"], "flaky");
    assert_eq!(failure["step"], "flaky");
    assert_eq!(failure["attempt"], 2);
    assert_eq!(failure["exit_status"], 3);
    assert!(
        failure["reason"]
            .as_str()
            .is_some_and(|r| r.contains("exited with status 3") && r.contains("no forcing file")),
        "{failure}"
    );
    assert!(failure["retry_in"].is_null(), "{failure}");
    let env = std::fs::read_to_string(run.join("failure.env")).expect("failure.env");
    for line in [
        "TWINFLOW_EVENT_KIND=failure",
        "TWINFLOW_EVENT_TASK=flaky",
        "TWINFLOW_EVENT_STEP=flaky",
        "TWINFLOW_EVENT_ATTEMPT=2",
        "TWINFLOW_EVENT_EXIT_STATUS=3",
        "TWINFLOW_EVENT_WORKFLOW=hooked",
        &format!("TWINFLOW_EVENT_RUN_ID={run_id}"),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in:\n{env}");
    }

    // `retry` once per retried attempt.
    for attempt in [0, 1] {
        let retry = json_file(&run.join(format!("retry-{attempt}.json")));
        assert_eq!(retry["kind"], "retry");
        assert_eq!(retry["attempt"], attempt);
        assert!(retry["retry_in"].as_f64().is_some(), "{retry}");
    }
    assert!(
        !run.join("retry-2.json").exists(),
        "the last attempt is a failure, not a retry"
    );

    // `success` per task, at workflow and step level.
    for id in [1, 2] {
        let success = json_file(&run.join(format!("success-{id}.json")));
        assert_eq!(success["kind"], "success");
        assert_eq!(success["step"], "good");
        assert!(run.join(format!("step-success-{id}")).exists());
    }
    assert!(!run.join("success-0.json").exists());

    // `finished` once, with the summary.
    let finished = std::fs::read_to_string(run.join("finished.jsonl")).expect("finished.jsonl");
    let lines: Vec<&str> = finished.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{finished}");
    let finished: Value = serde_json::from_str(lines[0]).expect("json");
    assert_eq!(finished["kind"], "finished");
    assert_eq!(finished["outcome"], "failed");
    assert_eq!(
        (finished["failed"].as_u64(), finished["ran"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(finished["failures"][0]["task"], "flaky");

    let log = std::fs::read_to_string(run.join("logs/hooks.log")).expect("hooks.log");
    assert!(log.contains("ok on.finished[0] (run: "), "{log}");
    assert!(
        !events(&stdout).iter().any(|e| e["event"] == "hook-failed"),
        "{stdout}"
    );
}

const SLOW: &str = r#"
version: 1
name: slow-hooks
executors: { here: { kind: local } }
on:
  success:
    run: sleep 30 & echo $! > sleep.pid; echo started > slow-started; wait; echo done > slow-done
    timeout: 3s
steps:
  quick:
    run: "true"
"#;

#[test]
fn a_slow_hook_does_not_delay_the_run_and_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(dir.path(), SLOW);
    let start = Instant::now();
    let o = twinflow(&state, &["run", &file, "--json"]);
    let took = start.elapsed();
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", text(&o.stderr));
    let all = events(&stdout);
    let finished = all
        .iter()
        .position(|e| e["event"] == "run-finished")
        .expect("run-finished");
    // The run ended while the hook still slept: its own time is short,
    // and the hook's failure (its timeout) comes after it.
    let seconds = all[finished]["seconds"].as_f64().expect("seconds");
    assert!(seconds < 2.5, "the run waited for its hook: {seconds} s");
    let failed = all
        .iter()
        .position(|e| e["event"] == "hook-failed")
        .unwrap_or_else(|| panic!("no hook-failed in {stdout}"));
    assert!(failed > finished, "{stdout}");
    assert_eq!(all[failed]["kind"], "success");
    assert_eq!(all[failed]["task"], "quick");
    assert!(
        all[failed]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("timed out after 3s")),
        "{stdout}"
    );
    assert!(
        took < Duration::from_secs(20),
        "twinflow waited for the sleep: {took:?}"
    );

    let run = run_dir(&stdout);
    assert!(run.join("slow-started").exists());
    let pid: i32 = std::fs::read_to_string(run.join("sleep.pid"))
        .expect("sleep.pid")
        .trim()
        .parse()
        .expect("pid");
    // Its whole process group was killed: the background sleep too.
    common::wait_until("the hook's sleep to die", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !run.join("slow-done").exists(),
        "the hook ran past its timeout"
    );
    let log = std::fs::read_to_string(run.join("logs/hooks.log")).expect("hooks.log");
    assert!(
        log.contains("FAILED on.success[0] (run: sleep 30") && log.contains("timed out after 3s"),
        "{log}"
    );
}

#[test]
fn a_failing_hook_is_shown_and_the_run_still_succeeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = workflow(
        dir.path(),
        "version: 1\nname: failing-hook\nexecutors: { here: { kind: local } }\non:\n  finished: { run: echo cannot reach chat >&2; exit 4 }\nsteps:\n  a:\n    run: \"true\"\n",
    );
    let o = twinflow(&state, &["run", &file]);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("hook failed: on.finished[0] (run: echo cannot reach chat >&2; exit 4): exited with status 4: cannot reach chat"),
        "{stderr}"
    );
}

/// The devserver, alive as long as the returned runtime.
fn devserver() -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let running = rt
        .block_on(twinflow_devserver::start(
            twinflow_devserver::Config::default(),
            "127.0.0.1:0".parse().expect("address"),
        ))
        .expect("devserver starts");
    (rt, running.base_url())
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_webhook_posts_the_event_with_the_headers_of_its_file_which_no_log_holds() {
    let (_rt, base) = devserver();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let secret = "tf-secret-4c1d9e";
    std::fs::write(
        dir.path().join("chat-headers"),
        format!("# the chat's token\nAuthorization: Bearer {secret}\nX-Room: ops\n"),
    )
    .expect("headers file");
    let yaml = format!(
        "version: 1\nname: webhooked\nexecutors: {{ here: {{ kind: local }} }}\non:\n  finished:\n    - {{ webhook: \"{base}/hooks/done\", headers_file: chat-headers }}\n    - {{ webhook: \"{base}/hooks/fail-chat?token=q-{secret}\", headers_file: chat-headers }}\nsteps:\n  a:\n    run: \"true\"\n"
    );
    let file = workflow(dir.path(), &yaml);
    let o = twinflow(&state, &["run", &file]);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stdout}{stderr}");

    let got = Command::new("curl")
        .args(["-sf", &format!("{base}/hooks/done")])
        .output()
        .expect("curl runs");
    let got: Value = serde_json::from_slice(&got.stdout).expect("json");
    let got = got.as_array().expect("list");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0]["headers"]["authorization"],
        format!("Bearer {secret}")
    );
    assert_eq!(got[0]["headers"]["x-room"], "ops");
    assert_eq!(got[0]["headers"]["content-type"], "application/json");
    let body = &got[0]["body"];
    assert_eq!(body["kind"], "finished");
    assert_eq!(body["workflow"], "webhooked");
    assert_eq!(body["outcome"], "succeeded");

    // The failing one is shown, without its query string.
    assert!(
        stderr.contains("hook failed: on.finished[1] (webhook ")
            && stderr.contains("/hooks/fail-chat): POST ")
            && stderr.contains("answered 500"),
        "{stderr}"
    );
    // The secret is nowhere: not in the output, the run's logs or the store.
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{stdout}{stderr}"
    );
    let holding = files_holding(&state, secret.as_bytes());
    assert!(holding.is_empty(), "the secret is in {holding:?}");
}
