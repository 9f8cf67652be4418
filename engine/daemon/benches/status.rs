//! `status` at scale (issue 21): a daemon (in this process, serving its
//! Unix socket) with a run of 100,000 local `true` tasks recorded, 1 % of
//! them failed; then, through [`Client`], the summary
//! (`GET /v1/runs/{id}/summary`) and filtered 100-row pages
//! (`GET /v1/runs/{id}/tasks?...`), in task order and ordered by
//! `longest` and `latest` half-way into the run (keyset paging: a cursor
//! reached by paging there), each asked many times, their p50 and p99
//! printed beside the targets.
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

use std::time::Instant;
use twinflow_daemon::api::{MAX_PAGE, TaskQuery};
use twinflow_engine::{TaskCursor, TaskOrder, TaskState};

#[path = "../../runtime/benches/support/common.rs"]
#[expect(dead_code, reason = "only the bench directory is used here")]
mod common;

#[path = "support/wide_run.rs"]
mod wide_run;

/// How many times each request is asked.
const ASKS: usize = 200;

/// Targets (issue 21), in milliseconds.
const SUMMARY_TARGET_MS: f64 = 20.0;
const PAGE_TARGET_MS: f64 = 20.0;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let groups = if quick { 100 } else { 1000 };
    let dir = common::bench_dir();
    println!(
        "status benchmark: one run of {} local tasks, files under {}",
        groups * 100,
        dir.path().display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let wide = wide_run::record(dir.path(), groups).await;
        let (client, run, tasks) = (&wide.client, &wide.run_id, wide.tasks);

        let summaries = timed(|| async {
            client.summary(run).await.expect("summary");
        })
        .await;
        let deep = TaskQuery {
            step: Some("sim".to_owned()),
            states: vec![TaskState::Succeeded],
            after: Some(TaskCursor::after_task(tasks as u32 / 2)),
            limit: Some(100),
            ..TaskQuery::default()
        };
        let pages = timed(|| async {
            let page = client.tasks(run, &deep).await.expect("page");
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
            let page = client.tasks(run, &failed).await.expect("page");
            assert_eq!(page.tasks.len(), 100);
        })
        .await;
        // Ordered pages, half-way into the run: the cursor there is found
        // by paging (as a client does), then the next 100 are asked for.
        let halfway = |order: TaskOrder, states: Vec<TaskState>| {
            let states = states.clone();
            async move {
                let mut query = TaskQuery {
                    states: states.clone(),
                    order,
                    limit: Some(MAX_PAGE.min(tasks / 4)),
                    ..TaskQuery::default()
                };
                let mut seen = 0;
                while seen < tasks / 2 {
                    let page = client.tasks(run, &query).await.expect("page");
                    seen += page.tasks.len();
                    query.after = Some(page.next_after.expect("more follow"));
                }
                query.limit = Some(100);
                query
            }
        };
        let longest_deep = halfway(TaskOrder::Longest, Vec::new()).await;
        let longest = timed(|| async {
            let page = client.tasks(run, &longest_deep).await.expect("page");
            assert_eq!(page.tasks.len(), 100);
        })
        .await;
        let latest_deep = halfway(TaskOrder::Latest, vec![TaskState::Succeeded]).await;
        let latest = timed(|| async {
            let page = client.tasks(run, &latest_deep).await.expect("page");
            assert_eq!(page.tasks.len(), 100);
        })
        .await;
        let longest_step = TaskQuery {
            step: Some("sim".to_owned()),
            name: Some("sim*".to_owned()),
            ..longest_deep.clone()
        };
        let longest_filtered = timed(|| async {
            let page = client.tasks(run, &longest_step).await.expect("page");
            assert_eq!(page.tasks.len(), 100);
        })
        .await;
        let full = timed_once(|| async {
            client.status(run).await.expect("full status");
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
        println!(
            "  page: order longest, after n/2:          {}   target < {PAGE_TARGET_MS} ms",
            percentiles(longest)
        );
        println!(
            "  page: longest, step, name glob, n/2:     {}   target < {PAGE_TARGET_MS} ms",
            percentiles(longest_filtered)
        );
        println!(
            "  page: latest, state succeeded, n/2:      {}   target < {PAGE_TARGET_MS} ms",
            percentiles(latest)
        );
        println!("  (the full status, every task, once: {full:.0} ms)");
        wide.stop().await;
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
