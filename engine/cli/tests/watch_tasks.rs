//! `twinflow watch RUN SEL…`: follows a subset of a run's tasks through
//! the daemon: their state changes and their output, each line prefixed
//! with the task's name, until every selected task has ended.
mod common;

use common::{daemon, tasks, text, twinflow};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORKFLOW: &str = "version: 1\nname: subset\nsteps:\n  talk:\n    for_each: { k: [a, b] }\n    \
     run: for i in 1 2 3; do echo ${{ k }}-$i; echo warn-${{ k }}-$i >&2; sleep 0.3; done\n  \
     bad:\n    run: echo broken; exit 3\n  late:\n    after: [talk]\n    run: sleep 60\n";

#[test]
fn watch_follows_the_selected_tasks_until_they_end_not_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let mut d = daemon(&state, None);
    let file = dir.path().join("subset.yaml");
    std::fs::write(&file, WORKFLOW).expect("write workflow");
    let o = twinflow(&state, &["submit", file.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let run = text(&o.stdout).trim().to_owned();
    let o = twinflow(&state, &["hold", &run, "late"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let started = Instant::now();
    // `latest` names the run as everywhere else; a step name selects its tasks.
    let o = twinflow(&state, &["watch", "latest", "talk"]);
    let took = started.elapsed();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    for k in ["a", "b"] {
        let name = format!("talk[k={k}]");
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with(&format!("{name} | ")))
            .collect();
        assert_eq!(
            lines,
            (1..=3)
                .map(|i| format!("{name} | {k}-{i}"))
                .collect::<Vec<_>>(),
            "every output line of {name}, prefixed, in order:\n{out}"
        );
        assert!(
            err.contains(&format!("{name} | warn-{k}-3")),
            "its standard error on stderr:\n{err}"
        );
        assert!(err.contains(&format!("{name}: succeeded")), "{err}");
    }
    assert!(err.contains("watching 2 task(s) of"), "{err}");
    assert!(
        !out.contains("broken"),
        "an unselected task's output:\n{out}"
    );
    // `late` sleeps a minute after `talk`: the watch did not wait for it.
    assert!(took < Duration::from_secs(40), "took {took:?}");

    // A failed selection member: exit 1, its state said; a glob selects.
    let o = twinflow(&state, &["watch", &run, "ba?"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("bad: failed"),
        "{}",
        text(&o.stderr)
    );

    // A selector that names nothing: exit 2, naming it.
    let o = twinflow(&state, &["watch", &run, "nope*"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("`nope*`"), "{}", text(&o.stderr));

    // A held task is seen before it starts (the live run answers, not
    // the store, where it has no record yet); released and killed, the
    // watch sees it run and fail, and ends with exit 1.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["watch", &run, "late", "--json", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("twinflow watch");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let mut next = || -> serde_json::Value {
        let line = lines.next().expect("a line").expect("utf-8");
        serde_json::from_str(&line).expect("a JSON line")
    };
    let first = next();
    assert_eq!(first["name"], "late");
    assert_eq!(first["held"], true, "{first}");
    assert_eq!(first["state"], "ready", "{first}");
    let o = twinflow(&state, &["release", &run, "late"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut seen = next();
    while seen["state"] != "running" {
        seen = next();
    }
    let o = twinflow(&state, &["kill", &run, "late"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    while seen["state"] != "failed" {
        seen = next();
    }
    assert_eq!(watch.wait().expect("watch ends").code(), Some(1));
    assert!(
        tasks(&state, &run)
            .iter()
            .any(|(n, s, _)| n == "late" && s == "failed"),
        "the store agrees"
    );
    // `status --name` globs as selectors do: brackets are literal.
    let o = twinflow(&state, &["status", &run, "--name", "talk[*]", "--json"]);
    let page: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(2), "{page}");

    // Once the run is over (its last task was killed), the selection
    // comes from the store.
    common::wait_until("the run to end", Duration::from_secs(60), || {
        let o = twinflow(&state, &["watch", &run, "talk*"]);
        o.status.code() == Some(0) && text(&o.stderr).contains("(not live: as recorded)")
    });
    let _ = d.kill();
    let _ = d.wait();
}

#[test]
fn watch_follows_tasks_of_a_foreground_run_through_its_own_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let file = dir.path().join("fg.yaml");
    let go = dir.path().join("go");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: fg\nsteps:\n  talk:\n    run: until [ -e {} ]; do sleep 0.1; done; echo hello\n",
            go.display()
        ),
    )
    .expect("write workflow");
    let mut run = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["run", file.to_str().expect("utf-8"), "--state-dir"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("twinflow run");
    // No daemon: the run's own socket answers once it is up.
    common::wait_until("the run's socket", Duration::from_secs(30), || {
        let o = twinflow(&state, &["status", "latest", "--summary", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .map(|v| v["live"] == true)
            .unwrap_or(false)
    });
    let watch = Command::new(env!("CARGO_BIN_EXE_twinflow"))
        .args(["watch", "latest", "talk", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("twinflow watch");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&go, "").expect("let the task go");
    let o = watch.wait_with_output().expect("watch ends");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("talk | hello"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        !text(&o.stderr).contains("(not live"),
        "{}",
        text(&o.stderr)
    );
    assert!(run.wait().expect("run ends").success());
    // Ended, and nothing serves it: the store answers.
    let o = twinflow(&state, &["watch", "latest", "talk"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("talk: succeeded"),
        "{}",
        text(&o.stderr)
    );
}
