//! Reports and crates of large runs stay usable: for a run of 20,000 tasks
//! the report stays small (the timeline aggregates, the lists are capped);
//! 2,000 tasks still get one bar each. The time each export takes is
//! printed, not asserted: speed is a benchmark's business, and a loaded CI
//! machine is no stopwatch. The run is
//! recorded as the store would return it (the plan compiled from a real
//! workflow, every task with times and an artefact), without running
//! 20,000 processes.
#![expect(clippy::unwrap_used, reason = "test")]

use std::time::Instant;
use twinflow_engine::{RunArtefact, RunInfo, TaskRecord, TaskState};
use twinflow_report::{CrateOptions, ReportOptions, RunRecord, write_provenance, write_report};

fn record(tasks_a: usize, tasks_b: usize) -> RunRecord {
    let yaml = format!(
        "version: 1\nname: big\nexecutors: {{ here: {{ kind: local }}, hpc: {{ kind: slurm }} }}\n\
         steps:\n  a:\n    executor: here\n    for_each: {{ i: [{}] }}\n    run: echo ${{{{ i }}}} > ${{{{ outputs.o }}}}\n    outputs: {{ o: o.txt }}\n\
         \x20 b:\n    executor: hpc\n    for_each: {{ j: [{}] }}\n    needs: {{ all: a.o }}\n    run: cat ${{{{ inputs.all }}}} > ${{{{ outputs.p }}}}\n    outputs: {{ p: p.txt }}\n",
        (0..tasks_a)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
        (0..tasks_b)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    let options = twinflow_workflow::CompileOptions {
        run_id: "big-1".into(),
        ..Default::default()
    };
    let plan = twinflow_workflow::compile_str("big.yaml", &yaml, &options).unwrap();
    let n = plan.task_count();
    let t0 = 1_764_000_000_000i64;
    let tasks = (0..n)
        .map(|t| {
            let start = t0 + (t as i64 % 500) * 40 + (t as i64 / 500) * 2_000;
            Some(TaskRecord {
                task: t as u32,
                name: plan.task_name(twinflow_core::TaskId(t as u32)),
                step: plan.tasks()[t].step.0,
                executor: plan.step_of(twinflow_core::TaskId(t as u32)).executor.0,
                state: if t % 97 == 5 {
                    TaskState::Failed
                } else {
                    TaskState::Succeeded
                },
                attempt: 1,
                handle: Some(format!("{}", 100_000 + t)),
                started_ms: Some(start),
                finished_ms: Some(start + 1_500 + (t as i64 % 7) * 100),
                reason: (t % 97 == 5).then(|| "exited with status 1".to_owned()),
                cached_from: None,
            })
        })
        .collect();
    let artefacts = (0..n)
        .map(|t| {
            vec![RunArtefact {
                task: t as u32,
                output: if t < tasks_a { "o" } else { "p" }.into(),
                path: format!("/nonexistent/big-1/work/{t}/o.txt"),
                size: 42,
                sha256: format!("{t:064x}"),
            }]
        })
        .collect();
    let run: RunInfo = serde_json::from_value(serde_json::json!({
        "id": "big-1", "workflow": "big", "file": null, "run_dir": "/nonexistent/big-1",
        "state": "failed", "task_count": n, "created_ms": t0, "updated_ms": t0 + 100_000,
        "plan_digest": "", "args": "{}", "host": "login1", "pid": 1, "pid_start": 1
    }))
    .unwrap();
    RunRecord {
        run,
        plan,
        tasks,
        artefacts,
        span: Some((t0, t0 + 100_000)),
        images: Vec::new(),
        actions: Vec::new(),
    }
}

#[test]
fn a_report_of_20000_tasks_stays_small_and_aggregates_its_timeline() {
    let record = record(19_000, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("big.html");
    let started = Instant::now();
    let summary = write_report(&record, &page, &ReportOptions::default()).unwrap();
    let took = started.elapsed();
    assert!(!summary.timeline_bars, "20,000 bars would be unreadable");
    assert!(summary.bytes < 1_500_000, "{} bytes", summary.bytes);
    eprintln!("20,000 tasks: report written in {took:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("The first 1000 of 20000 files are listed"));
    assert!(html.contains("more failed tasks are not shown"));
    eprintln!("20,000 tasks: report {} bytes in {took:?}", summary.bytes);
}

#[test]
fn two_thousand_tasks_still_get_a_bar_each() {
    let record = record(1_500, 500);
    let dir = tempfile::tempdir().unwrap();
    let summary = write_report(
        &record,
        &dir.path().join("r.html"),
        &ReportOptions::default(),
    )
    .unwrap();
    assert!(summary.timeline_bars);
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert_eq!(html.matches(r#"<rect class="task s"#).count(), 2_000);
}

#[test]
fn a_crate_of_20000_tasks_stays_small_and_complete() {
    // 1,000 tasks each gather all 19,000 outputs: one Collection for the
    // set, and their 40 KB commands are files of the crate.
    let mut record = record(19_000, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("big.yaml");
    std::fs::write(&workflow, "version: 1\n").unwrap();
    record.plan.workflow.file = Some(workflow);
    let started = Instant::now();
    let out = dir.path().join("crate");
    let summary = write_provenance(&record, &out, &CrateOptions::default()).unwrap();
    let took = started.elapsed();
    assert_eq!(summary.actions, 20_000);
    assert_eq!(summary.files_included, 0, "the files do not exist here");
    let bytes = std::fs::metadata(out.join("ro-crate-metadata.json"))
        .unwrap()
        .len();
    eprintln!("20,000 tasks: crate metadata {bytes} bytes in {took:?}");
    assert!(bytes < 40_000_000, "{bytes} bytes");
    assert!(out.join("commands/b/999.sh").is_file());
}
