//! Operator actions at scale (issue 21): a daemon (in this process, serving
//! its Unix socket) carries a live run of 100,000 local tasks, all waiting
//! behind one long gate task; then, through [`Client`], 1,000 actions
//! alternately holding and releasing one task by name, 1,000 holding and
//! releasing a glob of 100 tasks, and 1,000 selections of 100 tasks (what
//! `watch RUN SEL…` asks twice a second). Each is printed as p50/p99 and in
//! total, beside the floor measured in the same run: a `ping` through the
//! same socket (a request that does no work).
//!
//! Every action is journalled in the state store (one SQLite transaction
//! each) before the scheduler applies it, as on a user's run.
//!
//! Run: `cargo bench -p twinflow-daemon --bench actions` (`-- --quick`:
//! 10,000 tasks).

#![expect(
    clippy::expect_used,
    reason = "a benchmark harness stops at the first broken setup"
)]

use std::time::{Duration, Instant};
use twinflow_engine::ActionKind;

#[path = "../../runtime/benches/support/common.rs"]
#[expect(dead_code, reason = "only the bench directory is used here")]
mod common;

#[path = "support/wide_run.rs"]
#[expect(
    dead_code,
    reason = "only the daemon is used here, not the recorded run"
)]
mod wide_run;

/// How many actions (or selections) of each kind.
const ACTIONS: usize = 1000;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let groups = if quick { 100 } else { 1000 };
    let tasks = groups * 100;
    let dir = common::bench_dir();
    let state = dir.path().join("state");
    let file = dir.path().join("gated.yaml");
    let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: gated\nsteps:\n  gate:\n    run: sleep 3600\n  sim:\n    after: [gate]\n    \
             for_each: {{ g: [{}], m: [{}] }}\n    run: 'true'\n",
            list(groups),
            list(100)
        ),
    )
    .expect("write the workflow");
    println!(
        "actions benchmark: a live run of {tasks} local tasks waiting behind a gate, files under {}",
        dir.path().display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let served = wide_run::serve(&state).await;
        let client = served.client.clone();
        let run = served.submit(&file).await;
        // Live once the gate runs.
        let gate = ["gate".to_owned()];
        let start = Instant::now();
        loop {
            if let Ok(s) = client.select(&run, &gate).await
                && s.tasks.first().map(|t| t.state) == Some(twinflow_engine::LiveState::Running)
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the gate never ran"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let pings = timed(|_| async {
            client.ping().await.expect("ping");
        })
        .await;
        let one = ["sim[g=7,m=42]".to_owned()];
        let by_name = timed(|i| {
            let (client, run, one) = (&client, &run, &one);
            async move {
                let report = client.act(run, flip(i), one).await.expect("action");
                assert_eq!(report.applied.len(), 1);
            }
        })
        .await;
        let hundred = ["sim[g=5,*]".to_owned()];
        let by_glob = timed(|i| {
            let (client, run, hundred) = (&client, &run, &hundred);
            async move {
                let report = client.act(run, flip(i), hundred).await.expect("action");
                assert_eq!(report.applied.len(), 100);
            }
        })
        .await;
        let selections = timed(|_| {
            let (client, run, hundred) = (&client, &run, &hundred);
            async move {
                let s = client.select(run, hundred).await.expect("select");
                assert_eq!(s.tasks.len(), 100);
            }
        })
        .await;
        let floor = median(&pings);
        println!("through Client, {ACTIONS} of each (ms; x = p50 / the ping's p50):");
        println!(
            "  ping (the floor: a request doing no work): {}",
            percentiles(&pings)
        );
        for (what, v) in [
            ("hold|release one task by name:", &by_name),
            ("hold|release a glob of 100 tasks:", &by_glob),
            ("select a glob of 100 tasks (watch):", &selections),
        ] {
            println!(
                "  {what:<40} {}  x{:.1}  total {:.2} s",
                percentiles(v),
                median(v) / floor,
                v.iter().sum::<f64>() / 1e3
            );
        }
        client.cancel(&run).await.expect("cancel");
        served.stop().await;
    });
}

/// Hold on even turns, release on odd ones.
fn flip(i: usize) -> ActionKind {
    if i.is_multiple_of(2) {
        ActionKind::Hold
    } else {
        ActionKind::Release
    }
}

async fn timed<F, Fut>(f: F) -> Vec<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut v = Vec::with_capacity(ACTIONS);
    for i in 0..ACTIONS {
        let t = Instant::now();
        f(i).await;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

fn percentiles(v: &[f64]) -> String {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!("p50 {:6.2}  p99 {:6.2}", at(0.5), at(0.99))
}
