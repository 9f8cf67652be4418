//! `status` at scale (issue 21): a daemon (in this process, serving its
//! Unix socket) with a run of 100,000 local `true` tasks recorded, 1 % of
//! them failed; then, through [`Client`], the summary
//! (`GET /v1/runs/{id}/summary`) and filtered 100-row pages
//! (`GET /v1/runs/{id}/tasks?...`), each asked many times, their p50 and
//! p99 printed beside the targets.
//!
//! The run is recorded the way a user's is: the daemon runs it (its tasks
//! are real processes), so the store holds what a real run leaves.
//!
//! Run: `cargo bench -p twinflow-daemon --bench status` (`-- --quick`:
//! 10,000 tasks).

#![expect(
    clippy::expect_used,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::time::{Duration, Instant};
use twinflow_daemon::Client;
use twinflow_daemon::api::{SubmitRequest, TaskQuery};
use twinflow_engine::TaskState;

#[path = "../../runtime/benches/support/common.rs"]
#[expect(dead_code, reason = "only the bench directory is used here")]
mod common;

/// How many times each request is asked.
const ASKS: usize = 200;

/// Targets (issue 21), in milliseconds.
const SUMMARY_TARGET_MS: f64 = 20.0;
const PAGE_TARGET_MS: f64 = 20.0;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let groups = if quick { 100 } else { 1000 };
    let tasks = groups * 100;
    let dir = common::bench_dir();
    let state = dir.path().join("state");
    let file = dir.path().join("wide.yaml");
    let list: Vec<String> = (0..groups).map(|i| i.to_string()).collect();
    // 1 % fail: every task of group 7 of each hundred groups.
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: wide\nsteps:\n  sim:\n    for_each: {{ g: [{}], m: [{}] }}\n    run: test $(( ${{{{ g }}}} % 100 )) -ne 7\n",
            list.join(", "),
            (0..100).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        ),
    )
    .expect("write the workflow");
    println!(
        "status benchmark: one run of {tasks} local tasks, files under {}",
        dir.path().display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let engine = twinflow_engine::Engine::builder()
            .state_dir(&state)
            .executor(
                twinflow_core::ExecutorKind::Local,
                twinflow_executor_local::LocalFactory::default()
                    .with_pool(twinflow_executor_local::SlotPool::of_this_machine()),
            )
            .build()
            .expect("engine");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(twinflow_daemon::serve(engine, async {
            let _ = stop_rx.await;
        }));
        let client = Client::for_state_dir(&state);
        let start = Instant::now();
        while client.ping().await.is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "no daemon");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let run = client
            .submit(&SubmitRequest {
                file: file.display().to_string(),
                params: Vec::new(),
                site: None,
                local: false,
                no_cache: true,
                fail_fast: false,
            })
            .await
            .expect("submit");
        let start = Instant::now();
        let mut events = client.events(&run.run_id).await.expect("events");
        while events.next().await.expect("an event").is_some() {}
        println!(
            "recorded: {tasks} tasks in {:.0} s",
            start.elapsed().as_secs_f64()
        );
        let summary = client.summary("latest").await.expect("summary");
        assert_eq!(summary.run.task_count, tasks as u64);
        assert_eq!(summary.failed, tasks as u64 / 100);

        let summaries = timed(|| async {
            client.summary(&run.run_id).await.expect("summary");
        })
        .await;
        let deep = TaskQuery {
            step: Some("sim".to_owned()),
            states: vec![TaskState::Succeeded],
            after: Some(tasks as u32 / 2),
            limit: Some(100),
            ..TaskQuery::default()
        };
        let pages = timed(|| async {
            let page = client.tasks(&run.run_id, &deep).await.expect("page");
            assert_eq!(page.tasks.len(), 100);
        })
        .await;
        let failed = TaskQuery {
            states: vec![TaskState::Failed, TaskState::Skipped],
            name: Some("sim*".to_owned()),
            limit: Some(100),
            ..TaskQuery::default()
        };
        let failures = timed(|| async {
            let page = client.tasks(&run.run_id, &failed).await.expect("page");
            assert_eq!(page.tasks.len(), 100);
        })
        .await;
        let full = timed_once(|| async {
            client.status(&run.run_id).await.expect("full status");
        })
        .await;
        println!("through Client, {ASKS} asks each (ms):");
        println!(
            "  summary:                                {}   target p50 < {SUMMARY_TARGET_MS} ms",
            percentiles(summaries)
        );
        println!(
            "  page: step, state succeeded, after n/2:  {}   target < {PAGE_TARGET_MS} ms",
            percentiles(pages)
        );
        println!(
            "  page: state failed|skipped, name glob:   {}   target < {PAGE_TARGET_MS} ms",
            percentiles(failures)
        );
        println!("  (the full status, every task, once: {full:.0} ms)");
        let _ = stop_tx.send(());
        let _ = server.await;
    });
}

async fn timed<F, Fut>(f: F) -> Vec<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut v = Vec::with_capacity(ASKS);
    for _ in 0..ASKS {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v
}

async fn timed_once<F, Fut>(f: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t = Instant::now();
    f().await;
    t.elapsed().as_secs_f64() * 1e3
}

fn percentiles(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!("p50 {:6.2}  p99 {:6.2}", at(0.5), at(0.99))
}
