//! `twinflow run` as a user drives it: killed with SIGKILL and resumed,
//! interrupted with Ctrl-C, and inspected with runs/status/logs.
#![expect(
    clippy::expect_used,
    reason = "test helpers fail the test with a message"
)]

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(workflow: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = workflow.replace("$DIR", &dir.path().display().to_string());
        std::fs::write(dir.path().join("wf.yaml"), text).expect("write workflow");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_twinflow"));
        c.args(args)
            .env("TWINFLOW_STATE_DIR", self.path("state"))
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run twinflow")
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twinflow")
    }

    fn status_json(&self) -> serde_json::Value {
        let o = self.run(&["status", "--json", "--limit", "10000"]);
        serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn signal(child: &Child, sig: Signal) {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, sig).expect("send the signal");
}

fn succeeded_tasks(status: &serde_json::Value) -> Vec<String> {
    status["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter(|t| t["state"] == "succeeded")
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

const SLOW_FAN: &str = r#"
version: 1
name: slow-fan
executors: { here: { kind: local, slots: 2 } }
steps:
  work:
    executor: here
    for_each: { i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }
    run: sleep 0.4; echo ${{ i }} >> $DIR/ran-${{ i }}; echo ${{ i }} > ${{ outputs.n }}
    outputs: { n: n.txt }
  total:
    executor: here
    needs: { all: work.n }
    run: awk '{s+=$1} END {print s}' ${{ inputs.all }} > ${{ outputs.sum }}
    outputs: { sum: sum.txt }
"#;

#[test]
fn a_run_killed_with_sigkill_resumes_without_redoing_finished_tasks() {
    let sb = Sandbox::new(SLOW_FAN);
    let mut child = sb.spawn(&["run", "wf.yaml"]);
    let start = Instant::now();
    while succeeded_tasks(&sb.status_json()).len() < 4 {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("twinflow output");
            let status = sb.run(&["status", "--tasks"]);
            panic!(
                "no four finished tasks after 60 s\ntwinflow run: {}\nstatus: {}{}",
                text(&out.stderr),
                text(&status.stdout),
                text(&status.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let done_before = succeeded_tasks(&sb.status_json());
    signal(&child, Signal::SIGKILL);
    let _ = child.wait();

    let runs = text(&sb.run(&["runs"]).stdout);
    assert!(runs.contains("interrupted"), "{runs}");

    let o = sb.run(&["run", "--resume", "wf.yaml"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("resuming slow-fan"), "{err}");
    for name in &done_before {
        let i = name.trim_start_matches("work[i=").trim_end_matches(']');
        let ran = std::fs::read_to_string(sb.path(&format!("ran-{i}"))).expect("ran file");
        assert_eq!(ran.lines().count(), 1, "{name} ran again after the resume");
    }
    for i in 1..=12 {
        assert!(sb.path(&format!("ran-{i}")).exists(), "task {i} never ran");
    }
    let status = sb.status_json();
    assert_eq!(status["run"]["state"], "succeeded");
    let run_dir = PathBuf::from(status["run"]["run_dir"].as_str().expect("run dir"));
    let sum = std::fs::read_to_string(run_dir.join("work/total/0/sum.txt")).expect("sum");
    assert_eq!(sum.trim(), "78");
}

#[test]
fn ctrl_c_cancels_every_task_leaves_no_orphan_and_exits_130() {
    let sb = Sandbox::new(
        r#"
version: 1
name: interrupted
executors: { here: { kind: local, slots: 2 } }
steps:
  hang:
    executor: here
    for_each: { i: [1, 2] }
    run: sleep 300 & echo $! > $DIR/child-${{ i }}; wait
"#,
    );
    let child = sb.spawn(&["run", "wf.yaml"]);
    wait_until("both tasks to start", || {
        (1..=2).all(|i| {
            std::fs::read_to_string(sb.path(&format!("child-{i}"))).is_ok_and(|t| t.ends_with('\n'))
        })
    });
    signal(&child, Signal::SIGINT);
    let o = child.wait_with_output().expect("wait for twinflow");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    for i in 1..=2 {
        let pid = std::fs::read_to_string(sb.path(&format!("child-{i}"))).expect("pid");
        assert!(!alive(pid.trim()), "task child {pid} outlived twinflow");
    }
    let status = text(&sb.run(&["status"]).stdout);
    assert!(status.contains(": cancelled"), "{status}");
}

#[test]
fn a_failed_task_exits_1_and_its_logs_are_one_command_away() {
    let sb = Sandbox::new(
        r#"
version: 1
name: failing
executors: { here: { kind: local } }
steps:
  model:
    executor: here
    for_each: { region: [north, south] }
    run: echo "simulating ${{ region }}"; if [ ${{ region }} = south ]; then echo "negative biomass" >&2; exit 4; fi
"#,
    );
    let o = sb.run(&["run", "wf.yaml"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("FAILED  model[region=south]: exited with status 4: negative biomass"),
        "{err}"
    );
    assert!(err.contains("1 ran") && err.contains("1 failed"), "{err}");
    let status = sb.status_json();
    let run = status["run"]["id"].as_str().expect("run id").to_owned();
    let logs = sb.run(&["logs", &run[..run.len() - 3], "model[region=south]"]);
    assert_eq!(logs.status.code(), Some(0), "{}", text(&logs.stderr));
    assert_eq!(text(&logs.stdout), "simulating south\nnegative biomass\n");
    let only = sb.run(&["logs", &run, "model[region=south]", "--stream", "stderr"]);
    assert_eq!(text(&only.stdout), "negative biomass\n");
    let missing = sb.run(&["logs", &run, "model[region=east]"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no record of a task `model[region=east]`"));
    let summary = text(&sb.run(&["status", &run]).stdout);
    assert!(
        summary.contains("model[region=south]: exited with status 4"),
        "{summary}"
    );
}

#[test]
fn json_events_stream_one_object_a_line() {
    let sb = Sandbox::new(
        r#"
version: 1
name: tiny
executors: { here: { kind: local } }
steps:
  hello:
    executor: here
    run: echo hi > ${{ outputs.greeting }}
    outputs: { greeting: hi.txt }
"#,
    );
    let o = sb.run(&["run", "wf.yaml", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let events: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(events[0]["format"], "twinflow.events/v1");
    assert_eq!(events[4]["outcome"], "succeeded");
    let kinds: Vec<String> = events
        .iter()
        .map(|v| v["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "run-started",
            "task-submitted",
            "task-running",
            "task-succeeded",
            "run-finished"
        ]
    );
    // Run again: the task is reused, and says so (in the singular).
    let again = sb.run(&["run", "wf.yaml"]);
    let err = text(&again.stderr);
    assert!(err.contains(": 1 task, 0 ran, 1 cached"), "{err}");
    assert!(err.contains("1 task in 1 step\n"), "{err}");
    assert!(
        err.contains("step hello finished: 1/1 task (1 cached)"),
        "{err}"
    );
    let plan = text(&sb.run(&["plan", "wf.yaml"]).stdout);
    assert!(plan.ends_with("\n1 task\n"), "{plan}");
    let resume = sb.run(&["run", "--resume", "wf.yaml"]);
    assert_eq!(resume.status.code(), Some(2));
    assert!(text(&resume.stderr).contains("already succeeded"));
}

#[test]
fn an_unreachable_vm_fails_its_tasks_with_a_message_naming_it() {
    let sb = Sandbox::new(
        r#"
version: 1
name: remote
executors: { vm: { kind: cloud, ssh: ubuntu@vm.invalid, store: "s3://bucket/twins" } }
steps:
  s:
    executor: vm
    run: 'true'
"#,
    );
    let o = sb.run(&["run", "wf.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("s: cannot resolve the host of ubuntu@vm.invalid"),
        "{err}"
    );
    assert!(err.contains("--resume"), "says how to take it up: {err}");
    let status = text(&sb.run(&["status", "latest"]).stdout);
    assert!(status.contains("failed"), "{status}");
}

#[test]
fn a_relative_state_dir_still_hands_artefacts_over() {
    let sb = Sandbox::new(
        r#"
version: 1
name: relative
executors: { here: { kind: local } }
steps:
  make:
    executor: here
    for_each: { i: [1, 2] }
    run: echo ${{ i }} > ${{ outputs.n }}
    outputs: { n: n.txt }
  join:
    executor: here
    needs: { all: make.n }
    run: cat ${{ inputs.all }} > ${{ outputs.both }}
    outputs: { both: both.txt }
"#,
    );
    let o = sb.run(&["run", "wf.yaml", "--state-dir", "relative-state"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let both = sb.path("relative-state/runs");
    let run = std::fs::read_dir(&both)
        .expect("runs dir")
        .next()
        .expect("one run")
        .expect("entry")
        .path();
    let joined = std::fs::read_to_string(run.join("work/join/0/both.txt")).expect("output");
    assert_eq!(joined, "1\n2\n");
}

#[test]
fn resume_takes_the_parameters_the_run_was_started_with() {
    let sb = Sandbox::new(
        r#"
version: 1
name: params
params: { factor: 1 }
executors: { here: { kind: local } }
steps:
  first:
    executor: here
    run: echo ran >> $DIR/first-runs; echo ${{ params.factor }} > ${{ outputs.v }}
    outputs: { v: v.txt }
  second:
    executor: here
    needs: { v: first.v }
    run: test -f $DIR/go; cat ${{ inputs.v }} > ${{ outputs.w }}
    outputs: { w: w.txt }
"#,
    );
    let o = sb.run(&["run", "wf.yaml", "-p", "factor=7"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    std::fs::write(sb.path("go"), "").expect("write go");
    let o = sb.run(&["run", "--resume", "wf.yaml"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("resuming with the run's settings: -p factor=7"),
        "{err}"
    );
    assert!(err.contains("1 ran, 1 cached"), "{err}");
    let runs = std::fs::read_to_string(sb.path("first-runs")).expect("first-runs");
    assert_eq!(
        runs.lines().count(),
        1,
        "the finished task did not run again"
    );
    let status = sb.status_json();
    let run_dir = PathBuf::from(status["run"]["run_dir"].as_str().expect("run dir"));
    let w = std::fs::read_to_string(run_dir.join("work/second/0/w.txt")).expect("w");
    assert_eq!(w, "7\n");
}

/// The `task-failed` events of a `--json` run.
fn failed_events(o: &Output) -> Vec<serde_json::Value> {
    text(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "task-failed")
        .collect()
}

#[test]
fn failures_name_only_the_logs_their_attempt_wrote() {
    let sb = Sandbox::new(
        r#"
version: 1
name: nologs
executors: { here: { kind: local } }
steps:
  silent:
    executor: here
    timeout: 1s
    run: sleep 30
  chatty:
    executor: here
    run: echo "computing"
    outputs: { result: result.txt }
"#,
    );
    let o = sb.run(&["run", "wf.yaml"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // A timeout that wrote nothing names no log.
    assert!(
        err.contains(
            "FAILED  silent: timed out after 1 s and was killed\n        attempt 0; it wrote no log"
        ),
        "{err}"
    );
    // A seal failure of a task that wrote only to stdout names that file.
    let line = err
        .lines()
        .skip_while(|l| !l.starts_with("FAILED  chatty"))
        .nth(1)
        .expect("the line after chatty's failure");
    assert!(
        line.contains("log: ") && line.ends_with("/logs/chatty/0.0.out (nothing on stderr)"),
        "{err}"
    );
    assert!(
        !err.contains(".err"),
        "names a stderr file that does not exist: {err}"
    );

    let o = sb.run(&["run", "wf.yaml", "--json", "--no-cache"]);
    let events = failed_events(&o);
    assert_eq!(events.len(), 2, "{}", text(&o.stdout));
    for e in &events {
        assert!(e["stderr"].is_null(), "{e}");
        match e["name"].as_str() {
            Some("silent") => assert!(e["stdout"].is_null(), "{e}"),
            _ => {
                let out = e["stdout"].as_str().expect("stdout path");
                assert!(std::path::Path::new(out).is_file(), "{e}");
            }
        }
    }
}

#[test]
fn the_attempt_a_failure_names_is_the_one_logs_shows() {
    let sb = Sandbox::new(
        r#"
version: 1
name: twice
executors: { here: { kind: local } }
steps:
  flaky:
    executor: here
    retries: 1
    run: echo "try $(ls $DIR | grep -c '^try-')" >&2; touch $DIR/try-$$; exit 3
"#,
    );
    let o = sb.run(&["run", "wf.yaml"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("retry   flaky: attempt 0 failed: exited with status 3: try 0"),
        "{err}"
    );
    assert!(
        err.contains("FAILED  flaky: exited with status 3: try 1\n        attempt 1; log: "),
        "{err}"
    );
    assert!(err.contains("/logs/flaky/0.1.err"), "{err}");
    let run = sb.status_json()["run"]["id"]
        .as_str()
        .expect("run id")
        .to_owned();
    for n in ["0", "1"] {
        let logs = sb.run(&["logs", &run, "flaky", "--attempt", n, "--stream", "stderr"]);
        assert_eq!(
            text(&logs.stdout),
            format!("try {n}\n"),
            "{}",
            text(&logs.stderr)
        );
    }
    let o = sb.run(&["run", "wf.yaml", "--json"]);
    let attempts: Vec<u64> = failed_events(&o)
        .iter()
        .filter_map(|e| e["attempt"].as_u64())
        .collect();
    assert_eq!(attempts, [0, 1], "JSON numbers attempts as the text does");
}

#[test]
fn resume_takes_the_newest_run_that_did_not_succeed() {
    let sb = Sandbox::new(
        r#"
version: 1
name: gated
executors: { here: { kind: local } }
steps:
  gate:
    executor: here
    run: test -f $DIR/go
"#,
    );
    let failed = sb.run(&["run", "wf.yaml"]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    let failed_id = sb.status_json()["run"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    std::fs::write(sb.path("go"), "").expect("write go");
    let o = sb.run(&["run", "wf.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // The newest run succeeded: the failed one before it is taken up.
    let o = sb.run(&["run", "--resume", "wf.yaml"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("resuming gated: run {failed_id}")),
        "{err}"
    );
    // Now every run succeeded: nothing to resume.
    let o = sb.run(&["run", "--resume", "wf.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("as did every earlier one"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn control_characters_in_names_and_values_reach_no_terminal_raw() {
    let sb = Sandbox::new(
        r#"
version: 1
name: colours
params: { note: plain }
executors: { here: { kind: local } }
steps:
  paint:
    executor: here
    for_each: { c: ["red\e[31mX\nFAKE LINE"] }
    run: printf 'boom\033]0;title\007\n' >&2; exit 1
"#,
    );
    let raw = |o: &Output| {
        let all = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
        assert!(
            !all.iter().any(|&b| b == 0x1b || b == 0x07),
            "a raw control character: {:?}",
            text(&all)
        );
        text(&all)
    };
    let escaped = r"paint[c=red\x1b[31mX\nFAKE LINE]";
    let plan = sb.run(&["plan", "wf.yaml", "-p", "note=\u{1b}[2Jcleared\nline"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let shown = raw(&plan);
    assert!(shown.contains(&format!("#0 {escaped}\n")), "{shown}");
    assert!(!shown.contains("\nFAKE LINE"), "{shown}");

    let o = sb.run(&["run", "wf.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let shown = raw(&o);
    assert!(
        shown.contains(&format!(
            r"FAILED  {escaped}: exited with status 1: boom\x1b]0;title\x07"
        )),
        "{shown}"
    );
    let shown = raw(&sb.run(&["status", "--tasks"]));
    assert!(shown.contains(escaped), "{shown}");
    // JSON carries the value itself, escaped as JSON.
    let status = sb.status_json();
    assert_eq!(
        status["tasks"][0]["name"],
        "paint[c=red\u{1b}[31mX\nFAKE LINE]"
    );
    // `logs` copies the task's own bytes; only its header is escaped.
    let run = status["run"]["id"].as_str().expect("run id").to_owned();
    let logs = sb.run(&["logs", &run, "paint[c=red\u{1b}[31mX\nFAKE LINE]"]);
    assert_eq!(text(&logs.stdout), "boom\u{1b}]0;title\u{7}\n");
    assert!(
        text(&logs.stderr).contains(escaped),
        "{}",
        text(&logs.stderr)
    );
    assert!(!logs.stderr.contains(&0x1b), "{}", text(&logs.stderr));
}

/// A fan-out of `n` short tasks, each appending its number to `$DIR/ran`.
fn appending_fan(n: u32) -> String {
    let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        r#"
version: 1
name: append-fan
executors: {{ here: {{ kind: local, slots: 4 }} }}
steps:
  work:
    executor: here
    for_each: {{ i: [{}] }}
    run: sleep 0.0$(( ${{{{ i }}}} % 8 )); echo ${{{{ i }}}} >> $DIR/ran
"#,
        values.join(", ")
    )
}

#[test]
fn local_tasks_run_exactly_once_across_repeated_sigkills_and_resumes() {
    const TASKS: u32 = 200;
    let sb = Sandbox::new(&appending_fan(TASKS));
    // A small generator of kill moments (no dependency); its seed is printed
    // with any failure.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as u64);
    let mut state = seed | 1;
    let mut next = move |lo: u64, hi: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        lo + state % (hi - lo)
    };
    let mut kills = 0;
    let mut resume = false;
    let ran = sb.path("ran");
    let count = || {
        std::fs::read_to_string(&ran)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    for round in 0..6 {
        let args: &[&str] = if resume {
            &["run", "--resume", "wf.yaml"]
        } else {
            &["run", "wf.yaml"]
        };
        let mut child = sb.spawn(args);
        // Kill once some tasks of this round ran, at a random moment.
        let before = count();
        wait_until("tasks to run", || {
            count() > before || child.try_wait().ok().flatten().is_some()
        });
        std::thread::sleep(Duration::from_millis(next(0, 400)));
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        signal(&child, Signal::SIGKILL);
        let _ = child.wait();
        kills += 1;
        resume = true;
        eprintln!("round {round}: killed after {} lines", count());
    }
    let o = sb.run(&["run", "--resume", "wf.yaml"]);
    let err = text(&o.stderr);
    let ran_text = std::fs::read_to_string(&ran).expect("ran file");
    let mut times = vec![0u32; TASKS as usize];
    for line in ran_text.lines() {
        let i: usize = line.trim().parse().expect("a task number");
        times[i] += 1;
    }
    let wrong: Vec<(usize, u32)> = times
        .iter()
        .enumerate()
        .filter(|(_, n)| **n != 1)
        .map(|(i, n)| (i, *n))
        .collect();
    assert!(
        wrong.is_empty(),
        "tasks that did not run exactly once (task, times) after {kills} kills \
         (seed {seed}): {wrong:?}\nlast resume: {err}"
    );
    assert!(kills >= 3, "only {kills} kills landed (seed {seed})");
    assert_eq!(o.status.code(), Some(0), "{err}");
}
