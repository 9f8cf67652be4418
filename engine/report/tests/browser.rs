//! The HTML report of a real run, opened in a real headless Chromium: it
//! renders, the step graph and the timeline are there with their boxes and
//! bars, its script ran to its end (it marks `<body data-ready>`), and the
//! browser logged no console message (an uncaught error is one). The same
//! check fails on a report without its timeline and on one whose script
//! throws.
//!
//! Chromium is driven by its command line: `--dump-dom` prints the DOM after
//! the page's scripts ran, `--enable-logging=stderr --v=0` prints console
//! messages as `CONSOLE` lines. No driver, no node. Without a Chromium
//! (apt package `chromium`) the test says so and passes, unless
//! `TWINFLOW_TEST_BROWSER=1` (set by `scripts/test`), where it fails.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test with a message"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use twinflow_report::{ReportOptions, write_report};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TWINFLOW_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("TWINFLOW_TEST_BROWSER").is_some() {
            panic!(
                "TWINFLOW_TEST_BROWSER is set but no chromium is on PATH (apt-get install chromium)"
            );
        }
        eprintln!(
            "SKIPPED: browser test: no chromium on PATH (apt-get install chromium; scripts/setup does)"
        );
    }
    found
}

/// Opens `page` in headless Chromium: `Ok(dom)` when it rendered with its
/// graph and timeline and no console message, else what was wrong.
fn check_in_browser(browser: &Path, page: &Path) -> Result<String, String> {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args([
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    let mut problems = Vec::new();
    if !out.status.success() {
        problems.push(format!("chromium exited with {}", out.status));
    }
    if !console.is_empty() {
        problems.push(format!("console messages:\n{}", console.join("\n")));
    }
    for (what, needle) in [
        ("the step graph", r#"id="step-graph""#),
        ("a step box", r#"class="node""#),
        ("the timeline", r#"id="timeline""#),
        ("a task bar", r#"class="task s"#),
    ] {
        if !dom.contains(needle) {
            problems.push(format!("no {what} ({needle}) in the rendered page"));
        }
    }
    let ready = dom
        .split("data-ready=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse::<u32>().ok());
    if ready.is_none_or(|n| n == 0) {
        problems.push("the page's script did not finish (no data-ready on <body>)".to_owned());
    }
    if problems.is_empty() {
        Ok(dom)
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn the_report_renders_in_chromium_with_its_graph_and_timeline_and_no_errors() {
    let Some(browser) = chromium() else { return };
    let run = common::run();
    let record = run.record();
    let page = run.dir.path().join("report.html");
    let summary = write_report(&record, &page, &ReportOptions::default()).unwrap();
    assert!(summary.timeline_bars);
    let dom = check_in_browser(&browser, &page).unwrap_or_else(|p| panic!("{p}"));
    // What the run did is on the page: the failure and its log tail.
    assert!(
        dom.contains(r#"data-ready="3""#),
        "three steps in the graph"
    );
    assert!(dom.contains("broken"), "the failed task is listed");
    assert!(dom.contains("exited with status 3"));
    assert!(dom.contains("about to fail"), "its stderr tail is shown");
    assert!(dom.contains("make[who=two words]"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no remote resources"
    );
    assert!(
        !html.contains("<link") && !html.contains("src=\"//"),
        "self-contained"
    );

    // The same check fails without the timeline, and on a throwing script.
    let start = html.find(r#"<svg id="timeline""#).unwrap();
    let end = start + html[start..].find("</svg>").unwrap() + "</svg>".len();
    let without = page.with_file_name("without-timeline.html");
    std::fs::write(&without, format!("{}{}", &html[..start], &html[end..])).unwrap();
    let problem = check_in_browser(&browser, &without).unwrap_err();
    assert!(problem.contains("no the timeline"), "{problem}");
    assert!(
        problem.contains("console messages"),
        "the script throws: {problem}"
    );
    let throwing = page.with_file_name("throwing.html");
    std::fs::write(
        &throwing,
        html.replace("<main>", "<main><script>null.boom();</script>"),
    )
    .unwrap();
    let problem = check_in_browser(&browser, &throwing).unwrap_err();
    assert!(problem.contains("Uncaught TypeError"), "{problem}");
}
