//! The TUI's frame time (issue 21): a daemon (in this process, serving its
//! Unix socket) with a recorded run of 100,000 local tasks, 1 % of them
//! failed; then, many times, one frame as `twinflow tui` makes it: the
//! model refreshed through [`twinflow_daemon::Client`] (the summary and one
//! page of tasks, asked at once) and drawn into an 80x24 and a 200x60
//! `TestBackend`. Its p50 and p99 are printed beside the target (a frame
//! under 50 ms), for the first page and for a filtered page deep in the run.
//!
//! Run: `cargo bench -p twinflow-tui --bench frame` (`-- --quick`: 10,000
//! tasks).

#![expect(
    clippy::expect_used,
    reason = "a benchmark harness stops at the first broken setup"
)]

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Instant;
use twinflow_engine::{TaskCursor, TaskOrder, TaskState};
use twinflow_tui::fetch::run_view;
use twinflow_tui::model::{Filter, Model};
use twinflow_tui::render::render;

#[path = "../../runtime/benches/support/common.rs"]
#[expect(dead_code, reason = "only the bench directory is used here")]
mod common;

#[path = "../../daemon/benches/support/wide_run.rs"]
mod wide_run;

/// How many frames are timed for each case.
const FRAMES: usize = 200;

/// Target (issue 21), in milliseconds.
const FRAME_TARGET_MS: f64 = 50.0;

/// Per frame: the refresh, each drawing, and the whole, in milliseconds.
#[derive(Default)]
struct Times {
    fetch: Vec<f64>,
    small: Vec<f64>,
    large: Vec<f64>,
    frame: Vec<f64>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

async fn frames(client: &twinflow_daemon::Client, mut model: Model) -> Times {
    let mut small = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    let mut large = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let run = model.run.clone().expect("a run");
    let mut times = Times::default();
    for _ in 0..FRAMES {
        let start = Instant::now();
        let update = run_view(client, &run, &model.query()).await;
        model.apply(update);
        times.fetch.push(ms(start));
        let t = Instant::now();
        small.draw(|f| render(&model, f)).expect("draw");
        times.small.push(ms(t));
        let t = Instant::now();
        large.draw(|f| render(&model, f)).expect("draw");
        times.large.push(ms(t));
        times.frame.push(ms(start));
    }
    assert!(model.message.is_none(), "{:?}", model.message);
    assert!(!model.page.is_empty(), "an empty page");
    times
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let groups = if quick { 100 } else { 1000 };
    let dir = common::bench_dir();
    println!(
        "TUI frame benchmark: one run of {} local tasks, files under {}",
        groups * 100,
        dir.path().display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let wide = wide_run::record(dir.path(), groups).await;
        let first = Model::new(Some(wide.run_id.clone()));
        let mut deep = Model::new(Some(wide.run_id.clone()));
        deep.filter = Filter {
            state: Some(TaskState::Failed),
            step: Some("sim".to_owned()),
            name: Some("sim*".to_owned()),
        };
        deep.cursor = Some(TaskCursor::after_task(wide.tasks as u32 / 20));
        let mut longest = Model::new(Some(wide.run_id.clone()));
        longest.order = TaskOrder::Longest;
        let cases = [
            ("first page", frames(&wide.client, first).await),
            (
                "first page, order longest",
                frames(&wide.client, longest).await,
            ),
            (
                "failed, step, name glob, after n/20",
                frames(&wide.client, deep).await,
            ),
        ];
        println!("{FRAMES} frames each (ms): refresh = summary + one 100-task page through Client");
        for (name, times) in cases {
            println!("  {name}:");
            println!("    refresh:        {}", percentiles(times.fetch));
            println!("    draw 80x24:     {}", percentiles(times.small));
            println!("    draw 200x60:    {}", percentiles(times.large));
            println!(
                "    whole frame:    {}   target < {FRAME_TARGET_MS} ms",
                percentiles(times.frame)
            );
        }
        wide.stop().await;
    });
}

fn percentiles(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!("p50 {:6.2}  p99 {:6.2}", at(0.5), at(0.99))
}
